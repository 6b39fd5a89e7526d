"""Faults seen through the TUI (Textual pilot, the real ChatService, real sockets).

Model-server faults: the answer shows a clear error inline with Retry, the question
stays (in the conversation and in the prompt's recall), the usage log has a "failed"
row, Retry and the next question work. An enormous answer is capped and the screen
says so. A question over the limit is refused with a message and stays in the prompt.
Redis killed mid-conversation: the next turn is answered and stored locally, the
status bar says so; Redis back: new turns use it again, the local turns copied back.
"""

from __future__ import annotations

import asyncio

import pytest
from fake_openai import FakeOpenAI
from faults_support import deadlines
from redis_proc import REDIS_SERVER, RedisProcess
from sqlalchemy import select
from test_app_support import app_settings, load_mini_kb, make_test_app, wait_until

from tui.db.models import ChatUsageLog
from tui.services.chat import MAX_QUERY_CHARS
from tui.services.llm import MAX_ANSWER_CHARS
from tui.widgets.conversation import AssistantMessage, ConversationView, UserMessage

SIZE = (120, 40)
QUESTION = "parallel compression on drums"

FAULTS = {
    "refused": ("refused", {}, "could not connect"),
    "http 500": ("error500", {}, "HTTP 500"),
    "http 429": ("error429", {}, "rate limited"),
    "stall before the first byte": ("stall", {}, "first-token timeout"),
    "dies mid-stream": ("drop", {"after": 3}, "connection dropped"),
    "malformed chunk": ("malformed", {"after": 2}, "malformed chunk"),
}


@pytest.fixture
async def one_model(tmp_path, fake_llm, settings):
    """The app's settings: one model (no fallback) on the fake server, short deadlines."""
    s = app_settings(
        tmp_path, settings, llm_api_url=fake_llm.url, llm_api_key="sk-test-faults-0123456789",
        llm_model="primary-model", llm_first_token_timeout=5.0, llm_read_timeout=5.0,
    )
    await load_mini_kb(s)
    return s


def settled(answer: AssistantMessage | None) -> bool:
    return answer is not None and answer.status not in ("working", "streaming")


async def start(app, pilot) -> None:
    await wait_until(pilot, app.ready.is_set, what="services loaded")
    assert app.boot_error is None


async def ask(app, pilot, question: str, *, timeout: float = 20.0) -> AssistantMessage:
    count = len(app.conversation.answers)
    app.prompt.load_text(question)
    app.prompt.focus()
    await pilot.press("enter")
    await wait_until(pilot, lambda: len(app.conversation.answers) > count, what="answer mounted")
    answer = app.conversation.answers[-1]
    await wait_until(pilot, lambda: settled(answer), timeout=timeout, what="answer settled")
    await pilot.pause()
    return answer


async def usage_statuses(app) -> list[str]:
    async with app.services.db.session() as s:
        rows = (await s.execute(select(ChatUsageLog).order_by(ChatUsageLog.id))).scalars()
        return [r.status for r in rows]


def shown(widget) -> str:
    return str(widget.render())


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_model_fault_in_the_tui(fault, one_model, fake_llm):
    mode, options, words = FAULTS[fault]
    fake_llm.set_mode(mode, **options)
    app = make_test_app(deadlines(one_model, mode))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, QUESTION)
        # A clear error, inline, with Retry; the app is not stuck streaming.
        assert answer.status == "failed" and not app.streaming
        error_text = shown(answer.query_one(".error-text"))
        assert words in error_text and "Traceback" not in error_text
        assert answer.query_one(".retry").display
        # The question is kept: shown, in the recall list, in the archive.
        assert QUESTION in shown(app.conversation.query(UserMessage).last())
        assert app.prompt.recall[-1] == QUESTION
        messages = await app.services.transcripts.load_conversation(
            app.services.db, app.conversation_id)
        assert messages[0]["content"] == QUESTION and messages[1]["status"] == "failed"
        assert await usage_statuses(app) == ["failed"]

        # Retry works once the server is back (with the normal deadlines again: the
        # half-second first-token limit of the stall case is too tight for a loaded CI).
        fake_llm.set_mode("normal")
        app.services.chat.llm.settings = one_model
        await pilot.click(answer.query_one(".retry"))
        await wait_until(pilot, lambda: len(app.conversation.answers) == 2)
        await wait_until(pilot, lambda: settled(app.conversation.last_answer))
        assert app.conversation.last_answer.status == "answered"
        # And so does the next question.
        nxt = await ask(app, pilot, "sidechain ducking the bass")
        assert nxt.status == "answered"
        assert await usage_statuses(app) == ["failed", "answered", "answered"]


