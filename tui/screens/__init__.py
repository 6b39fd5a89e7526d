"""Modal and full screens. Each is self-contained: plain data in, a result out.

Every screen takes plain data (dicts, lists, tuples) in its constructor, keeps
its CSS in `DEFAULT_CSS`, and answers through `dismiss(result)` (use
`push_screen(screen, callback)` or `await push_screen_wait(screen)`) or typed
messages that bubble to the App. Contracts are in each module's docstring:

- `source_detail.SourceDetailScreen(detail, *, media_dir=None)` -> None
- `conversations.ConversationsScreen(conversations, *, now=None)`
  -> ("resume", id) | ("new", None) | None; posts `ConversationsScreen.Delete(screen, id)`
- `usage.UsageScreen(report)` -> None
- `help.HelpScreen(bindings)` -> None
- `confirm.ConfirmScreen(question, *, confirm_label="Yes", cancel_label="No")` -> bool
- `chat.ChatScreen(pacer)`: the main screen (the app's default screen), not modal

Text from the knowledge base, a model or the user is shown through
`tui.widgets.safe_text` (escape sequences stripped, never parsed as markup).
"""

import importlib

# Imported when first named, not with the package: the chat screen is on the first frame,
# the others (the source detail's Markdown among them) come later.
_MODULES = {
    "ChatScreen": "chat",
    "ConfirmScreen": "confirm",
    "ConversationsScreen": "conversations",
    "HelpScreen": "help",
    "SourceDetailScreen": "source_detail",
    "UsageScreen": "usage",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(f"tui.screens.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'tui.screens' has no attribute {name!r}")
