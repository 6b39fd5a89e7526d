"""Knowledge-base import: validate everything, then upsert in one transaction.

Records are keyed by slug (creators, pages), id (videos) and (page, anchor)
(sections). Importing the same document twice changes nothing; a section that
a newer version of a page no longer has is removed. Any problem refuses the
whole import and leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, text

from tui.db import search_index, vectors
from tui.db.engine import Database, get_meta, set_meta
from tui.db.kb_format import KBDocument, KBFormatError, read_documents, validate
from tui.db.models import Creator, DistilledLink, Meta, Section, TechniquePage, Video

KINDS = ("creators", "videos", "techniques", "sections")


@dataclass
class ImportReport:
    added: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    unchanged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    removed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(self.added.values()) or any(self.updated.values()) or any(self.removed.values())

    def lines(self) -> list[str]:
        out = []
        for kind in KINDS:
            line = (
                f"{kind:<11} {self.added[kind]:>6} added  {self.updated[kind]:>6} updated  "
                f"{self.unchanged[kind]:>6} unchanged"
            )
            if self.removed[kind]:
                line += f"  {self.removed[kind]:>6} removed"
            out.append(line)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "warnings": self.warnings,
        }


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    """Set attributes that differ; True when anything changed."""
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _count(report: ImportReport, kind: str, created: bool, changed: bool) -> None:
    bucket = report.added if created else report.updated if changed else report.unchanged
    bucket[kind] += 1


async def import_document(db: Database, doc: KBDocument, *, origin: str = "kb") -> ImportReport:
    """Validate `doc` against itself and the database, then upsert it. Raises KBFormatError.

    `origin` marks the pages written: "kb" (a user's document) or "demo" (the bundled one).
    """
    report = ImportReport()
    async with db.session() as session, session.begin():
        creators = {c.slug: c for c in (await session.scalars(select(Creator))).all()}
        videos = {v.id: v for v in (await session.scalars(select(Video))).all()}
        creator_slug_by_id = {c.id: c.slug for c in creators.values()}
        problems = _problems(
            doc, {c.name: c.slug for c in creators.values()},
            {vid: creator_slug_by_id.get(v.creator_id, "") for vid, v in videos.items()},
        )
        if problems:
            raise KBFormatError(problems)
        report.warnings.extend(doc.warnings)

        for rec in doc.creators:
            values = {
                "name": rec["name"], "bio": rec.get("bio"), "genres": rec.get("genres"),
                "personality_profile": rec.get("personality_profile"),
            }
            obj = creators.get(rec["slug"])
            created = obj is None
            if created:
                obj = Creator(slug=rec["slug"], **values)
                session.add(obj)
                creators[rec["slug"]] = obj
            _count(report, "creators", created, not created and _apply(obj, values))
        await session.flush()

        for rec in doc.videos:
            values = {
                "creator_id": creators[rec["creator"]].id, "title": rec["title"],
                "filename": rec.get("filename"), "url": rec.get("url"),
                "duration": None if rec.get("duration") is None else float(rec["duration"]),
                "upload_date": rec.get("upload_date"),
            }
            obj = videos.get(rec["id"])
            created = obj is None
            if created:
                obj = Video(id=rec["id"], **values)
                session.add(obj)
                videos[rec["id"]] = obj
            _count(report, "videos", created, not created and _apply(obj, values))
        await session.flush()

        slugs = [rec["slug"] for rec in doc.techniques]
        pages = {
            p.slug: p
            for p in (await session.scalars(select(TechniquePage).where(TechniquePage.slug.in_(slugs)))).all()
        } if slugs else {}
        page_ids = [p.id for p in pages.values()]
        existing_sections: dict[tuple[int, str], Section] = {}
        if page_ids:
            for s in (await session.scalars(select(Section).where(Section.page_id.in_(page_ids)))).all():
                existing_sections[(s.page_id, s.anchor)] = s
        written: dict[str, TechniquePage] = {}
        for rec in doc.techniques:
            values = {
                "title": rec["title"], "creator_id": creators[rec["creator"]].id,
                "topic_category": rec["topic_category"], "tags": rec.get("tags"),
                "summary": rec["summary"], "source_file": _source_file(rec),
                "origin": "distilled" if rec.get("distilled_from") is not None else origin,
            }
            obj = pages.get(rec["slug"])
            created = obj is None
            if created:
                obj = TechniquePage(slug=rec["slug"], **values)
                session.add(obj)
                await session.flush()
            written[rec["slug"]] = obj
            _count(report, "techniques", created, not created and _apply(obj, values))
            keep: set[str] = set()
            for position, sec in enumerate(rec["sections"]):
                keep.add(sec["anchor"])
                svalues = {
                    "position": position, "heading": sec["heading"], "body": sec["body"],
                    "video_id": sec.get("video"),
                    "start_time": None if sec.get("start_time") is None else float(sec["start_time"]),
                    "end_time": None if sec.get("end_time") is None else float(sec["end_time"]),
                    **_locator_values(sec),
                }
                sobj = existing_sections.get((obj.id, sec["anchor"]))
                screated = sobj is None
                if screated:
                    session.add(Section(page_id=obj.id, anchor=sec["anchor"], **svalues))
                _count(report, "sections", screated, not screated and _apply(sobj, svalues))
            stale = [s.id for (pid, anchor), s in existing_sections.items() if pid == obj.id and anchor not in keep]
            if stale:
                await session.execute(delete(Section).where(Section.id.in_(stale)))
                report.removed["sections"] += len(stale)
        await session.flush()
        links_changed = await _link_distilled(session, doc, written)
        if report.changed or links_changed:
            conn = await session.connection()
            await search_index.rebuild_index(conn)
            # every section of the pages imported: a changed title or summary changes
            # their vectors too; the text hash skips the ones that are unchanged
            section_ids = (await session.scalars(
                select(Section.id).join(TechniquePage, TechniquePage.id == Section.page_id)
                .where(TechniquePage.slug.in_(slugs)))).all() if slugs else []
            try:
                await vectors.update_sections(session, section_ids)
            except vectors.EmbedError as exc:  # the KB is imported; these vectors lag
                report.warnings.append(f"section vectors not updated: {exc}")
    return report


def _problems(doc: KBDocument, names: dict[str, str], known_videos: dict[str, str]) -> list[str]:
    """`doc` checked against itself and what the database holds: `names` {creator name:
    slug}, `known_videos` {video id: creator slug}."""
    problems = validate(doc, known_creators=set(names.values()), known_videos=known_videos)
    # A name already used by another creator in the database would break uniqueness.
    for i, rec in enumerate(doc.creators):
        if isinstance(rec, dict) and rec.get("name") in names and names[rec["name"]] != rec.get("slug"):
            problems.append(
                f"creators[{i}].name: {rec['name']!r} already belongs to creator "
                f"{names[rec['name']]!r} in the database"
            )
    return problems


async def check_paths(db: Database, paths: list[Path]) -> dict[Path, list[str]]:
    """What `import_path` would refuse in each of `paths`, imported one after another,
    without writing anything (`import --strict`): {path: problems} of the refused ones.
    A document that passes counts as imported for the ones after it."""
    async with db.session() as session:
        creators = list(await session.execute(select(Creator.id, Creator.slug, Creator.name)))
        video_rows = list(await session.execute(select(Video.id, Video.creator_id)))
    slug_of = {cid: slug for cid, slug, _ in creators}
    names = {name: slug for _, slug, name in creators}
    known_videos = {vid: slug_of.get(cid, "") for vid, cid in video_rows}
    refused: dict[Path, list[str]] = {}
    for path in paths:
        try:
            doc = await asyncio.to_thread(read_documents, path)
        except KBFormatError as exc:
            refused[path] = exc.problems
            continue
        problems = await asyncio.to_thread(_problems, doc, names, known_videos)
        if problems:
            refused[path] = problems
            continue
        names.update({rec["name"]: rec["slug"] for rec in doc.creators})
        known_videos.update({rec["id"]: rec["creator"] for rec in doc.videos})
    return refused


async def _link_distilled(session, doc: KBDocument, written: dict[str, TechniquePage]) -> bool:
    """The `distilled_pages` rows the document's `distilled_from` marks say (the rebuilt
    index then leaves each transcript page out for its distilled page); whether any changed."""
    changed = False
    for rec in doc.techniques:
        mark = rec.get("distilled_from")
        if mark is None:
            continue
        page, raw = written[rec["slug"]], written[mark["page"]]
        values = {"transcript_hash": str(mark.get("transcript_hash") or ""),
                  "model": str(mark.get("model") or ""),
                  "prompt_version": str(mark.get("prompt_version") or "")}
        link = await session.get(DistilledLink, raw.id)
        if link is not None and link.page_id == page.id:
            changed = _apply(link, values) or changed
            continue
        await session.execute(delete(DistilledLink).where(
            (DistilledLink.raw_page_id == raw.id) | (DistilledLink.page_id == page.id)))
        session.add(DistilledLink(raw_page_id=raw.id, page_id=page.id, **values))
        changed = True
    if changed:
        await session.flush()
    return changed


def _source_file(page: dict[str, Any]) -> str | None:
    """The imported file a page's document or note locators open (their `file`)."""
    for sec in page.get("sections") or []:
        loc = sec.get("locator") if isinstance(sec, dict) else None
        if isinstance(loc, dict) and isinstance(loc.get("file"), str):
            return loc["file"]
    return None


