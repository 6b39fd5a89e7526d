"""Modal and full screens. Each is self-contained: plain data in, a result out.

Every screen takes plain data (dicts, lists, tuples) in its constructor, keeps
its CSS in `DEFAULT_CSS`, and answers through `dismiss(result)` (use
`push_screen(screen, callback)` or `await push_screen_wait(screen)`) or typed
messages that bubble to the App. Contracts are in each module's docstring:

- `source_detail.SourceDetailScreen(detail, *, media_dir=None)` -> None
- `conversations.ConversationsScreen(conversations, *, now=None)`
  -> ("resume", id) | ("new", None) | None; posts `ConversationsScreen.Delete(id)`
- `usage.UsageScreen(report)` -> None
- `help.HelpScreen(bindings)` -> None
- `confirm.ConfirmScreen(question, *, confirm_label="Yes", cancel_label="No")` -> bool

Text from the knowledge base, a model or the user is shown through
`tui.widgets.safe_text` (escape sequences stripped, never parsed as markup).
"""

from tui.screens.confirm import ConfirmScreen
from tui.screens.conversations import ConversationsScreen
from tui.screens.help import HelpScreen
from tui.screens.source_detail import SourceDetailScreen
from tui.screens.usage import UsageScreen

__all__ = [
    "ConfirmScreen",
    "ConversationsScreen",
    "HelpScreen",
    "SourceDetailScreen",
    "UsageScreen",
]
