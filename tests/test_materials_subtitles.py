"""Subtitles to sentences and sections: every spoken word once, in order; hostile files refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from materials_fixtures import (
    AUTO_SENTENCES,
    AUTO_VTT,
    AUTO_WORDS,
    CLEARED_SENTENCES,
    CLEARED_VTT,
    CLEARED_WORDS,
    MANUAL_VTT,
    SRT_CP1252,
    SRT_UTF8,
    ytdlp_material,
)

from tui.materials import Material, Refusal, SourceGroup, content_hash, read


def subtitles(path: Path, **kw) -> Material | Refusal:
    return read(SourceGroup("subtitles", path, (path,)), **kw)


def spoken(material: Material) -> list[str]:
    return [w.rstrip(".,!?").lower() for s in material.sentences for w in s.text.split()]


def test_rolling_auto_captions_give_each_word_once_in_sentences(tmp_path):
    path = tmp_path / "Reverb basics.en.vtt"
    path.write_text(AUTO_VTT, encoding="utf-8")
    m = subtitles(path)
    assert isinstance(m, Material), m
    assert spoken(m) == AUTO_WORDS
    assert [s.text for s in m.sentences] == AUTO_SENTENCES
    assert [s.start for s in m.sentences] == [3.0, 5.16, 8.28]
    text = " ".join(s.body for s in m.sections)
    for junk in ("<", ">", "[Music]", "[Applause]", "align:", "position:", "-->", "Kind:"):
        assert junk not in text
    assert m.title == "Reverb basics"
    assert m.creator_name == tmp_path.name  # the folder's name without --creator
    assert subtitles(path, creator="Mix Desk").creator_name == "Mix Desk"
    assert m.sections[0].locator == "video" and m.sections[0].start_time == 3.0
    assert m.key == f"subtitles:{path}" and m.kind == "subtitles"
    assert m.content_hash == content_hash([path])


def test_a_word_said_again_after_the_lines_were_cleared_is_kept(tmp_path):
    path = tmp_path / "live.en.vtt"
    path.write_text(CLEARED_VTT, encoding="utf-8")
    m = subtitles(path)
    assert spoken(m) == CLEARED_WORDS
    assert [s.text for s in m.sentences] == CLEARED_SENTENCES
    assert [s.start for s in m.sentences] == [2.01, 4.51, 7.01, 9.01]


@pytest.mark.parametrize("index", range(4))
def test_generated_twenty_minute_videos_read_back_word_for_word(tmp_path, index):
    """yt-dlp's rolling format at full length: the words and sentences that were "said"."""
    video = ytdlp_material.build_video(7, index)
    info, vtt = ytdlp_material.write_video(tmp_path, video)
    m = read(SourceGroup("ytdlp", vtt, (vtt, info)))
    assert isinstance(m, Material), m
    assert spoken(m) == video.words
    assert len(m.sentences) == len(video.sentences)
    assert [s.start for s in m.sentences] == [row[0] for row in video.times]
    # sections hold whole sentences, every sentence exactly once, in order
    sentence_texts = [s.text for s in m.sentences]
    assert " ".join(sec.body.replace("\n\n", " ") for sec in m.sections) == " ".join(sentence_texts)
    starts = {s.start for s in m.sentences}
    ends = {s.end for s in m.sentences}
    if video.chapters:
        with_speech = [c for c in video.chapters
                       if any(c["start_time"] <= s.start < c["end_time"] for s in m.sentences)]
        assert [(s.heading, s.start_time, s.end_time) for s in m.sections] == [
            (c["title"], c["start_time"], c["end_time"]) for c in with_speech]
        for sec, c in zip(m.sections, with_speech, strict=True):
            first = sec.body.split(". ")[0]
            owner = next(s for s in m.sentences if s.text.startswith(first))
            assert c["start_time"] <= owner.start < c["end_time"]
    else:
        assert len(m.sections) >= 4
        for sec in m.sections:
            assert sec.start_time in starts and sec.end_time in ends  # never mid-sentence
            assert 60 <= sec.end_time - sec.start_time <= 300, sec.heading
            assert sec.heading and len(sec.heading) <= 80
        for a, b in zip(m.sections, m.sections[1:], strict=False):
            assert a.end_time <= b.start_time


