"""`?schema=NAME` on PostgreSQL: a new schema is created and made ready by every command and
the app; schemas side by side stay apart; a hostile name never reaches SQL; a role that may
not create schemas is told what a database owner would run."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import DATA, PG_DSN, _pg_admin, needs_pg
from fixtures_llm import TEST_API_KEY

pytestmark = [pytest.mark.postgres, needs_pg]

ROOT = Path(__file__).resolve().parent.parent


def run_cli(db_url: str, *args: str, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "tui", "--db", db_url, *args],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT,
        timeout=timeout,
    )


def pg_url(schema: str, dsn: str = PG_DSN) -> str:
    return f"{dsn}?schema={schema}"


async def _pg_fetch(sql: str, *args):
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def sync(coro):
    """Run `coro` to the end from sync code, even inside an async test (its own thread)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def pg_fetch(sql: str, *args):
    return sync(_pg_fetch(sql, *args))


def pg_admin(sql: str) -> None:
    sync(_pg_admin(sql))


def schema_exists(name: str) -> bool:
    return bool(pg_fetch("SELECT 1 FROM pg_namespace WHERE nspname = $1", name))


@pytest.fixture
def new_schemas():
    """Names for schemas the database has never seen; each dropped after the test."""
    made: list[str] = []

    def make(prefix: str = "studio") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        assert not schema_exists(name)
        made.append(name)
        return name

    yield make
    for name in made:
        pg_admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def model_env(url: str) -> dict[str, str]:
    return {"CHRYSOPEDIA_LLM_API_URL": url, "CHRYSOPEDIA_LLM_MODEL": "primary-model",
            "OPENAI_API_KEY": TEST_API_KEY}


def stats(url: str) -> dict:
    proc = run_cli(url, "stats", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_new_schema_is_created_and_used_by_import_stats_search_ask(new_schemas, fake_llm):
    schema = new_schemas()
    url = pg_url(schema)

    proc = run_cli(url, "import", str(DATA / "mini_kb.json"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert schema_exists(schema)
    tables = {r["tablename"] for r in pg_fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)}
    assert {"chrysopedia_meta", "sections", "messages", "chat_usage_log"} <= tables
    version = pg_fetch(f'SELECT value FROM "{schema}".chrysopedia_meta WHERE key = $1',
                       "schema_version")
    assert version and version[0]["value"].isdigit()

    counts = stats(url)
    assert counts["sections"] > 0 and counts["conversations"] == 0 and counts["usage"] == 0

    proc = run_cli(url, "search", "parallel", "compression", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["items"]

    proc = run_cli(url, "ask", "how do I blend parallel compression", "--json",
                   env=model_env(fake_llm.url))
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line)["event"] for line in proc.stdout.splitlines()]
    assert events[0] == "sources" and events[-1] == "done"

    counts = stats(url)
    assert counts["conversations"] == 1 and counts["usage"] == 1
    # Written in the new schema, not in whatever `public` holds.
    rows = pg_fetch(f'SELECT count(*) AS n FROM "{schema}".chat_usage_log')
    assert rows[0]["n"] == 1


def test_two_schemas_side_by_side_stay_independent(new_schemas, fake_llm):
    a, b = new_schemas("studio_a"), new_schemas("studio_b")
    url_a, url_b = pg_url(a), pg_url(b)
    assert run_cli(url_a, "import", str(DATA / "mini_kb.json")).returncode == 0
    assert run_cli(url_b, "import", "--demo").returncode == 0
    before_b = stats(url_b)  # b: the bundled demo pages only
    after_a = stats(url_a)
    assert 0 < after_a["sections"] < before_b["sections"]  # each its own knowledge base

    env = model_env(fake_llm.url)
    assert run_cli(url_a, "ask", "how do I blend parallel compression", env=env).returncode == 0
    assert run_cli(url_b, "ask", "how do I set reverb pre-delay", env=env).returncode == 0
    assert run_cli(url_b, "ask", "what is sidechain ducking", env=env).returncode == 0

    sa, sb = stats(url_a), stats(url_b)
    assert (sa["conversations"], sa["usage"]) == (1, 1)
    assert (sb["conversations"], sb["usage"]) == (2, 2)
    assert sb["sections"] == before_b["sections"]
    questions = {
        s: sorted(r["content"] for r in pg_fetch(
            f'SELECT content FROM "{s}".messages WHERE role = $1', "user"))
        for s in (a, b)
    }
    assert questions[a] == ["how do I blend parallel compression"]
    assert questions[b] == ["how do I set reverb pre-delay", "what is sidechain ducking"]
    usage_queries = {s: sorted(r["query"] for r in pg_fetch(f'SELECT query FROM "{s}".chat_usage_log'))
                     for s in (a, b)}
    assert usage_queries[a] == questions[a] and usage_queries[b] == questions[b]

    usage = run_cli(url_a, "usage", "--json")
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout)["totals"]["requests"] == 1


