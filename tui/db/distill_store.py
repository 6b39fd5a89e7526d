"""Distilled pages and creator profiles in the knowledge base.

A distilled page is a technique page of its own (origin "distilled", material key
"distilled:" + the raw page's) with a `distilled_pages` row linking it to the raw
transcript page it was made from. Storing one is one transaction: the distilled
page's sections written (each with the raw page's video and its own time range,
so a citation opens the video at its second), the raw page taken out of the
search index and the distilled page put in. The raw page and its sections stay:
`raw_for_section` gives the transcript text behind any distilled section.

`load_transcripts` finds the imported transcript pages to distill, with the
sentences re-read from the imported files when they are unchanged (sentence
times), else the raw sections themselves (section times); a page whose distilled
page was made from the same files (their content hash) is not read again. `store_profiles`
writes creator profiles, never over a profile a KB document gave (one without
`_source`). No Textual here.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select

from tui.db import search_index, vectors
from tui.db.models import Creator, DistilledLink, FileRecord, Section, TechniquePage, Video
from tui.materials.model import TimedSentence
from tui.services.distill import PROMPT_VERSION, RANGE_SLACK_S, DistilledPage, Transcript
from tui.services.locators import time_range

logger = logging.getLogger("chrysopedia.distill")

DISTILLED = "distilled"
KEY_PREFIX = "distilled:"


@dataclass
class RawTranscript:
    page_id: int
    slug: str
    material_key: str
    video_id: str | None
    transcript: Transcript
    sentences_from: str  # "file" (re-read, sentence times) | "sections" (section times)
    distilled_hash: str | None = None  # the transcript hash of the current distilled page
    distilled_slug: str | None = None
    # The raw sections as (start, end, body): what profiles are made from (the same text
    # on every run, read or not).
    section_sentences: list[TimedSentence] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return self.distilled_hash == self.transcript.content_hash


def _reread(material_key: str, source_file: str | None, records: list[FileRecord]) -> list[TimedSentence] | None:
    """The transcript's sentences from its files, when they are still what was imported."""
    if not source_file or not records:
        return None
    from tui.materials.model import Material, SourceGroup
    from tui.materials.read import read

    main = Path(source_file)
    others = sorted(Path(r.path) for r in records if Path(r.path) != main)
    kind = "ytdlp" if any(p.name.endswith(".info.json") for p in others) else "subtitles"
    try:
        material = read(SourceGroup(kind, main, (main, *others)))
    except OSError:
        return None
    if not isinstance(material, Material) or material.key != material_key:
        return None
    if material.content_hash != records[0].content_hash or not material.sentences:
        return None
    return list(material.sentences)


async def load_transcripts(
    db, *, creator: str | None = None, page: str | None = None, pages: list[str] | None = None,
    reread: bool = True,
) -> list[RawTranscript]:
    """The imported transcript pages (video sections with times), oldest first; `creator`
    (slug), `page` (slug, raw or distilled) or `pages` (raw slugs) narrows them."""
    query = (
        select(TechniquePage, Creator.slug, Creator.name)
        .join(Creator, Creator.id == TechniquePage.creator_id)
        .where(TechniquePage.origin == "import")
        .order_by(TechniquePage.id)
    )
    if creator:
        query = query.where(Creator.slug == creator)
    if pages is not None:
        query = query.where(TechniquePage.slug.in_(list(pages)))
    async with db.session() as session:
        if page:
            raw_id = await session.scalar(
                select(DistilledLink.raw_page_id).join(
                    TechniquePage, TechniquePage.id == DistilledLink.page_id
                ).where(TechniquePage.slug == page))
            query = query.where(
                TechniquePage.id == raw_id if raw_id is not None else TechniquePage.slug == page)
        rows = (await session.execute(query)).all()
        out: list[RawTranscript] = []
        for tp, creator_slug, creator_name in rows:
            sections = list(await session.scalars(
                select(Section).where(Section.page_id == tp.id, Section.start_time.is_not(None),
                                      Section.end_time.is_not(None), Section.video_id.is_not(None))
                .order_by(Section.position)))
            if not sections:
                continue  # not a transcript (a note, a manual)
            video = await session.get(Video, sections[0].video_id)
            records = list(await session.scalars(
                select(FileRecord).where(FileRecord.material_key == tp.material_key)))
            link = await session.scalar(select(DistilledLink).where(DistilledLink.raw_page_id == tp.id))
            distilled_slug = None
            if link is not None:
                distilled_slug = await session.scalar(
                    select(TechniquePage.slug).where(TechniquePage.id == link.page_id))
            by_section = [TimedSentence(float(s.start_time), float(s.end_time), s.body)
                          for s in sections]
            transcript = Transcript(
                key=tp.slug, creator_slug=creator_slug, creator_name=creator_name,
                title=video.title if video is not None else tp.title, sentences=by_section,
                duration=video.duration if video is not None else None,
                # The imported files' hash names the transcript: whether its distilled page
                # is current is known without reading them again.
                identity=f"file:{records[0].content_hash}" if records else None)
            source = "sections"
            if reread and (link is None or link.transcript_hash != transcript.content_hash):
                sentences = _reread(tp.material_key, tp.source_file, records)
                if sentences is not None:
                    transcript.sentences, source = sentences, "file"
            out.append(RawTranscript(
                page_id=tp.id, slug=tp.slug, material_key=tp.material_key or tp.slug,
                video_id=sections[0].video_id, transcript=transcript, sentences_from=source,
                distilled_hash=link.transcript_hash if link is not None else None,
                distilled_slug=distilled_slug, section_sentences=by_section,
            ))
    return out


