"""Model-server faults through ChatService: real HTTP to loopback model servers.

For every fault: with one model, the answer ends in one clear `Error` (no trace, no
key), the question stays in the transcript (answer "failed"), a usage row says
"failed", memory is untouched, and the next question works. With a fallback model
configured, the fallback answers instead and the usage row names it.
"""

from __future__ import annotations

import contextlib

import pytest
from faults_support import deadlines
from fixtures_llm import TEST_API_KEY
from sqlalchemy import select

from tui.db.importer import import_path
from tui.db.models import ChatUsageLog
from tui.services import transcripts
from tui.services.chat import ChatService, Done, Error, Reset, Sources, Token
from tui.services.history import open_history

QUESTION = "How do I blend parallel compression?"
GOOD = ["Blend", " the", " crushed", " copy", " [1]."]
FALLBACK = ["Fallback", " answer", " [1]."]

# mode, options, words the error message must contain
FAULTS = {
    "refused": ("refused", {}, "could not connect"),
    "http 500": ("error500", {}, "HTTP 500"),
    "http 429": ("error429", {}, "rate limited"),
    "stall before the first byte": ("stall", {}, "first-token timeout"),
    "stall after 3 tokens": ("stall_after", {"after": 3}, "read timeout"),
    "dies mid-stream": ("drop", {"after": 3}, "connection dropped"),
    "ends without [DONE]": ("cut", {"after": 3}, "ended before [DONE]"),
    "malformed chunk": ("malformed", {"after": 2}, "malformed chunk"),
}


@pytest.fixture
async def kb(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    return db


@pytest.fixture
def fast_settings(llm_settings):
    # llm_settings: 5 s deadlines (the defaults are 30 s / 60 s); a stall gets 1.5 s below (faults_support.deadlines).
    return llm_settings


async def ask(svc: ChatService, query: str = QUESTION, **kw) -> list:
    events = []
    async with contextlib.aclosing(svc.stream_response(query, **kw)) as stream:
        async for event in stream:
            events.append(event)
    return events


async def usage_rows(db) -> list[ChatUsageLog]:
    async with db.session() as s:
        return list((await s.execute(select(ChatUsageLog).order_by(ChatUsageLog.id))).scalars())


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_with_one_model(fault, fast_settings, kb, fake_llm):
    mode, options, words = FAULTS[fault]
    settings = deadlines(fast_settings, mode).with_overrides(
        llm_fallback_url=None, llm_fallback_model=None)
    memory = await open_history(settings, kb)
    svc = ChatService(settings, kb, memory)
    try:
        fake_llm.set_mode(mode, tokens=GOOD, **options)
        events = await ask(svc)
        assert isinstance(events[0], Sources)
        error = events[-1]
        assert isinstance(error, Error), events
        assert words in error.message and "primary model 'primary-model'" in error.message
        assert "Traceback" not in error.message and TEST_API_KEY not in error.message
        assert "\n" not in error.message
        [conv] = await transcripts.list_conversations(kb)
        saved = await transcripts.load_conversation(kb, conv.id)
        assert saved[0]["role"] == "user" and saved[0]["content"] == QUESTION  # kept
        assert saved[1]["status"] == "failed" and saved[1]["error"] == error.message
        [row] = await usage_rows(kb)
        assert row.status == "failed" and row.model == "primary-model"
        assert await memory.load(conv.id) == []  # a failed turn is not context

        # The next question works, in the same conversation (normal deadlines again).
        fake_llm.set_mode("normal", tokens=GOOD)
        svc.llm.settings = fast_settings
        again = await ask(svc, conversation_id=conv.id)
        assert isinstance(again[-1], Done) and not again[-1].fallback_used
        assert "".join(e.text for e in again if isinstance(e, Token)) == "".join(GOOD)
        rows = await usage_rows(kb)
        assert [r.status for r in rows] == ["failed", "answered"]
        assert len(await memory.load(conv.id)) == 2
    finally:
        await svc.aclose()
        await memory.close()


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_falls_back(fault, fast_settings, kb, fake_llm, fake_llm_fallback):
    mode, options, _ = FAULTS[fault]
    settings = deadlines(fast_settings, mode)
    memory = await open_history(settings, kb)
    svc = ChatService(settings, kb, memory)
    try:
        fake_llm.set_mode(mode, tokens=GOOD, **options)
        fake_llm_fallback.set_mode("normal", tokens=FALLBACK)
        events = await ask(svc)
        done = events[-1]
        assert isinstance(done, Done) and done.fallback_used and done.model == "fallback-model"
        resets = [e for e in events if isinstance(e, Reset)]
        # A fault after tokens were shown clears them (one Reset); before, no Reset.
        assert len(resets) == (1 if options.get("after") else 0)
        after_reset = events[events.index(resets[0]):] if resets else events
        assert "".join(e.text for e in after_reset if isinstance(e, Token)) == "".join(FALLBACK)
        saved = await transcripts.load_conversation(kb, done.conversation_id)
        assert saved[1]["content"] == "".join(FALLBACK) and saved[1]["status"] == "answered"
        [row] = await usage_rows(kb)
        assert row.status == "answered" and row.model == "fallback-model" and row.fallback_used
    finally:
        await svc.aclose()
        await memory.close()


async def test_both_models_failing_then_both_back(fast_settings, kb, fake_llm, fake_llm_fallback):
    memory = await open_history(fast_settings, kb)
    svc = ChatService(fast_settings, kb, memory)
    try:
        fake_llm.set_mode("refused")
        fake_llm_fallback.set_mode("error500")
        events = await ask(svc)
        message = events[-1].message
        assert "could not connect" in message and "HTTP 500" in message
        [row] = await usage_rows(kb)
        assert row.status == "failed"
        fake_llm.set_mode("normal", tokens=GOOD)
        fake_llm_fallback.set_mode("normal", tokens=FALLBACK)
        done = (await ask(svc))[-1]
        assert isinstance(done, Done) and not done.fallback_used
    finally:
        await svc.aclose()
        await memory.close()


async def test_first_token_timeout_default_is_at_most_30_s(settings):
    assert settings.llm_first_token_timeout <= 30
