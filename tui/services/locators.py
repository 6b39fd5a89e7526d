"""Where a source is, and how that is written: `12:05–15:45`, `p. 14–15`, `notes/reverb.md › Pre-delay`.

Pure functions (no database, no Textual), light to import: the chat service,
the search service, the exporter, the CLI and the UI all format locators here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

EN_DASH = "\u2013"  # en dash in a time or page range
HEADING_SEP = "\u203a"  # › between a note's path and its heading


def make_locator(
    kind: str | None,
    *,
    video_id: str | None = None,
    start_time: Any = None,
    end_time: Any = None,
    first_page: int | None = None,
    last_page: int | None = None,
    line: int | None = None,
    path: str | None = None,
    file: str | None = None,
    heading: str | None = None,
) -> dict[str, Any] | None:
    """Where a section is in its source, as one dict with a `kind`:

    - `{"kind": "video", "video_id", "start_time", "end_time"}`
    - `{"kind": "page", "path", "file", "first_page", "last_page"}` (a document's pages, 1-based)
    - `{"kind": "heading", "path", "file", "heading", "line"}` (a note's heading, 1-based line)

    `path` is the file as the user imported it (relative to the folder), `file` its
    absolute path (what "open" opens). A section written without a locator is a video
    section when it has a start time, else None: it says nowhere in particular.
    """
    if kind is None:
        kind = "video" if start_seconds(start_time) is not None else None
    if kind == "video":
        return {"kind": "video", "video_id": video_id, "start_time": start_time, "end_time": end_time}
    if kind == "page":
        return {"kind": "page", "path": path, "file": file, "first_page": first_page,
                "last_page": last_page if last_page is not None else first_page}
    if kind == "heading":
        return {"kind": "heading", "path": path, "file": file, "heading": heading, "line": line}
    return None


def locator_label(source: Mapping[str, Any]) -> str:
    """The locator as the user reads it: `12:05–15:45`, `p. 14–15`, `notes/reverb.md › Pre-delay`.

    Takes a dict with a `locator` (search item, `sources` event, detail, transcript), or an
    older source dict with only start/end times; "" when there is nothing to say.
    """
    loc = source.get("locator")
    if not isinstance(loc, Mapping):
        return time_range(source.get("start_time"), source.get("end_time"))
    kind = loc.get("kind")
    if kind == "video":
        return time_range(loc.get("start_time"), loc.get("end_time"))
    if kind == "page":
        first, last = _page_number(loc.get("first_page")), _page_number(loc.get("last_page"))
        if first is None:
            return ""
        if last is None or last <= first:
            return f"p. {first}"
        return f"p. {first}{EN_DASH}{last}"
    if kind == "heading":
        path = str(loc.get("path") or "")
        heading = str(loc.get("heading") or "")
        if path and heading:
            return f"{path} {HEADING_SEP} {heading}"
        return path or heading
    return ""


def _page_number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value



def start_seconds(value: Any) -> float | None:
    """A usable time in seconds (finite, not negative), or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def format_timestamp(seconds: Any) -> str:
    """`mm:ss` under an hour, `h:mm:ss` from an hour on; "" when unknown or invalid."""
    value = start_seconds(seconds)
    if value is None:
        return ""
    total = int(value)  # a timestamp points at the second it falls in
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def time_range(start: Any, end: Any) -> str:
    """`mm:ss–mm:ss`; just the start when the end is unknown; "" when the start is unknown."""
    first = format_timestamp(start)
    if not first:
        return ""
    last = format_timestamp(end)
    if not last or start_seconds(end) <= start_seconds(start):  # type: ignore[operator]
        return first
    return f"{first}{EN_DASH}{last}"
