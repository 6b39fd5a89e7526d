"""What drawing the claim marks costs an answer, short and long (past MARKDOWN_LINES).

    .venv/bin/python bench/claim_marks.py [--repeat 5] [--json]

A finished answer shows its claim check's marks by being shown again the way a saved
answer is restored: its first MARKDOWN_LINES (400) non-blank lines as one Markdown
document with a `claim:K` link after each questionable claim, the rest as plain text with
the marks' symbols in it (`AssistantMessage.show_claims`). Before, an answer longer than
that got no marks at all. This measures, in a headless app (120x40, the app's CSS), for
answers of 100, 400, 800 and 2,000 lines (paragraphs of cited sentences and list items,
one questionable claim in ten lines): `restore_ms`, the answer restored without marks
(what resuming a conversation costs it, the baseline), and `marks_ms`, `show_claims` on
it with its marks, each until the next screen refresh has run; median of --repeat.
`ratio` = marks / restore. Past 400 lines both costs stop growing with the Markdown
(the plain part is a few Statics), so the marks of a long answer cost what its restore does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual.app import App, ComposeResult  # noqa: E402
from textual.containers import VerticalScroll  # noqa: E402

from tui.widgets.answer import AnswerClaims, AssistantMessage, ClaimMark  # noqa: E402

SOURCES = [{"title": f"Source {n}", "number": n} for n in range(1, 6)]


def answer(lines: int) -> tuple[str, list[ClaimMark]]:
    """`lines` non-blank lines: paragraphs and list items of cited sentences; every tenth
    line's claim marked unsupported or misattributed."""
    out: list[str] = []
    marks: list[ClaimMark] = []
    at = 0
    for k in range(lines):
        n = k % 5 + 1
        body = f"Set the compressor's attack to {k % 30 + 1} ms on bus {k} so it breathes [{n}]."
        line = f"- {body}\n" if k % 3 else f"{body}\n\n"
        if k % 10 == 7:
            end = at + line.rstrip("\n").__len__()
            marks.append(ClaimMark(len(marks), at + (2 if k % 3 else 0), end,
                                   "unsupported" if k % 20 == 7 else "misattributed"))
        out.append(line)
        at += len(line)
    return "".join(out), marks


class Host(App):
    CSS_PATH = str(ROOT / "tui" / "styles.tcss")

    def compose(self) -> ComposeResult:
        yield VerticalScroll(id="pane")


async def measure(lines: int, repeat: int) -> dict:
    text, marks = answer(lines)
    restore, marked = [], []
    app = Host()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one("#pane")
        for _ in range(repeat):
            widget = AssistantMessage(SOURCES, classes="answer")
            await pane.mount(widget)
            await pilot.pause()
            began = time.perf_counter()
            await widget.restore(text, {}, "answered")
            await pilot.pause()
            restore.append(time.perf_counter() - began)
            began = time.perf_counter()
            await widget.show_claims(AnswerClaims("n claims", tuple(marks), ()))
            await pilot.pause()
            marked.append(time.perf_counter() - began)
            assert widget.marked
            await widget.remove()
    r, m = statistics.median(restore) * 1000, statistics.median(marked) * 1000
    return {"lines": lines, "marks": len(marks), "chars": len(text), "restore_ms": round(r, 1),
            "marks_ms": round(m, 1), "ratio": round(m / r, 2)}


async def main_async(repeat: int) -> dict:
    await measure(50, 1)  # warm-up: imports, CSS
    return {"answers": [await measure(lines, repeat) for lines in (100, 400, 800, 2000)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(main_async(args.repeat))
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