def _locator_values(sec: dict[str, Any]) -> dict[str, Any]:
    """The optional `locator` object of a section (see KB_FORMAT.md) as section columns."""
    loc = sec.get("locator")
    if not isinstance(loc, dict):
        return {"locator": None, "first_page": None, "last_page": None, "line": None, "source_path": None}
    return {
        "locator": loc.get("kind"), "first_page": loc.get("first_page"),
        "last_page": loc.get("last_page"), "line": loc.get("line"), "source_path": loc.get("path"),
    }


async def import_path(db: Database, path: str | Path, *, origin: str = "kb") -> ImportReport:
    """Read, validate and import a file or folder. Raises KBFormatError."""
    return await import_document(db, read_documents(path), origin=origin)


def bundled_kb_path() -> Path:
    return Path(str(resources.files("tui") / "data" / "kb"))


def bundled_kb_hash() -> str:
    digest = hashlib.sha256()
    for file in sorted(bundled_kb_path().glob("*.json")):
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


META_DEMO_REMOVED = "demo_removed"
META_DEMO_WANTED = "demo_wanted"  # `import --demo`: the user asked for them; imports keep them


def is_default_database(settings: Any) -> bool:
    """The database nobody named: not from --db, CHRYSOPEDIA_DATABASE_URL or a config file."""
    if "database_url" in (getattr(settings, "sources", None) or {}):
        return False
    default = f"sqlite+aiosqlite:///{Path(settings.data_dir) / 'chrysopedia.db'}"
    return settings.database_url == default


