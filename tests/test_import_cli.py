"""`chrysopedia import PATH...` and `chrysopedia kb ...` as a user runs them, on SQLite and
PostgreSQL, over real files: yt-dlp downloads written as yt-dlp writes them (the bench
generator), Markdown notes, and files that must be refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.cli import main

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from ytdlp_material import build_video, generate  # noqa: E402


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("yt") / "downloads"
    generate(folder, 4, seed=7, words=600, minutes=4)
    return folder


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def notes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reverb.md").write_text(
        "---\ntitle: Reverb on vocals\ntags: [reverb]\n---\nWhy quxelish reverb matters.\n\n"
        "## Pre-delay\nA quxelish 30 ms pre-delay keeps the vocal in front.\n\n"
        "## Decay\nShort decays for fast songs.\n", encoding="utf-8")
    (folder / "drums.md").write_text("# Drums\n\n## Kick\nTune the kick to the key.\n", encoding="utf-8")
    return folder


def bad_files(folder: Path) -> list[str]:
    bad = folder / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "garbage.en.vtt").write_bytes(b"\x00\x01\x02 not subtitles at all \xff\xfe" * 20)
    (bad / "backwards.srt").write_text(
        "1\n00:00:05,000 --> 00:00:02,000\nthis cue ends before it starts\n", encoding="utf-8")
    return [str(bad / "garbage.en.vtt"), str(bad / "backwards.srt")]


def run(db_url: str, *argv: str, capsys) -> tuple[int, str, str]:
    code = main(["--db", db_url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def stats(db_url, capsys) -> dict:
    code, out, _ = run(db_url, "stats", "--json", capsys=capsys)
    assert code == 0
    return json.loads(out)


def test_folder_imports_the_good_files_and_lists_the_bad(db_target, tmp_path, downloads, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lib = _copy(downloads, tmp_path / "downloads")
    bad = bad_files(lib)
    notes(tmp_path / "notes")
    code, out, err = run(db_target.url, "import", "downloads", "notes", capsys=capsys)
    assert code == 1
    lines = err.splitlines()
    for path in bad:  # one line each, named as the user would type it
        rel = os.path.relpath(path)
        assert any(line.startswith(f"{rel}: ") for line in lines), (rel, err)
    assert "import: 6 added, 0 updated, 0 unchanged, 0 removed, 2 refused" in out
    s = stats(db_target.url, capsys)
    assert s["techniques"] == 6 and s["videos"] == 4 and s["demo"] is False

    # The locators: the note by its heading, the video by its time.
    code, out, _ = run(db_target.url, "search", "quxelish", "pre-delay", "--json", capsys=capsys)
    item = json.loads(out)["items"][0]
    assert item["locator"]["kind"] == "heading" and item["locator_label"] == "notes/reverb.md › Pre-delay"
    spoken = max(build_video(7, 0, words=600, minutes=4).sentences[0], key=len)
    code, out, _ = run(db_target.url, "search", spoken, "--json", capsys=capsys)
    video = next(i for i in json.loads(out)["items"] if i["locator"]["kind"] == "video")
    assert video["video_url"].startswith("https://www.youtube.com/watch?v=")
    assert "–" in video["locator_label"]
    assert video["video_upload_date"] == "2024-03-15"  # info.json's upload_date 20240315
    assert item["video_upload_date"] is None  # a note's section has no video

    # Again: nothing read, nothing written; --json says so.
    code, out, _ = run(db_target.url, "import", "downloads", "notes", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 1 and report["added"] == [] and report["updated"] == []
    assert len(report["unchanged"]) == 6 and len(report["refused"]) == 2
    assert {r["path"] for r in report["refused"]} == {str(Path(p).resolve()) for p in bad} or \
        {os.path.basename(r["path"]) for r in report["refused"]} == {"garbage.en.vtt", "backwards.srt"}
    assert stats(db_target.url, capsys) == s


def hostile_folder(lib: Path) -> dict[str, str]:
    """Good material and every kind of hostile file in ONE folder: {name: reason} of the bad."""
    from materials_fixtures import pdf_bytes, write_download

    lib.mkdir(parents=True)
    # good: a yt-dlp download (escape sequences and a bidi override in its title and channel:
    # stripped), a note, a manual with an outline, subtitles in cp1252 with CRLF
    write_download(lib, "Evil title [dQw4w9WgXcQ]", title="\x1b]0;owned\x07Pre-delay \x1b[31mtips\u202e",
                   channel="Mix\x1b[2J Desk", chapters=[{"start_time": 0, "end_time": 8, "title": "Intro"},
                                                       {"start_time": 8, "end_time": 15, "title": "Pre-delay"}])
    (lib / "reverb.md").write_text("## Pre-delay\nA quxelish 30 ms pre-delay.\n", encoding="utf-8")
    (lib / "synth.pdf").write_bytes(pdf_bytes(["Contents", "Filters\nThe zorblat ladder filter."],
                                              outline=[("Filters", 1)], author="Synth Co"))
    (lib / "lesson.srt").write_bytes("1\r\n00:00:01,000 --> 00:00:03,000\r\nCafé crème on the bus.\r\n"
                                     .encode("cp1252"))
    bad = {
        "garbage.en.vtt": "not a WebVTT file (no WEBVTT header)",
        "binary.vtt": "not a WebVTT file (binary data)",
        "truncated.srt": "not an SRT file (unreadable cue at line 5)",
        "backwards.vtt": "line 6: cue starts at 00:00:01.000, before the previous cue (00:00:05.000); "
                         "times go backwards",
        "inverted.srt": "cue 1: cue ends at 00:00:04.000, before it starts (00:00:05.000)",
        "longline.vtt": "line 4 is longer than 65536 characters",
        "huge.vtt": "file is 17 MiB, over the 16 MiB limit for subtitles",
        "loop": "symlink loop (leads back to a folder above it)",
        "dangling.md": "broken symlink (its target is missing)",
        "evil\x1b[31m.md": "its name holds a control character (U+001B); rename it to import it",
        "locked.pdf": "encrypted PDF (needs a password)",
        "cut.pdf": "truncated PDF (no %%EOF at the end)",
        "scan.pdf": "no extractable text (scanned? OCR is not supported)",
    }
    (lib / "garbage.en.vtt").write_bytes(bytes(range(256)) * 8)
    # binary junk behind a real header and cue: one "line" of bytes a latin-1 decoding would take
    (lib / "binary.vtt").write_bytes(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n"
                                     + bytes(b for b in range(256) if b != 10) * 8)
    (lib / "truncated.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n\n2\n00:00:03,0")
    (lib / "backwards.vtt").write_text("WEBVTT\n\n00:00:05.000 --> 00:00:06.000\nlate\n\n"
                                       "00:00:01.000 --> 00:00:02.000\nearly\n")
    (lib / "inverted.srt").write_text("1\n00:00:05,000 --> 00:00:04,000\nback\n")
    (lib / "longline.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n" + "a" * 2_000_000 + "\n")
    with open(lib / "huge.vtt", "wb") as f:  # sparse: nothing on disk, refused by its size
        f.write(b"WEBVTT\n\n")
        f.truncate(17 * 1024 * 1024)
    (lib / "loop").symlink_to(lib, target_is_directory=True)
    (lib / "dangling.md").symlink_to(lib / "gone.md")
    (lib / "evil\x1b[31m.md").write_text("## Gain\nRaise it.\n")
    (lib / "locked.pdf").write_bytes(pdf_bytes(["Secret"], user_password="pw", owner_password="o"))
    (lib / "cut.pdf").write_bytes(pdf_bytes(["Filters"] * 3)[:400])
    (lib / "scan.pdf").write_bytes(pdf_bytes(["", ""]))
    return bad


def test_every_hostile_file_is_refused_and_the_good_ones_beside_it_go_in(db_target, second_target, tmp_path,
                                                                          capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = hostile_folder(tmp_path / "lib")
    code, out, err = run(db_target.url, "import", "lib", capsys=capsys)
    assert code == 1
    lines = err.splitlines()
    for name, reason in bad.items():  # one line each: the path as typed, printable, and why
        shown = "".join(ch if ch.isprintable() else " " for ch in f"lib/{name}")
        assert f"{shown}: {reason}" in lines, (name, err)
    assert "Traceback" not in err and "\x1b" not in err + out
    assert "import: 4 added, 0 updated, 0 unchanged, 0 removed, 13 refused" in out
    s = stats(db_target.url, capsys)
    assert (s["techniques"], s["videos"], s["demo"]) == (4, 2, False)
    code, out, _ = run(db_target.url, "kb", "list", "--json", capsys=capsys)
    listing = json.loads(out)
    assert "Pre-delay tips" in {p["title"] for p in listing["pages"]}
    assert {c["name"] for c in listing["creators"]} == {"Mix Desk", "Synth Co", "lib"}

    # Everything that went in leaves again and comes back the same (no name that the KB
    # validator would refuse reached a locator).
    out_file = tmp_path / "export.json"
    assert run(db_target.url, "kb", "export", str(out_file), capsys=capsys)[0] == 0
    fresh = second_target.url
    code, _, err = run(fresh, "import", str(out_file), capsys=capsys)
    assert code == 0, err
    assert stats(fresh, capsys) == s
    for query in (["quxelish"], ["zorblat", "filter"], ["crème"]):
        want = json.loads(run(db_target.url, "search", *query, "--json", capsys=capsys)[1])["items"]
        got = json.loads(run(fresh, "search", *query, "--json", capsys=capsys)[1])["items"]
        assert want and [(i["technique_page_slug"], i["locator_label"]) for i in got] == \
            [(i["technique_page_slug"], i["locator_label"]) for i in want]


def test_strict_imports_nothing(db_target, tmp_path, downloads, capsys):
    lib = _copy(downloads, tmp_path / "downloads")
    bad_files(lib)
    code, out, err = run(db_target.url, "import", str(lib), "--strict", capsys=capsys)
    assert code == 1 and "--strict: nothing was imported" in err
    assert "garbage.en.vtt: " in err
    s = stats(db_target.url, capsys)
    assert s["techniques"] == 0 and s["creators"] == 0


def test_strict_checks_kb_documents_as_they_would_be_imported_one_after_another(db_target, tmp_path, capsys):
    # b.json names a creator that a.json (imported before it) brings: valid in that order
    folder = notes(tmp_path / "mixed")
    (folder / "a.json").write_text(json.dumps({"format": "chrysopedia.kb/1", "creators": [
        {"slug": "test-cy", "name": "Test Cy"}]}), encoding="utf-8")
    (folder / "b.json").write_text(json.dumps({"format": "chrysopedia.kb/1", "techniques": [
        {"slug": "cy-gain", "title": "Gain staging", "creator": "test-cy", "topic_category": "Mixing",
         "summary": "Leave headroom.", "sections": [{"anchor": "a", "heading": "Headroom",
                                                     "body": "Peak at -6 dBFS on every track."}]}]}),
        encoding="utf-8")
    code, out, err = run(db_target.url, "import", str(folder), "--strict", capsys=capsys)
    assert code == 0, err
    assert stats(db_target.url, capsys)["techniques"] == 3


def test_strict_refuses_a_bad_kb_document_beside_good_material(db_target, tmp_path, capsys):
    folder = notes(tmp_path / "mixed")
    (folder / "my-kb.json").write_text('{"format": "chrysopedia.kb/1", "creators": [{"slug": "BAD SLUG"}], '
                                       '"techniques": []}', encoding="utf-8")
    code, out, err = run(db_target.url, "import", str(folder), "--strict", capsys=capsys)
    assert code == 1 and "--strict: nothing was imported" in err
    assert "my-kb.json: creators[0].slug: 'BAD SLUG' is not a valid slug" in err
    assert stats(db_target.url, capsys)["techniques"] == 0


def test_changed_file_updates_its_page_and_prune_removes_gone_files(db_target, tmp_path, downloads, capsys):
    lib = _copy(downloads, tmp_path / "downloads")
    folder = notes(tmp_path / "notes")
    other = notes(tmp_path / "elsewhere")
    assert run(db_target.url, "import", str(lib), str(folder), str(other), capsys=capsys)[0] == 0
    code, out, _ = run(db_target.url, "kb", "list", "--json", capsys=capsys)
    before = json.loads(out)
    assert {p["origin"] for p in before["pages"]} == {"import"}
    assert len(before["files"]) == 4 * 2 + 4  # info.json + .vtt per video, and the notes

    (folder / "reverb.md").write_text("## Pre-delay\nNow 40 ms.\n", encoding="utf-8")
    code, out, _ = run(db_target.url, "import", str(lib), str(folder), "--json", capsys=capsys)
    report = json.loads(out)
    assert [Path(u["path"]).name for u in report["updated"]] == ["reverb.md"]
    assert len(report["unchanged"]) == 5
    code, out, _ = run(db_target.url, "kb", "list", "--json", capsys=capsys)
    after = json.loads(out)
    assert [p["slug"] for p in after["pages"]] == [p["slug"] for p in before["pages"]]  # stable

    vtt = next(lib.glob("*.en.vtt"))
    info = vtt.with_name(vtt.name.replace(".en.vtt", ".info.json"))
    vtt.unlink()
    info.unlink()
    (other / "drums.md").unlink()  # gone too, but not under the roots given: kept
    code, out, _ = run(db_target.url, "import", str(lib), str(folder), "--prune", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 0 and len(report["removed"]) == 1
    s = stats(db_target.url, capsys)
    assert s["techniques"] == len(before["pages"]) - 1 and s["videos"] == 3


def test_downloads_imported_before_v8_get_their_upload_day_at_the_next_import(
        db_target, tmp_path, downloads, capsys):
    """A v7 database knew its videos without their day: after the upgrade, the next import of
    the folder reads the downloads once more (same pages), the one after skips them again."""
    from sqlalchemy import text

    from tui.db.engine import set_meta

    lib = _copy(downloads, tmp_path / "downloads")
    folder = notes(tmp_path / "notes")
    assert run(db_target.url, "import", str(lib), str(folder), capsys=capsys)[0] == 0
    code, out, _ = run(db_target.url, "kb", "list", "--json", capsys=capsys)
    pages = [p["slug"] for p in json.loads(out)["pages"]]

    async def as_v7() -> None:  # as a v7 database was
        db = db_target.database()
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text("ALTER TABLE videos DROP COLUMN upload_date"))
                await set_meta(conn, "schema_version", "7")
        finally:
            await db.dispose()

    asyncio.run(as_v7())

    code, out, _ = run(db_target.url, "import", str(lib), str(folder), "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 0 and report["added"] == []
    assert sorted(Path(u["path"]).name for u in report["updated"]) == sorted(
        p.name for p in lib.glob("*.en.vtt"))
    assert sorted(Path(u).name for u in report["unchanged"]) == ["drums.md", "reverb.md"]
    code, out, _ = run(db_target.url, "kb", "list", "--json", capsys=capsys)
    listing = json.loads(out)
    assert [p["slug"] for p in listing["pages"]] == pages
    assert all(f["content_hash"] for f in listing["files"])
    spoken = max(build_video(7, 0, words=600, minutes=4).sentences[0], key=len)
    code, out, _ = run(db_target.url, "search", spoken, "--json", capsys=capsys)
    video = next(i for i in json.loads(out)["items"] if i["locator"]["kind"] == "video")
    assert video["video_upload_date"] == "2024-03-15"

    code, out, _ = run(db_target.url, "import", str(lib), str(folder), "--json", capsys=capsys)
    report = json.loads(out)
    assert report["updated"] == [] and len(report["unchanged"]) == 6


def test_kb_remove_and_list(db_target, tmp_path, downloads, capsys, mini_kb_path):
    lib = _copy(downloads, tmp_path / "downloads")
    folder = notes(tmp_path / "notes")
    assert run(db_target.url, "import", str(mini_kb_path), capsys=capsys)[0] == 0
    assert run(db_target.url, "import", str(lib), str(folder), capsys=capsys)[0] == 0
    code, out, _ = run(db_target.url, "kb", "list", "--json", capsys=capsys)
    listing = json.loads(out)
    origins = {p["slug"]: p["origin"] for p in listing["pages"]}
    assert origins["parallel-compression"] == "kb"
    code, out, _ = run(db_target.url, "kb", "list", capsys=capsys)
    assert "parallel-compression" in out and str(folder / "reverb.md") in out

    base = stats(db_target.url, capsys)
    code, out, _ = run(db_target.url, "kb", "remove", "--file", str(folder / "reverb.md"), "--json", capsys=capsys)
    assert code == 0 and len(json.loads(out)["pages"]) == 1
    assert stats(db_target.url, capsys)["techniques"] == base["techniques"] - 1
    code, out, _ = run(db_target.url, "kb", "remove", "--page", "parallel-compression", capsys=capsys)
    assert code == 0 and out.startswith("removed 1 page")
    creator = next(p["creator"] for p in listing["pages"] if p["material_key"]
                   and p["material_key"].startswith("youtube:"))
    n_creator = sum(p["creator"] == creator for p in listing["pages"])
    code, out, _ = run(db_target.url, "kb", "remove", "--creator", creator, "--json", capsys=capsys)
    assert code == 0 and len(json.loads(out)["pages"]) == n_creator
    assert stats(db_target.url, capsys)["techniques"] == base["techniques"] - 2 - n_creator
    code, _, err = run(db_target.url, "kb", "remove", "--page", "no-such-page", capsys=capsys)
    assert code == 1 and "no page 'no-such-page'" in err


def test_export_import_round_trip(db_target, second_target, tmp_path, downloads, capsys, mini_kb_path):
    lib = _copy(downloads, tmp_path / "downloads")
    folder = notes(tmp_path / "notes")
    assert run(db_target.url, "import", str(mini_kb_path), capsys=capsys)[0] == 0
    assert run(db_target.url, "import", str(lib), str(folder), capsys=capsys)[0] == 0
    out_file = tmp_path / "kb-export.json"
    code, out, _ = run(db_target.url, "kb", "export", str(out_file), capsys=capsys)
    assert code == 0 and out.startswith(f"wrote {out_file}")
    spoken = max(build_video(7, 0, words=600, minutes=4).sentences[0], key=len)
    queries = (["oscillator", "filter"], ["quxelish"], ["parallel", "compression"], ["gain", "staging"],
               [spoken])
    searches = [run(db_target.url, "search", *q, "--json", capsys=capsys)[1] for q in queries]
    # The downloads' upload day (info.json 20240315) is in the export and comes back with it.
    videos = json.loads(out_file.read_text(encoding="utf-8"))["videos"]
    downloaded = [v for v in videos if v.get("url", "").startswith("https://www.youtube.com/")]
    assert len(downloaded) == 4 and {v.get("upload_date") for v in downloaded} == {"2024-03-15"}
    assert "2024-03-15" in {i["video_upload_date"] for i in json.loads(searches[-1])["items"]}
    s = stats(db_target.url, capsys)
    # Into an empty database on the same backend (search results compare within a backend).
    fresh = second_target.url
    code, out, err = run(fresh, "import", str(out_file), capsys=capsys)
    assert code == 0, err
    assert stats(fresh, capsys) == s
    assert [run(fresh, "search", *q, "--json", capsys=capsys)[1] for q in queries] == searches


def test_a_fresh_named_database_gets_no_demo(db_target, capsys):
    s = stats(db_target.url, capsys)
    assert s["creators"] == 0 and s["techniques"] == 0 and s["demo"] is False
    code, out, _ = run(db_target.url, "import", "--demo", capsys=capsys)
    assert code == 0
    s = stats(db_target.url, capsys)
    assert s["demo"] is True and s["techniques"] >= 80
    code, out, _ = run(db_target.url, "stats", capsys=capsys)
    assert "demo pages are loaded" in out
    code, out, _ = run(db_target.url, "kb", "remove", "--demo", capsys=capsys)
    assert code == 0
    assert stats(db_target.url, capsys)["techniques"] == 0


def test_default_database_drops_the_demo_at_the_first_own_import(tmp_path, capsys):
    folder = notes(tmp_path / "notes")

    def default(*argv):
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = default("stats", "--json")
    assert json.loads(out)["demo"] is True
    code, out, _ = default("import", str(folder))
    assert code == 0 and "demo pages were removed" in out
    code, out, _ = default("stats", "--json")
    s = json.loads(out)
    assert s["demo"] is False and s["techniques"] == 2
    code, out, _ = default("kb", "remove", "--file", str(folder / "drums.md"))
    code, out, _ = default("kb", "remove", "--file", str(folder / "reverb.md"))
    code, out, _ = default("stats", "--json")  # empty again, and the demo stays away
    assert json.loads(out)["techniques"] == 0 and json.loads(out)["demo"] is False


def test_demo_pages_asked_for_stay_beside_the_users_material(tmp_path, capsys):
    folder = notes(tmp_path / "notes")

    def default(*argv):
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = default("kb", "remove", "--demo")
    assert code == 0
    code, out, _ = default("import", "--demo")  # asked for: back, and kept
    assert code == 0
    code, out, _ = default("import", str(folder))
    assert code == 0 and "demo pages were removed" not in out
    code, out, _ = default("stats", "--json")
    s = json.loads(out)
    assert s["demo"] is True and s["techniques"] >= 82
    # `kb remove --demo` ends the request: later imports find no demo to keep
    assert default("kb", "remove", "--demo")[0] == 0
    (folder / "drums.md").write_text("# Drums\n\n## Kick\nTune the kick to the song's key.\n", encoding="utf-8")
    code, out, _ = default("import", str(folder))
    assert code == 0 and "1 updated" in out
    code, out, _ = default("stats", "--json")
    assert json.loads(out)["demo"] is False and json.loads(out)["techniques"] == 2


def test_missing_path_and_no_path(tmp_path, capsys):
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    code, _, err = run(url, "import", str(tmp_path / "nope"), capsys=capsys)
    assert code == 1 and "nope: no such file or folder" in err and "Traceback" not in err
    code, _, err = run(url, "import", capsys=capsys)
    assert code == 2 and "give files or folders" in err


def test_ctrl_c_stops_between_files(tmp_path):
    folder = tmp_path / "many"
    generate(folder, 60, seed=3, words=1500, minutes=8)
    db = tmp_path / "kb.db"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "--db", f"sqlite:///{db}", "import", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 120
    imported = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                imported = conn.execute("SELECT count(*) FROM technique_pages").fetchone()[0]
        except sqlite3.OperationalError:
            imported = 0
        if imported >= 2:
            break
        time.sleep(0.05)
    assert imported >= 2 and proc.poll() is None, "the import ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: stopped between files" in err and "Traceback" not in err
    with sqlite3.connect(db) as conn:
        pages = conn.execute("SELECT count(*) FROM technique_pages").fetchone()[0]
        recorded = conn.execute("SELECT count(DISTINCT material_key) FROM kb_files").fetchone()[0]
        empty = conn.execute("SELECT count(*) FROM technique_pages p WHERE NOT EXISTS "
                             "(SELECT 1 FROM sections s WHERE s.page_id = p.id)").fetchone()[0]
    assert 0 < pages < 60 and recorded == pages and empty == 0  # whole files only
    # What was imported stays: the next run adds the rest.
    done = subprocess.run([sys.executable, "-m", "tui", "--db", f"sqlite:///{db}", "import", str(folder),
                           "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    report = json.loads(done.stdout)
    assert len(report["unchanged"]) == pages and len(report["added"]) == 60 - pages


def test_progress_on_a_terminal_and_only_the_report_otherwise(tmp_path, downloads):
    import pty

    url = f"sqlite:///{tmp_path / 'p.db'}"
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tui", "--db", url, "import", str(downloads)],
                            stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=ROOT,
                            env={**os.environ, "COLUMNS": "120", "TERM": "xterm-256color"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "importing" in screen and "sections" in screen  # the progress bar was drawn
    assert "import: 4 added" in screen
    # Not a terminal: the final report and nothing else.
    again = subprocess.run([sys.executable, "-m", "tui", "--db", url, "import", str(downloads)],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert again.stdout.splitlines() == ["import: 0 added, 0 updated, 4 unchanged, 0 removed, 0 refused "
                                         "(0 sections written)"]
    assert again.stderr == ""


def test_a_long_list_of_names_is_counted_not_printed_whole():
    from tui.commands._common import names

    assert names("measured profiles", ["a", "b"]) == "measured profiles: a, b"
    line = names("measured profiles", [f"channel-{i}" for i in range(1000)])
    assert line.startswith("measured profiles (1000): channel-0, channel-1,")
    assert "channel-8" not in line and "and 992 more" in line


def test_an_import_runs_at_a_lower_cpu_priority(tmp_path, downloads):
    """An import is a batch job: it lowers its own priority (CHRYSOPEDIA_IMPORT_NICE,
    default 10) so the terminals and browser sessions on the machine keep answering; the
    reader process it starts inherits it. A bad value is one line, exit 2."""
    lib = _copy(downloads, tmp_path / "downloads")
    base = os.getpriority(os.PRIO_PROCESS, 0)

    def imported(**env) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tui", "--db", f"sqlite:///{tmp_path / 'kb.db'}", "import",
             str(lib), "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300,
            env={k: v for k, v in {**os.environ, **env}.items() if v is not None})

    done = imported(CHRYSOPEDIA_IMPORT_NICE=None)  # the default
    assert json.loads(done.stdout)["nice"] == min(19, base + 10)
    done = imported(CHRYSOPEDIA_IMPORT_NICE="3")
    assert json.loads(done.stdout)["nice"] == min(19, base + 3)
    done = imported(CHRYSOPEDIA_IMPORT_NICE="high")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "import_nice" in done.stderr and "0 to 19" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_warning_about_info_json_names_the_info_json(tmp_path, capsys):
    from materials_fixtures import write_download

    subs, info_path = write_download(tmp_path / "yt", "Odd tags [oddtags0001]", video_id="oddtags0001",
                                     tags="not a list")
    code, out, err = run(f"sqlite:///{tmp_path / 'kb.db'}", "import", str(tmp_path / "yt"),
                         capsys=capsys)
    assert code == 0 and "1 added" in out
    warning = next(line for line in err.splitlines() if line.startswith("warning: "))
    assert warning.startswith(f"warning: {info_path}: tags: expected"), warning
    assert str(subs) not in warning


def test_a_file_broken_after_its_import_keeps_its_pages_and_says_so(db_target, tmp_path, capsys):
    notes(tmp_path / "notes")
    code, out, err = run(db_target.url, "import", str(tmp_path / "notes"), capsys=capsys)
    assert code == 0
    before = stats(db_target.url, capsys)["sections"]
    broken = tmp_path / "notes" / "reverb.md"
    broken.write_bytes(b"\x00\x01\x02 binary now \xff\xfe" * 50)
    code, out, err = run(db_target.url, "import", str(tmp_path / "notes"), "--prune", capsys=capsys)
    assert code == 1
    line = next(ln for ln in err.splitlines() if "reverb.md" in ln)
    assert line.endswith("; what an earlier import read from it stays"), line
    assert stats(db_target.url, capsys)["sections"] == before  # nothing lost, nothing pruned
    # A new broken file has no earlier import to keep.
    (tmp_path / "notes" / "new.md").write_bytes(b"\x00\x01\x02 binary \xff" * 50)
    code, out, err = run(db_target.url, "import", str(tmp_path / "notes"), capsys=capsys)
    line = next(ln for ln in err.splitlines() if "new.md" in ln)
    assert "earlier import" not in line
