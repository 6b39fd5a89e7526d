"""The app driven as a user would, with Pilot: keys and mouse, real services, real sockets.

Answers come from the real ChatService talking HTTP to the loopback fake model
server (tests/fake_openai.py) over a SQLite file holding tests/data/mini_kb.json.
Tests wait on conditions (`wait_until`), never on sleeps.
"""

from __future__ import annotations

import json

import pytest
from test_app_support import ScriptedChat, app_settings, load_mini_kb, make_test_app, wait_until
from textual.widgets import Markdown
from textual.widgets._markdown import MarkdownBlock

from tui.answer_segmenter import CitationLinker, link_citations
from tui.widgets.conversation import AssistantMessage
from tui.widgets.safe_text import clean, plain

SIZE = (120, 40)


@pytest.fixture
async def kb_settings(tmp_path, llm_settings):
    """Settings pointing at the fake model servers and a mini-KB database."""
    settings = app_settings(tmp_path, llm_settings)
    await load_mini_kb(settings)
    return settings


@pytest.fixture
async def offline_settings(tmp_path):
    settings = app_settings(tmp_path)
    await load_mini_kb(settings)
    return settings


def settled(answer: AssistantMessage | None) -> bool:
    return answer is not None and answer.status not in ("working", "streaming")


async def start(app, pilot) -> None:
    await wait_until(pilot, app.ready.is_set, what="services loaded")
    assert app.boot_error is None


async def ask(app, pilot, question: str) -> AssistantMessage:
    count = len(app.conversation.answers)
    app.prompt.load_text(question)
    app.prompt.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: len(app.conversation.answers) > count, what="answer mounted")
    answer = app.conversation.answers[-1]
    await wait_until(pilot, lambda: settled(answer), what="answer settled")
    await pilot.pause()
    return answer


# -- asking and streaming --------------------------------------------------------------


async def test_ask_streams_from_loopback_server(kb_settings, fake_llm):
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press(*"parallel compression on drums")
        await pilot.press("enter")
        answer = app.conversation.answers[-1] if app.conversation.answers else None
        await wait_until(pilot, lambda: settled(app.conversation.last_answer))
        answer = app.conversation.last_answer
        assert answer.status == "answered"
        assert answer.raw.startswith("Parallel compression adds sustain [1]")
        # Citations in range became links; the sidebar shows this answer's sources.
        assert "[\\[1\\]](cite:1)" in answer.markdown_source
        assert len(app.sidebar.sources) == len(answer.sources) >= 2
        assert "primary-model" in answer._meta_text and "tokens" in answer._meta_text
        assert app.status_bar.fields["model"] == "primary-model"
        assert app.status_bar.fields["memory"] == "local"
        assert app.prompt.text == ""  # sent and cleared
        assert fake_llm.chat_requests, "the model server was asked"


async def test_offline_digest_without_a_model(offline_settings):
    app = make_test_app(offline_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert app.status_bar.fields["model"] == "offline digest"
        answer = await ask(app, pilot, "sidechain ducking the bass")
        assert answer.status == "answered"
        assert answer.sources and answer.raw


async def test_empty_prompt_does_nothing_and_up_recalls(offline_settings):
    app = make_test_app(offline_settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("enter")
        await pilot.press("space", "enter")
        assert app.conversation.answers == []
        await ask(app, pilot, "first question")
        await ask(app, pilot, "second question")
        await pilot.press("up")
        assert app.prompt.text == "second question"
        await pilot.press("up")
        assert app.prompt.text == "first question"
        await pilot.press("down", "down")
        assert app.prompt.text == ""
        # Ctrl+J inserts a newline instead of sending.
        await pilot.press("a", "ctrl+j", "b")
        assert app.prompt.text == "a\nb"
        assert len(app.conversation.answers) == 2


async def test_question_refused_while_streaming(offline_settings):
    chat = ScriptedChat(mode="hold")
    app = make_test_app(offline_settings, chat_service=chat)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.prompt.load_text("one")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.streaming and app.conversation.last_answer is not None
                         and app.conversation.last_answer.status == "streaming")
        app.prompt.load_text("two")
        await pilot.press("enter")
        await pilot.pause()
        assert app.prompt.text == "two", "the refused question stays in the prompt"
        assert len(chat.calls) == 1
        chat.release.set()
        await wait_until(pilot, lambda: settled(app.conversation.last_answer))
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(chat.calls) == 2)


# -- sources ---------------------------------------------------------------------------


async def test_clicking_a_source_opens_its_detail(offline_settings):
    app = make_test_app(offline_settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await ask(app, pilot, "parallel compression")
        option_list = app.sidebar.option_list
        # Row 0-2 is source 1 (three lines); click the second source's title line.
        await pilot.click(option_list, offset=(4, 3))
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SourceDetailScreen")
        assert app.screen.detail["number"] == 2
        assert app.screen.detail["section_heading"] == "Blending"
        assert "section_body" in app.screen.detail  # the full detail from the KB
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ != "SourceDetailScreen")


