"""The conversation pane: questions and answers (tui/widgets/answer.py) in a scrolling view.

The pane follows the bottom with `anchor()` until the user scrolls up, and reports which
answer is in view so the sidebar can show its sources.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from tui.widgets.answer import AssistantMessage
from tui.widgets.removal import removed
from tui.widgets.safe_text import clean

__all__ = ["AssistantMessage", "ConversationView", "UserMessage"]


class UserMessage(Static):
    """A question, shown as text (never markup)."""

    def __init__(self, text: str, **kwargs: Any) -> None:
        super().__init__(Text(clean(text)), markup=False, **kwargs)
        self.text = text


class ConversationView(VerticalScroll):
    """The scrolling transcript. Follows the bottom while the user has not scrolled up."""

    can_focus = True

    class AnswerInView(Message):
        """The answer whose sources the sidebar should show changed."""

        def __init__(self, view: ConversationView, answer: AssistantMessage | None) -> None:
            super().__init__()
            self.view = view
            self.answer = answer

        @property
        def control(self) -> ConversationView:
            return self.view

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_view: AssistantMessage | None = None

    WELCOME = (
        "Ask about synthesis, sound design, mixing, sampling or audio processing.\n\n"
        "Answers cite numbered sources from the knowledge base: click a [N] to open the "
        "source with the words behind the claim lit, or press its digit outside the prompt "
        "to pick it in the sidebar (Enter opens it). F3 picks a creator, F8 tunes their "
        "voice. F1 lists the keys, Ctrl+P every command."
    )

    def compose(self) -> ComposeResult:
        yield Static(self.WELCOME, classes="welcome", markup=False)

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
        self.query_one(".welcome").display = False
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
        await removed(self.remove_children(".question, .answer"))
        # Textual's list of displayed children is made again only when next read (a layout,
        # the focus chain): until then it holds the removed widgets, past the collection
        # that should free them (tui/collector.py). Read it now.
        self.displayed_children  # noqa: B018
        self.query_one(".welcome").display = True
        self._set_in_view(None)

    async def show_transcript(self, messages: list[dict[str, Any]]) -> list[str]:
        """Show a saved conversation in place of this one (its messages oldest first, as
        the archive gives them); its questions."""
        await self.clear()
        questions: dict[int, str] = {}
        for m in messages:
            turn = int(m.get("turn") or 0)
            if m.get("role") == "user":
                questions[turn] = m.get("content") or ""
                await self.add_question(questions[turn])
            elif m.get("role") == "assistant":
                answer = await self.add_answer(
                    m.get("sources") or [], question=questions.get(turn, ""), turn=turn
                )
                await answer.restore(m.get("content") or "", m, m.get("status") or "answered")
                if not m.get("current", True):
                    answer.mark_previous()
        self.scroll_end(animate=False)
        self.anchor()
        return list(questions.values())

    @property
    def answer_in_view(self) -> AssistantMessage | None:
        return self._in_view

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
            self.post_message(self.AnswerInView(self, answer))
