"""Snapshots of the main screen (and the screens it opens), the real app at fixed sizes.

Plain `def` tests (snap_compare does not run inside an async test). Determinism:
a fixed theme, no blinking cursor, the mini KB only, a scripted chat service
(fixed tokens, latency and usage), and a fixed "now" for screens that show ages,
with conversations and usage rows written at fixed times.

Update with `pytest tests/test_snapshots_app.py --snapshot-update`, then look at
every changed SVG as a picture (rsvg-convert -o x.png x.svg) before committing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from test_app_support import (
    SOURCES,
    ScriptedChat,
    app_settings,
    load_mini_kb,
    make_test_app,
    wait_until,
)

NOW = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)
SIZE = (120, 40)


async def _seed_archive(settings) -> None:
    """Three past conversations and a month of usage, at fixed times."""
    from tui.commands._common import open_database
    from tui.db.models import ChatUsageLog, Conversation, Message

    db = await open_database(settings, load_bundled=False)
    try:
        async with db.session() as session, session.begin():
            convs = [
                ("11111111-1111-4111-8111-111111111111", "How do I set up parallel compression?",
                 "test-ada", timedelta(minutes=5), 3),
                ("22222222-2222-4222-8222-222222222222", "Sidechain the bass to the kick",
                 None, timedelta(hours=3), 1),
                ("33333333-3333-4333-8333-333333333333", "Chopping breaks [bold]cleanly[/bold]",
                 "test-bo", timedelta(days=4), 2),
            ]
            for cid, title, creator, age, turns in convs:
                when = NOW - age
                session.add(Conversation(id=cid, title=title, creator_slug=creator,
                                         created_at=when, updated_at=when))
                for turn in range(1, turns + 1):
                    session.add(Message(conversation_id=cid, turn=turn, role="user",
                                        content=title, created_at=when))
                    session.add(Message(conversation_id=cid, turn=turn, role="assistant",
                                        content="An answer [1].", created_at=when))
            for day in range(10):
                for i in range(day % 4 + 1):
                    session.add(ChatUsageLog(
                        query="q", prompt_tokens=600 + 40 * i, completion_tokens=120 + 10 * day,
                        total_tokens=720 + 40 * i + 10 * day, cascade_tier=("creator", "global")[i % 2],
                        model="test-model", latency_ms=800.0 + 90 * day + 15 * i,
                        fallback_used=(day == 3 and i == 0), status="answered",
                        created_at=NOW - timedelta(days=day, hours=1 + i),
                    ))
    finally:
        await db.dispose()


@pytest.fixture
def snap_settings(tmp_path):
    settings = app_settings(tmp_path)

    async def prepare() -> None:
        await load_mini_kb(settings)
        await _seed_archive(settings)

    asyncio.run(prepare())
    return settings


def app_for(settings, **overrides):
    overrides.setdefault("chat_service", ScriptedChat())
    return make_test_app(settings, clock=lambda: NOW, **overrides)


async def _ready(pilot) -> None:
    app = pilot.app
    await wait_until(pilot, app.ready.is_set)
    await pilot.pause()


async def _ask(pilot, question: str = "How do I use parallel compression on drums?") -> None:
    app = pilot.app
    await _ready(pilot)
    count = len(app.conversation.answers)
    app.prompt.load_text(question)
    await pilot.press("enter")
    await wait_until(pilot, lambda: len(app.conversation.answers) > count)
    answer = app.conversation.answers[-1]
    await wait_until(pilot, lambda: answer.status not in ("working", "streaming"))
    await pilot.pause()
    app.clear_notifications()
    await pilot.pause()


def test_empty_start_screen(snap_compare, snap_settings):
    assert snap_compare(app_for(snap_settings), terminal_size=SIZE, run_before=_ready)


def test_answered_question_with_sources(snap_compare, snap_settings):
    assert snap_compare(app_for(snap_settings), terminal_size=SIZE, run_before=_ask)


def test_source_detail(snap_compare, snap_settings):
    async def run_before(pilot) -> None:
        await _ask(pilot)
        await pilot.press("ctrl+l", "down", "enter")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "SourceDetailScreen")
        await pilot.pause()

    assert snap_compare(app_for(snap_settings), terminal_size=SIZE, run_before=run_before)


LOCATED_SOURCES = [
    {**SOURCES[0], "locator": {"kind": "video", "video_id": "ada-v1", "start_time": 30,
                               "end_time": 95}, "locator_label": "00:30–01:35"},
    {**SOURCES[1], "title": "Polygon Synth Manual", "section_heading": "Shimmer Reverb",
     "start_time": None, "end_time": None, "video_filename": None,
     "locator": {"kind": "page", "path": "polygon.pdf", "file": "/kb/polygon.pdf",
                 "first_page": 14, "last_page": 15}, "locator_label": "p. 14–15"},
    {**SOURCES[2], "title": "Reverb notes", "section_heading": "Pre-delay",
     "start_time": None, "end_time": None, "video_filename": None,
     "locator": {"kind": "heading", "path": "notes/reverb.md", "file": "/kb/notes/reverb.md",
                 "heading": "Pre-delay", "line": 12},
     "locator_label": "notes/reverb.md › Pre-delay"},
]


def test_sources_sidebar_shows_where_each_source_is(snap_compare, snap_settings):
    """A video's times, a PDF's pages, a note's path › heading."""
    app = app_for(snap_settings, chat_service=ScriptedChat(sources=LOCATED_SOURCES))
    assert snap_compare(app, terminal_size=SIZE, run_before=_ask)


