"""What a reader makes of a user's file: a `Material`, or a `Refusal` with its reason.

Readers (yt-dlp downloads, subtitles, Markdown notes, PDF manuals) are pure:
bytes in, a Material out, no database and no Textual. The store
(`tui/db/materials_store.py`) turns a Material into creators, videos, pages and
sections in one transaction per file. These dataclasses are the contract
between the two sides.

A section says where it came from with one locator kind:
- ``video``: ``start_time``/``end_time`` seconds into ``Material.video``;
- ``page``: ``first_page``/``last_page`` (1-based) of the document ``Material.source``;
- ``heading``: the heading path in the note file ``Material.source``, at ``line`` (1-based).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

LocatorKind = Literal["video", "page", "heading"]
MaterialKind = Literal["video", "subtitles", "note", "pdf"]


@dataclass(frozen=True)
class TimedSentence:
    """One re-formed sentence of a transcript, with the second it starts (and ends)."""

    start: float
    end: float
    text: str


@dataclass
class MaterialSection:
    anchor: str  # stable within its page: a slug of the heading, de-duplicated with -2, -3 ...
    heading: str
    body: str
    locator: LocatorKind
    start_time: float | None = None  # video
    end_time: float | None = None  # video
    first_page: int | None = None  # page
    last_page: int | None = None  # page
    line: int | None = None  # heading: the line of the heading in the note (1 for an intro)


@dataclass
class MaterialVideo:
    id: str  # the platform's id (YouTube's 11 characters) or, without info.json, one made from the file name
    title: str
    url: str | None = None
    duration: float | None = None
    filename: str | None = None  # a local media file beside the subtitles, when there is one
    upload_date: str | None = None  # YYYYMMDD as yt-dlp writes it
    description: str | None = None
    channel_id: str | None = None


@dataclass
class Material:
    """One imported file (or a yt-dlp pair: info.json + subtitles) as one technique page."""

    kind: MaterialKind
    source: Path  # the main file (the subtitles, the note, the PDF)
    files: list[Path]  # every file it was read from (info.json + .vtt), for the file records
    content_hash: str  # sha256 over those files' bytes, in `files` order
    key: str  # stable identity across re-imports: "youtube:ID", "subtitles:<path>", "note:<path>", "pdf:<path>"
    creator_name: str
    creator_slug: str
    creator_key: str | None  # channel_id when known: two channels of one name stay apart
    title: str
    summary: str
    tags: list[str]
    topic_category: str  # one of the bundled categories, else "General"
    sections: list[MaterialSection]
    video: MaterialVideo | None = None
    sentences: list[TimedSentence] = field(default_factory=list)  # transcripts only (for distill)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Refusal:
    """A file that is not imported, and the one-line reason (`path: reason` when printed)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


SourceKind = Literal["ytdlp", "subtitles", "note", "pdf", "kb"]


@dataclass(frozen=True)
class SourceGroup:
    """Files found by discovery that make one Material (or, kind "kb", one chrysopedia.kb/1 document).

    Discovery looks at names and the first bytes only, so the store can compare
    `files` with its file records (path, size, mtime, then content hash) and skip
    an unchanged group without parsing it.
    """

    kind: SourceKind
    main: Path  # the file a locator names (subtitles, note, PDF, or the KB document)
    files: tuple[Path, ...]  # main first, then companions (the info.json)
