"""Distill benchmark: statistical voice profiles, then model distillation against the fake server.

    .venv/bin/python bench/distill.py [--transcripts 1000] [--creators 100]
                                      [--pages 100] [--page-seconds 1.0] [--concurrency 4] [--json]

Part 1 (`profile_s`): `measure_profiles` over `--transcripts` synthetic
transcripts of ~3,500 words (a 20-minute video at ~175 words a minute) shared
among `--creators` creators. Words are drawn from the bundled pages' vocabulary
with Zipf-like weights (rank r has weight 1/r), in sentences of 6-18 words with
their times; every creator also has three habits of their own (3-6-word
phrases) said a few times per video. Generating the transcripts is not timed; `profile_floor_s` is one pass
lower-casing and splitting every sentence, in the same process (`profile_ratio`).

Part 2 (`distill_s`): `--pages` transcript pages distilled through the real
HTTP client against tests/fake_openai.py answering each request after
`--page-seconds` with a valid page, `--concurrency` requests at a time
(`Distiller.distill_pages`, usage rows written to a SQLite file). Serial work
outside the model shows as `distill_s` above `floor_s` = pages × page_seconds /
concurrency (`distill_ratio`); `rerun_from_cache_s` is the same run again.

Results go in docs/BENCHMARKS.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
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
    # The floor, in the same process: one pass lower-casing and splitting every sentence.
    began = time.perf_counter()
    for videos in data.values():
        for sentences in videos:
            for s in sentences:
                s.text.lower().split()
    floor = time.perf_counter() - began
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
        "profile_floor_s": round(floor, 2),
        "profile_ratio": round(seconds / floor, 1) if floor else None,
        "habits_planted": planted,
        "habits_found": found,  # a planted habit listed whole
        "phrases_not_habits": wrong,  # a listed phrase that is no part of a habit
    }


def canned_page(t) -> dict:
    """A page the checks accept: a section per four minutes, its body the sentences said there."""
    sections = []
    chunk: list[TimedSentence] = []
    for s in t.sentences:
        chunk.append(s)
        if s.end - chunk[0].start >= 240 or s is t.sentences[-1]:
            body = " ".join(x.text for x in chunk)[:1500]
            sections.append({"heading": " ".join(chunk[0].text.split()[:5]), "body": body,
                             "start_time": chunk[0].start, "end_time": chunk[-1].end})
            chunk = []
    return {"title": t.title, "summary": t.sentences[0].text[:200], "tags": ["bench"],
            "topic_category": "General", "sections": sections}


async def bench_distill(n_pages: int, page_seconds: float, concurrency: int) -> dict:
    import tempfile

    from fake_openai import FakeOpenAI

    from tui.config import Settings
    from tui.db.engine import Database
    from tui.services.distill import DistillCache, Distiller, Transcript

    data = corpus(n_pages, max(1, n_pages // 10), seed=11)
    transcripts = []
    for creator, videos in data.items():
        for i, sentences in enumerate(videos):
            transcripts.append(Transcript(
                key=f"{creator}-{i}", creator_slug=creator, creator_name=creator,
                title=f"Video {i} by {creator}", sentences=sentences,
                duration=sentences[-1].end + 5))
    routes = [[f"Video: {t.title}\n", json.dumps(canned_page(t))] for t in transcripts]
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(routes=routes, delay=page_seconds) as srv:
        settings = Settings(data_dir=Path(tmp), llm_api_url=srv.url, llm_model="fake-model",
                            llm_read_timeout=60.0, llm_first_token_timeout=60.0)
        db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await db.init()
        distiller = Distiller(settings, cache=DistillCache(Path(tmp) / "cache"), db=db,
                              concurrency=concurrency)
        try:
            began = time.perf_counter()
            outcomes = await distiller.distill_pages(transcripts)
            seconds = time.perf_counter() - began
            began = time.perf_counter()
            await distiller.distill_pages(transcripts)
            rerun = time.perf_counter() - began
        finally:
            await distiller.aclose()
            await db.dispose()
        requests = len(srv.chat_requests)
    statuses: dict[str, int] = {}
    for o in outcomes:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    return {
        "pages": n_pages,
        "distill_s": round(seconds, 2),
        "concurrency": concurrency,
        "page_seconds": page_seconds,
        "floor_s": round(n_pages * page_seconds / concurrency, 2),
        "distill_ratio": round(seconds / (n_pages * page_seconds / concurrency), 2),
        "statuses": statuses,
        "requests": requests,
        "rerun_from_cache_s": round(rerun, 2),
    }


def bench_check_cpu(n_pages: int, warm_up: int = 10) -> dict:
    """CPU (`time.process_time`, not wall: the machine is shared) of `check_page` on the
    canned pages of `n_pages` bench transcripts, after `warm_up` others."""
    from tui.services.distill import Transcript, check_page

    data = corpus(n_pages + warm_up, max(1, (n_pages + warm_up) // 10), seed=11)
    pages = []
    for creator, videos in data.items():
        for i, sentences in enumerate(videos):
            t = Transcript(key=f"{creator}-{i}", creator_slug=creator, creator_name=creator,
                           title=f"Video {i} by {creator}", sentences=sentences,
                           duration=sentences[-1].end + 5)
            pages.append((t, canned_page(t)))
    for t, page in pages[:warm_up]:
        check_page(page, t)
    began = time.process_time()
    accepted = sum(check_page(page, t)[0] is not None for t, page in pages[warm_up:])
    cpu = time.process_time() - began
    return {"check_pages": len(pages) - warm_up, "check_accepted": accepted,
            "check_cpu_ms_per_page": round(cpu * 1000 / max(1, len(pages) - warm_up), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--transcripts", type=int, default=1000)
    parser.add_argument("--creators", type=int, default=100)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--page-seconds", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--check-cpu", type=int, default=0, metavar="PAGES",
                        help="also the CPU per page of the section check on PAGES canned pages")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = bench_profiles(args.transcripts, args.creators)
    if args.check_cpu > 0:
        result.update(bench_check_cpu(args.check_cpu))
    if args.pages > 0:
        result.update(asyncio.run(bench_distill(args.pages, args.page_seconds, args.concurrency)))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