async def test_keyboard_sources_focus_move_enter_escape(offline_settings):
    app = make_test_app(offline_settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await ask(app, pilot, "parallel compression")
        await pilot.press("ctrl+l")
        assert app.sidebar.option_list.has_focus
        await pilot.press("down")
        assert app.sidebar.highlighted_number == 2
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SourceDetailScreen")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.sidebar.option_list.has_focus)
        await pilot.press("escape")
        assert app.prompt.has_focus


def _citation_block(answer: AssistantMessage, label: str) -> tuple[MarkdownBlock, int]:
    for block in answer.body.query(MarkdownBlock):
        content = getattr(block, "_content", None)
        if content is not None and label in content.plain and not block.query(MarkdownBlock):
            # The column on screen: after the block's left padding (a list item's bullet).
            return block, block.styles.padding.left + content.plain.index(label)
    raise AssertionError(f"no block shows {label}")


async def test_citation_link_selects_its_source(offline_settings):
    app = make_test_app(offline_settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        assert app.sidebar.highlighted_number == 1
        block, column = _citation_block(answer, "[3]")
        await pilot.click(block, offset=(column + 1, 0))
        await wait_until(pilot, lambda: app.sidebar.highlighted_number == 3)
        # [7] is out of range: plain text, never a link.
        assert "[7]" in answer.markdown_source and "cite:7" not in answer.markdown_source


async def test_digit_jumps_outside_the_prompt(offline_settings):
    app = make_test_app(offline_settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await ask(app, pilot, "parallel compression")
        # In the prompt a digit is text.
        await pilot.press("3")
        assert app.prompt.text == "3"
        assert app.sidebar.highlighted_number == 1
        app.prompt.clear()
        app.conversation.focus()
        await pilot.press("3")
        assert app.sidebar.highlighted_number == 3
        assert app.sidebar.option_list.has_focus
        await pilot.press("2")
        assert app.sidebar.highlighted_number == 2
        await pilot.press("0")  # source 10 does not exist: nothing moves
        assert app.sidebar.highlighted_number == 2


async def test_sidebar_follows_the_answer_in_view(offline_settings):
    first = ScriptedChat(tokens=["First answer [1].\n\n" + "filler line\n\n" * 30])
    app = make_test_app(offline_settings, chat_service=first)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await ask(app, pilot, "parallel compression")
        first.sources = [dict(first.sources[2], number=1)]
        first.tokens = ["Second answer [1].\n\n" + "more filler\n\n" * 30]
        await ask(app, pilot, "sidechain")
        assert [s["title"] for s in app.sidebar.sources] == ["Sidechain Ducking"]
        app.conversation.scroll_home(animate=False)
        await wait_until(pilot, lambda: len(app.sidebar.sources) == 3, what="older answer's sources")
        app.conversation.scroll_end(animate=False)
        await wait_until(pilot, lambda: len(app.sidebar.sources) == 1)


# -- voice slider ------------------------------------------------------------------------


async def test_slider_by_keys(offline_settings):
    app = make_test_app(offline_settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        slider = app.slider
        assert slider.disabled, "no creator chosen: disabled"
        app.picker.value = "test-ada"
        await wait_until(pilot, lambda: not slider.disabled)
        slider.focus()
        await pilot.press("right", "right", "right")
        assert slider.value == pytest.approx(0.15) and slider.tier == "off"
        await pilot.press("shift+right")
        assert slider.value == pytest.approx(0.35) and slider.tier == "subtle"
        await pilot.press("end")
        assert slider.value == 1.0 and slider.tier == "full"
        await pilot.press("shift+left")
        assert slider.value == pytest.approx(0.8) and slider.tier == "embody"
        await pilot.press("home")
        assert slider.value == 0.0
        await pilot.press("left")
        assert slider.value == 0.0
        # The preview follows the slider.
        await pilot.press("end")
        preview = app.query_one("#voice-preview-text")
        assert "Fully embody Test Ada" in str(preview.render())


async def test_slider_by_mouse_click_and_drag(offline_settings):
    app = make_test_app(offline_settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.picker.value = "test-ada"
        slider = app.slider
        await wait_until(pilot, lambda: not slider.disabled)
        track = slider._track_width()
        left = 6  # after "Voice "
        await pilot.click(slider, offset=(left + track - 1, 0))
        assert slider.value == 1.0
        await pilot.click(slider, offset=(left, 0))
        assert slider.value == 0.0
        middle = left + (track - 1) // 2
        await pilot.click(slider, offset=(middle, 0))
        assert slider.value == pytest.approx(0.5, abs=0.05)
        # Drag from the left end to three quarters.
        await pilot.mouse_down(slider, offset=(left, 0))
        assert slider.value == 0.0
        await pilot.hover(slider, offset=(left + round((track - 1) * 0.75), 0))
        await pilot.mouse_up(slider, offset=(left + round((track - 1) * 0.75), 0))
        assert slider.value == pytest.approx(0.75, abs=0.05)


# -- stopping, errors, regenerating, resuming --------------------------------------------


async def test_escape_cancels_streaming_keeps_partial(kb_settings, fake_llm):
    fake_llm.set_mode("slow", rate=40, count=2000)
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.prompt.load_text("parallel compression")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation.last_answer is not None
                         and len(app.conversation.last_answer.raw) > 20)
        await pilot.press("escape")
        answer = app.conversation.last_answer
        await wait_until(pilot, lambda: answer.status == "stopped")
        assert answer.raw and answer.has_class("-stopped")
        assert "stopped" in answer._meta_text
        assert not app.streaming
        await wait_until(pilot, lambda: fake_llm.chat_requests[-1].client_closed,
                         what="HTTP stream closed")
        # The transcript keeps the partial answer, marked cancelled.
        messages = await app.services.transcripts.load_conversation(
            app.services.db, app.conversation_id)
        assert messages[-1]["status"] == "cancelled"


async def test_error_inline_with_retry(kb_settings, fake_llm, fake_llm_fallback):
    fake_llm.set_mode("error500")
    fake_llm_fallback.set_mode("error500")
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        assert answer.status == "failed" and answer.has_class("-failed")
        assert app.query_one(".error-row").display
        fake_llm.set_mode("normal")
        retry = answer.query_one(".retry")
        await pilot.click(retry)
        await wait_until(pilot, lambda: len(app.conversation.answers) == 2)
        await wait_until(pilot, lambda: settled(app.conversation.last_answer))
        retried = app.conversation.last_answer
        assert retried.status == "answered", retried.query_one(".error-text").render()
        assert answer.has_class("-previous")
        # The question was not lost: one question, two versions of its answer.
        messages = await app.services.transcripts.load_conversation(
            app.services.db, app.conversation_id)
        assert [m["role"] for m in messages] == ["user", "assistant", "assistant"]


async def test_regenerate_with_a_new_weight(kb_settings, fake_llm):
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.picker.value = "test-ada"
        await wait_until(pilot, lambda: not app.slider.disabled)
        first = await ask(app, pilot, "parallel compression")
        system = fake_llm.chat_requests[-1].body["messages"][0]["content"]
        assert "Test Ada" not in system.split("Sources:")[0] or "embody" not in system
        app.slider.value = 0.85
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len(app.conversation.answers) == 2)
        second = app.conversation.last_answer
        await wait_until(pilot, lambda: settled(second))
        assert second.status == "answered"
        assert first.has_class("-previous") and "previous version" in first._meta_text
        body = fake_llm.chat_requests[-1].body
        assert "Fully embody Test Ada" in body["messages"][0]["content"]
        messages = await app.services.transcripts.load_conversation(
            app.services.db, app.conversation_id)
        answers = [m for m in messages if m["role"] == "assistant"]
        assert len(answers) == 2 and answers[-1]["current"] and not answers[0]["current"]


async def test_resume_a_conversation(kb_settings, fake_llm):
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await ask(app, pilot, "parallel compression")
        first_id = app.conversation_id
        sources = app.conversation.last_answer.sources
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: not app.conversation.answers)
        assert app.conversation_id != first_id and app.sidebar.sources == []
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConversationsScreen")
        await pilot.pause()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.conversation_id == first_id and app.conversation.answers)
        await pilot.pause()
        restored = app.conversation.last_answer
        assert restored.sources == sources
        assert app.sidebar.sources == sources
        assert "cite:1" in restored.markdown_source
        assert app.prompt.recall[-1] == "parallel compression"


async def test_deleting_the_current_conversation_from_its_list(kb_settings, fake_llm):
    """ConversationsScreen.Delete reaches the app: the archive forgets the conversation and
    the chat, which showed it, starts a new one."""
    app = make_test_app(kb_settings)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await ask(app, pilot, "parallel compression")
        first_id = app.conversation_id
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConversationsScreen")
        await pilot.pause()
        await pilot.press("d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.conversation_id != first_id)
        await wait_until(pilot, lambda: not app.conversation.answers)
        rows = await app.services.archive.list_rows({})
        assert first_id not in {r["id"] for r in rows}
        assert (await app.services.archive.load(first_id)) == ([], None)


# -- everywhere ------------------------------------------------------------------------


async def test_copy_export_and_commands(kb_settings, fake_llm, tmp_path):
    app = make_test_app(kb_settings, export_dir=tmp_path / "exports")
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        await pilot.press("ctrl+g")
        assert app.clipboard == answer.raw
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: list((tmp_path / "exports").glob("*.md")))
        text = next((tmp_path / "exports").glob("*.md")).read_text()
        assert "parallel compression" in text and "[^1-1]" in text
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in ("Regenerate the last answer", "New conversation", "Conversations",
                      "Copy the last answer", "Export the conversation", "Usage", "Help: keys",
                      "Stop the answer"):
            assert title in titles


async def test_keymap_remaps_and_theme_is_remembered(tmp_path):
    settings = app_settings(tmp_path, keymap={"app.conversations": "f8", "app.help": "f9"})
    await load_mini_kb(settings)
    app = make_test_app(settings, chat_service=ScriptedChat(), remember_theme=True)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        await pilot.press("f9")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.press("escape")
        await pilot.press("f8")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConversationsScreen")
        app.theme = "nord"
        await pilot.pause()
    state = json.loads((settings.data_dir / "state.json").read_text())
    assert state["theme"] == "nord"
    again = make_test_app(settings, chat_service=ScriptedChat(), theme=None)
    assert again.theme == "nord"


async def test_hostile_text_is_shown_as_text(offline_settings):
    tokens = ["Look: \x1b[2J\x1b]52;c;aGFja2Vk\x07[bold red]x[/] \u202eevil", " [1]"]
    sources = [{"number": 1, "title": "[bold]T\x1b[31m", "creator_name": "[i]C",
                "section_heading": "\x9b2J h", "start_time": 1, "end_time": 2}]
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens, sources=sources))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.prompt.load_text("[blink]q\x1b[5m")
        await pilot.press("enter")
        await wait_until(pilot, lambda: settled(app.conversation.last_answer))
        answer = app.conversation.last_answer
        assert "\x1b" not in answer.markdown_source and "\u202e" not in answer.markdown_source
        assert "[bold red]x[/]" in answer.raw
        prompt_text = str(app.sidebar.option_list.get_option_at_index(0).prompt)
        assert "[bold]T" in prompt_text and "\x1b" not in prompt_text and "\x9b" not in prompt_text
        question = app.conversation.query_one(".question")
        assert "[blink]q" in str(question.render())


