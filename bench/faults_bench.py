"""Fault figures for docs/RELIABILITY.md, measured against real sockets and processes.

    .venv/bin/python bench/faults_bench.py [--runs N] [--only NAME ...]

Sections (names for --only):
  fallback  time to the first token when the primary refuses connections, answers 500,
            or stalls (first-token timeout 1 s), against a healthy primary
  redis     start-up with no Redis, a closed Redis port and a Redis that accepts connections
            but never answers: `open_history` (what start-up waits for), and the whole
            app until its services are ready (Textual pilot)
  memory    a 200,000-token answer through ChatService and through the TUI: tracemalloc
            peak and the process's peak RSS growth, against a 13-token answer
  import    peak RSS of `chrysopedia import` refusing a sparse 200 MB file and a file
            nested 100,000 levels deep (each in a fresh child process)
Nothing here is asserted: the tests assert structure (caps, statuses), this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_openai import FakeOpenAI, unused_port  # noqa: E402

from tui.config import Settings  # noqa: E402


def ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms over {len(values)} runs")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def kb_database(tmp: Path):
    from tui.commands._common import open_database
    from tui.db.importer import import_path

    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp / 'bench.db'}", data_dir=tmp)
    db = await open_database(settings, load_bundled=False)
    await import_path(db, ROOT / "tests" / "data" / "mini_kb.json")
    return settings, db


async def first_token(svc) -> tuple[float, bool]:
    from tui.services.chat import Done, Token

    t0 = time.perf_counter()
    first = None
    fallback = False
    async with contextlib.aclosing(svc.stream_response("parallel compression")) as events:
        async for event in events:
            if isinstance(event, Token) and first is None:
                first = time.perf_counter() - t0
            if isinstance(event, Done):
                fallback = event.fallback_used
    return first if first is not None else float("nan"), fallback


async def bench_fallback(runs: int) -> None:
    from tui.services.chat import ChatService
    from tui.services.history import open_history

    print("## fallback: time to the first token")
    with tempfile.TemporaryDirectory() as d, FakeOpenAI(model="p") as primary, \
            FakeOpenAI(model="f") as fallback:
        base, db = await kb_database(Path(d))
        cases = {
            "healthy primary": (primary.url, "normal"),
            "primary refuses connections": (f"http://127.0.0.1:{unused_port()}/v1", None),
            "primary answers HTTP 500": (primary.url, "error500"),
            "primary answers HTTP 429": (primary.url, "error429"),
            "primary stalls (first-token timeout 1 s)": (primary.url, "stall"),
        }
        for name, (url, mode) in cases.items():
            settings = base.with_overrides(
                llm_api_url=url, llm_model="p", llm_fallback_url=fallback.url,
                llm_fallback_model="f", llm_first_token_timeout=1.0)
            if mode:
                primary.set_mode(mode)
            memory = await open_history(settings, db)
            svc = ChatService(settings, db, memory)
            times, used = [], set()
            n = min(runs, 3) if mode == "stall" else runs
            for _ in range(n):
                t, fb = await first_token(svc)
                times.append(t)
                used.add(fb)
            await svc.aclose()
            await memory.close()
            print(f"| {name} | {ms(times)} | fallback used: {sorted(used)} |")
        await db.dispose()


async def bench_redis(runs: int) -> None:
    from test_app_support import make_test_app

    print("## redis: app start-up until the services are ready")

    async def silent():
        async def handle(reader, writer):
            await reader.read()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        return server, server.sockets[0].getsockname()[1]

    server, silent_port = await silent()
    with tempfile.TemporaryDirectory() as d:
        base, db = await kb_database(Path(d))
        await db.dispose()
        cases = {
            "no Redis configured": None,
            "Redis port closed": f"redis://127.0.0.1:{unused_port()}/0",
            "Redis accepts, never answers": f"redis://127.0.0.1:{silent_port}/0",
        }
        from tui.db.engine import Database
        from tui.services.history import open_history

        print("open_history (what start-up waits for):")
        db = Database(base.database_url)
        await db.init()
        for name, url in cases.items():
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                store = await open_history(base.with_overrides(redis_url=url), db)
                times.append(time.perf_counter() - t0)
                await store.close()
            print(f"| {name} | {ms(times)} | memory: {store.state.backend} |")
        await db.dispose()
        print("the whole app, first frame to services ready (noisy: shared CPU):")
        for name, url in cases.items():
            times = []
            for _ in range(runs):
                app = make_test_app(base.with_overrides(redis_url=url))
                t0 = time.perf_counter()
                async with app.run_test(size=(120, 40)) as pilot:
                    while not app.ready.is_set():
                        await pilot.pause(0.005)
                    times.append(time.perf_counter() - t0)
                    memory = app.status_bar.fields["memory"]
            print(f"| {name} | {ms(times)} | memory: {memory} |")
    server.close()


async def bench_memory() -> None:
    from test_app_support import make_test_app, wait_until

    from tui.services.chat import ChatService
    from tui.services.history import open_history

    print("## memory: a 200,000-token answer (capped at MAX_ANSWER_CHARS)")
    with tempfile.TemporaryDirectory() as d, FakeOpenAI(model="p") as server:
        base, db = await kb_database(Path(d))
        settings = base.with_overrides(llm_api_url=server.url, llm_model="p")
        memory = await open_history(settings, db)
        svc = ChatService(settings, db, memory)
        for label, options in (("13 tokens", {}), ("200,000 tokens", {"tokens": ["lorem "],
                                                                       "count": 200_000})):
            server.set_mode("normal", **options)
            gc.collect()
            rss0 = rss_mb()
            t0 = time.perf_counter()
            await first_token(svc)
            elapsed = time.perf_counter() - t0
            tracemalloc.start()
            await first_token(svc)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"| ChatService, {label} | tracemalloc peak {peak / 1e6:.1f} MB | peak RSS "
                  f"+{rss_mb() - rss0:.0f} MB | {elapsed:.2f} s | server sent "
                  f"{server.chat_requests[-1].tokens_sent} tokens |")
        await svc.aclose()
        await memory.close()
        await db.dispose()

        app_settings = settings
        for label, options in (("13 tokens", {}), ("200,000 tokens", {"tokens": ["lorem "],
                                                                       "count": 200_000})):
            server.set_mode("normal", **options)
            # Twice: timed without tracemalloc (it slows Python several times), then traced.
            row = {}
            for traced in (False, True):
                app = make_test_app(app_settings)
                async with app.run_test(size=(120, 40)) as pilot:
                    await wait_until(pilot, app.ready.is_set)
                    gc.collect()
                    rss0 = rss_mb()
                    if traced:
                        tracemalloc.start()
                    t0 = time.perf_counter()
                    app.prompt.load_text("parallel compression")
                    await pilot.press("enter")
                    await wait_until(pilot, lambda a=app: a.conversation.answers and
                                     a.conversation.answers[-1].status == "answered",
                                     timeout=300)
                    if traced:
                        row["peak"] = tracemalloc.get_traced_memory()[1]
                        tracemalloc.stop()
                    else:
                        row["seconds"] = time.perf_counter() - t0
                        row["rss"] = rss_mb() - rss0
                    raw = len(app.conversation.answers[-1].raw)
            print(f"| TUI, {label} | tracemalloc peak {row['peak'] / 1e6:.1f} MB | peak RSS "
                  f"+{row['rss']:.0f} MB | {row['seconds']:.2f} s | answer kept {raw:,} chars |")


def bench_import() -> None:
    print("## import: refusing absurd files (peak RSS of the child process)")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        huge = tmp / "huge.json"
        with open(huge, "wb") as f:
            f.truncate(200 * 1024 * 1024)
        nested = tmp / "nested.json"
        nested.write_text('{"format": "chrysopedia.kb/1", "creators": ' + "[" * 100_000
                          + "]" * 100_000 + "}")
        small = tmp / "small.json"
        small.write_text((ROOT / "tests" / "data" / "mini_kb.json").read_text())
        for name, path in (("a valid mini KB (baseline)", small), ("sparse 200 MB file", huge),
                           ("100,000 levels of nesting", nested)):
            code = (
                "import resource, sys; from tui.cli import main; rc = main(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
                "raise SystemExit(rc)"
            )
            db = tmp / f"{path.stem}.db"
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", code, "--db", f"sqlite:///{db}", "import", str(path)],
                capture_output=True, text=True, cwd=str(ROOT))
            elapsed = time.perf_counter() - t0
            peak = int(done.stderr.strip().splitlines()[-1]) / 1024
            first = (done.stdout + done.stderr).strip().splitlines()[0][:80]
            print(f"| {name} | exit {done.returncode} | peak RSS {peak:.0f} MB | "
                  f"{elapsed:.1f} s | {first} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=["fallback", "redis", "memory", "import"])
    args = parser.parse_args()
    if "import" in args.only:
        bench_import()
    if "fallback" in args.only:
        asyncio.run(bench_fallback(args.runs))
    if "redis" in args.only:
        asyncio.run(bench_redis(max(3, args.runs // 2)))
    if "memory" in args.only:
        asyncio.run(bench_memory())


if __name__ == "__main__":
    main()
