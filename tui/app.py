"""The Chrysopedia app: composes the main screen, owns the services, routes chat events.

Start-up paints first and loads later: the services (SQLAlchemy, openai, redis)
and Textual's Markdown (an answer's widgets) are imported and the database opened
in a worker after the first frame, so the app appears about as fast as a bare
Textual app. A question asked before the services are ready waits for them.

One answer at a time: the `answer` worker group is exclusive; Escape cancels
it (the partial answer stays, marked stopped). Every failure of an answer ends
in one place (`_answer_failed`): inline in the conversation with Retry, and
as a notification; the question is never lost.

`make_app(settings, **overrides)` builds the app for `run_app` and for tests.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import os

# At most 20 frames a second (Textual's default is 60). A frame of this screen (reflow
# and repaint of the scrolled conversation) costs tens of milliseconds; while an answer
# streams, fewer frames leave the CPU to rendering the answer itself. Text streaming at
# 20 frames a second reads smoothly. Set before Textual is first imported; the user's own
# TEXTUAL_FPS wins.
os.environ.setdefault("TEXTUAL_FPS", "20")
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Collapsible, Static
from textual.worker import Worker, WorkerState

from tui.config import Settings
from tui.pacing import FramePacer, PacedScreen
from tui.widgets.conversation import AssistantMessage, ConversationView
from tui.widgets.creator_picker import ANY, CreatorPicker
from tui.widgets.footer import AppFooter
from tui.widgets.prompt import PromptInput
from tui.widgets.safe_text import clean, one_line, plain
from tui.widgets.sources import SourceList, SourcesSidebar
from tui.widgets.status import StatusBar
from tui.widgets.voice_slider import VoiceSlider

logger = logging.getLogger("chrysopedia.app")

STATE_FILE = "state.json"

DEFAULT_THEME = "textual-dark"


# Collect the youngest generation every 20,000 new objects (default 700), the middle one
# every 50 of those, the oldest not at all while an answer streams.
STREAMING_GC_THRESHOLDS = (20_000, 50, 1_000_000)


def settle_garbage_collector() -> None:
    """Move what exists now (modules, services, finished answers) out of the cyclic
    collector's way (`gc.freeze`). Textual creates many objects per Markdown block; without
    this, each full collection rescans every long-lived object and costs 0.1–0.4 s in the
    middle of a streaming answer. Frozen objects are still freed by reference counting;
    `thaw_garbage_collector` hands them back when a conversation's widgets are removed."""
    gc.collect()
    gc.freeze()


def thaw_garbage_collector() -> None:
    gc.unfreeze()


class Services:
    """What the worker loads after the first frame (heavy imports live behind this)."""

    def __init__(self) -> None:
        self.db: Any = None
        self.history: Any = None
        self.chat: Any = None
        self.transcripts: Any = None
        self.owns_db = True


