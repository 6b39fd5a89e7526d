"""One long session: the real app answering hundreds of questions, its memory and its frames.

    .venv/bin/python bench/soak.py [--answers 500] [--json] [--rate 0] [--tracemalloc]

The real app (`make_app`, the real ChatService, its own SQLite file holding the mini KB,
the app's own garbage-collector policy) runs headless under Textual's Pilot at 120x40, in
this process. The loopback model server (tests/fake_openai.py) runs in a process of its
own, so its request log is not in the app's memory. Each question is typed into the prompt
and sent with Enter; the answer (one of four Markdown answers of 150-200 words, 780-1,000
characters, 150-200 tokens, with paragraphs, lists, bold, code, a table and citations
[1]-[3], cut into word-sized tokens) streams in as fast as the server sends it, or at `--rate` tokens/s.

The session: a new conversation (Ctrl+N) every 10 answers; at the 25th answer of every 50,
an old conversation is taken up again through the conversations screen (Ctrl+O, a row
further down, Enter; every other time through the command palette, "Conversations") and
5 questions are asked in it. So the screen at answer 50 and at answer 500 is in the same
state: a fresh conversation holding its 10th answer.

At answers 50 and N (and every 50 between, for the curve), with no answer streaming:
- `rss_*_mb`: the process's resident memory after `gc.collect()`;
- `frame_ms_*`: the cost of one frame of the main screen, drawn from scratch: every
  widget's arrangement and line caches emptied, the compositor lays the screen out
  (`reflow`) and renders every line (`render_full_update`); the median of 31, with the
  interquartile range, in wall time (`frame_ms_*`) and in this thread's CPU time
  (`frame_cpu_ms_*`, much less moved by other processes on a shared machine);
- the widgets on the main screen, the answers it holds, Python's live objects.

The frame is timed with Textual's own compositor (`Screen._compositor`, `Compositor.reflow`,
`render_full_update`, `Widget._arrangement_cache`, `Widget._styles_cache`: private names, as
in the Pilot tests; a Textual upgrade that moves one breaks this benchmark, not the app).

With `--tracemalloc`, a snapshot at 50 and at N and the allocations that grew most between
them (by line), in `details.tracemalloc_top` (tracing slows the run about 2x and its own
memory is excluded from the figures).

Prints a summary, or with --json one JSON object: answers, rss_50_mb, rss_500_mb
(rss_N_mb for another --answers), rss_ratio, frame_ms_50, frame_ms_500, frame_ratio,
plus details. Requirement: rss ratio <= 1.2 and frame ratio <= 1 within the spread.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fixtures_llm import TEST_API_KEY  # noqa: E402
from test_app_support import app_settings, load_mini_kb  # noqa: E402

SIZE = (120, 40)
NEW_EVERY = 10  # a new conversation every 10 answers
RESUME_AT = 25  # at the 25th answer of every 50: an old conversation, 5 questions
RESUME_ASKS = 5
FRAME_REPEAT = 31

QUESTIONS = [
    "How do I set up parallel compression on drums?",
    "How do I duck the bass under the kick with sidechain compression?",
    "How should I chop breaks on the transients?",
    "What attack and release should the parallel compressor use?",
    "How much should I blend the compressed return under the dry drums?",
    "Where do I key the sidechain from, and how fast should it release?",
    "How do I keep the kick clean when I crush the drum bus?",
    "What do I check before judging a parallel compression blend?",
    "How do I resample a chopped break into a new groove?",
    "Which compressor settings give the most sustain to a snare?",
]

ANSWERS = [
    "## Parallel compression on drums\n\n"
    "**Parallel compression** blends a heavily compressed copy of the drums under the dry "
    "signal, so the transients stay intact while the body and the room come up [1]. Start "
    "with the *send* at unity and bring the return up slowly until the kit feels denser "
    "without sounding squashed [2].\n\n"
    "- Send the drum bus to an aux with a fast compressor at **10:1** [1]\n"
    "- Attack 1 ms, release 100 ms, and push 15 dB of gain reduction [1]\n"
    "- Blend the return 6 to 10 dB under the dry bus [2]\n"
    "- High-pass the return around 80 Hz so the kick stays clean [3]\n\n"
    "1. Check the phase between the two paths\n2. Level-match before judging [3]\n\n"
    "```\ndrum bus -> aux send -> comp (10:1, 1 ms, 100 ms) -> return -6 dB\n```\n\n"
    "> Trust the meter, then trust your ears [2].\n\n"
    "If the cymbals get harsh, put a gentle shelf on the return rather than backing the "
    "blend off: the density is what you are after, and the top end is what gives the "
    "trick away [2]. Automate the return up in the chorus for lift [1].\n",

    "## Ducking the bass under the kick\n\n"
    "Put a compressor on the bass and key it from the kick, so the bass dips for a few "
    "milliseconds each time the kick hits and the low end stays clear [3]. The ratio matters "
    "less than the release: it decides how the groove breathes [3].\n\n"
    "| setting | start here | why |\n| --- | --- | --- |\n"
    "| ratio | 4:1 | enough to dip without pumping [3] |\n"
    "| attack | 0.5 ms | catch the kick's front [3] |\n"
    "| release | 60-120 ms | back before the next hit [1] |\n"
    "| threshold | -20 dB | 3-6 dB of reduction [3] |\n\n"
    "Listen in mono at a low level: if the kick still disappears, shorten the bass notes "
    "instead of ducking harder [2]. A **volume envelope** drawn on the bass does the same "
    "thing with no detector at all, and never misses a ghost note [3].\n\n"
    "- Key from a *clean* kick, not the bus [3]\n- Release by ear, in time with the tempo [1]\n"
    "- Check the sub on headphones and on speakers [2]\n",

    "## Chopping breaks on the transients\n\n"
    "Slice the break where each hit starts: the transient marker should sit just before the "
    "attack, so every slice begins with its own click and nothing from the hit before [2]. "
    "Then map the slices to pads and play the groove again, moving hits off the grid "
    "where the original swung [2].\n\n"
    "1. Normalise the break, then detect transients at a low sensitivity [2]\n"
    "2. Move any marker that landed inside a hit to its start [2]\n"
    "3. Add a 2 ms fade-in and a short fade-out to each slice [1]\n"
    "4. Resample the new groove before processing it [2]\n\n"
    "```\nbreak.wav -> slices 01-16 -> pads -> new pattern -> resample\n```\n\n"
    "**Tip:** a snare with a long tail sounds best cut where the next hit begins, not where "
    "its own tail fades, or the groove loses its push [2]. Glue the chopped kit with the "
    "parallel compression from the drum bus [1], and duck any bass under the new kick "
    "pattern [3].\n",

    "## Sustain for the snare\n\n"
    "More sustain comes from *less* attack getting through and *more* of the tail being "
    "lifted: a slow release on a hard compressor, blended in parallel, does exactly that "
    "[1]. Keep the dry snare for the crack [1].\n\n"
    "- Ratio 8:1 or more on the parallel path [1]\n"
    "- Attack as fast as it goes; release long enough to hold the ring [1]\n"
    "- Blend until the tail is as loud as you want, then stop [2]\n\n"
    "> The crack is the dry snare's job; the body is the return's [2].\n\n"
    "A gate *before* the compressor keeps the hi-hat spill out of the sustained tail [3]. "
    "If the snare rings too long, shorten the gate's hold rather than the compressor's "
    "release: the release shapes the body, the gate decides when it ends [3]. Check the "
    "result with the whole mix playing, never soloed [2].\n",
]


def split_words(text: str) -> list[str]:
    """Word-sized tokens, spaces kept with the following word (as model tokenizers do)."""
    tokens: list[str] = []
    for line in text.splitlines(keepends=True):
        parts = line.split(" ")
        tokens.extend(p for p in [parts[0]] + [" " + p for p in parts[1:]] if p)
    return tokens


TOKENS = [split_words(a) for a in ANSWERS]


class ModelServer:
    """tests/fake_openai.py in a process of its own; tokens set over `/_control`."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fake_openai.py")],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        if not line or not line[-1].startswith("http"):
            raise RuntimeError("the fake model server did not start")
        self.url = line[-1]

    def set(self, tokens: list[str], rate: float) -> None:
        body = {"mode": "slow", "tokens": tokens, "rate": rate} if rate else {
            "mode": "normal", "tokens": tokens}
        request = urllib.request.Request(
            self.url.rsplit("/v1", 1)[0] + "/_control", data=json.dumps(body).encode(),
            method="POST", headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def frame_ms(screen) -> tuple[float, float]:
    """One frame of `screen` drawn from scratch: layout of every widget, then every line;
    (wall, CPU of this thread) in milliseconds."""
    compositor = screen._compositor
    for widget in screen.walk_children(with_self=True):
        widget._arrangement_cache.clear()
        widget._styles_cache.clear()
    size = screen.size
    start = time.perf_counter()
    cpu = time.thread_time()
    compositor.reflow(screen, size)
    compositor.render_full_update()
    return (time.perf_counter() - start) * 1000, (time.thread_time() - cpu) * 1000


class CollectorClock:
    """Every collection the garbage collector runs, timed (gc.callbacks): per generation,
    how many, the longest and the total, in milliseconds."""

    def __init__(self) -> None:
        self.stats = {g: {"count": 0, "max_ms": 0.0, "total_ms": 0.0} for g in (0, 1, 2)}
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        ms = (time.perf_counter() - self._start) * 1000
        stats = self.stats[info["generation"]]
        stats["count"] += 1
        stats["total_ms"] += ms
        stats["max_ms"] = max(stats["max_ms"], ms)

    def take(self) -> dict:
        """What ran since the last call, then start again."""
        taken = {f"gen{g}": {k: round(v, 1) for k, v in s.items()} for g, s in self.stats.items()}
        self.stats = {g: {"count": 0, "max_ms": 0.0, "total_ms": 0.0} for g in (0, 1, 2)}
        return taken

    def close(self) -> None:
        gc.callbacks.remove(self._callback)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


async def wait_until(pilot, predicate, timeout: float = 300.0, what: str = "") -> None:
    # (Generous: a hang fails, a machine shared by many does not.)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.005)


class Session:
    def __init__(self, app, pilot, server: ModelServer, rate: float) -> None:
        self.app = app
        self.pilot = pilot
        self.server = server
        self.rate = rate
        self.answered = 0
        self.failed = 0
        self.resumes = 0
        self.palette_resumes = 0
        self.conversations = 0

    def idle(self) -> bool:
        return not any(w.state.name in ("PENDING", "RUNNING") and w.group != "boot"
                       for w in self.app.workers)

    async def ask(self, question: str) -> None:
        app, pilot = self.app, self.pilot
        await asyncio.to_thread(self.server.set, TOKENS[self.answered % len(TOKENS)], self.rate)
        count = len(app.conversation.answers)
        app.prompt.load_text(question)
        app.prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.conversation.answers) > count, what="the answer")
        answer = app.conversation.answers[-1]
        await wait_until(pilot, lambda: answer.status not in ("working", "streaming"),
                         what="the answer settled")
        await wait_until(pilot, self.idle, what="the claim check and the rest")
        if answer.status == "answered":
            self.answered += 1
        else:
            self.failed += 1
            raise RuntimeError(f"answer {self.answered + self.failed} ended {answer.status}")

    async def new_conversation(self) -> None:
        app, pilot = self.app, self.pilot
        before = app.conversation_id
        app.prompt.focus()
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: app.conversation_id != before and
                         not app.conversation.answers, what="a new conversation")
        self.conversations += 1

    async def resume_old(self, rows_down: int, palette: bool) -> str:
        from tui.screens.conversations import ConversationsScreen

        app, pilot = self.app, self.pilot
        if palette:
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "CommandPalette",
                             what="the palette")
            await pilot.press(*"Conversations")
            await pilot.pause(0.3)  # the palette's search runs in a worker
            await pilot.press("enter")
            self.palette_resumes += 1
        else:
            await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen),
                         what="the conversations screen")
        await pilot.pause()
        screen = app.screen
        for _ in range(rows_down):
            await pilot.press("down")
        chosen = screen.selected_id
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation_id == chosen and self.idle(),
                         what=f"the conversation {chosen} resumed (shown: {app.conversation_id}, "
                              f"screen {type(app.screen).__name__}, workers "
                              f"{[(w.description, w.state.name) for w in app.workers]})")
        await pilot.pause()
        self.resumes += 1
        return chosen

    def checkpoint(self, collections: dict) -> dict:
        screen = self.app.chat
        gc.collect()
        rss = rss_mb()
        frames = [frame_ms(screen) for _ in range(FRAME_REPEAT)]
        q1, median, q3 = quartiles([wall for wall, _ in frames])
        c1, cpu_median, c3 = quartiles([cpu for _, cpu in frames])
        return {
            "answers": self.answered,
            "rss_mb": round(rss, 1),
            "frame_ms": round(median, 2),
            "frame_ms_iqr": [round(q1, 2), round(q3, 2)],
            # CPU time of the frame (this thread): less moved by other processes' load.
            "frame_cpu_ms": round(cpu_median, 2),
            "frame_cpu_ms_iqr": [round(c1, 2), round(c3, 2)],
            "widgets": sum(1 for _ in screen.walk_children(with_self=True)),
            "answers_mounted": len(self.app.conversation.answers),
            "objects": len(gc.get_objects()) + gc.get_freeze_count(),  # tracked + frozen
            "frozen": gc.get_freeze_count(),
            # The collections the app's own allocations ran since the last checkpoint.
            "collections_since_last": collections,
        }