async def test_enormous_answer_is_capped_and_said_on_screen(one_model, fake_llm):
    fake_llm.set_mode("normal", tokens=["lorem "], count=200_000)
    app = make_test_app(one_model)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        # One 100,000-character line: cut into run-on segments (RELIABILITY, hostile input).
        answer = await ask(app, pilot, QUESTION, timeout=120)
        assert answer.status == "answered"
        assert len(answer.raw) == MAX_ANSWER_CHARS
        assert "answer cut at the size limit" in shown(answer.query_one(".meta"))
        # The server was told to stop (the connection closed), not read to the end.
        assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)
        assert fake_llm.chat_requests[-1].tokens_sent < 200_000
        messages = await app.services.transcripts.load_conversation(
            app.services.db, app.conversation_id)
        assert len(messages[1]["content"]) == MAX_ANSWER_CHARS
        fake_llm.set_mode("normal")
        assert (await ask(app, pilot, "sidechain ducking")).status == "answered"


async def test_question_over_the_limit_is_refused_and_kept(one_model, fake_llm):
    app = make_test_app(one_model)
    too_long = "compression " * (8001 // 12 + 1)
    assert len(too_long.strip()) > MAX_QUERY_CHARS == 8000
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.prompt.load_text(too_long)
        app.prompt.focus()
        await pilot.press("enter")
        await pilot.pause()
        # Refused before anything is sent or stored; the text stays in the prompt to edit.
        assert app.conversation.answers == [] and not app.streaming
        assert app.prompt.text == too_long
        notes = [n.message for n in app._notifications]
        assert any(f"{MAX_QUERY_CHARS:,}" in m and "characters" in m for m in notes), notes
        assert fake_llm.chat_requests == []
        # The app is responsive: a question of normal length works.
        assert (await ask(app, pilot, QUESTION)).status == "answered"


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
async def test_redis_killed_mid_conversation_in_the_tui(tmp_path, settings):
    server = RedisProcess(tmp_path / "redis").start()
    with FakeOpenAI(model="m") as llm:
        s = app_settings(tmp_path, settings, llm_api_url=llm.url, llm_model="m",
                         redis_url=server.url, redis_key_prefix="chrysopedia:faults:")
        await load_mini_kb(s)
        app = make_test_app(s)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await start(app, pilot)
                assert app.status_bar.fields["memory"] == "Redis"
                assert (await ask(app, pilot, "q1 parallel compression")).status == "answered"

                server.kill()
                second = await ask(app, pilot, "q2 sidechain ducking")
                # Answered and stored locally; the status bar says so; nothing raised.
                assert second.status == "answered"
                assert app.status_bar.fields["memory"] == "local"
                assert "Redis" in app.status_bar.fields["memory_warning"]
                assert "Redis" in shown(app.status_bar)
                history = app.services.history
                assert [m["content"] for m in await history.local.load(app.conversation_id)][::2] \
                    == ["q1 parallel compression", "q2 sidechain ducking"]

                server.start()  # back, empty (it keeps nothing on disk)
                await history.probe(force=True)  # what the 5 s retry timer would do
                await pilot.pause()
                assert app.status_bar.fields["memory"] == "Redis"
                assert not app.status_bar.fields["memory_warning"]
                third = await ask(app, pilot, "q3 bus compression")
                assert third.status == "answered"
                # The local turns were copied back: the model saw the whole conversation.
                sent = [m["content"] for m in llm.last_body["messages"][1:]]
                assert sent[0::2] == ["q1 parallel compression", "q2 sidechain ducking",
                                      "q3 bus compression"]
                stored = await history.redis.load(app.conversation_id)
                assert len(stored) == 6 and await history.local.load(app.conversation_id) == []
        finally:
            server.kill()


async def test_primary_dies_mid_answer_the_view_restarts_with_the_fallback(
    tmp_path, settings, fake_llm, fake_llm_fallback
):
    s = app_settings(tmp_path, settings, llm_api_url=fake_llm.url, llm_model="primary-model",
                     llm_fallback_url=fake_llm_fallback.url, llm_fallback_model="fallback-model")
    await load_mini_kb(s)
    fake_llm.set_mode("drop", after=4)
    fake_llm_fallback.set_mode("normal", tokens=["Fallback", " answer", " [1]."])
    app = make_test_app(s)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, QUESTION)
        # The primary's partial text was cleared: only the fallback's answer is shown.
        assert answer.status == "answered" and answer.raw == "Fallback answer [1]."
        assert "fallback-model" in shown(answer.query_one(".meta"))
        assert "fallback" in shown(answer.query_one(".meta"))
        async with app.services.db.session() as session:
            [row] = (await session.execute(select(ChatUsageLog))).scalars()
        assert row.status == "answered" and row.model == "fallback-model" and row.fallback_used


