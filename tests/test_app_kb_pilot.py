"""What the app says about the knowledge base it has loaded: the demo pages, the creators'
profiles, a distill run from the command palette."""

from __future__ import annotations

import json

from test_app_support import app_settings, load_mini_kb, make_test_app, wait_until

from tui.db.engine import Database
from tui.db.importer import ensure_demo_kb, remove_demo_kb

SIZE = (120, 40)


def status_text(app) -> str:
    return str(app.status_bar.render())


async def test_status_bar_says_when_the_demo_pages_are_loaded(tmp_path):
    settings = app_settings(tmp_path)
    db = Database(settings.database_url)
    await db.init()
    try:
        await ensure_demo_kb(db, settings, force=True)  # `chrysopedia import --demo`
    finally:
        await db.dispose()

    app = make_test_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        assert app.boot_error is None
        await pilot.pause()
        assert "demo KB" in status_text(app)
        assert "chrysopedia import PATH" in status_text(app)
        demo_creators = len(app.picker.creators)
        assert demo_creators > 0

        # The demo pages removed (`kb remove --demo`): the app reads the state again.
        await remove_demo_kb(app.services.db)
        app.chat.refresh_kb_state()
        await wait_until(pilot, lambda: "demo KB" not in status_text(app), what="demo gone")
        assert len(app.picker.creators) < demo_creators


async def test_no_demo_hint_for_the_users_own_knowledge_base(tmp_path):
    settings = app_settings(tmp_path)
    await load_mini_kb(settings)
    app = make_test_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        await pilot.pause()
        assert app.picker.creators  # the mini KB's
        assert "demo KB" not in status_text(app)


async def test_distill_from_the_palette_measures_a_profile_and_the_picker_says_so(tmp_path):
    """No model configured: distill measures the creator's profile from their transcripts;
    the picker, the voice preview and the status bar follow, the app stays usable."""
    from materials_fixtures import write_download
    from sqlalchemy import update

    from tui.db.models import Creator
    from tui.services.kb_import import import_paths

    settings = app_settings(tmp_path)
    write_download(tmp_path / "yt", "Reverb Tricks for Vocals [dQw4w9WgXcQ]")
    db = Database(settings.database_url)
    await db.init()
    try:
        run = await import_paths(db, [tmp_path / "yt"])
        assert not run.refused, run.refused
        async with db.session() as session:  # as before any profile was made
            await session.execute(update(Creator).values(personality_profile=None))
            await session.commit()
    finally:
        await db.dispose()

    app = make_test_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        (slug,) = app.picker.creators
        assert app.picker.creators[slug]["profile_kind"] is None
        assert "·" not in str(app.picker.label(app.picker.creators[slug]))

        # Without a creator chosen, the entry says what to do.
        app.chat.action_distill()
        await pilot.pause()
        assert not [w for w in app.workers if w.group == "distill"]

        app.picker.value = slug
        await pilot.press("ctrl+p")
        await pilot.press(*"Distill the chosen")
        await wait_until(pilot, lambda: "Distill" in str(app.screen.query("CommandList").first()
                                                         .get_option_at_index(0).prompt),
                         what="palette entry")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.picker.creators[slug].get("profile_kind") == "measured",
                         what="measured profile")
        assert "Mix Desk Pro · measured" in str(app.picker.label(app.picker.creators[slug]))
        assert "job" in app.status_bar.fields and app.status_bar.fields["job"] == ""
        preview = str(app.chat.query_one("#voice-preview-text").render())
        assert "Measured from their transcripts" in preview, (preview, app.picker.creator)


def ts(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}.{round((seconds - whole) * 1000):03d}"


async def test_distill_with_a_model_shows_progress_and_the_new_voice_is_used(tmp_path, settings,
                                                                            fake_llm):
    """A model configured (the loopback server): the page is distilled and the profile
    written by the model while the prompt keeps taking keys; the status bar shows the run;
    afterwards the picker says "distilled" and the chat service uses the new profile."""
    from fixtures_llm import TEST_API_KEY
    from materials_fixtures import write_download
    from test_distill import DURATION, PROFILE, SAID, VALID

    from tui.services.kb_import import import_paths

    vtt = "WEBVTT\n\n" + "".join(f"{ts(a)} --> {ts(b)}\n{t}\n\n" for a, b, t in SAID)
    write_download(tmp_path / "yt", "SMASH your drums [smash000001]", vtt=vtt,
                   video_id="smash000001", title="SMASH your drums", channel="Kaito",
                   uploader="Kaito", duration=DURATION, description="Parallel compression.")
    settings = app_settings(tmp_path, settings, llm_api_url=fake_llm.url, llm_api_key=TEST_API_KEY,
                            llm_model="primary-model", llm_read_timeout=10.0)
    db = Database(settings.database_url)
    await db.init()
    try:
        run = await import_paths(db, [tmp_path / "yt"])
        assert not run.refused, run.refused
    finally:
        await db.dispose()
    fake_llm.set_mode("normal", replies=[json.dumps(VALID), json.dumps(PROFILE)], delay=0.4)

    app = make_test_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        assert app.picker.creators["kaito"]["profile_kind"] != "distilled"
        before = await app.services.chat.creator_profile("kaito")  # now cached
        assert "model" not in ((before["profile"] or {}).get("_source") or {}).values()

        app.picker.value = "kaito"
        await pilot.pause()
        app.chat.action_distill()
        seen: list[str] = []
        app.prompt.focus()

        def watch() -> bool:
            seen.append(str(app.status_bar.render()))
            return app.picker.creators["kaito"].get("profile_kind") == "distilled"

        await pilot.press(*"still typing")  # the app takes keys while the run goes on
        await wait_until(pilot, watch, timeout=30, what="distilled profile")
        assert app.prompt.text == "still typing"
        assert any("distilling Kaito: 1/1 pages" in s and "tokens" in s for s in seen), seen
        assert "distilling" not in str(app.status_bar.render())
        assert len(fake_llm.chat_requests) == 2

        # The chat service forgot its cached profile: the next answer's voice is the new one.
        after = await app.services.chat.creator_profile("kaito")
        assert after["profile"]["tone"]["energy"] == "high"
        assert after["profile"]["_source"]["energy"] == "model"
        preview = str(app.chat.query_one("#voice-preview-text").render())
        assert "Written by a model (primary-model)" in preview or app.slider.value < 0.2, preview


async def test_distill_of_a_creator_without_transcripts_says_so(tmp_path):
    settings = app_settings(tmp_path)
    await load_mini_kb(settings)  # hand-written KB pages: no transcripts to distill
    app = make_test_app(settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        app.picker.value = "test-ada"
        await pilot.pause()
        assert str(app.picker.label(app.picker.creator)) == "Test Ada · hand-written"
        app.chat.action_distill()

        def notes() -> str:
            return " ".join(n.message for n in app._notifications)  # as the other TUI tests

        await wait_until(pilot, lambda: "Nothing to distill" in notes(), what="the message")
        assert "test-ada" in notes() and "no imported transcripts" in notes()
        assert app.status_bar.fields["job"] == ""
