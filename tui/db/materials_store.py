"""A user's material in the knowledge base: one `Material` stored in one transaction.

`store_material(db, material, stats, display_path=...)` writes the creator (by
slug; kept apart by `creator_key`, the channel id, when two channels share a
name), the video, one technique page (its slug stable across re-imports: found
again by the material key) and its sections (by anchor, so a section keeps its
id while its anchor stays), the file records, and the page's search-index
entries, all in ONE short transaction. Searches keep answering meanwhile (SQLite
WAL readers; on PostgreSQL nothing but the page's own rows is locked).

The file records (`kb_files`) make re-import exact: `unchanged(...)` tells, from
path + size + mtime alone, that a group of files need not be read again;
`same_hash(...)` catches a file touched but not changed. `remove_*` take pages
out with their index entries, their orphaned videos and creators, and their file
records. No Textual here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select, update

from tui.db import search_index, vectors
from tui.db.engine import Database
from tui.db.importer import _apply
from tui.db.models import Creator, DistilledLink, FileRecord, Section, TechniquePage, Video, utcnow
from tui.materials.model import Material

logger = logging.getLogger(__name__)

SLUG_MAX = 64


def slugify(text: str, limit: int = 40) -> str:
    """Lower-case ASCII letters, digits and dashes, at most `limit` characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].strip("-")


def page_slug_for(material: Material) -> str:
    """The slug a new page gets: its title made readable plus a digest of its material key,
    so two pages of one title never collide and the same file gets the same slug again."""
    digest = hashlib.sha256(material.key.encode()).hexdigest()[:8]
    stem = slugify(material.title) or slugify(material.source.stem) or "page"
    return f"{stem}-{digest}"


@dataclass(frozen=True)
class FileStat:
    path: str  # absolute
    size: int
    mtime: float


def stat_files(files: Iterable[Path]) -> list[FileStat]:
    out = []
    for f in files:
        st = os.stat(f)
        out.append(FileStat(str(Path(os.path.abspath(f))), st.st_size, st.st_mtime))
    return out


@dataclass
class Stored:
    """What storing one material did."""

    outcome: str  # "added" | "updated" | "unchanged"
    page_slug: str
    sections: int
    creator_slug: str = ""


async def records_for(db: Database, paths: Sequence[str]) -> dict[str, FileRecord]:
    out: dict[str, FileRecord] = {}
    async with db.session() as session:
        for start in range(0, len(paths), 400):
            chunk = list(paths[start : start + 400])
            rows = await session.scalars(select(FileRecord).where(FileRecord.path.in_(chunk)))
            out.update({r.path: r for r in rows})
    return out


def unchanged(stats: Sequence[FileStat], records: dict[str, FileRecord]) -> bool:
    """Every file is recorded with this size and mtime, all under one material."""
    keys = set()
    for st in stats:
        rec = records.get(st.path)
        if rec is None or rec.size != st.size or rec.mtime != st.mtime:
            return False
        keys.add(rec.material_key)
    return len(keys) == 1


def same_hash(stats: Sequence[FileStat], records: dict[str, FileRecord], digest: str) -> bool:
    """Every file is recorded, under one material, with this content hash."""
    recs = [records.get(st.path) for st in stats]
    return (
        all(r is not None and r.content_hash == digest for r in recs)
        and len({r.material_key for r in recs if r is not None}) == 1
    )


async def touch_records(db: Database, stats: Sequence[FileStat]) -> None:
    """The files were touched but not changed: remember their new size and mtime."""
    async with db.session() as session, session.begin():
        for st in stats:
            await session.execute(
                update(FileRecord).where(FileRecord.path == st.path).values(size=st.size, mtime=st.mtime)
            )


async def _creator(session, m: Material) -> Creator:
    if m.creator_key:
        found = await session.scalar(select(Creator).where(Creator.source_key == m.creator_key))
        if found is not None:
            return found
    base_slug = slugify(m.creator_slug or m.creator_name, SLUG_MAX - 4) or "creator"
    found = await session.scalar(select(Creator).where(Creator.slug == base_slug))
    if found is not None and (not m.creator_key or found.source_key in (None, m.creator_key)):
        if m.creator_key and found.source_key is None:
            found.source_key = m.creator_key
        return found
    # A new creator; another channel of the same name gets "-2" and "(2)". The slugs and
    # names taken are read in one query: many channels of one name (a common one) would
    # otherwise cost a query per number tried, for every new creator.
    full = m.creator_name or base_slug
    taken_slugs: set[str] = set()
    taken_names: set[str] = set()
    for slug_taken, name_taken in (await session.execute(
            select(Creator.slug, Creator.name).where(
                Creator.slug.startswith(base_slug, autoescape=True)
                | Creator.name.startswith(full[:100], autoescape=True)))).all():
        taken_slugs.add(slug_taken)
        taken_names.add(name_taken)
    name = full[:120]
    slug, n = base_slug, 1
    while slug in taken_slugs or name in taken_names:
        n += 1
        slug = f"{base_slug}-{n}"
        suffix = f" ({n})"
        name = full[: 120 - len(suffix)] + suffix
    creator = Creator(slug=slug, name=name, source_key=m.creator_key)
    session.add(creator)
    await session.flush()
    return creator


