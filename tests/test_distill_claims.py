"""Distilled sections checked by the claim check, through the loopback model server and
`chrysopedia distill`: a wrong number and words from outside a section's range are
rejected with their reasons, a faithful page is kept, and the report (text and `--json`)
says so section by section."""

from __future__ import annotations

import json

from test_distill import SAID, VALID, page
from test_distill_store import model_env, run, video  # noqa: F401 - model_env is a fixture
from ytdlp_material import write_video  # noqa: E402 - on sys.path through test_distill_store

TITLES = {"good": "SMASH your drums", "number": "SMASH your drums again",
          "outside": "SMASH your drums once more"}
WRONG_NUMBER = page(section1={"body": VALID["sections"][1]["body"].replace("12 dB", "18 dB")})
# Section 1 (0:06-0:58) written from what is said at 3:00-3:56.
OUTSIDE = page(section0={"body": VALID["sections"][3]["body"]})


def _setup(tmp_path, capsys):
    folder = tmp_path / "yt"
    folder.mkdir()
    for i, title in enumerate(TITLES.values()):
        write_video(folder, video(f"drumbus{i:04d}", title, SAID, 240.0))
    url = f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
    assert run(url, "import", str(folder), capsys=capsys)[0] == 0
    code, out, _ = run(url, "kb", "list", "--json", capsys=capsys)
    slugs = {p["title"]: p["slug"] for p in json.loads(out)["pages"]}
    return url, {key: slugs[title] for key, title in TITLES.items()}


def _routes():
    # Longest titles first: a route matches the first prefix found in the request.
    return [[f"Video: {TITLES['outside']}\n", json.dumps(OUTSIDE)],
            [f"Video: {TITLES['number']}\n", json.dumps(WRONG_NUMBER)],
            [f"Video: {TITLES['good']}\n", json.dumps(VALID)],
            ["Creator: ", json.dumps({"summary": "x"})]]


def test_sections_are_kept_or_rejected_by_the_claim_check_with_reasons(tmp_path, model_env, capsys):  # noqa: F811
    url, slugs = _setup(tmp_path, capsys)
    model_env.set_mode("normal", routes=_routes())
    code, out, err = run(url, "distill", "--all", "--json", capsys=capsys)
    assert code == 1, err  # two pages kept as transcripts
    report = json.loads(out)
    assert report["distilled"] == [slugs["good"] + "-d"]
    rejected = {r["page"]: r["reasons"] for r in report["rejected"]}
    assert set(rejected) == {slugs["number"], slugs["outside"]}

    # A wrong number: named, and its section alone is rejected.
    number, share = rejected[slugs["number"]]
    assert number == "section 2 ('Crush it', 1:00-1:58): the number '18 dB' is not said in its range"
    assert share.startswith("section 2 ('Crush it', 1:00-1:58): not supported by its range: 2 of its 3 ")
    assert "“Pull the threshold down until you get 18 dB of gain reduction.”: a number of it is not said there" in share
    checks = report["checks"][slugs["number"]]
    assert [c["ok"] for c in checks] == [True, False, True, True]
    assert checks[1]["numbers_missing"] == ["18 dB"]

    # True words said in another part of the video: the reason says where.
    number, reason = rejected[slugs["outside"]]
    assert number.endswith("the number '-10 dB' is not said in its range")
    assert reason.startswith("section 1 ('Set up the smash return', 0:06-0:58): not supported "
                             "by its range: 0 of its 2 sentences are said there")
    assert reason.endswith("“Mute and unmute the return to check the blend.”: said at 2:44-3:41, "
                           "outside its range")
    # ... and the retry asked for the page again with that reason.
    retries = [r for r in model_env.chat_requests
               if TITLES["outside"] in r.body["messages"][1]["content"]]
    assert len(retries) == 2 and "said at 2:44-3:41, outside its range" in retries[1].body["messages"][-1]["content"]

    # The faithful page: every section kept, each sentence said in its range, with the
    # time it is said.
    good = report["checks"][slugs["good"]]
    assert all(c["ok"] and c["supported"] == c["claims"] > 0 for c in good)
    assert [c["items"][0]["said_at"] for c in good] == [
        "0:00-0:57", "1:00-1:37", "2:00-2:42", "3:00-3:41"]  # the imported caption sentences
    assert {i["status"] for c in good for i in c["items"]} == {"supported"}

    # The text report says the same, the reasons on stderr.
    code, out, err = run(url, "distill", "--all", capsys=capsys)
    assert code == 1
    assert f"{slugs['number']}: 3 of 4 sections kept by the claim check" in out
    assert "the number '18 dB' is not said in its range" in err
    assert "said at 2:44-3:41, outside its range" in err
