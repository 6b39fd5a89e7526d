"""The usage log and `chrysopedia usage`, on both SQL backends."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tui.cli import main
from tui.db.engine import Database
from tui.db.models import ChatUsageLog
from tui.services.usage import log_usage, percentile, scrub, usage_report

NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


async def rows(db) -> list[ChatUsageLog]:
    async with db.session() as session:
        return list((await session.execute(select(ChatUsageLog).order_by(ChatUsageLog.id))).scalars())


async def test_logs_server_usage_and_the_serving_model(db):
    ok = await log_usage(
        db, query="What is a reese?", creator_slug="skope", conversation_id="c" * 36,
        usage={"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        prompt_chars=9999, completion_chars=9999, cascade_tier="creator", model="fallback-model",
        fallback_used=True, latency_ms=1234.5, status="answered", user_id="u1", client_ip="127.0.0.1",
    )
    assert ok is True
    (r,) = await rows(db)
    assert (r.prompt_tokens, r.completion_tokens, r.total_tokens, r.usage_estimated) == (100, 20, 120, False)
    assert (r.model, r.fallback_used, r.cascade_tier, r.status) == ("fallback-model", True, "creator", "answered")
    assert (r.creator_slug, r.user_id, r.client_ip, r.latency_ms) == ("skope", "u1", "127.0.0.1", 1234.5)


async def test_estimates_when_the_server_sent_no_usage(db):
    # A cancelled request: the server never sent its usage.
    await log_usage(db, query="q", usage=None, prompt_chars=4003, completion_chars=81,
                    model="m", status="cancelled", latency_ms=50)
    await log_usage(db, query="q", usage={"prompt_tokens": 7, "completion_tokens": 5},
                    model="m", status="failed")
    cancelled, failed = await rows(db)
    assert (cancelled.prompt_tokens, cancelled.completion_tokens, cancelled.total_tokens) == (1000, 20, 1020)
    assert cancelled.usage_estimated is True and cancelled.status == "cancelled"
    assert failed.total_tokens == 12 and failed.usage_estimated is False


async def test_query_truncated_and_secrets_never_stored(db):
    key = "sk-test-1234567890abcdefghij"
    await log_usage(db, query="x" * 5000, usage=None, model="m")
    await log_usage(db, query=f"my key is {key} ok", usage=None,
                    model="http://user:hunter2@host/m", secrets=("hunter2-not-this",))
    await log_usage(db, query="custom token SECRET-VALUE-42 here", usage=None, model="m",
                    secrets=("SECRET-VALUE-42",))
    long_row, key_row, custom = await rows(db)
    assert len(long_row.query) == 2000
    assert key not in key_row.query and "***" in key_row.query
    assert "hunter2" not in key_row.model
    assert "SECRET-VALUE-42" not in custom.query


def test_scrub():
    assert scrub("Bearer abcdefghijklmnopqrstuvwxyz") == "***"
    assert scrub("redis://:pw@h:6379") == "redis://:***@h:6379"
    assert scrub("nothing here") == "nothing here"


async def test_never_raises(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="chrysopedia.usage")
    broken = Database(f"sqlite+aiosqlite:///{tmp_path / 'no-schema.db'}")  # tables never created
    try:
        assert await log_usage(broken, query="q", usage=None, model="m") is False
    finally:
        await broken.dispose()
    assert "chat_usage_log_insert_error" in caplog.text


def test_percentile_nearest_rank():
    assert percentile([], 95) is None
    assert percentile([5.0], 95) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


async def insert_rows(db, specs):
    async with db.session() as session, session.begin():
        for created, status, tokens, latency, tier, model, fallback in specs:
            session.add(ChatUsageLog(
                query="q", prompt_tokens=tokens - 1, completion_tokens=1, total_tokens=tokens,
                status=status, latency_ms=latency, cascade_tier=tier, model=model,
                fallback_used=fallback, created_at=created, usage_estimated=(status == "cancelled"),
            ))


async def test_report(db):
    day = timedelta(days=1)
    await insert_rows(db, [
        (NOW - timedelta(hours=1), "answered", 100, 1000.0, "creator", "m1", False),
        (NOW - timedelta(hours=2), "answered", 200, 3000.0, "global", "m2", True),
        (NOW - day, "answered", 50, 2000.0, "creator", "m1", False),
        (NOW - day, "failed", 10, 99999.0, "creator", "m1", True),
        (NOW - 2 * day, "cancelled", 30, 500.0, "", "m1", False),
        (NOW - 40 * day, "answered", 1000, 10.0, "creator", "m1", False),  # outside 30 days
    ])
    r = await usage_report(db, days=30, now=NOW)
    assert r["totals"] == {
        "requests": 5, "answered": 3, "failed": 1, "cancelled": 1, "incomplete": 0,
        "prompt_tokens": 385,
        "completion_tokens": 5, "total_tokens": 390, "estimated": 1,
    }
    assert len(r["per_day"]) == 30 and r["per_day"][-1]["date"] == "2026-11-27"
    by_date = {d["date"]: d for d in r["per_day"]}
    assert (by_date["2026-11-27"]["requests"], by_date["2026-11-27"]["total_tokens"]) == (2, 300)
    assert (by_date["2026-11-26"]["requests"], by_date["2026-11-26"]["total_tokens"]) == (2, 60)
    assert by_date["2026-11-25"]["requests"] == 1 and by_date["2026-11-24"]["requests"] == 0
    # Latency over answered requests only.
    assert r["latency_ms"] == {"mean": 2000.0, "p50": 2000.0, "p95": 3000.0, "max": 3000.0}
    assert r["fallback_rate"] == pytest.approx(2 / 5)
    assert r["tiers"] == {"creator": 3, "(none)": 1, "global": 1}
    assert r["models"] == {"m1": 4, "m2": 1}
    json.dumps(r)  # JSON-ready

    today = await usage_report(db, days=1, now=NOW)
    assert today["totals"]["requests"] == 2 and len(today["per_day"]) == 1
    with pytest.raises(ValueError):
        await usage_report(db, days=0)


async def test_report_empty(db):
    r = await usage_report(db, days=7, now=NOW)
    assert r["totals"]["requests"] == 0 and r["fallback_rate"] is None
    assert r["latency_ms"]["p95"] is None and len(r["per_day"]) == 7


def test_usage_command(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    async def seed():
        db = Database("sqlite+aiosqlite:///" + str(tmp_path / "cli.db"))
        await db.init()
        await log_usage(db, query="q", usage={"prompt_tokens": 3, "completion_tokens": 4},
                        cascade_tier="global", model="gpt-x", latency_ms=420)
        await log_usage(db, query="q", usage=None, prompt_chars=40, completion_chars=8,
                        cascade_tier="global", model="gpt-x", status="cancelled")
        await db.dispose()

    asyncio.run(seed())
    assert main(["--db", url, "usage", "--json", "--days", "7"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["requests"] == 2 and report["totals"]["total_tokens"] == 19
    assert report["totals"]["cancelled"] == 1 and len(report["per_day"]) == 7

    assert main(["--db", url, "usage", "--days", "3"]) == 0
    out = capsys.readouterr().out
    assert "requests" in out and "p95 420 ms" in out and "global 2" in out and "gpt-x 2" in out

    assert main(["--db", url, "usage", "--days", "0"]) == 2
    assert "--days" in capsys.readouterr().err
