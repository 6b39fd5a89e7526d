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


async def test_v2_database_is_upgraded_to_locators(db_target):
    """A v2 knowledge base (no locators, no origins) gains them; its bundled pages become the demo."""
    db = db_target.database()
    serial = "INTEGER PRIMARY KEY" if db_target.backend == "sqlite" else "SERIAL PRIMARY KEY"
    try:
        async with db.engine.begin() as conn:
            for ddl in (
                "CREATE TABLE chrysopedia_meta (key VARCHAR(64) PRIMARY KEY, value TEXT)",
                f"CREATE TABLE creators (id {serial}, slug VARCHAR(64) UNIQUE, name VARCHAR(120) UNIQUE, "
                "bio TEXT, genres JSON, personality_profile JSON)",
                "CREATE TABLE videos (id VARCHAR(200) PRIMARY KEY, creator_id INTEGER REFERENCES creators(id) "
                "ON DELETE CASCADE, title TEXT, filename TEXT, url TEXT, duration FLOAT)",
                f"CREATE TABLE technique_pages (id {serial}, slug VARCHAR(64) UNIQUE, title TEXT, "
                "creator_id INTEGER REFERENCES creators(id) ON DELETE CASCADE, topic_category VARCHAR(64), "
                "tags JSON, summary TEXT)",
                f"CREATE TABLE sections (id {serial}, page_id INTEGER REFERENCES technique_pages(id) "
                "ON DELETE CASCADE, position INTEGER, anchor VARCHAR(64), heading TEXT, body TEXT, "
                "video_id VARCHAR(200) REFERENCES videos(id) ON DELETE SET NULL, start_time FLOAT, "
                "end_time FLOAT, CONSTRAINT uq_section_page_anchor UNIQUE (page_id, anchor))",
                "INSERT INTO chrysopedia_meta VALUES ('schema_version', '2'), ('bundled_kb_hash', 'x')",
                "INSERT INTO creators (slug, name) VALUES ('c', 'C')",
                "INSERT INTO technique_pages (slug, title, creator_id, topic_category, summary) "
                "VALUES ('reese-bass-basics', 'Bundled', 1, 'Synthesis', 's'), ('mine', 'Mine', 1, 'Mixing', 's')",
                "INSERT INTO sections (page_id, position, anchor, heading, body) VALUES (2, 0, 'a', 'h', 'b')",
            ):
                await conn.execute(text(ddl))
        from tui.db.importer import bundled_kb_path
        from tui.db.kb_format import read_documents

        bundled_slugs = {t["slug"] for t in read_documents(bundled_kb_path()).techniques}
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE technique_pages SET slug = :s WHERE id = 1"),
                               {"s": sorted(bundled_slugs)[0]})
        assert await db.init() == SCHEMA_VERSION
        assert {"locator", "first_page", "last_page", "line", "source_path"} <= await _columns(db, "sections")
        assert {"origin", "material_key", "source_file"} <= await _columns(db, "technique_pages")
        assert "source_key" in await _columns(db, "creators")
        assert "content_hash" in await _columns(db, "kb_files")
        async with db.engine.connect() as conn:
            rows = dict((await conn.execute(text("SELECT id, origin FROM technique_pages"))).all())
        assert rows == {1: "demo", 2: "kb"}
        assert await db.init() == SCHEMA_VERSION  # idempotent
    finally:
        await db.dispose()


async def test_v7_database_gains_video_upload_dates(db_target):
    """A v7 knowledge base (videos without upload_date) upgrades in place: its videos stay,
    without a day until their info.json is imported again."""
    from tui.db.models import Creator, Video

    db = db_target.database()
    try:
        await db.init()
        async with db.session() as session, session.begin():
            creator = Creator(slug="mix-lab", name="Mix Lab")
            session.add(creator)
            await session.flush()
            session.add(Video(id="abcDEF12345", creator_id=creator.id, title="Reverb", duration=300.0))
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE videos DROP COLUMN upload_date"))
            await set_meta(conn, "schema_version", "7")
        assert "upload_date" not in await _columns(db, "videos")
        assert await db.init() == SCHEMA_VERSION
        assert "upload_date" in await _columns(db, "videos")
        async with db.session() as session, session.begin():
            video = await session.get(Video, "abcDEF12345")
            assert (video.title, video.duration, video.upload_date) == ("Reverb", 300.0, None)
            video.upload_date = "2024-03-15"
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT upload_date FROM videos"))).scalar() == "2024-03-15"
            assert await get_meta(conn, "schema_version") == str(SCHEMA_VERSION)
        assert await db.init() == SCHEMA_VERSION  # idempotent
    finally:
        await db.dispose()
