"""How well distill's section check tells faithful sections from wrong ones.

    .venv/bin/python bench/distill_check.py [--json]

The transcripts are those of bench/distill_eval.py (four tutorials) and of
tests/test_distill.py (the drum-bus one); the good pages are the pages written by
hand for them (bench/distill_eval.PAGES, tests/test_distill.VALID): 18 sections
that say what the creator says in their range. Each good section also gives the
wrong sections made from it:

* `number`: its first number changed (8:1 -> 9:1, 10 ms -> 15 ms, 40% -> 50%);
* `outside`: the body of another section of the same page (true words, said in
  another part of the video);
* `invented`: the body of a section of another tutorial (off topic);
* `added`: its own body plus one plausible sentence the creator never says.

`--as-imported`: the four tutorials' sentences as `chrysopedia import` reads them from a
yt-dlp download (bench/ytdlp_material.py: rolling auto-captions; sentences re-formed at
pauses, capitalised, cut at 40 words), without the test's transcript (14 good sections).

Every section is checked alone, as a one-section page, by `validate_page` against
its transcript. The figures: the share of good sections accepted, and of each
kind of wrong section rejected (`accepted`, `rejected`), with the sections that
went the wrong way listed. Run it on two checkouts to compare checks.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from distill_eval import PAGES, TUTORIALS  # noqa: E402

from tui.materials.model import TimedSentence  # noqa: E402
from tui.services.distill import Transcript, validate_page  # noqa: E402

# One sentence a creator of each tutorial might plausibly say, but never does.
ADDED = (
    "Then add a shimmer reverb with a long decay on the same send to widen the stereo image."
)
NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?=\s*(?:ms|dB|Hz|kHz|%|:1|\s*seconds))")


IMPORTED = False  # --as-imported: the sentences as the yt-dlp reader gives them


def _as_imported(key: str, index: int) -> list[TimedSentence]:
    """The tutorial written as a yt-dlp download (rolling auto-captions) and read back by
    the importer's reader: sentences re-formed at pauses, capitalised, a full stop added,
    cut at 40 words (a number can end one sentence and its unit start the next)."""
    import tempfile

    from distill_eval import _video
    from ytdlp_material import write_video

    from tui.materials.discover import discover
    from tui.materials.read import read

    with tempfile.TemporaryDirectory() as tmp:
        write_video(Path(tmp), _video(key, index))
        (group,) = [g for g in discover([Path(tmp)])]
        return list(read(group).sentences)


def _transcripts() -> dict[str, tuple[Transcript, dict]]:
    import test_distill

    out = {}
    for index, (key, (title, duration, said)) in enumerate(TUTORIALS.items()):
        sentences = (_as_imported(key, index) if IMPORTED
                     else [TimedSentence(a, b, s) for a, b, s in said])
        t = Transcript(key=key, creator_slug="eval", creator_name="Eval", title=title,
                       sentences=sentences, duration=duration)
        out[key] = (t, PAGES[key])
    if not IMPORTED:  # (the same tutorial as "drums")
        out["test-drums"] = (test_distill.transcript(), test_distill.VALID)
    return out


def _one(page: dict, section: dict) -> dict:
    out = copy.deepcopy(page)
    out["sections"] = [section]
    return out


def _wrong_number(body: str) -> str | None:
    m = NUMBER.search(body)
    if m is None:
        return None
    value = float(m.group(1))
    new = value + (1 if value < 10 else 5)
    text = f"{new:g}"
    return body[:m.start()] + text + body[m.end():]


def cases() -> list[dict]:
    transcripts = _transcripts()
    keys = list(transcripts)
    out = []
    for i, key in enumerate(keys):
        t, page = transcripts[key]
        # another tutorial (test-drums is the drums tutorial again: skipped)
        others_keys = [k for k in keys[i + 1:] + keys[:i] if transcripts[k][0].title != t.title]
        other_page = transcripts[others_keys[0]][1]
        for j, sec in enumerate(page["sections"]):
            out.append({"kind": "good", "t": t, "page": _one(page, sec), "where": f"{key}/{j}"})
            wrong = _wrong_number(sec["body"])
            if wrong:
                out.append({"kind": "number", "t": t, "where": f"{key}/{j}",
                            "page": _one(page, {**sec, "body": wrong})})
            others = [s for k, s in enumerate(page["sections"]) if k != j]
            if others:
                far = max(others, key=lambda s: abs(s["start_time"] - sec["start_time"]))
                out.append({"kind": "outside", "t": t, "where": f"{key}/{j}",
                            "page": _one(page, {**sec, "body": far["body"]})})
            alien = other_page["sections"][j % len(other_page["sections"])]
            out.append({"kind": "invented", "t": t, "where": f"{key}/{j}",
                        "page": _one(page, {**sec, "body": alien["body"]})})
            out.append({"kind": "added", "t": t, "where": f"{key}/{j}",
                        "page": _one(page, {**sec, "body": sec["body"] + " " + ADDED})})
    return out


def evaluate() -> dict:
    all_cases = cases()
    tally: dict[str, list[int]] = {}
    wrong_way = []
    began = time.perf_counter()
    for case in all_cases:
        result, reasons = validate_page(case["page"], case["t"])
        accepted = result is not None
        right = accepted if case["kind"] == "good" else not accepted
        counts = tally.setdefault(case["kind"], [0, 0])
        counts[0] += right
        counts[1] += 1
        if not right:
            wrong_way.append({"kind": case["kind"], "section": case["where"],
                              "reasons": reasons[:2]})
    elapsed = time.perf_counter() - began
    out = {
        "sections": len(all_cases),
        "good_accepted": f"{tally['good'][0]}/{tally['good'][1]}",
        "wrong_rejected": {k: f"{v[0]}/{v[1]}" for k, v in tally.items() if k != "good"},
        "check_ms_per_section": round(elapsed * 1000 / len(all_cases), 2),
        "wrong_way": wrong_way,
    }
    return out


def sweep() -> dict:
    """The figures at other values of SECTION_SUPPORT_MIN (a checkout that has it)."""
    from tui.services import distill

    out = {}
    keep = distill.SECTION_SUPPORT_MIN
    try:
        for value in (0.5, 0.6, 0.67, 0.75, 0.8, 0.9, 1.0):
            distill.SECTION_SUPPORT_MIN = value
            result = evaluate()
            out[str(value)] = {"good_accepted": result["good_accepted"],
                               "wrong_rejected": result["wrong_rejected"]}
    finally:
        distill.SECTION_SUPPORT_MIN = keep
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sweep", action="store_true",
                        help="also the figures at other values of SECTION_SUPPORT_MIN")
    parser.add_argument("--as-imported", action="store_true",
                        help="the four tutorials' sentences as the yt-dlp reader gives them")
    args = parser.parse_args(argv)
    global IMPORTED
    IMPORTED = args.as_imported
    result = evaluate()
    if args.sweep:
        result["sweep"] = sweep()
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
