"""Conversation export to Markdown: citations as footnotes, versions and failures marked."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from tui.services.export import cite_footnotes, conversation_to_markdown, source_line

S1 = {
    "number": 1,
    "title": "Parallel Compression on Drums",
    "creator_name": "Test Ada",
    "section_heading": "Setting up the send",
    "video_title": "Compression basics",
    "start_time": 30,
    "end_time": 95,
}
S2 = {
    "number": 2,
    "title": "Sidechain Ducking",
    "creator_name": "Test Ada",
    "section_heading": "Keying from the kick",
    "video_title": "Compression basics",
    "start_time": 200,
    "end_time": 260,
}
META = {
    "id": "c-1",
    "title": "Drum compression",
    "creator_name": "Test Ada",
    "created_at": datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
    "updated_at": "2026-11-27T14:05:00+00:00",
}


def test_source_line():
    assert source_line(S1) == (
        "Parallel Compression on Drums \u2014 Test Ada \u2014 Setting up the send"
        " \u2014 Compression basics @ 00:30\u201301:35"
    )
    assert source_line({"title": "T", "start_time": 5}) == "T \u2014 @ 00:05"
    assert source_line({}) == "(unknown source)"


def test_cite_footnotes_rewrites_known_numbers_outside_code():
    text = "Crush it [1] and key it [2][1], see [1, 2]. Not [7]. `x[1]`\n```\na[2]\n```\n[1](http://x)\n[2]: http://y\nas [2]: said"
    out, used = cite_footnotes(text, [1, 2], "3")
    assert out == (
        "Crush it [^3-1] and key it [^3-2][^3-1], see [^3-1][^3-2]. Not [7]. `x[1]`\n"
        "```\na[2]\n```\n[1](http://x)\n[2]: http://y\nas [^3-2]: said"
    )
    assert used == [1, 2]


def test_full_export():
    messages = [
        {"turn": 1, "role": "user", "content": "How do I thicken drums?"},
        {
            "turn": 1,
            "role": "assistant",
            "content": "Use parallel compression [1]. Duck the bass too [2].",
            "sources": [S1, S2],
            "model": "gpt-4o-mini",
            "cascade_tier": "global",
            "status": "answered",
        },
    ]
    md = conversation_to_markdown(META, messages)
    assert md == (
        "# Drum compression\n"
        "\n"
        "- Conversation: `c-1`\n"
        "- Creator: Test Ada\n"
        "- Started: 2026-11-27 14:00 UTC\n"
        "- Last activity: 2026-11-27T14:05:00+00:00\n"
        "\n"
        "## 1. You\n"
        "\n"
        "How do I thicken drums?\n"
        "\n"
        "## 1. Chrysopedia\n"
        "\n"
        "Use parallel compression [^1-1]. Duck the bass too [^1-2].\n"
        "\n"
        "*gpt-4o-mini · global*\n"
        "\n"
        "---\n"
        "\n"
        "[^1-1]: Parallel Compression on Drums \u2014 Test Ada \u2014 Setting up the send"
        " \u2014 Compression basics @ 00:30\u201301:35\n"
        "[^1-2]: Sidechain Ducking \u2014 Test Ada \u2014 Keying from the kick"
        " \u2014 Compression basics @ 03:20\u201304:20\n"
    )


def test_regenerated_failed_and_cancelled_turns_are_marked():
    messages = [
        SimpleNamespace(turn=1, role="user", content="q1", sources=None, status="answered"),
        SimpleNamespace(turn=1, role="assistant", content="old answer [1]", sources=[S1],
                        model="m", cascade_tier=None, status="answered", error=None),
        SimpleNamespace(turn=1, role="assistant", content="new answer [1]", sources=[S2 | {"number": 1}],
                        model="m", cascade_tier=None, status="answered", error=None),
        {"turn": 2, "role": "user", "content": "q2"},
        {"turn": 2, "role": "assistant", "content": "", "status": "failed", "error": "LLM generation failed"},
        {"turn": 3, "role": "user", "content": "q3"},
        {"turn": 3, "role": "assistant", "content": "partial", "status": "cancelled"},
        {"turn": 4, "role": "user", "content": "q4"},
    ]
    md = conversation_to_markdown({"title": ""}, messages)
    assert md.startswith("# Untitled conversation\n")
    assert "**Previous version 1 of 2 (regenerated):**\n\n> old answer [^1v1-1]\n>\n> *m*\n" in md
    assert "**Current version (2 of 2):**\n\nnew answer [^1-1]\n" in md
    # each version keeps its own sources
    assert "[^1v1-1]: Parallel Compression on Drums" in md
    assert "[^1-1]: Sidechain Ducking" in md
    assert "*This answer failed: LLM generation failed*" in md
    assert "*This answer was cancelled.*\n\npartial" in md
    assert "## 4. Chrysopedia\n\n*No answer.*" in md


def test_uncited_sources_are_listed_and_defined():
    messages = [
        {"turn": 1, "role": "user", "content": "q"},
        {"turn": 1, "role": "assistant", "content": "Only one [2].", "sources": [S1, S2]},
    ]
    md = conversation_to_markdown(META, messages)
    assert "Only one [^1-2].\n\nOther sources: [^1-1]" in md
    assert md.index("[^1-2]: Sidechain") < md.index("[^1-1]: Parallel")


def test_escape_sequences_are_stripped():
    messages = [
        {"turn": 1, "role": "user", "content": "hi\x1b[2J\x1b]52;c;aGk=\x07 there\u202e"},
        {"turn": 1, "role": "assistant", "content": "[bold red]x[/] ok",
         "sources": [{"number": 1, "title": "T\x1b[31m\nnext", "creator_name": "C"}]},
    ]
    md = conversation_to_markdown({"title": "t\x1b[1m"}, messages)
    assert "\x1b" not in md and "\x07" not in md and "\u202e" not in md
    assert "hi there" in md
    assert "[bold red]x[/] ok" in md  # Markdown export keeps the text as written
    assert "[^1-1]: T next \u2014 C" in md


async def test_export_from_the_transcript_archive(db):
    """What `load_conversation` returns exports as is, on both backends."""
    from tui.services.transcripts import (
        finish_turn,
        list_conversations,
        load_conversation,
        start_regeneration,
        start_turn,
    )

    first = await start_turn(db, None, "How do I thicken drums?", creator_slug="test-ada")
    await finish_turn(db, first, "Old take [1].", sources=[S1], model="m1", cascade_tier="creator")
    again = await start_regeneration(db, first.conversation_id)
    await finish_turn(db, again, "New take [1][2].", sources=[S1, S2], model="m2", cascade_tier="global")
    second = await start_turn(db, first.conversation_id, "And the bass?", creator_slug="test-ada")
    await finish_turn(db, second, "", status="failed", error="LLM generation failed")

    (meta,) = await list_conversations(db)
    md = conversation_to_markdown(meta, await load_conversation(db, first.conversation_id))
    assert md.startswith("# How do I thicken drums?\n")
    assert f"- Conversation: `{first.conversation_id}`" in md
    assert "- Creator: test-ada" in md
    assert "**Previous version 1 of 2 (regenerated):**\n\n> Old take [^1v1-1].\n>\n> *m1 · creator*" in md
    assert "**Current version (2 of 2):**\n\nNew take [^1-1][^1-2].\n\n*m2 · global*" in md
    assert "## 2. Chrysopedia\n\n*This answer failed: LLM generation failed*" in md
    assert md.count("[^1-1]: Parallel Compression on Drums") == 1
    assert "[^1v1-1]: Parallel Compression on Drums" in md
