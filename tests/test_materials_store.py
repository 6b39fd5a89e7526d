"""Materials into the knowledge base, on SQLite and PostgreSQL: one transaction per file,
stable identities, the search index kept page by page, removal, export, the demo pages.

The Materials here are built by hand (the readers are tested on real files in their
own tests); the files they name are real files, so the file records see real sizes,
mtimes and hashes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text

from tui.commands.kb import gather_stats
from tui.config import Settings, load_settings
from tui.db import materials_store as store
from tui.db import search_index
from tui.db.importer import (
    demo_loaded,
    ensure_demo_kb,
    import_path,
    remove_demo_kb,
)
from tui.db.kb_export import export_kb
from tui.db.models import Creator, FileRecord, Section, TechniquePage, Video
from tui.materials.model import Material, MaterialSection, MaterialVideo
from tui.services.search import SearchService

WORDS = ("reverb predelay diffusion decay shimmer plate hall damping early reflections "
         "sidechain compressor attack release threshold ratio kick bass granular grain").split()


def _file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def _hash(files) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(Path(f).read_bytes())
    return digest.hexdigest()


def video_material(tmp_path, vid="abcDEF12345", *, channel="Mix Lab", channel_id="UCmixlab",
                   title="Reverb pre-delay explained", sections=None, extra="",
                   upload_date="20240315") -> Material:
    vtt = _file(tmp_path, f"dl/{title} [{vid}].en.vtt", f"WEBVTT\n\n{vid}{extra}\n")
    info = _file(tmp_path, f"dl/{title} [{vid}].info.json", json.dumps({"id": vid}))
    sections = sections or [
        ("pre-delay", "Pre-delay", "Pre-delay separates the dry transient from the reverb tail "
         "so the vocal stays in front; 20 to 40 ms works.", 0.0, 125.0),
        ("decay", "Decay and damping", "A shorter decay with high damping keeps the mix clear; "
         "long plates suit sparse arrangements.", 125.0, 245.5),
    ]
    return Material(
        kind="video", source=vtt, files=[vtt, info], content_hash=_hash([vtt, info]),
        key=f"youtube:{vid}", creator_name=channel, creator_slug="mix-lab",
        creator_key=channel_id, title=title, summary="How pre-delay and decay shape a reverb.",
        tags=["reverb", "mixing"], topic_category="Mixing",
        sections=[MaterialSection(a, h, b, "video", start_time=s, end_time=e) for a, h, b, s, e in sections],
        video=MaterialVideo(id=vid, title=title, url=f"https://www.youtube.com/watch?v={vid}",
                            duration=300.0, channel_id=channel_id, upload_date=upload_date),
    )


def pdf_material(tmp_path) -> Material:
    pdf = _file(tmp_path, "manuals/synth.pdf", "%PDF-1.4 pretend")
    return Material(
        kind="pdf", source=pdf, files=[pdf], content_hash=_hash([pdf]), key=f"pdf:{pdf}",
        creator_name="Synth Co", creator_slug="synth-co", creator_key=None,
        title="Synth manual", summary="The oscillator and filter chapters.", tags=["manual"],
        topic_category="Synthesis",
        sections=[
            MaterialSection("oscillators", "Oscillators", "The wavetable oscillator scans 256 frames "
                            "with the position knob.", "page", first_page=14, last_page=15),
            MaterialSection("filter", "Filter", "The ladder filter self-oscillates above 90% resonance.",
                            "page", first_page=16, last_page=16),
        ],
    )


def note_material(tmp_path) -> Material:
    note = _file(tmp_path, "notes/reverb.md", "# Reverb\n\n## Pre-delay\nquxelish shimmer\n")
    return Material(
        kind="note", source=note, files=[note], content_hash=_hash([note]), key=f"note:{note}",
        creator_name="Me", creator_slug="me", creator_key=None, title="Reverb notes",
        summary="My reverb notes.", tags=[], topic_category="General",
        sections=[
            MaterialSection("intro", "Reverb", "Notes on reverb for vocals.", "heading", line=1),
            MaterialSection("pre-delay", "Pre-delay", "quxelish shimmer on the snare, 30 ms pre-delay.",
                            "heading", line=3),
        ],
    )


async def put(db, m: Material, display: str | None = None):
    return await store.store_material(db, m, store.stat_files(m.files), display_path=display)


async def index_snapshot(db):
    """The parts of the index the search service reads, and what a few queries return."""
    async with db.engine.connect() as conn:
        vocab = sorted(tuple(r) for r in (await conn.execute(text("SELECT term, df FROM search_vocab"))).all())
        tris = sorted(tuple(r) for r in (await conn.execute(text("SELECT tri, term FROM search_trigrams"))).all())
        count = (await conn.execute(text(
            f"SELECT value FROM chrysopedia_meta WHERE key = '{search_index.META_DOC_COUNT}'"))).scalar_one()
    service = SearchService()
    results = {}
    for q in ("reverb", "pre-delay decay", "ladder filter", "quxelish", "compressor", "shimer"):
        r = await service.search(q, db=db)
        results[q] = (r["cascade_tier"], [(i["technique_page_slug"], i["section_anchor"], i["score"])
                                          for i in r["items"]])
    return vocab, tris, count, results


async def test_material_stored_with_locators(db, tmp_path):
    stored = await put(db, video_material(tmp_path))
    assert stored.outcome == "added" and stored.sections == 2
    await put(db, pdf_material(tmp_path), "manuals/synth.pdf")
    await put(db, note_material(tmp_path), "notes/reverb.md")
    result = await SearchService().search("pre-delay", db=db)
    by_kind = {}
    for item in result["items"]:
        by_kind.setdefault(item["locator"]["kind"], item)
    video = by_kind["video"]
    assert video["locator"] == {"kind": "video", "video_id": "abcDEF12345", "start_time": 0.0,
                                "end_time": 125.0}
    assert video["locator_label"] == "00:00–02:05"
    assert video["video_url"] == "https://www.youtube.com/watch?v=abcDEF12345"
    note = by_kind["heading"]
    assert note["locator"]["path"] == "notes/reverb.md" and note["locator"]["line"] == 3
    assert note["locator"]["file"] == str(tmp_path / "notes" / "reverb.md")
    assert note["locator_label"] == "notes/reverb.md › Pre-delay"
    pdf = (await SearchService().search("wavetable oscillator", db=db))["items"][0]
    assert pdf["locator"] == {"kind": "page", "path": "manuals/synth.pdf",
                              "file": str(tmp_path / "manuals" / "synth.pdf"),
                              "first_page": 14, "last_page": 15}
    assert pdf["locator_label"] == "p. 14–15"
    async with db.session() as session:
        page = await session.scalar(select(TechniquePage).where(TechniquePage.material_key == "youtube:abcDEF12345"))
        assert page.origin == "import" and page.slug == stored.page_slug
        records = list(await session.scalars(select(FileRecord).order_by(FileRecord.path)))
    assert len(records) == 4  # the video's two files, the PDF, the note
    assert {r.page_slug for r in records if r.material_key == "youtube:abcDEF12345"} == {stored.page_slug}


def note_about_video(tmp_path, vid="abcDEF12345") -> Material:
    """A note whose front matter names the video (`video_url`), with a `[00:12]` heading."""
    note = _file(tmp_path, "notes/on-the-video.md",
                 "---\nvideo_url: x\n---\n## [00:12] Pre-delay\nquxelish\n## [01:30] Decay\n1.2 s\n")
    return Material(
        kind="note", source=note, files=[note], content_hash=_hash([note]), key=f"note:{note}",
        creator_name="Me", creator_slug="me", creator_key=None, title="My notes on the video",
        summary="What I took from it.", tags=[], topic_category="General",
        sections=[MaterialSection("pre-delay", "Pre-delay", "quxelish: 30 ms of pre-delay.", "video",
                                  start_time=12.0, end_time=90.0, line=4),
                  MaterialSection("decay", "Decay", "A 1.2 s decay.", "video", start_time=90.0, line=6)],
        video=MaterialVideo(id=vid, title="My notes on the video",
                            url=f"https://www.youtube.com/watch?v={vid}"),
    )


async def _video_row(db, vid="abcDEF12345"):
    async with db.session() as session:
        video = await session.get(Video, vid)
        creator = await session.scalar(select(Creator.slug).where(Creator.id == video.creator_id))
        return video.title, creator, video.duration, video.url


async def test_a_note_naming_a_video_does_not_rewrite_it(db, tmp_path):
    # The note only points at the video: its title, channel and length stay the download's,
    # whichever of the two is imported first.
    await put(db, video_material(tmp_path))
    expected = await _video_row(db)
    assert expected == ("Reverb pre-delay explained", "mix-lab", 300.0,
                        "https://www.youtube.com/watch?v=abcDEF12345")
    await put(db, note_about_video(tmp_path), "notes/on-the-video.md")
    assert await _video_row(db) == expected
    note = (await SearchService().search("quxelish", db=db))["items"][0]
    assert note["locator"]["kind"] == "video" and note["video_title"] == "Reverb pre-delay explained"

    other = tmp_path / "other"
    await put(db, note_about_video(other, vid="zzzZZZ99999"), "notes/on-the-video.md")
    assert (await _video_row(db, "zzzZZZ99999"))[:2] == ("My notes on the video", "me")
    await put(db, video_material(other, vid="zzzZZZ99999", title="The real title"))
    assert (await _video_row(db, "zzzZZZ99999"))[:3] == ("The real title", "mix-lab", 300.0)


async def test_upload_date_stored_shown_and_updated(db, tmp_path):
    """info.json's upload_date reaches the video row, search items and the source detail;
    a changed info.json changes it, a note naming the video leaves it alone."""
    from tui.services.sources import source_detail

    async def day() -> str | None:
        async with db.session() as session:
            return (await session.get(Video, "abcDEF12345")).upload_date

    stored = await put(db, video_material(tmp_path))
    assert await day() == "2024-03-15"
    item = (await SearchService().search("pre-delay", db=db))["items"][0]
    assert item["locator"]["kind"] == "video" and item["video_upload_date"] == "2024-03-15"
    detail = await source_detail(db, stored.page_slug, "pre-delay")
    assert detail["video_upload_date"] == "2024-03-15"

    await put(db, note_about_video(tmp_path), "notes/on-the-video.md")  # no upload date
    assert await day() == "2024-03-15"

    again = await put(db, video_material(tmp_path, extra=" re-uploaded", upload_date="20250101"))
    assert again.outcome == "updated" and await day() == "2025-01-01"
    item = (await SearchService().search("pre-delay", db=db))["items"][0]
    assert item["video_upload_date"] == "2025-01-01"
    await put(db, video_material(tmp_path, extra=" no date", upload_date=None))
    assert await day() is None
    assert (await SearchService().search("pre-delay", db=db))["items"][0]["video_upload_date"] is None


async def test_a_note_naming_a_video_is_not_its_takers_transcript(db, tmp_path):
    from tui.db.distill_store import creator_transcripts

    await put(db, video_material(tmp_path))
    await put(db, note_about_video(tmp_path), "notes/on-the-video.md")
    transcripts, background = await creator_transcripts(db)
    assert set(transcripts) == {"mix-lab"}  # not "me", who wrote the note
    assert "quxelish: 30 ms of pre-delay." in background


async def test_changed_file_keeps_page_and_section_identity(db, tmp_path):
    first = await put(db, video_material(tmp_path))
    async with db.session() as session:
        before = {s.anchor: s.id for s in await session.scalars(select(Section))}
    changed = video_material(tmp_path, extra=" edited", sections=[
        ("pre-delay", "Pre-delay", "Pre-delay of 30 ms, rewritten.", 0.0, 100.0),
        ("tail", "The tail", "A new section about the tail.", 100.0, 245.5),
    ])
    again = await put(db, changed)
    assert again.outcome == "updated" and again.page_slug == first.page_slug
    async with db.session() as session:
        after = {s.anchor: s for s in await session.scalars(select(Section))}
        assert await session.scalar(select(TechniquePage.id).where(TechniquePage.slug == first.page_slug))
    assert set(after) == {"pre-delay", "tail"}
    assert after["pre-delay"].id == before["pre-delay"]  # a saved source still opens
    assert after["pre-delay"].end_time == 100.0
    assert (await SearchService().search("damping", db=db))["items"] == []
    assert (await SearchService().search("rewritten", db=db))["items"]


async def test_page_by_page_index_equals_a_rebuild(db, tmp_path):
    await put(db, video_material(tmp_path))
    await put(db, video_material(tmp_path, vid="zzzYYY98765", title="Sidechain kick and bass",
                                 channel="Other", channel_id="UCother", sections=[
        ("sidechain", "Sidechain", "The compressor on the bass keys from the kick: fast attack, "
         "150 ms release, reverb after.", 0.0, 90.0)]))
    await put(db, pdf_material(tmp_path), "manuals/synth.pdf")
    await put(db, note_material(tmp_path), "notes/reverb.md")
    await put(db, video_material(tmp_path, extra=" v2", sections=[
        ("pre-delay", "Pre-delay", "Pre-delay and diffusion, granular grain shimmer.", 0.0, 60.0)]))
    await store.remove_page(db, (await put(db, pdf_material(tmp_path), "x")).page_slug)
    incremental = await index_snapshot(db)
    async with db.engine.begin() as conn:
        await search_index.rebuild_index(conn)
    rebuilt = await index_snapshot(db)
    assert incremental == rebuilt
    assert incremental[3]["quxelish"][1] and incremental[3]["ladder filter"][1] == []
    assert incremental[3]["shimer"][0] == "fuzzy"  # the spelling vocabulary is right


async def test_two_channels_of_one_name_stay_apart(db, tmp_path):
    await put(db, video_material(tmp_path, vid="aaaaaaaaaaa", channel_id="UC1"))
    await put(db, video_material(tmp_path, vid="bbbbbbbbbbb", channel_id="UC2", title="Other video"))
    await put(db, video_material(tmp_path, vid="ccccccccccc", channel_id="UC1", title="Third"))
    async with db.session() as session:
        creators = {c.slug: (c.name, c.source_key) for c in await session.scalars(select(Creator))}
    assert creators == {"mix-lab": ("Mix Lab", "UC1"), "mix-lab-2": ("Mix Lab (2)", "UC2")}


async def test_unchanged_and_touched_files(db, tmp_path):
    m = video_material(tmp_path)
    await put(db, m)
    stats = store.stat_files(m.files)
    records = await store.records_for(db, [s.path for s in stats])
    assert store.unchanged(stats, records)
    import os

    os.utime(m.files[0], (1_000_000, 1_000_000))  # touched, same bytes
    stats = store.stat_files(m.files)
    assert not store.unchanged(stats, records)
    assert store.same_hash(stats, records, _hash(m.files))
    await store.touch_records(db, stats)
    assert store.unchanged(stats, await store.records_for(db, [s.path for s in stats]))


async def _counts(db):
    async with db.session() as session:
        out = {}
        for name, model in (("creators", Creator), ("videos", Video), ("pages", TechniquePage),
                            ("sections", Section), ("files", FileRecord)):
            out[name] = len(list(await session.scalars(select(model))))
    return out


async def test_remove_page_creator_file_exactly(db, tmp_path, mini_kb_path):
    await import_path(db, mini_kb_path)
    base = await _counts(db)
    v = await put(db, video_material(tmp_path))
    await put(db, video_material(tmp_path, vid="bbbbbbbbbbb", title="Second", channel_id="UCmixlab"))
    pdf = await put(db, pdf_material(tmp_path), "manuals/synth.pdf")
    note = note_material(tmp_path)
    await put(db, note, "notes/reverb.md")

    removed = await store.remove_page(db, v.page_slug)
    assert removed.pages == [v.page_slug] and removed.creators == []  # Mix Lab has another page
    assert len(removed.files) == 2
    removed = await store.remove_file(db, note.source)
    assert removed.creators == ["me"] and removed.files == [str(note.source)]
    assert await store.remove_file(db, tmp_path / "never-imported.md") is None
    removed = await store.remove_creator(db, "synth-co")
    assert removed.pages == [pdf.page_slug]
    removed = await store.remove_creator(db, "mix-lab")
    assert len(removed.pages) == 1
    assert await _counts(db) == base  # the mini KB, and nothing else, is left
    assert (await SearchService().search("pre-delay wavetable", db=db))["items"] == []
    assert (await SearchService().search("parallel compression", db=db))["items"]
    async with db.engine.connect() as conn:
        n = (await conn.execute(text(
            f"SELECT value FROM chrysopedia_meta WHERE key = '{search_index.META_DOC_COUNT}'"))).scalar_one()
    assert int(n) == base["sections"]


async def test_prune_removes_only_gone_files_under_the_roots(db, tmp_path):
    a = video_material(tmp_path / "a")
    b = note_material(tmp_path / "b")
    await put(db, a)
    await put(db, b)
    for f in a.files:
        f.unlink()
    for f in b.files:
        f.unlink()
    removed = await store.prune(db, [tmp_path / "a"], seen=set())
    assert len(removed.pages) == 1
    listing = await store.list_kb(db)
    assert [p["material_key"] for p in listing["pages"]] == [b.key]  # outside the root: kept


async def test_export_then_import_gives_the_same_kb(db_target, tmp_path, mini_kb_path):
    db = db_target.database()
    await db.init()
    out = tmp_path / "export.json"
    try:
        await import_path(db, mini_kb_path)
        await put(db, video_material(tmp_path))
        await put(db, pdf_material(tmp_path), "manuals/synth.pdf")
        await put(db, note_material(tmp_path), "notes/reverb.md")
        counts = await export_kb(db, out)
        stats = await gather_stats(db)
        before = await index_snapshot(db)
    finally:
        await db.dispose()
    assert counts["sections"] == stats["sections"]
    doc = json.loads(out.read_text())
    assert next(v for v in doc["videos"] if v["id"] == "abcDEF12345")["upload_date"] == "2024-03-15"
    assert all("upload_date" not in v for v in doc["videos"] if v["id"] != "abcDEF12345")
    pdf_page = next(t for t in doc["techniques"] if t["title"] == "Synth manual")
    assert pdf_page["sections"][0]["locator"] == {
        "kind": "page", "path": "manuals/synth.pdf", "file": str(tmp_path / "manuals" / "synth.pdf"),
        "first_page": 14, "last_page": 15}
    # An empty database on the same backend (scores differ between backends).
    from conftest import _pg_admin

    from tui.db.engine import Database

    schema = None
    if db_target.backend == "postgresql":
        schema = f"chrysopedia_test_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE SCHEMA "{schema}"')
        url = db_target.url.split("?")[0] + f"?schema={schema}"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    db2 = Database(url)
    await db2.init()
    try:
        await import_path(db2, out)
        assert await gather_stats(db2) == stats
        after = await index_snapshot(db2)
        assert after[3] == before[3]  # the same search results, scores included
        detail_locs = (await SearchService().search("quxelish", db=db2))["items"][0]["locator_label"]
        assert detail_locs == "notes/reverb.md › Pre-delay"
        video = (await SearchService().search("pre-delay", db=db2))["items"]
        assert {i["video_upload_date"] for i in video if i["source_video_id"] == "abcDEF12345"} \
            == {"2024-03-15"}
        async with db2.session() as session:
            assert (await session.get(Video, "abcDEF12345")).upload_date == "2024-03-15"
    finally:
        await db2.dispose()
        if schema:
            await _pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_demo_only_in_the_default_database(tmp_path, platformdirs_isolated):
    from tui.commands._common import open_database

    named = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}", data_dir=tmp_path / "d")
    db = await open_database(named)
    try:
        assert not await demo_loaded(db)
        assert (await gather_stats(db))["creators"] == 0
    finally:
        await db.dispose()
    env_named = load_settings(env={"CHRYSOPEDIA_DATABASE_URL": f"sqlite:///{tmp_path / 'env.db'}"})
    db = await open_database(env_named)
    try:
        assert not await demo_loaded(db)
    finally:
        await db.dispose()

    default = load_settings(env={})
    db = await open_database(default)
    try:
        assert await demo_loaded(db)
        removed = await remove_demo_kb(db)
        assert len(removed) >= 80
        stats = await gather_stats(db)
        assert stats["creators"] == 0 and stats["techniques"] == 0 and stats["videos"] == 0
        # Not re-added at the next start, nor when the bundled copy changes.
        assert await ensure_demo_kb(db, default) is None
        assert not await demo_loaded(db)
        # Asked for: back.
        assert await ensure_demo_kb(db, default, force=True) is not None
        assert await demo_loaded(db)
    finally:
        await db.dispose()


async def test_own_material_keeps_the_demo_out(tmp_path, platformdirs_isolated, mini_kb_path):
    from tui.commands._common import open_database

    default = load_settings(env={})
    db = await open_database(default)
    try:
        await import_path(db, mini_kb_path)
        await remove_demo_kb(db)
        assert await ensure_demo_kb(db, default) is None
        stats = await gather_stats(db)
        assert stats["creators"] == 2 and not await demo_loaded(db)
    finally:
        await db.dispose()


@pytest.fixture
def platformdirs_isolated(isolated_user_dirs):
    return isolated_user_dirs


def test_control_characters_left_in_a_material_are_refused(tmp_path):
    from tui.services.kb_import import control_problem

    m = note_material(tmp_path)
    assert control_problem(m) is None
    m.sections[1].heading = "Pre\x1b[31mdelay"
    assert control_problem(m) == "section heading: control character U+001B (not imported)"
    m.sections[1].heading = "Pre-delay"
    m.title = "evil\u202etxt.md"
    assert control_problem(m).startswith("title: control character U+202E")