def _anchor(heading: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")[:56] or "section"
    anchor, n = base, 1
    while anchor in taken:
        n += 1
        anchor = f"{base}-{n}"
    taken.add(anchor)
    return anchor


async def _indexed(conn, page_id: int) -> bool:
    """Whether the search index holds this page's sections (a re-import or an index
    rebuild puts a raw page back in)."""
    return bool(await search_index.indexed_pages(conn, [page_id]))


async def reconcile_index(db) -> dict[str, int]:
    """Put the index and the links right after what other commands did: a raw page put
    back in the index (an index rebuild, a re-import) while its distilled page is there
    is taken out again; a distilled page whose raw page is gone (`kb remove`, `--prune`:
    the link went with it) goes too, with a video no section uses any more.
    {"unindexed": n, "orphans_removed": n}."""
    unindexed = removed = 0
    async with db.session() as session, session.begin():
        conn = await session.connection()
        for raw_id, page_id in (await session.execute(
                select(DistilledLink.raw_page_id, DistilledLink.page_id))).all():
            if await _indexed(conn, raw_id) and await _indexed(conn, page_id):
                await search_index.unindex_pages(conn, [raw_id])
                unindexed += 1
        orphans = list(await session.scalars(
            select(TechniquePage.id).where(TechniquePage.origin == DISTILLED,
                                           TechniquePage.id.not_in(select(DistilledLink.page_id)))))
        if orphans:
            videos = set(await session.scalars(
                select(Section.video_id).where(Section.page_id.in_(orphans),
                                               Section.video_id.is_not(None))))
            await search_index.unindex_pages(conn, orphans)
            await session.execute(delete(Section).where(Section.page_id.in_(orphans)))
            await session.execute(delete(TechniquePage).where(TechniquePage.id.in_(orphans)))
            used = set(await session.scalars(
                select(Section.video_id).where(Section.video_id.in_(videos)))) if videos else set()
            if videos - used:
                await session.execute(delete(Video).where(Video.id.in_(videos - used)))
            removed = len(orphans)
    return {"unindexed": unindexed, "orphans_removed": removed}


async def store_distilled(db, raw: RawTranscript, page: DistilledPage, model: str) -> str:
    """Write (or replace) the distilled page of `raw` in one transaction; its slug."""
    from tui.text import clean

    async with db.session() as session, session.begin():
        conn = await session.connection()
        raw_page = await session.get(TechniquePage, raw.page_id)
        if raw_page is None:
            raise LookupError(f"the transcript page {raw.slug} is gone")
        link = await session.scalar(select(DistilledLink).where(DistilledLink.raw_page_id == raw.page_id))
        values = {
            "title": clean(page.title).replace("\n", " ")[:200],
            "creator_id": raw_page.creator_id, "topic_category": page.topic_category,
            "tags": [clean(t).replace("\n", " ") for t in page.tags],
            "summary": clean(page.summary), "origin": DISTILLED,
            "source_file": raw_page.source_file,
        }
        distilled = await session.get(TechniquePage, link.page_id) if link is not None else None
        if distilled is None:
            slug = f"{raw_page.slug[:60]}-d"
            distilled = TechniquePage(slug=slug, material_key=KEY_PREFIX + (raw_page.material_key or raw_page.slug),
                                      **values)
            session.add(distilled)
            await session.flush()
        else:
            await search_index.unindex_pages(conn, [distilled.id])
            for key, value in values.items():
                setattr(distilled, key, value)
            await session.execute(delete(Section).where(Section.page_id == distilled.id))
        taken: set[str] = set()
        for position, sec in enumerate(page.sections):
            session.add(Section(
                page_id=distilled.id, position=position, anchor=_anchor(sec.heading, taken),
                heading=clean(sec.heading).replace("\n", " "), body=clean(sec.body),
                video_id=raw.video_id, start_time=sec.start_time, end_time=sec.end_time,
                locator="video",
            ))
        if await _indexed(conn, raw.page_id):
            # The raw page leaves the index; it stays out while distilled.
            await search_index.unindex_pages(conn, [raw.page_id])
        if link is None:
            session.add(DistilledLink(raw_page_id=raw.page_id, page_id=distilled.id,
                                      transcript_hash=raw.transcript.content_hash, model=model,
                                      prompt_version=PROMPT_VERSION))
        else:
            link.transcript_hash = raw.transcript.content_hash
            link.model = model
            link.prompt_version = PROMPT_VERSION
        await session.flush()
        await search_index.index_pages(conn, [distilled.id])
        section_ids = (await session.scalars(
            select(Section.id).where(Section.page_id == distilled.id))).all()
        try:
            # its vectors now, which also moves the generation: the semantic side drops
            # the raw page and offers the distilled one
            await vectors.update_sections(session, section_ids)
        except vectors.EmbedError:  # the page is stored; the next start fills its vectors
            logger.warning("section vectors not updated for %s", distilled.slug, exc_info=True)
        return distilled.slug


async def raw_for_section(db, page_slug: str, anchor: str) -> dict[str, Any] | None:
    """What a distilled section was written from: {"label": "from the transcript,
    12:05–15:45", "raw_page", "start_time", "end_time", "sections": [raw sections in
    the range: anchor, heading, body, start_time, end_time], "text": their bodies,
    "support": per sentence of the section, the span of "text" backing it (`_support`)};
    None when the section is not a distilled one."""
    async with db.session() as session:
        row = (await session.execute(
            select(Section, DistilledLink.raw_page_id)
            .join(TechniquePage, TechniquePage.id == Section.page_id)
            .join(DistilledLink, DistilledLink.page_id == TechniquePage.id)
            .where(TechniquePage.slug == page_slug, Section.anchor == anchor))).first()
        if row is None:
            return None
        sec, raw_id = row
        raw_page = await session.get(TechniquePage, raw_id)
        raws = list(await session.scalars(
            select(Section).where(Section.page_id == raw_id, Section.start_time < sec.end_time,
                                  Section.end_time > sec.start_time).order_by(Section.position)))
        records = list(await session.scalars(
            select(FileRecord).where(FileRecord.material_key == raw_page.material_key)
            .order_by(FileRecord.path))) if raw_page.material_key else []
    # The range's own sentences when the imported files are still what was imported (a
    # raw section spans 1-4 minutes, a distilled one often a few seconds), with the check's
    # slack at both ends; else the raw sections the range overlaps.
    sentences = await asyncio.to_thread(
        _reread, raw_page.material_key or "", raw_page.source_file, records)
    lo, hi = sec.start_time - RANGE_SLACK_S, sec.end_time + RANGE_SLACK_S
    said = [t.text for t in sentences or () if t.end > lo and t.start < hi]
    text = " ".join(said) if said else "\n\n".join(r.body for r in raws)
    return {
        "label": f"from the transcript, {time_range(sec.start_time, sec.end_time)}",
        "raw_page": raw_page.slug, "start_time": sec.start_time, "end_time": sec.end_time,
        "sections": [{"anchor": r.anchor, "heading": r.heading, "body": r.body,
                      "start_time": r.start_time, "end_time": r.end_time} for r in raws],
        "text": text,
        "support": await asyncio.to_thread(_support, sec.body, text),
    }


def _support(body: str, text: str) -> list[dict[str, Any]]:
    """Per sentence of a distilled section's `body`, the words of the transcript `text`
    that support it, by the claim check distill kept it by: `{"start", "end"}` (in the
    body), `status` (supported | unsupported), `span` ([start, end] in `text`, or None).
    Computed when asked (a few ms), not stored: the check and the raw text it indexes stay
    the ones the product has now."""
    from tui.services.claims import check_claims

    report = check_claims(body, [{"section_body": text}], cite=(1,))
    return [{"start": c.start, "end": c.end,
             "status": "supported" if c.status == "supported" else "unsupported",
             "span": list(c.span) if c.span and c.status == "supported" else None}
            for c in report.claims]


async def creator_transcripts(db) -> tuple[dict[str, list[list[TimedSentence]]], list[str]]:
    """({creator slug: [transcript as its raw sections' (start, end, body)]}, background
    texts: every other page's sections), for the measured profiles. Sections are enough
    here: the profile counts words, and speaking rate over a section's span."""
    by_creator: dict[str, list[list[TimedSentence]]] = {}
    background: list[str] = []
    async with db.session() as session:
        rows = (await session.execute(
            select(Creator.slug, TechniquePage.id, TechniquePage.origin, Section.start_time,
                   Section.end_time, Section.body, Section.video_id, TechniquePage.material_key)
            .join(TechniquePage, TechniquePage.creator_id == Creator.id)
            .join(Section, Section.page_id == TechniquePage.id)
            .where(TechniquePage.origin != DISTILLED)
            .order_by(TechniquePage.id, Section.position))).all()
    pages: dict[int, list[TimedSentence]] = {}
    owner: dict[int, str] = {}
    for slug, page_id, origin, start, end, body, video_id, key in rows:
        # a note's `[12:30]` heading on a video it names is the note-taker's words, not speech
        is_transcript = (origin == "import" and video_id is not None and start is not None
                         and end is not None and not (key or "").startswith("note:"))
        if is_transcript:
            pages.setdefault(page_id, []).append(TimedSentence(float(start), float(end), body))
            owner[page_id] = slug
        else:
            background.append(body)
    for page_id, sentences in pages.items():
        by_creator.setdefault(owner[page_id], []).append(sentences)
    return by_creator, background


async def store_profiles(db, profiles: dict[str, dict[str, Any]]) -> list[str]:
    """Write each creator's profile; a profile from a KB document (no `_source`) is kept.
    The slugs written."""
    written: list[str] = []
    async with db.session() as session, session.begin():
        for slug, profile in profiles.items():
            creator = await session.scalar(select(Creator).where(Creator.slug == slug))
            if creator is None:
                continue
            old = creator.personality_profile
            if isinstance(old, dict) and old and "_source" not in old:
                continue  # written by hand in a KB document: not ours to replace
            creator.personality_profile = profile
            written.append(slug)
    return written


async def refresh_measured_profiles(db, creators: list[str] | None = None) -> list[str]:
    """The statistical profile for every creator with imported transcripts (or those in
    `creators`), measured against everyone else; fields a model wrote are kept."""
    from tui.services.profile_stats import measure_profiles

    if creators is not None and not creators:
        return []
    transcripts, background = await creator_transcripts(db)
    if not transcripts:
        return []
    # Counting n-grams over every transcript takes seconds on a large knowledge base: in a
    # thread, so an app running this keeps drawing and taking keys.
    measured = await asyncio.to_thread(measure_profiles, transcripts, background=background)
    if creators is not None:
        measured = {k: v for k, v in measured.items() if k in creators}
    async with db.session() as session:
        current = dict((await session.execute(
            select(Creator.slug, Creator.personality_profile).where(Creator.slug.in_(list(measured))))).all())
    merged: dict[str, dict[str, Any]] = {}
    for slug, prof in measured.items():
        old = current.get(slug)
        if isinstance(old, dict) and old.get("_model"):
            from tui.services.distill import merge_profiles

            model_fields = {k: v for k, v in old.items() if not k.startswith("_")}
            src = old.get("_source") or {}
            # Keep only what the model wrote; the measured parts are measured afresh.
            for section in ("tone", "vocabulary", "style_markers"):
                if isinstance(model_fields.get(section), dict):
                    model_fields[section] = {k: v for k, v in model_fields[section].items()
                                             if src.get(k) == "model"}
            prof = merge_profiles(prof, model_fields, old["_model"].get("model", ""))
        merged[slug] = prof
    return await store_profiles(db, merged)