async def has_own_pages(db: Database) -> bool:
    """Pages that are not the demo: the user's documents or imported files."""
    async with db.session() as session:
        found = await session.scalar(
            select(TechniquePage.id).where(TechniquePage.origin != "demo").limit(1)
        )
    return found is not None


async def demo_loaded(db: Database) -> bool:
    async with db.session() as session:
        found = await session.scalar(
            select(TechniquePage.id).where(TechniquePage.origin == "demo").limit(1)
        )
    return found is not None


async def ensure_demo_kb(db: Database, settings: Any, *, force: bool = False) -> ImportReport | None:
    """The demo pages, where they belong: what the app and every command call at start.

    Loaded (or refreshed when the bundled copy changed) only into the default database,
    only while it holds nothing of the user's own, and never after `kb remove --demo`.
    `force` (`chrysopedia import --demo`) loads them into any database and lifts a removal.
    """
    if force:
        async with db.engine.begin() as conn:
            if await get_meta(conn, META_DEMO_REMOVED) is not None:
                await conn.execute(Meta.__table__.delete().where(Meta.key == META_DEMO_REMOVED))
            await set_meta(conn, META_DEMO_WANTED, "1")
        return await ensure_bundled_kb(db, always=True)
    if not is_default_database(settings):
        return None
    async with db.engine.connect() as conn:
        if await get_meta(conn, META_DEMO_REMOVED) is not None:
            return None
    if await has_own_pages(db):
        return None
    return await ensure_bundled_kb(db)


