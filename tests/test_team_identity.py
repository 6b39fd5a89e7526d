"""Who asked: `user_id` (config, default the OS user) in every usage row and transcript
message, `chrysopedia usage --by-user`; the usual PostgreSQL environment (PGHOST, PGUSER,
PGPASSWORD, PGPASSFILE) reaching the connection."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import PG_DSN, needs_pg
from fake_pg import FakePostgres
from fixtures_llm import TEST_API_KEY
from sqlalchemy import inspect, select, text

from tui.config import ConfigError, load_settings
from tui.db.engine import SCHEMA_VERSION, get_meta, set_meta

ROOT = Path(__file__).resolve().parent.parent


def cli(db_url: str, *args: str, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "tui", "--db", db_url, *args],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_user_id_defaults_to_the_os_user_and_can_be_set():
    assert load_settings(env={}).user_id == getpass.getuser()
    s = load_settings(env={"CHRYSOPEDIA_USER_ID": "  ana  "})
    assert s.user_id == "ana" and s.sources["user_id"] == "$CHRYSOPEDIA_USER_ID"
    with pytest.raises(ConfigError, match="user_id"):
        load_settings(env={"CHRYSOPEDIA_USER_ID": "ana\x1b[31m"})


def _db_url(db_target) -> str:
    return db_target.url.replace("+aiosqlite", "").replace("+asyncpg", "")


async def test_two_users_on_one_conversation_are_told_apart(db_target, fake_llm):
    import asyncio

    env = {"CHRYSOPEDIA_LLM_API_URL": fake_llm.url, "OPENAI_API_KEY": TEST_API_KEY}
    url = _db_url(db_target)
    cid = str(uuid.uuid4())

    def ask(user: str, question: str):
        return cli(url, "ask", question, "--conversation", cid, env={**env, "CHRYSOPEDIA_USER_ID": user})

    assert (await asyncio.to_thread(cli, url, "import", "--demo")).returncode == 0
    for user, question in (("ana", "how do I blend parallel compression"),
                           ("ben", "and on the vocal bus?"), ("ana", "what ratio?")):
        proc = await asyncio.to_thread(ask, user, question)
        assert proc.returncode == 0, proc.stderr

    from tui.db.models import ChatUsageLog, Message
    from tui.services.transcripts import load_conversation

    db = db_target.database()
    try:
        async with db.session() as session:
            rows = (await session.execute(
                select(Message.turn, Message.role, Message.user_id)
                .where(Message.conversation_id == cid).order_by(Message.id))).all()
            usage = (await session.execute(
                select(ChatUsageLog.user_id).order_by(ChatUsageLog.id))).scalars().all()
        messages = await load_conversation(db, cid)
    finally:
        await db.dispose()
    assert [(r.turn, r.role, r.user_id) for r in rows] == [
        (1, "user", "ana"), (1, "assistant", "ana"), (2, "user", "ben"),
        (2, "assistant", "ben"), (3, "user", "ana"), (3, "assistant", "ana")]
    assert usage == ["ana", "ben", "ana"]
    assert [m["user_id"] for m in messages if m["role"] == "user"] == ["ana", "ben", "ana"]

    proc = await asyncio.to_thread(cli, url, "usage", "--by-user", "--json")
    assert proc.returncode == 0, proc.stderr
    users = json.loads(proc.stdout)["users"]
    assert [(u["user_id"], u["requests"], u["answered"]) for u in users] == [
        ("ana", 2, 2), ("ben", 1, 1)]
    assert all(u["total_tokens"] > 0 and u["latency_p50_ms"] is not None for u in users)

    proc = await asyncio.to_thread(cli, url, "usage", "--by-user")
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["user", "requests"])
    assert lines[header + 1].split()[:3] == ["ana", "2", "2"]
    assert lines[header + 2].split()[:3] == ["ben", "1", "1"]
    plain = await asyncio.to_thread(cli, url, "usage")
    assert "ana" not in plain.stdout  # the per-user table only when asked


async def test_v3_database_gains_the_user_column(db_target):
    db = db_target.database()

    async def columns():
        async with db.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {col["name"] for col in inspect(c).get_columns("messages")})

    try:
        await db.init()
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE messages DROP COLUMN user_id"))
            await set_meta(conn, "schema_version", "3")
        assert "user_id" not in await columns()
        assert await db.init() == SCHEMA_VERSION
        assert "user_id" in await columns()
        async with db.engine.connect() as conn:
            assert await get_meta(conn, "schema_version") == str(SCHEMA_VERSION)
    finally:
        await db.dispose()


@needs_pg
def test_pghost_and_pguser_fill_in_a_url_without_them():
    schema = f"edges_env_{uuid.uuid4().hex[:8]}"
    database = PG_DSN.rsplit("/", 1)[1]
    try:
        proc = cli(f"postgresql:///{database}?schema={schema}", "usage", "--json",
                   env={"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres"})
        assert proc.returncode == 0, proc.stderr
        assert "totals" in json.loads(proc.stdout)
    finally:
        import asyncio

        from conftest import _pg_admin

        asyncio.run(_pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def test_pgpassword_is_sent():
    with FakePostgres("password") as pg:
        proc = cli(pg.url("alice"), "stats", env={"PGPASSWORD": "from-env-pw"})
        assert pg.passwords == ["from-env-pw"]
    assert proc.returncode == 2 and "from-env-pw" not in proc.stderr


def test_pgpassfile_is_read(tmp_path):
    passfile = tmp_path / "pgpass"
    with FakePostgres("password") as pg:
        passfile.write_text(f"127.0.0.1:{pg.port}:test:alice:from-passfile\n", encoding="utf-8")
        passfile.chmod(0o600)
        proc = cli(pg.url("alice"), "stats", env={"PGPASSFILE": str(passfile)})
        assert pg.passwords == ["from-passfile"]
    assert proc.returncode == 2 and "PGPASSFILE" in proc.stderr
