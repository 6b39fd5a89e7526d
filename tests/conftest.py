"""Shared fixtures: isolated user dirs, databases on both backends, Redis with a test prefix.

Every database test runs on SQLite and, where it answers, on PostgreSQL in a
schema of its own that is dropped afterwards. Redis tests use their own key
prefix and delete only their own keys.
"""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from tui.config import Settings

PG_DSN = os.environ.get("CHRYSOPEDIA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CHRYSOPEDIA_TEST_REDIS", "redis://127.0.0.1:6379/0")
DATA = Path(__file__).parent / "data"
TEST_CONNECT_TIMEOUT = 2.0


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


PG_UP = _answers("127.0.0.1", 5432)
REDIS_UP = _answers("127.0.0.1", 6379)
needs_redis = pytest.mark.skipif(not REDIS_UP, reason="no Redis answers at 127.0.0.1:6379")
needs_pg = pytest.mark.skipif(not PG_UP, reason="no PostgreSQL answers at 127.0.0.1:5432")


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """Keep every test away from the real user's config and data."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    for var in list(os.environ):
        if var.startswith("CHRYSOPEDIA_") or var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(var, raising=False)
    # The product gives a model server 0.4 s to accept a connection; a loaded CI machine
    # can starve the loopback fake server that long. Child processes inherit this too.
    monkeypatch.setenv("CHRYSOPEDIA_LLM_CONNECT_TIMEOUT", str(TEST_CONNECT_TIMEOUT))
    # Imports run inside the test process too: its priority must not drop for the rest of
    # the run (tests/test_import_cli.py checks the setting in a process of its own).
    monkeypatch.setenv("CHRYSOPEDIA_IMPORT_NICE", "0")
    return home


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class DBTarget:
    """Where a test's database lives: a URL and, for PostgreSQL, a schema."""

    def __init__(self, backend: str, url: str, schema: str | None = None) -> None:
        self.backend = backend
        self.url = url
        self.schema = schema

    def database(self):
        from tui.db.engine import Database

        return Database(self.url, schema=self.schema)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, needs_pg])])
async def db_target(request, tmp_path):
    if request.param == "sqlite":
        yield DBTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        return
    schema = f"chrysopedia_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE SCHEMA "{schema}"')
    try:
        url = "postgresql+asyncpg" + PG_DSN[len("postgresql"):] + f"?schema={schema}"
        yield DBTarget("postgresql", url)
    finally:
        await _pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def second_target(db_target, tmp_path):
    """Another empty database on `db_target`'s backend (a round trip compares within one)."""
    if db_target.backend == "sqlite":
        yield DBTarget("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'second.db'}")
        return
    schema = f"chrysopedia_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE SCHEMA "{schema}"')
    try:
        yield DBTarget("postgresql", "postgresql+asyncpg" + PG_DSN[len("postgresql"):] + f"?schema={schema}")
    finally:
        await _pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def db(db_target):
    """An initialised, empty database on each backend."""
    database = db_target.database()
    await database.init()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", llm_connect_timeout=TEST_CONNECT_TIMEOUT)


@pytest.fixture
def mini_kb_path() -> Path:
    return DATA / "mini_kb.json"


# The fake OpenAI-compatible model server: fake_llm, fake_llm_fallback, refused_url, llm_settings.
from fixtures_llm import fake_llm, fake_llm_fallback, llm_settings, refused_url  # noqa: E402,F401