def test_citation_linker_holds_split_numbers():
    linker = CitationLinker(12)
    out = linker.feed("see [") + linker.feed("1") + linker.feed("2] and [3") + linker.feed("] [13]")
    out += linker.flush()
    assert out == "see [\\[12\\]](cite:12) and [\\[3\\]](cite:3) [13]"
    assert link_citations("[0] [2]", 1) == "[0] [2]"


def test_safe_text_strips_escapes_and_escapes_markup():
    assert clean("a\x1b[31mb\x1b]0;t\x07c\u202ed\x00e\r\n") == "abcde\n"
    assert plain("[bold]x") == "\\[bold]x"
    assert isinstance(Markdown, type)


async def test_long_answer_streams_in_segments_and_freezes(offline_settings):
    from test_app_support import ANSWER_TOKENS

    from tui.widgets.answer_markdown import FrozenSegment

    tokens = (ANSWER_TOKENS + ["\n\n```\ncode [1] stays\n```\n\n"]) * 12
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        await wait_until(pilot, lambda: answer.query(FrozenSegment), what="a frozen segment")
        assert len(answer.segments) > 2

        def squash(text: str) -> str:
            return "\n".join(line for line in text.splitlines() if line.strip())

        expected = link_citations(answer.raw, 3)
        assert squash(answer.markdown_source) == squash(expected).replace(
            "code [\\[1\\]](cite:1) stays", "code [1] stays")
        assert "code [1] stays" in answer.markdown_source  # no links inside code
        # A citation in a frozen segment still selects its source.
        frozen = answer.query(FrozenSegment).first()
        app.conversation.scroll_to_widget(frozen, animate=False, top=True)
        await pilot.pause()
        row = next(i for i, line in enumerate(frozen.lines) if "[3]" in line.text)
        column = frozen.lines[row].text.index("[3]")
        await pilot.click(frozen, offset=(column + 1, row))
        await wait_until(pilot, lambda: app.sidebar.highlighted_number == 3)
        # A new width turns frozen segments back into Markdown.
        await pilot.resize_terminal(100, 40)
        await wait_until(pilot, lambda: not answer.query(FrozenSegment))
        assert squash(answer.markdown_source).count("cite:3") == expected.count("cite:3")


