"""The bundled knowledge base validates, meets its counts, and loads on first run."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tui.commands._common import open_database
from tui.commands.kb import gather_stats
from tui.config import load_settings
from tui.db.engine import set_meta
from tui.db.importer import bundled_kb_path, ensure_bundled_kb
from tui.db.kb_format import read_documents, validate

CATEGORIES = {"Synthesis", "Sound Design", "Mixing", "Sampling", "Audio Processing",
              "Arrangement", "Mastering"}
PROFILE_FIELDS = {
    "tone": {"teaching_style", "energy", "formality", "descriptors"},
    "vocabulary": {"signature_phrases", "distinctive_terms", "sound_descriptions"},
    "style_markers": {"explanation_approach", "uses_analogies", "audience_engagement",
                      "sound_words", "self_references", "pacing"},
}


@pytest.fixture(scope="module")
def bundled():
    doc = read_documents(bundled_kb_path())
    problems = validate(doc)
    return doc, problems


def test_bundled_kb_validates(bundled):
    doc, problems = bundled
    assert problems == []
    assert doc.warnings == []


def test_bundled_kb_counts(bundled):
    doc, _ = bundled
    assert len(doc.creators) >= 12
    assert len(doc.techniques) >= 80
    sections = [s for page in doc.techniques for s in page["sections"]]
    assert len(sections) >= 300
    assert {p["topic_category"] for p in doc.techniques} == CATEGORIES
    per_category = Counter(p["topic_category"] for p in doc.techniques)
    assert min(per_category.values()) >= 8, per_category
    for s in sections:
        assert s.get("video") and s.get("start_time") is not None and s.get("end_time") is not None


def test_every_creator_has_a_complete_distinct_profile(bundled):
    doc, _ = bundled
    summaries = set()
    for creator in doc.creators:
        profile = creator["personality_profile"]
        assert isinstance(profile.get("summary"), str) and len(profile["summary"]) > 80
        summaries.add(profile["summary"])
        for section, keys in PROFILE_FIELDS.items():
            missing = keys - set(profile.get(section, {}))
            assert not missing, (creator["slug"], section, missing)
        assert len(profile["vocabulary"]["signature_phrases"]) >= 3
    assert len(summaries) == len(doc.creators)


def test_sections_are_substantial_and_specific(bundled):
    doc, _ = bundled
    bodies = [s["body"] for page in doc.techniques for s in page["sections"]]
    short = [b[:60] for b in bodies if len(b.split()) < 60]
    assert not short, short[:5]
    # Specific writing: most sections carry a number with a unit (Hz, dB, ms, LUFS, bars, ...).
    unit = re.compile(r"\d\s*(?:k?Hz|dB|ms|LUFS|bars?|BPM|%|:1|cents?|semitones?|s\b|seconds)", re.I)
    specific = sum(bool(unit.search(b)) for b in bodies)
    assert specific / len(bodies) >= 0.7


async def test_first_run_loads_bundled_kb(platformdirs_isolated):
    settings = load_settings(env={})
    assert str(platformdirs_isolated) in settings.database_url
    db = await open_database(settings)
    try:
        stats = await gather_stats(db)
        assert stats["creators"] >= 12 and stats["sections"] >= 300
        # Second start: nothing to do.
        assert await ensure_bundled_kb(db) is None
        # A newer bundled KB (a different hash than the one loaded) is loaded again.
        async with db.engine.begin() as conn:
            await set_meta(conn, "bundled_kb_hash", "an-older-version")
        report = await ensure_bundled_kb(db)
        assert report is not None and not report.changed
    finally:
        await db.dispose()
