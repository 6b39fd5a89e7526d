"""A product module over MAX_LINES lines is one topic and says so (and why) in its
docstring; a newcomer reads that before the code (docs/ARCHITECTURE.md, the module map)."""

from __future__ import annotations

import ast
from pathlib import Path

TUI = Path(__file__).resolve().parent.parent / "tui"
MAX_LINES = 500


def test_long_modules_say_why_they_are_one_topic():
    silent = []
    for path in sorted(TUI.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(text)) or ""
        if "One topic" not in doc or "hence its length" not in doc:
            silent.append(f"{path.relative_to(TUI.parent)} ({text.count(chr(10))} lines)")
    assert not silent, f"over {MAX_LINES} lines without saying why in the docstring: {silent}"
