"""Tier `none` when nothing in the KB is about the question, what the chat does then, and a
creator named in the question: real search on the bundled KB (SQLite and PostgreSQL), the
real chat service, the loopback model server (tests/fake_openai.py)."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import select

from tui.config import load_settings
from tui.db.importer import bundled_kb_path, import_path
from tui.db.models import ChatUsageLog
from tui.services.chat import NO_SOURCES_MODEL, ChatService, Done, Sources, Token
from tui.services.history import open_history
from tui.services.search import SearchService

OFF_TOPIC = ["how to bake sourdough bread", "what is capital gains tax on shares",
             "how to reverse a linked list in python", "explain the offside rule in football"]
NEAR_MISS = ["how do I register my songs with a collecting society for royalties",
             "how to promote my music on tiktok"]
# Near misses in ordinary English the KB's pages use little or not at all: the similarity and
# coverage alone answered them (docs/BENCHMARKS.md); the English-affinity evidence does not.
GENERAL_ENGLISH = ["what does a music publisher do", "what should a record label contract include",
                   "how to get my song onto an editorial playlist",
                   "best mortgage rates for first time buyers"]
ANSWERABLE = ["make the pads pump with the kick", "sidechian compresion",
              "how loud should I master for spotify"]


@pytest.fixture
async def bundled(db):
    await import_path(db, bundled_kb_path())
    return db


@pytest.fixture
def search():
    return SearchService(None)


async def ask(svc: ChatService, query: str, **kw) -> list:
    async with contextlib.aclosing(svc.stream_response(query, **kw)) as stream:
        return [event async for event in stream]


# ---------------------------------------------------------------- search


async def test_nothing_about_it_is_tier_none_with_the_nearest_topics(bundled, search):
    for query in OFF_TOPIC + NEAR_MISS:
        result = await search.search(query, db=bundled)
        assert result["cascade_tier"] == "none" and result["items"] == [], query
        assert 1 <= len(result["nearest"]) <= 3
        assert all(isinstance(t, str) and t for t in result["nearest"])
    for query in ANSWERABLE:
        result = await search.search(query, db=bundled)
        assert result["cascade_tier"] != "none" and result["items"], query


async def test_near_misses_in_general_english_are_tier_none(bundled, search):
    for query in GENERAL_ENGLISH:
        result = await search.search(query, db=bundled)
        assert result["cascade_tier"] == "none" and result["items"] == [], query
        assert result["evidence"]["affinity"] < 0.5, (query, result["evidence"])
    # the KB's own words weigh the other way
    ev = (await search.search("make the pads pump with the kick", db=bundled))["evidence"]
    assert ev["affinity"] > 1.0, ev


async def test_the_affinity_is_what_stops_them(bundled, search, monkeypatch):
    """Weighed without the affinity (the gate as it was: similarity + 4 * coverage >= 1.04),
    the near misses above get sources: the test above fails without it."""
    from tui.services import search as search_mod

    monkeypatch.setattr(search_mod, "W_AFFINITY", 0.0)
    monkeypatch.setattr(search_mod, "EVIDENCE_FLOOR", 1.04)
    answered = [q for q in GENERAL_ENGLISH
                if (await search.search(q, db=bundled))["cascade_tier"] != "none"]
    assert len(answered) >= 3, answered


def test_word_affinity_against_general_english():
    from tui.services.search import AFFINITY_CLIP, english_zipf, word_affinity

    n = 362  # the bundled KB's sections
    assert english_zipf("mortgage") > 4 and english_zipf("sidechian") == 0
    # the KB's own words: far more frequent in its sections than in English
    assert word_affinity("sidechain", 41, n) == AFFINITY_CLIP
    assert word_affinity("compression", 67, n) > 1.0
    # ordinary English the KB lacks: far less frequent than English predicts
    assert word_affinity("mortgage", 0, n) < -0.3
    assert word_affinity("contract", 0, n) < word_affinity("compression", 67, n) - 2
    # a word neither knows is a typo: no evidence either way
    assert word_affinity("sidechian", 0, n) is None
    # a word only the KB knows counts as rare English
    assert word_affinity("wavtablex", 3, n) > 1.0


async def test_a_named_creator_does_not_make_an_off_topic_question_answerable(bundled, search):
    """In the creator tier the creator's name counts as a KB word: a general-worded question
    to a creator is answered, an off-topic one that names a creator is not."""
    for query in ["how does Mara Voss bake sourdough bread",
                  "what does Rue Okafor think about mortgage rates",
                  "how does Hexwright file a tax return", "dj kiln best pasta recipe",
                  "how does Nova Quill train for a marathon",
                  "what laptop does Lumen Ayo recommend for college",
                  "how does Mara Voss negotiate a record label contract",
                  "how does Rue Okafor soundproof a bedroom"]:
        result = await search.search(query, db=bundled)
        assert "creator_detected" in result and result["cascade_tier"] == "none", query
    result = await search.search("how does Rue Okafor handle the low end", db=bundled)
    assert result["cascade_tier"] == "creator" and result["items"], result["evidence"]
    result = await search.search("how do you handle the low end", db=bundled, creator="lumen-ayo")
    assert result["cascade_tier"] == "creator" and result["items"], result["evidence"]


async def test_without_the_gate_the_off_topic_question_would_get_sources(bundled, search):
    """What the gate prevents (the test above fails without it)."""
    from tui.services import search as search_mod

    search_mod.set_gate(False)
    try:
        result = await search.search("how to bake sourdough bread", db=bundled)
    finally:
        search_mod.set_gate(True)
    assert result["items"] and result["cascade_tier"] != "none"


# ---------------------------------------------------------------- chat


@pytest.fixture
async def memory(bundled, settings):
    store = await open_history(settings, bundled)
    yield store
    await store.close()


async def test_tier_none_asks_no_model_and_says_so(bundled, memory, llm_settings, fake_llm):
    fake_llm.set_mode("normal", tokens=["should", " not", " be", " asked"])
    svc = ChatService(llm_settings, bundled, memory, search=SearchService(llm_settings))
    try:
        events = await ask(svc, "how to bake sourdough bread")
    finally:
        await svc.aclose()
    assert isinstance(events[0], Sources) and events[0].sources == []
    done = events[-1]
    assert isinstance(done, Done) and done.cascade_tier == "none"
    assert done.model == NO_SOURCES_MODEL and done.payload()["cascade_tier"] == "none"
    text = "".join(e.text for e in events if isinstance(e, Token))
    assert "knowledge base has nothing on this" in text
    nearest = (await SearchService(None).search("how to bake sourdough bread", db=bundled))["nearest"]
    assert nearest and all(title in text.replace("\\", "") for title in nearest)
    assert fake_llm.chat_requests == []  # the loopback server saw no request
    async with bundled.session() as s:
        assert (await s.execute(select(ChatUsageLog))).scalars().all() == []
    assert done.usage["total_tokens"] == 0
    # Not an answer, so no claim check: its list of nearest topics is not "3 uncited claims".
    assert done.claims is None and done.payload()["claims"] is None


async def test_the_setting_restores_the_model_call(bundled, memory, llm_settings, fake_llm):
    fake_llm.set_mode("normal", tokens=["General", " advice."])
    settings = llm_settings.with_overrides(answer_without_sources=True)
    svc = ChatService(settings, bundled, memory, search=SearchService(settings))
    try:
        events = await ask(svc, "how to bake sourdough bread")
    finally:
        await svc.aclose()
    done = events[-1]
    assert isinstance(done, Done) and done.cascade_tier == "none"
    assert done.model == "primary-model" and len(fake_llm.chat_requests) == 1
    assert "".join(e.text for e in events if isinstance(e, Token)) == "General advice."


def test_the_setting_from_environment_and_file(tmp_path):
    assert load_settings(env={}).answer_without_sources is False
    on = load_settings(env={"CHRYSOPEDIA_ANSWER_WITHOUT_SOURCES": "yes"})
    assert on.answer_without_sources is True
    path = tmp_path / "config.toml"
    path.write_text("answer_without_sources = true\n")
    assert load_settings(config_file=path, env={}).answer_without_sources is True
    from tui.config import ConfigError

    with pytest.raises(ConfigError, match="expected true or false"):
        load_settings(env={"CHRYSOPEDIA_ANSWER_WITHOUT_SOURCES": "maybe"})


# ---------------------------------------------------------------- a creator in the question


async def test_a_creator_named_in_the_question_scopes_it(bundled, search):
    for query in ("how does Rue Okafor layer a reese", "rue okafor's reese bass",
                  "RÚE OKÁFOR reese", "reese tips from rue-okafor"):
        result = await search.search(query, db=bundled)
        assert result["creator_detected"] == {"slug": "rue-okafor", "name": "Rue Okafor"}, query
        assert result["cascade_tier"] == "creator"
        assert result["items"][0]["creator_slug"] == "rue-okafor"
        assert result["items"][0]["technique_page_slug"] == "reese-bass-design"
    # a name chosen explicitly is not overridden by one in the text
    chosen = await search.search("rue okafor reese", db=bundled, creator="hexwright")
    assert "creator_detected" not in chosen


async def test_words_that_merely_resemble_a_name_are_not_a_creator(bundled, search):
    for query in (
        "how does Okafor layer a reese",  # part of a name
        "rue the day I layered a reese",  # a word that is also part of a name
        "brisk mono-compatible reese",  # "brisk mono" is a creator, "mono-compatible" is not
        "hexwrite wavetable bass",  # one letter from Hexwright
        "grain field recording",  # Grainfield split in two
    ):
        result = await search.search(query, db=bundled)
        assert "creator_detected" not in result, query


async def test_the_done_event_says_the_creator_was_recognised(bundled, memory, settings):
    svc = ChatService(settings, bundled, memory, search=SearchService(settings))
    try:
        events = await ask(svc, "how does Rue Okafor layer a reese")
    finally:
        await svc.aclose()
    done = events[-1]
    assert isinstance(done, Done) and done.cascade_tier == "creator"
    assert done.payload()["creator_detected"] == {"slug": "rue-okafor", "name": "Rue Okafor"}
    assert all(s["creator_slug"] == "rue-okafor" for s in events[0].sources)