def iso_day(yyyymmdd: str | None) -> str | None:
    """yt-dlp's `20240315` as `2024-03-15` (the column's form); None stays None."""
    if not yyyymmdd:
        return None
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:8]}"


async def store_material(
    db: Database, m: Material, stats: Sequence[FileStat], *, display_path: str | None = None
) -> Stored:
    """Write one material as one page, in one transaction (see the module docstring).

    `display_path` is how locators name the note or document (the path relative to the
    folder the user imported); `stats` are the files' size and mtime when they were read.
    """
    async with db.session() as session, session.begin():
        conn = await session.connection()
        page = await session.scalar(
            select(TechniquePage).where(TechniquePage.material_key == m.key)
        )
        creator = await _creator(session, m)
        video_id = None
        if m.video is not None:
            v = m.video
            values = {
                "creator_id": creator.id, "title": v.title, "filename": v.filename,
                "url": v.url, "duration": v.duration, "upload_date": iso_day(v.upload_date),
            }
            video = await session.get(Video, v.id)
            if video is None:
                session.add(Video(id=v.id, **values))
            elif m.kind != "note":
                _apply(video, values)
            # else a note naming the video (front matter `video_url`) only points at it:
            # the video's title, channel, length and file stay what its own import said
            video_id = v.id
        page_values = {
            "title": m.title, "creator_id": creator.id, "topic_category": m.topic_category or "General",
            "tags": list(m.tags), "summary": m.summary, "origin": "import",
            "source_file": str(Path(os.path.abspath(m.source))),
        }
        old_videos: set[str] = set()
        if page is None:
            outcome = "added"
            slug = page_slug_for(m)
            if await session.scalar(select(TechniquePage.id).where(TechniquePage.slug == slug)):
                slug = f"{slug[:40]}-{hashlib.sha256(m.key.encode()).hexdigest()[:20]}"
            page = TechniquePage(slug=slug, material_key=m.key, **page_values)
            session.add(page)
            await session.flush()
            existing: dict[str, Section] = {}
        else:
            outcome = "updated"
            # The index forgets the page as it was before any of its rows change.
            await search_index.unindex_pages(conn, [page.id])
            _apply(page, page_values)
            existing = {
                s.anchor: s
                for s in await session.scalars(select(Section).where(Section.page_id == page.id))
            }
            old_videos = {s.video_id for s in existing.values() if s.video_id}
        keep: set[str] = set()
        for position, sec in enumerate(m.sections):
            keep.add(sec.anchor)
            values = {
                "position": position, "heading": sec.heading, "body": sec.body,
                "video_id": video_id if sec.locator == "video" else None,
                "start_time": sec.start_time, "end_time": sec.end_time,
                "locator": sec.locator, "first_page": sec.first_page, "last_page": sec.last_page,
                "line": sec.line,
                "source_path": display_path if sec.locator in ("page", "heading") else None,
            }
            row = existing.get(sec.anchor)
            if row is None:
                session.add(Section(page_id=page.id, anchor=sec.anchor, **values))
            else:
                _apply(row, values)
        stale = [s.id for a, s in existing.items() if a not in keep]
        if stale:
            await session.execute(delete(Section).where(Section.id.in_(stale)))
        await session.flush()
        replaced = outcome == "updated" and await session.scalar(
            select(DistilledLink.page_id).where(DistilledLink.raw_page_id == page.id))
        if not replaced:
            # A transcript its distilled page replaced stays out of the index; the next
            # distill run sees the changed transcript and writes the page again.
            await search_index.index_pages(conn, [page.id])
        section_ids = (await session.scalars(
            select(Section.id).where(Section.page_id == page.id))).all()
        try:
            # unchanged text keeps its vector (skipped by hash), as the KB importer does
            await vectors.update_sections(session, section_ids)
        except vectors.EmbedError:  # the page is stored; the next start fills its vectors
            logger.warning("section vectors not updated for %s", page.slug, exc_info=True)
        if old_videos - {video_id}:
            await _drop_orphan_videos(session, old_videos - {video_id})
        # The file records: this material's files, now; files it no longer has are forgotten.
        now = utcnow()
        paths = [st.path for st in stats]
        await session.execute(
            delete(FileRecord).where(
                (FileRecord.material_key == m.key) | FileRecord.path.in_(paths)
            )
        )
        for st in stats:
            session.add(FileRecord(
                path=st.path, size=st.size, mtime=st.mtime, content_hash=m.content_hash,
                material_key=m.key, page_slug=page.slug, imported_at=now,
            ))
        slug, creator_slug = page.slug, creator.slug
    return Stored(outcome, slug, len(m.sections), creator_slug)