async def remove_demo_kb(db: Database) -> list[str]:
    """Every demo page out (with their creators and videos), for good: the slugs removed."""
    from tui.db.materials_store import remove_pages_where

    removed = await remove_pages_where(db, TechniquePage.origin == "demo")
    async with db.engine.begin() as conn:
        await set_meta(conn, META_DEMO_REMOVED, "1")
        await conn.execute(Meta.__table__.delete().where(
            Meta.key.in_(["bundled_kb_hash", META_DEMO_WANTED])))
    return removed.pages


async def make_room_for_own_material(db: Database) -> list[str]:
    """After an import that wrote the user's own pages: the demo pages out (the slugs
    removed), unless the user asked for them with `import --demo` (then they stay until
    `kb remove --demo`)."""
    async with db.engine.connect() as conn:
        if await get_meta(conn, META_DEMO_WANTED) is not None:
            return []
    if not await demo_loaded(db):
        return []
    return await remove_demo_kb(db)


async def ensure_bundled_kb(db: Database, *, always: bool = False) -> ImportReport | None:
    """Load the bundled knowledge base, again when it has changed (or `always`).

    Callers decide whether the demo belongs in this database: see `ensure_demo_kb`.
    """
    if not any(bundled_kb_path().glob("*.json")):
        return None
    current = bundled_kb_hash()
    async with db.engine.connect() as conn:
        loaded = await get_meta(conn, "bundled_kb_hash")
    if loaded == current and not always:
        return None
    try:
        report = await import_path(db, bundled_kb_path(), origin="demo")
    except KBFormatError as exc:  # a packaging bug, not the user's input
        raise RuntimeError(f"the bundled knowledge base is invalid: {exc.problems[:3]}") from None
    async with db.engine.begin() as conn:
        await set_meta(conn, "bundled_kb_hash", current)
    return report


async def ensure_vectors(db: Database, progress=None) -> int:
    """Embed the sections that have no vector (a database from before embeddings, or rows
    written by other tools); when the configured embedding model is not the one in use,
    switch to it (every section embedded, then made active, in one transaction: a server
    failing half-way raises `vectors.EmbedError` and the previous vectors stay in use).
    Returns how many vectors were written."""
    async with db.engine.begin() as conn:
        if await vectors.active_model(conn) != vectors.current_model():
            return await vectors.switch_model(conn, vectors.current_embedder(), progress)
        written = await vectors.update_sections(conn, None, progress=progress)
        if await get_meta(conn, "vector_text") != vectors.VECTOR_TEXT_VERSION:
            # what a section's vector reads changed (imported sections: more of the body):
            # those whose text differs are embedded again, once
            ids = [r[0] for r in (await conn.execute(
                text("SELECT id FROM sections WHERE locator IS NOT NULL"))).all()]
            written += await vectors.update_sections(conn, ids, progress=progress)
            await set_meta(conn, "vector_text", vectors.VECTOR_TEXT_VERSION)
        return written
