"""Markdown notes (an Obsidian vault too): one page per file, a section per `##` heading.

YAML front matter is optional (title, creator, tags, category, video_url,
summary). Text before the first `##` heading is an intro section at line 1; a
heading starting with a timestamp (`## [12:30] Pre-delay`) gives its section
that start time, located in the video when the note names a `video_url`.
Obsidian's `[[target]]`, `[[target|alias]]` and `![[embed]]` become plain text.
A note whose only headings are `#` (two or more) is split at those instead.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tui.materials.model import Material, MaterialSection, MaterialVideo, SourceGroup
from tui.materials.subtitles import seconds
from tui.materials.textio import (
    MAX_LINE_CHARS,
    MAX_TEXT_BYTES,
    Refused,
    anchors,
    clean_text,
    creator_slug,
    cut,
    fallback_title,
    read_bytes,
    sha256_hex,
    summary_from,
    top_terms,
    topic_category,
)
from tui.text import one_line

HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE_RE = re.compile(r"^[ \t]{0,3}(```|~~~)")
TIMESTAMP_RE = re.compile(r"^[\[(]((?:\d{1,2}:)?\d{1,2}:\d{2})[\])][ \t]*[-–—:]?[ \t]*")
WIKILINK_RE = re.compile(r"!?\[\[([^\]\|#]*)(?:#([^\]\|]*))?(?:\|([^\]]*))?\]\]")
COMMENT_RE = re.compile(r"%%.*?%%", re.DOTALL)  # Obsidian comments: not meant to be read
INLINE_TAG_RE = re.compile(r"(?<![\w#&/])#([A-Za-z][\w/-]{1,40})")
MAX_FRONT_MATTER = 64 * 1024


def plain_links(text: str) -> str:
    """Obsidian links and embeds as plain text: the alias, else the target (› its heading)."""

    def one(m: re.Match) -> str:
        target, heading, alias = (g.strip() if g else "" for g in m.groups())
        if alias:
            return alias
        if target and heading:
            return f"{target} › {heading}"
        return target or heading

    if "[[" not in text:
        return text
    return WIKILINK_RE.sub(one, text)


def _front_matter(lines: list[str], warnings: list[str]) -> tuple[dict[str, Any], int]:
    """The front matter's mapping and the index of the first body line."""
    if not lines or lines[0].strip() != "---":
        return {}, 0
    size = 0
    for j in range(1, len(lines)):
        size += len(lines[j]) + 1
        if size > MAX_FRONT_MATTER:
            warnings.append("front matter: over 64 KiB; ignored")
            return {}, 0
        if lines[j].strip() in ("---", "..."):
            try:
                meta = yaml.safe_load("\n".join(lines[1:j]))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 2}" if mark else ""
                warnings.append(f"front matter: not valid YAML{where}; ignored")
                return {}, j + 1
            if meta is None:
                return {}, j + 1
            if not isinstance(meta, dict):
                warnings.append("front matter: not a mapping of keys to values; ignored")
                return {}, j + 1
            return meta, j + 1
    return {}, 0  # no closing line: a thematic break, not front matter


def _meta_text(meta: dict, key: str, warnings: list[str]) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return one_line(value) or None
    warnings.append(f"front matter {key}: expected text, got {type(value).__name__}; ignored")
    return None


def _meta_tags(meta: dict, warnings: list[str]) -> list[str]:
    value = meta.get("tags")
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    if not isinstance(value, list):
        warnings.append(f"front matter tags: expected a list, got {type(value).__name__}; ignored")
        return []
    return [one_line(str(t)).lstrip("#") for t in value if isinstance(t, str | int | float) and one_line(str(t))]


