"""The answerability gate's frontier: how many calibration questions get tier `none` against
what the gate costs the answerable queries' recall, as the affinity's weight and the floor
move (docs/BENCHMARKS.md, "Semantic side and answerability").

    .venv/bin/python bench/answerability_sweep.py [--db-url postgresql+asyncpg://...?schema=S]

Builds the eval database as tests/test_search_eval.py does (the bundled KB and the six
imported videos; SQLite in a temporary folder unless --db-url names an empty PostgreSQL
schema), searches every eval query and every question of tests/data/answerability.json once
with the gate off, and re-decides the gate from each result's evidence for each weight and
floor. The recall cost is the recall of the answerable queries the gate would stop, over the
208. The held-out sets are printed, never chosen by.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import test_search_eval as E  # noqa: E402

from tui.db.engine import Database  # noqa: E402
from tui.db.importer import bundled_kb_path, import_path  # noqa: E402
from tui.services import search as S  # noqa: E402

WEIGHTS = (0.0, 0.8, 1.2, 1.6)
FLOORS = [round(1.0 + 0.02 * i, 2) for i in range(71)]  # W_AFFINITY 0, floor 1.04: the gate before


async def collect(url: str, folder: Path) -> list[dict]:
    db = Database(url)
    await db.init()
    try:
        await import_path(db, bundled_kb_path())
        pages = await E.import_transcripts(db, folder / "videos")
        svc = S.SearchService(None)
        S.set_gate(False)
        out = []
        for q in E.load_queries(pages):
            r = await svc.search(q["query"], limit=E.K, db=db, creator=q["creator"])
            rec = {"set": "answerable" if q["relevant"] else "unanswerable", "ev": r.get("evidence")}
            if q["relevant"]:
                rec["recall"] = E.evaluate_one(q, r)[0]
            out.append(rec)
        for held in (False, True):
            for q in E.load_off_topic(held_out=held):
                r = await svc.search(q["query"], limit=E.K, db=db)
                out.append({"set": f"held {q['held_out']}" if held else "calibration",
                            "ev": r.get("evidence")})
        return out
    finally:
        S.set_gate(True)
        await db.dispose()


def passes(ev: dict, weight: float, floor: float) -> bool:
    """`answerable` with the last rule's weight and floor replaced."""
    if ev["tier"] == "semantic" or ev["similarity"] is None or (
            ev["words"] == 1 and ev["coverage"] > 0):
        return S.answerable(ev)
    return ev["similarity"] + 4 * ev["coverage"] + weight * ev["affinity"] >= floor


def score(recs: list[dict], weight: float, floor: float) -> tuple[int, int, float, dict]:
    answerable = [r for r in recs if r["set"] == "answerable"]
    cost = sum(r["recall"] for r in answerable
               if r["ev"] and not passes(r["ev"], weight, floor)) / len(answerable)
    negative = [r for r in recs if r["set"] in ("calibration", "unanswerable")]
    none = sum(r["ev"] is None or not passes(r["ev"], weight, floor) for r in negative)
    held: dict[str, list[int]] = {}
    for r in recs:
        if r["set"].startswith("held"):
            h = held.setdefault(r["set"][5:], [0, 0])
            h[0] += r["ev"] is None or not passes(r["ev"], weight, floor)
            h[1] += 1
    return none, len(negative), cost, held


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db-url", help="an empty PostgreSQL schema (default: SQLite, temporary)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db_url or f"sqlite+aiosqlite:///{Path(tmp) / 'eval.db'}"
        recs = asyncio.run(collect(url, Path(tmp)))
    print(f"gate as shipped (W_AFFINITY {S.W_AFFINITY}, floor {S.EVIDENCE_FLOOR}):",
          score(recs, S.W_AFFINITY, S.EVIDENCE_FLOOR)[:3])
    for weight in WEIGHTS:
        print(f"W_AFFINITY {weight}")
        for floor in FLOORS:
            none, n, cost, held = score(recs, weight, floor)
            sets = " ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(held.items()))
            print(f"  floor {floor:.2f}: none {none}/{n}  recall cost {cost:.3f}  held out {sets}")


if __name__ == "__main__":
    main()
