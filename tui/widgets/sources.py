"""The numbered sources sidebar: one entry per source of the answer in view.

An `OptionList` whose options carry the source number. It talks upward only:
`SourceSelected(number)` when the user opens one (Enter or click), `SourceList.Leave`
on Escape. What opening means is the chat screen's business.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tui.widgets.safe_text import one_line


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    return f"{total // 60:02d}:{total % 60:02d}"


def format_range(start: float | None, end: float | None) -> str:
    if start is None and end is None:
        return ""
    if end is None:
        return format_time(start)
    return f"{format_time(start or 0)}–{format_time(end)}"


def source_prompt(source: dict[str, Any], backs: int | None = None) -> Text:
    """Number, title; creator · section; where (▶ time range, pages, note › heading), and
    ✓N: the claims of the answer it backs, when checked. Text objects: never markup."""
    number = source.get("number", "?")
    text = Text()
    text.append(f"{number:>2} ", style="bold")
    text.append(one_line(source.get("title")) or "(untitled)", style="bold")
    creator = one_line(source.get("creator_name"))
    heading = one_line(source.get("section_heading"))
    detail = " · ".join(p for p in (creator, heading) if p)
    if detail:
        text.append("\n   ")
        text.append(detail, style="dim")
    # Where in the source: the store's label (`12:05–15:45`, `p. 14–15`,
    # `notes/reverb.md › Pre-delay`), else the times of a source that has none.
    where = one_line(source.get("locator_label")) or format_range(
        source.get("start_time"), source.get("end_time"))
    if where:
        marker = "▶ " if locator_kind(source) == "video" else ""
        text.append(f"\n   {marker}{where}", style="italic")
    if backs is not None:
        # On the last line, not after the title: a long title is cut with "…" at the
        # sidebar's edge and took the mark with it.
        text.append(f"  ✓{backs}", style="green" if backs else "dim")
    return text


def locator_kind(source: dict[str, Any]) -> str:
    """"video", "page" or "heading": the locator's kind (a source without one is a video's)."""
    locator = source.get("locator")
    kind = locator.get("kind") if isinstance(locator, dict) else None
    return kind if kind in ("page", "heading") else "video"


class SourceList(OptionList):
    BINDINGS = [
        Binding("escape", "leave", "Back to prompt", id="sources.leave"),
    ]

    class Leave(Message):
        """Escape: the user wants the prompt back."""

        def __init__(self, source_list: SourceList) -> None:
            super().__init__()
            self.source_list = source_list

        @property
        def control(self) -> SourceList:
            return self.source_list

    def action_leave(self) -> None:
        self.post_message(self.Leave(self))


class SourcesSidebar(Vertical):
    class SourceSelected(Message):
        """The user opened source `number` (Enter or click)."""

        def __init__(self, sidebar: SourcesSidebar, number: int) -> None:
            super().__init__()
            self.sidebar = sidebar
            self.number = number

        @property
        def control(self) -> SourcesSidebar:
            return self.sidebar

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources: list[dict[str, Any]] = []
        self.backed: list[int] | None = None  # per source, the claims it backs (when checked)

    def compose(self) -> ComposeResult:
        yield Static("No sources yet. Ask a question.", classes="empty")
        yield SourceList(id="source-list")

    def on_mount(self) -> None:
        self.border_title = "Sources"
        self.query_one(SourceList).display = False

    @property
    def option_list(self) -> SourceList:
        return self.query_one(SourceList)

    def show_sources(self, sources: list[dict[str, Any]] | None,
                     backed: list[int] | tuple[int, ...] | None = None) -> None:
        """Replace the entries (the sources of the answer in view; `backed[N-1]`: how many
        of its claims source N backs, None when the answer has no claim check)."""
        sources = list(sources or [])
        backed = list(backed) if backed is not None else None
        if sources == self.sources and backed == self.backed:
            return
        highlighted = self.highlighted_number if sources == self.sources else None
        self.sources, self.backed = sources, backed

        def backs(i: int) -> int | None:
            return backed[i] if backed is not None and i < len(backed) else None

        option_list = self.option_list
        option_list.set_options(
            [Option(source_prompt(s, backs(i)), id=str(s.get("number", i + 1)))
             for i, s in enumerate(sources)]
        )
        self.border_title = f"Sources ({len(sources)})" if sources else "Sources"
        option_list.display = bool(sources)
        self.query_one(".empty", Static).display = not sources
        if sources:
            option_list.highlighted = 0
            if highlighted is not None:
                self.select_number(highlighted)

    def source(self, number: int) -> dict[str, Any] | None:
        for s in self.sources:
            if s.get("number") == number:
                return s
        return None

    def select_number(self, number: int) -> bool:
        """Highlight source `number` and scroll it into view; False if there is none."""
        for index, s in enumerate(self.sources):
            if s.get("number") == number:
                self.option_list.highlighted = index
                self.option_list.scroll_to_highlight()
                return True
        return False

    @property
    def highlighted_number(self) -> int | None:
        option = self.option_list.highlighted_option
        return int(option.id) if option is not None and option.id else None

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.SourceSelected(self, int(event.option.id)))
