"""Text from the knowledge base, a model or the user is data: make it safe to show.

Two dangers in a terminal UI:
- terminal escape sequences (ESC ... , C0/C1 control characters, bidi overrides)
  that would move the cursor, recolour or reorder what the user sees — stripped by
  `clean()` (the one implementation, `tui/text.py`, shared with export and import);
- Rich markup: `Static`, `Label`, `notify` and option prompts parse `[bold]`.
  `plain()` escapes it; `as_text()` gives a `Text`, which never parses markup.

Markdown widgets parse Markdown, not Rich markup, so for them `clean()` is enough.
"""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text

from tui.text import clean, one_line

__all__ = ["as_text", "clean", "one_line", "plain"]


def plain(text: str | None) -> str:
    """Clean text escaped for places that parse Rich markup (Static, Label, notify)."""
    return escape(clean(text))


def as_text(text: str | None, style: str = "") -> Text:
    """A Rich `Text` (never parsed as markup) of clean text."""
    return Text(clean(text), style=style)
