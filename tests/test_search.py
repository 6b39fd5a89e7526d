"""SearchService, its index and the `search` command, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from tui.db.importer import import_path
from tui.services.search import ENOUGH_HITS, SearchService, edit_distance, query_terms

ITEM_KEYS = {
    "title", "technique_page_slug", "creator_name", "creator_slug", "topic_category", "summary",
    "section_anchor", "section_heading", "section_body", "source_video_id", "video_title",
    "video_filename", "video_url", "video_upload_date", "start_time", "end_time", "score", "locator",
    "locator_label",
}


def _section(anchor, heading, body, video=None, start=None, end=None):
    sec = {"anchor": anchor, "heading": heading, "body": body}
    if video:
        sec.update(video=video, start_time=start, end_time=end)
    return sec


def _kb() -> dict:
    """A small KB whose words are chosen so each cascade tier has a clear case."""
    return {
        "format": "chrysopedia.kb/1",
        "creators": [
            {"slug": "ana", "name": "Ana Loop"},
            {"slug": "ben", "name": "Ben Grain"},
            {"slug": "cai", "name": "Cai Tape"},
        ],
        "videos": [
            {"id": "ana-1", "creator": "ana", "title": "Pumping basslines", "filename": "ana-1.mp4"},
            {"id": "ben-1", "creator": "ben", "title": "Clouds of grains",
             "url": "https://example.com/ben-1"},
        ],
        "techniques": [
            {
                "slug": "sidechain-pump", "title": "Sidechain Compression for Pumping Bass",
                "creator": "ana", "topic_category": "Mixing", "tags": ["sidechain", "compression"],
                "summary": "Key a compressor on the bass from the kick so the low end breathes.",
                "sections": [
                    _section("key", "Keying from the kick",
                             "Route the kick into the compressor's external input.",
                             "ana-1", 30, 95),
                    _section("release", "Release time and groove",
                             "A release of 80 to 150 ms makes the bass swell back in time.",
                             "ana-1", 95, 160),
                    _section("ratio", "Ratio and depth",
                             "Start at 4:1 and pull the threshold down until it ducks 6 dB.",
                             "ana-1", 160, 220),
                    _section("alt", "Volume shaping instead",
                             "A volume shaper draws the same ducking curve without a detector.",
                             "ana-1", 220, 300),
                ],
            },
            {
                "slug": "reverb-throws", "title": "Reverb Throws on Vocals", "creator": "ana",
                "topic_category": "Mixing", "tags": ["reverb", "automation"],
                "summary": "Automate a send so single words bloom into a long hall.",
                "sections": [
                    _section("send", "Automating the send",
                             "Write send automation only on the last word of a phrase."),
                    _section("filter", "Filtering the tail",
                             "High-pass the return at 300 Hz so the tail stays out of the mud."),
                ],
            },
            {
                "slug": "granular-pads", "title": "Granular Synthesis Pads", "creator": "ben",
                "topic_category": "Synthesis", "tags": ["granular", "pads"],
                "summary": "Stretch a short sample into an evolving texture with grains.",
                "sections": [
                    _section("grains", "Grain size and density",
                             "Grains of 40 to 120 ms with high density blur into a smooth quxelish pad.",
                             "ben-1", 0, 60),
                    _section("spray", "Position spray",
                             "Randomise the playback position a little so the texture moves.",
                             "ben-1", 60, 120),
                ],
            },
            {
                "slug": "tape-saturation", "title": "Tape Saturation on the Mix Bus",
                "creator": "cai", "topic_category": "Audio Processing",  # no tags
                "summary": "Gentle tape drive glues the mix and rounds transients.",
                "sections": [
                    _section("drive", "Input drive",
                             "Push the input until the loudest hits lose a decibel of peak."),
                    _section("wow", "Wow and flutter",
                             "A touch of flutter makes synth pads feel less static."),
                ],
            },
            {
                "slug": "parallel-drums", "title": "Parallel Compression on Drums",
                "creator": "cai", "topic_category": "Mixing", "tags": ["compression", "drums"],
                "summary": "Blend a crushed copy of the drum bus under the dry signal.",
                "sections": [
                    _section("crush", "Crushing the copy",
                             "Compress the duplicate at 10:1 with the fastest attack."),
                    _section("blend", "Blending it back",
                             "Bring it up under the dry drums until they feel thicker."),
                ],
            },
        ],
    }


@pytest.fixture
async def kb_db(db, tmp_path):
    path = tmp_path / "kb.json"
    path.write_text(json.dumps(_kb()))
    await import_path(db, path)
    return db


@pytest.fixture
def service(settings) -> SearchService:
    return SearchService(settings)


def slugs(result) -> list[str]:
    return [item["technique_page_slug"] for item in result["items"]]


# ---------------------------------------------------------------- query side


def test_query_terms_drop_stopwords_and_noise():
    assert query_terms("How do I get the best sidechain on my bass?") == ["sidechain", "bass"]
    assert query_terms("the who") == ["the", "who"]  # nothing else left: keep them
    assert query_terms("x" * 10_000) == []
    assert query_terms("Side-chain: \"NEAR\" AND (bass)*") == ["side", "chain", "near", "bass"]


def test_edit_distance_counts_a_swap_once():
    assert edit_distance("sidechian", "sidechain", 2) == 1
    assert edit_distance("compresion", "compression", 2) == 1
    assert edit_distance("reverb", "granular", 2) == 3


# ------------------------------------------------------------------ the API


async def test_items_have_the_documented_shape(kb_db, service):
    result = await service.search("sidechain", db=kb_db)
    assert {"items", "cascade_tier"} <= set(result) <= {
        "items", "cascade_tier", "evidence", "nearest", "creator_detected"}
    assert result["items"]
    for item in result["items"]:
        assert set(item) == ITEM_KEYS
    first = result["items"][0]
    assert first["creator_slug"] == "ana" and first["creator_name"] == "Ana Loop"
    assert first["video_title"] == "Pumping basslines" and first["video_filename"] == "ana-1.mp4"
    assert isinstance(first["score"], float)


async def test_stemming_finds_other_forms(kb_db, service):
    result = await service.search("compressing", db=kb_db)
    assert {"sidechain-pump", "parallel-drums"} <= set(slugs(result))


async def test_one_page_gives_at_most_two_sections(kb_db, service):
    result = await service.search("sidechain compression bass", db=kb_db, limit=10)
    assert slugs(result).count("sidechain-pump") == 2


async def test_title_outranks_body(kb_db, service):
    # "pads" is in one page's title and tags, and only in another page's body.
    result = await service.search("pads", db=kb_db)
    assert slugs(result)[0] == "granular-pads"
    assert "tape-saturation" in slugs(result)


@pytest.fixture
def lexical_only():
    """The lexical side alone: what these tests check is how words are matched and
    ranked (the semantic side reads the whole question, stopwords too, by design)."""
    from tui.services import search as search_mod

    search_mod.set_semantic(False)
    yield
    search_mod.set_semantic(True)


async def test_stopwords_do_not_drive_the_ranking(kb_db, service, lexical_only):
    plain = await service.search("reverb vocals", db=kb_db)
    wordy = await service.search("what is the best way to do reverb on the vocals?", db=kb_db)
    assert [i["section_anchor"] for i in wordy["items"]] == [i["section_anchor"] for i in plain["items"]]


async def test_same_query_same_answer(kb_db, service):
    first = await service.search("compression drums bass", db=kb_db)
    for _ in range(3):
        assert await service.search("compression drums bass", db=kb_db) == first


async def test_limit_is_respected(kb_db, service):
    result = await service.search("compression", db=kb_db, limit=1)
    assert len(result["items"]) == 1


async def test_accepts_a_session(kb_db, service):
    async with kb_db.session() as session:
        result = await service.search("granular", db=session)
    assert slugs(result)[0] == "granular-pads"


# ------------------------------------------------------------------ cascade


async def test_global_tier_when_every_word_matches(kb_db, service):
    result = await service.search("compression", db=kb_db)
    assert result["cascade_tier"] == "global"
    assert len(result["items"]) >= ENOUGH_HITS


async def test_relaxed_tier_when_words_do_not_meet(kb_db, service):
    # No section has both words; an unknown, uncorrectable word is dropped.
    result = await service.search("granular automation xqzvjk", db=kb_db)
    assert result["cascade_tier"] == "relaxed"
    assert {"granular-pads", "reverb-throws"} <= set(slugs(result))


async def test_too_few_global_hits_fall_to_relaxed_with_the_best_first(kb_db, service):
    # Only one section holds both words: fewer than ENOUGH_HITS.
    result = await service.search("flutter pads", db=kb_db)
    assert result["cascade_tier"] == "relaxed"
    assert result["items"][0]["section_anchor"] == "wow"


async def test_fuzzy_tier_corrects_typos(kb_db, service):
    result = await service.search("sidechian compresion", db=kb_db)
    assert result["cascade_tier"] == "fuzzy"
    assert slugs(result)[0] == "sidechain-pump"
    result = await service.search("granlar synthesiss", db=kb_db)
    assert result["cascade_tier"] == "fuzzy"
    assert slugs(result)[0] == "granular-pads"


async def test_typo_next_to_a_known_word_is_corrected_not_dropped(kb_db, service):
    result = await service.search("sidechian bass", db=kb_db)
    assert result["cascade_tier"] == "fuzzy"
    assert slugs(result)[0] == "sidechain-pump"


async def test_prefix_completion(kb_db, service):
    result = await service.search("saturat", db=kb_db)
    assert result["cascade_tier"] == "fuzzy"
    assert slugs(result)[0] == "tape-saturation"


async def test_none_when_nothing_matches(kb_db, service):
    result = await service.search("qwxz vbnmk", db=kb_db)
    assert (result["items"], result["cascade_tier"]) == ([], "none")


@pytest.mark.parametrize("creator", ["ana", "Ana Loop", "ana loop"])
async def test_creator_tier_by_slug_or_name(kb_db, service, creator):
    result = await service.search("compression", db=kb_db, creator=creator)
    assert result["cascade_tier"] == "creator"
    assert {i["creator_slug"] for i in result["items"]} == {"ana"}


async def test_creator_tier_takes_half_the_words(kb_db, service):
    result = await service.search("release groove swing feel", db=kb_db, creator="ana")
    assert result["cascade_tier"] == "creator"
    assert result["items"][0]["section_anchor"] == "release"


async def test_creator_without_matches_falls_to_wider_tiers(kb_db, service):
    # Ana has no section with either word; two words in one page are < ENOUGH_HITS.
    result = await service.search("granular pads", db=kb_db, creator="ana")
    assert result["cascade_tier"] == "relaxed"
    assert slugs(result)[0] == "granular-pads"
    result = await service.search("compression", db=kb_db, creator="ben")
    assert result["cascade_tier"] == "global"
    unknown = await service.search("compression", db=kb_db, creator="nobody")
    assert unknown["cascade_tier"] == "global"


async def test_reimport_refreshes_the_index(kb_db, service, tmp_path):
    kb = _kb()
    page = kb["techniques"][2]
    page["sections"] = [_section("grains", "Grain size", "Tiny zorblat grains shimmer.")]
    path = tmp_path / "kb2.json"
    path.write_text(json.dumps(kb))
    await import_path(kb_db, path)
    result = await service.search("zorblat", db=kb_db)
    assert [i["section_anchor"] for i in result["items"]] == ["grains"]
    gone = await service.search("spray randomise", db=kb_db)
    assert "spray" not in [i["section_anchor"] for i in gone["items"]]


# ---------------------------------------------------------------- any input

HOSTILE = [
    '"', '""', "'", "sidechain\"", "side-chain", "-bass", "bass -kick", "title: reverb",
    "{title}: x", "*", "comp*", "NEAR(kick bass)", "kick NEAR bass", "AND", "OR NOT",
    "kick AND OR NOT bass", "(", ")", "((reverb)", "^pads", "🎛️🔥", "reverb 🎚️ vocals",
    "'; DROP TABLE sections; --", "a:b:c", "\\", "%_", "\x00", "x" * 10_000,
    "reverb " * 2000, "ünïcödé säturation", "日本語のリバーブ", "NULL", "1e999", ":*", "!&|",
]


@pytest.mark.parametrize("query", HOSTILE)
async def test_any_input_is_safe(kb_db, service, query):
    result = await service.search(query, db=kb_db, creator="ana")
    assert result["cascade_tier"] in {"creator", "global", "relaxed", "fuzzy", "none"}
    assert isinstance(result["items"], list)
    stats = await service.search("compression", db=kb_db)  # the database is intact
    assert stats["items"]


@pytest.mark.parametrize("query", ["", "   ", "\n\t "])
async def test_empty_query_is_a_value_error(kb_db, service, query):
    with pytest.raises(ValueError, match="empty"):
        await service.search(query, db=kb_db)


async def test_empty_knowledge_base(db, service):
    result = await service.search("reverb", db=db)
    assert (result["items"], result["cascade_tier"], result["nearest"]) == ([], "none", [])


async def test_mini_kb(db, service, mini_kb_path):
    await import_path(db, mini_kb_path)
    result = await service.search("parallel compression", db=db)
    assert slugs(result)[0] == "parallel-compression"


# --------------------------------------------------------------------- CLI


def _cli(db_url: str, *argv: str) -> int:
    from tui.cli import main

    return main(["--db", db_url, "search", *argv])


def test_cli_human_and_json(db_target, tmp_path, capsys):
    path = tmp_path / "kb.json"
    path.write_text(json.dumps(_kb()))
    from tui.cli import main

    assert main(["--db", db_target.url, "import", str(path)]) == 0
    capsys.readouterr()
    # Ask for a word only this KB has.
    assert _cli(db_target.url, "quxelish", "--limit", "3") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "1 section (tier: global)"
    assert out[1] == " 1. Granular Synthesis Pads — Ben Grain — Grain size and density — 00:00–01:00"
    assert _cli(db_target.url, "keying", "kick", "--creator", "ana", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["cascade_tier", "items"]
    assert data["cascade_tier"] == "creator"
    assert set(data["items"][0]) == ITEM_KEYS


def test_cli_empty_query_exits_2(db_target, capsys):
    assert _cli(db_target.url, "  ") == 2
    assert "empty" in capsys.readouterr().err


# ------------------------------------------------------------- bounded work


async def test_bounded_any_word_keeps_the_rarest(kb_db, service, monkeypatch, lexical_only):
    import tui.services.search as search_mod

    # Every word counts as too common to score everywhere: the cap paths run.
    monkeypatch.setattr(search_mod, "SCORE_CAP", 1)
    monkeypatch.setattr(search_mod, "PG_SCORE_CAP", 1)
    result = await service.search("granular pads wow", db=kb_db)
    assert result["items"]
    assert slugs(result)[0] in {"granular-pads", "tape-saturation"}
    # all words very common: matched in title, heading and tags only
    result = await service.search("compression", db=kb_db)
    assert result["items"]
    for item in result["items"]:
        assert "compression" in (item["title"] + " " + item["section_heading"]).lower() or (
            item["technique_page_slug"] in {"sidechain-pump", "parallel-drums"}
        )


async def test_pg_fuzzy_without_trigram_index(kb_db, db_target, service):
    """Without pg_trgm's index the trigram table finds the spelling neighbours."""
    if db_target.backend != "postgresql":
        pytest.skip("PostgreSQL only")
    from sqlalchemy import text

    async with kb_db.engine.begin() as conn:
        await conn.execute(text("DROP INDEX IF EXISTS ix_search_vocab_trgm"))
    result = await service.search("sidechian compresion", db=kb_db)
    assert result["cascade_tier"] == "fuzzy"
    assert slugs(result)[0] == "sidechain-pump"


