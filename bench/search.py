"""Search benchmark: synthetic knowledge bases of growing size, full `search()` latency.

    .venv/bin/python bench/search.py [--sizes 1000,10000,100000] [--json] [--hybrid]
                                     [--db-url postgresql+asyncpg://...[?schema=NAME]]
                                     [--keep] [--reuse] [--queries 100]

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

On PostgreSQL the rows go in by COPY; `?schema=NAME` names the benchmark's schema (else a
random one), `--keep` keeps it (with the build's figures) and `--reuse` queries a kept one
instead of building it again: a 1,000,000-section KB is built once and queried many times.
The schema is dropped at the end unless `--keep`. Each kind also reports the CPU one search
used (`client_cpu_ms`; on PostgreSQL `server_cpu_ms`, the connection's server process),
which a loaded machine does not inflate as it does the wall times.

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
    """Insert `size` sections directly (the importer's checks are not what is measured).
    On PostgreSQL the rows go in by COPY (the same rows, drawn in the same order)."""
    rng = corpus.rng
    pages = max(1, size // SECTIONS_PER_PAGE)
    t0 = time.perf_counter()
    async with db.engine.begin() as conn:
        copy = None
        if conn.dialect.name == "postgresql":
            apg = (await conn.get_raw_connection()).driver_connection
            schema = (await conn.execute(text("SELECT current_schema()"))).scalar()

            async def copy(table, rows: list[dict]) -> None:
                columns = list(rows[0])
                await apg.copy_records_to_table(
                    table.__tablename__, schema_name=schema, columns=columns,
                    records=[tuple(json.dumps(r[c]) if c == "tags" else r[c] for c in columns)
                             for r in rows])

        async def put(table, rows: list[dict]) -> None:
            if copy is not None:
                await copy(table, rows)
            else:
                await conn.execute(insert(table), rows)

        await put(Creator, [{"id": i + 1, "slug": f"creator-{i}", "name": f"Creator {i}"}
                            for i in range(CREATORS)])
        batch = 5000
        for start in range(0, pages, batch):
            await put(Video, [{"id": f"v{i}", "creator_id": i % CREATORS + 1, "title": corpus.phrase(3, 6),
                               "filename": f"v{i}.mp4"} for i in range(start, min(pages, start + batch))])
        for start in range(0, pages, batch):
            rows = []
            for p in range(start, min(pages, start + batch)):
                rows.append({
                    "id": p + 1, "slug": f"page-{p}", "title": corpus.phrase(3, 6).title(),
                    "creator_id": p % CREATORS + 1, "topic_category": "Mixing",
                    "tags": corpus.words(rng.randint(2, 4)), "summary": corpus.phrase(15, 25),
                    "origin": "kb",
                })
            await put(TechniquePage, rows)
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
            await put(Section, rows)
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


async def pg_backends(db: Database) -> list[int]:
    """The server process behind the pool's connection. The searches run one at a time,
    so the pool holds one connection (checked: `pool_connections` in the output)."""
    async with db.engine.connect() as conn:
        return [(await conn.execute(text("SELECT pg_backend_pid()"))).scalar()]


def proc_cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes (0 for one not readable)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def pg_target(args, size: int) -> tuple[str, str]:
    """(asyncpg DSN, schema) for one size: `?schema=NAME` on the URL names the schema
    (NAME_SIZE when several sizes are run), else a fresh random one."""
    from sqlalchemy.engine import make_url

    url = make_url(args.db_url)
    named = url.query.get("schema")
    if isinstance(named, tuple):
        named = named[0]
    if named:
        schema = named if len(args.size_list) == 1 else f"{named}_{size}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
    dsn = url.difference_update_query(["schema"]).set(drivername="postgresql")
    return dsn.render_as_string(hide_password=False), schema


async def pg_built(dsn: str, schema: str, size: int) -> dict | None:
    """The build figures of a kept benchmark schema holding `size` sections, or None."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        raw = None
        if await conn.fetchval("SELECT to_regclass(quote_ident($1) || '.chrysopedia_meta') IS NOT NULL",
                               schema):
            raw = await conn.fetchval(
                f'SELECT value FROM "{schema}".chrysopedia_meta WHERE key = \'bench_build\'')
    finally:
        await conn.close()
    built = json.loads(raw) if raw else None
    return built if built and built.get("sections") == size else None


async def bench_size(size: int, args, vocab: list[str]) -> dict:
    corpus = Corpus(vocab, seed=size)
    tmp = tempfile.mkdtemp(prefix="chrysopedia-bench-")
    path: Path | None = None
    schema = None
    built: dict | None = None
    if args.db_url:
        import asyncpg

        dsn, schema = pg_target(args, size)
        if args.reuse:
            built = await pg_built(dsn, schema, size)
            if built is None:
                print(f"--reuse: schema {schema} holds no {size}-section benchmark KB; building it",
                      file=sys.stderr)
        if built is None:
            conn = await asyncpg.connect(dsn)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            await conn.execute(f'CREATE SCHEMA "{schema}"')
            await conn.close()
        db = Database(args.db_url, schema=schema)
    else:
        path = Path(tmp) / "bench.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        t_init = time.perf_counter()
        await db.init()
        if built is not None:
            out: dict = {**built, "reused": True, "init_s": round(time.perf_counter() - t_init, 2)}
        else:
            out = {"sections": size, **(await build(db, size, corpus))}
        if path is not None:
            async with db.engine.connect() as conn:
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            out["db_mb"] = round(db_size(path) / 1e6, 1)
        else:
            async with db.engine.begin() as conn:
                size_bytes = (await conn.execute(text(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                ))).scalar()
                out["db_mb"] = round(float(size_bytes or 0) / 1e6, 1)
                if built is None and args.keep:
                    await conn.execute(text("DELETE FROM chrysopedia_meta WHERE key = 'bench_build'"))
                    await conn.execute(text(
                        "INSERT INTO chrysopedia_meta (key, value) VALUES ('bench_build', :v)"),
                        {"v": json.dumps({k: out[k] for k in ("sections", "insert_s", "index_build_s")})})
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
            backends = await pg_backends(db) if schema else []
            for kind, qs in queries.items():
                times, cpu = [], []
                tiers: dict[str, int] = {}
                cpu0, server0 = time.process_time(), proc_cpu_s(backends)
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
                    # CPU a search costs, which the machine's load does not inflate: this
                    # process (the cascade, SQLAlchemy, the driver) and, on PostgreSQL, the
                    # server processes of the pool's connections (from /proc)
                    "client_cpu_ms": round((time.process_time() - cpu0) * 1000 / len(qs), 2),
                }
                if backends:
                    figures[kind]["server_cpu_ms"] = round(
                        (proc_cpu_s(backends) - server0) * 1000 / len(qs), 2)
            if backends:
                out["pool_connections"] = db.engine.pool.checkedin() + db.engine.pool.checkedout()
            return figures

        search_mod.set_semantic(False)
        try:
            load_before = os.getloadavg()[0]
            out["queries"] = await timed()
            # the machine is shared: the 1-minute load average before and after the timing
            out["load_average_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
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
        if schema and not args.keep:
            import asyncpg

            conn = await asyncpg.connect(dsn)
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
    parser.add_argument("--keep", action="store_true",
                        help="PostgreSQL: keep the benchmark schema (name it with ?schema= on the URL)")
    parser.add_argument("--reuse", action="store_true",
                        help="PostgreSQL: query a schema kept by --keep instead of building it again")
    parser.add_argument("--profile", choices=("common", "rare", "multi", "typo", "creator"),
                        help="cProfile one kind's queries (SQLite; hybrid with --hybrid)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.size_list = sizes
    if (args.keep or args.reuse) and not args.db_url:
        parser.error("--keep and --reuse are for PostgreSQL (--db-url postgresql+asyncpg://...?schema=NAME)")
    vocab = bundled_vocabulary()
    results = []
    for size in sizes:
        result = asyncio.run(bench_size(size, args, vocab))
        results.append(result)
        if not args.json:
            print(
                f"{size:>7} sections  insert {result['insert_s']:>6.2f} s  index {result['index_build_s']:>6.2f} s"
                f"  db {result['db_mb']:>7.1f} MB  load {result['load_average_1m']}"
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
                        f" ms  max {q['max_ms']:>7.2f} ms  cpu p50 {q['cpu_p50_ms']:>6.2f}"
                        f" / p95 {q['cpu_p95_ms']:>6.2f} ms (server {q.get('server_cpu_ms', 0):.2f}"
                        f" ms)  tiers {q['tiers']}"
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