@pytest.mark.parametrize("weight", [0.25, 0.65, 1.0], ids=["subtle", "respond-as", "full"])
def test_voice_slider_tiers(snap_compare, snap_settings, weight):
    async def run_before(pilot) -> None:
        app = pilot.app
        await _ready(pilot)
        app.picker.value = "test-ada"
        await wait_until(pilot, lambda: not app.slider.disabled)
        app.slider.focus()
        await pilot.press("home", *["right"] * round(weight * 20))
        await pilot.press("ctrl+t")
        await pilot.pause()

    assert snap_compare(app_for(snap_settings), terminal_size=SIZE, run_before=run_before)


def test_error_with_retry(snap_compare, snap_settings):
    async def run_before(pilot) -> None:
        app = pilot.app
        await _ready(pilot)
        app.prompt.load_text("How do I use parallel compression on drums?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation.last_answer is not None
                         and app.conversation.last_answer.status == "failed")
        await pilot.pause()

    app = app_for(snap_settings, chat_service=ScriptedChat(mode="error"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_conversations_screen(snap_compare, snap_settings):
    async def run_before(pilot) -> None:
        await _ready(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "ConversationsScreen")
        await pilot.pause()

    assert snap_compare(app_for(snap_settings), terminal_size=SIZE, run_before=run_before)


def test_usage_screen(snap_compare, snap_settings):
    async def run_before(pilot) -> None:
        await _ready(pilot)
        await pilot.press("f4")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "UsageScreen")
        await pilot.pause()

    assert snap_compare(app_for(snap_settings), terminal_size=SIZE, run_before=run_before)


def test_answered_at_80x24(snap_compare, snap_settings):
    assert snap_compare(app_for(snap_settings), terminal_size=(80, 24), run_before=_ask)


def test_help_screen(snap_compare, snap_settings):
    async def run_before(pilot) -> None:
        await _ready(pilot)
        await pilot.press("f1")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "HelpScreen")
        await pilot.pause()

    assert snap_compare(app_for(snap_settings), terminal_size=SIZE, run_before=run_before)


class CheckedChat(ScriptedChat):
    """The scripted answer with its claim check, made by the real check over the mini KB's
    sections: marks after the questionable claims, the summary, the sidebar's counts."""

    async def stream_response(self, *args, **kwargs):
        import dataclasses
        import json

        from test_app_support import DATA

        from tui.services.claims import check_claims
        from tui.services.events import Done

        kb = json.loads((DATA / "mini_kb.json").read_text())
        bodies = {(t["slug"], s["anchor"]): s["body"] for t in kb["techniques"]
                  for s in t["sections"]}
        sections = [{"title": s["title"], "section_heading": s["section_heading"],
                     "section_body": bodies[s["slug"], s["section_anchor"]]} for s in self.sources]
        claims = check_claims("".join(self.tokens), sections).as_dict()
        async for event in super().stream_response(*args, **kwargs):
            yield dataclasses.replace(event, claims=claims) if isinstance(event, Done) else event


def test_answer_with_its_claim_check(snap_compare, snap_settings):
    chat = CheckedChat(tokens=[
        "Send the drum bus to an aux with a compressor at 10:1 [1].\n\n",
        "- Blend the return until the drums feel thicker, 6 to 10 dB under the dry bus [1]\n",
        "- Set the release of the return to 400 ms [2]\n",
        "- Route the kick to the compressor's sidechain input, ratio 4:1 [3]\n",
    ])
    assert snap_compare(app_for(snap_settings, chat_service=chat), terminal_size=SIZE,
                        run_before=_ask)