async def _drop_orphan_videos(session, video_ids: Iterable[str]) -> int:
    ids = sorted(set(video_ids))
    if not ids:
        return 0
    used = set(await session.scalars(select(Section.video_id).where(Section.video_id.in_(ids))))
    gone = [v for v in ids if v not in used]
    if gone:
        await session.execute(delete(Video).where(Video.id.in_(gone)))
    return len(gone)


@dataclass
class Removed:
    pages: list[str]
    creators: list[str]
    files: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"pages": self.pages, "creators": self.creators, "files": self.files}


async def _remove_pages(session, pages: Sequence[TechniquePage], *, drop_creators: bool = True) -> Removed:
    """Pages out (index entries first), then their orphaned videos and creators, and the
    file records of the material they came from."""
    removed = Removed([], [], [])
    if not pages:
        return removed
    conn = await session.connection()
    ids = [p.id for p in pages]
    links = list(await session.execute(
        select(DistilledLink.raw_page_id, DistilledLink.page_id)
        .where(DistilledLink.raw_page_id.in_(ids) | DistilledLink.page_id.in_(ids))))
    # A removed transcript takes its distilled page with it (nothing left to cite); a
    # removed distilled page gives its transcript back to search.
    extra = sorted({page_id for raw_id, page_id in links if raw_id in ids} - set(ids))
    if extra:
        pages = [*pages, *await session.scalars(select(TechniquePage).where(TechniquePage.id.in_(extra)))]
        ids = [p.id for p in pages]
    restore = sorted({raw_id for raw_id, page_id in links if page_id in ids} - set(ids))
    if links:
        await session.execute(delete(DistilledLink).where(
            DistilledLink.raw_page_id.in_(ids) | DistilledLink.page_id.in_(ids)))
    await search_index.unindex_pages(conn, ids)
    video_ids = set(
        await session.scalars(select(Section.video_id).where(Section.page_id.in_(ids), Section.video_id.is_not(None)))
    )
    creator_ids = {p.creator_id for p in pages}
    keys = [p.material_key for p in pages if p.material_key]
    slugs = [p.slug for p in pages]
    await session.execute(delete(Section).where(Section.page_id.in_(ids)))
    await session.execute(delete(TechniquePage).where(TechniquePage.id.in_(ids)))
    removed.pages = sorted(slugs)
    await _drop_orphan_videos(session, video_ids)
    if restore:
        await search_index.index_pages(conn, await _unindexed(conn, restore))
    if keys or slugs:
        rows = await session.scalars(
            select(FileRecord.path).where(FileRecord.material_key.in_(keys) | FileRecord.page_slug.in_(slugs))
        )
        removed.files = sorted(rows)
        await session.execute(
            delete(FileRecord).where(FileRecord.material_key.in_(keys) | FileRecord.page_slug.in_(slugs))
        )
    if drop_creators:
        for cid in sorted(creator_ids):
            has_pages = await session.scalar(select(func.count()).select_from(TechniquePage).where(TechniquePage.creator_id == cid))
            has_videos = await session.scalar(select(func.count()).select_from(Video).where(Video.creator_id == cid))
            if not has_pages and not has_videos:
                slug = await session.scalar(select(Creator.slug).where(Creator.id == cid))
                await session.execute(delete(Creator).where(Creator.id == cid))
                removed.creators.append(slug)
    await search_index._set_doc_count(conn)
    return removed


async def _unindexed(conn, page_ids: list[int]) -> list[int]:
    held = set(await search_index.indexed_pages(conn, page_ids))
    return [i for i in page_ids if i not in held]


async def remove_pages_where(db: Database, condition) -> Removed:
    async with db.session() as session, session.begin():
        pages = list(await session.scalars(select(TechniquePage).where(condition)))
        return await _remove_pages(session, pages)


async def remove_page(db: Database, slug: str) -> Removed:
    return await remove_pages_where(db, TechniquePage.slug == slug)