async def test_word_variants_match_plainer_forms(kb_db, service):
    # "punchier"/"grainy" are not in the KB; "grain" is.
    result = await service.search("grainy", db=kb_db)
    assert slugs(result)[0] == "granular-pads"
    assert result["cascade_tier"] in {"global", "relaxed"}


@pytest.mark.parametrize("creator", ["\x00", "ana\x00", "x" * 5000, "'; DROP TABLE creators; --", "", "  "])
async def test_any_creator_is_safe(kb_db, service, creator):
    result = await service.search("granular", db=kb_db, creator=creator)
    assert result["cascade_tier"] == "global"
    assert slugs(result)[0] == "granular-pads"


async def test_the_sqlalchemy_path_ranks_as_the_driver_path(kb_db):
    """Without aiosqlite's worker-thread hook the cascade runs through run_sync: same answer."""
    from tui.services.search import _Run, _SessionExec

    service = SearchService(None)
    for query, creator in [("sidechian compresion", None), ("release groove", "ana"),
                           ("granular automation xqzvjk", None), ("compression drums", None)]:
        fast = await service.search(query, db=kb_db, creator=creator)
        async with kb_db.session() as session:
            slow = await session.run_sync(
                lambda s, q=query, c=creator: _Run(_SessionExec(s), kb_db.dialect, 10).search(q, c)
            )
        assert slow == fast


