"""Claim-check benchmark: a 1,000-word answer with 10 sources, `check_claims()` latency.

    .venv/bin/python bench/claims.py [--runs 50] [--words 1000] [--json]

The answer is built from 10 sections of the bundled knowledge base about one
topic (mixing and compression), the way a model writes one: an intro line, a
heading, paragraphs and list items whose sentences restate their source's
sentences (some words dropped, one in five with a changed number, one in eight
citing a neighbouring source, a few without a citation) and a code block. It
is checked `--runs` times:

- `check_ms_*`: the check as the chat service runs it after an answer: the
  sources prepared anew and the numbers read anew each time (those caches cleared),
  the process's word-stem cache warm (it fills with the KB's vocabulary after the
  first answers);
- `cold_ms_*`: every cache cleared before each run (the first answer after start);
- `baseline_ms_p50`: one markdown-it parse of the same answer, in the same process,
  taken in turns with the checks (the parser the answer view runs anyway);
  `ratio_p50` = check / baseline, the figure that does not depend on the machine's load.

Prints a summary, or with --json one JSON object (claims, counts, words, sources,
check_ms_p50, check_ms_p95, cold_ms_p50, cold_ms_p95, baseline_ms_p50, ratio_p50).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from markdown_it import MarkdownIt  # noqa: E402

from tui.services import claims as claims_mod  # noqa: E402
from tui.services.claims import check_claims  # noqa: E402

SECTIONS = [
    ("parallel-compression-drums", "crush-settings"),
    ("parallel-compression-drums", "eq-and-blend"),
    ("sidechain-compression-ducking", "compressor-settings"),
    ("sidechain-compression-ducking", "what-to-duck"),
    ("bus-compression-and-mix-glue", "bus-compressor-settings"),
    ("bus-compression-and-mix-glue", "drum-bus-and-parallel"),
    ("vocal-chain-order", "two-stage-compression"),
    ("multiband-compression", "how-multiband-works"),
    ("upward-downward-compression-ott", "three-band-setup"),
    ("limiter-settings", "release"),
]


def load_sources() -> list[dict]:
    pages = {}
    for path in sorted((ROOT / "tui" / "data" / "kb").glob("*.json")):
        for page in json.loads(path.read_text(encoding="utf-8"))["techniques"]:
            pages[page["slug"]] = page
    out = []
    for slug, anchor in SECTIONS:
        page = pages[slug]
        section = next(s for s in page["sections"] if s["anchor"] == anchor)
        out.append({"title": page["title"], "summary": page["summary"],
                    "section_heading": section["heading"], "section_body": section["body"]})
    return out


def build_answer(sources: list[dict], words: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    pool = []
    for n, src in enumerate(sources, start=1):
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", src["section_body"]):
            sentence = re.sub(r"^\s*(?:[-*]|\d+\.)\s+", "", sentence).strip()
            if len(sentence.split()) >= 6 and not sentence.endswith(":"):
                pool.append((n, sentence.rstrip(".")))
    rng.shuffle(pool)
    parts = ["Here's how the sources approach it:", "", "## Settings that matter", ""]
    count = 0
    paragraph: list[str] = []
    for i, (n, sentence) in enumerate(pool * 3):
        if count >= words:
            break
        tokens = sentence.split()
        if len(tokens) > 10 and rng.random() < 0.5:
            del tokens[rng.randrange(2, len(tokens) - 2)]  # restated, not quoted
        text = " ".join(tokens)
        if rng.random() < 0.2:
            text = re.sub(r"\d+", lambda m: str(int(m.group()) * 3 + 1), text, count=1)
        cite = n if rng.random() >= 0.125 else n % len(sources) + 1
        line = f"{text}." if rng.random() < 0.08 else f"{text} [{cite}]."
        count += len(line.split())
        if i % 9 in (4, 5, 6):
            if paragraph:
                parts += [" ".join(paragraph), ""]
                paragraph = []
            parts.append(f"- {line}")
            if i % 9 == 6:
                parts.append("")
        else:
            paragraph.append(line)
            if len(paragraph) == 4:
                parts += [" ".join(paragraph), ""]
                paragraph = []
    if paragraph:
        parts += [" ".join(paragraph), ""]
    parts += ["```", "ratio = 4  # a 4:1 compressor [1]", "```", "", "Hope this helps!"]
    return "\n".join(parts)


def clear_caches(words_too: bool) -> None:
    claims_mod._prepare.cache_clear()
    if hasattr(claims_mod._stem_set, "cache_clear"):  # sentences' stems: read anew too
        claims_mod._stem_set.cache_clear()
    claims_mod._quantities.cache_clear()
    if hasattr(claims_mod, "_quantity_spans"):  # (a checkout before it had none)
        claims_mod._quantity_spans.cache_clear()
    if words_too:
        claims_mod._stems.cache_clear()
        if hasattr(claims_mod, "_content_word"):  # words judged content words (distillspeed)
            claims_mod._content_word.cache_clear()


def measure(answer: str, sources: list[dict], runs: int, cold: bool) -> tuple[list[float], list[float]]:
    """(check times, baseline times), the two taken in turns so both see the same load."""
    view_parser = MarkdownIt("commonmark").enable("table")  # as the answer view parses
    times, baseline = [], []
    for _ in range(runs):
        start = time.perf_counter()
        view_parser.parse(answer)
        baseline.append((time.perf_counter() - start) * 1000)
        clear_caches(words_too=cold)
        start = time.perf_counter()
        check_claims(answer, sources)
        times.append((time.perf_counter() - start) * 1000)
    return times, baseline


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--words", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="one JSON document")
    args = parser.parse_args()
    sources = load_sources()
    answer = build_answer(sources, args.words)
    report = check_claims(answer, sources)  # warm-up: the words of the KB in the stem cache
    warm, baseline = measure(answer, sources, args.runs, cold=False)
    cold, _ = measure(answer, sources, max(5, args.runs // 5), cold=True)
    result = {
        "claims": report.summary()["total"],
        "counts": report.summary(),
        "words": len(answer.split()),
        "sources": len(sources),
        "runs": args.runs,
        "check_ms_p50": round(statistics.median(warm), 2),
        "check_ms_p95": round(p95(warm), 2),
        "cold_ms_p50": round(statistics.median(cold), 2),
        "cold_ms_p95": round(p95(cold), 2),
        "baseline_ms_p50": round(statistics.median(baseline), 2),
        "ratio_p50": round(statistics.median(warm) / statistics.median(baseline), 1),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['words']} words, {result['sources']} sources, {result['claims']} claims "
              f"{result['counts']}")
        print(f"check  p50 {result['check_ms_p50']} ms  p95 {result['check_ms_p95']} ms "
              f"(cold p50 {result['cold_ms_p50']} ms, p95 {result['cold_ms_p95']} ms)")
        print(f"baseline markdown-it parse p50 {result['baseline_ms_p50']} ms; "
              f"check = {result['ratio_p50']}× a parse")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
