"""A PDF manual and a Markdown note, imported by the real importer, cited and opened from the app.

The PDF viewer and $EDITOR are small scripts in the test's temp dir that record their
argv: real processes started by the app, nothing of ours replaced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from materials_fixtures import pdf_bytes
from test_app_support import app_settings, make_test_app, wait_until
from textual.drivers.headless_driver import HeadlessDriver
from textual.widgets import Static

from tui.db.engine import Database
from tui.services.kb_import import import_paths

SIZE = (120, 40)

NOTE = """---
title: Reverb notes
tags: [reverb]
---
Intro words before any heading.

## Pre-delay

Set the shimmer reverb pre-delay to 40 ms so the snare transient stays dry.

## Decay

A long decay smears the groove.
"""

PDF_PAGES = [
    "Polygon Synth Manual\nWelcome.",
    "Oscillators\nTwo oscillators with wavetable morphing.",
    "More oscillator detail\nSync and ring modulation.",
    "Shimmer Reverb\nThe shimmer reverb adds an octave-up tail to pads.",
    "Shimmer Reverb settings\nPre-delay of the shimmer reverb goes up to 500 ms.",
]


def recorder(folder: Path, name: str, out: Path) -> Path:
    """An executable that writes its argv, one per line, to `out`, and exits."""
    script = folder / name
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{out}"\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
async def material_settings(tmp_path):
    settings = app_settings(tmp_path)
    kb = tmp_path / "kb"
    (kb / "notes").mkdir(parents=True)
    (kb / "notes" / "reverb.md").write_text(NOTE, encoding="utf-8")
    (kb / "synth.pdf").write_bytes(pdf_bytes(
        PDF_PAGES, outline=[("Oscillators", 1), ("Shimmer Reverb", 3)], author="Polygon Audio"))
    db = Database(settings.database_url)
    await db.init()
    try:
        run = await import_paths(db, [kb / "notes", kb / "synth.pdf"], creator="Test Ada")
    finally:
        await db.dispose()
    assert not run.refused, run.refused
    return settings, kb


def detail_text(app) -> str:
    return str(app.screen.query_one("#sd-video", Static).render())


async def open_detail(app, pilot, number: int) -> None:
    await pilot.press("ctrl+l")
    app.sidebar.select_number(number)
    await pilot.press("enter")
    await wait_until(pilot, lambda: type(app.screen).__name__ == "SourceDetailScreen",
                     what="source detail")
    await pilot.pause()


async def test_pdf_and_note_sources_show_where_and_open(material_settings, tmp_path, monkeypatch):
    settings, kb = material_settings
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    viewer_argv, editor_argv = tmp_path / "viewer.argv", tmp_path / "editor.argv"
    recorder(bin_dir, "zathura", viewer_argv)
    editor = recorder(bin_dir, "my-editor", editor_argv)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("EDITOR", str(editor))
    # Textual's headless test driver says it cannot suspend (a real terminal's driver can);
    # it is told it can, so App.suspend runs its real path: signals, driver stop and restart.
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))

    app = make_test_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        assert app.boot_error is None
        app.prompt.load_text("shimmer reverb pre-delay")
        app.prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.sidebar.sources) > 0, what="sources")
        await wait_until(pilot, lambda: not app.streaming, what="answer done")
        sources = app.sidebar.sources
        by_label = {s.get("locator_label"): s for s in sources}
        # The outline's "Shimmer Reverb" entry covers the 4th and 5th pages; the note's
        # "## Pre-delay" section is its heading in its file.
        assert {"p. 4–5", "notes/reverb.md › Pre-delay"} <= set(by_label), list(by_label)
        pdf_source, note_source = by_label["p. 4–5"], by_label["notes/reverb.md › Pre-delay"]
        assert pdf_source["locator"]["kind"] == "page"
        assert note_source["locator"]["kind"] == "heading"

        # The sidebar shows each source's label.
        option_texts = [str(app.sidebar.option_list.get_option_at_index(i).prompt)
                        for i in range(len(sources))]
        assert any("p. 4–5" in t for t in option_texts), option_texts
        assert any("notes/reverb.md › Pre-delay" in t for t in option_texts), option_texts

        # The PDF: the detail says where, "o" starts the viewer at the first page.
        await open_detail(app, pilot, pdf_source["number"])
        shown = detail_text(app)
        assert "p. 4–5" in shown and "opens the PDF at page 4" in shown, shown
        assert app.screen.check_action("open_document", ()) is True
        assert app.screen.check_action("open_video", ()) is False
        await pilot.press("o")
        await wait_until(pilot, viewer_argv.exists, what="the viewer to run")
        await wait_until(pilot, lambda: viewer_argv.read_text().count("\n") >= 3)
        assert viewer_argv.read_text().splitlines() == ["-P", "4", str(kb / "synth.pdf")]
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ != "SourceDetailScreen")

        # The note: "o" suspends the app, runs $EDITOR +LINE FILE, and resumes it.
        await open_detail(app, pilot, note_source["number"])
        shown = detail_text(app)
        assert "notes/reverb.md › Pre-delay" in shown and "edits the note at line 7" in shown, shown
        # The driver's own suspend and resume calls say whether the editor had run yet.
        events: list[tuple[str, bool]] = []
        for name in ("suspend_application_mode", "resume_application_mode"):
            original = getattr(HeadlessDriver, name)

            def recording(self, _original=original, _name=name.split("_")[0]):
                events.append((_name, editor_argv.exists()))
                _original(self)

            monkeypatch.setattr(HeadlessDriver, name, recording)
        signals: list[str] = []
        app.app_suspend_signal.subscribe(app, lambda _app: signals.append("suspend"))
        app.app_resume_signal.subscribe(app, lambda _app: signals.append("resume"))
        await pilot.press("o")
        await wait_until(pilot, lambda: len(signals) == 2, what="suspend and resume signals")
        # Suspended before the editor ran, resumed after it had finished.
        assert events == [("suspend", False), ("resume", True)]
        assert signals == ["suspend", "resume"]
        assert editor_argv.read_text().splitlines() == ["+7", str(kb / "notes" / "reverb.md")]
        assert type(app.screen).__name__ == "SourceDetailScreen"


async def test_a_video_source_shows_its_upload_date(tmp_path):
    """A yt-dlp download's upload_date (info.json 20240102) reaches the sources event and
    the source detail opened from the sidebar."""
    from materials_fixtures import write_download

    settings = app_settings(tmp_path)
    write_download(tmp_path / "yt", "Reverb Tricks for Vocals [dQw4w9WgXcQ]")
    db = Database(settings.database_url)
    await db.init()
    try:
        run = await import_paths(db, [tmp_path / "yt"])
    finally:
        await db.dispose()
    assert not run.refused, run.refused

    app = make_test_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        app.prompt.load_text("reverb pre-delay")
        app.prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.sidebar.sources) > 0, what="sources")
        await wait_until(pilot, lambda: not app.streaming, what="answer done")
        source = app.sidebar.sources[0]
        assert source["source_video_id"] == "dQw4w9WgXcQ"
        assert source["video_upload_date"] == "2024-01-02"
        await open_detail(app, pilot, source["number"])
        lines = detail_text(app).splitlines()
        assert lines[0].startswith("Video  Reverb Tricks for Vocals  @ "), lines
        assert lines[1] == "Uploaded 2024-01-02", lines

    # The transcript keeps the sources as sent: a restored conversation has the day too.
    from tui.services.transcripts import list_conversations, load_conversation

    db = Database(settings.database_url)
    try:
        (conversation,) = await list_conversations(db)
        messages = await load_conversation(db, conversation.id)
    finally:
        await db.dispose()
    answer = next(m for m in messages if m["role"] == "assistant")
    assert answer["sources"][0]["video_upload_date"] == "2024-01-02"
