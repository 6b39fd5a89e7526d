"""The app's own Textual messages: each says which widget or screen posted it (`control`)
and is handled somewhere in the product (a message nobody handles is dead code that looks
like a feature)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

from textual.message import Message

import tui

TUI = Path(tui.__file__).parent
# Parts that never import Textual (tests/test_layers.py), or start a process of their own.
NOT_UI = ("tui.services", "tui.db", "tui.materials", "tui.commands", "tui.serve.session",
          "tui.__main__")


def our_messages() -> list[type[Message]]:
    for info in pkgutil.walk_packages(tui.__path__, "tui."):
        if not info.name.startswith(NOT_UI):
            importlib.import_module(info.name)

    def subclasses(cls: type) -> list[type]:
        found = []
        for sub in cls.__subclasses__():
            found += [sub, *subclasses(sub)]
        return found

    return sorted({c for c in subclasses(Message) if c.__module__.startswith("tui.")},
                  key=lambda c: (c.__module__, c.__qualname__))


def product_source() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in TUI.rglob("*.py"))


def test_the_app_has_messages_to_check():
    names = {m.__qualname__ for m in our_messages()}
    assert {"PromptInput.Submitted", "SourcesSidebar.SourceSelected",
            "ConversationsScreen.Delete"} <= names, names


def test_every_message_has_its_control():
    missing = [m.__qualname__ for m in our_messages()
               if not any("control" in vars(k) for k in m.__mro__ if k is not Message)]
    assert not missing, f"messages without a `control` property: {missing}"


def test_every_message_is_handled_in_the_product():
    source = product_source()
    unhandled = []
    for message in our_messages():
        outer, _, name = message.__qualname__.rpartition(".")
        decorated = re.search(rf"@on\(\s*{re.escape(outer)}\.{re.escape(name)}\b", source)
        by_name = re.search(rf"def {re.escape(message.handler_name)}\(", source)
        if not (decorated or by_name):
            unhandled.append(message.__qualname__)
    assert not unhandled, f"messages posted but handled nowhere in tui/: {unhandled}"
