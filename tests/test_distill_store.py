"""`chrysopedia distill` over imported yt-dlp downloads, on SQLite and PostgreSQL.

The downloads are written as yt-dlp leaves them (rolling auto-captions + info.json),
imported with `chrysopedia import`, and distilled against the loopback model server.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from fixtures_llm import TEST_API_KEY
from sqlalchemy import func, select
from test_distill import PROFILE, SAID, VALID, page

from tui.cli import main
from tui.db.distill_store import load_transcripts, raw_for_section
from tui.db.models import ChatUsageLog, Creator, DistilledLink, TechniquePage
from tui.db.models import Video as VideoRow

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from ytdlp_material import Video, write_video  # noqa: E402

TITLE = "SMASH your drums"
OTHER = "Reverb that sits"
OTHER_SAID = [
    (0.0, 8.0, "today a quick one on reverb for vocals that sits behind the mix"),
    (8.0, 18.0, "put a plate on a send and set the decay to about 1.2 seconds"),
    (18.0, 30.0, "set the pre delay to 40 milliseconds so the words stay clear"),
    (30.0, 44.0, "then high pass the reverb return at 300 hertz to keep the low end clean"),
    (44.0, 58.0, "and duck the reverb with a compressor keyed from the dry vocal"),
]


def video(vid: str, title: str, said, duration: float) -> Video:
    sentences, times = [], []
    for start, end, text in said:
        words = text.split()
        step = (end - start - 0.6) / len(words)
        sentences.append(words)
        times.append([round(start + i * step, 3) for i in range(len(words))])
    return Video(vid, title, "Kaito Beats", "UCkaito0000000000000000", "Mixing", sentences,
                 times, duration, None, [])


def downloads(folder: Path, extra: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder, video("drumbus0001", TITLE, SAID, 240.0))
    write_video(folder, video("reverb00001", OTHER, OTHER_SAID, 60.0))
    for i in range(extra):
        write_video(folder, video(f"drumbus{i + 2:04d}", f"{TITLE} part {i + 2}", SAID, 240.0))
    return folder


def run(url: str, *argv: str, capsys) -> tuple[int, str, str]:
    code = main(["--db", url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def model_env(monkeypatch, tmp_path, fake_llm):
    monkeypatch.setenv("CHRYSOPEDIA_LLM_API_URL", fake_llm.url)
    monkeypatch.setenv("CHRYSOPEDIA_LLM_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("CHRYSOPEDIA_LLM_MODEL", "primary-model")
    monkeypatch.setenv("CHRYSOPEDIA_DATA_DIR", str(tmp_path / "data"))
    return fake_llm


def routes(bad_other: bool = False):
    other = page(section0={"body": "Use a plate reverb with a long pre-delay and shimmer on "
                                   "the vocal, automate the wet signal and widen the image."})
    return [
        [f"Video: {TITLE}\n", json.dumps(VALID)],
        [f"Video: {OTHER}\n", json.dumps(other if bad_other else VALID)],
        ["Creator: Kaito Beats\n", json.dumps(PROFILE)],
    ]


async def _query(db_target, fn):
    db = db_target.database()
    try:
        return await fn(db)
    finally:
        await db.dispose()


def search(url, query, capsys):
    code, out, _ = run(url, "search", query, "--json", capsys=capsys)
    assert code == 0
    return json.loads(out)["items"]


def test_distilled_pages_replace_the_transcript_in_search_and_keep_the_video_second(
        db_target, tmp_path, model_env, capsys):
    url = db_target.url
    code, out, err = run(url, "import", str(downloads(tmp_path / "yt")), "--json", capsys=capsys)
    assert code == 0, err
    before = search(url, "gain reduction threshold", capsys)
    assert before and before[0]["title"] == TITLE  # the raw transcript page

    model_env.set_mode("normal", routes=routes(bad_other=True))
    code, out, err = run(url, "distill", "--all", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 1  # one page was kept raw, and said so
    assert len(report["distilled"]) == 1 and report["model"] == "primary-model"
    (rejected,) = report["rejected"]
    assert any("not supported by its range" in r for r in rejected["reasons"])
    assert len(model_env.chat_requests) == 1 + 2 + 1  # a retry for the bad page, one profile

    items = search(url, "gain reduction threshold", capsys)
    assert items[0]["title"] == "Parallel compression on the drum bus"
    assert items[0]["technique_page_slug"] == report["distilled"][0]
    assert (items[0]["start_time"], items[0]["end_time"]) == (60.0, 118.0)
    assert items[0]["video_url"] == "https://www.youtube.com/watch?v=drumbus0001"
    assert all(i["title"] != TITLE for i in items)  # the raw page is out of search
    # The rejected page's transcript still answers.
    assert any(i["title"] == OTHER for i in search(url, "pre delay plate reverb", capsys))

    async def check(db):
        raw = await raw_for_section(db, report["distilled"][0], items[0]["section_anchor"])
        assert raw["label"] == "from the transcript, 01:00–01:58"  # as the sidebar writes times
        from tui.services.sources import source_detail  # what the source detail screen is given

        detail = await source_detail(db, report["distilled"][0], items[0]["section_anchor"])
        assert detail["raw"]["label"] == raw["label"] and detail["raw"]["text"] == raw["text"]
        assert "gain reduction" in " ".join(s["body"] for s in raw["sections"])
        # The text is the range's own sentences (1:00-1:58), re-read from the imported
        # files, not the whole raw sections around it.
        assert "threshold down" in raw["text"] and "pull the hats send down" in raw["text"]
        assert "everybody" not in raw["text"] and "80 hertz" not in raw["text"]
        assert "everybody" in " ".join(s["body"] for s in raw["sections"])  # what it was
        # Each sentence of the distilled section, with the transcript's words behind it.
        assert [i["status"] for i in raw["support"]] == ["supported"] * 3
        first = raw["support"][0]
        assert "gain reduction" in raw["text"][first["span"][0]:first["span"][1]]
        async with db.session() as session:
            purposes = list((await session.execute(select(ChatUsageLog.purpose))).scalars())
            kaito = await session.scalar(select(Creator).where(Creator.slug == "kaito-beats"))
            raw_pages = await session.scalar(select(func.count()).select_from(TechniquePage)
                                             .where(TechniquePage.origin == "import"))
        assert purposes == ["distill"] * 4
        assert raw_pages == 2  # nothing raw lost
        # The semantic side too: the distilled page's sections have vectors, and the raw
        # page's are left out of the matrix search scores.
        from sqlalchemy import text

        from tui.db import vectors

        async with db.engine.connect() as conn:
            pages = {r[3] for r in (await conn.execute(
                text(vectors.MATRIX_ROWS), {"m": vectors.LOCAL_MODEL})).all()}
            distilled_id, raw_id = (await conn.execute(text(
                "SELECT page_id, raw_page_id FROM distilled_pages"))).one()
        assert distilled_id in pages and raw_id not in pages
        prof = kaito.personality_profile
        assert prof["tone"]["energy"] == "high" and prof["_source"]["energy"] == "model"
        assert "Let's get weird with it" not in prof["vocabulary"]["signature_phrases"]
    asyncio.run(_query(db_target, check))
    assert any("Let's get weird with it" in p for p in report["profiles"]["problems"])

    # Again: nothing is asked (the distilled page is current; the rejection is cached).
    code, out, _ = run(url, "distill", "--all", "--json", capsys=capsys)
    again = json.loads(out)
    assert len(model_env.chat_requests) == 4
    assert again["unchanged"] == report["distilled"] and again["cached"] == 1

    # An index rebuild leaves the raw page out (its distilled page answers for it).
    async def rebuild(db):
        from tui.db import search_index

        async with db.engine.begin() as conn:
            await search_index.rebuild_index(conn)
    asyncio.run(_query(db_target, rebuild))
    assert all(i["title"] != TITLE for i in search(url, "gain reduction threshold", capsys))
    # So does a re-import of a touched file (the same words: the distilled page still holds).
    vtt = next((tmp_path / "yt").glob("SMASH*.vtt"))
    vtt.write_text(vtt.read_text() + "\n")
    assert run(url, "import", str(tmp_path / "yt"), capsys=capsys)[0] == 0
    assert all(i["title"] != TITLE for i in search(url, "gain reduction threshold", capsys))
    assert run(url, "distill", "--all", capsys=capsys)[0] == 1  # the rejected page, still
    assert len(model_env.chat_requests) == 4
    # Removing the transcript's file removes its distilled page too, and the video nothing
    # cites any more; the index stays whole (FTS5 told to forget a row it never had
    # corrupts itself).
    code, out, err = run(url, "kb", "remove", "--file", str(vtt), "--json", capsys=capsys)
    assert code == 0, err
    gone = json.loads(out)["pages"]
    assert report["distilled"][0] in gone and len(gone) == 2  # the transcript and its distilled page
    if db_target.backend == "sqlite":
        async def integrity(db):
            from sqlalchemy import text

            async with db.engine.begin() as conn:
                for table in ("search_fts", "search_head"):
                    await conn.execute(text(f"INSERT INTO {table}({table}) VALUES('integrity-check')"))
        asyncio.run(_query(db_target, integrity))
    assert search(url, "pre delay plate reverb", capsys)
    assert not any(i["title"].startswith("Parallel compression")
                   for i in search(url, "gain reduction threshold", capsys))

    async def pages(db):
        async with db.session() as session:
            return (list(await session.scalars(select(TechniquePage.origin).order_by(TechniquePage.id))),
                    list(await session.scalars(select(VideoRow.id).order_by(VideoRow.id))))
    assert asyncio.run(_query(db_target, pages)) == (["import"], ["reverb00001"])


def test_without_a_model_profiles_are_measured_and_pages_stay(db_target, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHRYSOPEDIA_DATA_DIR", str(tmp_path / "data"))
    url = db_target.url
    assert run(url, "import", str(downloads(tmp_path / "yt")), capsys=capsys)[0] == 0
    code, out, err = run(url, "distill", "--creator", "kaito-beats", capsys=capsys)
    assert code == 0, err
    assert "no model is configured" in out and "kaito-beats" in out

    async def check(db):
        raws = await load_transcripts(db)
        # Sentences re-read from the unchanged files (their own times), the sections otherwise.
        assert [r.sentences_from for r in raws] == ["file", "file"]
        drums = next(r for r in raws if r.transcript.title == TITLE)
        assert drums.transcript.sentences[0].text.startswith("What's up everybody")
        assert len(drums.transcript.sentences) == 8  # the reader's sentences, not 2-3 sections
        vtt = next((tmp_path / "yt").glob("SMASH*.vtt"))
        vtt.write_text(vtt.read_text() + "\n")
        assert {r.transcript.title: r.sentences_from for r in await load_transcripts(db)} == {
            TITLE: "sections", OTHER: "file"}
        async with db.session() as session:
            prof = await session.scalar(select(Creator.personality_profile)
                                        .where(Creator.slug == "kaito-beats"))
            links = await session.scalar(select(func.count()).select_from(DistilledLink))
        assert links == 0
        assert prof["_source"].get("energy") == "measured"
        assert "summary" not in prof and "teaching_style" not in prof.get("tone", {})
    asyncio.run(_query(db_target, check))


def test_bad_arguments_are_one_line(tmp_path, capsys):
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    # Nothing imported yet: said so, not "profiles were measured".
    code, out, _ = run(url, "distill", "--all", capsys=capsys)
    assert code == 0 and out.startswith("nothing to distill: no imported transcripts")
    assert "measured" not in out
    code, _, err = run(url, "distill", capsys=capsys)
    assert code == 2 and "say what to distill" in err
    code, _, err = run(url, "distill", "--all", "--concurrency", "0", capsys=capsys)
    assert code == 2 and "--concurrency must be from 1 to 32" in err
    code, _, err = run(url, "distill", "--page", "nope", capsys=capsys)
    assert code == 2 and "no imported transcript page 'nope'" in err and "Traceback" not in err


def test_a_run_killed_halfway_resumes_without_a_page_twice(db_target, tmp_path, capsys, monkeypatch):
    url = db_target.url
    folder = downloads(tmp_path / "yt", extra=2)
    env = dict(os.environ, CHRYSOPEDIA_DATA_DIR=str(tmp_path / "data"),
               CHRYSOPEDIA_LLM_API_KEY=TEST_API_KEY, CHRYSOPEDIA_LLM_MODEL="primary-model")
    assert run(url, "import", str(folder), capsys=capsys)[0] == 0
    titles = [TITLE, f"{TITLE} part 2", f"{TITLE} part 3", OTHER]
    with FakeOpenAI(routes=[[f"Video: {t}\n", json.dumps(VALID if "SMASH" in t else page())]
                            for t in titles] + [["Creator: ", json.dumps(PROFILE)]],
                    delay=0.8) as srv:
        env["CHRYSOPEDIA_LLM_API_URL"] = srv.url
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui", "--db", url, "distill", "--all", "--concurrency", "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def stored(db):
            async with db.session() as session:
                return await session.scalar(select(func.count()).select_from(DistilledLink))

        deadline = time.monotonic() + 60
        while asyncio.run(_query(db_target, stored)) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        done_before = asyncio.run(_query(db_target, stored))
        assert 1 <= done_before < 4
        asked_before = len(srv.chat_requests)

        for key in ("CHRYSOPEDIA_DATA_DIR", "CHRYSOPEDIA_LLM_API_URL", "CHRYSOPEDIA_LLM_API_KEY",
                    "CHRYSOPEDIA_LLM_MODEL"):
            monkeypatch.setenv(key, env[key])
        code, out, err = run(url, "distill", "--all", "--json", capsys=capsys)
        report = json.loads(out)
        assert len(report["unchanged"]) == done_before
        assert len(report["distilled"]) + len(report["rejected"]) == 4 - done_before
        pages_asked = [r for r in srv.chat_requests[asked_before:]
                       if "Creator: " not in json.dumps(r.body)]
        # Only the pages not stored were asked (the one in flight at the kill again).
        assert len(pages_asked) <= 2 * (4 - done_before)

    async def counts(db):
        async with db.session() as session:
            links = await session.scalar(select(func.count()).select_from(DistilledLink))
            distilled = await session.scalar(select(func.count()).select_from(TechniquePage)
                                             .where(TechniquePage.origin == "distilled"))
        return links, distilled
    links, distilled = asyncio.run(_query(db_target, counts))
    assert links == distilled == 4 - len(report["rejected"])


def test_ctrl_c_keeps_the_finished_pages_and_says_so(tmp_path, capsys):
    url = f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
    folder = downloads(tmp_path / "yt", extra=2)
    assert run(url, "import", str(folder), capsys=capsys)[0] == 0
    titles = [TITLE, f"{TITLE} part 2", f"{TITLE} part 3"]

    class Target:
        def database(self):
            from tui.db.engine import Database

            return Database(url)

    async def count(db):
        async with db.session() as session:
            return (await session.scalar(select(func.count()).select_from(DistilledLink)),
                    await session.scalar(select(func.count()).select_from(TechniquePage)
                                         .where(TechniquePage.origin == "distilled")))

    with FakeOpenAI(routes=[[f"Video: {t}\n", json.dumps(VALID)] for t in titles], delay=0.8) as srv:
        env = dict(os.environ, CHRYSOPEDIA_DATA_DIR=str(tmp_path / "data"), CHRYSOPEDIA_LLM_API_URL=srv.url,
                   CHRYSOPEDIA_LLM_API_KEY=TEST_API_KEY, CHRYSOPEDIA_LLM_MODEL="primary-model")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tui", "--db", url, "distill", "--all", "--concurrency", "1"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while asyncio.run(_query(Target(), count))[0] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted: the pages finished so far are stored" in err and "Traceback" not in err
    links, pages = asyncio.run(_query(Target(), count))
    assert 1 <= links == pages < 3
    assert out.startswith(f"{links} pages distilled")


def test_model_text_with_escape_sequences_is_stored_clean(tmp_path, model_env, capsys):
    url = f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
    assert run(url, "import", str(downloads(tmp_path / "yt")), capsys=capsys)[0] == 0
    hostile = page(title="Parallel \x1b[31mcompression\x1b[0m\u202e on the drum bus",
                   section1={"heading": "Crush \x1b]0;owned\x07it"})
    model_env.set_mode("normal", routes=[[f"Video: {TITLE}\n", json.dumps(hostile)]])
    code, out, err = run(url, "kb", "list", "--json", capsys=capsys)
    slug = next(p["slug"] for p in json.loads(out)["pages"] if p["title"] == TITLE)
    code, out, err = run(url, "distill", "--page", slug, "--json", capsys=capsys)
    assert json.loads(out)["distilled"], err
    items = search(url, "gain reduction threshold", capsys)
    assert items[0]["title"] == "Parallel compression on the drum bus"
    assert items[0]["section_heading"] == "Crush it"


KNOWLEDGE = ("creators", "videos", "techniques", "sections", "distilled")


def test_import_distill_then_export_and_import_gives_the_same_search(db_target, tmp_path, model_env, capsys):
    url = db_target.url
    model_env.set_mode("normal", routes=routes(bad_other=True))
    code, out, err = run(url, "import", str(downloads(tmp_path / "yt")), "--distill",
                         "--concurrency", "2", "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 1, err  # one transcript was kept raw, and the report says why
    assert len(report["added"]) == 2 and report["profiles"]["measured"] == []
    distill = report["distill"]
    assert distill["model"] == "primary-model" and len(distill["distilled"]) == 1
    assert len(distill["rejected"]) == 1 and distill["profiles"]["measured"] == ["kaito-beats"]
    (slug,) = distill["distilled"]
    asked = len(model_env.chat_requests)
    # Nothing new: nothing distilled, nothing asked.
    code, out, err = run(url, "import", str(tmp_path / "yt"), "--distill", capsys=capsys)
    assert code == 0, err
    assert len(model_env.chat_requests) == asked

    code, out, _ = run(url, "kb", "list", "--json", capsys=capsys)
    listing = json.loads(out)
    by_slug = {p["slug"]: p for p in listing["pages"]}
    raw_slug = by_slug[slug]["distilled_from"]
    assert by_slug[slug]["origin"] == "distilled" and by_slug[raw_slug]["distilled_as"] == slug
    assert listing["distilled"] == 1
    code, out, _ = run(url, "kb", "list", capsys=capsys)
    assert f"[distilled, from {raw_slug}," in out and "pages (1 distilled)" in out
    code, out, _ = run(url, "stats", capsys=capsys)
    assert "distilled" in out and "replace in search" in out

    async def details(db):
        from tui.services.sources import source_detail

        items = (await db_items(db, "gain reduction threshold"))
        distilled = await source_detail(db, slug, items[0]["section_anchor"])
        raw = await source_detail(db, raw_slug, None)
        return distilled, raw
    distilled, raw = asyncio.run(_query(db_target, details))
    assert distilled["raw"]["label"] == "from the transcript, 01:00–01:58"
    assert distilled["raw"]["raw_page"] == raw_slug and "gain reduction" in distilled["raw"]["text"]
    assert distilled["raw"]["sections"][0]["start_time"] < 118.0
    assert raw["raw"] is None

    queries = ("gain reduction threshold", "pre delay plate reverb", "drum bus compression")
    before = [run(url, "search", q, "--json", capsys=capsys)[1] for q in queries]
    stats_before = json.loads(run(url, "stats", "--json", capsys=capsys)[1])
    exported = tmp_path / "kb.json"
    assert run(url, "kb", "export", str(exported), capsys=capsys)[0] == 0
    doc = json.loads(exported.read_text())
    marked = [t for t in doc["techniques"] if "distilled_from" in t]
    assert [t["slug"] for t in marked] == [slug] and marked[0]["distilled_from"]["page"] == raw_slug
    assert marked[0]["distilled_from"]["model"] == "primary-model"

    # Empty the knowledge base, then the export back in: the same counts, the same search.
    assert run(url, "kb", "remove", "--creator", "kaito-beats", capsys=capsys)[0] == 0
    assert json.loads(run(url, "stats", "--json", capsys=capsys)[1])["techniques"] == 0
    code, out, err = run(url, "import", str(exported), capsys=capsys)
    assert code == 0, err
    stats_after = json.loads(run(url, "stats", "--json", capsys=capsys)[1])
    assert {k: stats_after[k] for k in KNOWLEDGE} == {k: stats_before[k] for k in KNOWLEDGE}
    assert [run(url, "search", q, "--json", capsys=capsys)[1] for q in queries] == before
    assert all(i["title"] != TITLE for i in search(url, "gain reduction threshold", capsys))
    by_slug = {p["slug"]: p for p in json.loads(run(url, "kb", "list", "--json", capsys=capsys)[1])["pages"]}
    assert by_slug[slug]["origin"] == "distilled" and by_slug[slug]["distilled_from"] == raw_slug

    # Removing the distilled page gives the transcript back to search.
    assert run(url, "kb", "remove", "--page", slug, capsys=capsys)[0] == 0
    assert search(url, "gain reduction threshold", capsys)[0]["title"] == TITLE


async def db_items(db, query):
    from tui.config import load_settings
    from tui.services.search import SearchService

    return (await SearchService(load_settings()).search(query, db=db))["items"]


def test_an_export_mark_naming_no_page_is_refused(tmp_path, capsys):
    url = f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
    doc = {"format": "chrysopedia.kb/1", "creators": [{"slug": "a", "name": "A"}], "videos": [],
           "techniques": [{"slug": "p", "title": "P", "creator": "a", "topic_category": "General",
                           "summary": "s", "distilled_from": {"page": "gone"},
                           "sections": [{"anchor": "x", "heading": "H", "body": "B"}]}]}
    path = tmp_path / "kb.json"
    path.write_text(json.dumps(doc))
    code, _, err = run(url, "import", str(path), capsys=capsys)
    assert code == 1 and "techniques[0].distilled_from.page: unknown technique 'gone'" in err


def test_an_import_measures_profiles_and_distill_without_a_model_says_so(db_target, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHRYSOPEDIA_DATA_DIR", str(tmp_path / "data"))
    url = db_target.url
    code, out, err = run(url, "import", str(downloads(tmp_path / "yt")), "--json", capsys=capsys)
    report = json.loads(out)
    assert code == 0, err
    assert report["profiles"]["measured"] == ["kaito-beats"] and report["distill"] is None

    async def profile(db):
        async with db.session() as session:
            return await session.scalar(select(Creator.personality_profile).where(Creator.slug == "kaito-beats"))
    assert asyncio.run(_query(db_target, profile))["_source"]["energy"] == "measured"
    # Nothing changed: no profile measured again.
    assert json.loads(run(url, "import", str(tmp_path / "yt"), "--json", capsys=capsys)[1])[
        "profiles"]["measured"] == []
    write_video(tmp_path / "yt", video("reverb00002", "More reverb", OTHER_SAID, 60.0))
    code, out, err = run(url, "import", str(tmp_path / "yt"), "--distill", capsys=capsys)
    assert code == 0, err
    assert "1 added" in out and "no model is configured" in out and "measured profiles: kaito-beats" in out
    code, out, err = run(url, "import", str(tmp_path / "yt"), "--distill", capsys=capsys)
    assert code == 0 and "0 added" in out, err  # nothing new: nothing distilled, and said so
    assert "nothing to distill: this import added or updated no transcripts" in out
    assert "measured" not in out
    code, _, err = run(url, "import", str(tmp_path / "yt"), "--distill", "--concurrency", "0", capsys=capsys)
    assert code == 2 and "--concurrency must be from 1 to 32" in err


def test_prune_removes_a_gone_transcript_with_its_distilled_page(db_target, tmp_path, model_env, capsys):
    url = db_target.url
    model_env.set_mode("normal", routes=routes(bad_other=True))
    folder = downloads(tmp_path / "yt")
    code, out, err = run(url, "import", str(folder), "--distill", "--json", capsys=capsys)
    (slug,) = json.loads(out)["distill"]["distilled"]
    for f in folder.glob("SMASH*"):
        f.unlink()
    code, out, err = run(url, "import", str(folder), "--prune", "--json", capsys=capsys)
    assert code == 0, err
    assert slug in [r["page"] for r in json.loads(out)["removed"]]
    listing = json.loads(run(url, "kb", "list", "--json", capsys=capsys)[1])
    assert [p["title"] for p in listing["pages"]] == [OTHER] and listing["distilled"] == 0
    assert not search(url, "gain reduction threshold", capsys) or all(
        i["title"] == OTHER for i in search(url, "gain reduction threshold", capsys))


def test_without_a_distilling_model_the_slider_changes_what_an_imported_creator_is_answered_with(
        db_target, tmp_path, model_env, capsys):
    """An import alone gives the creator a measured profile, and the voice weight then
    changes the request the answering model gets (its system prompt and temperature)."""
    url = db_target.url
    assert run(url, "import", str(downloads(tmp_path / "yt")), capsys=capsys)[0] == 0
    code, out, _ = run(url, "ask", "--creator", "kaito-beats", "--weight", "0.9", "--voice",
                       capsys=capsys)
    assert code == 0 and "Fully embody Kaito Beats" in out
    assert "Measured from their transcripts: energy." in out
    assert len(model_env.chat_requests) == 0  # the preview asks nothing

    systems, temperatures = [], []
    for weight in ("0", "0.9"):
        code, _, err = run(url, "ask", "--creator", "kaito-beats", "--weight", weight,
                           "how much gain reduction on the smash return", capsys=capsys)
        assert code == 0, err
        body = model_env.chat_requests[-1].body
        systems.append(body["messages"][0]["content"])
        temperatures.append(body["temperature"])
    assert "Fully embody Kaito Beats" in systems[1] and "Match their calm tone." in systems[1]
    assert "Fully embody" not in systems[0] and temperatures[0] < temperatures[1]
