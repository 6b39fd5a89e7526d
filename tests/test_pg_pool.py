"""The PostgreSQL pool each process opens: one connection kept, one more borrowed for a moment
(settings `database_pool_size`, `database_max_overflow`), so fifty terminals fit a server's
default max_connections of 100. Counted in pg_stat_activity on the real server, under
concurrent work, by the application_name our connections carry."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from conftest import PG_DSN, _pg_admin, needs_pg

from tui.config import ConfigError, load_settings

pytestmark = [pytest.mark.postgres, needs_pg]

PG_URL = "postgresql+asyncpg" + PG_DSN[len("postgresql"):]


async def _count(app: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app)
    finally:
        await conn.close()


async def _busy(settings, app: str, tasks: int) -> tuple[int, list[str]]:
    """`tasks` concurrent pieces of the app's own work (questions saved in the transcript
    archive, each holding its connection a while) on one database opened as the app opens
    it; returns the most connections seen at once and the conversation ids saved."""
    from sqlalchemy import text

    from tui.services import transcripts
    from tui.services.database import open_database

    db = await open_database(settings, load_bundled=False)
    seen = 0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal seen
        while not done.is_set():
            seen = max(seen, await _count(app))
            await asyncio.sleep(0.02)

    async def work(i: int) -> str:
        cid = str(uuid.uuid4())
        await transcripts.start_turn(db, cid, f"question {i}", user_id="pool-test")
        async with db.session() as session:
            await session.execute(text("SELECT pg_sleep(0.15)"))
        return cid

    sampler = asyncio.create_task(sample())
    try:
        cids = await asyncio.gather(*(work(i) for i in range(tasks)))
    finally:
        done.set()
        await sampler
        await db.dispose()
    return seen, cids


@pytest.fixture
def schema():
    name = f"chrysopedia_test_{uuid.uuid4().hex[:12]}"
    yield name
    asyncio.run(_pg_admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def _settings(schema: str, **env: str):
    return load_settings(env={"CHRYSOPEDIA_DATABASE_URL": f"{PG_URL}?schema={schema}", **env})


async def test_default_pool_holds_at_most_two_connections_under_concurrent_work(
    schema, monkeypatch
):
    app = f"chrysopedia-pool-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", app)
    settings = _settings(schema)
    assert (settings.database_pool_size, settings.database_max_overflow) == (1, 1)
    seen, cids = await _busy(settings, app, tasks=8)
    # Eight turns at once queue on the pool: never more than pool_size + max_overflow,
    # and the overflow was used (the work did overlap).
    assert seen == 2
    assert await _count(app) == 0  # disposed: nothing left open
    rows = await _fetch(schema, "SELECT count(DISTINCT conversation_id) FROM messages")
    assert rows == len(set(cids)) == 8  # every turn saved: queued, not dropped


async def test_pool_settings_change_what_the_app_opens(schema, monkeypatch):
    app = f"chrysopedia-pool-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", app)
    settings = _settings(schema, CHRYSOPEDIA_DATABASE_POOL_SIZE="3",
                         CHRYSOPEDIA_DATABASE_MAX_OVERFLOW="0")
    seen, _ = await _busy(settings, app, tasks=8)
    assert seen == 3


async def test_startup_lock_does_not_take_a_pool_connection(schema, monkeypatch):
    # One connection and no overflow still starts: the start-up lock holds its own
    # connection outside the pool while the schema is made on the pool's one.
    app = f"chrysopedia-pool-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PGAPPNAME", app)
    settings = _settings(schema, CHRYSOPEDIA_DATABASE_MAX_OVERFLOW="0")
    seen, cids = await asyncio.wait_for(_busy(settings, app, tasks=4), 20)
    assert seen == 1 and len(cids) == 4


async def _fetch(schema: str, sql: str):
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": f'"{schema}"'})
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.parametrize("var, raw", [
    ("CHRYSOPEDIA_DATABASE_POOL_SIZE", "0"),
    ("CHRYSOPEDIA_DATABASE_POOL_SIZE", "two"),
    ("CHRYSOPEDIA_DATABASE_MAX_OVERFLOW", "-1"),
    ("CHRYSOPEDIA_DATABASE_MAX_OVERFLOW", "1.5"),
])
def test_a_bad_pool_setting_is_one_clear_error(var, raw):
    with pytest.raises(ConfigError) as info:
        load_settings(env={var: raw})
    assert f"${var}" in str(info.value) and "whole number" in str(info.value)
