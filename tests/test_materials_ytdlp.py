"""yt-dlp downloads: info.json metadata, chapters, wrong types, the subtitle track chosen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from materials_fixtures import AUTO_VTT, MANUAL_VTT, SRT_UTF8, info, write_download, ytdlp_material

from tui.db.kb_format import SLUG_RE
from tui.materials import Material, Refusal, content_hash, discover, read
from tui.materials.textio import CATEGORY_KEYWORDS

ROOT = Path(__file__).resolve().parent.parent


def only(folder: Path) -> Material | Refusal:
    items = list(discover([folder]))
    assert len(items) == 1, items
    return items[0] if isinstance(items[0], Refusal) else read(items[0])


def test_info_json_metadata(tmp_path):
    subs, info_path = write_download(tmp_path, "Reverb Tricks for Vocals [dQw4w9WgXcQ]")
    (tmp_path / "Reverb Tricks for Vocals [dQw4w9WgXcQ].webp").write_bytes(b"RIFF....WEBP")
    (tmp_path / "Reverb Tricks for Vocals [dQw4w9WgXcQ].mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    m = only(tmp_path)
    assert isinstance(m, Material), m
    assert (m.kind, m.key, m.title) == ("video", "youtube:dQw4w9WgXcQ", "Reverb Tricks for Vocals")
    assert (m.creator_name, m.creator_slug, m.creator_key) == ("Mix Desk Pro", "mix-desk-pro", "UCabcdefghijklmnopqrstuv")
    assert SLUG_RE.match(m.creator_slug)
    assert m.source == subs and m.files == [subs, info_path]
    assert m.content_hash == content_hash([subs, info_path])
    v = m.video
    assert (v.id, v.url, v.duration, v.upload_date) == (
        "dQw4w9WgXcQ", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", 20.0, "20240102")
    assert v.filename == "Reverb Tricks for Vocals [dQw4w9WgXcQ].mp4"
    assert v.channel_id == "UCabcdefghijklmnopqrstuv"
    assert m.summary == "How I set reverb on vocals: pre-delay, decay and EQ on the return."
    assert m.tags[:3] == ["reverb", "vocals", "mixing"]
    assert m.topic_category == "Mixing"
    assert m.warnings == []


def test_chapters_make_the_sections(tmp_path):
    chapters = [{"start_time": 0.0, "end_time": 8.0, "title": "Intro"},
                {"start_time": 8.0, "end_time": 20.0, "title": "Pre-delay"}]
    write_download(tmp_path, "Reverb [dQw4w9WgXcQ]", chapters=chapters)
    m = only(tmp_path)
    assert [(s.anchor, s.heading, s.start_time, s.end_time) for s in m.sections] == [
        ("intro", "Intro", 0.0, 8.0), ("pre-delay", "Pre-delay", 8.0, 20.0)]
    assert m.sections[0].body == "Hey what's up guys. Today we're going to talk about reverb."
    assert m.sections[1].body.startswith("So the first thing I do")


def test_wrong_types_are_warnings_not_crashes(tmp_path):
    write_download(tmp_path, "Odd [dQw4w9WgXcQ]", title=12345, duration="twenty", tags="reverb, vocals",
                   chapters="none", upload_date=20240102, channel=["x"], uploader=None,
                   webpage_url="javascript:alert(1)", description={"a": 1})
    m = only(tmp_path)
    assert isinstance(m, Material), m
    assert m.title == "Odd"  # from the file name
    assert m.creator_name == tmp_path.name
    assert m.video.duration is None and m.video.upload_date is None
    assert m.video.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"  # not the javascript: one
    joined = "\n".join(m.warnings)
    for key in ("title", "duration", "tags", "chapters", "upload_date", "channel", "description"):
        assert f"info.json {key}:" in joined
    assert all("\n" not in w for w in m.warnings)


def test_broken_chapter_entries_are_skipped(tmp_path):
    chapters = [{"start_time": "0", "title": "Bad"}, {"start_time": 8.0, "title": "Pre-delay"}, 7]
    write_download(tmp_path, "Reverb [dQw4w9WgXcQ]", chapters=chapters)
    m = only(tmp_path)
    assert [(s.heading, s.start_time, s.end_time) for s in m.sections] == [("Pre-delay", 8.0, 20.0)]
    assert sum("chapters[" in w for w in m.warnings) == 2


def test_bad_info_json_is_refused(tmp_path):
    subs, info_path = write_download(tmp_path / "a", "Broken [dQw4w9WgXcQ]")
    info_path.write_text('{"id": "dQw4w9WgXcQ", "title": ')
    assert "not valid JSON" in only(tmp_path / "a").reason
    subs, info_path = write_download(tmp_path / "b", "List [dQw4w9WgXcQ]")
    info_path.write_text("[1, 2]")
    assert "expected a JSON object, got list" in only(tmp_path / "b").reason
    write_download(tmp_path / "c", "no id here", id=None)
    assert "no usable video id" in only(tmp_path / "c").reason
    m = only(write_download(tmp_path / "d", "Named [dQw4w9WgXcQ]", id=["x"])[0].parent)
    assert m.video.id == "dQw4w9WgXcQ" and any("id" in w for w in m.warnings)


def test_info_json_alone_is_refused_and_a_playlist_is_skipped(tmp_path):
    (tmp_path / "Lonely [dQw4w9WgXcQ].info.json").write_text(json.dumps(info()))
    (tmp_path / "My playlist [PL123].info.json").write_text(json.dumps(
        {"id": "PL123", "title": "My playlist", "_type": "playlist", "entries": []}))
    items = list(discover([tmp_path]))
    assert [(type(i).__name__, i.path.name) for i in items] == [("Refusal", "Lonely [dQw4w9WgXcQ].info.json")]
    assert "without subtitles beside it" in items[0].reason


def test_english_and_manual_subtitles_are_preferred(tmp_path):
    stem = "Drums [dQw4w9WgXcQ]"
    write_download(tmp_path, stem, vtt=AUTO_VTT, lang="en")  # auto-captions
    (tmp_path / f"{stem}.de.vtt").write_text(MANUAL_VTT)  # manual, but German
    (tmp_path / f"{stem}.en-GB.srt").write_text(SRT_UTF8)  # manual English
    groups = list(discover([tmp_path]))
    assert len(groups) == 1
    assert groups[0].kind == "ytdlp" and groups[0].main.name == f"{stem}.en-GB.srt"
    (tmp_path / f"{stem}.en-GB.srt").unlink()
    groups = list(discover([tmp_path]))
    assert groups[0].main.name == f"{stem}.en.vtt"


def test_generated_videos_get_their_topic_category(tmp_path):
    ytdlp_material.generate(tmp_path, 6, seed=1, words=600, minutes=4)
    for group in discover([tmp_path]):
        m = read(group)
        assert isinstance(m, Material), m
        title_topic = next(t for t, bank in ytdlp_material.TOPICS.items() if m.title.split(" (Part")[0] in bank["titles"])
        assert m.topic_category == title_topic, m.title


def test_categories_are_the_bundled_ones():
    bundled = set()
    for file in (ROOT / "tui" / "data" / "kb").glob("*.json"):
        for page in json.loads(file.read_text())["techniques"]:
            bundled.add(page["topic_category"])
    assert set(CATEGORY_KEYWORDS) == bundled


def test_channel_names_without_ascii_get_a_valid_slug(tmp_path):
    write_download(tmp_path, "Synth [dQw4w9WgXcQ]", channel="シンセ研究所", uploader="シンセ研究所")
    m = only(tmp_path)
    assert m.creator_name == "シンセ研究所" and SLUG_RE.match(m.creator_slug)


def test_escape_sequences_in_metadata_are_stripped(tmp_path):
    write_download(tmp_path, "Evil [dQw4w9WgXcQ]", title="\x1b]0;owned\x07Mix \x1b[2Jtips\u202e",
                   channel="Bad\x1b[31m Channel")
    m = only(tmp_path)
    assert m.title == "Mix tips" and m.creator_name == "Bad Channel"


def test_the_generator_is_deterministic(tmp_path):
    a = ytdlp_material.generate(tmp_path / "a", 2, seed=5, words=300, minutes=2)
    b = ytdlp_material.generate(tmp_path / "b", 2, seed=5, words=300, minutes=2)
    assert [p.name for p in a] == [p.name for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))
    vtt = a[1].read_text()
    assert vtt.startswith("WEBVTT\nKind: captions\nLanguage: en\n\n")
    assert "align:start position:0%" in vtt and "<c> " in vtt and "[Music]" in vtt
    assert a[0].name.endswith(".info.json") and a[1].name == a[0].name.replace(".info.json", ".en.vtt")


def test_a_title_empty_after_cleaning_falls_back_to_the_file_name(tmp_path):
    write_download(tmp_path, "Sidechain_basics [dQw4w9WgXcQ]", title="\x1b[2J\u202e\x07 ")
    m = only(tmp_path)
    assert m.title == "Sidechain basics" and m.video.title == "Sidechain basics"


@pytest.mark.parametrize("day", ["20240230", "20241301", "2024-03-15", "0"])
def test_an_upload_date_that_is_no_day_is_a_warning(tmp_path, day):
    write_download(tmp_path, "Reverb [dQw4w9WgXcQ]", upload_date=day)
    m = only(tmp_path)
    assert isinstance(m, Material), m
    assert m.video.upload_date is None
    assert m.warnings == ["info.json upload_date: expected YYYYMMDD; ignored"]