async def remove_creator(db: Database, slug: str) -> Removed | None:
    """The creator, every page of theirs and their videos; None when there is no such creator."""
    async with db.session() as session, session.begin():
        creator = await session.scalar(select(Creator).where(Creator.slug == slug))
        if creator is None:
            return None
        pages = list(await session.scalars(select(TechniquePage).where(TechniquePage.creator_id == creator.id)))
        removed = await _remove_pages(session, pages, drop_creators=False)
        await session.execute(delete(Video).where(Video.creator_id == creator.id))
        await session.execute(delete(Creator).where(Creator.id == creator.id))
        removed.creators = [slug]
        return removed


async def remove_file(db: Database, path: str | Path) -> Removed | None:
    """The page made from this file (and its companions' records); None when it is not recorded."""
    target = str(Path(os.path.abspath(path)))
    async with db.session() as session, session.begin():
        rec = await session.get(FileRecord, target)
        if rec is None:
            return None
        pages = list(await session.scalars(select(TechniquePage).where(TechniquePage.material_key == rec.material_key)))
        removed = await _remove_pages(session, pages)
        if not removed.files:  # a record whose page was removed another way
            await session.execute(delete(FileRecord).where(FileRecord.material_key == rec.material_key))
            removed.files = [target]
        return removed


async def prune(db: Database, roots: Sequence[Path], seen: set[str]) -> Removed:
    """Pages whose files are gone: recorded under one of `roots`, not seen in this run,
    and no longer on disk. One transaction per page, like an import."""
    prefixes = []
    for root in roots:
        absolute = str(Path(os.path.abspath(root)))
        prefixes.append(absolute if not Path(absolute).is_dir() else absolute.rstrip(os.sep) + os.sep)
    async with db.session() as session:
        records = list(await session.execute(select(FileRecord.path, FileRecord.material_key)))
    gone_keys: set[str] = set()
    for path, key in records:
        if path in seen or os.path.exists(path):
            continue
        if any(path == p or path.startswith(p) for p in prefixes):
            gone_keys.add(key)
    total = Removed([], [], [])
    for key in sorted(gone_keys):
        async with db.session() as session, session.begin():
            pages = list(await session.scalars(select(TechniquePage).where(TechniquePage.material_key == key)))
            r = await _remove_pages(session, pages)
            if not pages:
                rows = await session.scalars(select(FileRecord.path).where(FileRecord.material_key == key))
                r.files = sorted(rows)
                await session.execute(delete(FileRecord).where(FileRecord.material_key == key))
        total.pages += r.pages
        total.creators += r.creators
        total.files += r.files
    return total


# ---------------------------------------------------------------- listing


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def list_kb(db: Database) -> dict[str, Any]:
    """Creators, pages and files, and where each page came from (`kb list`)."""
    async with db.session() as session:
        creators = list(await session.scalars(select(Creator).order_by(Creator.slug)))
        pages = list(await session.execute(
            select(TechniquePage.slug, TechniquePage.title, TechniquePage.creator_id,
                   TechniquePage.origin, TechniquePage.material_key, TechniquePage.source_file,
                   func.count(Section.id), TechniquePage.id)
            .outerjoin(Section, Section.page_id == TechniquePage.id)
            .group_by(TechniquePage.id)
            .order_by(TechniquePage.slug)
        ))
        files = list(await session.scalars(select(FileRecord).order_by(FileRecord.path)))
        links = list(await session.execute(select(DistilledLink.raw_page_id, DistilledLink.page_id)))
    by_id = {c.id: c.slug for c in creators}
    slug_of = {p[7]: p[0] for p in pages}
    distilled_from = {page_id: slug_of.get(raw_id) for raw_id, page_id in links}
    distilled_as = {raw_id: slug_of.get(page_id) for raw_id, page_id in links}
    count: dict[int, int] = {}
    for p in pages:
        count[p[2]] = count.get(p[2], 0) + 1
    return {
        "distilled": len(links),
        "creators": [
            {"slug": c.slug, "name": c.name, "pages": count.get(c.id, 0), "channel_id": c.source_key}
            for c in creators
        ],
        "pages": [
            {"slug": p[0], "title": p[1], "creator": by_id.get(p[2]), "origin": p[3],
             "material_key": p[4], "source_file": p[5], "sections": int(p[6]),
             # a distilled page: the transcript page it was made from; a transcript page
             # a distilled page replaced in search: that page
             "distilled_from": distilled_from.get(p[7]), "distilled_as": distilled_as.get(p[7])}
            for p in pages
        ],
        "files": [
            {"path": f.path, "size": f.size, "content_hash": f.content_hash,
             "material_key": f.material_key, "page": f.page_slug, "imported_at": _iso(f.imported_at)}
            for f in files
        ],
    }
