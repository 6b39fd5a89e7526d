"""The prompt: a TextArea where Enter sends and Ctrl+J (or Shift+Enter) adds a line.

Up on the first line and Down on the last recall earlier questions. Empty
input sends nothing. Posts `PromptInput.Submitted(text)`; whether a question
may be sent now is the app's decision.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message

from tui.textual_compat import KeyFirstTextArea


class PromptInput(KeyFirstTextArea):
    BINDINGS = [
        # Handled in `key_first` (in this widget's own queue, after the characters typed
        # before it; a priority binding could run before they are inserted), listed here
        # for the footer, the help screen and the keymap.
        Binding("enter", "submit", "Send", id="prompt.send"),
        Binding("ctrl+j,shift+enter", "newline", "New line", id="prompt.newline"),
    ]

    class Submitted(Message):
        def __init__(self, prompt: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

        @property
        def control(self) -> PromptInput:
            return self.prompt

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("soft_wrap", True)
        kwargs.setdefault("show_line_numbers", False)
        kwargs.setdefault("tab_behavior", "focus")
        super().__init__(**kwargs)
        self.recall: list[str] = []
        self._recall_index: int | None = None  # None: editing a new question
        self._draft = ""

    def _keys_for(self, action: str) -> set[str]:
        """The keys bound to `action` here, as remapped by the app's keymap."""
        keymap = getattr(self.app, "keymap", None) or {}
        keys: set[str] = set()
        for binding in self.BINDINGS:
            if isinstance(binding, Binding) and binding.action == action:
                spec = keymap.get(binding.id, binding.key) if binding.id else binding.key
                keys.update(k.strip() for k in spec.split(","))
        return keys

    def key_first(self, event: events.Key) -> bool:
        for action, run in (("submit", self.action_submit), ("newline", self.action_newline)):
            if event.key in self._keys_for(action):
                run()
                return True
        return False

    def action_submit(self) -> None:
        text = self.text.strip()
        if not text:
            return
        self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")

    def remember(self, text: str) -> None:
        """Add a sent question to the recall list and clear the input."""
        if not self.recall or self.recall[-1] != text:
            self.recall.append(text)
        self._recall_index = None
        self._draft = ""
        self.clear()

    def _show(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def action_cursor_up(self, select: bool = False) -> None:
        if select or self.cursor_location[0] > 0 or not self.recall:
            return super().action_cursor_up(select)
        if self._recall_index is None:
            self._draft = self.text
            self._recall_index = len(self.recall) - 1
        elif self._recall_index > 0:
            self._recall_index -= 1
        else:
            return
        self._show(self.recall[self._recall_index])

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if select or self.cursor_location[0] < last_row or self._recall_index is None:
            return super().action_cursor_down(select)
        if self._recall_index < len(self.recall) - 1:
            self._recall_index += 1
            self._show(self.recall[self._recall_index])
        else:
            self._recall_index = None
            self._show(self._draft)
