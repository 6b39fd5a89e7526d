"""Limits on the command line, as real processes: an over-long question, absurd import files.

The TUI side of the question limit is in tests/test_faults_tui.py; the importer's own
limits (64 MiB per file, 32 levels of nesting, control characters) in
tests/test_importer.py. Here the `chrysopedia` command itself is run.
"""

from __future__ import annotations

import subprocess
import sys

from fake_openai import FakeOpenAI
from faults_support import ROOT, app_env, prepare_kb_file, sqlite_path, sqlite_rows

from tui.services.chat import MAX_QUERY_CHARS


def _cli(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tui", *args], env=env, cwd=str(ROOT),
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_ask_refuses_a_question_over_the_limit(tmp_path, tmp_path_factory):
    url = prepare_kb_file(tmp_path / "app.db", tmp_path_factory.mktemp("kb"))
    with FakeOpenAI(model="m") as server:
        env = app_env(tmp_path / "home", CHRYSOPEDIA_DATABASE_URL=url,
                      CHRYSOPEDIA_DATA_DIR=str(tmp_path / "data"),
                      CHRYSOPEDIA_LLM_API_URL=server.url, CHRYSOPEDIA_LLM_MODEL="m")
        done = _cli(env, "ask", "compression " * 700)  # 8,400 characters
        assert done.returncode != 0
        assert f"longer than {MAX_QUERY_CHARS} characters" in done.stderr
        assert "Traceback" not in done.stderr
        assert server.chat_requests == []  # nothing was sent ...
        # ... nor stored.
        assert sqlite_rows(sqlite_path(url), "select count(*) from messages") == [(0,)]
        ok = _cli(env, "ask", "parallel compression")  # and the next question works
        assert ok.returncode == 0 and "Parallel compression adds" in ok.stdout


def test_import_refuses_a_200_mb_file_and_absurd_nesting(tmp_path, tmp_path_factory):
    url = prepare_kb_file(tmp_path / "app.db", tmp_path_factory.mktemp("kb"))
    env = app_env(tmp_path / "home", CHRYSOPEDIA_DATABASE_URL=url,
                  CHRYSOPEDIA_DATA_DIR=str(tmp_path / "data"))
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: 200 MB on paper, nothing on disk
        f.truncate(200 * 1024 * 1024)
    nested = tmp_path / "nested.json"
    nested.write_text('{"format": "chrysopedia.kb/1", "creators": ' + "[" * 100_000
                      + "]" * 100_000 + "}")
    before = sqlite_rows(sqlite_path(url), "select count(*) from sections")
    for path, words in ((huge, "64 MiB"), (nested, "nested too deeply")):
        done = _cli(env, "import", str(path))
        assert done.returncode == 1, done.stderr
        assert "refused, nothing was imported" in done.stderr and words in done.stderr
        assert "Traceback" not in done.stderr
    assert sqlite_rows(sqlite_path(url), "select count(*) from sections") == before
    # Peak memory of these refusals: bench/faults_bench.py (`import` section).