def test_manual_vtt_keeps_its_punctuation_and_drops_notes_styles_and_tags(tmp_path):
    path = tmp_path / "drums.vtt"
    path.write_text(MANUAL_VTT, encoding="utf-8")
    m = subtitles(path)
    assert [s.text for s in m.sentences] == [
        "Welcome back to the studio.",
        "Today we compress the drum bus, then we add a little saturation.",
        "Rock & roll needs glue.",
    ]
    assert [(s.start, s.end) for s in m.sentences] == [(1.0, 4.0), (4.5, 8.0), (9.5, 12.0)]
    assert "yellow" not in m.sections[0].body and "note" not in m.sections[0].body.lower()


def test_srt_utf8_with_bom_and_crlf(tmp_path):
    path = tmp_path / "pads_and_keys.en.srt"
    path.write_bytes(b"\xef\xbb\xbf" + SRT_UTF8.encode("utf-8"))
    m = subtitles(path)
    assert [s.text for s in m.sentences] == ["The café sound is warm.", "We sidechain the pad to the kick."]
    assert m.title == "Pads and keys"
    assert "\r" not in m.sections[0].body


def test_srt_in_cp1252(tmp_path):
    path = tmp_path / "filters.srt"
    path.write_bytes(SRT_CP1252.encode("cp1252"))
    m = subtitles(path)
    assert m.sentences[0].text == "That’s the naïve way – don’t."


def test_escape_sequences_and_bidi_overrides_are_stripped(tmp_path):
    path = tmp_path / "evil.vtt"
    path.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n"
                    "Set the \x1b]52;c;aGk=\x07gain \x1b[31mhere\u202e now.\n", encoding="utf-8")
    m = subtitles(path)
    assert m.sentences[0].text == "Set the gain here now."


