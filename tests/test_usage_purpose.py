"""Usage rows say what the model was asked for: answering apart from distilling (schema v7)."""

from __future__ import annotations

from sqlalchemy import inspect, select, text

from tui.db.engine import SCHEMA_VERSION, set_meta
from tui.db.models import ChatUsageLog
from tui.services.usage import log_usage, usage_report


async def test_purpose_is_stored_and_reported_apart(db):
    await log_usage(db, query="q", usage={"prompt_tokens": 10, "completion_tokens": 5}, model="m")
    await log_usage(db, query="distill page", usage={"prompt_tokens": 900, "completion_tokens": 300},
                    model="m", purpose="distill")
    async with db.session() as session:
        purposes = list((await session.execute(
            select(ChatUsageLog.purpose).order_by(ChatUsageLog.id))).scalars())
    assert purposes == ["answer", "distill"]
    report = await usage_report(db)
    assert report["purposes"] == {
        "answer": {"requests": 1, "total_tokens": 15},
        "distill": {"requests": 1, "total_tokens": 1200},
    }
    # The usage screen draws them apart, under the totals.
    from textual.app import App
    from textual.widgets import Static

    from tui.screens.usage import UsageScreen

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(UsageScreen(report))

    app = Host()
    async with app.run_test() as pilot:
        await pilot.pause()
        totals = str(app.screen.query_one("#usage-totals").query_one(Static).content)
    assert "For       answering 1 requests · 15 tokens" in totals
    assert "distilling 1 requests · 1,200 tokens" in totals


async def test_the_usage_screen_says_nothing_of_purposes_when_only_answers_were_asked():
    from textual.app import App
    from textual.widgets import Static

    from tui.screens.usage import UsageScreen

    report = {"totals": {"requests": 1}, "per_day": [],
              "purposes": {"answer": {"requests": 1, "total_tokens": 15}}}

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(UsageScreen(report))

    async with Host().run_test() as pilot:
        await pilot.pause()
        totals = str(pilot.app.screen.query_one("#usage-totals").query_one(Static).content)
    assert "Requests" in totals and "For " not in totals and "answering" not in totals


async def test_a_database_before_v7_gains_the_column_and_old_rows_answered(db_target):
    db = db_target.database()
    try:
        await db.init()
        await log_usage(db, query="old question", usage=None, model="m")
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE chat_usage_log DROP COLUMN purpose"))
            await set_meta(conn, "schema_version", "6")
        assert await db.init() == SCHEMA_VERSION
        async with db.engine.connect() as conn:
            cols = await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("chat_usage_log")})
        assert "purpose" in cols
        async with db.session() as session:
            (old,) = (await session.execute(select(ChatUsageLog))).scalars()
        assert old.purpose == "answer" and old.query == "old question"
        assert await db.init() == SCHEMA_VERSION  # idempotent
    finally:
        await db.dispose()


def test_the_usage_command_shows_distilling_apart():
    from tui.commands.usage import format_report

    report = {"days": 1, "since": "2026-01-01T00:00:00", "totals": {
        "requests": 2, "answered": 2, "failed": 0, "cancelled": 0, "incomplete": 0,
        "prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15, "estimated": 0},
        "latency_ms": {"mean": None, "p50": None, "p95": None, "max": None},
        "fallback_rate": 0.0, "tiers": {}, "models": {}, "per_day": [],
        "purposes": {"answer": {"requests": 1, "total_tokens": 5},
                     "distill": {"requests": 1, "total_tokens": 10}}}
    assert "  purposes   answer 1 (5 tokens) · distill 1 (10 tokens)" in format_report(report)
    report["purposes"] = {"answer": {"requests": 2, "total_tokens": 15}}
    assert not any("purposes" in line for line in format_report(report))
