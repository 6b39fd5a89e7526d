"""The conversation pane: questions and streamed, cited answers.

An answer streams through `Markdown.get_stream` (appends, batched while one is
in flight), never a whole re-render per token; one final `update()` after the
stream stops repairs any block split mid-stream. Citations `[N]` become
`cite:N` links only when 1 <= N <= the number of sources of that answer.
The pane follows the bottom with `anchor()` until the user scrolls up, and
reports which answer is in view so the sidebar can show its sources.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Markdown, Static

from tui.widgets.safe_text import clean

_CITE = re.compile(r"\[(\d{1,3})\]")
# A possible citation cut at the end of a fragment: hold it until the next one.
_PARTIAL_CITE = re.compile(r"\[\d{0,3}$")


def link_citations(text: str, count: int) -> str:
    """`[N]` -> a `cite:N` Markdown link for 1 <= N <= count; others stay plain text."""

    def repl(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[\\[{n}\\]](cite:{n})" if 1 <= n <= count else match.group(0)

    return _CITE.sub(repl, text)


class CitationLinker:
    """Turn citations into links in a stream of fragments that may split `[12]`."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._held = ""

    def feed(self, fragment: str) -> str:
        text = self._held + fragment
        partial = _PARTIAL_CITE.search(text)
        if partial:
            self._held, text = text[partial.start() :], text[: partial.start()]
        else:
            self._held = ""
        return link_citations(text, self.count)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return link_citations(text, self.count)


def format_meta(done: dict[str, Any]) -> str:
    """'model · tier · N tokens · 1.2 s' from a done payload (or a saved message)."""
    parts = []
    if done.get("model"):
        parts.append(str(done["model"]))
    if done.get("fallback_used"):
        parts.append("fallback")
    if done.get("cascade_tier"):
        parts.append(f"tier {done['cascade_tier']}")
    usage = done.get("usage") or {}
    tokens = usage.get("total_tokens") or usage.get("completion_tokens")
    if tokens:
        estimated = " (est.)" if usage.get("estimated") else ""
        parts.append(f"{tokens} tokens{estimated}")
    latency = done.get("latency_ms")
    if latency is not None:
        parts.append(f"{float(latency) / 1000:.1f} s")
    if done.get("truncated"):
        # The model ran past the stored-answer cap: generation was stopped there.
        parts.insert(0, "⚠ answer cut at the size limit")
    return " · ".join(clean(p) for p in parts)


class UserMessage(Static):
    """A question, shown as text (never markup)."""

    def __init__(self, text: str, **kwargs: Any) -> None:
        super().__init__(Text(clean(text)), markup=False, **kwargs)
        self.text = text


