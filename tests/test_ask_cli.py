"""`chrysopedia ask` as a user runs it: a real process, a real database, a real HTTP model server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fixtures_llm import TEST_API_KEY
from test_events import parse_sse

from tui.commands.ask import format_source

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ["Blend", " the", " crushed", " copy", " [1]", "\n\n- ", "under", " the", " dry", " bus", " [2]."]
QUESTION = "how do I blend parallel compression"


def chrysopedia(db_url: str, *args: str, env: dict | None = None, timeout: float = 60):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tui", "--db", db_url, *args],
        capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=timeout,
    )


def model_env(primary: str, fallback: str | None = None) -> dict[str, str]:
    env = {"CHRYSOPEDIA_LLM_API_URL": primary, "CHRYSOPEDIA_LLM_MODEL": "primary-model",
           "OPENAI_API_KEY": TEST_API_KEY}
    if fallback:
        env |= {"CHRYSOPEDIA_LLM_FALLBACK_URL": fallback, "CHRYSOPEDIA_LLM_FALLBACK_MODEL": "fallback-model"}
    return env


@pytest.fixture(scope="module")
def db_url(tmp_path_factory) -> str:
    """One database for the module, the demo pages asked for once (a named database
    gets none unasked)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"
    loaded = chrysopedia(url, "import", "--demo")
    assert loaded.returncode == 0, loaded.stderr
    return url


def test_plain_answer_then_numbered_sources(db_url, fake_llm):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    result = chrysopedia(db_url, "ask", QUESTION, env=model_env(fake_llm.url))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("".join(SCRIPT) + "\n\nSources\n  [1] ")
    assert "\n  [2] " in out
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith("conversation ") and "model primary-model" in last
    body = fake_llm.last_body
    assert body["messages"][-1] == {"role": "user", "content": QUESTION}
    assert body["max_tokens"] == 2048 and body["stream_options"] == {"include_usage": True}


def test_json_lines(db_url, fake_llm):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    result = chrysopedia(db_url, "ask", QUESTION, "--json", env=model_env(fake_llm.url))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(obj) == {"event", "data"} for obj in lines)
    names = [obj["event"] for obj in lines]
    assert names[0] == "sources" and names[-1] == "done" and set(names[1:-1]) == {"token"}
    assert "".join(obj["data"] for obj in lines if obj["event"] == "token") == "".join(SCRIPT)
    done = lines[-1]["data"]
    assert done["cited"] == [1, 2] and done["model"] == "primary-model"
    assert lines[0]["data"][0]["number"] == 1


def test_sse_text_and_conversation_continues(db_url, fake_llm):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    first = chrysopedia(db_url, "ask", QUESTION, "--sse", env=model_env(fake_llm.url))
    assert first.returncode == 0, first.stderr
    events = parse_sse(first.stdout)
    assert "".join(d for n, d in events if n == "token") == "".join(SCRIPT)
    cid = json.loads(events[-1][1])["conversation_id"]
    second = chrysopedia(db_url, "ask", "and the attack time?", "--conversation", cid, "--json",
                         env=model_env(fake_llm.url))
    assert second.returncode == 0, second.stderr
    messages = fake_llm.last_body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"] == "".join(SCRIPT)


def test_creator_and_weight(db_url, fake_llm):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    result = chrysopedia(db_url, "ask", "parallel compression", "--creator", "dj-kiln", "--weight", "0.9",
                         "--json", env=model_env(fake_llm.url))
    assert result.returncode == 0, result.stderr
    body = fake_llm.last_body
    assert body["temperature"] == pytest.approx(0.48)
    assert "Fully embody" in body["messages"][0]["content"]


def test_both_models_failing_exits_1_with_one_line(db_url, fake_llm, fake_llm_fallback):
    fake_llm.set_mode("error500")
    fake_llm_fallback.set_mode("error429")
    result = chrysopedia(db_url, "ask", QUESTION, env=model_env(fake_llm.url, fake_llm_fallback.url))
    assert result.returncode == 1
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chrysopedia: No model answered")
    assert "Traceback" not in result.stderr and TEST_API_KEY not in result.stderr + result.stdout


def test_fallback_is_reported(db_url, refused_url, fake_llm_fallback):
    fake_llm_fallback.set_mode("normal", tokens=SCRIPT)
    result = chrysopedia(db_url, "ask", QUESTION, "--json", env=model_env(refused_url, fake_llm_fallback.url))
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout.splitlines()[-1])["data"]
    assert done["fallback_used"] is True and done["model"] == "fallback-model"


def test_no_model_gives_the_offline_digest(db_url):
    result = chrysopedia(db_url, "ask", QUESTION, "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    done = lines[-1]["data"]
    assert done["model"] == "offline-digest" and done["cited"]
    text = "".join(o["data"] for o in lines if o["event"] == "token")
    assert text.startswith("*No model is configured") and "[1]" in text


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["ask", QUESTION, "--weight", "nan"], "--weight"),
        (["ask", QUESTION, "--weight", "2"], "--weight"),
        (["ask", QUESTION, "--conversation", "nope"], "--conversation"),
        (["ask", "  "], "question is empty"),
        (["ask", "--regenerate"], "--regenerate needs --conversation"),
    ],
)
def test_bad_arguments_exit_2(db_url, args, words):
    result = chrysopedia(db_url, *args)
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_unknown_creator_exits_1(db_url):
    result = chrysopedia(db_url, "ask", QUESTION, "--creator", "nobody")
    assert result.returncode == 1 and "unknown creator 'nobody'" in result.stderr


