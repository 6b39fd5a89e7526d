"""Helpers for the app's pilot and snapshot tests (no tests here).

- `prepare_settings(tmp_path)`: Settings with a temp data dir and a SQLite file
  holding tests/data/mini_kb.json (fast, fixed content for snapshots).
- `ScriptedChat`: a chat service that yields fixed `tui.services.events`
  values, for snapshots that must not depend on timing (latency, tokens). The
  pilot tests drive the real ChatService against the loopback model server.
- `wait_until(pilot, predicate)`: wait on a condition, never on a sleep.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tui.config import Settings
from tui.services.events import Done, Error, Sources, Token

DATA = Path(__file__).parent / "data"

SOURCES = [
    {
        "number": 1, "title": "Parallel Compression on Drums", "slug": "parallel-compression",
        "creator_name": "Test Ada", "topic_category": "Mixing",
        "summary": "Blend a crushed copy of the drums under the dry signal.",
        "section_anchor": "setup", "section_heading": "Setting up the send",
        "source_video_id": "ada-v1", "start_time": 30, "end_time": 95,
        "video_filename": "ada-v1.mp4",
    },
    {
        "number": 2, "title": "Parallel Compression on Drums", "slug": "parallel-compression",
        "creator_name": "Test Ada", "topic_category": "Mixing",
        "summary": "Blend a crushed copy of the drums under the dry signal.",
        "section_anchor": "blend", "section_heading": "Blending",
        "source_video_id": "ada-v1", "start_time": 95, "end_time": 160,
        "video_filename": "ada-v1.mp4",
    },
    {
        "number": 3, "title": "Sidechain Ducking", "slug": "sidechain-ducking",
        "creator_name": "Test Ada", "topic_category": "Mixing",
        "summary": "Duck the bass under the kick.",
        "section_anchor": "key", "section_heading": "Keying from the kick",
        "source_video_id": "ada-v1", "start_time": 200, "end_time": 260,
        "video_filename": "ada-v1.mp4",
    },
]

ANSWER_TOKENS = [
    "**Parallel compression** keeps the transients of the dry drums",
    " while a crushed copy adds sustain [1].", "\n\n",
    "- Send the drum bus to an aux with a fast compressor at 10:1 [1]\n",
    "- Blend the return 6 to 10 dB under the dry bus [2]\n",
    "- Duck the bass under the kick for room [3]\n\n",
    "Numbers out of range such as [7] stay plain text; `[bold]not markup[/bold]`.",
]


def app_settings(tmp_path: Path, base: Settings | None = None, **overrides: Any) -> Settings:
    """`base` (or defaults) with a temp data dir and a SQLite file in `tmp_path`."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    values = dict(data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
                  llm_connect_timeout=2.0)  # a loaded machine may starve the loopback server
    values.update(overrides)
    return (base or Settings()).with_overrides(**values)


async def load_mini_kb(settings: Settings) -> None:
    from tui.commands._common import open_database
    from tui.db.importer import import_path

    db = await open_database(settings, load_bundled=False)
    try:
        await import_path(db, DATA / "mini_kb.json")
    finally:
        await db.dispose()


def prepare_settings(tmp_path: Path, base: Settings | None = None, **overrides: Any) -> Settings:
    """Settings with a temp data dir and a database holding the mini KB (sync callers)."""
    settings = app_settings(tmp_path, base, **overrides)
    asyncio.run(load_mini_kb(settings))
    return settings


def make_test_app(settings: Settings, **overrides: Any):
    """The real app, deterministic: fixed theme, no blinking cursor, mini KB only."""
    from tui.app import make_app

    overrides.setdefault("theme", "textual-dark")
    overrides.setdefault("remember_theme", False)
    overrides.setdefault("cursor_blink", False)
    overrides.setdefault("load_bundled_kb", False)
    # gc.freeze() is process-wide: keep it out of a test process shared with other suites.
    overrides.setdefault("manage_gc", False)
    return make_app(settings, **overrides)


class ScriptedChat:
    """Yields a fixed answer; `mode` "error" fails after the sources; "hold" waits on `release`."""

    def __init__(self, tokens: list[str] | None = None, sources=None, mode: str = "normal") -> None:
        self.tokens = list(ANSWER_TOKENS if tokens is None else tokens)
        self.sources = SOURCES if sources is None else sources
        self.mode = mode
        self.calls: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self.turn = 0

    async def stream_response(self, query, creator=None, conversation_id=None,
                              personality_weight=0.0, regenerate=False):
        self.calls.append({"query": query, "creator": creator, "conversation_id": conversation_id,
                           "personality_weight": personality_weight, "regenerate": regenerate})
        yield Sources(list(self.sources))
        if self.mode == "error":
            yield Error("The model server did not answer (connection refused).")
            return
        for i, token in enumerate(self.tokens):
            if self.mode == "hold" and i == 2:
                await self.release.wait()
            yield Token(token)
        if not regenerate:
            self.turn += 1
        yield Done(
            cascade_tier="creator", conversation_id="00000000-0000-4000-8000-000000000001",
            fallback_used=False, model="test-model",
            usage={"prompt_tokens": 812, "completion_tokens": 96, "total_tokens": 908},
            latency_ms=1234.0, cited=[1, 2, 3], invalid_citations=[7], turn=self.turn,
        )


async def wait_until(pilot, predicate, *, timeout: float = 20.0, what: str = "") -> None:
    """Let the app run until `predicate()` is true (fails after `timeout` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.01)
