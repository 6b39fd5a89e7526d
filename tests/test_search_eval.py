"""Retrieval quality over the bundled knowledge base: recall@10 and MRR@10, lexical-only
beside fused (lexical + semantic), and the answerability gate.

The queries (tests/data/search_eval.json) were written from the bundled pages' topics
before the ranking was tuned; the `problem` kind describes a producer's problem without
the technique's name, written before the semantic side was measured. Metrics are per
page: a result list of sections becomes the list of distinct pages in rank order.
Recall@10 is the share of a query's relevant pages found in the top 10 results, MRR@10
the reciprocal rank of the first relevant page; both are averaged over the answerable
queries. The numbers are printed in the test output on every run.

tests/data/answerability.json holds questions the KB has nothing on (off-topic, and
music questions it does not cover); with the eval's unanswerable ones they should get
tier `none`. Its `held_out` questions were kept out of the gate's calibration: their rate
is reported apart and not asserted.

The eval database also holds spoken material: six videos as yt-dlp rolling auto-captions
(tests/transcript_material.py), imported as a user imports a download folder, and the
`transcript` kind (tests/data/transcript_eval.json) asks about what is said in them; a
query's relevant page is the imported page of its video.
"""

from __future__ import annotations

import json
from pathlib import Path

from transcript_material import write_transcripts

from tui.db.importer import bundled_kb_path, import_path
from tui.db.kb_format import read_documents
from tui.services import search as search_mod
from tui.services.search import SearchService

EVAL = Path(__file__).parent / "data" / "search_eval.json"
OFF_TOPIC = Path(__file__).parent / "data" / "answerability.json"
TRANSCRIPT_EVAL = Path(__file__).parent / "data" / "transcript_eval.json"
# on the original kinds (every kind but `problem`), as before the semantic side
MIN_RECALL = 0.90
MIN_MRR = 0.75
# what the gate may cost the answerable queries' recall
MAX_GATE_RECALL_COST = 0.01
# share of off-topic and near-miss questions (not held out) that must get tier `none` (the
# issue's 0.9; 51/55 = 0.93 on both backends with the English-affinity evidence: see
# docs/BENCHMARKS.md, "Semantic side and answerability")
MIN_NONE_RATE = 0.9
# the kinds where the semantic side must do better than the lexical side alone
SEMANTIC_KINDS = ("paraphrase", "problem")
K = 10


def load_queries(pages_by_video: dict[str, str] | None = None) -> list[dict]:
    """The eval's queries, plus the transcript ones when their videos' pages are known."""
    queries = json.loads(EVAL.read_text())["queries"]
    if pages_by_video is not None:
        for q in load_transcript_queries():
            queries.append({**q, "relevant": [pages_by_video[q["video"]]]})
    return queries


def load_transcript_queries() -> list[dict]:
    return json.loads(TRANSCRIPT_EVAL.read_text())["queries"]


def load_off_topic(held_out: bool = False) -> list[dict]:
    """The calibration set, or (held_out) the questions kept out of it."""
    return [q for q in json.loads(OFF_TOPIC.read_text())["questions"]
            if bool(q.get("held_out")) == held_out]


async def import_transcripts(db, folder: Path) -> dict[str, str]:
    """Imports the spoken material; returns {video id: its page's slug}."""
    from tui.services.kb_import import import_paths

    run = await import_paths(db, [write_transcripts(folder)])
    assert not run.refused, run.refused
    return {added["path"].rsplit("[", 1)[1].split("]")[0]: added["page"] for added in run.added}


def evaluate_one(query: dict, result: dict) -> tuple[float, float]:
    pages: list[str] = []
    for item in result["items"][:K]:
        if item["technique_page_slug"] not in pages:
            pages.append(item["technique_page_slug"])
    relevant = set(query["relevant"])
    recall = len(relevant & set(pages)) / len(relevant)
    rr = next((1.0 / (i + 1) for i, slug in enumerate(pages) if slug in relevant), 0.0)
    return recall, rr


async def run_eval(db, pages_by_video: dict[str, str] | None = None, *, semantic: bool = True,
                   gate: bool = True) -> dict:
    service = SearchService(None)
    per_kind: dict[str, list[tuple[float, float]]] = {}
    misses: list[str] = []
    unanswerable_empty = unanswerable = 0
    search_mod.set_semantic(semantic)
    search_mod.set_gate(gate)
    try:
        for q in load_queries(pages_by_video):
            result = await service.search(q["query"], limit=K, db=db, creator=q["creator"])
            if not q["relevant"]:
                unanswerable += 1
                unanswerable_empty += not result["items"]
                continue
            recall, rr = evaluate_one(q, result)
            per_kind.setdefault(q["kind"], []).append((recall, rr))
            if recall < 1.0 or rr < 0.5:
                top = [i["technique_page_slug"] for i in result["items"][:3]]
                misses.append(
                    f"{q['id']} {q['query']!r} [{result['cascade_tier']}] recall={recall:.2f} "
                    f"rr={rr:.2f} top={top}"
                )
        off_none = 0
        off_answered = []
        for q in load_off_topic():
            result = await service.search(q["query"], limit=K, db=db)
            if result["cascade_tier"] == "none":
                off_none += 1
            else:
                off_answered.append(q["query"])
        held: dict[str, list[int]] = {}
        for q in load_off_topic(held_out=True):
            result = await service.search(q["query"], limit=K, db=db)
            held.setdefault(str(q["held_out"]), [0, 0])
            held[str(q["held_out"])][0] += result["cascade_tier"] == "none"
            held[str(q["held_out"])][1] += 1
    finally:
        search_mod.set_semantic(True)
        search_mod.set_gate(True)
    scores = [s for kind in per_kind.values() for s in kind]
    original = [s for kind, v in per_kind.items() if kind not in ("problem", "transcript")
                for s in v]
    return {
        "original": (sum(r for r, _ in original) / len(original),
                     sum(rr for _, rr in original) / len(original)),
        "recall": sum(r for r, _ in scores) / len(scores),
        "mrr": sum(rr for _, rr in scores) / len(scores),
        "n": len(scores),
        "by_kind": {
            kind: (sum(r for r, _ in s) / len(s), sum(rr for _, rr in s) / len(s), len(s))
            for kind, s in per_kind.items()
        },
        "unanswerable": (unanswerable_empty, unanswerable),
        "off_topic": (off_none, len(load_off_topic())),
        "off_topic_answered": off_answered,
        "held_out": held,
        "misses": misses,
    }


