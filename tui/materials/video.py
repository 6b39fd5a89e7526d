"""Video material: a yt-dlp download (info.json + subtitles) or subtitles on their own.

One technique page per video: sections per chapter (or topic-sized, see
`sections.py`), every section located by its start and end second.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from tui.materials.model import Material, MaterialSection, MaterialVideo, SourceGroup, TimedSentence
from tui.materials.sections import Chapter, by_chapters, by_topic
from tui.materials.subtitles import parse_srt, transcript, vtt_transcript
from tui.materials.textio import (
    LANG_SUFFIX,
    MAX_LINE_CHARS,
    MAX_TEXT_BYTES,
    Refused,
    clean_text,
    creator_slug,
    cut,
    fallback_title,
    is_webvtt,
    read_bytes,
    sha256_hex,
    summary_from,
    top_terms,
    topic_category,
    word_counts,
)
from tui.text import clean, one_line

MEDIA_SUFFIXES = (".mp4", ".mkv", ".webm", ".mov", ".m4v", ".m4a", ".mp3", ".opus")
VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NAME_ID_RE = re.compile(r"\[([A-Za-z0-9_-]{11})\]$")
MAX_TAGS = 15


def _calendar_day(value: str) -> bool:
    """True for a real day written YYYYMMDD (yt-dlp's upload_date): 20240230 is not one."""
    if not re.fullmatch(r"\d{8}", value):
        return False
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return True


def subtitle_stem(path: Path) -> str:
    """`Title [ID]` of `Title [ID].en.vtt` (or `lesson` of `lesson.srt`)."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return LANG_SUFFIX.sub("", stem)


def load_subtitles(path: Path) -> tuple[list[TimedSentence], bool, bytes]:
    """Sentences of a .vtt/.srt file, whether they were rolling auto-captions, and the bytes read."""
    data = read_bytes(path, MAX_TEXT_BYTES, "subtitles", max_line=MAX_LINE_CHARS)
    srt = path.suffix.lower() == ".srt" and not is_webvtt(data)
    if not srt and not is_webvtt(data):  # said first: junk with no header is not "binary WebVTT"
        raise Refused("not a WebVTT file (no WEBVTT header)")
    text = clean_text(data, what="an SRT file" if srt else "a WebVTT file")
    head = text.lstrip("\ufeff\n ")[:6]
    if path.suffix.lower() == ".srt" and not head.startswith("WEBVTT"):
        sentences, rolling = transcript(parse_srt(text))
    else:
        sentences, rolling = vtt_transcript(text)
    if not sentences:
        raise Refused("no speech in the subtitles (only markers or empty cues)")
    return sentences, rolling, data


def media_beside(folder: Path, stem: str) -> str | None:
    """The name of a media file `stem.mp4` (.mkv, .webm ...) in `folder`, if there is one."""
    for suffix in MEDIA_SUFFIXES:
        candidate = folder / (stem + suffix)
        if candidate.is_file():
            return candidate.name
    return None


class Fields:
    """Typed reads of an info.json, each wrong type a warning (never an exception)."""

    def __init__(self, info: dict, warnings: list[str]) -> None:
        self.info = info
        self.warnings = warnings

    def _wrong(self, key: str, expected: str, value: Any) -> None:
        self.warnings.append(f"info.json {key}: expected {expected}, got {type(value).__name__}; ignored")

    def text(self, key: str) -> str | None:
        value = self.info.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            return clean(value)
        self._wrong(key, "text", value)
        return None

    def number(self, key: str) -> float | None:
        value = self.info.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
            return float(value)
        self._wrong(key, "a number of seconds", value)
        return None

    def tags(self) -> list[str]:
        value = self.info.get("tags")
        if value is None:
            return []
        if not isinstance(value, list):
            self._wrong("tags", "a list of text", value)
            return []
        out = [one_line(t) for t in value if isinstance(t, str) and one_line(t)]
        if len(out) < len(value):
            self.warnings.append(f"info.json tags: {len(value) - len(out)} entries that are not text ignored")
        return out

    def chapters(self, duration: float | None) -> list[Chapter]:
        value = self.info.get("chapters")
        if value is None:
            return []
        if not isinstance(value, list):
            self._wrong("chapters", "a list", value)
            return []
        found: list[tuple[float, float | None, str]] = []
        for i, ch in enumerate(value):
            if not isinstance(ch, dict):
                self.warnings.append(f"info.json chapters[{i}]: expected an object; ignored")
                continue
            start, end, title = ch.get("start_time"), ch.get("end_time"), ch.get("title")
            if not (isinstance(start, int | float) and not isinstance(start, bool) and math.isfinite(start) and start >= 0):
                self.warnings.append(f"info.json chapters[{i}].start_time: expected a number; chapter ignored")
                continue
            if not (isinstance(end, int | float) and not isinstance(end, bool) and math.isfinite(end)):
                end = None
            title = one_line(title) if isinstance(title, str) else ""
            found.append((float(start), float(end) if end is not None else None, title or f"Part {i + 1}"))
        found.sort(key=lambda c: c[0])
        chapters = []
        for k, (start, end, title) in enumerate(found):
            nxt = found[k + 1][0] if k + 1 < len(found) else None
            if end is None or end <= start:
                end = nxt if nxt is not None else (duration if duration and duration > start else None)
            chapters.append(Chapter(start, end if end is not None else start, title))
        return chapters


def _safe_url(url: str | None) -> str | None:
    if url and re.match(r"^https?://[^\s/]+\S*$", url):
        return url
    return None


def _assemble(
    *, kind: str, group: SourceGroup, data: list[bytes], key: str, creator: str, creator_key: str | None,
    title: str, description: str | None, tags: list[str], sentences: list[TimedSentence],
    chapters: list[Chapter], video: MaterialVideo, warnings: list[str],
) -> Material:
    if chapters and sentences and chapters[-1].end <= chapters[-1].start:
        chapters[-1].end = max(sentences[-1].end, chapters[-1].start)
    sections: list[MaterialSection] = by_chapters(sentences, chapters) if chapters else []
    if not sections:
        sections = by_topic(sentences)
    counts = word_counts(" ".join(s.text for s in sentences))
    summary = summary_from((description or "").split("\n\n")) or cut(
        " ".join(s.text for s in sentences[:3]), 300)
    seen = {t.lower() for t in tags}
    tags = tags[:10] + [t for t in top_terms(counts, 5) if t not in seen]
    return Material(
        kind=kind, source=group.main, files=list(group.files), content_hash=sha256_hex(data),
        key=key, creator_name=creator, creator_slug=creator_slug(creator), creator_key=creator_key,
        title=title, summary=summary, tags=tags[:MAX_TAGS],
        topic_category=topic_category(title, tags, counts), sections=sections, video=video,
        sentences=sentences, warnings=warnings,
    )


def read_ytdlp(group: SourceGroup, *, creator: str | None = None) -> Material:
    """A yt-dlp download: `group.main` the subtitles, `group.files[1]` its info.json."""
    subs, info_path = group.main, group.files[1]
    warnings: list[str] = []
    raw = read_bytes(info_path, MAX_TEXT_BYTES, "an info.json")
    try:
        info = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        reason = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise Refused(f"{info_path.name}: not valid JSON ({reason})") from None
    if not isinstance(info, dict):
        raise Refused(f"{info_path.name}: expected a JSON object, got {type(info).__name__}")
    if info.get("_type") == "playlist":
        raise Refused(f"{info_path.name}: a playlist's info.json, not a video's")
    f = Fields(info, warnings)
    vid = f.text("id")
    if not vid or not VIDEO_ID_RE.match(vid):
        m = NAME_ID_RE.search(subtitle_stem(subs))
        if not m:
            raise Refused(f"{info_path.name}: no usable video id (id: {cut(repr(info.get('id')), 40)})")
        warnings.append(f"info.json id: not a video id; {m.group(1)} taken from the file name")
        vid = m.group(1)
    title = one_line(f.text("title") or "") or fallback_title(subs)
    channel = one_line(f.text("channel") or "") or one_line(f.text("uploader") or "")
    creator_name = channel or one_line(creator or "") or one_line(subs.parent.name) or "Unknown creator"
    duration = f.number("duration")
    description = f.text("description")
    upload_date = f.text("upload_date")
    if upload_date and not _calendar_day(upload_date):
        warnings.append("info.json upload_date: expected YYYYMMDD; ignored")
        upload_date = None
    url = _safe_url(f.text("webpage_url"))
    if url is None and str(info.get("extractor_key", "")).lower().startswith("youtube"):
        url = f"https://www.youtube.com/watch?v={vid}"
    tags = f.tags()
    chapters = f.chapters(duration)
    sentences, _rolling, data = load_subtitles(subs)
    video = MaterialVideo(
        id=vid, title=title, url=url, duration=duration,
        filename=media_beside(subs.parent, info_path.name[: -len(".info.json")]),
        upload_date=upload_date, description=description, channel_id=f.text("channel_id"),
    )
    # files are (subtitles, info.json): the hash is over their bytes in that order
    return _assemble(
        kind="video", group=group, data=[data, raw], key=f"youtube:{vid}", creator=creator_name,
        creator_key=video.channel_id, title=title, description=description, tags=tags,
        sentences=sentences, chapters=chapters, video=video, warnings=warnings,
    )


def read_subtitles(group: SourceGroup, *, creator: str | None = None) -> Material:
    """Subtitles without an info.json: the title from the file name, the creator from
    `creator` or the folder's name."""
    subs = group.main
    sentences, _rolling, data = load_subtitles(subs)
    stem = subtitle_stem(subs)
    m = NAME_ID_RE.search(stem)
    vid = m.group(1) if m else "local-" + hashlib.sha1(f"{subs.parent.name}/{stem}".encode()).hexdigest()[:12]
    title = fallback_title(subs)
    creator_name = one_line(creator or "") or one_line(subs.parent.name) or "Unknown creator"
    video = MaterialVideo(id=vid, title=title, duration=sentences[-1].end,
                          filename=media_beside(subs.parent, stem))
    return _assemble(
        kind="subtitles", group=group, data=[data], key=f"subtitles:{subs}", creator=creator_name,
        creator_key=None, title=title, description=None, tags=[], sentences=sentences, chapters=[],
        video=video, warnings=[],
    )
