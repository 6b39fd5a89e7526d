"""How long an answer waits when the primary model is unreachable, before the fallback's first token.

Two unreachable primaries:
  refused   nothing listens on the port (the kernel answers RST at once);
  silent    a listening socket whose accept queue is full, so the kernel drops
            new SYNs and the TCP connect hangs — as with a blackholed address;
            only `llm_connect_timeout` (0.4 s) ends it.
For comparison, the same with the openai client's defaults (2 retries with
back-off, 5 s connect timeout), which the seed used.

Run: .venv/bin/python bench/chat_fallback.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fake_openai import FakeOpenAI, unused_port  # noqa: E402
from tui.config import Settings  # noqa: E402
from tui.services.events import Token  # noqa: E402
from tui.services.llm import Completion, ModelRouter  # noqa: E402

MESSAGES = [{"role": "user", "content": "parallel compression?"}]


def silent_port() -> tuple[int, list[socket.socket]]:
    """A port whose SYNs are dropped: listen(0) and fill the accept queue without accepting."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = [server]
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(c)
    time.sleep(0.05)
    return port, held


async def first_token_time(router: ModelRouter) -> float:
    run = Completion()
    start = time.perf_counter()
    stream = router.stream(MESSAGES, temperature=0.3, completion=run)
    try:
        async for event in stream:
            if isinstance(event, Token):
                elapsed = time.perf_counter() - start
                assert run.fallback_used
                return elapsed
    finally:
        await stream.aclose()
    raise RuntimeError("no token")


async def openai_defaults_time(primary: str, fallback: str) -> float:
    """The seed's way: default clients, fall back on APIConnectionError."""
    import openai

    start = time.perf_counter()
    a = openai.AsyncOpenAI(base_url=primary, api_key="x")
    b = openai.AsyncOpenAI(base_url=fallback, api_key="x")
    try:
        try:
            stream = await a.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            await stream.close()
        except openai.APIConnectionError:
            stream = await b.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            await stream.close()
        return time.perf_counter() - start
    finally:
        await a.close()
        await b.close()


def summary(label: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[max(0, int(round(0.95 * len(ms))) - 1)]
    return (f"| {label} | {len(ms)} | {statistics.median(ms):.1f} | {p95:.1f} | {ms[-1]:.1f} |")


async def main(runs: int) -> None:
    async with FakeOpenAI() as fallback:
        refused = f"http://127.0.0.1:{unused_port()}/v1"
        port, held = silent_port()
        silent = f"http://127.0.0.1:{port}/v1"
        rows = []
        for label, url in (("refused port", refused), ("silent port (SYN dropped)", silent)):
            settings = Settings(llm_api_url=url, llm_fallback_url=fallback.url,
                                llm_fallback_model="fb")
            router = ModelRouter(settings)
            times = [await first_token_time(router) for _ in range(runs)]
            await router.aclose()
            rows.append(summary(f"{label}, ours (connect 0.4 s, no retries)", times))
        base = [await openai_defaults_time(refused, fallback.url) for _ in range(min(runs, 5))]
        rows.append(summary("refused port, openai defaults (seed)", base))
        for s in held:
            s.close()
    print("| primary unreachable | runs | median ms | p95 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print("(time from the request to the fallback's first token; the fallback is a local fake server)")


if __name__ == "__main__":
    import logging

    logging.getLogger("chrysopedia").addHandler(logging.NullHandler())
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
