"""The claim check where answers are made and kept: the `done` event, its SSE and
`ask --json` forms, the transcript archive (and its migration), regeneration, the
offline digest, and the usage report. A real database with the bundled knowledge
base, real search, a real HTTP model server on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text, update
from test_ask_cli import chrysopedia, model_env
from test_events import parse_sse

from tui.db.importer import bundled_kb_path, import_path
from tui.db.models import Message
from tui.services import transcripts
from tui.services.chat import ChatService, Done, Sources
from tui.services.claims import check_saved_answer, summary_line
from tui.services.history import open_history
from tui.services.search import SearchService
from tui.services.usage import usage_report

QUESTION = "parallel compression on drums"
PAGE = "parallel-compression-drums#"
# Per section of the page: two claims it supports, and one with a number it does not have.
# (The backends rank differently: the answer is written from the sections its search found.)
CATALOG = {
    "boom-bap-chain": (
        "On the parallel return, use a 20:1 compressor with a 0.5 ms attack",
        "On the dry bus, high-pass at 30 Hz before a gentle 4:1 compressor",
        "Set the release on the parallel return to 300–500 ms",
    ),
    "eq-and-blend": (
        "The return usually ends up 6–10 dB below the dry bus",
        "A low-pass around 8–10 kHz keeps the crushed copy from getting brittle",
        "The return usually ends up 20–25 dB below the dry bus",
    ),
    "crush-settings": (
        "Aim for 10–20 dB of gain reduction on the crushed copy",
        "Use a fast attack of 0.1–1 ms so the transients get flattened too",
        "Set the release of the crushed copy to 300–500 ms",
    ),
    "crushed-plus-clean": (
        "Keep the dry drums untouched and blend in a copy that is squashed hard",
        "If the parallel copy is even a millisecond late you get phasing and a hollow sound",
        "Delay the parallel copy by 40 ms so the two copies do not phase",
    ),
}


def pick(n: dict[str, int]) -> tuple[str, str]:
    """The first two sections of the page the search found, in catalog order."""
    found = [a for a in CATALOG if PAGE + a in n]
    assert len(found) >= 2, n
    return found[0], found[1]


@pytest.fixture
async def kb(db):
    await import_path(db, bundled_kb_path())
    return db


@pytest.fixture
async def memory(kb, settings):
    store = await open_history(settings, kb)
    yield store
    await store.close()


async def numbering(db, question: str = QUESTION) -> dict[str, int]:
    """The source numbers the service will give this question's sections (search is
    deterministic): "page#anchor" -> N."""
    items = (await SearchService(None).search(question, limit=10, db=db))["items"]
    return {f"{i['technique_page_slug']}#{i['section_anchor']}": n
            for n, i in enumerate(items, start=1)}


def script(n: dict[str, int]) -> list[str]:
    """An answer with two supported claims, one misattributed and one unsupported, cut
    into tokens the way a model streams them."""
    a, b = pick(n)
    na, nb = n[PAGE + a], n[PAGE + b]
    answer = (
        "Here's a starting point:\n\n"
        f"- {CATALOG[a][0]} [{na}].\n"
        f"- {CATALOG[b][0]} [{nb}].\n"
        f"- {CATALOG[b][1]} [{na}].\n"
        f"- {CATALOG[a][2]} [{na}].\n"
    )
    return [answer[i:i + 7] for i in range(0, len(answer), 7)]


async def ask(service, question=QUESTION, **kw) -> list:
    async with contextlib.aclosing(service.stream_response(question, **kw)) as stream:
        return [event async for event in stream]


def check_payload(claims: dict, n: dict[str, int], answer: str, sections) -> None:
    assert {k: claims[k] for k in ("total", "supported", "misattributed", "unsupported",
                                   "uncited")} == {
        "total": 4, "supported": 2, "misattributed": 1, "unsupported": 1, "uncited": 0}
    by_status = {}
    for item in claims["items"]:
        by_status.setdefault(item["status"], []).append(item)
    (wrong_source,) = by_status["misattributed"]
    a, b = pick(n)
    assert wrong_source["cited"] == [n[PAGE + a]] and wrong_source["source"] == n[PAGE + b]
    assert answer[wrong_source["start"]:wrong_source["end"]].startswith(CATALOG[b][1])
    s, e = wrong_source["source_span"]
    assert sections[n[PAGE + b]][s:e]
    (made_up,) = by_status["unsupported"]
    assert answer[made_up["start"]:made_up["end"]].startswith(CATALOG[a][2])
    assert made_up["source"] is None and "does not state its numbers" in made_up["reason"]
    for item in by_status["supported"]:
        s, e = item["source_span"]
        assert sections[item["source"]][s:e]


async def section_bodies(db, question=QUESTION) -> dict[int, str]:
    items = (await SearchService(None).search(question, limit=10, db=db))["items"]
    return {n: i["section_body"] for n, i in enumerate(items, start=1)}


async def test_done_carries_the_claim_check_and_the_transcript_keeps_it(
    kb, memory, llm_settings, fake_llm
):
    n = await numbering(kb)
    tokens = script(n)
    fake_llm.set_mode("normal", tokens=tokens)
    service = ChatService(llm_settings, kb, memory, search=SearchService(llm_settings))
    try:
        events = await ask(service)
        assert isinstance(events[0], Sources) and isinstance(events[-1], Done)
        done = events[-1]
        answer = "".join(tokens)
        sections = await section_bodies(kb)
        check_payload(done.claims, n, answer, sections)
        assert summary_line(done.claims) == (
            f"4 claims · 2 supported · 1 misattributed → "
            f"[{n[PAGE + pick(n)[1]]}] · 1 without support")

        # The SSE frame and the JSON line carry the same payload.
        ((name, data),) = parse_sse(done.to_sse())
        assert name == "done" and json.loads(data)["claims"] == done.claims
        assert done.to_json()["data"]["claims"] == done.claims

        # The transcript restores it with the answer.
        saved = await transcripts.load_conversation(kb, done.conversation_id)
        assert saved[-1]["claims"] == done.claims and saved[-1]["content"] == answer
        assert saved[0]["claims"] is None  # the question

        # An answer saved before checks were stored is checked from the knowledge base.
        restored = await check_saved_answer(kb, saved[-1]["content"], saved[-1]["sources"])
        assert restored == done.claims

        # A regenerated answer is checked too (this one is all supported).
        a = pick(n)[0]
        fake_llm.set_mode("normal", tokens=[f"{CATALOG[a][0]} [{n[PAGE + a]}]."])
        again = await ask(service, conversation_id=done.conversation_id, regenerate=True)
        redone = again[-1]
        assert isinstance(redone, Done) and redone.turn == done.turn
        assert (redone.claims["total"], redone.claims["supported"]) == (1, 1)
        saved = await transcripts.load_conversation(kb, done.conversation_id)
        assert [m["claims"]["total"] for m in saved if m["role"] == "assistant"] == [4, 1]
    finally:
        await service.aclose()


async def test_the_offline_digest_answer_is_fully_supported(kb, memory, settings):
    service = ChatService(settings, kb, memory, search=SearchService(settings))
    try:
        events = await ask(service, "pre-delay on a vocal reverb")
    finally:
        await service.aclose()
    done = events[-1]
    assert isinstance(done, Done) and done.model == "offline-digest"
    assert done.claims["total"] >= 3
    assert done.claims["supported"] == done.claims["total"]


async def test_a_failing_check_does_not_fail_the_answer(
    kb, memory, llm_settings, fake_llm, monkeypatch
):
    from tui.services import claims

    fake_llm.set_mode("normal", tokens=["Use a ratio of 8:1 [1]."])
    service = ChatService(llm_settings, kb, memory, search=SearchService(llm_settings))

    def broken(claim, passages):
        raise RuntimeError("model not loaded")

    service.claim_scorer = broken  # ignored: the lexical check stands
    try:
        done = (await ask(service))[-1]
        assert isinstance(done, Done) and done.claims["total"] == 1

        def failing(*args, **kwargs):
            raise MemoryError("the check itself fails")

        monkeypatch.setattr(claims, "check_claims", failing)
        events = await ask(service)
        done = events[-1]
        assert isinstance(done, Done) and done.claims is None
        saved = await transcripts.load_conversation(kb, done.conversation_id)
        assert saved[-1]["status"] == "answered" and saved[-1]["claims"] is None
    finally:
        await service.aclose()


def test_ask_json_carries_claims(tmp_path, fake_llm):
    url = f"sqlite:///{tmp_path / 'ask.db'}"
    found = chrysopedia(url, "search", QUESTION, "--limit", "10", "--json")
    assert found.returncode == 0, found.stderr
    items = json.loads(found.stdout)["items"]
    n = {f"{i['technique_page_slug']}#{i['section_anchor']}": k
         for k, i in enumerate(items, start=1)}
    tokens = script(n)
    fake_llm.set_mode("normal", tokens=tokens)
    result = chrysopedia(url, "ask", QUESTION, "--json", env=model_env(fake_llm.url))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1]["event"] == "done"
    check_payload(lines[-1]["data"]["claims"], n, "".join(tokens),
                  {k: i["section_body"] for k, i in enumerate(items, start=1)})

    fake_llm.set_mode("normal", tokens=tokens)
    plain = chrysopedia(url, "ask", QUESTION, env=model_env(fake_llm.url))
    assert plain.returncode == 0, plain.stderr
    assert "\n4 claims · 2 supported · 1 misattributed → [" in plain.stdout
    assert plain.stdout.rstrip("\n").splitlines()[-1].startswith("conversation ")


async def test_a_v5_database_gains_the_claims_column(db_target):
    from tui.db.engine import SCHEMA_VERSION, set_meta

    db = db_target.database()
    try:
        await db.init()
        async with db.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE messages DROP COLUMN claims"))
            await set_meta(conn, "schema_version", "5")
        assert await db.init() == SCHEMA_VERSION
        cid = str(uuid.uuid4())
        handle = await transcripts.start_turn(db, cid, "q")
        stored = {"total": 1, "supported": 1, "misattributed": 0, "unsupported": 0,
                  "uncited": 0, "items": [{"start": 0, "end": 3, "status": "supported"}]}
        await transcripts.finish_turn(db, handle, "abc [1]", sources=[], claims=stored)
        assert (await transcripts.load_conversation(db, cid))[-1]["claims"] == stored
    finally:
        await db.dispose()


async def test_usage_report_gives_the_share_of_supported_claims_per_day(db):
    now = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    cid = str(uuid.uuid4())
    for day, claims in ((25, {"total": 4, "supported": 3}), (25, {"total": 6, "supported": 6}),
                        (27, {"total": 5, "supported": 1}), (27, {"total": "x"})):
        handle = await transcripts.start_turn(db, cid, "q")
        await transcripts.finish_turn(db, handle, "a", sources=[], claims=claims)
        async with db.session() as session, session.begin():
            await session.execute(update(Message).where(Message.conversation_id == cid)
                                  .where(Message.turn == handle.turn)
                                  .values(created_at=datetime(2026, 11, day, 12, tzinfo=UTC)))
    report = await usage_report(db, days=3, now=now)
    days = {d["date"]: d for d in report["per_day"]}
    assert (days["2026-11-25"]["claims"], days["2026-11-25"]["supported_claims"]) == (10, 9)
    assert days["2026-11-25"]["supported_share"] == pytest.approx(0.9)
    assert days["2026-11-26"]["supported_share"] is None
    assert days["2026-11-27"]["supported_share"] == pytest.approx(0.2)
    assert report["claims"] == {"total": 15, "supported": 10,
                                "supported_share": pytest.approx(10 / 15)}