async def test_status_warns_when_redis_is_unreachable(tmp_path, refused_url):
    from urllib.parse import urlsplit

    port = urlsplit(refused_url).port  # a port where nothing listens
    settings = app_settings(tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
    await load_mini_kb(settings)
    app = make_test_app(settings, chat_service=ScriptedChat())
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert app.status_bar.fields["memory"] == "local"
        assert "Redis unavailable" in app.status_bar.fields["memory_warning"]
        answer = await ask(app, pilot, "parallel compression")
        assert answer.status == "answered"  # the question is answered all the same


async def test_gc_policy_freezes_start_up_and_frees_a_left_conversation(offline_settings):
    """Start-up is frozen once; answers are not (a frozen widget is never freed: a long
    session grew by every conversation it left, bench/soak.py); the widgets of a conversation
    that was left are freed by the policy's own full collection, without the test's."""
    import gc
    import weakref

    from tui.collector import IDLE_GC_THRESHOLDS, STREAMING_GC_THRESHOLDS

    before = gc.get_threshold()
    app = make_test_app(offline_settings, chat_service=ScriptedChat(), manage_gc=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await start(app, pilot)
            frozen = gc.get_freeze_count()
            assert frozen > 0  # start-up objects are out of the collector's way
            assert gc.get_threshold() == IDLE_GC_THRESHOLDS  # no full collection on its own
            chat = app.services.chat if app.services.chat is not None else app._chat_override
            chat.mode = "hold"  # the answer waits after two tokens
            app.prompt.load_text("parallel compression")
            app.prompt.focus()
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.conversation.answers
                             and app.conversation.answers[-1].status == "streaming")
            # While it streams, young collections are rare and full ones off...
            assert gc.get_threshold() == STREAMING_GC_THRESHOLDS
            chat.release.set()
            await wait_until(pilot, lambda: settled(app.conversation.answers[-1]))
            await pilot.pause()
            # ... and as before once it is done.
            assert gc.get_threshold() == IDLE_GC_THRESHOLDS
            chat.mode = "normal"
            await ask(app, pilot, "and the release?")
            refs = [weakref.ref(a) for a in app.conversation.answers]
            assert len(refs) == 2 and all(r() is not None for r in refs)
            assert gc.get_freeze_count() <= frozen  # the answers were not frozen
            full = app.collector.full_collections
            await pilot.press("ctrl+n")
            await wait_until(pilot, lambda: not app.conversation.answers)
            await wait_until(pilot, lambda: app.collector.full_collections > full,
                             what="the policy's full collection")
            assert [r() for r in refs] == [None, None]  # freed, not kept for the session
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


async def test_a_long_code_block_splits_into_closed_and_reopened_fences(offline_settings):
    lines = 200
    tokens = ["Before [1]\n\n", "```python\n"] + ["x = 1  # [1]\n"] * lines + ["```\n", "\nAfter [1]\n"]
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        await pilot.pause()
        assert answer.raw == "".join(tokens)
        sources = [segment.source for segment in answer.segments]
        assert len(sources) > 2
        code = [source for source in sources if "x = 1" in source]
        # Each piece of the block is a whole fence with the same info string.
        assert len(code) > 1
        assert all(s.count("```python\n") == 1 and s.count("```") == 2 for s in code), code
        assert sum(s.count("x = 1  # [1]\n") for s in code) == lines  # no links inside code
        shown = "".join(sources)
        assert "Before [\\[1\\]](cite:1)" in shown and "After [\\[1\\]](cite:1)" in shown


# -- one endless line ------------------------------------------------------------------

LONG_SENTENCE = ("Set the **ratio** to 4:1 and the `attack` to 10 ms [1], then - as a rule - "
                 "blend 1. the dry bus with # the wet one at 30 % [2] ")


def _answer_lines(answer: AssistantMessage) -> list[str]:
    """The answer's rendered text lines, segment after segment (frozen or not)."""
    from tui.widgets.answer_markdown import FrozenSegment

    lines: list[str] = []
    for segment in answer.segments:
        if isinstance(segment, FrozenSegment):
            lines.extend(strip.text for strip in segment.lines)
        else:  # a live Markdown segment: render it the way freezing does
            lines.extend(strip.text for strip in FrozenSegment.from_markdown(segment).lines)
    return lines


@pytest.mark.parametrize("spacing", ["leading", "trailing"])
async def test_one_long_paragraph_line_is_cut_into_run_on_segments(offline_settings, spacing):
    from tui.answer_segmenter import _NOT_PARAGRAPH, LONG_LINE_CHARS

    text = LONG_SENTENCE * 300  # ~40,000 characters, no line break
    words = text.split(" ")
    if spacing == "leading":
        tokens = [words[0]] + [" " + w for w in words[1:]]
    else:
        tokens = [w + " " for w in words[:-1]] + [words[-1]]
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        assert answer.raw == text
        sources = [segment.source for segment in answer.segments]
        # Cut many times, never inside bold/code/link text, never where the rest would
        # start a block (a list item, a heading), never far past the threshold.
        assert len(sources) >= len(text) // (2 * LONG_LINE_CHARS)
        assert "".join(sources) == link_citations(text, 3)
        for source in sources[1:]:
            assert not _NOT_PARAGRAPH.match(source), source[:40]
        for source in sources[:-1]:
            assert source.count("**") % 2 == 0 and source.count("`") % 2 == 0
            assert len(source) < LONG_LINE_CHARS + 3 * len(LONG_SENTENCE)
        # It reads as one paragraph: no blank line between the pieces.
        await wait_until(pilot, lambda: all(s.outer_size.height for s in answer.segments))
        lines = _answer_lines(answer)
        assert lines and not any(not line.strip() for line in lines[:-1]), lines
        assert all(segment.has_class("-runs-on") for segment in answer.segments[:-1])


async def test_a_long_list_item_line_goes_on_as_plain_text(offline_settings):
    from tui.answer_segmenter import LONG_LINE_PLAIN_CHARS

    item = "- " + "ducking " * 2000  # 16,000 characters in one list item
    tokens = ["Intro [1]\n\n"] + [item[k : k + 7] for k in range(0, len(item), 7)] + ["\n\nEnd\n"]
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        assert answer.raw == "".join(tokens)
        shown = answer.markdown_source
        assert shown.startswith("Intro [\\[1\\]](cite:1)\n\n- ducking")
        assert LONG_LINE_PLAIN_CHARS - 10 <= len(shown) - len("Intro [\\[1\\]](cite:1)\n\n") \
            <= LONG_LINE_PLAIN_CHARS
        # Nothing lost: the Markdown part and the plain part make the whole answer,
        # the plain part in chunks of a bounded size.
        rest = answer.plain_text
        assert link_citations(answer.raw, 3) == shown + rest
        chunks = answer.query(".body-plain").exclude(".-note")
        assert len(chunks) >= 2
        assert answer.query(".-note")


async def test_one_widget_list_items_look_like_textuals_own_lists():
    """ItemParagraph (one widget per list item) renders the same text, cell for cell, as
    Textual's own four-widget list items: bullets, numbering, hanging indent, nesting."""
    from textual.app import App
    from textual.containers import Vertical

    from tui.widgets.answer_markdown import AnswerMarkdown, FrozenSegment, ItemParagraph

    text = (
        "Intro **bold**, *em*, ~~gone~~ and `code` [link](cite:1).\n\n"
        "- short item [1]\n"
        "- a long item that wraps: " + "compress the drum bus in parallel, " * 6 + "done\n"
        "- item with a nested list\n"
        "  - nested one\n"
        "  - nested two\n\n"
        "8. eight\n"
        "9. nine, which is long enough to wrap past the width of the pane " * 2 + "\n"
        "10. ten\n\n"
        "After.\n"
    )

    class Side(App):
        def compose(self):
            with Vertical():
                yield Markdown(text, id="textual")
                yield AnswerMarkdown(text, id="ours")

    def cells(segment: FrozenSegment) -> list[list[tuple[str, object]]]:
        """Each line as (character, style) per cell, however it is cut into segments."""
        def look(ch: str, style) -> tuple:
            # What shows: not the mouse metadata, nor the text colour of a blank.
            if style is None:
                return ()
            return (None if ch == " " else style.color, style.bgcolor, style.bold, style.italic,
                    style.strike, style.underline, style.reverse)

        return [[(ch, look(ch, seg.style)) for seg in line for ch in seg.text]
                for line in segment.lines]

    app = Side()
    async with app.run_test(size=(70, 80)) as pilot:
        assert len(app.query_one("#ours").query(ItemParagraph)) >= 6
        # Same characters and the same style in every cell (bullets, bold, code...), in a
        # dark and a light theme (component styles are shared between blocks, per theme).
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await pilot.pause()
            theirs = FrozenSegment.from_markdown(app.query_one("#textual", Markdown))
            ours = FrozenSegment.from_markdown(app.query_one("#ours", Markdown))
            assert [s.text for s in ours.lines] == [s.text for s in theirs.lines]
            assert cells(ours) == cells(theirs), theme


async def test_a_segment_is_not_frozen_before_its_last_change_is_laid_out():
    """Freezing takes a segment's lines at its height on screen: if its last block grew
    (a paragraph's new line) and the layout has not caught up, the capture would lose the
    new line for good (seen live). Such a segment is not frozen until it is laid out."""
    from textual.app import App
    from textual.containers import VerticalScroll
    from textual.content import Content

    from tui.widgets.answer_markdown import AnswerMarkdown, FrozenSegment

    class One(App):
        def compose(self):
            with VerticalScroll():
                yield AnswerMarkdown("# Title\n\nshort paragraph\n")

    app = One()
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.pause()
        markdown = app.query_one(AnswerMarkdown)
        paragraph = markdown.children[-1]
        longer = "a paragraph that grew in the last append and now needs three lines"
        paragraph.set_content(Content(longer))
        assert FrozenSegment.from_markdown(markdown) is None  # not laid out yet
        await pilot.pause()
        frozen = FrozenSegment.from_markdown(markdown)
        assert frozen is not None
        text = " ".join(" ".join(strip.text.split()) for strip in frozen.lines).split()
        assert " ".join(text).endswith(longer)


def _cells(lines) -> list[list[tuple]]:
    """Each line as (character, what shows of its style) per cell, however it is cut."""
    def look(ch: str, style) -> tuple:
        if style is None:
            return ()
        return (None if ch == " " else style.color, style.bgcolor, style.bold, style.italic,
                style.strike, style.underline, style.reverse)

    return [[(ch, look(ch, seg.style)) for seg in line for ch in seg.text] for line in lines]


def _paced_markdown_app(text: str):
    """An app on the main screen's kind (PacedScreen) showing `text` as an answer's Markdown."""
    from textual.app import App
    from textual.containers import VerticalScroll

    from tui.pacing import FramePacer, PacedScreen
    from tui.widgets.answer_markdown import AnswerMarkdown

    class One(App):
        def get_default_screen(self):
            return PacedScreen(FramePacer())

        def compose(self):
            with VerticalScroll():
                yield AnswerMarkdown(text)

    return One()


def _shown_on_screen(app, region) -> list:
    """The screen's own lines in `region`."""
    screen = app.screen._compositor.render_strips()
    return [strip.crop(region.x, region.right) for strip in screen[region.y:region.bottom]]


async def test_a_segment_frozen_off_screen_matches_what_the_screen_shows():
    """On the app's screen (PacedScreen) a closed segment is laid out and rendered by a
    compositor of its own at once, before any frame has laid out its last change: the
    lines are, cell for cell, those the screen itself shows once it has laid it out."""
    from textual.content import Content

    from tui.widgets.answer_markdown import AnswerMarkdown, FrozenSegment

    text = (
        "## Parallel compression\n\n**Bold** and `code` and [a link](cite:1).\n\n"
        "- one item\n- a long item that wraps: " + "squash the drums, " * 5 + "done\n\n"
        "1. first\n2. second\n\n```\nbus -> comp -> return\n```\n\n> Trust your ears.\n\n"
        "short paragraph\n"
    )

    app = _paced_markdown_app(text)
    async with app.run_test(size=(50, 60)) as pilot:
        await pilot.pause()
        markdown = app.query_one(AnswerMarkdown)
        longer = "a paragraph that grew in the last append and now needs three lines"
        markdown.children[-1].set_content(Content(longer))
        # Not laid out on screen with its new line yet: frozen all the same, with it.
        frozen = FrozenSegment.from_markdown(markdown)
        assert frozen is not None
        assert " ".join(" ".join(s.text for s in frozen.lines).split()).endswith(longer)
        await pilot.pause()
        region = markdown.region
        assert region.height == len(frozen.lines)
        shown = _shown_on_screen(app, region)
        assert [s.text for s in frozen.lines] == [s.text for s in shown]
        assert _cells(frozen.lines) == _cells(shown)


async def test_a_lazily_frozen_segment_renders_the_same_cells_only_as_they_are_shown():
    """Frozen while tokens flood in, a segment is laid out at once but its lines are
    rendered only when asked for (a chunk at a time) from the hidden Markdown; they are,
    cell for cell, the lines an eager freeze renders; `settle()` renders the rest and
    removes the hidden Markdown."""
    from textual.containers import VerticalScroll

    from tui.widgets.answer_markdown import LAZY_CHUNK_LINES, AnswerMarkdown, FrozenSegment

    text = "".join(
        f"## Step {n}\n\n**Bold** and `code` and [a link](cite:1), " + "squash the drums, " * 6
        + f"done.\n\n- item {n}\n- a second item\n\n1. first\n2. second\n\n```\nbus {n}\n```\n\n"
        for n in range(14))

    app = _paced_markdown_app(text)
    async with app.run_test(size=(50, 30)) as pilot:
        await pilot.pause()
        markdown = app.query_one(AnswerMarkdown)
        eager = FrozenSegment.from_markdown(markdown)
        assert eager is not None and not eager.pending
        height = len(eager.lines)
        assert height > 4 * LAZY_CHUNK_LINES
        lazy = FrozenSegment.from_markdown(markdown, lazy=True)
        assert lazy is not None and lazy.pending
        lazy.styles.height = "auto"  # as the app's stylesheet has it
        await app.query_one(VerticalScroll).mount(lazy, before=markdown)
        markdown.display = False
        await pilot.pause()
        # The frame rendered the lines it shows (one chunk); asked for one line far down,
        # that line's chunk is rendered too, and not the lines in between.
        y = height - 5
        assert lazy.render_line(y).text == eager.lines[y].text
        assert lazy._lines[y] is not None and lazy._lines[height // 2] is None
        assert sum(line is not None for line in lazy._lines) <= 2 * LAZY_CHUNK_LINES
        assert lazy.pending and markdown.is_attached
        # The screen shows what an eager freeze renders (the top lines, drawn lazily).
        await pilot.pause()
        shown = _shown_on_screen(app, lazy.region)
        assert _cells(shown) == _cells(eager.lines[:len(shown)])
        lazy.settle()
        assert not lazy.pending
        assert _cells(lazy.lines) == _cells(eager.lines)
        await pilot.pause()
        assert not markdown.is_attached  # the hidden Markdown is gone


async def test_segments_frozen_in_a_flood_settle_after_the_stream_and_leave_nothing_hidden(
        offline_settings, monkeypatch):
    from test_app_support import ANSWER_TOKENS

    import tui.pacing
    from tui.widgets.answer_markdown import AnswerMarkdown, FrozenSegment

    # The scripted tokens come as fast as the app takes them; whether a gap between two
    # of them counts as quiet would depend on the machine. Here the stream is quiet only
    # a second after its last token, so every segment is frozen in the flood.
    monkeypatch.setattr(tui.pacing, "QUIET_S", 1.0)

    tokens = (ANSWER_TOKENS + ["\n\n- a list item [2]\n- another\n\n"]) * 12
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)

        def hidden(answer) -> list:
            return [w for w in answer.children if isinstance(w, AnswerMarkdown) and getattr(w, "retired", False)]

        answer = await ask(app, pilot, "parallel compression")
        frozen = list(answer.query(FrozenSegment))
        # Frozen while the scripted tokens flooded in: lines left, their Markdown hidden.
        assert frozen and any(f.pending for f in frozen)
        assert hidden(answer) and not any(w.display for w in hidden(answer))
        await wait_until(pilot, lambda: not any(f.pending for f in answer.query(FrozenSegment)),
                         what="frozen segments settled")
        await pilot.pause()
        assert not hidden(answer)
        assert all(None not in f._lines for f in answer.query(FrozenSegment))
        # The settled lines read as the answer: every list item, in order.
        lines = " ".join(_answer_lines(answer))
        assert lines.count("a list item [2]") == 12

        # A second answer, reset while its frozen segments still have lines left (the
        # fallback restarting it): nothing hidden is left behind.
        answer = await ask(app, pilot, "sidechain ducking")
        assert any(f.pending for f in answer.query(FrozenSegment))
        await answer.reset("the primary model failed")
        await pilot.pause()
        assert not hidden(answer) and not answer.query(FrozenSegment)


async def test_an_answer_adds_and_removes_only_the_stop_key(offline_settings):
    """The footer keeps its keys while an answer streams: only "Stop answer" comes and goes
    (Textual's Footer made all of them again, twice, as each answer began)."""
    from textual.widgets._footer import FooterKey

    from tui.widgets.footer import AppFooter

    chat = ScriptedChat(mode="hold")
    app = make_test_app(offline_settings, chat_service=chat)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, app.ready.is_set)
        footer = app.query_one(AppFooter)
        before = list(footer.query_children(FooterKey))
        assert "Stop answer" not in [k.description for k in before]
        app.prompt.load_text("parallel compression")
        app.prompt.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Stop answer" in [
            k.description for k in footer.query_children(FooterKey)], what="the stop key")
        during = list(footer.query_children(FooterKey))
        assert [k for k in during if k.description != "Stop answer"] == before  # kept
        chat.release.set()
        await wait_until(pilot, lambda: "Stop answer" not in [
            k.description for k in footer.query_children(FooterKey)], what="no stop key")
        assert list(footer.query_children(FooterKey)) == before


