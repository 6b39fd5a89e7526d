"""The help screen: the keys that work now, and what they do.

`HelpScreen(bindings, *, title="Keys")` (a `ModalScreen[None]`)
- `bindings`: a list of `(key, description)` tuples, or `(key, description, group)`
  to group them under headings (in order of first appearance). The App passes
  its active bindings, e.g. from `app.active_bindings` or its keymap:
  `[(app.get_key_display(b.binding), b.binding.description) for b in app.active_bindings.values()]`.
  Keys and descriptions are shown literally (never parsed as markup).

Escape, `q`, `?` or F1 close it (`dismiss(None)`); binding id `help.close`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.widgets.footer import AppFooter
from tui.widgets.safe_text import one_line


class HelpScreen(ModalScreen[None]):
    """A list of keys and their actions."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > #help {
        width: auto;
        min-width: 40;
        max-width: 90%;
        height: auto;
        max-height: 90%;
        border: round $accent;
        border-title-style: bold;
        background: $surface;
        padding: 0 2;
    }
    HelpScreen #help-keys {
        width: auto;
    }
    """

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="help.close")]

    def __init__(
        self, bindings: Sequence[Sequence[str]], *, title: str = "Keys"
    ) -> None:
        super().__init__()
        self.bindings = [tuple(b) for b in bindings if len(b) >= 2]
        self.title_text = title

    def _table(self) -> Text:
        groups: dict[str, list[tuple[str, str]]] = {}
        for entry in self.bindings:
            key, description = one_line(str(entry[0])), one_line(str(entry[1]))
            group = one_line(str(entry[2])) if len(entry) > 2 and entry[2] else ""
            groups.setdefault(group, []).append((key, description))
        if not self.bindings:
            return Text("No keys to show.", style="italic")
        key_width = max(len(one_line(str(b[0]))) for b in self.bindings)
        text = Text()
        for g, (group, rows) in enumerate(groups.items()):
            if group:
                if g:
                    text.append("\n")
                text.append(group, style="bold underline")
                text.append("\n")
            for key, description in rows:
                text.append(f"{key:>{key_width}}", style="bold")
                text.append("  ")
                text.append(description)
                text.append("\n")
        text.rstrip()
        return text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as box:
            box.border_title = self.title_text
            yield Static(self._table(), id="help-keys")
        yield AppFooter()

    def action_close(self) -> None:
        self.dismiss(None)
