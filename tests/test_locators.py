"""Locators from the database to every place a source is shown or kept: search items,
the `sources` event, the transcript, the Markdown export, the source detail, and the
command that opens a PDF at its page or a note at its line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from test_materials_store import note_material, pdf_material, put, video_material

from tui.services import transcripts as T
from tui.services.chat import build_sources
from tui.services.export import conversation_to_markdown, source_line
from tui.services.locators import locator_label, make_locator
from tui.services.player import (
    editor_command,
    launch,
    pdf_viewer_command,
    plan_open,
    plan_open_document,
    plan_open_note,
)
from tui.services.search import SearchService
from tui.services.sources import source_detail


@pytest.mark.parametrize(("loc", "label"), [
    (make_locator("video", start_time=725, end_time=945.2), "12:05–15:45"),
    (make_locator(None, start_time=3725, end_time=None), "1:02:05"),
    (make_locator("page", first_page=14, last_page=15), "p. 14–15"),
    (make_locator("page", first_page=7), "p. 7"),
    (make_locator("heading", path="notes/reverb.md", heading="Pre-delay", line=9),
     "notes/reverb.md › Pre-delay"),
    (make_locator("heading", path="notes/reverb.md", heading="", line=1), "notes/reverb.md"),
])
def test_labels(loc, label):
    assert locator_label({"locator": loc}) == label


def test_label_without_a_locator_uses_the_times():
    assert locator_label({"start_time": 95, "end_time": 160}) == "01:35–02:40"
    assert locator_label({"start_time": None}) == ""
    assert make_locator(None) is None
    assert locator_label({"locator": {"kind": "page", "first_page": "14"}}) == ""  # data, not trusted


async def test_locators_reach_events_transcripts_exports_and_detail(db, tmp_path):
    await put(db, video_material(tmp_path))
    await put(db, pdf_material(tmp_path), "manuals/synth.pdf")
    await put(db, note_material(tmp_path), "notes/reverb.md")
    items = []
    for query in ("wavetable oscillator", "quxelish", "damping decay"):
        items.append((await SearchService().search(query, db=db))["items"][0])
    sources = build_sources(items)
    assert [s["locator"]["kind"] for s in sources] == ["page", "heading", "video"]
    assert [s["locator_label"] for s in sources] == [
        "p. 14–15", "notes/reverb.md › Pre-delay", "02:05–04:05"]

    # Saved with the answer, loaded back as they were.
    h = await T.start_turn(db, None, "where is the wavetable?", None, 0.0)
    await T.finish_turn(db, h, "Page 14 [1], my note [2], the video [3].", sources, "m", "global",
                        None, "answered")
    _, answer = await T.load_conversation(db, h.conversation_id)
    assert [s["locator"] for s in answer["sources"]] == [s["locator"] for s in sources]
    assert [s["locator_label"] for s in answer["sources"]] == [s["locator_label"] for s in sources]

    md = conversation_to_markdown({"id": h.conversation_id, "title": "t"}, [
        {"turn": 1, "role": "user", "content": "where is the wavetable?"},
        {"turn": 1, "role": "assistant", "content": answer["content"], "sources": answer["sources"]},
    ])
    assert "[^1-1]: Synth manual — Synth Co — Oscillators — manuals/synth.pdf, p. 14–15" in md
    assert "[^1-2]: Reverb notes — Me — notes/reverb.md › Pre-delay" in md
    assert "[^1-3]: Reverb pre-delay explained — Mix Lab — Decay and damping — " \
           "Reverb pre-delay explained @ 02:05–04:05" in md

    detail = await source_detail(db, sources[0]["slug"], "oscillators")
    assert detail["locator"]["first_page"] == 14 and detail["locator_label"] == "p. 14–15"
    note = await source_detail(db, sources[1]["slug"], "pre-delay")
    assert note["locator"]["line"] == 3 and note["locator"]["file"] == str(tmp_path / "notes" / "reverb.md")


def test_source_line_of_an_older_source_is_unchanged():
    assert source_line({"title": "T", "creator_name": "C", "section_heading": "H",
                        "video_title": "V", "start_time": 95, "end_time": 160}) == "T — C — H — V @ 01:35–02:40"


def _exe(bin_dir: Path, name: str) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.mark.parametrize(("viewer", "flag"), [("zathura", "-P"), ("evince", "-i"), ("okular", "-p")])
def test_pdf_opens_at_its_page(tmp_path, viewer, flag):
    pdf = tmp_path / "-odd name.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    exe = _exe(tmp_path / "bin", viewer)
    plan = plan_open({"locator": {"kind": "page", "file": str(pdf), "first_page": 14, "last_page": 15}},
                     media_dir=None, path=str(tmp_path / "bin"))
    assert plan.kind == "viewer"
    assert plan.argv == (str(exe), flag, "14", str(pdf))  # absolute: never read as an option
    assert pdf_viewer_command(viewer, "v", pdf, None) == ["v", str(pdf)]


def test_pdf_viewer_order_and_system_opener(tmp_path):
    pdf = tmp_path / "m.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    loc = {"kind": "page", "file": str(pdf), "first_page": 3}
    _exe(tmp_path / "bin", "okular")
    zathura = _exe(tmp_path / "bin", "zathura")
    assert plan_open_document(loc, path=str(tmp_path / "bin")).argv[0] == str(zathura)
    opener = _exe(tmp_path / "only-opener", "xdg-open")
    plan = plan_open_document(loc, path=str(tmp_path / "only-opener"))
    assert plan.argv == (str(opener), str(pdf)) and "page 3" in plan.message
    none = plan_open_document(loc, path=str(tmp_path / "empty"))
    assert none.kind == "none" and "no PDF viewer" in none.message
    gone = plan_open_document({"kind": "page", "file": str(tmp_path / "gone.pdf"), "path": "m/gone.pdf"})
    assert gone.kind == "none" and "m/gone.pdf" in gone.message


def test_note_opens_in_the_editor_at_its_line(tmp_path):
    note = tmp_path / "reverb.md"
    note.write_text("# x\n")
    loc = {"kind": "heading", "file": str(note), "line": 12, "path": "notes/reverb.md"}
    plan = plan_open_note(loc, env={"EDITOR": "nvim -u NONE"})
    assert plan.kind == "editor" and plan.argv == ("nvim", "-u", "NONE", "+12", str(note))
    assert plan_open_note(loc, env={"VISUAL": "emacs"}).argv == ("emacs", "+12", str(note))
    assert editor_command(note, 1, env={}) == ["vi", str(note)]
    assert editor_command(note, 5, env={"EDITOR": "'unclosed"}) == ["vi", "+5", str(note)]
    # The editor takes the terminal: `launch` (detached, no terminal) does not run it.
    assert "needs the terminal" in launch(plan)
    assert plan_open({"locator": loc}, media_dir=None).kind == "editor"
