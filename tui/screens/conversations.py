"""The conversations screen: past conversations to resume or delete, or start a new one.

`ConversationsScreen(conversations, *, now=None, current_id=None)` (a full `Screen`)
- `conversations`: a list of mappings (or objects with the same attributes), newest
  first as `tui.services.transcripts.list_conversations` returns them:
  `id`, `title`, `creator_name` (or `creator_slug`), `updated_at` (datetime or
  ISO string; `last_activity` is accepted too) and `turns` (or `turn_count`).
- `now`: the time "last activity" is measured from (tests pass a fixed one;
  default: the wall clock when the screen is built).
- `current_id`: the conversation on screen now, marked with a bullet.

Result (`dismiss`): `("resume", conversation_id)` on Enter or a click on a row;
`("new", None)` on `n`; `None` on Escape.
Delete: `d` or Delete asks to confirm (`ConfirmScreen`); on yes the row is
removed here and `ConversationsScreen.Delete(screen, conversation_id)` is posted (it
bubbles to the App, which calls `delete_conversation`). The screen stays open.

Binding ids: conversations.resume, conversations.new, conversations.delete,
conversations.close.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Static

from tui.screens.confirm import ConfirmScreen
from tui.widgets.footer import AppFooter
from tui.widgets.safe_text import one_line


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        value = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
        if value is not None and value != "":
            return value
    return None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def relative_time(when: Any, now: datetime) -> str:
    """"just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", else the date."""
    moment = _as_datetime(when)
    if moment is None:
        return "—"
    seconds = (now - moment).total_seconds()
    if seconds < 0:
        return moment.astimezone(UTC).strftime("%Y-%m-%d")
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


class ConversationsScreen(Screen[tuple[str, str | None] | None]):
    """Past conversations: Enter resumes, d deletes, n starts a new one."""

    DEFAULT_CSS = """
    ConversationsScreen {
        layout: vertical;
    }
    ConversationsScreen > #conversations {
        height: 1fr;
        padding: 0 1;
    }
    ConversationsScreen #conversations-title {
        text-style: bold;
        color: $accent;
        padding: 1 0;
    }
    ConversationsScreen #conversations-table {
        height: 1fr;
    }
    ConversationsScreen #conversations-empty {
        color: $text-muted;
        text-style: italic;
        padding: 1 0;
    }
    """

    BINDINGS = [
        Binding("enter", "resume", "Resume", id="conversations.resume", priority=True),
        Binding("n", "new", "New conversation", id="conversations.new"),
        Binding("d,delete", "delete", "Delete", id="conversations.delete"),
        Binding("escape", "close", "Close", id="conversations.close"),
    ]

    class Delete(Message):
        """The user confirmed deleting this conversation."""

        def __init__(self, screen: ConversationsScreen, conversation_id: str) -> None:
            super().__init__()
            self.screen = screen
            self.conversation_id = conversation_id

        @property
        def control(self) -> ConversationsScreen:
            return self.screen

    def __init__(
        self,
        conversations: Sequence[Any],
        *,
        now: datetime | None = None,
        current_id: str | None = None,
    ) -> None:
        super().__init__()
        self.conversations = [c for c in conversations if _get(c, "id") is not None]
        self.now = now or datetime.now(UTC)
        self.current_id = current_id

    def compose(self) -> ComposeResult:
        with Vertical(id="conversations"):
            yield Static(Text("Conversations"), id="conversations-title")
            table: DataTable[Text] = DataTable(
                id="conversations-table", cursor_type="row", zebra_stripes=True
            )
            yield table
            yield Static(
                Text("No conversations yet."), id="conversations-empty"
            )
        yield AppFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("", key="mark", width=1)
        table.add_column("Title", key="title")
        table.add_column("Creator", key="creator")
        table.add_column("Last activity", key="when")
        table.add_column("Turns", key="turns")
        for conversation in self.conversations:
            self._add_row(table, conversation)
        self._update_empty()
        table.focus()

    def _add_row(self, table: DataTable[Text], conversation: Any) -> None:
        cid = str(_get(conversation, "id"))
        title = one_line(_get(conversation, "title")) or "Untitled"
        if len(title) > 60:
            title = title[:59] + "…"
        creator = one_line(_get(conversation, "creator_name", "creator_slug")) or "—"
        when = relative_time(_get(conversation, "updated_at", "last_activity"), self.now)
        turns = _get(conversation, "turns", "turn_count")
        mark = "•" if cid == self.current_id else ""
        # Cells are Text: a str cell in a DataTable would be parsed as Rich markup.
        table.add_row(
            Text(mark, style="bold"),
            Text(title),
            Text(creator),
            Text(when),
            Text(f"{turns if turns is not None else 0:>5}"),
            key=cid,
        )

    def _update_empty(self) -> None:
        empty = not self.query_one(DataTable).row_count
        self.query_one("#conversations-empty").display = empty
        self.query_one(DataTable).display = not empty
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Nothing to resume or delete in an empty list: the footer shows those keys dimmed.
        if action in ("resume", "delete") and not self.conversations:
            return None
        return True

    @property
    def selected_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return row_key.value

    # -- actions ---------------------------------------------------------------

    def action_resume(self) -> None:
        cid = self.selected_id
        if cid is not None:
            self.dismiss(("resume", cid))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.dismiss(("resume", event.row_key.value))

    def action_new(self) -> None:
        self.dismiss(("new", None))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_delete(self) -> None:
        cid = self.selected_id
        if cid is None:
            return
        conversation = next(c for c in self.conversations if str(_get(c, "id")) == cid)
        title = one_line(_get(conversation, "title")) or "Untitled"

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._remove(cid)
                self.post_message(self.Delete(self, cid))

        self.app.push_screen(
            ConfirmScreen(f"Delete “{title}”? This cannot be undone.", confirm_label="Delete",
                          cancel_label="Keep"),
            confirmed,
        )

    def _remove(self, cid: str) -> None:
        table = self.query_one(DataTable)
        table.remove_row(cid)
        self.conversations = [c for c in self.conversations if str(_get(c, "id")) != cid]
        self._update_empty()
