"""Textual's private names the app relies on (tui/textual_compat) exist in the installed
Textual: an upgrade that moves one fails here, with every missing name listed."""

from __future__ import annotations

import ast
import functools
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


@functools.cache
def _private_names_of(klass: type) -> frozenset[str]:
    """Private names one Textual class defines: class attributes, methods, and `self._x`
    assignments in its source."""
    import inspect
    import re

    if not klass.__module__.startswith("textual."):
        return frozenset()
    names = {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
    try:
        names |= set(re.findall(r"self\.(_[a-z]\w*)\s*[:=]", inspect.getsource(klass)))
    except (OSError, TypeError):
        pass
    return frozenset(names)


def _textual_private_names(classes) -> set[str]:
    """Private names the Textual classes among `classes` define."""
    return set().union(*(_private_names_of(k) for k in classes))


def _ui_modules():
    """(path, module) for every module of ours that imports Textual, but the compat package."""
    import importlib

    for path in sorted(TUI.rglob("*.py")):
        if "textual_compat" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "from textual" not in text and "import textual" not in text:
            continue
        name = ".".join(path.relative_to(TUI.parent).with_suffix("").parts)
        yield path, ast.parse(text), importlib.import_module(name)


def test_no_private_textual_attribute_outside_the_compat_package():
    """No class of ours reads, sets or overrides a private name of a Textual class it
    extends, and no module of ours reaches into a Textual object's private names: those
    go through tui/textual_compat (where PRIVATE_NAMES lists them)."""
    import textual.app
    import textual.screen
    import textual.widget

    everywhere = _textual_private_names(
        {*textual.app.App.__mro__, *textual.screen.Screen.__mro__, *textual.widget.Widget.__mro__})
    offenders = []
    for path, tree, module in _ui_modules():
        where = path.relative_to(TUI.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                cls = getattr(module, node.name, None)
                if not isinstance(cls, type):
                    continue
                theirs = _textual_private_names(cls.__mro__[1:])
                for inner in ast.walk(node):
                    name = None
                    if (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name)
                            and inner.value.id in ("self", "cls")):
                        name = inner.attr
                    elif isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                        name = inner.name
                    if name in theirs:
                        offenders.append(f"{where}:{inner.lineno} {node.name}.{name}")
            elif (isinstance(node, ast.Attribute) and node.attr in everywhere
                  and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
                offenders.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, sorted(set(offenders))


def test_the_attribute_check_sees_a_private_use():
    # The check itself: Textual's own private names are found on the classes we extend.
    from textual.screen import Screen
    from textual.widgets import Footer, TextArea

    assert "_on_timer_update" in _textual_private_names(Screen.__mro__)
    assert "_update_timer" in _textual_private_names(Screen.__mro__)
    assert "_bindings_ready" in _textual_private_names(Footer.__mro__)
    assert "_on_key" in _textual_private_names(TextArea.__mro__)
