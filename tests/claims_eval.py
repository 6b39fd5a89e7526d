"""The hand-labelled claim set (tests/data/claims_eval.json) run through the claim check."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tui.services.claims import CLASSES, check_claims

ROOT = Path(__file__).resolve().parent.parent
EVAL = Path(__file__).resolve().parent / "data" / "claims_eval.json"
LABELS = (*CLASSES, "none")


def bundled_sections() -> dict[tuple[str, str], dict]:
    """Each bundled section as a search item carries it: (page slug, anchor) -> item."""
    out = {}
    for path in sorted((ROOT / "tui" / "data" / "kb").glob("*.json")):
        for page in json.loads(path.read_text(encoding="utf-8"))["techniques"]:
            for section in page["sections"]:
                out[(page["slug"], section["anchor"])] = {
                    "title": page["title"], "summary": page["summary"],
                    "technique_page_slug": page["slug"], "section_anchor": section["anchor"],
                    "section_heading": section["heading"], "section_body": section["body"],
                }
    return out


def run_eval(scorer=None, held_out: bool | None = None) -> tuple[Counter, list[dict]]:
    """(confusion counts keyed (label, predicted), the sentences checked wrongly); with
    `held_out` True or False, only the groups that are (or are not) held out."""
    sections = bundled_sections()
    doc = json.loads(EVAL.read_text(encoding="utf-8"))
    confusion: Counter = Counter()
    wrong = []
    for group in doc["groups"]:
        if held_out is not None and bool(group.get("held_out")) != held_out:
            continue
        sources = [sections[(s["page"], s["section"])] for s in group["sources"]]
        for case in group["sentences"]:
            report = check_claims(case["text"], sources, scorer=scorer)
            claims = report.claims
            predicted = claims[0].status if len(claims) == 1 else "none" if not claims else "split"
            right = predicted == case["label"]
            if right and predicted == "misattributed":
                right = claims[0].source == case["source"]
                if not right:
                    predicted = "misattributed (wrong source)"
            confusion[(case["label"], predicted)] += 1
            if not right:
                wrong.append({**case, "predicted": predicted,
                              "why": claims[0].reason if claims else ""})
    return confusion, wrong


def confusion_table(confusion: Counter) -> str:
    columns = list(LABELS) + sorted({p for _, p in confusion} - set(LABELS))
    width = max(len(c) for c in columns) + 1
    lines = ["label \\ checked".ljust(16) + "".join(c[:width].rjust(width) for c in columns)
             + "  accuracy".rjust(10)]
    for label in LABELS:
        row = [confusion[(label, c)] for c in columns]
        total = sum(row)
        acc = confusion[(label, label)] / total if total else 1.0
        lines.append(label.ljust(16) + "".join(str(n).rjust(width) for n in row)
                     + f"{acc:10.2f}")
    return "\n".join(lines)


def accuracy(confusion: Counter, label: str) -> float:
    total = sum(n for (lab, _), n in confusion.items() if lab == label)
    return confusion[(label, label)] / total if total else 1.0


if __name__ == "__main__":
    for title, part in (("all", None), ("held out", True)):
        print(title)
        print(confusion_table(run_eval(held_out=part)[0]))
    confusion, wrong = run_eval()
    for case in wrong:
        print(f"- {case['label']} -> {case['predicted']}: {case['text']}\n    {case['why']}")
