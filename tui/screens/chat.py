"""The chat screen: the conversation, the prompt, the creator and voice, the sources.

It composes its widgets, runs the answer worker and routes the typed chat events to them
(`_route`), and owns the screen's actions (one table: tui/actions.py). The services come
from the app (`app.services`, loaded after the first frame; `app.ready` is set then).

One answer at a time: the `answer` worker group is exclusive; Escape cancels it (the
partial answer stays, marked stopped). Every failure of an answer ends in one place
(`_answer_failed`): inline in the conversation with Retry, and as a notification; the
question is never lost.

One topic, the main screen's behaviour, hence its length; what it uses lives elsewhere:
start-up in tui/startup.py, the collector policy in tui/collector.py, the archive and the
export in tui/services/archive.py and export_file.py, the actions in tui/actions.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Collapsible, Static
from textual.worker import Worker, WorkerState

from tui import actions
from tui.answer_segmenter import CLAIM_LEGEND
from tui.pacing import PacedScreen
from tui.services.locators import format_timestamp
from tui.services.personality import describe_voice, profile_kind
from tui.voice_tiers import tier_name
from tui.widgets.answer import AnswerClaims, ClaimMark
from tui.widgets.conversation import AssistantMessage, ConversationView
from tui.widgets.creator_picker import ANY, CreatorPicker
from tui.widgets.footer import AppFooter
from tui.widgets.prompt import PromptInput
from tui.widgets.safe_text import clean, one_line, plain
from tui.widgets.sources import SourceList, SourcesSidebar
from tui.widgets.status import StatusBar
from tui.widgets.voice_slider import VoiceSlider

if TYPE_CHECKING:
    from tui.app import ChrysopediaApp

logger = logging.getLogger("chrysopedia.app")

PROMPT_PLACEHOLDER = "Ask about synthesis, mixing, sampling…  (Enter sends, Ctrl+J new line)"


class ChatScreen(PacedScreen):
    BINDINGS = actions.bindings()

    app: ChrysopediaApp

    def __init__(self, pacer, **kwargs) -> None:
        super().__init__(pacer, **kwargs)
        # The screen names the conversation up front, so a retry after a failure stays in it.
        self.conversation_id = str(uuid.uuid4())
        self.conversation_title = ""
        self.last_question: str | None = None
        self._current_answer: AssistantMessage | None = None
        self._sidebar_answer: AssistantMessage | None = None  # whose sources the sidebar shows
        # The claim last jumped to or clicked: (answer, index in its claim check). Opening a
        # source then lights the words that support that claim.
        self._claim_focus: tuple[AssistantMessage, int] | None = None

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
                yield PromptInput(id="prompt", placeholder=PROMPT_PLACEHOLDER)
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
            for w in self.app.workers
        )
        answer = self._current_answer
        return running and (answer is None or answer.status in ("working", "streaming"))

    def on_mount(self) -> None:  # PacedScreen's own on_mount runs too (Textual calls each)
        self.prompt.cursor_blink = self.app.cursor_blink
        self.prompt.focus()
        self.status_bar.set(model="loading…")
        self._update_voice_preview()

    # -- start-up -------------------------------------------------------------
    def services_ready(self) -> None:
        services = self.app.services
        self.set_creators(services.creators)
        self.show_memory_state(services.history.state)
        self.status_bar.set(model=self._model_label(), demo=services.demo)

    @work(group="kb-state", exclusive=True, exit_on_error=False, description="knowledge base state")
    async def refresh_kb_state(self) -> None:
        """After the knowledge base changed: the creators (and their profiles) and whether the
        demo pages are what is loaded, read again."""
        from tui.startup import refresh_kb_state

        await self.app.ready.wait()
        services = self.app.services
        if services.archive is None:
            return
        await refresh_kb_state(services)
        self.set_creators(services.creators)
        self.status_bar.set(demo=services.demo)
        self._update_voice_preview()

    def set_creators(self, creators: list[dict[str, Any]]) -> None:
        """The picker's creators, each saying where its voice profile came from."""
        self.picker.set_creators(
            [{**c, "profile_kind": profile_kind(c.get("personality_profile"))} for c in creators])

    def services_failed(self) -> None:
        self.status_bar.set(model="not ready", activity="")

    def _model_label(self) -> str:
        settings = self.app.settings
        if not settings.model_configured:
            return "offline digest"
        return settings.llm_model or "model"

    def show_memory_state(self, state) -> None:
        backend = "Redis" if state.backend == "redis" else "local"
        warning = ""
        if state.redis_dropped:
            warning = "Redis dropped out" if not state.error else f"Redis unavailable ({state.error})"
        self.status_bar.set(memory=backend, memory_warning=warning)

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
        app = self.app
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
        self._show_sources_of(None)
        if not app.ready.is_set():
            self.status_bar.set(activity="loading the knowledge base…")
            await app.ready.wait()
        if app.services.chat is None:
            raise RuntimeError(f"the knowledge base is not available: {app.boot_error}")
        weight = self.slider.value if self._creator_slug() else 0.0
        self.status_bar.set(activity="answering…")
        try:
            with app.collector.streaming(later=self.call_after_refresh):
                async for event in app.services.chat.stream_response(
                    question,
                    creator=self._creator_slug(),
                    conversation_id=self.conversation_id,
                    personality_weight=weight,
                    regenerate=regenerate,
                ):
                    await self._route(answer, event)
        except asyncio.CancelledError:
            if answer.status in ("working", "streaming"):  # an answered one stays answered
                await answer.stop()
                self.status_bar.set(activity="stopped")
            raise
        finally:
            if self._current_answer is answer:
                self._current_answer = None

    async def _route(self, answer: AssistantMessage, event: Any) -> None:
        """One chat event to the widgets."""
        # Imported here, not with the screen: the events come with the services, after
        # the first frame.
        from tui.services.events import Done, Error, Reset, Sources, Token

        match event:
            case Token(text=text):
                await answer.write(text)
            case Sources(sources=sources):
                answer.set_sources(sources)
                if self.conversation.answer_in_view is answer:
                    self._show_sources_of(answer)
            case Reset(reason=reason, model=model):
                await answer.reset(reason)
                self.status_bar.set(model=model, activity="fallback model answering…")
            case Done():
                await self._answered(answer, event)
            case Error(message=message):
                await self._show_failure(answer, message)

    async def _answered(self, answer: AssistantMessage, done: Any) -> None:
        if answer.turn == 0 and done.turn:
            answer.turn = int(done.turn)
        self.conversation_id = done.conversation_id or self.conversation_id
        await answer.finish(done)
        await self._show_claims(answer, done.claims)
        usage = done.usage or {}
        self.status_bar.set(
            model=done.model or self._model_label(),
            tier=done.cascade_tier or "",
            tokens=usage.get("total_tokens"),
            latency_ms=done.latency_ms,
            activity="",
        )
        if self.app.services.history is not None:
            self.show_memory_state(self.app.services.history.state)

    # -- the claim check ---------------------------------------------------------
    @staticmethod
    def _claims_view(claims: Any) -> AnswerClaims:
        """What an answer shows of its claim check (the service's payload, plain data)."""
        from tui.services.claims import QUESTIONABLE, summary_line

        if not isinstance(claims, dict):
            return AnswerClaims()
        items = claims.get("items") if isinstance(claims.get("items"), list) else []
        marks = tuple(
            ClaimMark(k, i["start"], i["end"], i["status"], i.get("kind") == "row")
            for k, i in enumerate(items)
            if isinstance(i, dict) and i.get("status") in QUESTIONABLE
            and isinstance(i.get("start"), int) and isinstance(i.get("end"), int))
        try:
            summary = summary_line(claims) if claims.get("total") else ""
            backed = tuple(int(n) for n in claims.get("backed_by_source") or ())
        except (TypeError, ValueError, AttributeError):  # a malformed stored check
            summary, backed = "", ()
        return AnswerClaims(summary, marks, backed)

    async def _show_claims(self, answer: AssistantMessage, claims: Any) -> None:
        answer.claims = claims if isinstance(claims, dict) else None
        await answer.show_claims(self._claims_view(answer.claims))
        if self._sidebar_answer is answer:
            self._show_sources_of(answer)

    @work(group="claims", exclusive=True, exit_on_error=False, description="check saved answers")
    async def _check_saved(self, pending: list[tuple[AssistantMessage, dict[str, Any]]]) -> None:
        """Answers saved without a claim check are checked against the knowledge base."""
        from tui.services.claims import check_saved_answer

        db = self.app.services.db
        for answer, message in pending:
            if db is None or not answer.is_attached:
                continue
            try:
                claims = await check_saved_answer(db, message.get("content") or "",
                                                  message.get("sources") or [])
            except Exception:  # noqa: BLE001 - the answer stands without its check
                logger.warning("checking a saved answer failed", exc_info=True)
                continue
            if answer.is_attached:
                await self._show_claims(answer, claims)

    def _explain_claim(self, answer: AssistantMessage, index: int) -> None:
        """Say why claim `index` of `answer` is marked, offering the right source."""
        items = (answer.claims or {}).get("items") or []
        if not 0 <= index < len(items):
            return
        item = items[index]
        self._claim_focus = (answer, index)
        cited = [n for n in item.get("cited") or [] if isinstance(n, int)]
        cites = " ".join(f"[{n}]" for n in cited)
        verb = "does" if len(cited) == 1 else "do"
        offered = item.get("source")
        if item.get("status") == "misattributed" and isinstance(offered, int):
            title = "Cited source does not say this"
            message = f"{cites} {verb} not say this; [{offered}] does."
            self.sidebar.select_number(offered)  # Enter there opens it, the words lit
        elif item.get("status") == "unsupported":
            title = "Without support"
            message = (f"{cites} {verb} not support this, nor does any other source."
                       if cited else "No source of this answer supports this.")
        else:
            return
        claim = one_line(answer.raw[item.get("start", 0):item.get("end", 0)])
        if len(claim) > 160:
            claim = claim[:159] + "…"
        reason = one_line(item.get("reason"))
        self.notify("\n".join(p for p in (f"“{claim}”", message, reason) if p),
                    title=title, severity="warning", markup=False, timeout=10)

    def action_next_claim(self) -> None:
        """Scroll to the next misattributed or unsupported claim and say why: on from the
        claim last jumped to, into the next answers, round to the first."""
        from tui.services.claims import next_questionable_across

        answers = self.conversation.answers
        focus = self._claim_focus
        start = focus[0] if focus is not None and focus[0] in answers else (
            self.conversation.answer_in_view or self.conversation.last_answer)
        if start is None or not any(a.claims for a in answers):
            self.notify("No checked answer in view.")
            return
        after = -1
        if focus is not None and focus[0] is start and start.claims:
            items = start.claims.get("items") or []
            if 0 <= focus[1] < len(items):
                after = items[focus[1]].get("start", 0)
        found = next_questionable_across([a.claims for a in answers], answers.index(start), after)
        if found is None:
            self.notify("Their sources support every claim of these answers.")
            return
        answer = answers[found[0]]
        index = answer.claims["items"].index(found[1])
        if self._sidebar_answer is not answer:
            self._show_sources_of(answer)  # the offered source is picked in its list
        target = answer.claim_block(index) or answer
        self.conversation.scroll_to_center(target, animate=False)
        self._explain_claim(answer, index)

    def _highlight_for(self, number: int) -> tuple[str, int, int] | None:
        """The words of source `number` to light: those supporting the claim last jumped
        to or clicked, else the first claim of the answer that cites it."""
        from tui.services.claims import citation_span

        answer = self._sidebar_answer
        if answer is None or not answer.claims:
            return None
        items = answer.claims.get("items") or []
        focus = self._claim_focus
        if focus is not None and focus[0] is answer and 0 <= focus[1] < len(items):
            span = citation_span(answer.claims, items[focus[1]].get("start", -1), number)
            if span:
                return span
        citing = [i for i in items if number in (i.get("cited") or [])]
        citing.sort(key=lambda i: i.get("status") != "supported")  # supported ones first
        for item in citing:
            span = citation_span(answer.claims, item.get("start", -1), number)
            if span:
                return span
        return None

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.streaming
        return True

    def action_stop(self) -> None:
        if self.streaming:
            self.app.workers.cancel_group(self, "answer")

    # -- sources ----------------------------------------------------------------
    @on(ConversationView.AnswerInView)
    def _answer_in_view(self, event: ConversationView.AnswerInView) -> None:
        self._show_sources_of(event.answer)

    def _show_sources_of(self, answer: AssistantMessage | None) -> None:
        """The sidebar shows `answer`'s sources (and how many claims each backs)."""
        self._sidebar_answer = answer
        if answer is None:
            self.sidebar.show_sources([])
            return
        backed = answer.claim_view.backed if answer.claims else None
        self.sidebar.show_sources(answer.sources, backed)

    @on(SourcesSidebar.SourceSelected)
    def _open_source(self, event: SourcesSidebar.SourceSelected) -> None:
        self.open_source(event.number)

    @on(SourceList.Leave)
    def _leave_sources(self) -> None:
        self.prompt.focus()

    def on_markdown_link_clicked(self, event) -> None:
        href = event.href or ""
        event.stop()
        kind, _, value = href.partition(":")
        if kind not in ("cite", "claim") or not value.isdigit():
            return
        try:
            answer = event.markdown.query_ancestor(AssistantMessage)
        except Exception:  # noqa: BLE001 - a link outside an answer
            return
        if kind == "claim":
            self._show_sources_of(answer)
            self._explain_claim(answer, int(value))
            return
        number = int(value)
        if 1 <= number <= len(answer.sources):
            self._show_sources_of(answer)
            if self._claim_focus is not None and self._claim_focus[0] is not answer:
                self._claim_focus = None
            # The source opens with the words that back the citation lit.
            self.open_source(number)
        # Other links from a model are not opened: text from a model is data.

    def action_jump_source(self, number: int) -> None:
        if self.prompt.has_focus:
            return
        if self.sidebar.select_number(number):
            if not self.sidebar.option_list.has_focus:
                self.sidebar.option_list.focus()
        else:
            self.app.bell()

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
        self._open_source_detail(number, self._highlight_for(number))

    @work(group="screen", exclusive=True, exit_on_error=False, description="source detail")
    async def _open_source_detail(self, number: int,
                                  highlight: tuple[str, int, int] | None = None) -> None:
        from tui.screens.source_detail import SourceDetailScreen

        app = self.app
        source = self.sidebar.source(number) or {}
        detail: dict[str, Any] | None = None
        await app.ready.wait()
        if app.services.db is not None and source.get("slug"):
            from tui.services.player import default_media_dir
            from tui.services.sources import source_detail

            try:
                detail = await source_detail(
                    app.services.db, source["slug"], source.get("section_anchor") or None
                )
            except Exception:  # noqa: BLE001 - the short form still shows
                logger.warning("source_detail failed", exc_info=True)
            media_dir = default_media_dir(app.settings)
        else:
            media_dir = None
        detail = dict(detail or source)
        detail["number"] = number
        await app.push_screen(SourceDetailScreen(detail, media_dir=media_dir, highlight=highlight))

    # -- voice -------------------------------------------------------------------
    @on(CreatorPicker.Changed, "#creator")
    def _creator_changed(self) -> None:
        self.slider.disabled = self.picker.creator is None
        self._update_voice_preview()

    @on(VoiceSlider.Changed, "#voice")
    def _weight_changed(self) -> None:
        self._update_voice_preview()

    def _update_voice_preview(self) -> None:
        creator = self.picker.creator
        preview = self.query_one("#voice-preview", Collapsible)
        text = self.query_one("#voice-preview-text", Static)
        weight = self.slider.value
        if creator is None:
            preview.title = "Voice instructions (choose a creator)"
            text.update(describe_voice(None, None, weight))
            return
        preview.title = f"Voice instructions: {one_line(creator['name'])} at {weight:.2f} ({tier_name(weight)})"
        body = describe_voice(creator["name"], creator.get("personality_profile"), weight)
        text.update(clean(body) + "\n(applies to the next answer; Ctrl+R regenerates the last one)")

    def action_toggle_voice_preview(self) -> None:
        preview = self.query_one("#voice-preview", Collapsible)
        preview.collapsed = not preview.collapsed

    # -- distill -------------------------------------------------------------------
    def action_distill(self) -> None:
        """Distill the chosen creator's transcripts in the background (one run at a time)."""
        creator = self.picker.creator
        if creator is None:
            self.notify("Choose a creator first (F3): distill works on one creator's transcripts.")
            return
        if any(w.group == "distill" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
               for w in self.app.workers):
            self.notify("A distill run is already going: see the status bar.", severity="warning")
            return
        self._distill(creator["slug"], creator["name"])

    @work(group="distill", exclusive=True, exit_on_error=False, description="distill")
    async def _distill(self, slug: str, name: str) -> None:
        app = self.app
        await app.ready.wait()
        if app.services.db is None:
            self.notify("The knowledge base is not available.", severity="error")
            return
        from tui.services.distill_job import run_distill

        who = one_line(name)[:30]
        model = app.settings.model_configured
        self.status_bar.set(job=f"distilling {who}: " + ("starting…" if model else "measuring…"))

        started = time.monotonic()

        def progress(p) -> None:
            left = p.tokens_left_estimate
            estimate = f" · ~{left:,} tokens left" if left else ""
            if 0 < p.done < p.total:  # pages so far at the pace so far, as the CLI's bar
                seconds = round((time.monotonic() - started) / p.done * (p.total - p.done))
                estimate += f" · ~{format_timestamp(max(seconds, 1))} to go"
            self.status_bar.set(job=f"distilling {who}: {p.done}/{p.total} pages"
                                    f" · {p.tokens:,} tokens{estimate}")

        try:
            report = await run_distill(app.services.db, app.settings, creator=slug,
                                       on_progress=progress)
        except LookupError as exc:  # no imported transcripts for this creator
            self.notify(plain(f"Nothing to distill: {str(exc).strip(chr(34))}"), title="Distill",
                        severity="warning")
            return
        except Exception as exc:
            logger.exception("distill failed")
            self.notify(plain(f"Distill failed: {one_line(str(exc)) or type(exc).__name__}"),
                        title="Distill", severity="error")
            return
        finally:
            self.status_bar.set(job="")
        chat = app.services.chat
        if hasattr(chat, "forget_profiles"):
            chat.forget_profiles()  # the next answer's voice uses the new profile
        self.refresh_kb_state()
        self.notify(plain(self._distill_summary(who, report)), title="Distill",
                    severity="information" if report.ok else "warning")

    @staticmethod
    def _distill_summary(who: str, report: Any) -> str:
        if report.model is None:
            return (f"No model configured: {who}'s voice profile measured from "
                    f"{report.pages_total} transcript(s); pages left as they are.")
        parts = [f"{who}: {len(report.distilled)} page(s) distilled"]
        if report.unchanged:
            parts.append(f"{len(report.unchanged)} already up to date")
        if report.rejected:
            parts.append(f"{len(report.rejected)} rejected (kept raw)")
        if report.failed:
            parts.append(f"{len(report.failed)} failed (no model answered)")
        parts.append(f"{report.tokens:,} tokens")
        profile = "distilled" if report.distilled_profiles else "measured"
        return ", ".join(parts) + f"; voice profile {profile}."

    # -- conversations -----------------------------------------------------------
    async def action_new_conversation(self) -> None:
        if self.streaming:
            self.app.workers.cancel_group(self, "answer")
        self.conversation_id = str(uuid.uuid4())
        self.conversation_title = ""
        await self.conversation.clear()
        # The removed widgets are freed by a full collection (tui/collector.py), after the
        # empty conversation is on screen.
        self.call_after_refresh(self.app.collector.collect)
        self._show_sources_of(None)
        self._claim_focus = None
        self.status_bar.set(tier="", tokens=None, latency_ms=None, activity="new conversation")
        self.prompt.focus()

    @work(group="screen", exclusive=True, exit_on_error=False, description="conversations")
    async def action_conversations(self) -> None:
        from tui.screens.conversations import ConversationsScreen

        app = self.app
        await app.ready.wait()
        if app.services.archive is None:
            self.notify("The conversation archive is not available.", severity="error")
            return
        rows = await app.services.archive.list_rows(self._creator_names())
        screen = ConversationsScreen(rows, now=app.now(), current_id=self.conversation_id)

        async def chosen(result: Any) -> None:
            if not result:
                return
            what, cid = result
            if what == "resume" and cid:
                self.resume(cid)
            elif what == "new":
                await self.action_new_conversation()

        await app.push_screen(screen, chosen)

    def _creator_names(self) -> dict[str, str]:
        return {slug: c["name"] for slug, c in self.picker.creators.items()}

    @work(group="delete", exit_on_error=False, description="delete a conversation")
    async def delete_conversation(self, conversation_id: str) -> None:
        await self.app.services.archive.delete(conversation_id)
        if conversation_id == self.conversation_id:
            await self.action_new_conversation()
        self.notify("Conversation deleted.")

    @work(group="resume", exclusive=True, exit_on_error=False, description="resume a conversation")
    async def resume(self, conversation_id: str) -> None:
        await self.app.ready.wait()
        if self.streaming:
            self.app.workers.cancel_group(self, "answer")
        messages, summary = await self.app.services.archive.load(conversation_id)
        await self.show_transcript(messages)
        self.conversation_id = conversation_id
        self.conversation_title = summary.title if summary else ""
        if summary is not None and summary.creator_slug:
            if summary.creator_slug in self.picker.creators:
                self.picker.value = summary.creator_slug
                self.slider.value = summary.personality_weight or 0.0
        self.status_bar.set(activity=f"resumed: {one_line(self.conversation_title)[:40]}")
        self.prompt.focus()

    async def show_transcript(self, messages: list[dict[str, Any]]) -> None:
        questions = await self.conversation.show_transcript(messages)
        self.call_after_refresh(self.app.collector.collect)  # the removed widgets
        self._claim_focus = None
        # The marks of each answer: its stored check, or one made now from the knowledge base.
        pending = []
        replies = [m for m in messages if m.get("role") == "assistant"]
        for answer, message in zip(self.conversation.answers, replies, strict=False):
            if isinstance(message.get("claims"), dict):
                await self._show_claims(answer, message["claims"])
            elif (message.get("status") or "answered") == "answered" and message.get("content"):
                pending.append((answer, message))
        if pending:
            self._check_saved(pending)
        recall = self.prompt.recall
        for text in questions:
            if text and (not recall or recall[-1] != text):
                recall.append(text)

    # -- copy, export, screens -----------------------------------------------------
    def action_copy_answer(self) -> None:
        answer = self.conversation.last_answer
        if answer is None or not answer.raw:
            self.notify("No answer to copy yet.")
            return
        self.app.copy_to_clipboard(answer.raw)
        self.notify("Copied the last answer to the clipboard.")

    @work(group="export", exclusive=True, exit_on_error=False, description="export")
    async def action_export(self) -> None:
        app = self.app
        await app.ready.wait()
        if not self.conversation_id or app.services.archive is None:
            self.notify("Nothing to export yet: ask a question first.")
            return
        from tui.services.export_file import conversation_markdown, export_conversation

        if app.is_web:  # served: the file goes to the browser, not to the server's disk
            from tui.serve.browser import offer_download

            text, filename = await conversation_markdown(
                app.services.archive, self.conversation_id, self._creator_names()
            )
            self.notify(offer_download(app, text, filename), title="Export")
            return
        folder = app.export_dir or (Path(app.settings.data_dir) / "exports")
        path = await export_conversation(app.services.archive, self.conversation_id, folder,
                                         self._creator_names())
        self.notify(plain(f"Exported to {path}"), title="Export")

    @work(group="screen", exclusive=True, exit_on_error=False, description="usage")
    async def action_usage(self) -> None:
        from tui.screens.usage import UsageScreen
        from tui.services.usage import usage_report

        app = self.app
        await app.ready.wait()
        if app.services.db is None:
            self.notify("The usage log is not available.", severity="error")
            return
        report = await usage_report(app.services.db, 30, now=app.now(), by_user=True)
        await app.push_screen(UsageScreen(report))

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.key_help()))

    def key_help(self) -> list[tuple[str, str, str]]:
        """(key, description, group) for our bindings, as remapped by the keymap."""
        groups = [
            ("Everywhere", self.BINDINGS, "app."),
            ("Prompt", PromptInput.BINDINGS, "prompt."),
            ("Sources sidebar", SourceList.BINDINGS, "sources."),
            ("Voice slider", VoiceSlider.BINDINGS, "slider."),
        ]
        rows = actions.help_rows(groups, self.app.keymap, self.app.get_key_display)
        return rows + [(mark, meaning, "Marks in answers") for mark, meaning in CLAIM_LEGEND]

