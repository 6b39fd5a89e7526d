"""ChatService end to end: real SearchService on a real database (SQLite and PostgreSQL), real
memory (local store, and real Redis), a real HTTP model server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid

import pytest
from conftest import REDIS_URL, needs_redis
from fixtures_llm import TEST_API_KEY
from sqlalchemy import select
from test_events import parse_sse

from tui.db.importer import import_path
from tui.db.models import ChatUsageLog, Conversation, Message
from tui.services import transcripts
from tui.services.chat import (
    CONTEXT_BUDGET,
    ChatService,
    Done,
    Error,
    Reset,
    Sources,
    Token,
    build_context_block,
    excerpt,
    find_citations,
)
from tui.services.history import open_history
from tui.services.llm import MAX_ANSWER_CHARS
from tui.services.personality import build_personality_block, describe_voice
from tui.services.search import SearchService

QUESTION = "How do I blend parallel compression?"
ANSWER = ["Send", " the", " drums", " to", " an", " aux", " [1]", " and", " blend", " [2].",
          "\n\n- ", "Watch", " [9]."]
FALLBACK = ["Fallback", " says", " blend", " [1]."]


# ── fixtures ──────────────────────────────────────────────────────────────


@pytest.fixture
async def kb(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    return db


@pytest.fixture
async def memory(kb, settings):
    store = await open_history(settings, kb)
    yield store
    await store.close()


@pytest.fixture
async def redis_prefix():
    prefix = f"chrysopedia:test-chat:{uuid.uuid4().hex[:10]}:"
    yield prefix
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def service(llm_settings, kb, memory, fake_llm, fake_llm_fallback):
    fake_llm.set_mode("normal", tokens=ANSWER)
    fake_llm_fallback.set_mode("normal", tokens=FALLBACK)
    svc = ChatService(llm_settings, kb, memory, search=SearchService(llm_settings))
    yield svc


async def ask(svc: ChatService, query: str = QUESTION, **kw) -> list:
    events = []
    async with contextlib.aclosing(svc.stream_response(query, **kw)) as stream:
        async for event in stream:
            events.append(event)
    return events


def tokens(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Token))


async def usage_rows(db) -> list[ChatUsageLog]:
    async with db.session() as s:
        return list((await s.execute(select(ChatUsageLog).order_by(ChatUsageLog.id))).scalars())


async def count(db, model) -> int:
    async with db.session() as s:
        return len((await s.execute(select(model))).scalars().all())


# ── the happy path ────────────────────────────────────────────────────────


async def test_a_cited_answer_end_to_end(service, kb, memory, fake_llm):
    events = await ask(service)
    assert isinstance(events[0], Sources) and isinstance(events[-1], Done)
    assert all(isinstance(e, Token) for e in events[1:-1])
    sources = events[0].sources
    assert [s["number"] for s in sources] == list(range(1, len(sources) + 1))
    first = sources[0]
    for key in ("title", "slug", "creator_name", "creator_slug", "topic_category", "summary",
                "section_anchor", "section_heading", "source_video_id", "start_time", "end_time",
                "video_filename", "video_title", "video_url", "video_upload_date", "locator",
                "locator_label"):
        assert key in first
    assert first["slug"] == "parallel-compression" and first["creator_slug"] == "test-ada"
    assert first["video_title"] == "Compression basics"

    done = events[-1]
    answer = "".join(ANSWER)
    assert tokens(events) == answer
    assert done.model == "primary-model" and not done.fallback_used and not done.truncated
    assert done.cascade_tier
    assert done.cited == [1, 2] and done.invalid_citations == [9]
    assert done.usage["estimated"] is False
    assert done.usage["completion_tokens"] == len(ANSWER)  # the server's figure, not chars/4
    assert done.latency_ms > 0 and done.turn == 1

    # The transcript keeps the numbering the view showed.
    saved = await transcripts.load_conversation(kb, done.conversation_id)
    assert [(m["role"], m["status"]) for m in saved] == [("user", "answered"), ("assistant", "answered")]
    assert saved[0]["content"] == QUESTION
    reply = saved[1]
    assert reply["content"] == answer and reply["sources"] == sources
    assert reply["model"] == "primary-model" and reply["cascade_tier"] == done.cascade_tier
    assert reply["usage"] == done.usage and reply["id"] == done.message_id

    # Memory: one turn pair.
    assert await memory.load(done.conversation_id) == [
        {"role": "user", "content": QUESTION}, {"role": "assistant", "content": answer}]

    # Usage: one row, the server's counts, the model that served.
    [row] = await usage_rows(kb)
    assert row.status == "answered" and row.model == "primary-model" and not row.usage_estimated
    assert row.completion_tokens == len(ANSWER) and row.conversation_id == done.conversation_id
    assert row.cascade_tier == done.cascade_tier


async def test_the_sse_form_reassembles_the_exact_answer(service):
    events = await ask(service)
    parsed = parse_sse("".join(e.to_sse() for e in events))
    assert [n for n, _ in parsed][0] == "sources" and parsed[-1][0] == "done"
    assert "".join(d for n, d in parsed if n == "token") == "".join(ANSWER)
    assert json.loads(parsed[-1][1])["invalid_citations"] == [9]


async def test_the_request_the_model_receives(service, fake_llm, kb):
    done = (await ask(service))[-1]
    body = fake_llm.last_body
    assert body["model"] == "primary-model"
    assert body["temperature"] == pytest.approx(0.3)
    assert body["max_tokens"] == 2048
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    system, user = body["messages"][0], body["messages"][-1]
    assert system["role"] == "system" and user == {"role": "user", "content": QUESTION}
    prompt = system["content"]
    assert prompt.startswith("You are Chrysopedia, an expert assistant for music production techniques")
    assert "- Use ONLY the numbered sources below. Do not invent facts." in prompt
    assert "Cite every factual claim inline with [N]" in prompt
    assert "Aim for 2–4 short paragraphs." in prompt
    assert "\nSources:\n[1] Parallel Compression on Drums by Test Ada — " in prompt
    # Section text, not only the summary.
    assert "Bring the crushed return up until the drums feel thicker" in prompt
    assert "Send the drum bus to an aux with a compressor at 10:1" in prompt

    # The second turn carries the first between the system prompt and the question.
    await ask(service, "And the release time?", conversation_id=done.conversation_id)
    messages = fake_llm.last_body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == QUESTION and messages[2]["content"] == "".join(ANSWER)
    assert messages[3]["content"] == "And the release time?"


async def test_no_usage_chunk_means_chars_over_four(service, fake_llm, kb):
    fake_llm.set_mode("no_usage", tokens=ANSWER)
    done = (await ask(service))[-1]
    prompt_chars = sum(len(m["content"]) for m in fake_llm.last_body["messages"])
    assert done.usage == {"prompt_tokens": prompt_chars // 4,
                          "completion_tokens": len("".join(ANSWER)) // 4,
                          "total_tokens": prompt_chars // 4 + len("".join(ANSWER)) // 4,
                          "estimated": True}
    [row] = await usage_rows(kb)
    assert row.usage_estimated and row.prompt_tokens == prompt_chars // 4


# ── creator voice ─────────────────────────────────────────────────────────


@pytest.mark.parametrize("weight", [0.0, 0.19, 0.2, 0.39, 0.4, 0.59, 0.6, 0.79, 0.8, 0.89, 0.9, 1.0])
async def test_creator_voice_in_the_prompt_at_every_tier(service, fake_llm, kb, weight):
    await ask(service, creator="test-ada", personality_weight=weight)
    body = fake_llm.last_body
    prompt = body["messages"][0]["content"]
    assert body["temperature"] == pytest.approx(0.3 + 0.2 * weight)
    profile = json.load(open("tests/data/mini_kb.json"))["creators"][0]["personality_profile"]
    block = build_personality_block("Test Ada", profile, weight)
    if weight < 0.2:
        assert block == "" and not prompt.rstrip().endswith("tone.")
    else:
        assert prompt.endswith("\n\n" + block)
    # The creator filter reached the search: every source is Ada's.
    [conversation] = await transcripts.list_conversations(kb)
    answer = (await transcripts.load_conversation(kb, conversation.id))[1]
    assert answer["sources"] and {s["creator_slug"] for s in answer["sources"]} == {"test-ada"}


async def test_a_creator_without_profile_gets_no_voice_block(service, fake_llm):
    events = await ask(service, "chopping breaks", creator="Test Bo", personality_weight=1.0)
    assert isinstance(events[-1], Done)
    prompt = fake_llm.last_body["messages"][0]["content"]
    assert "embody" not in prompt and "Test Bo" in prompt  # as a source's creator only


async def test_voice_preview_and_profile(service):
    assert (await service.creator_profile("test-ada"))["name"] == "Test Ada"
    assert (await service.creator_profile("Test Ada"))["slug"] == "test-ada"
    assert await service.creator_profile("nobody") is None
    preview = await service.voice_preview("test-ada", 0.95)
    assert preview.startswith("Fully embody Test Ada")
    # Where the profile came from, as the app's preview says it (one text for both).
    profile = (await service.creator_profile("test-ada"))["profile"]
    assert preview == describe_voice("Test Ada", profile, 0.95)
    assert preview.endswith("exact sentences.\n\nWritten by hand in a knowledge-base document.")
    assert "Voice off" in await service.voice_preview("test-ada", 0.1)
    assert "no voice profile" in await service.voice_preview("test-bo", 0.5)
    assert "Unknown creator" in await service.voice_preview("zed", 0.5)
    with pytest.raises(ValueError):
        await service.voice_preview("test-ada", 1.5)


# ── refused requests ──────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"query": "   "}, "question is empty"),
        ({"personality_weight": math.nan}, "personality weight must be a number from 0 to 1"),
        ({"personality_weight": 1.2}, "personality weight must be a number from 0 to 1"),
        ({"personality_weight": -0.1}, "personality weight"),
        ({"conversation_id": "not-a-uuid"}, "conversation_id must be a UUID"),
        ({"creator": "nobody-at-all"}, "unknown creator 'nobody-at-all'"),
        ({"regenerate": True}, "regenerate needs the conversation"),
        ({"regenerate": True, "conversation_id": str(uuid.uuid4())}, "Nothing to regenerate"),
    ],
)
async def test_refused_requests_are_one_error_and_store_nothing(service, kb, fake_llm, kw, words):
    kw = dict(kw)  # the parameter dict is shared by both backends' runs
    query = kw.pop("query", QUESTION)
    events = await ask(service, query, **kw)
    assert len(events) == 1 and isinstance(events[0], Error)
    assert words in events[0].message
    assert fake_llm.chat_requests == []
    assert await count(kb, Conversation) == 0 and await count(kb, ChatUsageLog) == 0


# ── fallback and failure ──────────────────────────────────────────────────


async def test_primary_down_before_tokens_falls_back_silently(service, fake_llm, kb):
    fake_llm.set_mode("error500")
    events = await ask(service)
    assert not any(isinstance(e, Reset) for e in events)
    done = events[-1]
    assert tokens(events) == "".join(FALLBACK)
    assert done.fallback_used and done.model == "fallback-model" and done.cited == [1]
    [row] = await usage_rows(kb)
    assert row.model == "fallback-model" and row.fallback_used and row.status == "answered"
    saved = await transcripts.load_conversation(kb, done.conversation_id)
    assert saved[1]["model"] == "fallback-model" and saved[1]["fallback_used"]


async def test_first_token_timeout_from_settings(llm_settings, kb, memory, fake_llm, fake_llm_fallback):
    fake_llm.set_mode("stall")
    fake_llm_fallback.set_mode("normal", tokens=FALLBACK)
    svc = ChatService(llm_settings.with_overrides(llm_first_token_timeout=1.0), kb, memory)
    done = (await ask(svc))[-1]
    assert isinstance(done, Done) and done.fallback_used


async def test_primary_failing_mid_answer_resets_and_saves_only_the_fallback_answer(
    service, fake_llm, kb, memory
):
    fake_llm.set_mode("drop", tokens=ANSWER, after=4)
    events = await ask(service)
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("Reset") == 1
    reset_at = kinds.index("Reset")
    assert tokens(events[:reset_at]) == "".join(ANSWER[:4])
    assert tokens(events[reset_at:]) == "".join(FALLBACK)
    done = events[-1]
    saved = await transcripts.load_conversation(kb, done.conversation_id)
    assert saved[1]["content"] == "".join(FALLBACK)
    assert (await memory.load(done.conversation_id))[-1]["content"] == "".join(FALLBACK)


async def test_both_models_failing(service, fake_llm, fake_llm_fallback, kb, memory):
    fake_llm.set_mode("error429")
    fake_llm_fallback.set_mode("malformed", after=0)
    events = await ask(service)
    assert isinstance(events[0], Sources) and isinstance(events[-1], Error)
    message = events[-1].message
    assert "primary model 'primary-model'" in message and "rate limited" in message
    assert "fallback model 'fallback-model'" in message and "malformed" in message
    assert TEST_API_KEY not in message
    [conv] = await transcripts.list_conversations(kb)
    saved = await transcripts.load_conversation(kb, conv.id)
    assert saved[1]["status"] == "failed" and saved[1]["error"] == message
    [row] = await usage_rows(kb)
    assert row.status == "failed"
    assert await memory.load(conv.id) == []


async def test_the_api_key_appears_nowhere(service, fake_llm, kb):
    fake_llm.set_mode("error401")
    events = await ask(service)
    text = "".join(e.to_sse() for e in events)
    assert "HTTP 401" in text and TEST_API_KEY not in text and "0123456789abcdef" not in text
    async with kb.session() as s:
        rows = (await s.execute(select(Message.content, Message.error))).all()
        usage = (await s.execute(select(ChatUsageLog.query, ChatUsageLog.model))).all()
    assert TEST_API_KEY not in repr(rows) + repr(usage)


async def test_search_failure_is_an_error_and_a_failed_turn(llm_settings, kb, memory, fake_llm):
    class Broken:
        async def search(self, *a, **kw):
            raise RuntimeError("index gone")

    svc = ChatService(llm_settings, kb, memory, search=Broken())
    events = await ask(svc)
    assert len(events) == 1 and events[0].message.startswith("Search failed")
    [conv] = await transcripts.list_conversations(kb)
    assert (await transcripts.load_conversation(kb, conv.id))[1]["status"] == "failed"
    assert await count(kb, ChatUsageLog) == 0 and fake_llm.chat_requests == []


# ── limits and hostile output ─────────────────────────────────────────────


async def test_an_enormous_answer_is_capped_and_flagged(service, fake_llm, kb):
    fake_llm.set_mode("normal", tokens=["lorem "], count=200_000)
    done = (await ask(service))[-1]
    assert done.truncated
    saved = await transcripts.load_conversation(kb, done.conversation_id)
    assert len(saved[1]["content"]) == MAX_ANSWER_CHARS
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)


async def test_control_characters_never_reach_events_or_storage(service, fake_llm, kb):
    fake_llm.set_mode("normal", tokens=["\x1b]0;pwned\x07", "\x1b[2J", "ok\r\n", "\x00[1]"])
    events = await ask(service, "parallel compression \x1b[31m")
    done = events[-1]
    assert tokens(events) == "]0;pwned[2Jok\n[1]" and done.cited == [1]
    saved = await transcripts.load_conversation(kb, done.conversation_id)
    assert "\x1b" not in saved[0]["content"] + saved[1]["content"]


# ── cancellation ──────────────────────────────────────────────────────────


async def test_cancelling_closes_the_stream_and_saves_a_cancelled_turn(service, fake_llm, kb, memory):
    fake_llm.set_mode("slow", tokens=["tick "], count=100_000, rate=100)
    seen = asyncio.Event()
    got: list = []

    async def consume():
        async for event in service.stream_response(QUESTION):
            got.append(event)
            if sum(isinstance(e, Token) for e in got) >= 3:
                seen.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(seen.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)
    [conv] = await transcripts.list_conversations(kb)
    saved = await transcripts.load_conversation(kb, conv.id)
    assert saved[1]["status"] == "cancelled"
    assert saved[1]["content"].startswith("tick tick tick") and saved[1]["sources"]
    [row] = await usage_rows(kb)
    assert row.status == "cancelled" and row.model == "primary-model" and row.usage_estimated
    assert await memory.load(conv.id) == []


async def test_closing_the_stream_early_counts_as_cancelled(service, fake_llm, kb, memory):
    fake_llm.set_mode("slow", tokens=["tock "], count=100_000, rate=100)
    stream = service.stream_response(QUESTION)
    n = 0
    async for event in stream:
        n += isinstance(event, Token)
        if n == 2:
            break
    await stream.aclose()
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)
    [row] = await usage_rows(kb)
    assert row.status == "cancelled"
    [conv] = await transcripts.list_conversations(kb)
    assert (await transcripts.load_conversation(kb, conv.id))[1]["status"] == "cancelled"
    assert await memory.load(conv.id) == []


# ── no model ──────────────────────────────────────────────────────────────


async def test_offline_digest_with_no_model(settings, kb, memory):
    svc = ChatService(settings, kb, memory)
    events = await ask(svc, "parallel compression blend")
    assert isinstance(events[0], Sources)
    done = events[-1]
    assert isinstance(done, Done) and done.model == "offline-digest" and not done.fallback_used
    text = tokens(events)
    assert text.startswith("*No model is configured")
    assert done.cited and not done.invalid_citations
    assert sum(isinstance(e, Token) for e in events) > 5  # streamed, not one lump
    assert await count(kb, ChatUsageLog) == 0  # no model was reached
    assert done.usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                          "estimated": False}
    saved = await transcripts.load_conversation(kb, done.conversation_id)
    assert saved[1]["model"] == "offline-digest" and saved[1]["content"] == text


# ── regenerate and memory ─────────────────────────────────────────────────


async def test_regenerate_adds_a_version_and_replaces_the_memory_turn(service, fake_llm, kb, memory):
    first = (await ask(service))[-1]
    fake_llm.set_mode("normal", tokens=["Second", " take", " [2]."])
    events = await ask(service, "", conversation_id=first.conversation_id, regenerate=True,
                       creator="test-ada", personality_weight=0.7)
    done = events[-1]
    assert isinstance(done, Done) and done.turn == first.turn
    body = fake_llm.last_body
    # The question again, without the answer being replaced as context.
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][-1]["content"] == QUESTION
    assert body["temperature"] == pytest.approx(0.3 + 0.2 * 0.7)
    saved = await transcripts.load_conversation(kb, first.conversation_id)
    answers = [m for m in saved if m["role"] == "assistant"]
    assert [a["content"] for a in answers] == ["".join(ANSWER), "Second take [2]."]
    assert [a["current"] for a in answers] == [False, True]
    # Each version records the voice it was generated with.
    assert [(a["creator_slug"], a["personality_weight"]) for a in answers] == [
        (None, 0.0), ("test-ada", pytest.approx(0.7))]
    assert await memory.load(first.conversation_id) == [
        {"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Second take [2]."}]


@needs_redis
async def test_memory_in_real_redis(llm_settings, kb, fake_llm, redis_prefix):
    from redis.asyncio import Redis

    fake_llm.set_mode("normal", tokens=ANSWER)
    settings = llm_settings.with_overrides(redis_url=REDIS_URL, redis_key_prefix=redis_prefix)
    store = await open_history(settings, kb)
    assert store.state.backend == "redis"
    svc = ChatService(settings, kb, store)
    try:
        done = (await ask(svc))[-1]
        await ask(svc, "and the attack?", conversation_id=done.conversation_id)
        assert [m["role"] for m in fake_llm.last_body["messages"]] == ["system", "user", "assistant", "user"]
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        raw = await client.get(redis_prefix + done.conversation_id)
        ttl = await client.ttl(redis_prefix + done.conversation_id)
        await client.aclose()
        stored = json.loads(raw)
        assert [m["content"] for m in stored[::2]] == [QUESTION, "and the attack?"]
        assert 0 < ttl <= 3600
    finally:
        await store.close()


async def _concurrent(svc, kb, memory, n: int):
    cid = str(uuid.uuid4())
    questions = [f"parallel compression question {i}" for i in range(n)]
    started = time.perf_counter()
    results = await asyncio.gather(*(ask(svc, q, conversation_id=cid) for q in questions))
    elapsed = time.perf_counter() - started
    assert all(isinstance(r[-1], Done) for r in results)
    turns = sorted(r[-1].turn for r in results)
    assert turns == list(range(1, n + 1))
    stored = await memory.load(cid)
    assert sorted(m["content"] for m in stored if m["role"] == "user") == sorted(questions)
    assert len(await usage_rows(kb)) == n
    saved = await transcripts.load_conversation(kb, cid)
    assert sum(m["status"] == "answered" for m in saved) == 2 * n
    return elapsed


async def test_concurrent_questions_on_one_conversation_lose_nothing(service, kb, memory, fake_llm, capsys):
    n = 10  # 10 turn pairs: exactly the memory's cap, so every turn must be there
    elapsed = await _concurrent(service, kb, memory, n)
    with capsys.disabled():
        print(f"\n[chat concurrency] {kb.dialect}, local memory: {n} concurrent answers in {elapsed:.2f} s")


@needs_redis
async def test_concurrent_questions_with_redis_memory(llm_settings, kb, fake_llm, redis_prefix, capsys):
    fake_llm.set_mode("normal", tokens=ANSWER)
    settings = llm_settings.with_overrides(redis_url=REDIS_URL, redis_key_prefix=redis_prefix)
    store = await open_history(settings, kb)
    try:
        svc = ChatService(settings, kb, store)
        n = 10
        elapsed = await _concurrent(svc, kb, store, n)
        with capsys.disabled():
            print(f"\n[chat concurrency] {kb.dialect}, Redis memory: {n} concurrent answers in {elapsed:.2f} s")
    finally:
        await store.close()


# ── context and citations (units) ─────────────────────────────────────────


def _item(i: int, body: str, summary: str = "A summary.") -> dict:
    return {"title": f"Page {i}", "creator_name": "Ada", "section_heading": f"Part {i}",
            "summary": summary, "section_body": body}


def test_context_budget_is_shared_and_cut_at_sentences():
    sentence = "Compress the drums hard and blend them under the dry signal. "
    items = [_item(i, sentence * 40) for i in range(1, 11)]  # ~2,400 chars each
    block = build_context_block(items)
    bodies = [line.strip() for line in block.splitlines() if line.startswith("    Compress")]
    assert len(bodies) == 10
    assert sum(len(b) for b in bodies) <= CONTEXT_BUDGET
    assert sum(len(b) for b in bodies) > CONTEXT_BUDGET - 10 * len(sentence)
    assert all(b.endswith("signal.") for b in bodies)
    assert block.startswith("[1] Page 1 by Ada — Part 1\n    A summary.\n    Compress")


def test_short_sections_leave_budget_for_long_ones():
    long = "This sentence is about forty-five characters. " * 200
    items = [_item(1, "Short one."), _item(2, "Short two."), _item(3, long)]
    block = build_context_block(items)
    third = [line for line in block.splitlines() if line.startswith("    This")][0].strip()
    assert len(third) > CONTEXT_BUDGET - 100


def test_context_without_sources_and_with_odd_items():
    assert build_context_block([]) == "(No sources available)"
    block = build_context_block([{"title": None, "section_body": None, "summary": None}])
    assert block.startswith("[1] Untitled")


def test_excerpt_cuts_an_overlong_first_sentence_at_a_word():
    text = "word " * 100
    out = excerpt(text, 50)
    assert len(out) <= 50 and out.endswith("…") and " wor…" not in out


@pytest.mark.parametrize(
    ("text", "cited", "invalid"),
    [
        ("a [1] b [2].", [1, 2], []),
        ("a [1, 3] b [2-4] c [1][1]", [1, 2, 3, 4], []),
        ("x [0] y [11] z [5]", [5], [0, 11]),
        ("see [3](#source-3) and arr[i]", [3], []),
        ("no citations", [], []),
        ("[10]", [10], []),
    ],
)
def test_find_citations(text, cited, invalid):
    assert find_citations(text, 10) == (cited, invalid)


async def test_concurrent_conversations_stream_side_by_side(service, kb, fake_llm, capsys):
    """20 conversations at once: every stream has begun before any ends (nothing serialises them)."""
    n, per_stream = 20, 50
    # ~2 s per answer: long enough that a loaded machine starts all 20 before one ends.
    rate = 25
    fake_llm.set_mode("slow", tokens=["tok "], count=per_stream, rate=rate)
    log: list[tuple[int, str]] = []

    async def one(i: int):
        async for event in service.stream_response(f"parallel compression {i}"):
            log.append((i, event.event))
        return event

    started = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    assert all(isinstance(r, Done) and not r.fallback_used for r in results)
    first_done = next(k for k, (_, name) in enumerate(log) if name == "done")
    started_before = {i for i, name in log[:first_done] if name == "token"}
    assert started_before == set(range(n))
    assert len({r.conversation_id for r in results}) == n
    assert len(await usage_rows(kb)) == n
    with capsys.disabled():
        print(f"\n[chat concurrency] {kb.dialect}: {n} conversations × {per_stream} tokens at {rate} tok/s "
              f"in {elapsed:.2f} s (one answer alone ≈ {per_stream / rate:.1f} s)")


async def test_a_database_that_cannot_open_is_an_error_event_not_an_exception(llm_settings, tmp_path, fake_llm):
    from tui.db.engine import Database
    from tui.services.history import HistoryStore, LocalHistory

    unusable = tmp_path / "a-directory.db"
    unusable.mkdir()  # SQLite cannot open a directory: every query fails
    broken = Database(f"sqlite+aiosqlite:///{unusable}")
    svc = ChatService(llm_settings, broken, HistoryStore(LocalHistory(broken)),
                      search=SearchService(llm_settings))
    events = await ask(svc, creator="test-ada")
    assert len(events) == 1 and isinstance(events[0], Error)
    assert "knowledge base is not available" in events[0].message
    events = await ask(svc)
    assert len(events) == 1 and "Search failed" in events[-1].message
    assert fake_llm.chat_requests == []
    await broken.dispose()


async def test_cancelled_while_the_consumer_handles_an_event(service, fake_llm, kb, memory):
    """The TUI's pattern: cancel lands in the consumer's own await (not in the generator);
    the abandoned generator is finalised by the event loop, which still closes everything."""
    fake_llm.set_mode("slow", tokens=["tick "], count=100_000, rate=100)
    busy = asyncio.Event()

    async def consume():
        async for event in service.stream_response(QUESTION):
            if isinstance(event, Token):
                busy.set()
                await asyncio.sleep(3600)  # e.g. a widget update in progress

    task = asyncio.create_task(consume())
    await asyncio.wait_for(busy.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)

    async def settled() -> bool:
        rows = await usage_rows(kb)
        return bool(rows) and rows[0].status == "cancelled"

    for _ in range(500):
        if await settled():
            break
        await asyncio.sleep(0.01)
    assert await settled()
    [conv] = await transcripts.list_conversations(kb)
    assert (await transcripts.load_conversation(kb, conv.id))[1]["status"] == "cancelled"
    assert await memory.load(conv.id) == []


@pytest.mark.parametrize("ending", ["answered", "cancelled"])
async def test_a_long_answer_has_one_usage_row_from_its_first_partial_save(
        service, fake_llm, kb, monkeypatch, ending):
    """While a long answer streams its usage row exists ("incomplete", estimated), so a
    process killed then still leaves it; the end updates that row, never adds one."""
    import tui.services.chat as chat_module

    monkeypatch.setattr(chat_module, "PARTIAL_SAVE_INTERVAL", 0.2)
    count = 60 if ending == "answered" else 100_000
    fake_llm.set_mode("slow", tokens=["tick "], count=count, rate=100)
    seen: list[list] = []
    got: list = []

    async def consume():
        async with contextlib.aclosing(service.stream_response(QUESTION)) as stream:
            async for event in stream:
                await on_event(event)
                if ending == "cancelled" and seen and sum(isinstance(e, Token) for e in got) >= 40:
                    return  # closing the stream early: a cancelled request

    async def on_event(event):
        got.append(event)
        if not seen:
            rows = await usage_rows(kb)
            if rows:
                seen.append([(r.status, r.usage_estimated, r.completion_tokens) for r in rows])

    await asyncio.wait_for(consume(), 30)
    # Seen during the stream: one row, incomplete, with estimates for the text so far.
    [[(status, estimated, completion)]] = seen
    assert status == "incomplete" and estimated and completion > 0
    [row] = await usage_rows(kb)  # the same row, brought up to date
    assert row.status == ending and row.model == "primary-model"
    if ending == "answered":
        assert not row.usage_estimated  # the server's own usage replaced the estimates


async def test_the_usage_row_is_written_before_the_partial_answer(
        service, fake_llm, kb, monkeypatch):
    """A process killed between the two writes of a partial save leaves the request
    counted: whenever a partial answer reaches the archive, its usage row is already there."""
    import tui.services.chat as chat_module

    monkeypatch.setattr(chat_module, "PARTIAL_SAVE_INTERVAL", 0.2)
    fake_llm.set_mode("slow", tokens=["tick "], count=60, rate=100)
    rows_at_save: list[int] = []
    original = transcripts.save_partial

    async def save_partial(db, handle, text):
        rows_at_save.append(len(await usage_rows(kb)))
        return await original(db, handle, text)

    monkeypatch.setattr(transcripts, "save_partial", save_partial)
    events = await asyncio.wait_for(ask(service), 30)
    assert isinstance(events[-1], Done)
    assert rows_at_save and all(n == 1 for n in rows_at_save), rows_at_save
