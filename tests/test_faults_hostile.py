"""Hostile text end to end through the real app in a pseudo-terminal.

Knowledge-base rows are rewritten in the database with Rich markup, OSC 0 / OSC 52 /
`ESC[2J` sequences, a C1 CSI, NUL bytes, bidi overrides and a 10 MB single line (as
another tool writing a shared database could; the importer itself refuses control
characters, see tests/test_importer.py). The model server streams the same, plus a
10 MB single-line token. The app runs as `python -m tui` in a pty: every byte it
writes is kept and the screen is read through a terminal emulator (pyte).

What must hold: the text is shown literally (markup) or stripped (control
characters); none of the hostile sequences reaches the terminal; the app stays
responsive (a 10 MB line is cut for display, saying so on screen).
"""

from __future__ import annotations

import re

import pytest
from fake_openai import FakeOpenAI
from faults_support import (
    BIDI,
    HOSTILE_BITS,
    RICH,
    RICH_LINK,
    AppInPty,
    app_env,
    make_hostile,
    prepare_kb_file,
    sqlite_path,
    sqlite_rows,
)

# Hostile sequences as they would reach the terminal if they got through.
FORBIDDEN = {
    "OSC 0 (window title)": b"\x1b]0;",
    "OSC 52 (clipboard write)": b"\x1b]52;",
    "ESC [2J (clear screen)": b"\x1b[2J",
    "C1 CSI (U+009B)": "\x9b".encode(),
    "NUL": b"\x00",
    "bidi override U+202E": BIDI.encode(),
    "bidi pop U+202C": "\u202c".encode(),
}
HUGE_TOKEN = "z" * (10 * 1024 * 1024)  # one 10 MB line from the model


def _assert_inert(raw: bytes) -> None:
    leaked = [name for name, seq in FORBIDDEN.items() if seq in raw]
    assert not leaked, f"reached the terminal raw: {leaked}"


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hostile-kb")
    url = prepare_kb_file(cache / "hostile.db", cache)
    make_hostile(url)
    return url


def _copy(url: str, tmp_path) -> str:
    import shutil

    target = tmp_path / "app.db"
    shutil.copyfile(sqlite_path(url), target)
    return f"sqlite+aiosqlite:///{target}"


def test_importer_cannot_be_the_way_in(hostile_db):
    """The rows really are hostile (written around the importer), so the display is tested."""
    [(title,)] = sqlite_rows(sqlite_path(hostile_db),
                             "select title from technique_pages where slug='parallel-compression'")
    assert "\x1b]52;" in title and "\x00" in title and RICH in title
    bodies = sqlite_rows(sqlite_path(hostile_db), "select body from sections")
    assert max(len(b) for (b,) in bodies) >= 10 * 1024 * 1024


def _source_number(screen: str, time_range: str) -> int:
    """The number of the sidebar source whose time range is `time_range`."""
    number = None
    for line in screen.splitlines():
        parts = line.rstrip().split("│")
        cell = parts[-2] if len(parts) >= 3 else ""  # the sidebar is the rightmost box
        match = re.match(r"\s?(\d{1,2}) ", cell)
        if match:
            number = int(match.group(1))
        if time_range in cell and number is not None:
            return number
    raise AssertionError(f"no source at {time_range} in the sidebar:\n{screen}")


def _ask(app: AppInPty, question: str, until: str, timeout: float = 60) -> None:
    app.wait_text("⏎ Send")  # the prompt has the focus (its footer)
    app.type(question)
    app.wait_text("│ " + question)
    app.send("\r")
    app.wait_text(until, timeout)


