"""Driving the screens with a Pilot: what each key does and what each screen returns."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual import on
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Markdown, Static

from tui.screens import (
    ConfirmScreen,
    ConversationsScreen,
    HelpScreen,
    SourceDetailScreen,
    UsageScreen,
)
from tui.screens.conversations import relative_time

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)

DETAIL = {
    "title": "Parallel Compression on Drums",
    "creator_name": "Test Ada",
    "topic_category": "Mixing",
    "tags": ["compression"],
    "summary": "Blend [bold red]x[/] \x1b[2J\x1b]52;c;aGFja2Vk\x07 done",
    "section_heading": "Setting up the send",
    "section_body": "Send the drum bus to an aux.",
    "video_title": "Compression basics",
    "video_filename": "ada-v1.mp4",
    "video_url": None,
    "start_time": 95,
    "end_time": 160,
}

CONVERSATIONS = [
    {"id": "c1", "title": "First", "creator_name": "Test Ada", "updated_at": NOW, "turns": 2},
    {"id": "c2", "title": "Second [b]x[/b]", "creator_slug": "test-bo",
     "updated_at": NOW - timedelta(days=2), "turns": 1},
]


class Host(App[None]):
    """Pushes one screen, records its results, the messages it posts and what it notifies."""

    def __init__(self, make_screen: Callable[[], Screen]) -> None:
        super().__init__()
        self.make_screen = make_screen
        self.results: list[object] = []
        self.messages: list[object] = []
        self.notes: list[tuple[str, str, str]] = []  # (message, severity, title) notified

    def compose(self) -> ComposeResult:
        yield Static("host", id="host")

    def on_mount(self) -> None:
        self.push_screen(self.make_screen(), self.results.append)

    @on(ConversationsScreen.Delete)
    def record(self, message) -> None:
        self.messages.append(message)

    def notify(self, message, *, title="", severity="information", **kwargs) -> None:
        self.notes.append((str(message), severity, title))
        super().notify(message, title=title, severity=severity, **kwargs)


async def wait_until(pilot, predicate, tries: int = 500) -> None:
    """Let the app run until `predicate()` holds (a condition, not a timing assertion)."""
    for _ in range(tries):
        if predicate():
            return
        await pilot.pause(0.01)
    raise AssertionError("condition not reached")


def fake_exe(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)


# -- source detail -------------------------------------------------------------


async def test_source_detail_escape_closes():
    app = Host(lambda: SourceDetailScreen(DETAIL))
    async with app.run_test() as pilot:
        assert isinstance(app.screen, SourceDetailScreen)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.results)
        assert app.results == [None]
        assert not isinstance(app.screen, SourceDetailScreen)


async def test_source_detail_copy_reference():
    app = Host(lambda: SourceDetailScreen(DETAIL))
    async with app.run_test() as pilot:
        await pilot.press("c")
        await wait_until(pilot, lambda: app.notes)
        reference = "Parallel Compression on Drums \u2014 Test Ada \u2014 Compression basics @ 01:35"
        assert app.clipboard == reference
        assert app.notes == [(f"Copied: {reference}", "information", "Reference")]
        assert isinstance(app.screen, SourceDetailScreen)  # copying does not close it


async def test_source_detail_keys_can_be_remapped():
    app = Host(lambda: SourceDetailScreen(DETAIL))
    async with app.run_test() as pilot:
        app.set_keymap({"source_detail.copy_reference": "y"})
        await pilot.press("y")
        await wait_until(pilot, lambda: app.clipboard)
        assert app.clipboard.startswith("Parallel Compression on Drums")


async def test_source_detail_shows_hostile_text_literally():
    app = Host(lambda: SourceDetailScreen(DETAIL))
    async with app.run_test() as pilot:
        await pilot.pause()
        summary = app.screen.query_one("#sd-summary", Static)
        plain = str(summary.content)
        assert plain == "Blend [bold red]x[/]  done"
        assert "\x1b" not in plain and "\x07" not in plain


DISTILLED = {**DETAIL, "raw": {
    "label": "from the transcript, 1:35–2:40", "raw_page": "compression-basics",
    "start_time": 95, "end_time": 160, "sections": [],
    "text": "so send the drum bus to an aux [red]now[/] \x1b[2J okay"}}


async def test_a_distilled_section_says_what_it_was_written_from_and_shows_it():
    app = Host(lambda: SourceDetailScreen(DISTILLED))
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert str(screen.query_one("#sd-from", Static).content) == (
            "from the transcript, 1:35–2:40  ·  t shows it")
        raw = screen.query_one("#sd-raw", Static)
        assert not raw.display
        await pilot.press("t")
        await wait_until(pilot, lambda: raw.display)
        shown = str(raw.content)
        assert shown.startswith("From the transcript, 1:35–2:40:\n")
        assert "aux [red]now[/]  okay" in shown and "\x1b" not in shown  # literally, no escapes
        assert "t hides it" in str(screen.query_one("#sd-from", Static).content)
        await pilot.press("t")
        await wait_until(pilot, lambda: not raw.display)


async def test_a_section_not_distilled_has_no_transcript_key():
    app = Host(lambda: SourceDetailScreen(DETAIL))
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.screen
        assert not screen.query("#sd-from") and not screen.query("#sd-raw")
        assert screen.check_action("show_transcript", ()) is False
        await pilot.press("t")  # nothing happens, nothing fails
        await pilot.pause()
        assert isinstance(app.screen, SourceDetailScreen)


async def test_source_detail_opens_local_file_in_player(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "ada-v1.mp4").write_bytes(b"\x00")
    out = tmp_path / "argv.txt"
    bin_dir = tmp_path / "bin"
    fake_exe(bin_dir, "mpv", f'printf "%s\\n" "$@" > "{out}.tmp" && mv "{out}.tmp" "{out}"')
    app = Host(lambda: SourceDetailScreen(DETAIL, media_dir=media, player_path=str(bin_dir)))
    async with app.run_test() as pilot:
        await pilot.press("o")
        await wait_until(pilot, lambda: app.notes and out.exists())
        assert app.notes == [("Opening ada-v1.mp4 in mpv at 01:35", "information", "Video")]
        assert out.read_text().splitlines() == ["--start=95", str((media / "ada-v1.mp4").resolve())]


async def test_source_detail_open_reports_why_not(tmp_path):
    app = Host(
        lambda: SourceDetailScreen(DETAIL, media_dir=tmp_path / "media", player_path=str(tmp_path))
    )
    async with app.run_test() as pilot:
        await pilot.press("o")
        await wait_until(pilot, lambda: app.notes)
        ((message, severity, title),) = app.notes
        assert (severity, title) == ("warning", "Video")
        assert message.startswith("Cannot open the video: ada-v1.mp4 not found in")


# -- conversations -----------------------------------------------------------------


async def test_conversations_enter_resumes_the_selected_row():
    app = Host(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: app.results)
        assert app.results == [("resume", "c2")]


async def test_conversations_enter_on_first_row():
    app = Host(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.results)
        assert app.results == [("resume", "c1")]


async def test_conversations_new_and_escape():
    app = Host(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    async with app.run_test() as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: app.results)
        assert app.results == [("new", None)]
    app = Host(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    async with app.run_test() as pilot:
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.results)
        assert app.results == [None]


async def test_conversations_delete_confirmed():
    app = Host(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("down", "d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.messages)
        assert [m.conversation_id for m in app.messages] == ["c2"]
        screen = app.screen
        assert app.messages[0].control is screen  # whose list it was deleted from
        assert isinstance(screen, ConversationsScreen)  # the list stays open
        table = screen.query_one(DataTable)
        assert table.row_count == 1
        assert screen.selected_id == "c1"
        assert app.results == []


async def test_conversations_delete_cancelled_keeps_the_row():
    app = Host(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        assert app.screen.query_one(DataTable).row_count == 2
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("enter")  # focus starts on "Keep": a stray Enter does not delete
        await wait_until(pilot, lambda: isinstance(app.screen, ConversationsScreen))
        assert app.messages == []
        assert app.screen.query_one(DataTable).row_count == 2


async def test_conversations_last_row_deleted_shows_empty_message():
    app = Host(lambda: ConversationsScreen(CONVERSATIONS[:1], now=NOW))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: app.messages)
        screen = app.screen
        assert screen.query_one("#conversations-empty").display
        await pilot.press("enter", "d")  # nothing to resume or delete
        await pilot.pause()
        assert app.results == [] and len(app.messages) == 1
        assert app.screen is screen


async def test_conversations_accepts_summaries_as_objects():
    from tui.services.transcripts import ConversationSummary

    summary = ConversationSummary(
        id="c9", title="From the archive", creator_slug="test-ada", personality_weight=0.0,
        created_at=NOW - timedelta(hours=2), updated_at=NOW - timedelta(hours=1), turns=4,
    )
    app = Host(lambda: ConversationsScreen([summary], now=NOW))
    async with app.run_test() as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert [str(c) for c in table.get_row("c9")] == ["", "From the archive", "test-ada", "1 h ago", "    4"]
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.results)
        assert app.results == [("resume", "c9")]


def test_relative_time():
    assert relative_time(NOW - timedelta(seconds=59), NOW) == "just now"
    assert relative_time(NOW - timedelta(minutes=5), NOW) == "5 min ago"
    assert relative_time(NOW - timedelta(hours=3), NOW) == "3 h ago"
    assert relative_time(NOW - timedelta(hours=30), NOW) == "yesterday"
    assert relative_time(NOW - timedelta(days=6), NOW) == "6 days ago"
    assert relative_time(NOW - timedelta(days=8), NOW) == "2026-11-19"
    assert relative_time("2026-11-27T14:00:00", NOW) == "1 h ago"  # naive means UTC
    assert relative_time(NOW + timedelta(days=1), NOW) == "2026-11-28"  # clock skew: a date
    assert relative_time(None, NOW) == "\u2014"
    assert relative_time("not a date", NOW) == "\u2014"


# -- usage, help, confirm --------------------------------------------------------------


@pytest.mark.parametrize("key", ["escape", "q"])
async def test_usage_escape_and_q_close(key):
    app = Host(lambda: UsageScreen({"days": 7, "per_day": [], "totals": {}}))
    async with app.run_test() as pilot:
        assert isinstance(app.screen, UsageScreen)
        await pilot.press(key)
        await wait_until(pilot, lambda: app.results)
        assert app.results == [None]


async def test_help_lists_keys_and_closes():
    bindings = [("ctrl+o", "Conversations"), ("f1", "Help [b]x[/b]")]
    app = Host(lambda: HelpScreen(bindings))
    async with app.run_test() as pilot:
        await pilot.pause()
        text = str(app.screen.query_one("#help-keys", Static).content)
        assert text == "ctrl+o  Conversations\n    f1  Help [b]x[/b]"
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: app.results)
        assert app.results == [None]


@pytest.mark.parametrize(("key", "expected"), [("y", True), ("n", False), ("escape", False), ("enter", False)])
async def test_confirm_screen_results(key, expected):
    app = Host(lambda: ConfirmScreen("Sure?"))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(key)
        await wait_until(pilot, lambda: app.results)
        assert app.results == [expected]


async def test_conversations_click_resumes():
    app = Host(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    async with app.run_test() as pilot:
        await pilot.pause()
        # The header is line 0. A first click highlights a row, a click on it again opens it.
        await pilot.click(DataTable, offset=(10, 2))
        await pilot.pause()
        assert app.results == [] and app.screen.selected_id == "c2"
        await pilot.click(DataTable, offset=(10, 2))
        await wait_until(pilot, lambda: app.results)
        assert app.results == [("resume", "c2")]


async def test_source_detail_links_in_the_section_are_not_followed():
    clicked: list[str] = []

    class LinkHost(Host):
        @on(Markdown.LinkClicked)
        def link(self, event: Markdown.LinkClicked) -> None:
            clicked.append(event.href)

    detail = dict(DETAIL, section_body="[evil](https://example.com/x)")
    app = LinkHost(lambda: SourceDetailScreen(detail))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.click("#sd-section", offset=(1, 0))
        await pilot.pause()
        assert clicked == []
        assert isinstance(app.screen, SourceDetailScreen)
