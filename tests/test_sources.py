"""Source detail from the knowledge base (both backends) and how sources are written down."""

from __future__ import annotations

import math

import pytest

from tui.db.importer import import_path
from tui.services.sources import (
    format_timestamp,
    reference_text,
    source_detail,
    time_range,
    video_label,
)


async def test_source_detail_full_section(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    detail = await source_detail(db, "parallel-compression", "blend")
    assert detail == {
        "title": "Parallel Compression on Drums",
        "slug": "parallel-compression",
        "creator_name": "Test Ada",
        "creator_slug": "test-ada",
        "topic_category": "Mixing",
        "tags": ["compression", "drums"],
        "summary": "Blend a crushed copy of the drums under the dry signal.",
        "section_anchor": "blend",
        "section_heading": "Blending",
        "section_body": (
            "Bring the crushed return up until the drums feel thicker, "
            "usually 6 to 10 dB under the dry bus."
        ),
        "source_video_id": "ada-v1",
        "video_title": "Compression basics",
        "video_filename": "ada-v1.mp4",
        "video_url": None,
        "video_upload_date": None,
        "start_time": 95.0,
        "end_time": 160.0,
        "locator": {"kind": "video", "video_id": "ada-v1", "start_time": 95.0, "end_time": 160.0},
        "locator_label": "01:35\u201302:40",
        "raw": None,  # not a distilled page: no transcript behind it
    }


async def test_source_detail_url_video(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    detail = await source_detail(db, "chopping-breaks", "slice")
    assert detail is not None
    assert detail["creator_name"] == "Test Bo"
    assert detail["video_url"] == "https://example.com/bo-v1"
    assert detail["video_filename"] is None
    assert (detail["start_time"], detail["end_time"]) == (10.0, 70.0)


async def test_source_detail_unknown_anchor_falls_back_to_first_section(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    for anchor in (None, "", "no-such-anchor"):
        detail = await source_detail(db, "parallel-compression", anchor)
        assert detail is not None
        assert detail["section_anchor"] == "setup"
        assert detail["section_heading"] == "Setting up the send"


async def test_source_detail_unknown_page(db, mini_kb_path):
    await import_path(db, mini_kb_path)
    assert await source_detail(db, "no-such-page", "setup") is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00"),
        (5, "00:05"),
        (95, "01:35"),
        (95.9, "01:35"),
        (3599, "59:59"),
        (3600, "1:00:00"),
        (3725, "1:02:05"),
        (36000, "10:00:00"),
        ("30", "00:30"),
        (None, ""),
        (-1, ""),
        (math.nan, ""),
        (math.inf, ""),
        ("soon", ""),
        (True, ""),
    ],
)
def test_format_timestamp(seconds, text):
    assert format_timestamp(seconds) == text


def test_time_range():
    assert time_range(30, 95) == "00:30\u201301:35"
    assert time_range(3590, 3660) == "59:50\u20131:01:00"
    assert time_range(30, None) == "00:30"
    assert time_range(30, 30) == "00:30"  # an empty or reversed range shows its start
    assert time_range(30, 10) == "00:30"
    assert time_range(None, 95) == ""


def test_reference_text_from_event_source():
    source = {
        "number": 1,
        "title": "Parallel Compression on Drums",
        "creator_name": "Test Ada",
        "video_title": "Compression basics",
        "video_filename": "ada-v1.mp4",
        "start_time": 95,
        "end_time": 160,
    }
    assert reference_text(source) == (
        "Parallel Compression on Drums \u2014 Test Ada \u2014 Compression basics @ 01:35"
    )


def test_reference_text_missing_parts():
    # No video title: the file name stands in; no time: no "@".
    assert reference_text(
        {"title": "T", "creator_name": "C", "video_filename": "f.mp4", "start_time": None}
    ) == "T \u2014 C \u2014 f.mp4"
    assert reference_text({"title": "T", "creator_name": "", "start_time": 61}) == "T \u2014 @ 01:01"
    assert reference_text({"title": "T"}) == "T"
    assert reference_text({}) == ""


def test_video_label_order():
    assert video_label({"video_title": "", "video_filename": None, "video_url": "u"}) == "u"
    assert video_label({"source_video_id": "id"}) == "id"
    assert video_label({}) == ""


def test_reference_text_of_a_pdf_and_a_note_names_the_place():
    pdf = {"title": "Synth Manual", "creator_name": "Polygon Audio", "locator_label": "p. 14\u201315",
           "locator": {"kind": "page", "first_page": 14, "last_page": 15}}
    assert reference_text(pdf) == "Synth Manual \u2014 Polygon Audio \u2014 p. 14\u201315"
    note = {"title": "Reverb notes", "creator_name": "notes",
            "locator_label": "notes/reverb.md \u203a Pre-delay"}
    assert reference_text(note) == "Reverb notes \u2014 notes \u2014 notes/reverb.md \u203a Pre-delay"