async def test_a_database_without_an_index_gets_one(db_target, mini_kb_path, service):
    from sqlalchemy import text

    db = db_target.database()
    await db.init()
    await import_path(db, mini_kb_path)
    table = "search_fts" if db.dialect == "sqlite" else "search_docs"
    async with db.engine.begin() as conn:  # as if made by a version without search
        await conn.execute(text(f"DROP TABLE {table}"))
        await conn.execute(text("DELETE FROM chrysopedia_meta WHERE key = 'search_index_version'"))
    await db.dispose()
    db = db_target.database()
    try:
        await db.init()
        result = await service.search("parallel compression", db=db)
        assert slugs(result)[0] == "parallel-compression"
    finally:
        await db.dispose()


async def test_pg_gin_pending_lists_merged(kb_db, db_target):
    """After a rebuild and after a page is re-indexed, the GIN indexes hold every entry:
    no pending list for each search to read through (see search_index.merge_pending)."""
    if db_target.backend != "postgresql":
        pytest.skip("PostgreSQL only")
    from sqlalchemy import text

    from tui.db import search_index

    async def pending_pages(conn) -> list[int]:
        # merging returns how many pending-list pages it merged: 0 when there were none
        return [(await conn.execute(text(f"SELECT gin_clean_pending_list('{ix}'::regclass)"))).scalar()
                for ix in ("ix_search_docs_tsv", "ix_search_docs_head")]

    async with kb_db.engine.begin() as conn:
        assert await pending_pages(conn) == [0, 0]  # the import's rebuild merged them
        page_ids = [r[0] for r in await conn.execute(text("SELECT id FROM technique_pages"))]
        await search_index.unindex_pages(conn, page_ids[:1])
        await search_index.index_pages(conn, page_ids[:1])
        assert await pending_pages(conn) == [0, 0]
        await conn.rollback()


def test_holds_answers_what_near_defines():
    """The evidence's look-ups (`_holds` over `_Stems`) agree with `_near` pair by pair, on
    words built to sit at every edge: 4-8 letters, prefixes cut by 0-5 letters."""
    import random

    from tui.services.search import _holds, _near, _Stems

    rng = random.Random(7)
    letters = "abc"
    for _ in range(3000):
        base = "".join(rng.choice(letters) for _ in range(rng.randint(4, 9)))
        doc = {base[: rng.randint(3, len(base))] for _ in range(rng.randint(1, 4))}
        doc |= {"".join(rng.choice(letters) for _ in range(rng.randint(3, 9)))}
        query = {base[: rng.randint(3, len(base))] + "".join(
            rng.choice(letters) for _ in range(rng.randint(0, 4)))}
        expected = bool(query & doc) or any(
            len(s) >= 5 and any(_near(s, d) for d in doc) for s in query)
        assert _holds(query, _Stems(doc)) == expected, (query, doc)