class AssistantMessage(Vertical):
    """One answer: working indicator, Markdown body, a meta line, an error with Retry."""

    class RetryRequested(Message):
        def __init__(self, answer: AssistantMessage) -> None:
            super().__init__()
            self.answer = answer

    def __init__(
        self,
        sources: list[dict[str, Any]] | None = None,
        *,
        question: str = "",
        turn: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sources: list[dict[str, Any]] = list(sources or [])
        self.question = question
        self.turn = turn
        self.status = "working"  # working|streaming|answered|stopped|failed
        self._meta_text = ""
        self.raw = ""  # the answer as the model wrote it (cleaned), before linking
        self.meta: dict[str, Any] = {}
        self.got_sources = False  # the service accepted the question (and archived it)
        self._stream = None
        self._linker: CitationLinker | None = None

    def compose(self) -> ComposeResult:
        yield Static("Searching the knowledge base…", classes="working")
        yield Markdown(open_links=False, classes="body")
        yield Static("", classes="meta", markup=False)
        with Horizontal(classes="error-row"):
            yield Static("", classes="error-text", markup=False)
            yield Button("Retry", classes="retry", variant="warning", compact=True)

    @property
    def body(self) -> Markdown:
        return self.query_one(".body", Markdown)

    def set_sources(self, sources: list[dict[str, Any]]) -> None:
        self.sources = list(sources)
        self.got_sources = True
        if self.status == "working":
            self.query_one(".working", Static).update(
                f"Thinking… ({len(sources)} sources found)" if sources else "Thinking…"
            )

    async def write(self, delta: str) -> None:
        """Append a streamed fragment."""
        delta = clean(delta)
        if not delta:
            return
        if self._stream is None:
            self.status = "streaming"
            self.query_one(".working").display = False
            self._linker = CitationLinker(len(self.sources))
            self._stream = Markdown.get_stream(self.body)
        self.raw += delta
        linked = self._linker.feed(delta)
        if linked:
            await self._stream.write(linked)

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            tail = self._linker.flush() if self._linker else ""
            if tail:
                await self._stream.write(tail)
            await self._stream.stop()
            self._stream = None
        # One whole render repairs blocks cut mid-stream (code fences, lists).
        await self.body.update(link_citations(self.raw, len(self.sources)))

    async def reset(self, reason: str = "") -> None:
        """The model restarted the answer (fallback): clear the partial text."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self.raw = ""
        await self.body.update("")
        self.status = "working"
        working = self.query_one(".working", Static)
        working.display = True
        working.update(Text(clean(f"Restarting: {reason}" if reason else "Restarting…")))

    async def finish(self, done: dict[str, Any]) -> None:
        await self._stop_stream()
        self.status = "answered"
        self.meta = dict(done)
        self.query_one(".working").display = False
        self._show_meta(format_meta(done))

    async def stop(self) -> None:
        """Cancelled by the user: keep the partial answer, mark it stopped."""
        await self._stop_stream()
        self.status = "stopped"
        self.query_one(".working").display = False
        self.add_class("-stopped")
        self._show_meta("⏹ stopped" + (" · " + format_meta(self.meta) if self.meta else ""))

    async def fail(self, message: str) -> None:
        await self._stop_stream()
        self.status = "failed"
        self.query_one(".working").display = False
        self.add_class("-failed")
        self.query_one(".error-text", Static).update(Text("⚠ " + clean(message)))

    def mark_previous(self) -> None:
        """A newer answer to the same question replaced this one."""
        self.add_class("-previous")
        self._show_meta("previous version · " + self._meta_text)

    async def restore(self, content: str, meta: dict[str, Any], status: str) -> None:
        """Show a saved answer (resuming a conversation)."""
        self.raw = clean(content)
        self.meta = dict(meta)
        self.query_one(".working").display = False
        await self.body.update(link_citations(self.raw, len(self.sources)))
        if status == "failed":
            self.status = "failed"
            self.add_class("-failed")
            self.query_one(".error-text", Static).update(
                Text("⚠ " + clean(meta.get("error") or "failed"))
            )
        elif status in ("cancelled", "stopped", "incomplete"):
            self.status = "stopped"
            self.add_class("-stopped")
            self._show_meta("⏹ stopped · " + format_meta(meta))
        else:
            self.status = "answered"
            self._show_meta(format_meta(meta))

    def _show_meta(self, text: str) -> None:
        self._meta_text = text.strip(" ·")
        self.query_one(".meta", Static).update(Text(self._meta_text))

    @on(Button.Pressed, ".retry")
    def _retry(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.RetryRequested(self))


class ConversationView(VerticalScroll):
    """The scrolling transcript. Follows the bottom while the user has not scrolled up."""

    can_focus = True

    class AnswerInView(Message):
        """The answer whose sources the sidebar should show changed."""

        def __init__(self, answer: AssistantMessage | None) -> None:
            super().__init__()
            self.answer = answer

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_view: AssistantMessage | None = None

    def on_mount(self) -> None:
        self.anchor()

    @property
    def answers(self) -> list[AssistantMessage]:
        return list(self.query_children(AssistantMessage))

    @property
    def last_answer(self) -> AssistantMessage | None:
        answers = self.answers
        return answers[-1] if answers else None

    async def add_question(self, text: str) -> UserMessage:
        message = UserMessage(text, classes="question")
        await self.mount(message)
        return message

    async def add_answer(self, sources=None, *, question: str = "", turn: int = 0) -> AssistantMessage:
        answer = AssistantMessage(sources, question=question, turn=turn, classes="answer")
        await self.mount(answer)
        self.anchor()
        self._set_in_view(answer)
        return answer

    async def clear(self) -> None:
        await self.remove_children()
        self._set_in_view(None)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.call_after_refresh(self.update_in_view)

    def on_resize(self) -> None:
        self.call_after_refresh(self.update_in_view)

    def update_in_view(self) -> None:
        """The answer in view: the last one when at the bottom, else the one at mid-height."""
        answers = self.answers
        if not answers:
            self._set_in_view(None)
            return
        if self.scroll_y >= self.max_scroll_y - 1:
            self._set_in_view(answers[-1])
            return
        middle = self.scroll_y + self.scrollable_content_region.height / 2
        chosen = answers[0]
        for answer in answers:
            if answer.virtual_region.y <= middle:
                chosen = answer
            else:
                break
        self._set_in_view(chosen)

    def _set_in_view(self, answer: AssistantMessage | None) -> None:
        if answer is not self._in_view:
            self._in_view = answer
            self.post_message(self.AnswerInView(answer))
