"""The transcript archive on both SQL backends: turns, failures, regeneration, listing, deletion."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tui.services import transcripts as T
from tui.services.history import validate_conversation_id

SOURCES = [
    {"number": 1, "title": "Reese bass", "slug": "reese-bass", "creator_name": "Skope",
     "topic_category": "synthesis", "summary": "Two detuned saws", "section_anchor": "detune",
     "section_heading": "Detune", "source_video_id": "v1", "start_time": 12.5, "end_time": 30.0,
     "video_filename": "reese.mp4"},
]
USAGE = {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}


async def test_a_turn_is_saved_before_and_after_the_answer(db):
    h = await T.start_turn(db, None, "How do I make a reese bass?", "skope", 0.4)
    assert uuid.UUID(h.conversation_id) and h.turn == 1 and h.question.startswith("How")
    # Before the answer: the question is kept, the answer shows as incomplete.
    msgs = await T.load_conversation(db, h.conversation_id)
    assert [(m["role"], m["status"]) for m in msgs] == [("user", "answered"), ("assistant", "incomplete")]
    await T.save_partial(db, h, "Start with two")
    assert (await T.load_conversation(db, h.conversation_id))[1]["content"] == "Start with two"

    await T.finish_turn(db, h, "Start with two detuned saws [1].", SOURCES, "gpt-x", "creator",
                        USAGE, "answered", False, 812.5)
    user, answer = await T.load_conversation(db, h.conversation_id)
    assert user["content"] == "How do I make a reese bass?" and user["turn"] == 1
    assert answer == answer | {
        "role": "assistant", "turn": 1, "content": "Start with two detuned saws [1].",
        "sources": SOURCES, "status": "answered", "model": "gpt-x", "cascade_tier": "creator",
        "usage": USAGE, "fallback_used": False, "latency_ms": 812.5, "error": None,
        "creator_slug": "skope", "personality_weight": 0.4, "current": True, "interrupted": False,
    }
    assert answer["created_at"].tzinfo is not None


async def test_failed_and_cancelled_turns_are_kept(db):
    h1 = await T.start_turn(db, None, "first", None, 0.0)
    await T.finish_turn(db, h1, "", [], "gpt-x", "global", None, "failed", True, 30.0,
                        error="LLM generation failed")
    h2 = await T.start_turn(db, h1.conversation_id, "second", None, 0.0)
    assert h2.turn == 2
    await T.finish_turn(db, h2, "partial ans", SOURCES, "gpt-x", "global", None, "cancelled")
    msgs = await T.load_conversation(db, h1.conversation_id)
    assert [(m["turn"], m["role"], m["status"]) for m in msgs] == [
        (1, "user", "answered"), (1, "assistant", "failed"),
        (2, "user", "answered"), (2, "assistant", "cancelled"),
    ]
    assert msgs[1]["error"] == "LLM generation failed" and msgs[1]["fallback_used"] is True
    assert msgs[3]["content"] == "partial ans"


async def test_finish_turn_refuses_unknown_status(db):
    h = await T.start_turn(db, None, "q")
    with pytest.raises(ValueError):
        await T.finish_turn(db, h, "x", status="incomplete")


async def test_regeneration_adds_a_version_to_the_turn(db):
    h = await T.start_turn(db, None, "What is OTT compression?", "skope", 0.0)
    await T.finish_turn(db, h, "first answer", SOURCES, "m1", "global", USAGE, "answered")
    r = await T.start_regeneration(db, h.conversation_id)
    assert (r.turn, r.question) == (1, "What is OTT compression?")
    assert r.assistant_message_id != h.assistant_message_id
    await T.finish_turn(db, r, "second answer", SOURCES, "m2", "global", USAGE, "answered")
    msgs = await T.load_conversation(db, h.conversation_id)
    assert [(m["role"], m["content"], m["current"]) for m in msgs] == [
        ("user", "What is OTT compression?", True),
        ("assistant", "first answer", False),
        ("assistant", "second answer", True),
    ]
    # A next turn continues the numbering; regenerating an earlier turn targets it.
    h2 = await T.start_turn(db, h.conversation_id, "and then?")
    assert h2.turn == 2
    r1 = await T.start_regeneration(db, h.conversation_id, turn=1)
    assert r1.turn == 1
    with pytest.raises(LookupError):
        await T.start_regeneration(db, h.conversation_id, turn=7)
    with pytest.raises(LookupError):
        await T.start_regeneration(db, validate_conversation_id(None))


async def test_listing_titles_order_and_counts(db):
    long_q = "How do I " + "really " * 30 + "glue a drum bus?"
    a = await T.start_turn(db, None, long_q, "skope", 0.7)
    await T.finish_turn(db, a, "ans", [], "m", "creator", USAGE, "answered")
    b = await T.start_turn(db, None, "  Sidechain\n pumping?  ", None, 0.0)
    await T.finish_turn(db, b, "ans", [], "m", "global", USAGE, "answered")
    a2 = await T.start_turn(db, a.conversation_id, "second question", "skope", 0.7)
    await T.finish_turn(db, a2, "ans", [], "m", "creator", USAGE, "answered")

    convs = await T.list_conversations(db)
    assert [c.id for c in convs] == [a.conversation_id, b.conversation_id]  # latest activity first
    first, second = convs
    assert first.turns == 2 and second.turns == 1
    assert len(first.title) <= T.TITLE_CHARS and first.title.endswith("…")
    assert first.title.startswith("How do I really")
    assert second.title == "Sidechain pumping?"
    assert (first.creator_slug, first.personality_weight) == ("skope", 0.7)
    assert first.updated_at >= first.created_at and first.updated_at.tzinfo is not None
    assert (await T.list_conversations(db, limit=1))[0].id == a.conversation_id
    assert (await T.list_conversations(db, limit=1, offset=1))[0].id == b.conversation_id
    d = first.as_dict()
    assert d["id"] == a.conversation_id and isinstance(d["updated_at"], str)
    got = await T.get_conversation(db, b.conversation_id)
    assert got is not None and got.title == "Sidechain pumping?"
    assert await T.get_conversation(db, validate_conversation_id(None)) is None


async def test_delete_conversation(db):
    h = await T.start_turn(db, None, "q")
    await T.finish_turn(db, h, "a", SOURCES, "m", "global", USAGE, "answered")
    keep = await T.start_turn(db, None, "keep me")
    assert await T.delete_conversation(db, h.conversation_id) is True
    assert await T.load_conversation(db, h.conversation_id) == []
    assert await T.delete_conversation(db, h.conversation_id) is False
    assert [c.id for c in await T.list_conversations(db)] == [keep.conversation_id]


async def test_interrupted_answers_are_marked(db):
    h = await T.start_turn(db, None, "q")
    await T.save_partial(db, h, "half an ans")
    done = await T.start_turn(db, None, "q2")
    await T.finish_turn(db, done, "a", [], "m", "global", None, "answered")
    # A fresh one (another process might be streaming it) is left alone with a guard.
    assert await T.mark_interrupted(db, older_than=3600) == 0
    assert await T.mark_interrupted(db) == 1
    assert await T.mark_interrupted(db) == 0
    msgs = await T.load_conversation(db, h.conversation_id)
    assert msgs[1]["status"] == "incomplete" and msgs[1]["interrupted"]
    assert msgs[1]["content"] == "half an ans"
    # finish_turn after a restart would not happen; save_partial no longer writes a finished one.
    await T.save_partial(db, done, "overwrite?")
    assert (await T.load_conversation(db, done.conversation_id))[1]["content"] == "a"


async def test_bad_ids_are_refused(db):
    with pytest.raises(ValueError):
        await T.start_turn(db, "x'; DROP TABLE messages; --", "q")
    with pytest.raises(ValueError):
        await T.load_conversation(db, "nope")
    with pytest.raises(ValueError):
        await T.delete_conversation(db, "*")


async def test_text_is_stored_verbatim(db):
    q = "[bold red]markup[/] \x1b[2J and 'quotes\"; -- 🎛️ \n\nnew para"
    h = await T.start_turn(db, None, q)
    await T.finish_turn(db, h, q, [], "m", "global", None, "answered")
    msgs = await T.load_conversation(db, h.conversation_id)
    assert msgs[0]["content"] == q and msgs[1]["content"] == q


async def test_concurrent_turns_get_distinct_numbers(db):
    cid = validate_conversation_id(None)
    # Ten first turns racing on a new conversation: one creates it, all get their own turn.
    handles = await asyncio.gather(*(T.start_turn(db, cid, f"q{i}") for i in range(10)))
    assert sorted(h.turn for h in handles) == list(range(1, 11))
    convs = await T.list_conversations(db)
    assert len(convs) == 1 and convs[0].turns == 10
    assert len(await T.load_conversation(db, cid)) == 20
