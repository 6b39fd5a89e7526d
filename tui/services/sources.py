"""One source in full, and how a source is written down: times, ranges, references.

The `sources` event carries short source dicts (summary cut to 200 chars, no
section body). `source_detail` fetches the rest from the knowledge base for the
source detail screen. The formatting helpers take either shape: a detail dict
from here, a source dict from the chat event, or a search item.

No Textual here: the screen, the exporter and the CLI share these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tui.db.engine import Database
from tui.db.models import Section, TechniquePage
from tui.services.locators import (  # noqa: F401 - the formatting helpers live there
    EN_DASH,
    format_timestamp,
    locator_label,
    make_locator,
    start_seconds,
    time_range,
)

DASH = "\u2014"  # em dash between reference parts
async def source_detail(db: Database, slug: str, anchor: str | None) -> dict[str, Any] | None:
    """Everything about one section of one technique page, or None when it is gone.

    With `anchor` None or unknown, the page's first section is used (a source may
    cite a whole page); a page without sections still yields its page fields.
    Keys: title, slug, creator_name, creator_slug, topic_category, tags (list),
    summary, section_anchor, section_heading, section_body, source_video_id,
    video_title, video_filename, video_url, video_upload_date (ISO YYYY-MM-DD or None),
    start_time, end_time, locator (`make_locator`), locator_label (`locator_label`), raw:
    for a section of a distilled page, what it was written from
    (`distill_store.raw_for_section`: label "from the transcript, 12:05–15:45", raw_page,
    start_time, end_time, sections [anchor, heading, body, start_time, end_time], text:
    their bodies), else None.
    """
    async with db.session() as session:
        page = (
            await session.execute(
                select(TechniquePage)
                .where(TechniquePage.slug == slug)
                .options(
                    selectinload(TechniquePage.creator),
                    selectinload(TechniquePage.sections).selectinload(Section.video),
                )
            )
        ).scalar_one_or_none()
        if page is None:
            return None
        section = next((s for s in page.sections if anchor and s.anchor == anchor), None)
        if section is None and page.sections:
            section = page.sections[0]
        video = section.video if section is not None else None
        locator = None
        if section is not None:
            locator = make_locator(
                section.locator, video_id=section.video_id, start_time=section.start_time,
                end_time=section.end_time, first_page=section.first_page,
                last_page=section.last_page, line=section.line, path=section.source_path,
                file=page.source_file, heading=section.heading,
            )
        detail = {
            "title": page.title,
            "slug": page.slug,
            "creator_name": page.creator.name if page.creator else "",
            "creator_slug": page.creator.slug if page.creator else "",
            "topic_category": page.topic_category,
            "tags": [str(t) for t in (page.tags or [])],
            "summary": page.summary,
            "section_anchor": section.anchor if section else "",
            "section_heading": section.heading if section else "",
            "section_body": section.body if section else "",
            "source_video_id": video.id if video else (section.video_id if section else None),
            "video_title": video.title if video else "",
            "video_filename": video.filename if video else None,
            "video_url": video.url if video else None,
            "video_upload_date": video.upload_date if video else None,
            "start_time": section.start_time if section else None,
            "end_time": section.end_time if section else None,
            "locator": locator,
        }
        detail["locator_label"] = locator_label(detail)
        origin = page.origin
    # A distilled section: what it was written from, so the detail can show the transcript.
    detail["raw"] = None
    if origin == "distilled" and detail["section_anchor"]:
        from tui.db.distill_store import raw_for_section

        detail["raw"] = await raw_for_section(db, slug, detail["section_anchor"])
    return detail


def video_label(source: Mapping[str, Any]) -> str:
    """The video's title, else its file name, URL or id."""
    for key in ("video_title", "video_filename", "video_url", "source_video_id"):
        value = source.get(key)
        if value:
            return str(value)
    return ""


def reference_text(source: Mapping[str, Any]) -> str:
    """`title — creator — video @ mm:ss`, leaving out the parts that are unknown.

    Accepts a detail dict, a `sources` event dict or a search item.
    """
    parts = [
        str(source.get("title") or ""),
        str(source.get("creator_name") or ""),
    ]
    video = video_label(source)
    stamp = format_timestamp(source.get("start_time"))
    if video and stamp:
        parts.append(f"{video} @ {stamp}")
    elif video:
        parts.append(video)
    elif stamp:
        parts.append(f"@ {stamp}")
    elif source.get("locator_label"):  # a PDF's pages or a note's heading
        parts.append(str(source["locator_label"]))
    return f" {DASH} ".join(p for p in parts if p)