def test_tokens_reach_stdout_while_the_model_is_still_streaming(db_url, fake_llm):
    fake_llm.set_mode("slow", tokens=["tok "], count=400, rate=40)  # ~10 s in all
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--db", db_url, "ask", QUESTION],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **model_env(fake_llm.url)},
        cwd=ROOT,
    )
    try:
        first = proc.stdout.read(8)  # blocks until the CLI has flushed two tokens
        assert first == b"tok tok "
        # The answer is on the screen while the server is still sending it.
        assert fake_llm.chat_requests and not fake_llm.chat_requests[-1].completed
    finally:
        proc.kill()
        proc.wait(10)


def test_fake_server_as_a_subprocess_with_http_control(db_url):
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--port", "0", "--mode", "normal"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("fake-openai listening on http://127.0.0.1:")
        url = line.split()[-1]
        ok = chrysopedia(db_url, "ask", QUESTION, "--json", env=model_env(url))
        assert ok.returncode == 0, ok.stderr
        import urllib.request

        request = urllib.request.Request(
            url.removesuffix("/v1") + "/_control", data=json.dumps({"mode": "error500"}).encode(),
            method="POST", headers={"content-type": "application/json"},
        )
        assert json.load(urllib.request.urlopen(request, timeout=5)) == {"mode": "error500"}
        failed = chrysopedia(db_url, "ask", QUESTION, env=model_env(url))
        assert failed.returncode == 1 and "HTTP 500" in failed.stderr
        log = json.load(urllib.request.urlopen(url.removesuffix("/v1") + "/_control", timeout=5))
        assert [r["mode"] for r in log["requests"]] == ["normal", "error500"]
        assert log["requests"][0]["body"]["stream"] is True
    finally:
        server.terminate()
        server.wait(10)


def test_ask_and_continue_on_each_backend(db_target, fake_llm):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    url = db_target.url.replace("postgresql+asyncpg", "postgresql", 1)
    assert chrysopedia(url, "import", "--demo").returncode == 0  # a named database starts empty
    result = chrysopedia(url, "ask", QUESTION, "--json", env=model_env(fake_llm.url))
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout.splitlines()[-1])["data"]
    assert done["model"] == "primary-model"
    again = chrysopedia(url, "ask", "more?", "--conversation", done["conversation_id"], "--json",
                        env=model_env(fake_llm.url))
    assert again.returncode == 0, again.stderr
    assert len(fake_llm.last_body["messages"]) == 4


def test_format_source_is_one_line():
    line = format_source({"number": 3, "title": "A\nB", "section_heading": "C", "creator_name": "D",
                          "video_title": "V", "start_time": 95.0, "end_time": 3725.0,
                          "video_url": "https://x.test/v"})
    assert line == "[3] A B — C · D · V 1:35–1:02:05 <https://x.test/v#t=95>"
    assert format_source({"number": 1}) == "[1] Untitled"


def test_a_video_link_lands_on_the_cited_second():
    source = {"number": 1, "title": "Reverb", "video_title": "Reverb Secrets", "start_time": 725.4,
              "end_time": 945.0, "video_url": "https://www.youtube.com/watch?v=abcDEF12345"}
    assert format_source(source).endswith("12:05–15:45 <https://www.youtube.com/watch?v=abcDEF12345&t=725>")
    # the start of the video: the plain URL
    assert format_source({**source, "start_time": 0.0}).endswith("<https://www.youtube.com/watch?v=abcDEF12345>")


def test_unique_conversations_per_question(db_url, fake_llm):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    ids = set()
    for _ in range(2):
        result = chrysopedia(db_url, "ask", QUESTION, "--json", env=model_env(fake_llm.url))
        ids.add(json.loads(result.stdout.splitlines()[-1])["data"]["conversation_id"])
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)


def test_voice_prints_the_voice_text_and_asks_nothing(db_url, fake_llm):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    before = len(fake_llm.chat_requests)
    result = chrysopedia(db_url, "ask", "--voice", "--creator", "mara-voss", "--weight", "0.95",
                         env=model_env(fake_llm.url))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Fully embody Mara Voss")
    assert len(fake_llm.chat_requests) == before  # no request to the model
    off = chrysopedia(db_url, "ask", "--voice", "--creator", "mara-voss", "--weight", "0.1")
    assert off.returncode == 0 and off.stdout.startswith("Voice off (weight 0.10")
    unknown = chrysopedia(db_url, "ask", "--voice", "--creator", "nobody", "--weight", "0.5")
    assert unknown.returncode == 1 and "unknown creator 'nobody'" in unknown.stderr
