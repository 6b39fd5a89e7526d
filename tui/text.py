"""Text from the knowledge base, a model or a user is data: the one place that
strips what a terminal would obey.

- Terminal escape sequences (CSI, OSC such as a title change or an OSC 52
  clipboard write, DCS/SOS/PM/APC strings, two-character ESC sequences, 8-bit CSI).
- Any control character left (newline and tab are kept), DEL and C1.
- Bidi embedding/override/isolate marks, which make text read differently.

No Textual, no Rich: services (export) and the data layer (import validation)
use it; `tui/widgets/safe_text.py` adds the Rich-markup escaping widgets need.
"""

from __future__ import annotations

import re
from typing import Any

ESCAPE_SEQUENCE = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]              # CSI ... final byte
    | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?  # OSC ... BEL or ST
    | \x1b[PX^_][^\x1b]*(?:\x1b\\)?       # DCS, SOS, PM, APC ... ST
    | \x1b[@-Z\\-_]                      # two-character sequences
    | \x9b[0-?]*[ -/]*[@-~]              # 8-bit CSI
    """,
    re.VERBOSE,
)
CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: Any) -> str:
    """Strip escape sequences and control characters; keep \\n and \\t (\\r\\n becomes \\n)."""
    if not text:
        return ""
    text = str(text).replace("\r\n", "\n")
    return CONTROL_CHARS.sub("", ESCAPE_SEQUENCE.sub("", text))


def one_line(text: Any) -> str:
    """`clean()` with whitespace runs (newlines, tabs) folded to single spaces."""
    return " ".join(clean(text).split())
