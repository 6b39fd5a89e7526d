"""Knowledge-base import on SQLite and PostgreSQL: valid, invalid, idempotent, all-or-nothing."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from tui.commands.kb import gather_stats
from tui.db.importer import import_path
from tui.db.kb_format import KBFormatError, validate_document
from tui.db.models import Creator, Section


def load(path):
    return json.loads(path.read_text())


def dump(tmp_path, doc, name="kb.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


async def test_valid_import_counts_and_idempotent(db, mini_kb_path):
    report = await import_path(db, mini_kb_path)
    assert report.added == {"creators": 2, "videos": 2, "techniques": 3, "sections": 4}
    stats = await gather_stats(db)
    assert stats == {"creators": 2, "videos": 2, "techniques": 3, "sections": 4,
                     "conversations": 0, "usage": 0, "distilled": 0}
    again = await import_path(db, mini_kb_path)
    assert not again.changed
    assert again.unchanged == {"creators": 2, "videos": 2, "techniques": 3, "sections": 4}
    assert await gather_stats(db) == stats


async def test_newer_file_updates_in_place(db, mini_kb_path, tmp_path):
    await import_path(db, mini_kb_path)
    doc = load(mini_kb_path)
    doc["techniques"][0]["sections"][0]["heading"] = "Setting up the parallel send"
    doc["techniques"][0]["sections"].pop()  # the 'blend' section is gone in the new version
    doc["creators"][1]["bio"] = "Now with a bio."
    report = await import_path(db, dump(tmp_path, doc))
    assert report.updated["sections"] == 1 and report.removed["sections"] == 1
    assert report.updated["creators"] == 1 and report.unchanged["creators"] == 1
    async with db.session() as s:
        headings = (await s.scalars(select(Section.heading).order_by(Section.id))).all()
        assert "Setting up the parallel send" in headings and "Blending" not in headings
        bo = await s.scalar(select(Creator).where(Creator.slug == "test-bo"))
        assert bo.bio == "Now with a bio."


def _break(doc, how):
    if how == "unknown video":
        doc["techniques"][1]["sections"][0]["video"] = "vid-9"
        return "techniques[1].sections[0].video: unknown video 'vid-9'"
    if how == "unknown creator":
        doc["videos"][0]["creator"] = "nobody"
        return "videos[0].creator: unknown creator 'nobody'"
    if how == "bad slug":
        doc["techniques"][0]["slug"] = "Bad Slug!"
        return "techniques[0].slug:"
    if how == "missing title":
        del doc["techniques"][2]["title"]
        return "techniques[2].title: required"
    if how == "duplicate anchor":
        doc["techniques"][0]["sections"][1]["anchor"] = "setup"
        return "techniques[0].sections[1].anchor: duplicate 'setup'"
    if how == "end before start":
        doc["techniques"][0]["sections"][0]["end_time"] = 10
        return "techniques[0].sections[0].end_time: must be greater"
    if how == "negative duration":
        doc["videos"][1]["duration"] = -5
        return "videos[1].duration:"
    if how == "upload date not a day":
        doc["videos"][0]["upload_date"] = "2024-02-30"
        return "videos[0].upload_date: expected a day as YYYY-MM-DD, got '2024-02-30'"
    if how == "upload date as yt-dlp writes it":
        doc["videos"][1]["upload_date"] = "20240315"
        return "videos[1].upload_date: expected a day as YYYY-MM-DD"
    if how == "upload date not a string":
        doc["videos"][1]["upload_date"] = 20240315
        return "videos[1].upload_date: expected a string, got int"
    if how == "no sections":
        doc["techniques"][1]["sections"] = []
        return "techniques[1].sections: required"
    if how == "bad url":
        doc["videos"][1]["url"] = "javascript:alert(1)"
        return "videos[1].url: only http(s)"
    if how == "control character":
        doc["techniques"][0]["sections"][0]["body"] = "hello \x1b]0;pwned\x07 world"
        return "techniques[0].sections[0].body: control character U+001B"
    if how == "bidi override":
        doc["techniques"][0]["title"] = "abc\u202edcba"
        return "techniques[0].title: control character U+202E"
    if how == "duplicate creator name":
        doc["creators"][1]["name"] = "Test Ada"
        return "creators[1].name: duplicate 'Test Ada'"
    if how == "wrong format":
        doc["format"] = "chrysopedia.kb/0"
        return "format: expected 'chrysopedia.kb/1'"
    raise AssertionError(how)


BREAKS = ["unknown video", "unknown creator", "bad slug", "missing title", "duplicate anchor",
          "end before start", "negative duration", "no sections", "bad url", "control character",
          "bidi override", "duplicate creator name", "wrong format", "upload date not a day",
          "upload date as yt-dlp writes it", "upload date not a string"]


@pytest.mark.parametrize("how", BREAKS)
async def test_invalid_document_refused_whole(db, mini_kb_path, tmp_path, how):
    await import_path(db, mini_kb_path)
    before = await gather_stats(db)
    doc = load(mini_kb_path)
    # The broken document also carries valid changes: none of them may land.
    doc["creators"].append({"slug": "new-one", "name": "New One"})
    doc["techniques"][0]["summary"] = "changed summary"
    expected = _break(doc, how)
    with pytest.raises(KBFormatError) as err:
        await import_path(db, dump(tmp_path, doc))
    assert any(expected in p for p in err.value.problems), err.value.problems
    assert await gather_stats(db) == before
    async with db.session() as s:
        assert await s.scalar(select(Creator).where(Creator.slug == "new-one")) is None


async def test_upload_date_read_and_updated(db, mini_kb_path, tmp_path):
    """A video's optional upload_date goes in, a newer file changes it; files without one
    (every older one) stay valid."""
    from tui.db.models import Video

    await import_path(db, mini_kb_path)
    doc = load(mini_kb_path)
    doc["videos"][0]["upload_date"] = "2024-03-15"
    report = await import_path(db, dump(tmp_path, doc))
    assert report.updated["videos"] == 1 and report.unchanged["videos"] == 1
    async with db.session() as s:
        days = {v.id: v.upload_date for v in await s.scalars(select(Video))}
    assert days == {doc["videos"][0]["id"]: "2024-03-15", doc["videos"][1]["id"]: None}


async def test_every_problem_is_listed(db, mini_kb_path, tmp_path):
    doc = load(mini_kb_path)
    for how in ("unknown video", "bad slug", "missing title", "bad url"):
        _break(doc, how)
    with pytest.raises(KBFormatError) as err:
        await import_path(db, dump(tmp_path, doc))
    assert len(err.value.problems) >= 4
    assert await gather_stats(db) == dict.fromkeys(
        ["creators", "videos", "techniques", "sections", "conversations", "usage", "distilled"], 0)


async def test_name_taken_by_other_creator_in_database(db, mini_kb_path, tmp_path):
    await import_path(db, mini_kb_path)
    doc = {"format": "chrysopedia.kb/1", "creators": [{"slug": "impostor", "name": "Test Ada"}]}
    with pytest.raises(KBFormatError, match="already belongs to creator 'test-ada'"):
        await import_path(db, dump(tmp_path, doc))


async def test_folder_merges_in_name_order_and_labels_problems(db, mini_kb_path, tmp_path):
    doc = load(mini_kb_path)
    folder = tmp_path / "kb"
    folder.mkdir()
    dump(folder, {"format": "chrysopedia.kb/1", "creators": doc["creators"]}, "01-creators.json")
    dump(folder, {"format": "chrysopedia.kb/1", "videos": doc["videos"],
                  "techniques": doc["techniques"]}, "02-pages.json")
    report = await import_path(db, folder)
    assert report.added["sections"] == 4
    broken = copy.deepcopy(doc["techniques"])
    broken[0]["sections"][0]["video"] = "vid-9"
    dump(folder, {"format": "chrysopedia.kb/1", "techniques": broken}, "03-more.json")
    with pytest.raises(KBFormatError) as err:
        await import_path(db, folder)
    assert "03-more.json: techniques[0].sections[0].video: unknown video 'vid-9'" in err.value.problems


async def test_later_document_may_refer_to_records_in_the_database(db, mini_kb_path, tmp_path):
    await import_path(db, mini_kb_path)
    page = {"slug": "new-page", "title": "New", "creator": "test-bo", "topic_category": "Sampling",
            "summary": "s", "sections": [{"anchor": "a", "heading": "h", "body": "b", "video": "bo-v1",
                                          "start_time": 1, "end_time": 2}]}
    report = await import_path(db, dump(tmp_path, {"format": "chrysopedia.kb/1", "techniques": [page]}))
    assert report.added["techniques"] == 1


async def test_profile_with_wrong_types_warns_and_imports(db, mini_kb_path, tmp_path):
    doc = load(mini_kb_path)
    profile = doc["creators"][0]["personality_profile"]
    profile["tone"]["descriptors"] = "not a list"
    profile["style_markers"]["uses_analogies"] = "yes"
    profile["vocabulary"] = None
    profile["extra_key"] = {"kept": True}
    report = await import_path(db, dump(tmp_path, doc))
    assert any("tone.descriptors" in w for w in report.warnings)
    assert any("uses_analogies" in w for w in report.warnings)
    async with db.session() as s:
        ada = await s.scalar(select(Creator).where(Creator.slug == "test-ada"))
        assert "descriptors" not in ada.personality_profile["tone"]
        assert ada.personality_profile["extra_key"] == {"kept": True}
        assert ada.personality_profile["tone"]["energy"] == "low"


@pytest.mark.parametrize("content, fragment", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
])
async def test_unreadable_documents(db, tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(KBFormatError) as err:
        await import_path(db, path)
    assert fragment in err.value.problems[0]


async def test_oversized_file_refused_without_reading(db, tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:  # sparse: 200 MB on paper, nothing on disk
        f.truncate(200 * 1024 * 1024)
    with pytest.raises(KBFormatError, match="over the 64 MiB limit"):
        await import_path(db, path)


def test_validate_document_on_dict(mini_kb_path):
    assert validate_document(load(mini_kb_path)) == []
    assert validate_document([]) == ["(document): expected a JSON object"]


def _cli(db_target, *args):
    env = dict(os.environ, CHRYSOPEDIA_DATABASE_URL=db_target.url)
    return subprocess.run([sys.executable, "-m", "tui", *args], capture_output=True, text=True,
                          env=env, timeout=180)


async def test_cli_import_and_stats(db_target, mini_kb_path, tmp_path):
    r = _cli(db_target, "import", str(mini_kb_path))
    assert r.returncode == 0, r.stderr
    assert "added" in r.stdout
    r = _cli(db_target, "stats", "--json")
    stats = json.loads(r.stdout)
    assert set(stats) == {"creators", "videos", "techniques", "sections", "conversations", "usage",
                          "distilled", "demo"}
    # A database named by CHRYSOPEDIA_DATABASE_URL gets no demo pages: the mini KB alone.
    assert stats["creators"] == 2 and stats["sections"] >= 4 and stats["demo"] is False
    doc = load(mini_kb_path)
    _break(doc, "unknown video")
    r2 = _cli(db_target, "import", str(dump(tmp_path, doc)))
    assert r2.returncode == 1
    assert "techniques[1].sections[0].video: unknown video 'vid-9'" in r2.stderr
    assert "Traceback" not in r2.stderr
    assert json.loads(_cli(db_target, "stats", "--json").stdout) == stats
