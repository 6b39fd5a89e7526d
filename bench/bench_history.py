"""Conversation memory benchmarks: start-up delay with an unreachable Redis, concurrent appends.

    .venv/bin/python bench/bench_history.py [--redis redis://127.0.0.1:6379/0] [--pg DSN]

Uses its own key prefix on the given Redis (keys deleted afterwards) and a
throw-away SQLite file (and a PostgreSQL schema when --pg answers).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tui.config import Settings
from tui.db.engine import Database
from tui.services.history import LocalHistory, RedisHistory, open_history, validate_conversation_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def startup(db, url: str, runs: int = 5) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        store = await open_history(Settings(redis_url=url), db)
        times.append(time.perf_counter() - t0)
        assert store.state.backend == "local", store.state
        await store.close()
    return times


async def silent_server():
    """Accepts connections and never answers: the worst case for the start-up probe."""
    conns = []

    async def handle(reader, writer):
        conns.append(writer)
        await reader.read()  # hold the connection open, say nothing

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def redis_concurrency(url: str, clients: int, per_client: int, cap: int) -> dict:
    prefix = f"bench-{uuid.uuid4()}:chrysopedia:chat:"
    stores = [RedisHistory(url, prefix=prefix, max_messages=cap) for _ in range(clients)]
    cid = validate_conversation_id(None)

    async def one(store, c, i):
        await store.append(cid, [{"role": "user", "content": f"q{c}-{i}"},
                                 {"role": "assistant", "content": f"a{c}-{i}"}])

    t0 = time.perf_counter()
    await asyncio.gather(*(one(s, c, i) for c, s in enumerate(stores) for i in range(per_client)))
    elapsed = time.perf_counter() - t0
    final = await stores[0].load(cid)
    await stores[0].client.delete(prefix + cid)
    for s in stores:
        await s.close()
    return {"appends": clients * per_client, "seconds": elapsed, "stored": len(final),
            "expected": min(cap, 2 * clients * per_client), "retries": 0}


async def local_concurrency(db, clients: int, per_client: int, cap: int) -> dict:
    stores = [LocalHistory(db, max_messages=cap) for _ in range(clients)]
    cid = validate_conversation_id(None)

    async def one(store, c, i):
        await store.append(cid, [{"role": "user", "content": f"q{c}-{i}"},
                                 {"role": "assistant", "content": f"a{c}-{i}"}])

    t0 = time.perf_counter()
    await asyncio.gather(*(one(s, c, i) for c, s in enumerate(stores) for i in range(per_client)))
    elapsed = time.perf_counter() - t0
    final = await stores[0].load(cid)
    await stores[0].delete(cid)
    return {"appends": clients * per_client, "seconds": elapsed, "stored": len(final),
            "expected": min(cap, 2 * clients * per_client),
            "retries": sum(s.conflicts for s in stores)}


async def fault_turns(db, tmp: Path) -> dict:
    """Time of the first turn after a private redis-server is killed, and after it hangs."""
    import os
    import shutil
    import signal
    import subprocess

    exe = shutil.which("redis-server")
    if exe is None:
        return {}
    out = {}
    for fault in ("killed", "hung"):
        port = free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.02)
            store = await open_history(Settings(redis_url=f"redis://127.0.0.1:{port}/0"), db)
            cid = validate_conversation_id(None)
            await store.append(cid, "q1", "a1")
            if fault == "killed":
                proc.kill()
                proc.wait()
            else:
                os.kill(proc.pid, signal.SIGSTOP)
            t0 = time.perf_counter()
            history = await store.load(cid)
            await store.append(cid, "q2", "a2")
            out[fault] = (time.perf_counter() - t0, len(history), store.state.message)
            await store.close()
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait()
    return out


def fmt(times: list[float]) -> str:
    return (f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
            f"over {len(times)} runs")


async def main(args) -> None:
    tmp = Path(tempfile.mkdtemp())
    db = Database(f"sqlite+aiosqlite:///{tmp / 'bench.db'}")
    await db.init()
    print("start-up with an unreachable Redis (budget 0.5 s):")
    print(f"  closed port (refused):           {fmt(await startup(db, f'redis://127.0.0.1:{free_port()}/0'))}")
    server, port = await silent_server()
    print(f"  silent server (accepts, no reply): {fmt(await startup(db, f'redis://127.0.0.1:{port}/0', 3))}")
    server.close()

    print("the next turn (load + append) after Redis fails mid-conversation:")
    for fault, (seconds, kept, message) in (await fault_turns(db, tmp)).items():
        print(f"  {fault:<7} {seconds * 1000:6.1f} ms, context kept: {kept} messages; {message}")

    print("concurrent appends on one conversation (2 clients x 50, cap raised to 200):")
    r = await redis_concurrency(args.redis, 2, 50, 200)
    print(f"  redis:      {r['appends']} appends in {r['seconds'] * 1000:.0f} ms, "
          f"{r['stored']}/{r['expected']} messages kept, retries {r['retries']} (Lua script)")
    r = await local_concurrency(db, 2, 50, 200)
    print(f"  sqlite:     {r['appends']} appends in {r['seconds'] * 1000:.0f} ms, "
          f"{r['stored']}/{r['expected']} messages kept, version conflicts retried {r['retries']}")
    await db.dispose()
    if args.pg:
        import asyncpg

        schema = f"bench_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(args.pg)
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            pdb = Database("postgresql+asyncpg" + args.pg[len("postgresql"):], schema=schema)
            await pdb.init()
            r = await local_concurrency(pdb, 2, 50, 200)
            print(f"  postgresql: {r['appends']} appends in {r['seconds'] * 1000:.0f} ms, "
                  f"{r['stored']}/{r['expected']} messages kept, version conflicts retried {r['retries']}")
            await pdb.dispose()
        finally:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    asyncio.run(main(parser.parse_args()))
