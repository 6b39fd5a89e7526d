"""The usage screen by user: three users' requests written by the real ChatService (HTTP to
the loopback model server) into a real database, the app's usage screen (F4), `u`, and
each user's numbers on the screen."""

from __future__ import annotations

import re

import pytest
from test_app_support import app_settings, load_mini_kb, make_test_app, wait_until

from tui.screens.usage import UsageScreen, fmt_int, fmt_ms

SIZE = (120, 40)

# (user, questions answered, requests that failed)
USERS = [("ana", 3, 0), ("ben", 2, 0), ("cleo[b]x[/b]", 1, 1)]


async def _ask_as(settings, user: str, question: str) -> str:
    """Ask as `user` through a ChatService of its own (as a terminal would); the last event."""
    from tui.commands._common import open_database
    from tui.services.chat import ChatService
    from tui.services.history import open_history

    settings = settings.with_overrides(user_id=user)
    db = await open_database(settings, load_bundled=False)
    history = await open_history(settings, db)
    chat = ChatService(settings, db, history)
    try:
        events = [e async for e in chat.stream_response(question)]
    finally:
        await chat.aclose()
        await history.close()
        await db.dispose()
    return events[-1].event


@pytest.fixture
async def three_users(tmp_path, llm_settings, fake_llm, fake_llm_fallback):
    settings = app_settings(tmp_path, llm_settings)
    await load_mini_kb(settings)
    for user, answered, failed in USERS:
        for k in range(answered):
            assert await _ask_as(settings, user, f"parallel compression on drums, take {k}") == "done"
        if failed:
            fake_llm.set_mode("error500")
            fake_llm_fallback.set_mode("error500")
            for _ in range(failed):
                assert await _ask_as(settings, user, "sidechain ducking of the bass") == "error"
            fake_llm.set_mode("normal")
            fake_llm_fallback.set_mode("normal")
    return settings


def _screen_lines(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def test_the_usage_screen_groups_by_user(three_users):
    from tui.commands._common import open_database
    from tui.services.usage import usage_report

    db = await open_database(three_users, load_bundled=False)
    try:
        report = await usage_report(db, 30, by_user=True)
    finally:
        await db.dispose()
    by_id = {u["user_id"]: u for u in report["users"]}
    assert [(u, by_id[u]["answered"], by_id[u]["failed"]) for u, _, _ in USERS] == [
        (u, a, f) for u, a, f in USERS]
    for user, _, _ in USERS:
        row = by_id[user]
        assert row["total_tokens"] > 0 and row["last_seen"]
        assert row["latency_p50_ms"] <= row["latency_p95_ms"]

    app = make_test_app(three_users)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        await pilot.press("f4")
        await wait_until(pilot, lambda: isinstance(app.screen, UsageScreen), what="usage screen")
        await pilot.pause()
        screen = app.screen
        assert "By user" in "\n".join(_screen_lines(app))  # the key, in the footer
        assert not any(line.lstrip("│ ").startswith("ana ") for line in _screen_lines(app))

        await pilot.press("u")
        await wait_until(pilot, lambda: screen.has_class("-by-user"), what="the view by user")
        await pilot.pause()
        lines = _screen_lines(app)
        text = "\n".join(lines)
        assert "Usage by user" in text and "Overview" in text  # the key now goes back
        for user, _, _ in USERS:
            row = by_id[user]
            # The user's line in the table: the id as typed (markup shown literally), then
            # requests, answered, failed, tokens, p50, p95 and when last seen.
            line = next(line for line in lines if re.search(rf"│\s*{re.escape(user)}\s+\d", line))
            cells = line.strip("│ ").split("  ")
            cells = [c.strip() for c in cells if c.strip()]
            assert cells[:7] == [user, fmt_int(row["requests"]), fmt_int(row["answered"]),
                                 fmt_int(row["failed"]), fmt_int(row["total_tokens"]),
                                 fmt_ms(row["latency_p50_ms"]), fmt_ms(row["latency_p95_ms"])]
            assert cells[7] == "just now"

        await pilot.press("u")
        await wait_until(pilot, lambda: not screen.has_class("-by-user"), what="the overview")
        await pilot.pause()
        assert "By user" in "\n".join(_screen_lines(app))