def test_hostile_kb_and_model_text_through_the_real_app(hostile_db, tmp_path):
    url = _copy(hostile_db, tmp_path)
    with FakeOpenAI(model="m", tokens=["Answer ", HOSTILE_BITS, " [1]"]) as server:
        env = app_env(tmp_path / "home", CHRYSOPEDIA_DATABASE_URL=url,
                      CHRYSOPEDIA_DATA_DIR=str(tmp_path / "data"),
                      CHRYSOPEDIA_LLM_API_URL=server.url, CHRYSOPEDIA_LLM_MODEL="m")
        with AppInPty(env) as app:
            app.wait_text("memory local", 60)
            # Rich markup from the model and from the KB (sidebar) is shown literally.
            # (Waited for as such: the meta line's "tokens" can be drawn a frame before the
            # answer's last segment on a loaded machine.)
            _ask(app, "parallel compression",
                 "Answer [bold red]x[/] [link=https://evil.example/]click[/link]")
            app.wait_for(lambda: "answering…" not in app.text(), what="answer finished")
            screen = app.text()
            assert "Parallel Compression [bold red]x" in screen  # a source title, sidebar
            assert "Test Ada [bold red]x[/]" in screen  # the creator name, sidebar
            assert app.screen.title != "PWNED-TITLE"

            # The source detail: the 10 MB single-line body is cut for display, saying so.
            # Open the hostile page's "blend" section (01:35–02:40), the 10 MB line.
            [(body_len,)] = sqlite_rows(sqlite_path(url), (
                "select length(cast(body as blob)) from sections where anchor = 'blend'"))
            assert body_len >= 10 * 1024 * 1024
            number = _source_number(app.text(), "01:35–02:40")
            app.send("\x0c")  # Ctrl+L: the sources list
            app.wait_text("esc Back to prompt")  # the footer of the focused list
            app.send(str(number % 10))  # jump to source N
            app.send("\r")
            app.wait_text(f"Source [{number}]", 60)
            app.wait_text("cut for display", 30)
            assert "Heading [bold red]x[/]" in app.text()
            app.send("\x1b")  # Escape: close
            app.wait_for(lambda: f"Source [{number}]" not in app.text(), what="detail closed")
            app.send("\x1b")  # back to the prompt

            # A 10 MB single line from the model: cut at the stored-answer cap, said on screen.
            server.set_mode("normal", tokens=["Long ", HUGE_TOKEN])
            _ask(app, "parallel compression at length", "answer cut at the size limit", 90)

            # The app still answers the next question.
            server.set_mode("normal", tokens=["Still ", "fine", " [1]."])
            _ask(app, "parallel compression again", "Still fine")
            raw = app.raw_bytes()
            assert app.quit() == 0
    _assert_inert(raw)
    # What was stored is capped too.
    lengths = sqlite_rows(sqlite_path(url), "select length(content) from messages where role='assistant'")
    from tui.services.llm import MAX_ANSWER_CHARS

    assert max(n for (n,) in lengths) <= MAX_ANSWER_CHARS


def test_hostile_question_typed_by_the_user(tmp_path, tmp_path_factory):
    """The user's own question (pasted with escapes and markup) is shown as text."""
    cache = tmp_path_factory.mktemp("plain-kb")
    url = prepare_kb_file(tmp_path / "app.db", cache)
    env = app_env(tmp_path / "home", CHRYSOPEDIA_DATABASE_URL=url,
                  CHRYSOPEDIA_DATA_DIR=str(tmp_path / "data"))
    with AppInPty(env) as app:
        app.wait_text("memory local", 60)
        app.type(f"sidechain {RICH} {RICH_LINK}\x1b]0;PWNED-TITLE\x07\x1b]52;c;SEFDS0VE\x07\x1b[2J")
        app.wait_text("sidechain [bold red]x[/]")  # in the prompt, escapes shown as ^[ ^]
        app.send("\r")
        # the answer's line (mostly noise, the question may get tier none: no digest then)
        app.wait_text(" · tier ", 60)
        screen = app.text()
        # Shown as text on screen: the markup literally, the escapes as inert characters.
        assert "sidechain [bold red]x[/]" in screen and RICH_LINK in screen, screen
        # The conversation list shows the question as its title: literally too.
        app.send("\x0f")  # Ctrl+O
        app.wait_text("Conversations")
        app.wait_text("sidechain [bold red]x[/]")
        app.send("\x1b")
        app.wait_text("⏎ Send")
        raw = app.raw_bytes()
        assert app.quit() == 0
    _assert_inert(raw)


async def test_source_detail_of_a_section_with_thousands_of_lines_is_cut():
    """A KB section of 5,000 one-line list items (another tool's database): the detail
    screen shows the first lines only and says so, instead of laying out 5,000 blocks."""
    from textual.app import App
    from textual.widgets import Markdown

    from tui.screens.source_detail import MAX_BODY_LINES, SourceDetailScreen

    body = "".join(f"- item {i} {RICH}\n" for i in range(5000))
    app = App()
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(SourceDetailScreen({"title": "T", "number": 1,
                                                  "section_body": body}))
        await pilot.pause()
        section = app.screen.query_one("#sd-section", Markdown)
        assert section.source.count("\n- item") <= MAX_BODY_LINES
        assert "section cut for display" in section.source and "5,001 lines" in section.source
        assert RICH in section.source  # shown as text, Markdown does not parse Rich markup