def video_id_for(url: str) -> str:
    """YouTube's id of a watch/youtu.be URL, else one made from the URL."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.endswith("youtube.com"):
        vid = parse_qs(parts.query).get("v", [""])[0]
        if re.fullmatch(r"[A-Za-z0-9_-]{11}", vid):
            return vid
    if host == "youtu.be" and re.fullmatch(r"/[A-Za-z0-9_-]{11}", parts.path):
        return parts.path[1:]
    return "url-" + hashlib.sha1(url.encode()).hexdigest()[:12]


def read_note(group: SourceGroup, *, creator: str | None = None) -> Material:
    path = group.main
    data = read_bytes(path, MAX_TEXT_BYTES, "notes", max_line=MAX_LINE_CHARS)
    text = clean_text(data)  # binary data behind a .md name: "not a text file (binary data)"
    lines = text.split("\n")
    warnings: list[str] = []
    meta, body_start = _front_matter(lines, warnings)

    headings: list[tuple[int, int, str]] = []  # (line index, level, text)
    fence = None
    for i in range(body_start, len(lines)):
        line = lines[i]
        m = FENCE_RE.match(line)
        if m:
            fence = None if fence == m.group(1) else (fence or m.group(1))
            continue
        if fence is None and line.startswith("#"):
            h = HEADING_RE.match(line)
            if h:
                headings.append((i, len(h.group(1)), h.group(2)))
    level = 2 if any(lv == 2 for _, lv, _ in headings) else (1 if sum(lv == 1 for _, lv, _ in headings) >= 2 else None)

    title = _meta_text(meta, "title", warnings)
    title_line = None
    if not title:
        firsts = [(i, t) for i, lv, t in headings if lv == 1]
        if firsts and level != 1:
            title_line, title = firsts[0][0], one_line(plain_links(firsts[0][1]))
    title = title or fallback_title(path)

    video_url = _meta_text(meta, "video_url", warnings)
    if video_url and not re.match(r"^https?://[^\s/]+\S*$", video_url):
        warnings.append("front matter video_url: not an http(s) URL; ignored")
        video_url = None

    def body(a: int, b: int) -> str:
        chunk = "\n".join(lines[k] for k in range(a, b) if k != title_line)
        chunk = plain_links(COMMENT_RE.sub("", chunk)) if ("%%" in chunk or "[[" in chunk) else chunk
        return re.sub(r"\n{3,}", "\n\n", chunk).strip()

    splits = [(i, t) for i, lv, t in headings if lv == level] if level else []
    raw_sections: list[tuple[str, str, int, float | None]] = []  # heading, body, line, start
    first_split = splits[0][0] if splits else len(lines)
    intro = body(body_start, first_split)
    if intro:
        raw_sections.append((title, intro, 1, None))
    for k, (i, heading) in enumerate(splits):
        end = splits[k + 1][0] if k + 1 < len(splits) else len(lines)
        heading = one_line(plain_links(heading))
        start = None
        m = TIMESTAMP_RE.match(heading)
        if m:
            start = seconds(m.group(1))
            heading = heading[m.end() :].strip() or m.group(1)
        text = body(i + 1, end)
        if text or heading:
            raw_sections.append((heading or f"Section {k + 1}", text or heading, i + 1, start))
    if not raw_sections:
        raise Refused("empty note (no text)")

    names = anchors([h for h, _, _, _ in raw_sections])
    timed = [s for s in raw_sections if s[3] is not None]
    sections = []
    for anchor, (heading, text, line, start) in zip(names, raw_sections, strict=False):
        end_time = None
        if start is not None:
            later = [t for _, _, _, t in timed if t is not None and t > start]
            end_time = min(later) if later else None
        sections.append(MaterialSection(
            anchor=anchor, heading=heading, body=text,
            locator="video" if (video_url and start is not None) else "heading",
            start_time=start, end_time=end_time, line=line,
        ))

    tags = _meta_tags(meta, warnings)
    everything = "\n".join(s.body for s in sections)
    seen = {t.lower() for t in tags}
    for t in INLINE_TAG_RE.findall(everything):
        if t.lower() not in seen and len(tags) < 10:
            tags.append(t)
            seen.add(t.lower())
    tags += [t for t in top_terms(everything, 5) if t not in seen][: max(0, 5 - len(tags))]

    name = (_meta_text(meta, "creator", warnings) or _meta_text(meta, "author", warnings)
            or one_line(creator or "") or one_line(path.parent.name) or "Unknown creator")
    summary = _meta_text(meta, "summary", warnings) or _meta_text(meta, "description", warnings)
    summary = cut(summary, 300) if summary else summary_from(sections[0].body.split("\n\n")) or cut(sections[0].body, 300)
    video = MaterialVideo(id=video_id_for(video_url), title=title, url=video_url) if video_url else None
    return Material(
        kind="note", source=path, files=list(group.files), content_hash=sha256_hex([data]),
        key=f"note:{path}", creator_name=name, creator_slug=creator_slug(name), creator_key=None,
        title=title, summary=summary, tags=tags[:15],
        topic_category=topic_category(title, tags, everything, hint=_meta_text(meta, "category", warnings)),
        sections=sections, video=video, warnings=warnings,
    )