async def test_redis_unreachable_at_start_the_status_says_so(tmp_path, settings):
    from fake_openai import unused_port

    s = app_settings(tmp_path, settings, redis_url=f"redis://127.0.0.1:{unused_port()}/0")
    await load_mini_kb(s)
    app = make_test_app(s)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        assert app.status_bar.fields["memory"] == "local"
        assert "Redis unavailable" in app.status_bar.fields["memory_warning"]
        assert "Redis unavailable" in shown(app.status_bar)
        answer = await ask(app, pilot, QUESTION)  # the offline digest, memory kept locally
        assert answer.status == "answered"
        assert len(await app.services.history.load(app.conversation_id)) == 2


async def test_an_answer_of_many_tiny_blocks_keeps_the_view_bounded(tmp_path):
    from test_app_support import ScriptedChat

    s = app_settings(tmp_path)
    await load_mini_kb(s)
    from tui.answer_segmenter import MARKDOWN_LINES

    items = 2000  # ~12,000 characters; the model may send 100,000 (a 14,000-item list)
    tokens = [f"- item {k}\n" for k in range(items)]
    app = make_test_app(s, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, QUESTION)
        await pilot.pause()
        assert answer.status == "answered" and answer.raw == "".join(tokens)
        # The whole list is in the pane: the first MARKDOWN_LINES items as Markdown, split
        # between items into bounded segments, the rest as plain text after a note.
        shown = answer.markdown_source.replace("\n\n", "\n")
        assert shown == "".join(tokens[:MARKDOWN_LINES])
        assert answer.plain_text == "".join(tokens[MARKDOWN_LINES:])
        assert answer.query_one(".-note").render().plain.startswith("… the rest")
        # Structural bound: what one answer puts on screen does not grow with its block count
        # (one widget per closed segment, a few per item of the live one).
        widgets = sum(1 for _ in answer.walk_children())
        assert widgets <= 4 * MARKDOWN_LINES, widgets
        # Every item is laid out: the answer is at least one line per item tall.
        assert answer.outer_size.height >= items
        view = app.query_one(ConversationView)
        view.scroll_end(animate=False)
        await pilot.pause()
        assert view.scroll_y > 0


async def test_a_long_lazily_numbered_list_keeps_its_numbering_across_segments(tmp_path):
    from test_app_support import ScriptedChat

    s = app_settings(tmp_path)
    await load_mini_kb(s)
    items = 300
    tokens = ["1. step\n"] * items  # Markdown numbers these 1..300
    app = make_test_app(s, chat_service=ScriptedChat(tokens=tokens))
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await ask(app, pilot, QUESTION)
        await pilot.pause()
        assert answer.raw == "".join(tokens)  # the saved answer unchanged
        sources = [segment.source for segment in answer.segments]
        assert len(sources) > 1
        # Each segment's list starts at the number its first item renders as.
        expected = 1
        for source in sources:
            assert source.startswith(f"{expected}. step\n"), source[:20]
            expected += source.count("step")
        assert expected == items + 1



