"""Reading and validating `chrysopedia.kb/1` documents (see docs/KB_FORMAT.md).

Validation collects every problem as `PATH: message` before anything is
written. Text fields may hold newlines and tabs but no other control
characters (nor bidi overrides): such a document is refused, so nothing from a
knowledge base can reach the terminal as a control code.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from tui.text import CONTROL_CHARS

FORMAT = "chrysopedia.kb/1"
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# C0/C1 controls except \t and \n, DEL, and the bidi embedding/override/isolate marks.
_FORBIDDEN_RE = CONTROL_CHARS
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32


class KBFormatError(Exception):
    """A document (or folder) that cannot be imported; `problems` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class KBDocument:
    creators: list[dict[str, Any]] = field(default_factory=list)
    videos: list[dict[str, Any]] = field(default_factory=list)
    techniques: list[dict[str, Any]] = field(default_factory=list)
    # Where each record came from, for error paths in merged folders: (file, index).
    origins: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth, iteratively (a hostile file must not blow the stack)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, d = stack.pop()
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    return [path]


def read_documents(path: str | Path) -> KBDocument:
    """Read a file or a folder of files (merged in file-name order). Raises KBFormatError."""
    root = Path(path)
    if not root.exists():
        raise KBFormatError([f"{root}: no such file or folder"])
    files = _files(root)
    if not files:
        raise KBFormatError([f"{root}: the folder holds no .json file"])
    merged = KBDocument()
    problems: list[str] = []
    multi = root.is_dir()
    for file in files:
        label = file.name if multi else ""
        prefix = f"{label}: " if label else ""
        try:
            size = file.stat().st_size
        except OSError as exc:
            problems.append(f"{file}: cannot read: {exc.strerror}")
            continue
        if size > MAX_FILE_BYTES:
            problems.append(
                f"{prefix or str(file) + ': '}file is {size / 1e6:.0f} MB, over the "
                f"{MAX_FILE_BYTES // (1024 * 1024)} MiB limit for one document; split it into a folder"
            )
            continue
        try:
            doc = json.loads(file.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as exc:
            problems.append(f"{prefix}not UTF-8 text ({exc.reason} at byte {exc.start})")
            continue
        except json.JSONDecodeError as exc:
            problems.append(f"{prefix}not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
            continue
        except RecursionError:
            problems.append(f"{prefix}nested too deeply (more than {MAX_DEPTH} levels)")
            continue
        if _depth(doc, MAX_DEPTH) > MAX_DEPTH:
            problems.append(f"{prefix}nested too deeply (more than {MAX_DEPTH} levels)")
            continue
        if not isinstance(doc, dict):
            problems.append(f"{prefix}(document): expected a JSON object")
            continue
        if doc.get("format") != FORMAT:
            problems.append(f"{prefix}format: expected {FORMAT!r}, got {doc.get('format')!r}")
            continue
        for key in doc:
            if key not in ("format", "creators", "videos", "techniques"):
                merged.warnings.append(f"{prefix}{key}: unknown key ignored")
        for kind in ("creators", "videos", "techniques"):
            items = doc.get(kind, [])
            if not isinstance(items, list):
                problems.append(f"{prefix}{kind}: expected a list")
                continue
            target = getattr(merged, kind)
            for i, item in enumerate(items):
                merged.origins[(kind, len(target))] = (label, i)
                target.append(item)
    if problems:
        raise KBFormatError(problems)
    return merged


def _where(doc: KBDocument, kind: str, index: int) -> str:
    label, i = doc.origins.get((kind, index), ("", index))
    return f"{label + ': ' if label else ''}{kind}[{i}]"


def _iso_day(value: str) -> bool:
    """True for a real calendar day written YYYY-MM-DD (2024-02-30 is not one)."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def text(self, rec: dict, key: str, where: str, *, required: bool, max_len: int | None = None,
             min_len: int = 1) -> str | None:
        value = rec.get(key)
        if value is None:
            if required:
                self.problems.append(f"{where}.{key}: required")
            return None
        if not isinstance(value, str):
            self.problems.append(f"{where}.{key}: expected a string, got {type(value).__name__}")
            return None
        value = value.replace("\r\n", "\n")
        bad = _FORBIDDEN_RE.search(value)
        if bad:
            self.problems.append(
                f"{where}.{key}: control character U+{ord(bad.group()):04X} at offset {bad.start()} "
                "(only newline and tab are allowed)"
            )
            return None
        if required and len(value.strip()) < min_len:
            self.problems.append(f"{where}.{key}: must not be empty")
        if max_len is not None and len(value) > max_len:
            self.problems.append(f"{where}.{key}: longer than {max_len} characters")
        rec[key] = value
        return value

    def slug(self, rec: dict, key: str, where: str) -> str | None:
        value = self.text(rec, key, where, required=True)
        if value is not None and not SLUG_RE.match(value):
            self.problems.append(f"{where}.{key}: {value!r} is not a valid slug (^[a-z0-9][a-z0-9-]{{0,63}}$)")
            return None
        return value

    def number(self, rec: dict, key: str, where: str, *, minimum: float = 0.0) -> float | None:
        value = rec.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.problems.append(f"{where}.{key}: expected a number, got {value!r}")
            return None
        if value < minimum:
            self.problems.append(f"{where}.{key}: must be ≥ {minimum:g}, got {value:g}")
            return None
        return float(value)

    def string_list(self, rec: dict, key: str, where: str) -> None:
        value = rec.get(key)
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"{where}.{key}: expected a list of strings")
            return
        for i, item in enumerate(value):
            if _FORBIDDEN_RE.search(item):
                self.problems.append(f"{where}.{key}[{i}]: control character not allowed")


# PersonalityProfile: section -> field -> expected type ("str", "list", "bool").
PROFILE_SHAPE: dict[str, dict[str, str]] = {
    "tone": {"teaching_style": "str", "energy": "str", "formality": "str", "descriptors": "list"},
    "vocabulary": {
        "signature_phrases": "list", "distinctive_terms": "list", "sound_descriptions": "list",
    },
    "style_markers": {
        "explanation_approach": "str", "uses_analogies": "bool", "audience_engagement": "str",
        "sound_words": "list", "self_references": "str", "pacing": "str",
    },
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str) and not _FORBIDDEN_RE.search(value)
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, list) and all(
        isinstance(v, str) and not _FORBIDDEN_RE.search(v) for v in value
    )


def clean_profile(profile: Any, where: str, warnings: list[str]) -> dict | None:
    """Drop (and warn about) profile fields of the wrong type; keep unknown keys."""
    if profile is None:
        return None
    if not isinstance(profile, dict):
        warnings.append(f"{where}: expected an object or null, ignored")
        return None
    cleaned = dict(profile)
    if "summary" in cleaned and not _type_ok(cleaned["summary"], "str"):
        warnings.append(f"{where}.summary: expected a string, ignored")
        del cleaned["summary"]
    for section, shape in PROFILE_SHAPE.items():
        if section not in cleaned:
            continue
        sub = cleaned[section]
        if not isinstance(sub, dict):
            warnings.append(f"{where}.{section}: expected an object, ignored")
            del cleaned[section]
            continue
        sub = dict(sub)
        for key, kind in shape.items():
            if key in sub and not _type_ok(sub[key], kind):
                expected = {"str": "a string", "list": "a list of strings", "bool": "true or false"}[kind]
                warnings.append(f"{where}.{section}.{key}: expected {expected}, ignored")
                del sub[key]
        cleaned[section] = sub
    return cleaned


def validate(doc: KBDocument, *, known_creators: set[str] = frozenset(),
             known_videos: dict[str, str] | None = None) -> list[str]:
    """Check every rule of the format; returns the problems (empty when valid).

    `known_creators` / `known_videos` are records already in the database, which
    a document may refer to without repeating them. Also normalises text in
    place (CRLF to LF) and cleans personality profiles, adding warnings.
    """
    c = _Checker()
    known_videos = known_videos or {}
    creators: set[str] = set(known_creators)
    seen_slugs: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for i, rec in enumerate(doc.creators):
        where = _where(doc, "creators", i)
        if not isinstance(rec, dict):
            c.problems.append(f"{where}: expected an object")
            continue
        slug = c.slug(rec, "slug", where)
        name = c.text(rec, "name", where, required=True, max_len=120)
        c.text(rec, "bio", where, required=False)
        c.string_list(rec, "genres", where)
        if "personality_profile" in rec:
            rec["personality_profile"] = clean_profile(
                rec["personality_profile"], f"{where}.personality_profile", c.warnings
            )
        if slug:
            if slug in seen_slugs:
                c.problems.append(f"{where}.slug: duplicate {slug!r} (also {seen_slugs[slug]})")
            seen_slugs[slug] = where
            creators.add(slug)
        if name:
            if name in seen_names:
                c.problems.append(f"{where}.name: duplicate {name!r} (also {seen_names[name]})")
            seen_names[name] = where

    videos: dict[str, str] = dict(known_videos)
    seen_videos: dict[str, str] = {}
    for i, rec in enumerate(doc.videos):
        where = _where(doc, "videos", i)
        if not isinstance(rec, dict):
            c.problems.append(f"{where}: expected an object")
            continue
        vid = c.text(rec, "id", where, required=True, max_len=200)
        creator = c.text(rec, "creator", where, required=True)
        c.text(rec, "title", where, required=True)
        c.text(rec, "filename", where, required=False)
        url = c.text(rec, "url", where, required=False)
        if url and not re.match(r"^https?://\S+$", url):
            c.problems.append(f"{where}.url: only http(s):// URLs are allowed, got {url[:80]!r}")
        c.number(rec, "duration", where)
        day = c.text(rec, "upload_date", where, required=False)
        if day is not None and not _iso_day(day):
            c.problems.append(f"{where}.upload_date: expected a day as YYYY-MM-DD, got {day[:40]!r}")
        if creator and creator not in creators:
            c.problems.append(f"{where}.creator: unknown creator {creator!r}")
        if vid:
            if vid in seen_videos:
                c.problems.append(f"{where}.id: duplicate {vid!r} (also {seen_videos[vid]})")
            seen_videos[vid] = where
            videos[vid] = creator or ""

    seen_pages: dict[str, str] = {}
    for i, rec in enumerate(doc.techniques):
        where = _where(doc, "techniques", i)
        if not isinstance(rec, dict):
            c.problems.append(f"{where}: expected an object")
            continue
        slug = c.slug(rec, "slug", where)
        c.text(rec, "title", where, required=True)
        creator = c.text(rec, "creator", where, required=True)
        c.text(rec, "topic_category", where, required=True, max_len=64)
        c.string_list(rec, "tags", where)
        c.text(rec, "summary", where, required=True)
        if creator and creator not in creators:
            c.problems.append(f"{where}.creator: unknown creator {creator!r}")
        if slug:
            if slug in seen_pages:
                c.problems.append(f"{where}.slug: duplicate {slug!r} (also {seen_pages[slug]})")
            seen_pages[slug] = where
        sections = rec.get("sections")
        if not isinstance(sections, list) or not sections:
            c.problems.append(f"{where}.sections: required, at least one section")
            continue
        anchors: set[str] = set()
        for j, sec in enumerate(sections):
            swhere = f"{where}.sections[{j}]"
            if not isinstance(sec, dict):
                c.problems.append(f"{swhere}: expected an object")
                continue
            anchor = c.slug(sec, "anchor", swhere)
            c.text(sec, "heading", swhere, required=True)
            c.text(sec, "body", swhere, required=True)
            video = c.text(sec, "video", swhere, required=False)
            start = c.number(sec, "start_time", swhere)
            end = c.number(sec, "end_time", swhere)
            if anchor:
                if anchor in anchors:
                    c.problems.append(f"{swhere}.anchor: duplicate {anchor!r} within the page")
                anchors.add(anchor)
            if video is not None and video not in videos:
                c.problems.append(f"{swhere}.video: unknown video {video!r}")
            if end is not None and start is not None and end <= start:
                c.problems.append(f"{swhere}.end_time: must be greater than start_time ({start:g})")
            if end is not None and start is None:
                c.problems.append(f"{swhere}.end_time: given without start_time")
            if "locator" in sec:
                _check_locator(c, sec["locator"], f"{swhere}.locator")
    _check_distilled(c, doc, seen_pages)
    doc.warnings.extend(c.warnings)
    return c.problems


def _check_distilled(c: _Checker, doc: KBDocument, pages: dict[str, str]) -> None:
    """A technique's optional `distilled_from`: the transcript page of the same document
    it was distilled from (and replaces in search), one distilled page per transcript."""
    raws: dict[str, str] = {}
    marked = {rec.get("slug") for rec in doc.techniques
              if isinstance(rec, dict) and rec.get("distilled_from") is not None}
    for i, rec in enumerate(doc.techniques):
        if not isinstance(rec, dict) or rec.get("distilled_from") is None:
            continue
        where = f"{_where(doc, 'techniques', i)}.distilled_from"
        link = rec["distilled_from"]
        if not isinstance(link, dict):
            c.problems.append(f"{where}: expected an object")
            continue
        raw = c.text(link, "page", where, required=True, max_len=200)
        for key, longest in (("transcript_hash", 64), ("model", 200), ("prompt_version", 32)):
            c.text(link, key, where, required=False, max_len=longest)
        if raw is None:
            continue
        if raw not in pages:
            c.problems.append(f"{where}.page: unknown technique {raw!r} (it must be in the document)")
        elif raw == rec.get("slug") or raw in marked:
            c.problems.append(f"{where}.page: {raw!r} is a distilled page itself")
        elif raw in raws:
            c.problems.append(f"{where}.page: {raw!r} is already distilled by {raws[raw]}")
        else:
            raws[raw] = where


LOCATOR_KINDS = ("video", "page", "heading")


def _check_locator(c: _Checker, loc: Any, where: str) -> None:
    """The optional section locator: where in its source (video, document page, note) it is."""
    if not isinstance(loc, dict):
        c.problems.append(f"{where}: expected an object")
        return
    kind = loc.get("kind")
    if kind not in LOCATOR_KINDS:
        c.problems.append(f"{where}.kind: expected one of {', '.join(LOCATOR_KINDS)}, got {kind!r}")
        return
    c.text(loc, "path", where, required=False, max_len=1000)
    c.text(loc, "file", where, required=False, max_len=4096)
    ints = {}
    for key in ("first_page", "last_page", "line"):
        value = loc.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            c.problems.append(f"{where}.{key}: expected a whole number ≥ 1, got {value!r}")
        else:
            ints[key] = value
    if kind == "page" and "first_page" not in ints and "first_page" not in loc:
        c.problems.append(f"{where}.first_page: required for a page locator")
    if "first_page" in ints and "last_page" in ints and ints["last_page"] < ints["first_page"]:
        c.problems.append(f"{where}.last_page: must be ≥ first_page ({ints['first_page']})")


def validate_document(data: Any) -> list[str]:
    """Validate one parsed document (a dict) on its own; returns the problems."""
    if not isinstance(data, dict):
        return ["(document): expected a JSON object"]
    if data.get("format") != FORMAT:
        return [f"format: expected {FORMAT!r}, got {data.get('format')!r}"]
    doc = KBDocument()
    for kind in ("creators", "videos", "techniques"):
        items = data.get(kind, [])
        if not isinstance(items, list):
            return [f"{kind}: expected a list"]
        getattr(doc, kind).extend(items)
    return validate(doc)
