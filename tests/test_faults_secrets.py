"""A known fake API key never leaves the process: a whole session, every output searched.

The session: the TUI (pilot, all log records at DEBUG captured) answering, failing with
HTTP 401 from a server that echoes the bearer token in its error (as some do), with a
refused fallback, exporting, showing usage; the real app in a pty hitting the same 401;
`chrysopedia ask` (text, --json, --sse; answered and 401), `config`, `config --json`,
`doctor` (ok and 401), `usage`. Searched: screen text (SVG screenshots, notifications,
the raw pty bytes), stdout/stderr, log records, every database row, every file the
app wrote (exports, state), the usage rows.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys

from fake_openai import FakeOpenAI, unused_port
from faults_support import ROOT, AppInPty, app_env, prepare_kb_file
from test_app_support import make_test_app, wait_until

from tui.config import Settings

KEY = "sk-fake-SECRET-7f3a9c2e1b4d6085e9"
# Any of these showing up means some part of the key leaked.
FRAGMENTS = [KEY, KEY[3:], "7f3a9c2e1b4d6085", "SECRET-7f3a"]
SIZE = (120, 40)


def _leaks(name: str, text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [f"{name}: {frag!r}" for frag in FRAGMENTS if frag in text]


def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "tui", *args], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, encoding="utf-8", timeout=120, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout + "\n" + done.stderr


def _dump_sqlite(path) -> str:
    conn = sqlite3.connect(str(path))
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


def _files_text(*roots) -> dict[str, bytes]:
    out = {}
    for root in roots:
        if root.exists():
            for p in root.rglob("*"):
                if p.is_file() and p.suffix not in (".db", ".db-wal", ".db-shm"):
                    out[str(p)] = p.read_bytes()
    return out


async def test_the_key_appears_in_no_output_of_a_whole_session(tmp_path, tmp_path_factory, caplog):
    caplog.set_level(logging.DEBUG)
    outputs: dict[str, str | bytes] = {}
    url = await asyncio.to_thread(prepare_kb_file, tmp_path / "app.db",
                                  tmp_path_factory.mktemp("kb"))
    db_file = tmp_path / "app.db"
    data_dir = tmp_path / "data"
    home = tmp_path / "home"
    refused = f"http://127.0.0.1:{unused_port()}/v1"

    with FakeOpenAI(model="m") as server:
        # 1. The TUI in-process: an answer, a 401 that echoes the key, export, usage.
        settings = Settings(
            database_url=url, data_dir=data_dir, llm_api_url=server.url, llm_api_key=KEY,
            llm_model="m", llm_fallback_url=refused, llm_fallback_model="fb",
            llm_first_token_timeout=2.0, llm_connect_timeout=2.0,
        )
        assert KEY not in repr(settings)
        app = make_test_app(settings, export_dir=tmp_path / "exports")
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, app.ready.is_set)
            for mode, question in (("normal", "parallel compression"),
                                   ("error401", "sidechain ducking"),
                                   ("error500", "bus compression")):
                server.set_mode(mode)
                count = len(app.conversation.answers)
                app.prompt.load_text(question)
                app.prompt.focus()
                await pilot.press("enter")
                await wait_until(pilot, lambda c=count: len(app.conversation.answers) > c)
                answer = app.conversation.answers[-1]
                await wait_until(pilot, lambda a=answer: a.status not in ("working", "streaming"))
                await pilot.pause()
                outputs[f"tui screen after {mode}"] = app.export_screenshot()
            assert answer.status == "failed"
            failed = app.conversation.answers[-2]
            assert "HTTP 401" in str(failed.query_one(".error-text").render())
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: list((tmp_path / "exports").glob("*.md")))
            await pilot.press("f4")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "UsageScreen")
            await pilot.pause()
            outputs["tui usage screen"] = app.export_screenshot()
            outputs["tui notifications"] = "\n".join(
                f"{n.title} {n.message}" for n in app._notifications)
        outputs["log records"] = "\n".join(
            f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)

        # 2. The real app in a pty, hitting the 401.
        env = app_env(home, CHRYSOPEDIA_DATABASE_URL=url, CHRYSOPEDIA_DATA_DIR=str(data_dir),
                      CHRYSOPEDIA_LLM_API_URL=server.url, CHRYSOPEDIA_LLM_API_KEY=KEY,
                      CHRYSOPEDIA_LLM_MODEL="m")
        server.set_mode("error401")
        with AppInPty(env) as tui:
            tui.wait_text("memory local", 60)
            tui.type("parallel compression")
            tui.wait_text("│ parallel compression")
            tui.send("\r")
            tui.wait_text("Incorrect API key provided: ***", 30)
            outputs["pty screen"] = tui.text()
            tui.quit()
            outputs["pty raw bytes"] = tui.raw_bytes()

        # 3. The command line: ask (three formats, answered and refused), config, doctor, usage.
        for mode in ("normal", "error401"):
            server.set_mode(mode)
            for fmt in ([], ["--json"], ["--sse"]):
                rc, out = _cli(env, "ask", "parallel compression", *fmt)
                assert rc == (0 if mode == "normal" else 1), out
                outputs[f"ask {mode} {fmt}"] = out
            rc, out = _cli(env, "doctor")
            assert rc == (0 if mode == "normal" else 1), out
            outputs[f"doctor {mode}"] = out
            outputs[f"doctor --json {mode}"] = _cli(env, "doctor", "--json")[1]
        assert "HTTP 401" in outputs["ask error401 []"]
        for args in (["config"], ["config", "--json"], ["usage"], ["usage", "--json"]):
            rc, out = _cli(env, *args)
            assert rc == 0, out
            outputs[" ".join(args)] = out
        # The key went over the wire (so the test means something) ...
        assert any(r.headers.get("authorization") == f"Bearer {KEY}" for r in server.requests)

    # 4. Everything stored: every row of every table, every file the app wrote.
    outputs["database rows"] = _dump_sqlite(db_file)
    outputs.update(_files_text(tmp_path / "exports", data_dir, home))
    assert any(name.endswith(".md") for name in outputs)

    leaks = [leak for name, text in outputs.items() for leak in _leaks(name, text)]
    assert not leaks, leaks
