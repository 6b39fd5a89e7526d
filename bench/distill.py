"""Distill benchmark: statistical voice profiles, then model distillation against the fake server.

    .venv/bin/python bench/distill.py [--transcripts 1000] [--creators 100]
                                      [--pages 100] [--page-seconds 1.0] [--concurrency 4] [--json]

Part 1 (`profile_s`): `measure_profiles` over `--transcripts` synthetic
transcripts of ~3,500 words (a 20-minute video at ~175 words a minute) shared
among `--creators` creators. Words are drawn from the bundled pages' vocabulary
with Zipf-like weights (rank r has weight 1/r), in sentences of 6-18 words with
their times; every creator also has three habits of their own (3-6-word
phrases) said a few times per video. Generating the transcripts is not timed.

Part 2 (`distill_s`): `--pages` transcript pages distilled through the real
HTTP client against tests/fake_openai.py answering each request after
`--page-seconds` with a valid page, `--concurrency` requests at a time
(`tui.services.distill.distill_pages`). Serial work outside the model shows as
`distill_s` above pages × page_seconds / concurrency.

Results go in docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from tui.materials.model import TimedSentence  # noqa: E402
from tui.services.profile_stats import measure_profiles  # noqa: E402

WORDS_PER_TRANSCRIPT = 3500
WORDS_PER_MINUTE = 175.0


def vocabulary() -> list[str]:
    """Words of the bundled KB, most frequent first."""
    counts: dict[str, int] = {}
    for file in sorted((ROOT / "tui" / "data" / "kb").glob("*.json")):
        doc = json.loads(file.read_text())
        for page in doc.get("techniques", []):
            chunks = [page.get("title", ""), page.get("summary", "")]
            chunks += [f"{s.get('heading', '')} {s.get('body', '')}" for s in page.get("sections", [])]
            for word in re.findall(r"[a-z]+", " ".join(chunks).lower()):
                counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: -counts[w])


def transcript(rng: random.Random, words: list[str], weights: list[float],
               habits: list[str]) -> list[TimedSentence]:
    out: list[TimedSentence] = []
    said = 0
    t = 0.0
    while said < WORDS_PER_TRANSCRIPT:
        if rng.random() < 0.04:
            text = rng.choice(habits).capitalize() + "."
        else:
            n = rng.randint(6, 18)
            text = " ".join(rng.choices(words, weights, k=n)).capitalize() + "."
        count = text.count(" ") + 1
        seconds = count / WORDS_PER_MINUTE * 60
        out.append(TimedSentence(round(t, 3), round(t + seconds, 3), text))
        t += seconds + rng.uniform(0.1, 0.6)
        said += count
    return out


def habits_of(creator: str, words: list[str], seed: int = 7) -> list[str]:
    crng = random.Random(f"{seed}:{creator}")
    return [" ".join(crng.choices(words[50:], k=crng.randint(3, 6))) for _ in range(3)]


def corpus(n_transcripts: int, n_creators: int, seed: int = 7) -> dict[str, list[list[TimedSentence]]]:
    rng = random.Random(seed)
    words = vocabulary()
    weights = [1.0 / (r + 1) for r in range(len(words))]
    out: dict[str, list[list[TimedSentence]]] = {}
    for t in range(n_transcripts):
        creator = f"creator-{t % n_creators:03d}"
        habits = habits_of(creator, words, seed)
        out.setdefault(creator, []).append(transcript(rng, words, weights, habits))
    return out


def bench_profiles(n_transcripts: int, n_creators: int) -> dict:
    data = corpus(n_transcripts, n_creators)
    began = time.perf_counter()
    profiles = measure_profiles(data)
    seconds = time.perf_counter() - began
    words = vocabulary()
    found = planted = wrong = 0
    for creator, prof in profiles.items():
        phrases = prof.get("vocabulary", {}).get("signature_phrases", [])
        habits = habits_of(creator, words)
        planted += len(habits)
        found += sum(1 for h in habits if h in phrases)
        wrong += sum(1 for p in phrases if not any(p in h for h in habits))
    return {
        "transcripts": n_transcripts,
        "creators": n_creators,
        "words": sum(p["_measured"]["words"] for p in profiles.values()),
        "profile_s": round(seconds, 2),
        "habits_planted": planted,
        "habits_found": found,  # a planted habit listed whole
        "phrases_not_habits": wrong,  # a listed phrase that is no part of a habit
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--transcripts", type=int, default=1000)
    parser.add_argument("--creators", type=int, default=100)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--page-seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = bench_profiles(args.transcripts, args.creators)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