@pytest.mark.parametrize("name", [
    "x; drop table y", '"quoted"', "a" * 64, "é" * 32, "", "pg_catalog", "white space",
    "semi;colon", "dash-ed", "quote'd", "\x1b[31mred",
])
def test_hostile_schema_names_are_refused_before_any_sql(name):
    from urllib.parse import quote

    # A listener stands in for the server: nothing may even connect to it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{port}/test?schema={quote(name, safe='')}"
        proc = run_cli(url, "stats", timeout=30)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "database_url (from --db)" in lines[0] and "schema name" in lines[0]
    assert "\x1b" not in proc.stderr


def test_hostile_schema_names_are_refused_by_the_engine_too():
    from tui.db.engine import Database, SchemaError

    for name in ("x; drop table y", '"quoted"', "a" * 64, " "):
        with pytest.raises(SchemaError):
            Database("postgresql+asyncpg://postgres@127.0.0.1:1/test", schema=name)


def test_a_role_that_may_not_create_schemas_is_told_what_to_run(new_schemas):
    role = f"edges_role_{uuid.uuid4().hex[:8]}"
    schema = new_schemas()
    pg_admin(f'CREATE ROLE "{role}" LOGIN')
    try:
        dsn = PG_DSN.replace("postgres@", f"{role}@", 1)
        url = pg_url(schema, dsn)
        proc = run_cli(url, "stats")
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        statement = f"CREATE SCHEMA {schema} AUTHORIZATION {role};"
        assert statement in lines[0]
        assert f"may not create schema {schema}" in lines[0]
        assert not schema_exists(schema)

        # What the message says to run is what makes it work.
        pg_admin(statement)
        assert run_cli(url, "import", str(DATA / "mini_kb.json")).returncode == 0
        counts = stats(url)
        assert counts["sections"] > 0
    finally:
        pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        pg_admin(f'DROP ROLE IF EXISTS "{role}"')


async def test_the_app_creates_a_new_schema_at_start_up(tmp_path, new_schemas):
    from test_app_support import app_settings, make_test_app, wait_until

    schema = new_schemas()
    settings = app_settings(tmp_path, database_url="postgresql+asyncpg" + PG_DSN[len("postgresql"):]
                            + f"?schema={schema}")
    app = make_test_app(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        assert app.boot_error is None
    assert schema_exists(schema)


def test_terminals_starting_at_once_on_a_new_schema_all_get_in(new_schemas):
    schema = new_schemas()
    url = pg_url(schema)
    procs = [
        subprocess.Popen([sys.executable, "-m", "tui", "--db", url, "stats", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=180), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _, _ in results] == [0, 0, 0, 0], [err for _, _, err in results]
    counts = {json.loads(out)["sections"] for _, out, _ in results}
    assert len(counts) == 1  # everyone saw the same, fully loaded knowledge base
    assert pg_fetch(f'SELECT count(*) AS n FROM "{schema}".sections')[0]["n"] == counts.pop()
