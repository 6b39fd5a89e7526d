"""Redis faults end to end through ChatService, against a private redis-server process.

The store-level cases (killed, hung, unreachable at start, copy-back, 2 × 50 appends at
and above the cap) are in tests/test_history.py; the TUI's status bar in
tests/test_faults_tui.py. Here: whole questions, answered by the loopback model.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis_proc import REDIS_SERVER, RedisProcess

from tui.db.importer import import_path
from tui.services import transcripts
from tui.services.chat import ChatService, Done
from tui.services.history import open_history, validate_conversation_id

needs_redis_server = pytest.mark.skipif(REDIS_SERVER is None,
                                        reason="redis-server is not installed")


@pytest.fixture
async def kb(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    return db


@pytest.fixture
def redis_server(tmp_path):
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.kill()


async def ask(svc, query, cid):
    async with contextlib.aclosing(svc.stream_response(query, conversation_id=cid)) as events:
        return [e async for e in events]


@needs_redis_server
async def test_redis_killed_between_questions_then_back(llm_settings, kb, fake_llm, redis_server):
    settings = llm_settings.with_overrides(redis_url=redis_server.url)
    memory = await open_history(settings, kb, retry_interval=3600)
    svc = ChatService(settings, kb, memory)
    cid = validate_conversation_id(None)
    try:
        assert memory.state.backend == "redis"
        assert isinstance((await ask(svc, "q1 parallel compression", cid))[-1], Done)

        redis_server.kill()
        events = await ask(svc, "q2 sidechain ducking", cid)  # nothing raised
        assert isinstance(events[-1], Done)
        state = memory.state
        assert state.backend == "local" and state.redis_dropped and "Redis" in state.message
        # The model still saw the first turn (the store was seeded with what Redis held).
        sent = [m["content"] for m in fake_llm.last_body["messages"][1:]]
        assert sent[0] == "q1 parallel compression" and sent[-1] == "q2 sidechain ducking"

        redis_server.start()
        await memory.probe(force=True)
        assert memory.state.backend == "redis"
        assert isinstance((await ask(svc, "q3 bus compression", cid))[-1], Done)
        stored = await memory.redis.load(cid)
        assert [m["content"] for m in stored][::2] == [
            "q1 parallel compression", "q2 sidechain ducking", "q3 bus compression"]
        # The transcript (SQL) kept all three whatever Redis did.
        saved = await transcripts.load_conversation(kb, cid)
        assert [m["status"] for m in saved if m["role"] == "assistant"] == ["answered"] * 3
    finally:
        await svc.aclose()
        await memory.close()


@needs_redis_server
async def test_two_clients_fifty_questions_each_on_one_conversation(
    llm_settings, kb, fake_llm, redis_server
):
    """2 × 50 concurrent questions through two ChatServices (two Redis clients) on one
    conversation, with the memory cap raised above 200 messages: no turn lost."""
    settings = llm_settings.with_overrides(redis_url=redis_server.url)
    stores = [await open_history(settings, kb, max_messages=400) for _ in range(2)]
    services = [ChatService(settings, kb, store) for store in stores]
    cid = validate_conversation_id(None)
    try:
        assert all(s.state.backend == "redis" for s in stores)
        questions = [(c, f"client {c} question {i} compression") for c in range(2)
                     for i in range(50)]
        results = await asyncio.gather(*(ask(services[c], q, cid) for c, q in questions))
        assert all(isinstance(r[-1], Done) for r in results)
        stored = await stores[0].redis.load(cid)
        assert len(stored) == 200
        assert sorted(m["content"] for m in stored[::2]) == sorted(q for _, q in questions)
        saved = await transcripts.load_conversation(kb, cid)
        assert len(saved) == 200 and len({m["turn"] for m in saved}) == 100
    finally:
        for svc in services:
            await svc.aclose()
        for store in stores:
            await store.close()