def none_rate(m: dict) -> float:
    got = m["unanswerable"][0] + m["off_topic"][0]
    return got / (m["unanswerable"][1] + m["off_topic"][1])


def report(request, backend: str, runs: dict[str, dict]) -> str:
    lex, fused = runs["lexical"], runs["fused"]
    lines = [f"search eval [{backend}] ({fused['n']} answerable queries), recall@10 / MRR@10:",
             f"  {'kind':<11} {'lexical':>15} {'fused':>15} {'fused, no gate':>16}"]
    rows = [("all", (lex["recall"], lex["mrr"], lex["n"]), (fused["recall"], fused["mrr"], 0),
             (runs["ungated"]["recall"], runs["ungated"]["mrr"], 0))]
    rows += [(k, lex["by_kind"][k], fused["by_kind"][k], runs["ungated"]["by_kind"][k])
             for k in sorted(fused["by_kind"])]
    for kind, a, b, c in rows:
        n = f"  (n={a[2]})" if kind != "all" else ""
        lines.append(f"  {kind:<11} {a[0]:.3f} / {a[1]:.3f}   {b[0]:.3f} / {b[1]:.3f}"
                     f"    {c[0]:.3f} / {c[1]:.3f}{n}")
    for name in ("lexical", "fused"):
        m = runs[name]
        lines.append(
            f"  {name}: tier none for {m['unanswerable'][0]}/{m['unanswerable'][1]} unanswerable "
            f"and {m['off_topic'][0]}/{m['off_topic'][1]} off-topic questions "
            f"({none_rate(m):.0%}); held out: "
            + ", ".join(f"set {k} {v[0]}/{v[1]}" for k, v in sorted(m["held_out"].items())))
    lines += [f"  answered off-topic: {q!r}" for q in fused["off_topic_answered"]]
    lines += [f"  miss: {line}" for line in fused["misses"]]
    text = "\n".join(lines)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:  # shown whether or not output is captured
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)
    return text


def test_eval_set_is_well_formed():
    queries = load_queries()
    doc = read_documents(bundled_kb_path())
    slugs = {t["slug"] for t in doc.techniques}
    creators = {c["slug"] for c in doc.creators} | {c["name"] for c in doc.creators}
    assert len(queries) >= 180
    assert len({q["id"] for q in queries}) == len(queries)
    assert {q["kind"] for q in queries} >= {"paraphrase", "problem", "typo", "creator",
                                           "unanswerable"}
    assert sum(q["kind"] == "problem" for q in queries) >= 40
    for q in queries:
        assert set(q["relevant"]) <= slugs, q["id"]
        assert q["creator"] is None or q["creator"] in creators, q["id"]
    off = load_off_topic()
    assert len(off) >= 40 and {q["kind"] for q in off} >= {
        "cooking", "sport", "tax", "programming", "near-miss"}
    assert len(load_off_topic(held_out=True)) >= 20
    from transcript_material import VIDEOS

    spoken = load_transcript_queries()
    assert len(spoken) >= 20 and len({q["id"] for q in spoken}) == len(spoken)
    assert {q["video"] for q in spoken} == {v[0] for v in VIDEOS}


async def test_retrieval_quality(db, db_target, request, tmp_path):
    await import_path(db, bundled_kb_path())
    pages = await import_transcripts(db, tmp_path / "videos")
    runs = {
        "lexical": await run_eval(db, pages, semantic=False),
        "fused": await run_eval(db, pages),
        "ungated": await run_eval(db, pages, gate=False),
    }
    text = report(request, db_target.backend, runs)
    fused, lex, ungated = runs["fused"], runs["lexical"], runs["ungated"]
    assert fused["original"][0] >= MIN_RECALL and fused["original"][1] >= MIN_MRR, text
    # the gate says `none` to the off-topic questions and costs the answerable ones little
    assert ungated["recall"] - fused["recall"] <= MAX_GATE_RECALL_COST, text
    assert none_rate(fused) >= MIN_NONE_RATE, text
    # fused is no worse than lexical on any kind (by at most one query's worth), and ranks
    # better where the words differ
    # (exactly one query's worth is allowed: 1e-9 absorbs the division's rounding)
    for kind, (recall, mrr, n) in fused["by_kind"].items():
        lex_recall, lex_mrr, _ = lex["by_kind"][kind]
        assert recall >= lex_recall - 1 / n - 1e-9 and mrr >= lex_mrr - 1 / n - 1e-9, (kind, text)
    for kind in SEMANTIC_KINDS:
        assert fused["by_kind"][kind][1] > lex["by_kind"][kind][1], (kind, text)
