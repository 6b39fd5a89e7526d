"""Stream rendering benchmark: the real conversation pane against a per-token Markdown.append.

    .venv/bin/python bench/stream_render.py [--json] [--tokens 2000] [--rate 2000]

In one run:
0. warm-up: one 300-token answer (one-time costs of the process: lexers, imports).
1. view (median of --repeat runs, default 5): a 2,000-token Markdown answer (paragraphs, lists, bold, a code block,
   citations) streamed by the loopback fake model server as fast as it can
   send, through the real ChatService, into the real app's conversation pane
   (headless, 120x40). Timed from Enter to the whole answer on screen (the pane
   holds all of it and the next screen refresh has run).
2. baseline: the same answer from the same server through the same ChatService,
   but each token goes into a plain `Markdown` widget with `await Markdown.append(token)`;
   timed the same way (until all of it is on screen).
3. lag (median of --repeat runs): the same answer sent at `--rate` tokens/s; how long after the server
   wrote its last token the pane had it on screen (the pane's Markdown holding it
   and the next screen refresh run; sampled every millisecond). details.lag_intake_ms_all:
   when the app took in that last token (the rest of the lag is showing it);
   details.lag_cpu_s_all: the app's CPU time for each of those answers.
5. shapes (--shapes, median of --shape-repeat runs): awkward answers streamed like (1) —
   one endless list (2,000 one-line items), one 2,000-word paragraph, one huge code block
   (400 lines), a 14,000-item list (~100,000 characters, the answer cap), one 99,000-character
   paragraph line with no break (`oneline`), one 50,000-character list item (`longitem`) —
   each with its view time and its ratio to the tidy answer's (1) in the same run.
   `--shapes-only` runs the warm-up, (1) and (5) alone; `--shape NAME` picks shapes.
   `--lag-only` runs the warm-up and (3) alone, --repeat times; `--half-core` gives the app
   about half a CPU (this process on one CPU, shared with a busy loop; the server on
   another), to see the lag on a machine about half as fast.
   floor (details.floor_s, median of --repeat): the whole answer in one `Markdown.update`
   in a bare app — what Textual's Markdown costs on this machine with no streaming at all;
   details.view_to_floor is view_s over it.
4. startup: the `chrysopedia` command to first paint, in a pseudo-terminal,
   against a bare Textual app (one Static) the same way; medians of 5 runs.
   Also the app alone (`run_app` from `python -c`, without the CLI's imports).

Prints a summary, or with --json one JSON object:
tokens, view_s, baseline_s, speedup, lag_ms_at_2000_tps, startup_s, startup_ratio
(plus details). Targets: speedup >= 15, lag <= 100 ms, startup_ratio <= 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_openai import FakeOpenAI  # noqa: E402
from test_app_support import app_settings, load_mini_kb  # noqa: E402

QUESTION = "How do I set up parallel compression on drums?"
SIZE = (120, 40)


def answer_tokens(count: int) -> list[str]:
    """A Markdown answer cut into `count` word-sized tokens, as a model streams it."""
    section = [
        "## Parallel compression\n\n",
        "**Parallel compression** blends a heavily compressed copy of the drums under the dry",
        " signal, so the transients stay intact while the body and room come up [1]. ",
        "Start with the *send* at unity and bring the return up slowly [2].\n\n",
        "- Send the drum bus to an aux with a fast compressor at **10:1** [1]\n",
        "- Attack 1 ms, release 100 ms, and push 15 dB of gain reduction [1]\n",
        "- Blend the return 6 to 10 dB under the dry bus [2]\n",
        "- High-pass the return around 80 Hz so the kick stays clean [3]\n\n",
        "1. Check the phase between the two paths\n2. Level-match before judging [3]\n\n",
        "```\ndrum bus -> aux send -> comp (10:1, 1 ms, 100 ms) -> return -6 dB\n```\n\n",
        "> Trust the meter, then trust your ears [2].\n\n",
    ]
    words: list[str] = []
    for piece in section:
        # Keep spaces with the following word, as model tokenizers do.
        parts = piece.split(" ")
        words.extend([parts[0]] + [" " + p for p in parts[1:]])
    tokens: list[str] = []
    while len(tokens) < count:
        tokens.extend(words)
    return [t for t in tokens[:count]]


def split_words(text: str) -> list[str]:
    """Word-sized tokens, spaces kept with the following word."""
    tokens: list[str] = []
    for line in text.splitlines(keepends=True):
        parts = line.split(" ")
        tokens.extend(p for p in [parts[0]] + [" " + p for p in parts[1:]] if p)
    return tokens


def shape_tokens(shape: str) -> list[str]:
    """The awkward answers: one endless list, one long paragraph, one huge code block."""
    if shape == "list":
        return split_words("".join(f"- Step {k} [1]\n" for k in range(2000)))
    if shape == "list14k":
        # The worst case under the 100,000-character answer cap.
        return split_words("".join(f"- s{k}\n" for k in range(14000)))
    if shape == "paragraph":
        sentence = ("Parallel compression keeps the transients of the dry drums while the "
                    "squashed copy brings up the body and the room [1]. ")
        words = sentence.split(" ")
        text = " ".join((words * (2000 // len(words) + 1))[:2000]) + "\n"
        return split_words(text)
    if shape == "oneline":
        # One paragraph line of ~99,000 characters with no break (under the answer cap).
        sentence = ("Parallel compression keeps the **transients** of the dry drums while "
                    "the squashed copy brings up the body [1]. ")
        return split_words(sentence * (99_000 // len(sentence)))
    if shape == "longitem":
        # One list item of ~50,000 characters: it cannot be cut, it goes on as plain text.
        return split_words("- " + "duck the bass under the kick [2] " * 1500 + "\n")
    if shape == "code":
        lines = [f"bus_{k} = compress(drums, ratio=10, attack_ms=1)\n" for k in range(400)]
        return split_words("```python\n" + "".join(lines) + "```\n")
    raise ValueError(shape)


SHAPES = ("list", "paragraph", "code", "list14k", "oneline", "longitem")


class ShownClock:
    """Samples, every millisecond, how much of the answer the pane holds, and notes when
    the screen refresh after each change has run: (time.monotonic(), chars shown)."""

    def __init__(self, widget, shown_length) -> None:
        self.widget = widget
        self.shown_length = shown_length
        self.events: list[tuple[float, int]] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        last = -1
        while True:
            # The most ever held: a segment being re-rendered may briefly hold less.
            length = max(last, self.shown_length())
            if length != last:
                last = length
                self.widget.call_after_refresh(
                    lambda n=length: self.events.append((time.monotonic(), n))
                )
            await asyncio.sleep(0.001)

    @property
    def most(self) -> int:
        return max((n for _, n in self.events), default=0)

    def shown_at(self, length: int) -> float | None:
        return next((t for t, n in self.events if n >= length), None)

    def stop(self) -> None:
        self._task.cancel()


def serve() -> int:
    """`--serve`: the fake model server in a process of its own (a server thread in the
    benchmark's process would share its GIL and be starved by the UI). Prints its URL,
    then `LAST <time.monotonic()>` when an answer's last token is written to the socket
    (noted in the server's own event loop, at the write)."""
    server = FakeOpenAI(model="bench-model")
    original_write = asyncio.StreamWriter.write
    state = {"count": 0, "target": 0, "options": None}

    def write(writer, data):
        original_write(writer, data)
        if b'"role": "assistant"' in data:
            state["count"] = 0
            if state["options"] is not server.options:
                state["options"] = server.options
                state["target"] = len(server._tokens(server.options))
        elif b'"content": ' in data and b'"finish_reason": null' in data:
            state["count"] += 1
            if state["count"] == state["target"]:
                print(f"LAST {time.monotonic()!r}", flush=True)

    asyncio.StreamWriter.write = write
    server.start()
    print(f"URL {server.url}", flush=True)
    while True:
        time.sleep(3600)


# With --half-core: the CPUs the server process runs on (the app keeps the others).
SERVER_CPUS: set[int] = set()


class ServerProcess:
    """The `--serve` process: control over HTTP (`/_control`), last-token times on stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True
        )
        if SERVER_CPUS:
            os.sched_setaffinity(self.proc.pid, SERVER_CPUS)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "URL":
            raise RuntimeError("the fake model server did not start")
        self.url = line[1]
        self.last_tokens: list[float] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            parts = line.split()
            if parts and parts[0] == "LAST":
                self.last_tokens.append(float(parts[1]))

    def control(self, body: dict | None = None) -> dict:
        import urllib.request

        base = self.url.rsplit("/v1", 1)[0] + "/_control"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base, data=data, method="POST" if data else "GET",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def set_mode(self, mode: str, **options) -> None:
        self.control({"mode": mode, **options})

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def run_view(settings, server: ServerProcess, tokens: list[str], rate: float | None) -> dict:
    from tui.app import make_app

    if rate:
        server.set_mode("slow", tokens=tokens, rate=rate)
    else:
        server.set_mode("normal", tokens=tokens)
    app = make_app(settings, theme="textual-dark", remember_theme=False, cursor_blink=False,
                   load_bundled_kb=False)
    marks: dict = {}
    if True:
        async with app.run_test(size=SIZE) as pilot:
            await asyncio.wait_for(app.ready.wait(), 60)
            await pilot.pause()
            app.prompt.load_text(QUESTION)
            seen_last = len(server.last_tokens)
            conversation = app.conversation

            held: list = []

            def shown_length() -> int:
                # The Markdown segments and the plain-text part past the Markdown limit
                # (the answer widget looked up once: a query every millisecond would take
                # time from the app being measured).
                if not held:
                    answers = conversation.answers
                    if not answers:
                        return 0
                    held.append(answers[-1])
                return len(held[0].markdown_source) + held[0].plain_shown

            clock = ShownClock(conversation, shown_length)
            start = time.perf_counter()
            start_mono = time.monotonic()
            start_cpu = time.process_time()
            # What Enter does; `pilot.press` would wait for the app to be idle (the end).
            app.prompt.action_submit()
            while not conversation.answers:
                await asyncio.sleep(0.001)
            answer = conversation.answers[-1]
            while answer.status in ("working", "streaming"):
                await asyncio.sleep(0.001)
            end = time.perf_counter()
            end_mono = time.monotonic()
            cpu = time.process_time() - start_cpu
            last_arrival = app.pacer.last_arrival
            await pilot.pause()
            for _ in range(1000):
                if len(server.last_tokens) > seen_last:
                    marks["server_last_token"] = server.last_tokens[seen_last]
                    break
                await asyncio.sleep(0.001)
            if answer.status != "answered":
                raise RuntimeError(f"the answer did not complete: {answer.status}")
            await pilot.pause()
            clock.stop()
            final_length = max(len(answer.markdown_source) + answer.plain_shown, clock.most)
    shown = clock.shown_at(final_length)
    result = {
        # Enter to the whole answer on screen (the service's bookkeeping after the last
        # token, which delays its Done event, is not rendering and is not counted).
        "seconds": (shown - start_mono) if shown is not None else end - start,
        "settled_s": end - start,
        "cpu_s": cpu,
        "updates_seen": len(clock.events),
        "chars": len(answer.raw),
    }
    if "server_last_token" in marks and shown is not None:
        last = marks["server_last_token"]
        result["lag_ms"] = (shown - last) * 1000
        # When the app took in the last token (it was written at `last`): the rest of the
        # lag is showing it.
        result["intake_ms"] = (last_arrival - last) * 1000
        result["settled_after_last_token_ms"] = (end_mono - last) * 1000
        result["achieved_tps"] = len(tokens) / max(1e-9, last - start_mono)
    return result


async def run_baseline(settings, server: ServerProcess, tokens: list[str]) -> dict:
    """Same server, same ChatService; each token appended to a plain Markdown widget."""
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Markdown

    from tui.commands._common import open_database
    from tui.services.chat import ChatService
    from tui.services.history import open_history

    server.set_mode("normal", tokens=tokens)

    class Baseline(App):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield Markdown()

    db = await open_database(settings, load_bundled=False)
    history = await open_history(settings, db)
    chat = ChatService(settings, db, history)
    app = Baseline()
    try:
        async with app.run_test(size=SIZE) as pilot:
            markdown = app.query_one(Markdown)
            app.query_one(VerticalScroll).anchor()
            clock = ShownClock(markdown, lambda: len(markdown.source))
            await asyncio.sleep(0.01)
            start = time.monotonic()
            count = 0
            async for event in chat.stream_response(QUESTION):
                if event.event == "token":
                    await markdown.append(event.text)
                    count += 1
            await pilot.pause()
            clock.stop()
            # Measured as for the view: until the whole answer is on screen.
            end = clock.shown_at(len(markdown.source)) or time.monotonic()
    finally:
        await chat.aclose()
        await history.close()
        await db.dispose()
    return {"seconds": end - start, "appends": count}


async def run_floor(tokens: list[str]) -> dict:
    """The whole answer rendered at once (one `Markdown.update`) in a bare app: what
    Textual's Markdown costs on this machine, with no streaming at all."""
    from textual.app import App, ComposeResult
    from textual.containers import VerticalScroll
    from textual.widgets import Markdown

    class Floor(App):
        def compose(self) -> ComposeResult:
            with VerticalScroll():
                yield Markdown()

    app = Floor()
    async with app.run_test(size=SIZE) as pilot:
        markdown = app.query_one(Markdown)
        start = time.monotonic()
        from tui.answer_segmenter import link_citations

        await markdown.update(link_citations("".join(tokens), 3))
        await pilot.pause()
        return {"seconds": time.monotonic() - start}


# -- startup -------------------------------------------------------------------------------

BARE_APP = """
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("bare app ready")
Bare().run()
"""


APP_ONLY = """
import sys
from tui.config import load_settings
from tui.app import run_app
sys.exit(run_app(load_settings(flags={"db": sys.argv[1]})))
"""


def first_paint(argv: list[str], marker: bytes, env: dict) -> float:
    """Seconds from spawning `argv` in a 120x40 pseudo-terminal to `marker` on screen."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, close_fds=True)
    os.close(slave)
    seen = b""
    elapsed = None
    try:
        deadline = start + 30
        while time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                seen += chunk
                if marker in seen:
                    elapsed = time.perf_counter() - start
                    break
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(master)
    if elapsed is None:
        raise RuntimeError(f"{argv[-1]!r} never painted {marker!r}")
    return elapsed


def measure_startup(db_url: str, data_dir: Path, runs: int = 5) -> dict:
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(SIZE[0]), LINES=str(SIZE[1]),
               CHRYSOPEDIA_DATA_DIR=str(data_dir), CHRYSOPEDIA_THEME="textual-dark")
    for var in ("CHRYSOPEDIA_LLM_API_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        env.pop(var, None)
    python = sys.executable
    cli_cmd = [python, "-m", "tui.cli", "--db", db_url]
    # The app itself, as `chrysopedia run` starts it, without the CLI's own imports.
    app_cmd = [python, "-c", APP_ONLY, db_url]
    bare_cmd = [python, "-c", BARE_APP]
    marker = b"No sources yet"
    # One warm-up each (file caches), then alternate.
    first_paint(cli_cmd, marker, env)
    first_paint(app_cmd, marker, env)
    first_paint(bare_cmd, b"bare app ready", env)
    cli_times, app_times, bare_times = [], [], []
    for _ in range(runs):
        cli_times.append(first_paint(cli_cmd, marker, env))
        app_times.append(first_paint(app_cmd, marker, env))
        bare_times.append(first_paint(bare_cmd, b"bare app ready", env))
    cli_s, app_s = statistics.median(cli_times), statistics.median(app_times)
    bare_s = statistics.median(bare_times)
    return {"startup_s": cli_s, "bare_startup_s": bare_s, "startup_ratio": cli_s / bare_s,
            "app_startup_s": app_s, "app_startup_ratio": app_s / bare_s}


async def main_async(args) -> dict:
    tokens = answer_tokens(args.tokens)
    with tempfile.TemporaryDirectory(prefix="chrysopedia-bench-") as tmp:
        tmp_path = Path(tmp)
        server = await asyncio.to_thread(ServerProcess)
        try:
            settings = app_settings(tmp_path, llm_api_url=server.url, llm_api_key="sk-bench",
                                    llm_model="bench-model", llm_read_timeout=30.0)
            await load_mini_kb(settings)
            # Warm-up: one short answer first, so one-time costs of the process (loading
            # the syntax highlighter's lexers for the code block, first imports) are not
            # charged to whichever run comes first.
            await run_view(settings, server, tokens[:300], None)
            views, paceds = [], []
            shapes: dict[str, list[dict]] = {}
            if args.shapes or args.shapes_only:
                for _ in range(args.shape_repeat):
                    for shape in args.shape or SHAPES:
                        run = await run_view(settings, server, shape_tokens(shape), None)
                        shapes.setdefault(shape, []).append(run)
            if args.lag_only:
                runs = [await run_view(settings, server, tokens, args.rate)
                        for _ in range(args.repeat)]
                return lag_result(runs)
            if args.shapes_only:
                for _ in range(args.repeat):
                    views.append(await run_view(settings, server, tokens, None))
                view = sorted(views, key=lambda r: r["seconds"])[len(views) // 2]
                return shapes_result(tokens, view, views, shapes)
            for _ in range(args.repeat):
                views.append(await run_view(settings, server, tokens, None))
                paceds.append(await run_view(settings, server, tokens, args.rate))
            baseline = await run_baseline(settings, server, tokens)
            floors = sorted([(await run_floor(tokens))["seconds"] for _ in range(args.repeat)])
            # The run with the median time / lag, so its other figures go with it.
            view = sorted(views, key=lambda r: r["seconds"])[len(views) // 2]
            paced = sorted(paceds, key=lambda r: r.get("lag_ms", 1e9))[len(paceds) // 2]
        finally:
            server.close()
        offline = app_settings(tmp_path / "startup")
        await load_mini_kb(offline)
        startup = await asyncio.to_thread(
            measure_startup, offline.database_url, offline.data_dir, args.runs
        )
    result = {
        "tokens": len(tokens),
        "view_s": round(view["seconds"], 3),
        "baseline_s": round(baseline["seconds"], 3),
        "speedup": round(baseline["seconds"] / view["seconds"], 1),
        "lag_ms_at_2000_tps": round(paced.get("lag_ms", float("nan")), 1),
        "startup_s": round(startup["startup_s"], 3),
        "startup_ratio": round(startup["startup_ratio"], 2),
        "details": {
            "view_updates_seen": view["updates_seen"],
            # One Markdown.update of the whole answer in a bare app (median): the cost of
            # Textual's Markdown itself on this machine; view_s / floor_s is what
            # streaming adds.
            "floor_s": round(floors[len(floors) // 2], 3),
            "view_to_floor": round(view["seconds"] / floors[len(floors) // 2], 2),
            "baseline_appends": baseline["appends"],
            "answer_chars": view["chars"],
            "paced_rate_requested_tps": args.rate,
            "repeats": args.repeat,
            "view_s_all": [round(r["seconds"], 3) for r in views],
            "lag_ms_all": [round(r.get("lag_ms", float("nan")), 1) for r in paceds],
            # Server's last token → the app taking it in, and the CPU the app spent on the
            # answer (Enter → settled), for the same runs.
            "lag_intake_ms_all": [round(r.get("intake_ms", float("nan")), 1) for r in paceds],
            "lag_cpu_s_all": [round(r["cpu_s"], 2) for r in paceds],
            "paced_rate_achieved_tps": round(paced.get("achieved_tps", 0.0)),
            "paced_settled_after_last_token_ms": round(paced.get("settled_after_last_token_ms", 0.0), 1),
            "bare_startup_s": round(startup["bare_startup_s"], 3),
            "app_only_startup_s": round(startup["app_startup_s"], 3),
            "app_only_startup_ratio": round(startup["app_startup_ratio"], 2),
            "python": sys.version.split()[0],
        },
    }
    if shapes:
        result["shapes"] = shapes_result(tokens, view, views, shapes)["shapes"]
    return result


def lag_result(runs: list[dict]) -> dict:
    """The paced runs alone (--lag-only): the median lag, and each run's figures."""
    lags = [r.get("lag_ms", float("nan")) for r in runs]
    return {
        "lag_ms_at_2000_tps": round(statistics.median(lags), 1),
        "lag_ms_all": [round(x, 1) for x in lags],
        "lag_intake_ms_all": [round(r.get("intake_ms", float("nan")), 1) for r in runs],
        "lag_cpu_s_all": [round(r["cpu_s"], 2) for r in runs],
    }


def half_core() -> subprocess.Popen:
    """This process on one CPU, sharing it with a busy loop; the server on another: the app
    gets about half a CPU, as on a machine about half as fast."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("--half-core needs Linux and at least two CPUs")
    first, second = sorted(os.sched_getaffinity(0))[:2]
    os.sched_setaffinity(0, {first})
    SERVER_CPUS.add(second)
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def shapes_result(tokens, view, views, shapes) -> dict:
    """Each awkward shape's median view time and its ratio to the tidy answer's."""
    out = {}
    for shape, runs in shapes.items():
        median = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        out[shape] = {
            "tokens": len(shape_tokens(shape)),
            "chars": median["chars"],
            "view_s": round(median["seconds"], 3),
            "ratio_to_tidy": round(median["seconds"] / view["seconds"], 2),
            "view_s_all": [round(r["seconds"], 3) for r in runs],
        }
    return {
        "tokens": len(tokens),
        "view_s": round(view["seconds"], 3),
        "view_s_all": [round(r["seconds"], 3) for r in views],
        "tidy_chars": view["chars"],
        "shapes": out,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=2000.0, help="tokens/s for the lag run")
    parser.add_argument("--runs", type=int, default=5, help="start-up runs per app")
    parser.add_argument("--repeat", type=int, default=5,
                        help="view and lag runs (medians reported)")
    parser.add_argument("--shapes", action="store_true",
                        help="also stream the awkward shapes (endless list, long paragraph, huge code block)")
    parser.add_argument("--shapes-only", action="store_true",
                        help="the tidy answer's view runs and the shapes only")
    parser.add_argument("--shape", action="append", choices=SHAPES,
                        help="only this shape (repeatable; default: all)")
    parser.add_argument("--shape-repeat", type=int, default=3, help="runs per shape (median)")
    parser.add_argument("--lag-only", action="store_true",
                        help="only the paced runs (the lag), --repeat of them")
    parser.add_argument("--half-core", action="store_true",
                        help="the app on one CPU shared with a busy loop (a slower machine)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve()
    hog = half_core() if args.half_core else None
    try:
        result = asyncio.run(main_async(args))
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    if args.json or args.lag_only:
        print(json.dumps(result))
        return 0
    if args.shapes_only:
        print(f"tidy                 view_s {result['view_s']}  {result['view_s_all']}")
        for shape, r in result["shapes"].items():
            print(f"{shape:<20} view_s {r['view_s']}  ratio {r['ratio_to_tidy']}  "
                  f"({r['chars']} chars, {r['tokens']} tokens)  {r['view_s_all']}")
        return 0
    targets = {"speedup": ">= 15", "lag_ms_at_2000_tps": "<= 100", "startup_ratio": "<= 2"}
    for key, value in result.items():
        if key not in ("details", "shapes"):
            print(f"{key:<20} {value}" + (f"   (target {targets[key]})" if key in targets else ""))
    for key, value in result["details"].items():
        print(f"  {key:<34} {value}")
    for shape, r in result.get("shapes", {}).items():
        print(f"{shape:<20} view_s {r['view_s']}  ratio_to_tidy {r['ratio_to_tidy']}  ({r['chars']} chars)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
