"""`chrysopedia doctor` against real parts: the fake model server, Redis, both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REDIS_UP
from fixtures_llm import TEST_API_KEY


def with_kb(db_target) -> None:
    """A named database starts empty (no demo pages unasked): give it a knowledge base."""
    from conftest import DATA

    from tui.cli import main

    assert main(["--db", db_target.url, "import", str(DATA / "mini_kb.json")]) == 0


def doctor(db_target, env_extra, *flags):
    with_kb(db_target)
    env = dict(os.environ, CHRYSOPEDIA_DATABASE_URL=db_target.url, **env_extra)
    r = subprocess.run([sys.executable, "-m", "tui", "doctor", "--json", "--timeout", "3", *flags],
                       capture_output=True, text=True, env=env, timeout=120)
    rows = {row["part"]: row for row in map(json.loads, r.stdout.splitlines())}
    return r, rows


def test_all_parts_working_exit_0(db_target, fake_llm, fake_llm_fallback):
    env = {
        "CHRYSOPEDIA_LLM_API_URL": fake_llm.url, "CHRYSOPEDIA_LLM_MODEL": "primary-model",
        "CHRYSOPEDIA_LLM_API_KEY": TEST_API_KEY,
        "CHRYSOPEDIA_LLM_FALLBACK_URL": fake_llm_fallback.url,
        "CHRYSOPEDIA_LLM_FALLBACK_MODEL": "fallback-model",
    }
    if REDIS_UP:
        env["CHRYSOPEDIA_REDIS_URL"] = "redis://127.0.0.1:6379/0"
    r, rows = doctor(db_target, env)
    assert r.returncode == 0, r.stdout + r.stderr
    for part in ("config", "database", "knowledge base", "model models", "model completion",
                 "fallback models", "fallback completion"):
        assert rows[part]["status"] == "ok", rows[part]
    assert "schema v" in rows["database"]["detail"] and "integrity ok" in rows["database"]["detail"]
    if REDIS_UP:
        assert rows["redis"]["status"] == "ok" and " ms" in rows["redis"]["detail"]
    assert TEST_API_KEY not in r.stdout + r.stderr
    assert any(req.path.endswith("/chat/completions") for req in fake_llm.requests)


def test_broken_parts_are_named_exit_1(db_target, fake_llm, refused_url):
    fake_llm.set_mode("error500")
    env = {
        "CHRYSOPEDIA_LLM_API_URL": fake_llm.url, "CHRYSOPEDIA_LLM_MODEL": "not-served",
        "CHRYSOPEDIA_LLM_API_KEY": TEST_API_KEY,
        "CHRYSOPEDIA_LLM_FALLBACK_URL": refused_url,
        "CHRYSOPEDIA_REDIS_URL": "redis://127.0.0.1:1/0",
    }
    r, rows = doctor(db_target, env)
    assert r.returncode == 1
    assert rows["redis"]["status"] == "FAIL" and rows["redis"]["fix"]
    assert rows["model models"]["status"] == "FAIL" and "'not-served' not listed" in rows["model models"]["detail"]
    assert rows["model completion"]["status"] == "FAIL"
    assert rows["fallback"]["status"] == "FAIL" and "unreachable" in rows["fallback"]["detail"]
    assert TEST_API_KEY not in r.stdout + r.stderr


def test_stalled_model_is_reported(db_target, fake_llm):
    fake_llm.set_mode("stall")
    env = {"CHRYSOPEDIA_LLM_API_URL": fake_llm.url, "CHRYSOPEDIA_LLM_MODEL": "primary-model"}
    r, rows = doctor(db_target, env)
    assert r.returncode == 1
    assert rows["model completion"]["status"] == "FAIL"


def test_no_model_is_a_skip_not_a_failure(db_target):
    r, rows = doctor(db_target, {})
    assert rows["model"]["status"] == "skip" and "offline digest" in rows["model"]["detail"]
    assert rows["redis"]["status"] == "skip"
    assert r.returncode == 0, r.stdout


def test_human_table(db_target):
    with_kb(db_target)
    env = dict(os.environ, CHRYSOPEDIA_DATABASE_URL=db_target.url, CHRYSOPEDIA_REDIS_URL="redis://127.0.0.1:1")
    r = subprocess.run([sys.executable, "-m", "tui", "doctor", "--timeout", "2"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 1
    assert "FAIL  redis" in r.stdout and "fix: " in r.stdout and "1 problem(s) to fix" in r.stdout
