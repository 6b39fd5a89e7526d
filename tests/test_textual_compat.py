"""Textual's private names the app relies on (tui/textual_compat) exist in the installed
Textual: an upgrade that moves one fails here, with every missing name listed."""

from __future__ import annotations

import ast
from pathlib import Path

import textual

from tui.textual_compat import PRIVATE_NAMES, PrivateName, _resolve, missing_private_names

TUI = Path(__file__).resolve().parent.parent / "tui"


def test_every_private_textual_name_exists():
    missing = missing_private_names()
    assert not missing, (
        f"Textual {textual.__version__} lacks private names the app relies on "
        f"(see tui/textual_compat): {', '.join(missing)}"
    )


def test_a_missing_name_is_reported():
    # The check itself: a name that is not there is not taken for present.
    assert not _resolve(PrivateName("textual.screen", "Screen._no_such_name", "", ""))
    assert not _resolve(PrivateName("textual._no_such_module", "", "", ""))
    assert not _resolve(PrivateName("textual.widgets._markdown", "MarkdownBlock._no_such", "", ""))
    assert _resolve(PrivateName("textual.widgets._markdown", "MarkdownBlock._blocks", "", ""))


def test_every_private_name_says_why():
    for name in PRIVATE_NAMES:
        assert name.reason and name.replacement, name


def test_no_private_textual_import_outside_the_compat_package():
    offenders = []
    for path in TUI.rglob("*.py"):
        if "textual_compat" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "textual" and any(p.startswith("_") for p in parts[1:]):
                    offenders.append(f"{path.relative_to(TUI.parent)}: {name}")
    assert not offenders, offenders
