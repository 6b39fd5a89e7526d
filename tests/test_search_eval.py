"""Retrieval quality over the bundled knowledge base: recall@10 and MRR@10.

The queries (tests/data/search_eval.json) were written from the bundled pages'
topics before the ranking was tuned. Metrics are per page: a result list of
sections becomes the list of distinct pages in rank order. Recall@10 is the
share of a query's relevant pages found in the top 10 results, MRR@10 the
reciprocal rank of the first relevant page; both are averaged over the
answerable queries. The numbers are printed in the test output on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

from tui.db.importer import bundled_kb_path, import_path
from tui.db.kb_format import read_documents
from tui.services.search import SearchService

EVAL = Path(__file__).parent / "data" / "search_eval.json"
MIN_RECALL = 0.90
MIN_MRR = 0.75
K = 10


def load_queries() -> list[dict]:
    return json.loads(EVAL.read_text())["queries"]


def evaluate_one(query: dict, result: dict) -> tuple[float, float]:
    pages: list[str] = []
    for item in result["items"][:K]:
        if item["technique_page_slug"] not in pages:
            pages.append(item["technique_page_slug"])
    relevant = set(query["relevant"])
    recall = len(relevant & set(pages)) / len(relevant)
    rr = next((1.0 / (i + 1) for i, slug in enumerate(pages) if slug in relevant), 0.0)
    return recall, rr


async def run_eval(db) -> dict:
    service = SearchService(None)
    per_kind: dict[str, list[tuple[float, float]]] = {}
    misses: list[str] = []
    unanswerable_empty = unanswerable = 0
    for q in load_queries():
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
    scores = [s for kind in per_kind.values() for s in kind]
    return {
        "recall": sum(r for r, _ in scores) / len(scores),
        "mrr": sum(rr for _, rr in scores) / len(scores),
        "n": len(scores),
        "by_kind": {
            kind: (sum(r for r, _ in s) / len(s), sum(rr for _, rr in s) / len(s), len(s))
            for kind, s in per_kind.items()
        },
        "unanswerable": (unanswerable_empty, unanswerable),
        "misses": misses,
    }


def report(request, backend: str, m: dict) -> str:
    lines = [
        f"search eval [{backend}]: recall@10 {m['recall']:.3f}  MRR@10 {m['mrr']:.3f}  "
        f"({m['n']} answerable queries; unanswerable with no result: "
        f"{m['unanswerable'][0]}/{m['unanswerable'][1]})"
    ]
    for kind, (recall, mrr, n) in sorted(m["by_kind"].items()):
        lines.append(f"  {kind:<11} recall@10 {recall:.3f}  MRR@10 {mrr:.3f}  (n={n})")
    lines += [f"  miss: {line}" for line in m["misses"]]
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
    assert len(queries) >= 60
    assert len({q["id"] for q in queries}) == len(queries)
    assert {q["kind"] for q in queries} >= {"paraphrase", "typo", "creator", "unanswerable"}
    for q in queries:
        assert set(q["relevant"]) <= slugs, q["id"]
        assert q["creator"] is None or q["creator"] in creators, q["id"]


async def test_retrieval_quality(db, db_target, request):
    await import_path(db, bundled_kb_path())
    metrics = await run_eval(db)
    text = report(request, db_target.backend, metrics)
    assert metrics["recall"] >= MIN_RECALL and metrics["mrr"] >= MIN_MRR, text
