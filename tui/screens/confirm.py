"""A yes/no question in a small modal dialog.

`ConfirmScreen(question, *, confirm_label="Yes", cancel_label="No")`
- `question`: plain text (shown literally, never parsed as markup).
- Result: `True` on `y` or the confirm button, `False` on `n`, Escape or the
  cancel button. Focus starts on the cancel button, so a stray Enter cancels.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.widgets.safe_text import as_text


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismiss with True or False."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > #confirm-dialog {
        width: 60;
        max-width: 90%;
        height: auto;
        padding: 1 2;
        border: thick $error 80%;
        background: $surface;
    }
    ConfirmScreen #confirm-question {
        width: 1fr;
        margin-bottom: 1;
    }
    ConfirmScreen #confirm-buttons {
        width: 1fr;
        height: auto;
        align-horizontal: right;
    }
    ConfirmScreen Button {
        margin-left: 2;
    }
    """

    BINDINGS = [
        Binding("y", "confirm", "Yes", id="confirm.yes"),
        Binding("n,escape", "cancel", "No", id="confirm.no"),
    ]

    def __init__(
        self, question: str, *, confirm_label: str = "Yes", cancel_label: str = "No"
    ) -> None:
        super().__init__()
        self.question = question
        self.confirm_label = confirm_label
        self.cancel_label = cancel_label

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(as_text(self.question), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(as_text(self.confirm_label), variant="error", id="confirm-yes")
                yield Button(as_text(self.cancel_label), variant="primary", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed, "#confirm-yes")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#confirm-no")
    def action_cancel(self) -> None:
        self.dismiss(False)
