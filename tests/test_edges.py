"""Every edge of a team setup in one line: PostgreSQL unreachable, refusing, silent, missing
database or role, wrong password, SSL required or refused, no privilege; Redis asking for a
password, refusing one, spoken to in TLS, a read-only replica; a model server answering a web
page. Each names the setting, where it came from, the server (password masked) and the fix;
the CLI exits 2; the traceback goes to the error log the line names; the app shows a
notification and a status-bar state.

The shared PostgreSQL trusts local connections and has no SSL, so a wrong password and a
server that demands SSL are played by tests/fake_pg.py (the wire protocol, answering as a
real server does); everything else is the real server, real redis-server processes and the
loopback model server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import DATA, PG_DSN, REDIS_UP, _pg_admin, needs_pg
from fake_openai import FakeOpenAI, unused_port
from fake_pg import FakePostgres
from redis_proc import REDIS_SERVER, RedisProcess

from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-pw-7f2"
needs_redis_server = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server not installed")


def log_file(home: Path) -> Path:
    return home / ".local" / "state" / "chrysopedia" / "log" / "errors.log"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str, *, setting: str, source: str, says: str, home: Path | None,
                    secret: str = PASSWORD) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"chrysopedia: {setting} (from {source}) "), line
    assert says in line, line
    assert "; fix: " in line, line
    assert "Traceback" not in err and secret not in err
    if home is not None:
        log = log_file(home)
        assert f"(details in {log})" in line
        assert "Traceback" in log.read_text(encoding="utf-8")
    return line


# -- PostgreSQL -------------------------------------------------------------------------------

COMMANDS = [
    ("stats",), ("search", "reverb"), ("ask", "what is reverb"), ("usage",),
    ("import", str(DATA / "mini_kb.json")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_refused_connection_every_command(capsys, isolated_user_dirs, command):
    url = f"postgresql://me:{PASSWORD}@127.0.0.1:{unused_port()}/x"
    code, out, err = run(capsys, "--db", url, *command)
    assert code == 2 and out == ""
    line = assert_one_line(err, setting="database_url", source="--db",
                           says="connection refused: nothing listens at 127.0.0.1:",
                           home=isolated_user_dirs)
    assert "me:***@127.0.0.1" in line


def test_refused_connection_names_the_environment_variable(capsys, isolated_user_dirs, monkeypatch):
    monkeypatch.setenv("CHRYSOPEDIA_DATABASE_URL", f"postgresql://me@127.0.0.1:{unused_port()}/x")
    code, _, err = run(capsys, "stats")
    assert code == 2
    assert_one_line(err, setting="database_url", source="$CHRYSOPEDIA_DATABASE_URL",
                    says="connection refused", home=isolated_user_dirs)


def test_a_silent_server_times_out_in_the_configured_time(capsys, isolated_user_dirs, monkeypatch):
    monkeypatch.setenv("CHRYSOPEDIA_DATABASE_CONNECT_TIMEOUT", "1")
    with FakePostgres("silent") as pg:
        code, _, err = run(capsys, "--db", pg.url("me"), "stats")
        assert pg.connections == 0  # never accepted: the client waited on the backlog
    assert code == 2
    line = assert_one_line(err, setting="database_url", source="--db",
                           says=f"no answer from 127.0.0.1:{pg.port} within 1 s",
                           home=isolated_user_dirs)
    assert "database_connect_timeout" in line


@needs_pg
def test_missing_database(capsys, isolated_user_dirs):
    name = f"nosuch_{uuid.uuid4().hex[:8]}"
    code, _, err = run(capsys, "--db", PG_DSN.rsplit("/", 1)[0] + f"/{name}", "stats")
    assert code == 2
    line = assert_one_line(err, setting="database_url", source="--db",
                           says=f"database '{name}' does not exist", home=isolated_user_dirs)
    assert f"createdb -h 127.0.0.1 -p 5432 {name}" in line


@needs_pg
def test_missing_role(capsys, isolated_user_dirs):
    role = f"nosuch_{uuid.uuid4().hex[:8]}"
    code, _, err = run(capsys, "--db", PG_DSN.replace("postgres@", f"{role}@", 1), "search", "eq")
    assert code == 2
    line = assert_one_line(err, setting="database_url", source="--db",
                           says=f"role '{role}' does not exist", home=isolated_user_dirs)
    assert f"CREATE ROLE {role} LOGIN;" in line


def test_wrong_password(capsys, isolated_user_dirs):
    with FakePostgres("password") as pg:
        code, _, err = run(capsys, "--db", pg.url("alice", PASSWORD), "stats")
        assert pg.passwords == [PASSWORD]  # the client did send it
    assert code == 2
    line = assert_one_line(err, setting="database_url", source="--db",
                           says="password authentication failed for role 'alice'",
                           home=isolated_user_dirs)
    assert "alice:***@" in line and "PGPASSWORD" in line


def test_a_server_that_requires_ssl(capsys, isolated_user_dirs):
    with FakePostgres("ssl_required") as pg:
        code, _, err = run(capsys, "--db", pg.url("alice"), "stats")
    assert code == 2
    line = assert_one_line(err, setting="database_url", source="--db",
                           says="the server accepts only SSL connections", home=isolated_user_dirs)
    assert "?sslmode=require" in line


@needs_pg
def test_sslmode_require_against_a_server_without_ssl(capsys, isolated_user_dirs):
    code, _, err = run(capsys, "--db", PG_DSN + "?sslmode=require", "stats")
    assert code == 2
    assert_one_line(err, setting="database_url", source="--db",
                    says="127.0.0.1:5432 does not offer SSL, but the URL's sslmode requires it",
                    home=isolated_user_dirs)


@needs_pg
def test_sslmode_is_understood(capsys):
    schema = f"edges_ssl_{uuid.uuid4().hex[:8]}"
    try:
        code, out, err = run(capsys, "--db", PG_DSN + f"?sslmode=prefer&schema={schema}",
                             "usage", "--json")
    finally:
        asyncio.run(_pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    # libpq's sslmode reaches asyncpg as its `ssl` argument, not as an unknown keyword.
    assert code == 0, err
    assert '"totals"' in out


@needs_pg
def test_a_role_without_privilege_on_public(capsys, isolated_user_dirs):
    role = f"edges_np_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f'CREATE ROLE "{role}" LOGIN'))
    try:
        code, _, err = run(capsys, "--db", PG_DSN.replace("postgres@", f"{role}@", 1), "stats")
    finally:
        asyncio.run(_pg_admin(f'DROP ROLE IF EXISTS "{role}"'))
    if code == 0:
        pytest.skip("this PostgreSQL lets every role create in public (before version 15)")
    assert code == 2
    line = assert_one_line(err, setting="database_url", source="--db",
                           says=f"role '{role}' lacks a privilege", home=isolated_user_dirs)
    assert "?schema=NAME" in line


def test_the_real_process_prints_no_traceback(isolated_user_dirs):
    url = f"postgresql://me:{PASSWORD}@127.0.0.1:{unused_port()}/x"
    proc = subprocess.run([sys.executable, "-m", "tui", "--db", url, "ask", "eq"],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ),
                          timeout=60)
    assert proc.returncode == 2
    assert_one_line(proc.stderr, setting="database_url", source="--db",
                    says="connection refused", home=isolated_user_dirs)


def test_doctor_says_the_same(capsys):
    code, out, _ = run(capsys, "--db", f"postgresql://me@127.0.0.1:{unused_port()}/x", "doctor")
    assert code == 1
    assert "database_url (from --db)" in out and "connection refused: nothing listens" in out
    assert "fix: start PostgreSQL there" in out


async def test_the_app_shows_a_database_edge(tmp_path):
    from test_app_support import app_settings, make_test_app, wait_until

    settings = app_settings(tmp_path, database_url=f"postgresql+asyncpg://me:{PASSWORD}@127.0.0.1:"
                                                   f"{unused_port()}/x",
                            sources={"database_url": "--db"})
    app = make_test_app(settings)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, app.ready.is_set, what="boot")
        assert app.boot_error and "connection refused" in app.boot_error
        assert "database_url (from --db)" in app.boot_error and PASSWORD not in app.boot_error
        await wait_until(pilot, lambda: len(app._notifications) > 0, what="notification")
        notes = [n.message for n in app._notifications]
        assert any("connection refused" in n and "fix:" in n for n in notes), notes
        assert app.status_bar.fields["model"] == "not ready"


# -- Redis ------------------------------------------------------------------------------------

@pytest.fixture
def locked_redis(tmp_path):
    server = RedisProcess(tmp_path / "redis-pw", args=("--requirepass", PASSWORD)).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def replica_redis(tmp_path):
    primary = RedisProcess(tmp_path / "redis-primary").start()
    replica = RedisProcess(tmp_path / "redis-replica",
                           args=("--replicaof", "127.0.0.1", str(primary.port))).start()
    try:
        yield primary, replica
    finally:
        replica.kill()
        primary.kill()


def ask_with_redis(capsys, tmp_path, redis_url: str):
    # a database named with --db holds only what is imported into it: the demo pages here
    assert run(capsys, "--db", f"sqlite:///{tmp_path / 'kb.db'}", "import", "--demo")[0] == 0
    return run(capsys, "--db", f"sqlite:///{tmp_path / 'kb.db'}", "--redis", redis_url,
               "ask", "what is reverb")


@needs_redis_server
def test_redis_noauth(capsys, tmp_path, isolated_user_dirs, locked_redis):
    code, out, err = ask_with_redis(capsys, tmp_path, locked_redis.url)
    assert code == 2 and out == ""
    line = assert_one_line(err, setting="redis_url", source="--redis",
                           says="the server requires a password (NOAUTH)", home=isolated_user_dirs)
    assert "redis://:PASSWORD@host:port/0" in line


@needs_redis_server
def test_redis_wrongpass(capsys, tmp_path, isolated_user_dirs, locked_redis):
    url = f"redis://:{PASSWORD}-wrong@127.0.0.1:{locked_redis.port}/0"
    code, _, err = ask_with_redis(capsys, tmp_path, url)
    assert code == 2
    line = assert_one_line(err, setting="redis_url", source="--redis",
                           says="the password (or user name) was refused (WRONGPASS)",
                           home=isolated_user_dirs)
    assert f"redis://:***@127.0.0.1:{locked_redis.port}/0" in line


@needs_redis_server
def test_redis_right_password_works(capsys, tmp_path, locked_redis):
    url = f"redis://:{PASSWORD}@127.0.0.1:{locked_redis.port}/0"
    code, out, err = ask_with_redis(capsys, tmp_path, url)
    assert code == 0, err
    assert "Sources" in out


@pytest.mark.skipif(not REDIS_UP, reason="no Redis at 127.0.0.1:6379")
def test_rediss_to_a_plain_server(capsys, tmp_path, isolated_user_dirs):
    code, _, err = ask_with_redis(capsys, tmp_path, "rediss://127.0.0.1:6379/0")
    assert code == 2
    line = assert_one_line(err, setting="redis_url", source="--redis",
                           says="no TLS handshake with 127.0.0.1:6379", home=isolated_user_dirs)
    assert "use redis://" in line


@needs_redis_server
def test_a_read_only_replica(capsys, tmp_path, replica_redis):
    primary, replica = replica_redis
    code, _, err = ask_with_redis(capsys, tmp_path, replica.url)
    assert code == 2
    line = assert_one_line(err, setting="redis_url", source="--redis",
                           says=f"127.0.0.1:{replica.port} is a read-only replica", home=None)
    assert f"point the URL at the primary (127.0.0.1:{primary.port})" in line


@needs_redis_server
def test_doctor_names_the_replica(capsys, tmp_path, replica_redis):
    primary, replica = replica_redis
    code, out, _ = run(capsys, "--db", f"sqlite:///{tmp_path / 'kb.db'}", "--redis", replica.url,
                       "doctor")
    assert code == 1
    assert "is a read-only replica" in out and f"127.0.0.1:{primary.port}" in out


@needs_redis_server
async def test_the_app_notifies_a_redis_edge_and_answers_locally(tmp_path, locked_redis):
    from test_app_support import app_settings, make_test_app, wait_until

    settings = app_settings(tmp_path, redis_url=locked_redis.url,
                            sources={"redis_url": "$CHRYSOPEDIA_REDIS_URL"})
    app = make_test_app(settings)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, app.ready.is_set, what="boot")
        assert app.boot_error is None
        state = app.services.history.state
        assert state.backend == "local" and state.problem
        assert "redis_url (from $CHRYSOPEDIA_REDIS_URL)" in state.problem
        await wait_until(pilot, lambda: len(app._notifications) > 0, what="notification")
        notes = [n.message for n in app._notifications]
        assert any("requires a password (NOAUTH)" in n for n in notes), notes
        assert "NOAUTH" in app.status_bar.fields["memory_warning"]


# -- a model server answering a web page ---------------------------------------------------------

def test_a_model_server_answering_html(capsys, tmp_path, monkeypatch):
    with FakeOpenAI("html") as server:
        monkeypatch.setenv("CHRYSOPEDIA_LLM_API_URL", server.url)
        # the demo pages, so that the question has sources and the model is asked
        assert run(capsys, "--db", f"sqlite:///{tmp_path / 'kb.db'}", "import", "--demo")[0] == 0
        code, _, err = run(capsys, "--db", f"sqlite:///{tmp_path / 'kb.db'}", "ask", "eq")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "the server answered with an HTML page, not the OpenAI-compatible API" in lines[0]
    assert "llm_api_url (from $CHRYSOPEDIA_LLM_API_URL)" in lines[0]
    assert server.url in lines[0] and "/v1" in lines[0]


def test_doctor_names_a_model_server_answering_html(capsys, tmp_path, monkeypatch):
    with FakeOpenAI("html") as server:
        monkeypatch.setenv("CHRYSOPEDIA_LLM_API_URL", server.url)
        code, out, _ = run(capsys, "--db", f"sqlite:///{tmp_path / 'kb.db'}", "doctor")
    assert code == 1
    assert "answered with an HTML page" in out and "llm_api_url (from $CHRYSOPEDIA_LLM_API_URL)" in out


async def test_the_app_shows_a_model_server_answering_html(tmp_path):
    from test_app_pilot import ask
    from test_app_support import app_settings, load_mini_kb, make_test_app, wait_until

    with FakeOpenAI("html") as server:
        settings = app_settings(tmp_path, llm_api_url=server.url,
                                sources={"llm_api_url": "$OPENAI_BASE_URL"})
        await load_mini_kb(settings)
        app = make_test_app(settings)
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_until(pilot, app.ready.is_set, what="boot")
            answer = await ask(app, pilot, "parallel compression on drums")
            assert answer.status == "failed"
            await wait_until(pilot, lambda: len(app._notifications) > 0, what="notification")
            notes = [n.message for n in app._notifications]
            assert any("HTML page" in n and "llm_api_url (from $OPENAI_BASE_URL)" in n
                       for n in notes), notes
            assert app.status_bar.fields["activity"] == "failed"
