"""Text from the knowledge base, a model or the user is data: make it safe to show.

Two dangers in a terminal UI:
- terminal escape sequences (ESC ... , C0/C1 control characters, bidi overrides)
  that would move the cursor, recolour or reorder what the user sees;
- Rich markup: `Static`, `Label`, `notify` and option prompts parse `[bold]`.

`clean()` strips the first; `plain()` also escapes the second (or use
`Text`/`Content` objects, which never parse markup). Markdown widgets parse
Markdown, not Rich markup, so for them `clean()` is enough.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

# A whole escape sequence when it arrives in one piece: CSI, OSC (ended by BEL or ST),
# DCS/SOS/PM/APC strings, and two-character ESC sequences.
_ESCAPE_SEQUENCE = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]            # CSI ... final byte
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?  # OSC ... BEL or ST
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?      # DCS, SOS, PM, APC ... ST
    | \x1b[@-Z\\-_]                     # two-character sequences
    | \x9b[0-?]*[ -/]*[@-~]             # 8-bit CSI
    """,
    re.VERBOSE,
)
# Any control character left (keeping newline and tab), DEL, C1, and the bidi
# embedding/override/isolate characters that can make text read differently.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str | None) -> str:
    """Strip terminal escape sequences and control characters; keep \\n and \\t."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def one_line(text: str | None) -> str:
    """`clean()` and fold whitespace runs (newlines, tabs) to single spaces."""
    return " ".join(clean(text).split())


def plain(text: str | None) -> str:
    """Clean text escaped for places that parse Rich markup (Static, Label, notify)."""
    return escape(clean(text))


def as_text(text: str | None, style: str = "") -> Text:
    """A Rich `Text` (never parsed as markup) of clean text."""
    return Text(clean(text), style=style)