async def soak(args) -> dict:
    from tui.app import make_app

    tracing = args.tracemalloc
    if tracing:
        import tracemalloc

        tracemalloc.start(12)
    server = ModelServer()
    curve: list[dict] = []
    snapshots = {}
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
            settings = app_settings(
                Path(tmp), llm_api_url=server.url, llm_api_key=TEST_API_KEY,
                llm_model="soak-model", llm_first_token_timeout=30.0, llm_read_timeout=30.0,
                llm_connect_timeout=5.0)
            await load_mini_kb(settings)
            app = make_app(settings, theme="textual-dark", remember_theme=False,
                           cursor_blink=False, load_bundled_kb=False)
            async with app.run_test(size=SIZE) as pilot:
                await wait_until(pilot, app.ready.is_set, what="the services")
                if app.boot_error:
                    raise RuntimeError(app.boot_error)
                session = Session(app, pilot, server, args.rate)
                clock = CollectorClock()
                marks = sorted({50, args.answers} | set(range(100, args.answers, 50)))
                while session.answered < args.answers:
                    i = session.answered
                    if i % 50 == RESUME_AT:
                        # An old conversation (a row further down the list: the newest is
                        # the one on screen), 5 questions; the next answer starts a new one.
                        await session.resume_old(
                            rows_down=min(2 + (i // 50) % 3, session.conversations),
                            palette=(session.resumes % 2 == 1))
                        for k in range(RESUME_ASKS):
                            await session.ask(QUESTIONS[(i + k) % len(QUESTIONS)])
                        continue
                    if i % NEW_EVERY == 0 and i:
                        await session.new_conversation()
                    await session.ask(QUESTIONS[i % len(QUESTIONS)])
                    if session.answered in marks:
                        await pilot.pause()
                        point = session.checkpoint(clock.take())
                        point["elapsed_s"] = round(time.perf_counter() - started, 1)
                        curve.append(point)
                        print(json.dumps(point), file=sys.stderr if args.json else sys.stdout,
                              flush=True)
                        if tracing and session.answered in (50, args.answers):
                            snapshots[session.answered] = tracemalloc.take_snapshot()
                clock.close()
                stats = {"conversations": session.conversations + 1, "resumes": session.resumes,
                         "palette_resumes": session.palette_resumes, "failed": session.failed}
    finally:
        server.close()
    first = next(p for p in curve if p["answers"] == 50)
    last = curve[-1]
    n = last["answers"]
    result = {
        "answers": n,
        "rss_50_mb": first["rss_mb"],
        f"rss_{n}_mb": last["rss_mb"],
        "rss_ratio": round(last["rss_mb"] / first["rss_mb"], 3),
        "frame_ms_50": first["frame_ms"],
        f"frame_ms_{n}": last["frame_ms"],
        "frame_ratio": round(last["frame_ms"] / first["frame_ms"], 3),
        "frame_cpu_ms_50": first["frame_cpu_ms"],
        f"frame_cpu_ms_{n}": last["frame_cpu_ms"],
        "frame_cpu_ratio": round(last["frame_cpu_ms"] / first["frame_cpu_ms"], 3),
        "details": {
            "frame_ms_iqr_50": first["frame_ms_iqr"],
            f"frame_ms_iqr_{n}": last["frame_ms_iqr"],
            "frame_cpu_ms_iqr_50": first["frame_cpu_ms_iqr"],
            f"frame_cpu_ms_iqr_{n}": last["frame_cpu_ms_iqr"],
            "frame_repeat": FRAME_REPEAT,
            "rate_tps": args.rate or "as fast as the server sends",
            "answer_words": [len(a.split()) for a in ANSWERS],
            "curve": curve,
            "seconds": round(time.perf_counter() - started, 1),
            **stats,
        },
    }
    if tracing and len(snapshots) == 2:
        diff = snapshots[n].compare_to(snapshots[50], "lineno")
        result["details"]["tracemalloc_top"] = [
            f"{d.size_diff / 1024:+.0f} KiB {d.count_diff:+d} {d.traceback[0].filename}:"
            f"{d.traceback[0].lineno}" for d in diff[:25]]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=500, help="answers in the session (>= 50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="tokens per second from the server (0: as fast as it sends)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="diff allocations between answer 50 and the last")
    args = parser.parse_args()
    if args.answers < 50:
        parser.error("--answers must be at least 50 (the first measurement is at 50)")
    result = asyncio.run(soak(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(json.dumps({k: v for k, v in result.items() if k != "details"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
