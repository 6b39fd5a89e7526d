"""Snapshots of the screens, each pushed onto a tiny host App with fixed data.

Plain `def` tests (snap_compare does not run inside an async test), a fixed
theme and size, no wall clock (the conversations screen gets a fixed `now`),
no blinking cursor (no Input on these screens). Hostile text — Rich markup,
a clear-screen escape and an OSC 52 clipboard write — is in the source detail
and conversations data: it must show literally or be stripped.

Update with `pytest tests/test_snapshots_screens.py --snapshot-update`, then look
at every changed SVG as a picture (rsvg-convert -o x.png x.svg) before committing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from tui.screens import ConversationsScreen, HelpScreen, SourceDetailScreen, UsageScreen

HOSTILE_MARKUP = "[bold red]x[/]"
CLEAR_SCREEN = "\x1b[2J"
OSC52 = "\x1b]52;c;aGFja2Vk\x07"

SOURCE_DETAIL = {
    "number": 2,
    "title": "Parallel Compression on Drums",
    "slug": "parallel-compression",
    "creator_name": "Test Ada",
    "creator_slug": "test-ada",
    "topic_category": "Mixing",
    "tags": ["compression", "drums", HOSTILE_MARKUP],
    "summary": f"Blend a crushed copy of the drums under the dry signal. {HOSTILE_MARKUP}{CLEAR_SCREEN}{OSC52}",
    "section_anchor": "setup",
    "section_heading": "Setting up the send",
    "section_body": (
        "Send the drum bus to an aux with a compressor:\n\n"
        "- ratio **10:1**, attack 1 ms\n"
        "- release 100 ms\n\n"
        f"Literal markup stays literal: {HOSTILE_MARKUP}{CLEAR_SCREEN}{OSC52}\n\n"
        "```\nsend -> aux -> comp\n```\n"
    ),
    "source_video_id": "ada-v1",
    "video_title": f"Compression basics {HOSTILE_MARKUP}",
    "video_filename": "ada-v1.mp4",
    "video_url": "https://example.com/ada-v1",
    "start_time": 30,
    "end_time": 95,
}

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
CONVERSATIONS = [
    {"id": "c1", "title": "How do I thicken drums?", "creator_name": "Test Ada",
     "updated_at": NOW - timedelta(seconds=20), "turns": 3},
    {"id": "c2", "title": f"Markup {HOSTILE_MARKUP} and escapes{CLEAR_SCREEN}{OSC52} here",
     "creator_name": None, "creator_slug": "test-bo",
     "updated_at": NOW - timedelta(minutes=42), "turns": 1},
    {"id": "c3", "title": "Sidechain ducking without a plugin", "creator_name": "Test Ada",
     "updated_at": (NOW - timedelta(hours=5)).isoformat(), "turns": 7},
    {"id": "c4", "title": "Chopping breaks on transients", "creator_name": "Test Bo",
     "updated_at": NOW - timedelta(days=1, hours=2), "turns": 2},
    {"id": "c5", "title": "A very long title " * 6, "creator_name": "Test Ada",
     "updated_at": NOW - timedelta(days=4), "turns": 12},
    {"id": "c6", "title": "Resampling a pad", "creator_name": None,
     "updated_at": NOW - timedelta(days=40), "turns": 0},
]

USAGE_REPORT = {
    "days": 7,
    "since": "2026-11-21T00:00:00+00:00",
    "until": "2026-11-27T15:00:00+00:00",
    "totals": {"requests": 42, "answered": 38, "failed": 3, "cancelled": 1,
               "prompt_tokens": 98_000, "completion_tokens": 25_456,
               "total_tokens": 123_456, "estimated": 4},
    "per_day": [
        {"date": "2026-11-21", "requests": 3, "prompt_tokens": 6000, "completion_tokens": 1500, "total_tokens": 7500},
        {"date": "2026-11-22", "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        {"date": "2026-11-23", "requests": 8, "prompt_tokens": 19000, "completion_tokens": 5000, "total_tokens": 24000},
        {"date": "2026-11-24", "requests": 12, "prompt_tokens": 30000, "completion_tokens": 8000, "total_tokens": 38000},
        {"date": "2026-11-25", "requests": 5, "prompt_tokens": 11000, "completion_tokens": 2956, "total_tokens": 13956},
        {"date": "2026-11-26", "requests": 9, "prompt_tokens": 22000, "completion_tokens": 6000, "total_tokens": 28000},
        {"date": "2026-11-27", "requests": 5, "prompt_tokens": 10000, "completion_tokens": 2000, "total_tokens": 12000},
    ],
    "latency_ms": {"mean": 1480.5, "p50": 1210.0, "p95": 3420.0, "max": 5100.0},
    "fallback_rate": 0.0714,
    "tiers": {"creator": 20, "global": 14, "keyword": 6, "(none)": 2},
    "models": {"gpt-4o-mini": 36, f"local-fallback {HOSTILE_MARKUP}": 3, "offline digest": 3},
}

HELP_BINDINGS = [
    ("enter", "Send the question", "Chat"),
    ("ctrl+r", "Regenerate the last answer", "Chat"),
    ("escape", "Cancel the answer", "Chat"),
    ("1-9", "Open source N", "Sources"),
    ("ctrl+y", "Copy the answer", "Sources"),
    ("ctrl+o", "Conversations", "Screens"),
    ("ctrl+u", "Usage", "Screens"),
    ("f1", "This help", "Screens"),
    ("ctrl+q", f"Quit {HOSTILE_MARKUP}", "Screens"),
]


class ScreenHost(App[None]):
    """A bare App that pushes one screen over a placeholder and records its result."""

    CSS = "#host { color: $text-muted; }"

    def __init__(self, make_screen: Callable[[], Screen]) -> None:
        super().__init__()
        self.make_screen = make_screen
        self.results: list[object] = []

    def compose(self) -> ComposeResult:
        yield Static("The chat is underneath.", id="host")

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.push_screen(self.make_screen(), self.results.append)


def test_source_detail(snap_compare):
    app = ScreenHost(lambda: SourceDetailScreen(SOURCE_DETAIL))
    assert snap_compare(app, terminal_size=(120, 40))


def test_source_detail_small_terminal(snap_compare):
    app = ScreenHost(lambda: SourceDetailScreen(SOURCE_DETAIL))
    assert snap_compare(app, terminal_size=(80, 24))


def test_conversations(snap_compare):
    app = ScreenHost(lambda: ConversationsScreen(CONVERSATIONS, now=NOW, current_id="c3"))
    assert snap_compare(app, terminal_size=(120, 40))


def test_conversations_delete_confirm(snap_compare):
    app = ScreenHost(lambda: ConversationsScreen(CONVERSATIONS, now=NOW))
    assert snap_compare(app, terminal_size=(80, 24), press=["down", "d"])


def test_conversations_empty(snap_compare):
    app = ScreenHost(lambda: ConversationsScreen([], now=NOW))
    assert snap_compare(app, terminal_size=(80, 24))


def test_usage(snap_compare):
    app = ScreenHost(lambda: UsageScreen(USAGE_REPORT))
    assert snap_compare(app, terminal_size=(120, 40))


def test_usage_month_small_terminal(snap_compare):
    """30 days in 80 columns: the panels stack and the per-day bars still fit."""
    per_day = [
        {"date": f"2026-{10 + (d + 28) // 31:02d}-{(d + 28) % 31 + 1:02d}",
         "requests": (d * 7) % 11, "total_tokens": ((d * 7) % 11) * 2900 + (d % 3) * 400}
        for d in range(30)
    ]
    report = dict(USAGE_REPORT, days=30, per_day=per_day)
    app = ScreenHost(lambda: UsageScreen(report))
    assert snap_compare(app, terminal_size=(80, 24), press=["end"])


def test_usage_empty(snap_compare):
    report = {
        "days": 1, "totals": {"requests": 0}, "per_day": [{"date": "2026-11-27", "requests": 0, "total_tokens": 0}],
        "latency_ms": {"mean": None, "p50": None, "p95": None, "max": None},
        "fallback_rate": None, "tiers": {}, "models": {},
    }
    app = ScreenHost(lambda: UsageScreen(report))
    assert snap_compare(app, terminal_size=(80, 24))


def test_help(snap_compare):
    app = ScreenHost(lambda: HelpScreen(HELP_BINDINGS))
    assert snap_compare(app, terminal_size=(120, 40))


def test_usage_with_the_share_of_supported_claims(snap_compare):
    """Days with checked answers get a bar of the share their sources support."""
    checked = {"2026-11-21": (20, 18), "2026-11-24": (14, 7), "2026-11-27": (11, 11)}
    per_day = []
    for row in USAGE_REPORT["per_day"]:
        claims, supported = checked.get(row["date"], (0, 0))
        per_day.append(dict(row, claims=claims, supported_claims=supported,
                            supported_share=supported / claims if claims else None))
    report = dict(USAGE_REPORT, per_day=per_day,
                  claims={"total": 45, "supported": 36, "supported_share": 0.8})
    app = ScreenHost(lambda: UsageScreen(report))
    assert snap_compare(app, terminal_size=(120, 48))


def test_source_detail_with_the_supporting_words_lit(snap_compare):
    """A citation opened from an answer: the words that back it lit, in paragraphs."""
    body = SOURCE_DETAIL["section_body"]
    start = body.index("ratio **10:1**")
    span = ("section_body", start, body.index("100 ms") + len("100 ms"))
    app = ScreenHost(lambda: SourceDetailScreen(SOURCE_DETAIL, highlight=span))
    assert snap_compare(app, terminal_size=(120, 40))


PDF_DETAIL = {
    "number": 1, "title": "Polygon Synth Manual", "creator_name": "Polygon Audio",
    "topic_category": "Sound Design", "tags": ["reverb", "manual"],
    "summary": "The synth's effects section.", "section_heading": "Shimmer Reverb",
    "section_body": "The shimmer reverb adds an octave-up tail. Pre-delay goes up to 500 ms.",
    "locator": {"kind": "page", "path": "manuals/polygon.pdf",
                "file": "/home/ada/kb/manuals/polygon.pdf", "first_page": 14, "last_page": 15},
    "locator_label": "p. 14–15",
}

NOTE_DETAIL = {
    "number": 3, "title": "Reverb notes", "creator_name": "notes",
    "topic_category": "Mixing", "tags": ["reverb"], "summary": "",
    "section_heading": f"Pre-delay {HOSTILE_MARKUP}",
    "section_body": "Set the pre-delay to 40 ms so the snare transient stays dry.",
    "locator": {"kind": "heading", "path": "notes/reverb.md", "file": "/home/ada/kb/notes/reverb.md",
                "heading": f"Pre-delay {HOSTILE_MARKUP}", "line": 12},
    "locator_label": f"notes/reverb.md › Pre-delay {HOSTILE_MARKUP}",
}


@pytest.mark.parametrize("detail", [PDF_DETAIL, NOTE_DETAIL], ids=["pdf", "note"])
def test_source_detail_located(snap_compare, detail):
    """A PDF's pages and a note's heading instead of a video; `o` says what it does."""
    app = ScreenHost(lambda: SourceDetailScreen(detail))
    assert snap_compare(app, terminal_size=(100, 30))


USAGE_USERS = [
    {"user_id": "ana", "requests": 21, "answered": 20, "failed": 1, "cancelled": 0,
     "total_tokens": 61_200, "latency_p50_ms": 1150.0, "latency_p95_ms": 3100.0,
     "last_seen": "2026-11-27T14:58:30+00:00"},
    {"user_id": "ben.k", "requests": 14, "answered": 12, "failed": 2, "cancelled": 0,
     "total_tokens": 44_056, "latency_p50_ms": 1320.0, "latency_p95_ms": 4200.0,
     "last_seen": "2026-11-27T11:05:00+00:00"},
    {"user_id": f"studio-b {HOSTILE_MARKUP}{CLEAR_SCREEN}", "requests": 6, "answered": 6,
     "failed": 0, "cancelled": 0, "total_tokens": 16_800, "latency_p50_ms": 980.0,
     "latency_p95_ms": 1900.0, "last_seen": "2026-11-25T09:00:00+00:00"},
    {"user_id": "(unknown)", "requests": 1, "answered": 0, "failed": 0, "cancelled": 1,
     "total_tokens": 1_400, "latency_p50_ms": None, "latency_p95_ms": None,
     "last_seen": "2026-11-21T18:00:00+00:00"},
]


def test_usage_by_user(snap_compare):
    """`u`: per user the requests, answered/failed, tokens, latency and when last seen; the
    user ids literally (markup and escapes are data); the footer offers the way back."""
    report = dict(USAGE_REPORT, users=USAGE_USERS)
    app = ScreenHost(lambda: UsageScreen(report))
    assert snap_compare(app, terminal_size=(120, 40), press=["u"])
