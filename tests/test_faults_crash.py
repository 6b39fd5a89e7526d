"""Crash safety: the real app, in a pty, killed with SIGKILL in the middle of an answer.

After a restart the transcript holds the question and the partial answer (status
"incomplete", shown as stopped when resumed), `PRAGMA integrity_check` is ok, and
the usage log counts everything once: the killed request has the row it wrote while
streaming ("incomplete", estimated tokens for what it received), the next question
adds exactly one.
"""

from __future__ import annotations

import time

from fake_openai import FakeOpenAI
from faults_support import AppInPty, app_env, prepare_kb_file, sqlite_path, sqlite_rows

QUESTION = "parallel compression on drums"


def _assistant_rows(db):
    return sqlite_rows(db, "select status, content, error from messages where role='assistant' "
                           "order by id")


def _wait_db(predicate, timeout=30.0, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_mid_answer_then_restart(tmp_path, tmp_path_factory):
    url = prepare_kb_file(tmp_path / "app.db", tmp_path_factory.mktemp("kb"))
    db = sqlite_path(url)
    with FakeOpenAI(model="m", mode="slow", rate=25, count=5000) as server:
        env = app_env(tmp_path / "home", CHRYSOPEDIA_DATABASE_URL=url,
                      CHRYSOPEDIA_DATA_DIR=str(tmp_path / "data"),
                      CHRYSOPEDIA_LLM_API_URL=server.url, CHRYSOPEDIA_LLM_MODEL="m")
        with AppInPty(env) as app:
            app.wait_text("memory local", 60)
            app.type(QUESTION)
            app.wait_text("│ " + QUESTION)
            app.send("\r")
            app.wait_text("Parallel compression adds", 30)
            # The answer so far reaches the archive every couple of seconds.
            _wait_db(lambda: any(s == "incomplete" and c for s, c, _ in _assistant_rows(db)),
                     what="a partial answer saved")
            app.kill()
        assert server.chat_requests[-1].tokens_sent < 5000  # it really was mid-answer

        # After the crash, before any restart: consistent and nothing counted.
        assert sqlite_rows(db, "pragma integrity_check") == [("ok",)]
        [(q,)] = sqlite_rows(db, "select content from messages where role='user'")
        assert q == QUESTION
        [(status, partial, _)] = _assistant_rows(db)
        assert status == "incomplete" and partial.startswith("Parallel compression adds")
        [(ustatus, completion, estimated)] = sqlite_rows(
            db, "select status, completion_tokens, usage_estimated from chat_usage_log")
        assert ustatus == "incomplete" and completion > 0 and estimated == 1

        # Restart, resume the conversation: the question and the partial answer, marked.
        server.set_mode("normal", tokens=["Resumed", " fine", " [1]."])
        with AppInPty(env) as app:
            app.wait_text("memory local", 60)
            app.send("\x0f")  # Ctrl+O: conversations
            app.wait_text(QUESTION, 30)
            app.send("\r")
            app.wait_text("stopped", 30)
            screen = app.text()
            assert QUESTION in screen and "Parallel compression adds" in screen
            app.wait_text("⏎ Send")
            app.type("sidechain ducking")
            app.wait_text("│ sidechain ducking")
            app.send("\r")
            app.wait_text("Resumed fine", 30)
            app.wait_text("tokens", 30)
            assert app.quit() == 0

    assert sqlite_rows(db, "pragma integrity_check") == [("ok",)]
    rows = _assistant_rows(db)
    assert [r[0] for r in rows] == ["incomplete", "answered"]
    assert rows[0][1] == partial  # the partial answer is kept as it was
    assert sqlite_rows(db, "select status from chat_usage_log order by id") \
        == [("incomplete",), ("answered",)]
    # Both turns belong to the one conversation that was resumed.
    assert sqlite_rows(db, "select count(distinct conversation_id), count(*) from messages") \
        == [(1, 4)]
