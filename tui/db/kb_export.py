"""`chrysopedia kb export PATH`: the whole knowledge base as one chrysopedia.kb/1 document.

Sections carry their locator (see docs/KB_FORMAT.md), and a distilled page its
`distilled_from` (the transcript page it replaces in search), so importing the
export into an empty database gives the same pages, sections, counts and search
results. The file is written beside its destination and renamed over it, so a
failure never leaves half a document. No Textual here.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tui.db.engine import Database
from tui.db.kb_format import FORMAT
from tui.db.models import Creator, DistilledLink, TechniquePage, Video


def _section(sec, source_file: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"anchor": sec.anchor, "heading": sec.heading, "body": sec.body}
    if sec.video_id:
        out["video"] = sec.video_id
    if sec.start_time is not None:
        out["start_time"] = sec.start_time
    if sec.end_time is not None:
        out["end_time"] = sec.end_time
    if sec.locator:
        loc: dict[str, Any] = {"kind": sec.locator}
        file = source_file if sec.locator in ("page", "heading") else None
        for key, value in (("path", sec.source_path), ("file", file), ("first_page", sec.first_page),
                           ("last_page", sec.last_page), ("line", sec.line)):
            if value is not None:
                loc[key] = value
        out["locator"] = loc
    return out


async def export_document(db: Database) -> dict[str, Any]:
    async with db.session() as session:
        creators = list(await session.scalars(select(Creator).order_by(Creator.slug)))
        slug_of = {c.id: c.slug for c in creators}
        videos = list(await session.scalars(select(Video).order_by(Video.id)))
        pages = list(await session.scalars(
            select(TechniquePage).order_by(TechniquePage.slug)
            .options(selectinload(TechniquePage.sections))
        ))
        links = {link.page_id: link for link in await session.scalars(select(DistilledLink))}
    page_slug = {p.id: p.slug for p in pages}
    doc: dict[str, Any] = {"format": FORMAT, "creators": [], "videos": [], "techniques": []}
    for c in creators:
        rec: dict[str, Any] = {"slug": c.slug, "name": c.name}
        for key in ("bio", "genres", "personality_profile"):
            if getattr(c, key) is not None:
                rec[key] = getattr(c, key)
        doc["creators"].append(rec)
    for v in videos:
        rec = {"id": v.id, "creator": slug_of[v.creator_id], "title": v.title}
        for key in ("filename", "url", "duration", "upload_date"):
            if getattr(v, key) is not None:
                rec[key] = getattr(v, key)
        doc["videos"].append(rec)
    for p in pages:
        rec = {
            "slug": p.slug, "title": p.title, "creator": slug_of[p.creator_id],
            "topic_category": p.topic_category, "summary": p.summary,
        }
        if p.tags is not None:
            rec["tags"] = p.tags
        link = links.get(p.id)
        if link is not None and link.raw_page_id in page_slug:
            # Both pages go out: the distilled one marked, so an import puts it back in
            # search in the transcript page's place, as here.
            rec["distilled_from"] = {
                "page": page_slug[link.raw_page_id], "transcript_hash": link.transcript_hash,
                "model": link.model, "prompt_version": link.prompt_version,
            }
        rec["sections"] = [_section(s, p.source_file) for s in p.sections]
        doc["techniques"].append(rec)
    return doc


async def export_kb(db: Database, path: str | Path) -> dict[str, int]:
    """Write the document to `path` (atomically); the counts written."""
    doc = await export_document(db)
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".kb-export-", suffix=".json", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
            f.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {
        "creators": len(doc["creators"]), "videos": len(doc["videos"]),
        "techniques": len(doc["techniques"]),
        "sections": sum(len(t["sections"]) for t in doc["techniques"]),
    }