HOSTILE = {
    "junk.en.vtt": (lambda p: p.write_bytes(bytes(range(256)) * 20), "not a WebVTT file (no WEBVTT header)"),
    "truncated.vtt": (lambda p: p.write_text(AUTO_VTT[: AUTO_VTT.index("00:00:05.160 --> 00:00:06.430") + 20]),
                      "malformed cue timing"),
    "backwards.vtt": (lambda p: p.write_text("WEBVTT\n\n00:01:00.000 --> 00:01:02.000\nlate\n\n"
                                             "00:00:10.000 --> 00:00:12.000\nearly\n"),
                      "times go backwards"),
    "inverted.vtt": (lambda p: p.write_text("WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nhm\n"),
                     "line 3: cue ends at 00:00:02.000, before it starts (00:00:05.000)"),
    "longline.vtt": (lambda p: p.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n" + "a" * 2_000_000 + "\n"),
                     "line 4 is longer than 65536 characters"),
    "empty.vtt": (lambda p: p.write_text("WEBVTT\n\n"), "no cues"),
    "music.vtt": (lambda p: p.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:09.000\n[Music]\n"),
                  "no speech in the subtitles"),
    "junk.srt": (lambda p: p.write_bytes(b"\x00\x01PK\x03\x04 not subtitles at all\n\x89PNG"), "not an SRT file"),
    "inverted.srt": (lambda p: p.write_text("1\n00:00:05,000 --> 00:00:01,000\nback\n"), "cue 1: cue ends"),
    # binary junk behind a real header and cue: decoded as cp1252/latin-1 it would be "text"
    "binary.vtt": (lambda p: p.write_bytes(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n"
                                           + bytes(b for b in range(256) if b != 10) * 8),
                   "not a WebVTT file (binary data)"),
    "binary_without_nul.vtt": (lambda p: p.write_bytes(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n"
                                                       + bytes(b for b in range(1, 256) if b != 10) * 8),
                               "not a WebVTT file (binary data)"),
    "binary.srt": (lambda p: p.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\nhello\n\x00\x01\x02\x03PK\x03\x04"
                                           b"\n\n2\n00:00:03,000 --> 00:00:04,000\nthere\n"),
                   "not an SRT file (binary data)"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_subtitles_are_refused_with_their_reason(tmp_path, name):
    make, reason = HOSTILE[name]
    path = tmp_path / name
    make(path)
    result = subtitles(path)
    assert isinstance(result, Refusal), result
    assert reason in result.reason
    assert "\n" not in str(result)


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.vtt"
    with open(path, "wb") as f:  # sparse: 17 MiB of nothing on disk
        f.write(b"WEBVTT\n\n")
        f.truncate(17 * 1024 * 1024)
    result = subtitles(path)
    assert isinstance(result, Refusal)
    assert re.fullmatch(r"file is 17 MiB, over the 16 MiB limit for subtitles", result.reason)


def test_a_run_without_pauses_is_cut_at_the_length_cap(tmp_path):
    words = [f"w{i}" for i in range(130)]
    line = words[0] + "".join(f"<00:00:{1 + k * 0.25:06.3f}><c> {w}</c>" for k, w in enumerate(words[1:], 1))
    path = tmp_path / "run.vtt"
    path.write_text(f"WEBVTT\n\n00:00:01.000 --> 00:00:40.000 align:start position:0%\n \n{line}\n")
    m = subtitles(path)
    sizes = [len(s.text.split()) for s in m.sentences]
    assert sizes == [40, 40, 40, 10]
    assert spoken(m) == words


def test_utf16_subtitles_and_a_media_file_beside_them(tmp_path):
    path = tmp_path / "synth pads.en.vtt"
    path.write_bytes(MANUAL_VTT.encode("utf-16"))  # with its BOM, as Windows tools save it
    (tmp_path / "synth pads.mkv").write_bytes(b"\x1aE\xdf\xa3")
    from tui.materials import discover

    (group,) = discover([tmp_path])
    m = read(group)
    assert m.sentences[0].text == "Welcome back to the studio."
    assert m.video.filename == "synth pads.mkv"
    assert m.video.id.startswith("local-") and m.video.id == read(group).video.id


def test_a_truncated_srt_is_refused(tmp_path):
    path = tmp_path / "cut.srt"
    path.write_text(SRT_UTF8.replace("\r\n", "\n")[:70])
    result = subtitles(path)
    assert isinstance(result, Refusal) and result.reason.startswith("not an SRT file")


def as_srt(vtt: str) -> str:
    """Rolling auto-captions as `yt-dlp --convert-subs srt` leaves them: ffmpeg keeps every
    cue and its lines, drops the word timings and tags, writes SubRip times."""
    out = []
    blocks = [b for b in vtt.split("\n\n")[1:] if "-->" in b]
    for number, block in enumerate(blocks, 1):
        timing, *lines = block.split("\n")
        start, end = (t.replace(".", ",") for t in timing.split(" ")[0:3:2])
        text = [re.sub(r"<[^>]*>", "", ln) for ln in lines if ln.strip()]
        out.append(f"{number}\n{start} --> {end}\n" + "\n".join(text) + "\n")
    return "\n".join(out)


def test_auto_captions_converted_to_srt_keep_each_word_once(tmp_path):
    path = tmp_path / "reverb.en.srt"
    path.write_text(as_srt(AUTO_VTT))
    m = subtitles(path)
    assert spoken(m) == AUTO_WORDS
    video = ytdlp_material.build_video(3, 1)
    path.write_text(as_srt(ytdlp_material.auto_caption_vtt(video)))
    m = subtitles(path)
    assert spoken(m) == video.words
    assert max(len(s.text.split()) for s in m.sentences) <= 40


@pytest.mark.parametrize("text", [
    ytdlp_material.auto_caption_vtt(ytdlp_material.build_video(11, 0, words=900, minutes=6)),
    CLEARED_VTT.replace("&amp;", "and"),
], ids=["generated", "cleared"])
def test_the_bulk_reading_of_youtube_captions_agrees_with_the_cue_by_cue_one(text):
    from tui.materials.subtitles import parse_vtt, rolling_words, youtube_words

    fast = youtube_words(text)
    assert fast is not None  # the layout is YouTube's own: the bulk path takes it
    slow = rolling_words(parse_vtt(text))
    assert fast.texts == slow.texts
    assert fast.starts == pytest.approx(slow.starts, abs=1e-9)
    assert fast.ends == pytest.approx(slow.ends, abs=1e-9)
    assert fast.pauses == pytest.approx(slow.pauses, abs=1e-9)


def test_the_bulk_reading_leaves_other_layouts_to_the_cue_by_cue_one():
    from tui.materials.subtitles import youtube_words

    assert youtube_words(AUTO_VTT) is None  # a <c.colorE5E5E5> tag
    assert youtube_words(CLEARED_VTT) is None  # an entity
    backwards = "WEBVTT\n\n00:00:05.000 --> 00:00:06.000\na<00:00:05.500><c> b</c>\n\n00:00:01.000 --> 00:00:02.000\nc\n"
    assert youtube_words(backwards) is None