@pytest.mark.parametrize("kind", ["bullets", "numbers"])
async def test_a_long_list_split_into_segments_shows_no_gap_between_its_halves(
        offline_settings, kind):
    """A list longer than a segment is split between two items: the two halves read as
    one list (no blank line where it was split; the numbering goes on)."""
    count = 90
    items = [f"- step {n}: compress [1]\n" if kind == "bullets" else f"{n}. step {n} [1]\n"
             for n in range(1, count + 1)]
    tokens = ["Intro [1]\n\n", *items, "\nAfter [2]\n"]
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        assert len(answer.segments) > 2
        await wait_until(pilot, lambda: all(s.outer_size.height for s in answer.segments))
        lines = [line.rstrip() for line in _answer_lines(answer)]
        first = next(i for i, line in enumerate(lines) if "step 1" in line)
        last = next(i for i, line in enumerate(lines) if f"step {count}" in line)
        assert last - first == count - 1, lines[first:last + 1]  # one line per item, no gap
        if kind == "numbers":
            assert all(lines[first + n - 1].lstrip().startswith(f"{n}. ") for n in (1, 45, count))
        assert "After" in lines[-1] or "After" in lines[-2]


async def test_a_bullet_list_then_a_numbered_one_stay_two_lists_across_segments(
        offline_settings, monkeypatch):
    """Another kind of marker starts another list, also where a segment is split: a gap
    between the two lists, the numbers from 1."""
    import tui.answer_segmenter as conversation

    # Segments of 10 lines: "Intro", a blank line and 18 bullets make two, so the split
    # falls just before the numbered list.
    monkeypatch.setattr(conversation, "SEGMENT_LINES", 10)
    monkeypatch.setattr(conversation, "SEGMENT_CHARS", 100_000)
    bullets = [f"- bullet {n} [1]\n" for n in range(1, 19)]
    numbers = [f"{n}. number {n} [2]\n" for n in range(1, 26)]
    tokens = ["Intro [1]\n\n", *bullets, *numbers, "\nAfter [2]\n"]
    app = make_test_app(offline_settings, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, "parallel compression")
        assert any(s.source.startswith("1. number 1 ") for s in answer.segments)
        await wait_until(pilot, lambda: all(s.outer_size.height for s in answer.segments))
        lines = [line.rstrip() for line in _answer_lines(answer)]
        first = next(i for i, line in enumerate(lines) if "bullet 1 " in line)
        one = next(i for i, line in enumerate(lines) if "number 1 " in line)
        last = next(i for i, line in enumerate(lines) if "number 25 " in line)
        assert one - first == 19 and not lines[one - 1].strip()  # 18 bullets, then a gap
        assert last - one == 24  # 25 numbers, no gap
        assert all(lines[one + n - 1].lstrip().startswith(f"{n}. ") for n in (1, 2, 11, 25))


def test_every_tenth_answer_hands_its_full_collection_to_later():
    """The full collection due after `FULL_EVERY` answers runs when `later` says (the
    screen's call_after_refresh: the answer's last frame first), never inside `streaming`;
    the answers in between only collect their young garbage."""
    import gc

    from tui.collector import FULL_EVERY, CollectorPolicy

    before = gc.get_threshold()
    policy = CollectorPolicy(enabled=True)
    handed: list = []
    try:
        for _ in range(FULL_EVERY - 1):
            with policy.streaming(later=handed.append):
                pass
        assert handed == [] and policy.full_collections == 0
        with policy.streaming(later=handed.append):
            pass
        assert policy.full_collections == 0  # not yet: handed over
        assert handed == [policy.collect]
        handed.pop()()
        assert policy.full_collections == 1 and policy.answers_since_full == 0
        with policy.streaming():  # without `later`: at once, as before
            pass
        assert policy.answers_since_full == 1
    finally:
        gc.set_threshold(*before)
