"""The claim check in the app, driven as a user would: an answer streamed from the
loopback model server (tests/fake_openai.py) with one misattributed and one unsupported
claim, over the mini knowledge base, through the real ChatService.

What the user sees: the quiet marks after the two claims (none after the supported one),
the summary in the meta line, the right source offered, the supporting words lit in the
source detail, the jump key, the sidebar's per-source counts; and the same marks when
the conversation is resumed, also for an answer saved before checks were stored.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update
from test_app_support import app_settings, load_mini_kb, make_test_app, wait_until
from textual.widgets import Markdown

from tui.answer_segmenter import CLAIM_MARKS
from tui.db.models import Message

SIZE = (120, 40)
QUESTION = "parallel compression on drums"
SUPPORTED = "Send the drum bus to an aux with a compressor at 10:1"
WRONG_SOURCE = "Bring the crushed return up until the drums feel thicker, 6 to 10 dB under the dry bus"
MADE_UP = "Set the release on the return to 400 ms"


@pytest.fixture
async def kb_settings(tmp_path, llm_settings):
    settings = app_settings(tmp_path, llm_settings)
    await load_mini_kb(settings)
    return settings


async def numbering(settings) -> dict[str, int]:
    """The numbers the service gives the sections for QUESTION (search is deterministic)."""
    from tui.commands._common import open_database
    from tui.services.search import SearchService

    db = await open_database(settings, load_bundled=False)
    try:
        items = (await SearchService(None).search(QUESTION, limit=10, db=db))["items"]
    finally:
        await db.dispose()
    return {i["section_anchor"]: n for n, i in enumerate(items, start=1)}


def script(setup: int, blend: int) -> list[str]:
    """Supported, misattributed (cites the setup section; the blend section says it),
    a code block (not a claim; it puts the last claim a screen further down), unsupported
    (no section has 400 ms); cut into tokens the way a model streams them."""
    code = "".join(f"bus {k}: send -> aux\n" for k in range(45))
    answer = (
        "Here's a starting point:\n\n"
        f"- {SUPPORTED} [{setup}].\n"
        f"- {WRONG_SOURCE} [{setup}].\n\n"
        f"```\n{code}```\n\n"
        f"{MADE_UP} [{blend}].\n"
    )
    return [answer[i:i + 5] for i in range(0, len(answer), 5)]


def toasts(app) -> str:
    return "\n".join(str(t.render()) for t in app.screen.query("Toast"))


def visible(app, widget) -> bool:
    view = app.conversation
    return view.region.contains_region(widget.region) and widget.region.height > 0


async def test_marks_summary_offered_source_lit_span_and_jump_key(kb_settings, fake_llm):
    n = await numbering(kb_settings)
    setup, blend = n["setup"], n["blend"]
    fake_llm.set_mode("normal", tokens=script(setup, blend))
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        app.prompt.load_text(QUESTION)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation.answers
                         and app.conversation.last_answer.status == "answered"
                         and app.conversation.last_answer.marked, what="answer marked")
        await pilot.pause()
        answer = app.conversation.last_answer
        claims = answer.claims
        assert [i["status"] for i in claims["items"]] == ["supported", "misattributed",
                                                          "unsupported"]

        # A mark after each questionable claim, none after the supported one.
        source = answer.markdown_source
        assert f"[{CLAIM_MARKS['misattributed']}](claim:1)" in source
        assert f"[{CLAIM_MARKS['unsupported']}](claim:2)" in source
        assert "claim:0" not in source
        assert source.index(WRONG_SOURCE) < source.index("claim:1") < source.index("```")
        assert source.index(MADE_UP) < source.index("claim:2")
        # The marks are what the user sees: in the rendered blocks, next to their claims.
        lines = [str(b._content) for b in answer.query("MarkdownBlock") if hasattr(b, "_content")]
        assert any(WRONG_SOURCE in line and CLAIM_MARKS["misattributed"] in line for line in lines)

        # The meta line's summary names the source the misattributed claim belongs to.
        assert (f"3 claims · 1 supported · 1 misattributed → [{blend}] · 1 without support"
                in answer._meta_text)

        # The sidebar: per source, the claims it backs.
        assert app.sidebar.backed[setup - 1] == 1 and app.sidebar.backed[blend - 1] == 1
        prompts = [str(app.sidebar.option_list.get_option_at_index(i).prompt)
                   for i in range(len(app.sidebar.sources))]
        assert all("✓1" in p for p in prompts)

        # The jump key: at the bottom, the misattributed claim is scrolled into view and
        # explained, the right source offered (and selected in the sidebar).
        wrong_block = answer.claim_block(1)
        assert not visible(app, wrong_block)
        await pilot.press("f5")
        await pilot.pause()
        assert visible(app, wrong_block)
        await wait_until(pilot, lambda: f"[{setup}] does not say this; [{blend}] does."
                         in toasts(app), what="the explanation")
        assert app.sidebar.highlighted_number == blend

        # Enter on the offered source opens it with the supporting words lit, in view.
        await pilot.press("ctrl+l", "enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SourceDetailScreen")
        await pilot.pause()
        detail = app.screen
        assert detail.highlight is not None and detail.lit
        lit = detail.lit[0]
        assert "6 to 10 dB under the dry bus" in str(lit.render())
        assert detail.query_one("#sd-body").region.contains_region(lit.region)
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ChatScreen")

        # Again: the next one, the unsupported claim a screen below.
        made_up_block = answer.claim_block(2)
        assert not visible(app, made_up_block)
        await pilot.press("f5")
        await pilot.pause()
        assert visible(app, made_up_block)
        await wait_until(pilot, lambda: "Without support" in toasts(app))
        # ... and it wraps around to the first.
        await pilot.press("f5")
        await pilot.pause()
        assert visible(app, wrong_block)

        # Clicking a citation opens its source, the words behind it lit.
        await pilot.press("f2")
        app.conversation.scroll_home(animate=False)
        await pilot.pause()
        app.screen._claim_focus = None
        markdown = answer.query_one(Markdown)
        markdown.post_message(Markdown.LinkClicked(markdown, f"cite:{setup}"))
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SourceDetailScreen")
        await pilot.pause()
        assert "10:1" in str(app.screen.lit[0].render())
        await pilot.press("escape")

        # A claim's mark clicked: its explanation.
        markdown.post_message(Markdown.LinkClicked(markdown, "claim:2"))
        await wait_until(pilot, lambda: "400 ms" in toasts(app))


async def test_a_resumed_conversation_shows_its_marks_also_when_saved_unchecked(
    kb_settings, fake_llm
):
    n = await numbering(kb_settings)
    fake_llm.set_mode("normal", tokens=script(n["setup"], n["blend"]))
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        app.prompt.load_text(QUESTION)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation.answers
                         and app.conversation.last_answer.marked, what="answer marked")
        first = app.conversation.last_answer
        cid, shown, meta = app.conversation_id, first.markdown_source, first._meta_text

        for stored in ("with its check", "without"):
            if stored == "without":
                # Saved before checks were kept: checked again from the knowledge base.
                async with app.services.db.session() as session, session.begin():
                    await session.execute(update(Message).where(Message.conversation_id == cid)
                                          .values(claims=None))
            await pilot.press("ctrl+n")
            await wait_until(pilot, lambda: not app.conversation.answers)
            app.screen.resume(cid)
            await wait_until(pilot, lambda: app.conversation.answers
                             and app.conversation.last_answer.marked, what=f"resumed {stored}")
            await pilot.pause()
            restored = app.conversation.last_answer
            assert restored.markdown_source == shown
            assert restored._meta_text.endswith(meta.split(" · ", 3)[-1])
            assert "1 misattributed" in restored._meta_text
            assert app.sidebar.backed == list(first.claim_view.backed)


async def test_the_lit_words_stay_at_their_offsets_when_the_source_holds_escapes():
    from test_screens_pilot import Host

    from tui.screens.source_detail import SourceDetailScreen

    body = ("Intro line.\n\nSet the \x1b[31mrelease\x1b[0m to 80 ms [bold]now[/bold].\n\n"
            "Outro line.")
    start = body.index("Set")
    end = body.index("[bold]")
    detail = {"title": "T", "section_body": body, "number": 1}
    app = Host(lambda: SourceDetailScreen(detail, highlight=("section_body", start, end)))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, SourceDetailScreen))
        await pilot.pause()
        screen = app.screen
        (lit,) = screen.lit
        content = lit.render()
        assert content.plain == "Set the release to 80 ms [bold]now[/bold]."
        lit_text = "".join(content.plain[s.start:s.end] for s in content.spans)
        assert lit_text == "Set the release to 80 ms "
        assert len(screen.query(".sd-para")) == 3


async def test_the_jump_key_goes_on_to_the_next_answer_and_wraps(kb_settings, fake_llm):
    n = await numbering(kb_settings)
    fake_llm.set_mode("normal", tokens=script(n["setup"], n["blend"]))
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        for asked in (1, 2):
            app.prompt.load_text(QUESTION)
            await pilot.press("enter")
            await wait_until(pilot, lambda asked=asked: len(app.conversation.answers) == asked
                             and app.conversation.last_answer.marked, what=f"answer {asked} marked")
        await pilot.pause()
        first, second = app.conversation.answers
        # From the answer in view (the last), through its two questionable claims, on to
        # the first answer's, and round again.
        seen = []
        for _ in range(5):
            await pilot.press("f5")
            await pilot.pause()
            answer, index = app.screen._claim_focus
            seen.append(("first" if answer is first else "second", index))
            assert visible(app, answer.claim_block(index))
        def questionable(answer):
            return [k for k, i in enumerate(answer.claims["items"])
                    if i["status"] in ("misattributed", "unsupported")]

        expected = [("second", k) for k in questionable(second)] + [
            ("first", k) for k in questionable(first)]
        assert len(expected) >= 4  # two answers, each with a misattributed and an unsupported claim
        assert seen == (expected * 2)[:5]
        # The sidebar follows: the offered source of the first answer's claim was picked there.
        await wait_until(pilot, lambda: "Without support" in toasts(app))


async def test_marks_are_drawn_in_an_answer_longer_than_the_markdown_part(kb_settings, fake_llm):
    """Past MARKDOWN_LINES an answer goes on as plain text: a questionable claim there
    gets its mark in the plain text, one before it its link in the Markdown, and the
    jump key reaches both."""
    from tui.answer_segmenter import MARKDOWN_LINES

    n = await numbering(kb_settings)
    setup, blend = n["setup"], n["blend"]
    code = "".join(f"bus {k}: send -> aux\n" for k in range(MARKDOWN_LINES + 30))
    text = (f"Here's a starting point:\n\n- {SUPPORTED} [{setup}].\n- {WRONG_SOURCE} [{setup}].\n\n"
            f"```\n{code}```\n\n{MADE_UP} [{blend}].\n")
    fake_llm.set_mode("normal", tokens=[text[i:i + 40] for i in range(0, len(text), 40)])
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_until(pilot, app.ready.is_set, what="services loaded")
        app.prompt.load_text(QUESTION)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation.answers
                         and app.conversation.last_answer.marked, what="answer marked", timeout=60)
        await pilot.pause()
        answer = app.conversation.last_answer
        assert [i["status"] for i in answer.claims["items"]] == ["supported", "misattributed",
                                                                 "unsupported"]
        assert f"[{CLAIM_MARKS['misattributed']}](claim:1)" in answer.markdown_source
        assert MADE_UP not in answer.markdown_source  # past the Markdown part ...
        assert f"{MADE_UP} [{blend}]. {CLAIM_MARKS['unsupported']}" in answer.plain_text  # ... marked
        assert answer.query_one(".-note")
        # Nothing lost or doubled: the Markdown part and the plain part make the answer.
        assert answer.plain_text.replace(f" {CLAIM_MARKS['unsupported']}", "") == text[text.rindex("```\n") + 4:]

        plain_block = answer.claim_block(2)
        assert plain_block is not None and plain_block.has_class("body-plain")
        for index in (1, 2):
            await pilot.press("f5")
            await pilot.pause()
            assert app.screen._claim_focus == (answer, index)
            assert visible(app, answer.claim_block(index))
        await wait_until(pilot, lambda: "Without support" in toasts(app))