async def test_a_saved_answer_of_many_tiny_blocks_is_restored_bounded(tmp_path):
    from tui.widgets.answer import RESTORE_MARKDOWN_LINES

    s = app_settings(tmp_path)
    await load_mini_kb(s)
    items = 14_000  # a whole 100,000-character answer of one-line items
    content = "".join(f"- s{k} [1]\n" for k in range(items))
    app = make_test_app(s)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await app.conversation.add_answer([{"title": "x"}])
        await answer.restore(content, {}, "answered")
        await pilot.pause()
        assert answer.raw == content and answer.status == "answered"
        assert answer.markdown_source.count("cite:1") == RESTORE_MARKDOWN_LINES
        assert answer.query_one(".-note").render().plain.startswith("… the rest")
        assert answer.plain_text == content.split("\n", RESTORE_MARKDOWN_LINES)[-1]
        assert sum(1 for _ in answer.walk_children()) <= 2000  # not ~56,000


async def test_a_saved_answer_of_one_endless_line_is_restored_cut(tmp_path):
    """A 100,000-character line with no break, resumed: cut into run-on segments as it
    was when it streamed, not one paragraph re-wrapped whole (seconds per layout)."""
    from tui.answer_segmenter import LONG_LINE_CHARS

    s = app_settings(tmp_path)
    await load_mini_kb(s)
    content = ("lorem ipsum [1] " * 6250).rstrip()  # 99,999 characters
    app = make_test_app(s)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        answer = await app.conversation.add_answer([{"title": "x"}])
        await answer.restore(content, {"model": "m"}, "answered")
        await pilot.pause()
        assert answer.raw == content and answer.status == "answered"
        segments = answer.segments
        assert len(segments) >= len(content) // (2 * LONG_LINE_CHARS)
        assert answer.markdown_source == content.replace("[1]", "[\\[1\\]](cite:1)")
        assert all(segment.has_class("-runs-on") for segment in segments[:-1])


async def test_a_question_sent_while_the_last_answer_is_redrawn_loses_no_callback(
    one_model, fake_llm, monkeypatch
):
    """The race behind a CI flake (WaitForScreenTimeout at the Enter of the next question):
    an answer is "answered" while its worker still redraws it with its claim marks (the old
    segment removed, new blocks mounted). A question sent in that window cancels that
    worker. Textual awaits a removal with `gather` over the removed widgets' message pumps,
    so the cancellation reached the old segment's pump: it stopped with its queue unread,
    and the callback the pilot had queued there (as every `_wait_for_screen` does) never
    ran. The window is widened here: the old segment's removal is held until the new
    question has been sent."""
    from textual.widget import Widget

    from tui.widgets.answer_markdown import AnswerMarkdown

    held, release = asyncio.Event(), asyncio.Event()

    async def on_prune(self, event) -> None:
        parent = self.parent
        if isinstance(parent, AssistantMessage) and parent.status == "answered":
            held.set()
            await release.wait()
        await Widget.on_prune(self, event)

    monkeypatch.setattr(AnswerMarkdown, "on_prune", on_prune, raising=False)
    app = make_test_app(one_model)
    async with app.run_test(size=SIZE) as pilot:
        await start(app, pilot)
        app.chat.ask(QUESTION)
        await asyncio.wait_for(held.wait(), 20)  # answered; its old segment being removed
        first = app.conversation.last_answer
        assert first.status == "answered" and not app.streaming
        old = [s for s in first.query(AnswerMarkdown) if s._pruning]
        assert old
        # The pilot's wait (as at the next Enter) queues a callback on every widget, the old
        # segment's behind its removal; then the question that cancels the worker.
        waiting = asyncio.ensure_future(pilot.pause())
        await asyncio.sleep(0)
        app.chat.ask("sidechain ducking the bass")  # what Enter does
        await asyncio.sleep(0.05)
        release.set()
        # Every widget ran the pilot's callback (one dropped: WaitForScreenTimeout, 30 s).
        await asyncio.wait_for(waiting, 10)
        await wait_until(pilot, lambda: len(app.conversation.answers) == 2)
        nxt = app.conversation.last_answer
        await wait_until(pilot, lambda: settled(nxt), what="next answer settled")
        assert nxt.status == "answered"
        # The first answer stays answered (not relabelled "stopped"); its old segment is gone.
        assert first.status == "answered"
        assert not any(s.is_attached for s in old)
        assert await usage_statuses(app) == ["answered", "answered"]
