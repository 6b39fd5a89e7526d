"""Search benchmark: synthetic knowledge bases of growing size, full `search()` latency.

    .venv/bin/python bench/search.py [--sizes 1000,10000,100000] [--json] [--hybrid]
                                     [--db-url postgresql+asyncpg://...] [--queries 100]

For each size (number of sections) it builds a synthetic knowledge base whose
words are drawn from the bundled pages with Zipf-like frequencies (the word of
rank r is drawn with weight 1/r), indexes it, and reports the index build time,
the database size and the p50/p95 latency of the full `SearchService.search()`
call for four kinds of query:

- common: one or two of the 10 most frequent words (each in most sections)
- rare: one word from the vocabulary's tail
- multi: three or four mid-frequency words taken from one section
- typo: a mid-frequency word with one letter changed, plus a second word
- creator: a "multi" query scoped to one of the synthetic creators

Every query runs once after a warm-up pass over a few of them. Results go in
docs/BENCHMARKS.md by hand.

--hybrid also embeds every section with the local model (`embed_sections_per_s`), and
times each query kind twice in the same process: lexical only (`queries`) and lexical +
semantic fused (`hybrid`); `vector_mb` is the in-process matrix the semantic side scores.

Besides wall-clock latency, each kind reports the process's CPU time per search
(`cpu_p50_ms`, `cpu_p95_ms`: every thread of the process, so a helper thread's spinning
counts too). On a shared machine the wall clock also counts the time a search waited for
a core; CPU time is what the code itself spent, and moves far less with the load.

--profile KIND (SQLite) runs that kind's queries once more through the synchronous
cascade under cProfile and prints the costliest functions and the call count: a
measure of the work that does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from tui.db import search_index, vectors  # noqa: E402
from tui.db.engine import Database  # noqa: E402
from tui.db.models import Creator, Section, TechniquePage, Video  # noqa: E402
from tui.services import search as search_mod  # noqa: E402
from tui.services.search import STOPWORDS, SearchService  # noqa: E402

SECTIONS_PER_PAGE = 4
CREATORS = 40


def bundled_vocabulary() -> list[str]:
    """Words of the bundled KB (or the test mini KB), most frequent first."""
    files = sorted((ROOT / "tui" / "data" / "kb").glob("*.json")) or [ROOT / "tests/data/mini_kb.json"]
    counts: dict[str, int] = {}
    for file in files:
        doc = json.loads(file.read_text())
        for page in doc.get("techniques", []):
            chunks = [page.get("title", ""), page.get("summary", ""), " ".join(page.get("tags") or [])]
            chunks += [f"{s.get('heading', '')} {s.get('body', '')}" for s in page.get("sections", [])]
            for word in re.findall(r"[a-z]+", " ".join(chunks).lower()):
                if len(word) >= 3:
                    counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: (-counts[w], w))


class Corpus:
    def __init__(self, vocab: list[str], seed: int) -> None:
        self.vocab = vocab
        self.rng = random.Random(seed)
        self.weights = [1.0 / (rank + 1) for rank in range(len(vocab))]
        self.cum = []
        total = 0.0
        for w in self.weights:
            total += w
            self.cum.append(total)

    def words(self, k: int) -> list[str]:
        return self.rng.choices(self.vocab, cum_weights=self.cum, k=k)

    def phrase(self, lo: int, hi: int) -> str:
        return " ".join(self.words(self.rng.randint(lo, hi)))


async def build(db: Database, size: int, corpus: Corpus) -> dict:
    """Insert `size` sections directly (the importer's checks are not what is measured)."""
    rng = corpus.rng
    pages = max(1, size // SECTIONS_PER_PAGE)
    t0 = time.perf_counter()
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(Creator),
            [{"id": i + 1, "slug": f"creator-{i}", "name": f"Creator {i}"} for i in range(CREATORS)],
        )
        await conn.execute(
            insert(Video),
            [{"id": f"v{i}", "creator_id": i % CREATORS + 1, "title": corpus.phrase(3, 6),
              "filename": f"v{i}.mp4"} for i in range(pages)],
        )
        batch = 5000
        for start in range(0, pages, batch):
            rows = []
            for p in range(start, min(pages, start + batch)):
                rows.append({
                    "id": p + 1, "slug": f"page-{p}", "title": corpus.phrase(3, 6).title(),
                    "creator_id": p % CREATORS + 1, "topic_category": "Mixing",
                    "tags": corpus.words(rng.randint(2, 4)), "summary": corpus.phrase(15, 25),
                })
            await conn.execute(insert(TechniquePage), rows)
        sid = 0
        for start in range(0, size, batch):
            rows = []
            for _ in range(start, min(size, start + batch)):
                page = sid // SECTIONS_PER_PAGE
                if page >= pages:
                    page = pages - 1
                rows.append({
                    "id": sid + 1, "page_id": page + 1, "position": sid % SECTIONS_PER_PAGE,
                    "anchor": f"s{sid}", "heading": corpus.phrase(2, 5).capitalize(),
                    "body": corpus.phrase(50, 110), "video_id": f"v{page}",
                    "start_time": 30.0 * (sid % 20), "end_time": 30.0 * (sid % 20) + 30,
                })
                sid += 1
            await conn.execute(insert(Section), rows)
    t1 = time.perf_counter()
    async with db.engine.begin() as conn:
        await search_index.rebuild_index(conn)
    t2 = time.perf_counter()
    return {"insert_s": round(t1 - t0, 2), "index_build_s": round(t2 - t1, 2)}


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "replace"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    letter = rng.choice([c for c in "aeioustrn" if c != word[i]])
    return word[:i] + letter + word[i + 1 :]


def make_queries(vocab: list[str], n: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    content = [w for w in vocab if w not in STOPWORDS]
    common = content[:10]
    mid = content[30:400] or content
    tail = content[len(content) // 2 :] or content
    long_mid = [w for w in mid if len(w) >= 6] or mid
    return {
        "common": [" ".join(rng.sample(common, rng.randint(1, 2))) for _ in range(n)],
        "rare": [rng.choice(tail) for _ in range(n)],
        "multi": [" ".join(rng.sample(mid, rng.randint(3, 4))) for _ in range(n)],
        "typo": [f"{typo(rng.choice(long_mid), rng)} {rng.choice(mid)}" for _ in range(n)],
        "creator": [" ".join(rng.sample(mid, rng.randint(3, 4))) for _ in range(n)],
    }


def unbounded_reference(path: Path, queries: list[str]) -> dict:
    """What the common-word queries would cost if every matching section were scored:
    plain FTS5 bm25 over all matches (the search service never does this)."""
    import sqlite3

    conn = sqlite3.connect(path)
    times, matches = [], []
    try:
        for q in queries:
            expr = " OR ".join(f'"{w}"' for w in q.split())
            matches.append(conn.execute(
                "SELECT count(*) FROM search_fts WHERE search_fts MATCH ?", (expr,)).fetchone()[0])
            t0 = time.perf_counter()
            conn.execute(
                "SELECT rowid, bm25(search_fts, 10.0, 8.0, 5.0, 2.0, 1.0) AS r FROM search_fts "
                "WHERE search_fts MATCH ? ORDER BY r LIMIT 40", (expr,)).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "matches_p50": int(statistics.median(matches))}


def profile_kind(path: Path, queries: list[str], kind: str, semantic: bool) -> dict:
    """cProfile of the synchronous cascade (what one search runs in the driver's thread)
    over the queries, on the benchmark's database: the costliest functions are printed
    to stderr, the call count returned."""
    import cProfile
    import io
    import pstats
    import sqlite3

    conn = sqlite3.connect(path, check_same_thread=False)
    search_mod.set_semantic(semantic)
    try:
        def run(i: int, q: str) -> None:
            creator = f"creator-{i % CREATORS}" if kind == "creator" else None
            search_mod._Run(search_mod._SQLiteExec(conn), "sqlite", 10, f"profile:{path}").search(
                q, creator)

        for i, q in enumerate(queries[:5]):  # warm-up: the matrix, the caches
            run(i, q)
        profiler = cProfile.Profile()
        profiler.enable()
        for i, q in enumerate(queries):
            run(i, q)
        profiler.disable()
    finally:
        search_mod.set_semantic(True)
        conn.close()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats("tottime").print_stats(25)
    print(f"profile of {len(queries)} {kind!r} queries ({'hybrid' if semantic else 'lexical'}):",
          file=sys.stderr)
    print(buf.getvalue(), file=sys.stderr)
    return {"kind": kind, "queries": len(queries), "function_calls": stats.total_calls,
            "semantic": semantic}


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def bench_size(size: int, args, vocab: list[str]) -> dict:
    corpus = Corpus(vocab, seed=size)
    tmp = tempfile.mkdtemp(prefix="chrysopedia-bench-")
    path: Path | None = None
    schema = None
    if args.db_url:
        import asyncpg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        dsn = args.db_url.replace("postgresql+asyncpg", "postgresql")
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.close()
        db = Database(args.db_url, schema=schema)
    else:
        path = Path(tmp) / "bench.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await db.init()
        out: dict = {"sections": size, **(await build(db, size, corpus))}
        if path is not None:
            async with db.engine.connect() as conn:
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            out["db_mb"] = round(db_size(path) / 1e6, 1)
        else:
            async with db.engine.connect() as conn:
                size_bytes = (await conn.execute(text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                ))).scalar()
                out["db_mb"] = round(float(size_bytes or 0) / 1e6, 1)
        if args.hybrid:
            embedder = vectors.current_embedder()  # loaded before the clock starts
            t0 = time.perf_counter()
            async with db.engine.begin() as conn:
                embedded = await vectors.update_sections(conn, None, embedder=embedder)
            out["embed_s"] = round(time.perf_counter() - t0, 2)
            out["embed_sections_per_s"] = round(embedded / max(out["embed_s"], 1e-9))
        service = SearchService(None)
        queries = make_queries(vocab, args.queries, seed=size + 1)

        def scoped(kind: str, i: int) -> str | None:
            return f"creator-{i % CREATORS}" if kind == "creator" else None

        async def timed() -> dict:
            for qs in queries.values():  # warm-up: page cache, statement cache, the matrix
                for q in qs[:5]:
                    await service.search(q, db=db)
            figures = {}
            for kind, qs in queries.items():
                times, cpu = [], []
                tiers: dict[str, int] = {}
                for i, q in enumerate(qs):
                    c0, t0 = time.process_time(), time.perf_counter()
                    result = await service.search(q, db=db, creator=scoped(kind, i))
                    times.append((time.perf_counter() - t0) * 1000)
                    cpu.append((time.process_time() - c0) * 1000)
                    tiers[result["cascade_tier"]] = tiers.get(result["cascade_tier"], 0) + 1
                times.sort()
                cpu.sort()
                figures[kind] = {
                    "p50_ms": round(statistics.median(times), 2),
                    "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 2),
                    "max_ms": round(times[-1], 2),
                    "cpu_p50_ms": round(statistics.median(cpu), 2),
                    "cpu_p95_ms": round(cpu[max(0, int(len(cpu) * 0.95) - 1)], 2),
                    "tiers": tiers,
                }
            return figures

        search_mod.set_semantic(False)
        try:
            out["queries"] = await timed()
        finally:
            search_mod.set_semantic(True)
        if args.hybrid:
            out["hybrid"] = await timed()
            matrix = max(vectors._matrices.values(), key=lambda m: len(m.ids), default=None)
            out["vector_mb"] = round(matrix.nbytes / 1e6, 1) if matrix is not None else 0.0
        if path is not None:
            out["common_unbounded"] = unbounded_reference(path, queries["common"][:30])
        if args.profile and path is not None:
            out["profile"] = profile_kind(path, queries[args.profile], args.profile,
                                          semantic=args.hybrid)
        return out
    finally:
        await db.dispose()
        if schema:
            import asyncpg

            conn = await asyncpg.connect(args.db_url.replace("postgresql+asyncpg", "postgresql"))
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.close()
        if path is not None:
            for p in path.parent.glob("*"):
                p.unlink()
            os.rmdir(path.parent)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="section counts, comma-separated")
    parser.add_argument("--queries", type=int, default=100, help="queries per kind")
    parser.add_argument("--db-url", help="a postgresql+asyncpg:// URL (default: a temporary SQLite file)")
    parser.add_argument("--json", action="store_true", help="one JSON document")
    parser.add_argument("--hybrid", action="store_true",
                        help="also embed the sections and time lexical + semantic search")
    parser.add_argument("--profile", choices=("common", "rare", "multi", "typo", "creator"),
                        help="cProfile one kind's queries (SQLite; hybrid with --hybrid)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    vocab = bundled_vocabulary()
    results = []
    for size in sizes:
        result = asyncio.run(bench_size(size, args, vocab))
        results.append(result)
        if not args.json:
            print(
                f"{size:>7} sections  insert {result['insert_s']:>6.2f} s  index {result['index_build_s']:>6.2f} s"
                f"  db {result['db_mb']:>7.1f} MB"
            )
            for label in ("queries", "hybrid"):
                if label not in result:
                    continue
                if label == "hybrid":
                    print(f"          hybrid: embed {result['embed_sections_per_s']} sections/s, "
                          f"vectors {result['vector_mb']} MB")
                for kind, q in result[label].items():
                    print(
                        f"          {kind:<7} p50 {q['p50_ms']:>7.2f} ms  p95 {q['p95_ms']:>7.2f}"
                        f" ms  max {q['max_ms']:>7.2f} ms  cpu p50 {q['cpu_p50_ms']:>6.2f} ms"
                        f"  p95 {q['cpu_p95_ms']:>6.2f} ms  tiers {q['tiers']}"
                    )
            if "common_unbounded" in result:
                u = result["common_unbounded"]
                print(
                    f"          (common words scored over all {u['matches_p50']} matches, "
                    f"plain FTS5: p50 {u['p50_ms']:.2f} ms)"
                )
            sys.stdout.flush()
    if args.json:
        print(json.dumps({"backend": "postgresql" if args.db_url else "sqlite",
                          "vocabulary": len(vocab), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
