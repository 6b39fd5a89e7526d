"""The versioned schema: created current, older upgraded by explicit steps, newer refused."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from tui.db.engine import SCHEMA_VERSION, SchemaError, get_meta, set_meta


async def _columns(db, table):
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns(table)})


async def test_new_database_is_current(db):
    async with db.engine.connect() as conn:
        assert await get_meta(conn, "schema_version") == str(SCHEMA_VERSION)
    assert "error" in await _columns(db, "messages")


async def test_v1_database_is_upgraded(db_target):
    db = db_target.database()
    try:
        await db.init()
        # Make it look like a version-1 database: the columns v2 added are not there.
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE messages DROP COLUMN error"))
            await conn.execute(text("ALTER TABLE chat_usage_log DROP COLUMN usage_estimated"))
            await set_meta(conn, "schema_version", "1")
        assert "error" not in await _columns(db, "messages")
        assert await db.init() == SCHEMA_VERSION
        assert "error" in await _columns(db, "messages")
        assert "usage_estimated" in await _columns(db, "chat_usage_log")
        async with db.engine.connect() as conn:
            assert await get_meta(conn, "schema_version") == str(SCHEMA_VERSION)
        assert await db.init() == SCHEMA_VERSION  # idempotent
    finally:
        await db.dispose()


async def test_newer_database_is_refused(db_target):
    db = db_target.database()
    try:
        await db.init()
        async with db.engine.begin() as conn:
            await set_meta(conn, "schema_version", str(SCHEMA_VERSION + 5))
        with pytest.raises(SchemaError, match="newer than this Chrysopedia understands"):
            await db.init()
    finally:
        await db.dispose()


async def test_cli_refuses_newer_database_cleanly(db_target):
    import os
    import subprocess
    import sys

    db = db_target.database()
    await db.init()
    async with db.engine.begin() as conn:
        await set_meta(conn, "schema_version", "999")
    await db.dispose()
    env = dict(os.environ, CHRYSOPEDIA_DATABASE_URL=db_target.url)
    r = subprocess.run([sys.executable, "-m", "tui", "stats"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 2
    assert "schema version 999" in r.stderr and "Traceback" not in r.stderr