class ChrysopediaApp(App[int]):
    CSS_PATH = "styles.tcss"
    TITLE = "Chrysopedia"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]

    BINDINGS = [
        # Two bindings on Escape: while an answer streams it stops it (and the footer says so);
        # otherwise it returns to the prompt.
        Binding("escape", "stop", "Stop answer", id="app.stop"),
        Binding("escape", "focus_prompt", "Back to the prompt", id="app.escape", show=False),
        Binding("f1", "help", "Keys", id="app.help"),
        Binding("ctrl+l", "focus_sources", "Sources", id="app.focus_sources"),
        Binding("ctrl+r", "regenerate", "Regenerate", id="app.regenerate"),
        Binding("ctrl+n", "new_conversation", "New conversation", id="app.new_conversation", show=False),
        Binding("ctrl+o", "conversations", "Conversations", id="app.conversations"),
        Binding("ctrl+g", "copy_answer", "Copy the last answer", id="app.copy_answer", show=False),
        Binding("ctrl+s", "export", "Export to Markdown", id="app.export", show=False),
        Binding("f4", "usage", "Usage", id="app.usage", show=False),
        Binding("ctrl+b", "toggle_sidebar", "Show/hide sources", id="app.toggle_sidebar", show=False),
        Binding("ctrl+t", "toggle_voice_preview", "Voice preview", id="app.voice_preview", show=False),
        Binding("f2", "focus_prompt", "Back to the prompt", id="app.focus_prompt", show=False),
        Binding("f3", "focus_creator", "Choose the creator", id="app.focus_creator", show=False),
        Binding("f8", "focus_voice", "Tune the voice", id="app.focus_voice", show=False),
        *[
            Binding(str(n % 10), f"jump_source({n})", f"Source {n}", show=False, id=f"app.source_{n}")
            for n in range(1, 11)
        ],
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        chat_service: Any = None,
        theme: str | None = None,
        remember_theme: bool = True,
        database: Any = None,
        cursor_blink: bool = True,
        export_dir: Path | None = None,
        load_bundled_kb: bool = True,
        clock: Callable[[], Any] | None = None,
        manage_gc: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.services = Services()
        self._chat_override = chat_service
        self._db_override = database
        self._remember_theme = remember_theme
        self._cursor_blink = cursor_blink
        self.export_dir = export_dir
        self._load_bundled_kb = load_bundled_kb
        self._clock = clock  # "now" for screens that show ages (tests fix it)
        # gc.freeze() after start-up and after each answer (process-wide: tests that share
        # a process with other suites turn it off).
        self._manage_gc = manage_gc
        self.ready = asyncio.Event()
        self.boot_error: str | None = None
        # The app names the conversation up front, so a retry after a failure stays in it.
        self.conversation_id: str = str(uuid.uuid4())
        self.conversation_title = ""
        self.creators: list[dict[str, Any]] = []
        self.last_question: str | None = None
        self._current_answer: AssistantMessage | None = None
        self._state = self._read_state()
        self.pacer = FramePacer()
        self.theme = theme or settings.theme or self._state.get("theme") or DEFAULT_THEME
        if settings.keymap:
            self.set_keymap(dict(settings.keymap))

    # -- layout ---------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        return PacedScreen(self.pacer, id="_default")

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown | events.MouseScrollDown
                      | events.MouseScrollUp | events.MouseMove):
            self.pacer.user_input()  # the user's own input is never held back
        await super().on_event(event)

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="main"):
            with Vertical(id="chat"):
                yield ConversationView(id="conversation")
                with Horizontal(id="voice-row"):
                    yield CreatorPicker(id="creator", compact=True)
                    yield VoiceSlider(id="voice", disabled=True)
                with Collapsible(title="Voice instructions", id="voice-preview", collapsed=True):
                    yield Static("", id="voice-preview-text", markup=False)
                yield PromptInput(id="prompt", placeholder="Ask about synthesis, mixing, sampling…  (Enter sends, Ctrl+J new line)")
            yield SourcesSidebar(id="sources")
        yield AppFooter()

    @property
    def conversation(self) -> ConversationView:
        return self.query_one("#conversation", ConversationView)

    @property
    def sidebar(self) -> SourcesSidebar:
        return self.query_one("#sources", SourcesSidebar)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    @property
    def slider(self) -> VoiceSlider:
        return self.query_one("#voice", VoiceSlider)

    @property
    def picker(self) -> CreatorPicker:
        return self.query_one("#creator", CreatorPicker)

    @property
    def status_bar(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def streaming(self) -> bool:
        """An answer is being produced: its worker runs and its answer is not final yet
        (a worker that has shown its error or answer and is only tidying up does not count)."""
        running = any(
            w.group == "answer" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for w in self.workers
        )
        answer = self._current_answer
        return running and (answer is None or answer.status in ("working", "streaming"))

    def on_mount(self) -> None:
        self.prompt.cursor_blink = self._cursor_blink
        self.prompt.focus()
        self.status_bar.set(model="loading…")
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._update_voice_preview()
        # Load the services after the first frame.
        self.call_after_refresh(self._boot)

    # -- start-up -------------------------------------------------------------
    @work(group="boot", exit_on_error=False, description="load the knowledge base")
    async def _boot(self) -> None:
        try:
            await self._load_services()
            if self._manage_gc:
                settle_garbage_collector()
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app keeps running
            logger.exception("boot failed")
            self.boot_error = one_line(str(exc)) or type(exc).__name__
            self.status_bar.set(model="not ready", activity="")
            self.notify(plain(f"Could not open the knowledge base: {self.boot_error}"),
                        severity="error", timeout=10)
        finally:
            self.ready.set()

    async def _load_services(self) -> None:
        need_chat = self._chat_override is None

        def heavy_imports():
            import tui.commands._common as common
            import tui.services.history as history
            import tui.services.transcripts as transcripts
            import tui.widgets.answer_markdown  # noqa: F401 - Textual's Markdown, off the first frame

            chat = importlib.import_module("tui.services.chat") if need_chat else None
            return common, chat, history, transcripts

        common, chat, history, transcripts = await asyncio.to_thread(heavy_imports)
        services = self.services
        services.transcripts = transcripts
        if self._db_override is not None:
            services.db, services.owns_db = self._db_override, False
        else:
            services.db = await common.open_database(
                self.settings, load_bundled=self._load_bundled_kb
            )
        try:
            await transcripts.mark_interrupted(services.db, older_than=60.0)
        except Exception:  # noqa: BLE001 - housekeeping only
            logger.warning("mark_interrupted failed", exc_info=True)
        services.history = await history.open_history(self.settings, services.db)
        services.history.add_listener(lambda state: self.call_later(self._show_memory_state, state))
        self.creators = await self._load_creators(services.db)
        if self._chat_override is not None:
            services.chat = self._chat_override
        else:
            services.chat = chat.ChatService(self.settings, services.db, services.history)
        self.picker.set_creators(self.creators)
        self._show_memory_state(services.history.state)
        self.status_bar.set(model=self._model_label())
        if services.history.state.problem:
            self.notify(plain(services.history.state.problem), title="Redis not used",
                        severity="error", timeout=15)

    async def _load_creators(self, db) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from tui.db.models import Creator

        async with db.session() as session:
            rows = (await session.execute(select(Creator).order_by(Creator.name))).scalars().all()
        return [
            {"slug": c.slug, "name": c.name, "personality_profile": c.personality_profile}
            for c in rows
        ]

    def _model_label(self) -> str:
        if not self.settings.model_configured:
            return "offline digest"
        return self.settings.llm_model or "model"

    def _show_memory_state(self, state) -> None:
        backend = "Redis" if state.backend == "redis" else "local"
        warning = ""
        if state.redis_dropped:
            warning = "Redis dropped out" if not state.error else f"Redis unavailable ({state.error})"
        self.status_bar.set(memory=backend, memory_warning=warning)

    async def on_unmount(self) -> None:
        services = self.services
        try:
            if services.chat is not None and hasattr(services.chat, "aclose"):
                await services.chat.aclose()
            if services.history is not None:
                await services.history.close()
            if services.db is not None and services.owns_db:
                await services.db.dispose()
        except Exception:  # noqa: BLE001 - closing down
            logger.warning("close failed", exc_info=True)

    # -- asking ---------------------------------------------------------------
    @on(PromptInput.Submitted)
    def _submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text
        if self.streaming:
            # Refused, not queued: the question stays in the prompt.
            self.notify("An answer is still streaming: press Escape to stop it, then send.",
                        severity="warning")
            return
        from tui.services.chat import MAX_QUERY_CHARS

        if len(text) > MAX_QUERY_CHARS:
            # Refused here, not by the service: the text stays in the prompt to be shortened.
            self.notify(f"The question is {len(text):,} characters long; the limit is "
                        f"{MAX_QUERY_CHARS:,} characters. Shorten it and send again.",
                        title="Question too long", severity="warning")
            return
        self.prompt.remember(text)
        self.ask(text)

    def ask(self, question: str, *, regenerate: bool = False) -> Worker:
        self.last_question = question
        return self._answer(question, regenerate=regenerate)

    def _creator_slug(self) -> str | None:
        value = self.picker.value
        return value if isinstance(value, str) and value != ANY else None


    @work(exclusive=True, group="answer", exit_on_error=False, description="answer")
    async def _answer(self, question: str, *, regenerate: bool = False) -> None:
        conversation = self.conversation
        if regenerate and conversation.last_answer is not None:
            previous = conversation.last_answer
            previous.mark_previous()
            turn = previous.turn
        else:
            await conversation.add_question(question)
            turn = 0
        answer = await conversation.add_answer(question=question, turn=turn)
        self._current_answer = answer
        self.sidebar.show_sources([])
        if not self.ready.is_set():
            self.status_bar.set(activity="loading the knowledge base…")
            await self.ready.wait()
        if self.services.chat is None:
            raise RuntimeError(f"the knowledge base is not available: {self.boot_error}")
        weight = self.slider.value if self._creator_slug() else 0.0
        self.status_bar.set(activity="answering…")
        thresholds = gc.get_threshold()
        if self._manage_gc:
            # While an answer streams, young collections are rare and full ones do not run:
            # Textual makes and drops many objects per block, and the default thresholds
            # cost a fast stream ~10% of its time, with pauses of ~50 ms on a slow machine.
            gc.set_threshold(*STREAMING_GC_THRESHOLDS)
        try:
            async for event in self.services.chat.stream_response(
                question,
                creator=self._creator_slug(),
                conversation_id=self.conversation_id,
                personality_weight=weight,
                regenerate=regenerate,
            ):
                await self._route(answer, event)
        except asyncio.CancelledError:
            await answer.stop()
            self.status_bar.set(activity="stopped")
            raise
        finally:
            if self._current_answer is answer:
                self._current_answer = None
            if self._manage_gc:
                gc.set_threshold(*thresholds)
                gc.collect(1)  # the answer's own cyclic garbage (young objects only)
                gc.freeze()  # the finished answer's widgets are long-lived too

    async def _route(self, answer: AssistantMessage, event: Any) -> None:
        """One chat event to the widgets."""
        kind = getattr(event, "event", "")
        if kind == "token":
            await answer.write(event.text)
        elif kind == "sources":
            answer.set_sources(event.sources)
            if self.conversation._in_view is answer:
                self.sidebar.show_sources(answer.sources)
        elif kind == "reset":
            await answer.reset(event.reason)
            self.status_bar.set(model=event.model, activity="fallback model answering…")
        elif kind == "done":
            done = event.payload()
            if answer.turn == 0 and done.get("turn"):
                answer.turn = int(done["turn"])
            self.conversation_id = done.get("conversation_id") or self.conversation_id
            await answer.finish(done)
            usage = done.get("usage") or {}
            self.status_bar.set(
                model=done.get("model") or self._model_label(),
                tier=done.get("cascade_tier") or "",
                tokens=usage.get("total_tokens"),
                latency_ms=done.get("latency_ms"),
                activity="",
            )
            if self.services.history is not None:
                self._show_memory_state(self.services.history.state)
        elif kind == "error":
            await self._show_failure(answer, event.message)

    async def _show_failure(self, answer: AssistantMessage, message: str) -> None:
        await answer.fail(message)
        self.status_bar.set(activity="failed")
        self.notify(plain(message), title="Answer failed", severity="error")

    @on(Worker.StateChanged)
    async def _answer_failed(self, event: Worker.StateChanged) -> None:
        """Every unexpected failure of an answer worker ends here."""
        if event.worker.group != "answer":
            return
        self.refresh_bindings()  # the footer's "Stop answer" follows the worker
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        message = one_line(str(error)) or type(error).__name__
        answer = self.conversation.last_answer
        if answer is not None and answer.status in ("working", "streaming"):
            await self._show_failure(answer, message)
        else:
            self.notify(plain(message), title="Answer failed", severity="error")

    @on(AssistantMessage.RetryRequested)
    def _retry_requested(self, event: AssistantMessage.RetryRequested) -> None:
        self.action_retry(event.answer)

    def action_retry(self, answer: AssistantMessage | None = None) -> None:
        answer = answer or self.conversation.last_answer
        if answer is None or self.streaming:
            return
        # An answer that got its sources had its question saved in the archive: regenerate
        # that turn. One refused before (nothing stored) is asked again as a new question.
        if answer.got_sources:
            self.ask(answer.question, regenerate=True)
        else:
            self.ask(answer.question)

    def action_regenerate(self) -> None:
        if self.streaming:
            self.notify("Wait for the answer to finish (or press Escape).", severity="warning")
            return
        answer = self.conversation.last_answer
        if answer is None:
            self.notify("Nothing to regenerate yet.", severity="information")
            return
        self.action_retry(answer)

    # Actions of the main screen; hidden from the footer over other screens.
    MAIN_ACTIONS = frozenset({
        "stop", "focus_sources", "regenerate", "new_conversation", "conversations",
        "copy_answer", "export", "usage", "help", "toggle_sidebar", "toggle_voice_preview",
        "focus_prompt", "jump_source", "focus_creator", "focus_voice",
    })

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.MAIN_ACTIONS and self.screen is not self.screen_stack[0]:
            return False
        if action == "stop":
            return self.streaming
        return True

    def action_stop(self) -> None:
        if self.streaming:
            self.workers.cancel_group(self, "answer")

    # -- sources ----------------------------------------------------------------
    @on(ConversationView.AnswerInView)
    def _answer_in_view(self, event: ConversationView.AnswerInView) -> None:
        self.sidebar.show_sources(event.answer.sources if event.answer else [])

    @on(SourcesSidebar.SourceSelected)
    def _open_source(self, event: SourcesSidebar.SourceSelected) -> None:
        self.open_source(event.number)

    @on(SourceList.Leave)
    def _leave_sources(self) -> None:
        self.prompt.focus()

    def on_markdown_link_clicked(self, event) -> None:
        href = event.href or ""
        event.stop()
        if href.startswith("cite:"):
            try:
                number = int(href[5:])
            except ValueError:
                return
            answer = event.markdown.query_ancestor(AssistantMessage)
            if answer is not None and 1 <= number <= len(answer.sources):
                self.sidebar.show_sources(answer.sources)
                self.sidebar.select_number(number)
        # Other links from a model are not opened: text from a model is data.

    def action_jump_source(self, number: int) -> None:
        if self.prompt.has_focus:
            return
        if self.sidebar.select_number(number):
            if not self.sidebar.option_list.has_focus:
                self.sidebar.option_list.focus()
        else:
            self.bell()

    def action_focus_sources(self) -> None:
        if not self.sidebar.display:
            self.sidebar.display = True
        if self.sidebar.sources:
            self.sidebar.option_list.focus()
        else:
            self.notify("No sources to show yet.")

    def action_focus_prompt(self) -> None:
        self.prompt.focus()

    def action_focus_creator(self) -> None:
        self.picker.focus()

    def action_focus_voice(self) -> None:
        if self.slider.disabled:
            self.notify("Choose a creator first (F3): the voice is that creator's.")
        else:
            self.slider.focus()

    def action_toggle_sidebar(self) -> None:
        self.sidebar.display = not self.sidebar.display

    def open_source(self, number: int) -> None:
        if self.sidebar.source(number) is None:
            return
        self.sidebar.select_number(number)
        self._open_source_detail(number)

    @work(group="screen", exclusive=True, exit_on_error=False, description="source detail")
    async def _open_source_detail(self, number: int) -> None:
        from tui.screens.source_detail import SourceDetailScreen

        source = self.sidebar.source(number) or {}
        detail: dict[str, Any] | None = None
        await self.ready.wait()
        if self.services.db is not None and source.get("slug"):
            from tui.services.player import default_media_dir
            from tui.services.sources import source_detail

            try:
                detail = await source_detail(
                    self.services.db, source["slug"], source.get("section_anchor") or None
                )
            except Exception:  # noqa: BLE001 - the short form still shows
                logger.warning("source_detail failed", exc_info=True)
            media_dir = default_media_dir(self.settings)
        else:
            media_dir = None
        detail = dict(detail or source)
        detail["number"] = number
        await self.push_screen(SourceDetailScreen(detail, media_dir=media_dir))

    # -- voice -------------------------------------------------------------------
    @on(CreatorPicker.Changed, "#creator")
    def _creator_changed(self) -> None:
        creator = self.picker.creator
        self.slider.disabled = creator is None
        self._update_voice_preview()

    @on(VoiceSlider.Changed, "#voice")
    def _weight_changed(self) -> None:
        self._update_voice_preview()

    def _update_voice_preview(self) -> None:
        from tui.services.personality import build_personality_block, tier_name

        self.slider.tier_name = tier_name
        creator = self.picker.creator
        preview = self.query_one("#voice-preview", Collapsible)
        text = self.query_one("#voice-preview-text", Static)
        if creator is None:
            preview.title = "Voice instructions (choose a creator)"
            text.update("With any creator, answers use the neutral encyclopedic voice.")
            return
        weight = self.slider.value
        block = build_personality_block(creator["name"], creator.get("personality_profile") or {}, weight)
        preview.title = f"Voice instructions: {one_line(creator['name'])} at {weight:.2f} ({tier_name(weight)})"
        if not creator.get("personality_profile"):
            body = f"{creator['name']} has no personality profile: the voice stays neutral."
        elif not block:
            body = "Off: nothing is added to the prompt below 0.20."
        else:
            body = block
        text.update(clean(body) + "\n(applies to the next answer; Ctrl+R regenerates the last one)")

    def action_toggle_voice_preview(self) -> None:
        preview = self.query_one("#voice-preview", Collapsible)
        preview.collapsed = not preview.collapsed

    # -- conversations -----------------------------------------------------------
    async def action_new_conversation(self) -> None:
        if self.streaming:
            self.workers.cancel_group(self, "answer")
        self.conversation_id = str(uuid.uuid4())
        self.conversation_title = ""
        if self._manage_gc:
            thaw_garbage_collector()  # the removed widgets must be collectable
        await self.conversation.clear()
        self.sidebar.show_sources([])
        self.status_bar.set(tier="", tokens=None, latency_ms=None, activity="new conversation")
        self.prompt.focus()

    @work(group="screen", exclusive=True, exit_on_error=False, description="conversations")
    async def action_conversations(self) -> None:
        from tui.screens.conversations import ConversationsScreen

        await self.ready.wait()
        if self.services.transcripts is None:
            self.notify("The conversation archive is not available.", severity="error")
            return
        summaries = await self.services.transcripts.list_conversations(self.services.db)
        rows = []
        for summary in summaries:
            row = summary.as_dict()
            row["updated_at"] = summary.updated_at
            creator = self.picker.creators.get(summary.creator_slug or "")
            if creator:
                row["creator_name"] = creator["name"]
            rows.append(row)
        screen = ConversationsScreen(rows, now=self._now(), current_id=self.conversation_id)

        async def chosen(result: Any) -> None:
            if not result:
                return
            what, cid = result
            if what == "resume" and cid:
                self.resume(cid)
            elif what == "new":
                await self.action_new_conversation()

        await self.push_screen(screen, chosen)

    def on_conversations_screen_delete(self, event) -> None:
        self._delete_conversation(event.conversation_id)

    @work(group="delete", exit_on_error=False, description="delete a conversation")
    async def _delete_conversation(self, conversation_id: str) -> None:
        await self.services.transcripts.delete_conversation(self.services.db, conversation_id)
        if conversation_id == self.conversation_id:
            await self.action_new_conversation()
        self.notify("Conversation deleted.")

    def _now(self):
        from datetime import UTC, datetime

        return self._clock() if self._clock else datetime.now(UTC)

    @work(group="resume", exclusive=True, exit_on_error=False, description="resume a conversation")
    async def resume(self, conversation_id: str) -> None:
        await self.ready.wait()
        if self.streaming:
            self.workers.cancel_group(self, "answer")
        transcripts = self.services.transcripts
        messages = await transcripts.load_conversation(self.services.db, conversation_id)
        summary = await transcripts.get_conversation(self.services.db, conversation_id)
        await self.show_transcript(messages)
        self.conversation_id = conversation_id
        self.conversation_title = summary.title if summary else ""
        if summary is not None and summary.creator_slug:
            if summary.creator_slug in self.picker.creators:
                self.picker.value = summary.creator_slug
                self.slider.value = summary.personality_weight or 0.0
        self.status_bar.set(activity=f"resumed: {one_line(self.conversation_title)[:40]}")
        self.prompt.focus()

    async def show_transcript(self, messages: Iterable[dict[str, Any]]) -> None:
        conversation = self.conversation
        if self._manage_gc:
            thaw_garbage_collector()  # the removed widgets must be collectable
        await conversation.clear()
        by_turn_answers: dict[int, list[dict[str, Any]]] = {}
        for m in messages:
            if m.get("role") == "assistant":
                by_turn_answers.setdefault(int(m.get("turn") or 0), []).append(m)
        questions: dict[int, str] = {}
        for m in messages:
            turn = int(m.get("turn") or 0)
            if m.get("role") == "user":
                questions[turn] = m.get("content") or ""
                await conversation.add_question(questions[turn])
            elif m.get("role") == "assistant":
                answer = await conversation.add_answer(
                    m.get("sources") or [], question=questions.get(turn, ""), turn=turn
                )
                status = m.get("status") or "answered"
                await answer.restore(m.get("content") or "", m, status)
                if not m.get("current", True):
                    answer.mark_previous()
        conversation.scroll_end(animate=False)
        conversation.anchor()
        if self._manage_gc:
            gc.freeze()
        for text in questions.values():
            if text and (not self.prompt.recall or self.prompt.recall[-1] != text):
                self.prompt.recall.append(text)

    # -- copy, export, screens -----------------------------------------------------
    def action_copy_answer(self) -> None:
        answer = self.conversation.last_answer
        if answer is None or not answer.raw:
            self.notify("No answer to copy yet.")
            return
        self.copy_to_clipboard(answer.raw)
        self.notify("Copied the last answer to the clipboard.")

    @work(group="export", exclusive=True, exit_on_error=False, description="export")
    async def action_export(self) -> None:
        await self.ready.wait()
        if not self.conversation_id or self.services.transcripts is None:
            self.notify("Nothing to export yet: ask a question first.")
            return
        from tui.services.export import conversation_to_markdown

        transcripts = self.services.transcripts
        messages = await transcripts.load_conversation(self.services.db, self.conversation_id)
        summary = await transcripts.get_conversation(self.services.db, self.conversation_id)
        meta = summary.as_dict() if summary else {"id": self.conversation_id}
        creator = self.picker.creators.get(meta.get("creator_slug") or "")
        if creator:
            meta["creator_name"] = creator["name"]
        text = conversation_to_markdown(meta, messages)
        folder = self.export_dir or (Path(self.settings.data_dir) / "exports")
        path = folder / f"chrysopedia-{self.conversation_id[:8]}.md"
        if self.is_web:  # served: the file goes to the browser, not to the server's disk
            from tui.serve.browser import offer_download

            self.notify(offer_download(self, text, path.name), title="Export")
            return

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")

        await asyncio.to_thread(write)
        self.notify(plain(f"Exported to {path}"), title="Export")

    @work(group="screen", exclusive=True, exit_on_error=False, description="usage")
    async def action_usage(self) -> None:
        from tui.screens.usage import UsageScreen
        from tui.services.usage import usage_report

        await self.ready.wait()
        if self.services.db is None:
            self.notify("The usage log is not available.", severity="error")
            return
        report = await usage_report(self.services.db, 30, now=self._now())
        await self.push_screen(UsageScreen(report))

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(self.key_help()))

    def key_help(self) -> list[tuple[str, str, str]]:
        """(key, description, group) for our bindings, as remapped by the keymap."""
        groups = [
            ("Everywhere", self, "app."),
            ("Prompt", self.prompt, "prompt."),
            ("Sources sidebar", self.sidebar.option_list, "sources."),
            ("Voice slider", self.slider, "slider."),
        ]
        rows: list[tuple[str, str, str]] = []
        for group, node, prefix in groups:
            by_action: dict[str, tuple[list[str], str]] = {}
            for key, bindings in node._bindings.key_to_bindings.items():
                for binding in bindings:
                    if not (binding.id or "").startswith(prefix) or not binding.description:
                        continue
                    if binding.action.startswith("jump_source"):
                        continue
                    keys, _ = by_action.setdefault(binding.action, ([], binding.description))
                    keys.append(self.get_key_display(replace(binding, key=key)))
            for keys, description in by_action.values():
                rows.append((" / ".join(dict.fromkeys(keys)), description, group))
            if group == "Everywhere":
                rows.append(("1–9, 0", "Jump to source N (0 is 10), outside the prompt", group))
                rows.append(("^p", "Command palette: every action, and themes", group))
                rows.append(("^q", "Quit", group))
            elif group == "Prompt":
                rows.append(("↑ / ↓", "Earlier questions (on the first / last line)", group))
            elif group == "Sources sidebar":
                rows.append(("↑ / ↓", "Move", group))
                rows.append(("enter / click", "Open the source", group))
        return rows

    # -- command palette -----------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands: list[tuple[str, str, Callable[[], Any]]] = [
            ("Stop the answer", "Cancel the streaming answer (keeps the partial text)", self.action_stop),
            ("Regenerate the last answer", "With the current creator and voice weight", self.action_regenerate),
            ("Retry", "Ask the last failed question again", self.action_retry),
            ("New conversation", "Start an empty conversation", self.action_new_conversation),
            ("Conversations", "List past conversations to resume or delete", self.action_conversations),
            ("Copy the last answer", "To the clipboard", self.action_copy_answer),
            ("Export the conversation", "As Markdown with its sources as footnotes", self.action_export),
            ("Usage", "Tokens, requests and latency by day", self.action_usage),
            ("Help: keys", "List the key bindings", self.action_help),
            ("Focus the sources", "Move through sources with Up/Down, Enter opens", self.action_focus_sources),
            ("Toggle the sources sidebar", "Show or hide the sidebar", self.action_toggle_sidebar),
            ("Toggle the voice preview", "Show the voice instructions for this creator and weight", self.action_toggle_voice_preview),
            ("Focus the prompt", "Back to typing a question", self.action_focus_prompt),
            ("Choose the creator", "Scope search and voice to one creator", self.action_focus_creator),
            ("Tune the voice", "Focus the voice slider (Left/Right, Shift for 0.20)", self.action_focus_voice),
        ]
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)

    # -- theme memory ----------------------------------------------------------------
    def _state_path(self) -> Path:
        return Path(self.settings.data_dir) / STATE_FILE

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _theme_changed(self, theme) -> None:
        if not self._remember_theme:
            return
        self._state["theme"] = theme.name
        try:
            path = self._state_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self._state), encoding="utf-8")
        except OSError:
            logger.warning("cannot save the theme choice", exc_info=True)


def make_app(settings: Settings, **overrides: Any) -> ChrysopediaApp:
    """The app for `run_app` and for tests (overrides: chat_service, theme, database, ...)."""
    return ChrysopediaApp(settings, **overrides)


def run_app(settings: Settings) -> int:
    app = make_app(settings)
    result = app.run()
    return int(result or 0)
