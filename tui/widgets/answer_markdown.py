"""An answer's Markdown: Textual's Markdown blocks made cheaper to stream, and the
frozen form of a finished segment.

Kept apart from `conversation.py` so that Textual's Markdown (markdown-it, Pygments: the
largest imports of an answer) stays off the first frame: the app imports this
module in its boot worker, after the first paint, and an answer takes it from there.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets.markdown import Markdown, MarkdownBlock, MarkdownFence

from tui.textual_compat import Compositor, clear_arrangement_cache, render_chops
from tui.textual_compat.markdown import (
    BlockHookMarkdown,
    MarkdownBullet,
    MarkdownBulletList,
    MarkdownList,
    MarkdownListItem,
    MarkdownOrderedList,
    MarkdownOrderedListItem,
    MarkdownParagraph,
    SharedComponentStyles,
    adopt_paragraph,
    child_blocks,
    paragraph_args,
)

_PARSER = None


def shared_parser():
    """One "gfm-like" MarkdownIt for every answer: Textual's Markdown makes a new one for
    every append and update; parsing keeps no state in it."""
    global _PARSER
    if _PARSER is None:
        from markdown_it import MarkdownIt

        _PARSER = MarkdownIt("gfm-like")
    return _PARSER


def renders_as_parsed(markdown: Markdown, text: str) -> bool:
    """Whether the streamed blocks of `markdown` are those a fresh parse of `text` gives."""
    tokens = shared_parser().parse(text)
    expected = [tuple(t.map) for t in tokens if t.level == 0 and t.map is not None and t.nesting >= 0]
    shown = [tuple(block.source_range) for block in markdown.query_children(MarkdownBlock)]
    return expected == shown


def _shared(block: type[MarkdownBlock]) -> type[MarkdownBlock]:
    """`block` with shared component styles (same name, so the same CSS applies)."""
    return type(block.__name__, (SharedComponentStyles, block), {"__module__": __name__})


AnswerParagraph = _shared(MarkdownParagraph)


class AnswerFence(SharedComponentStyles, MarkdownFence):
    """A code block; one without a language is shown as plain text.

    Textual would ask Pygments to guess the language of an unlabelled block, on every
    append while it streams (a slow guess); answers' unlabelled blocks are signal chains
    and settings, not code, so a guess only adds stray colours.
    """

    @classmethod
    def highlight(cls, code: str, language: str, ansi: bool = False, dark: bool = False):
        return super().highlight(code, language or "text", ansi=ansi, dark=dark)


class ItemParagraph(SharedComponentStyles, MarkdownParagraph):
    """A list item that is one paragraph (most are): one widget where Textual makes four
    (a Horizontal, the bullet, a Vertical, the paragraph). The bullet is drawn in the
    left padding, so wrapped lines hang under the text as in Textual's own lists. A list
    is re-made whole on every append that reaches it while it streams, so this makes
    list-heavy answers several times cheaper to stream."""

    COMPONENT_CLASSES = MarkdownParagraph.COMPONENT_CLASSES | {"item-bullet"}
    DEFAULT_CSS = """
    ItemParagraph {
        margin: 0;
    }
    ItemParagraph > .item-bullet {
        color: $text-primary;
    }
    ItemParagraph:light > .item-bullet {
        color: $text-secondary;
    }
    """

    def __init__(self, paragraph: MarkdownParagraph, bullet: str) -> None:
        super().__init__(*paragraph_args(paragraph))
        adopt_paragraph(self, paragraph)
        self.bullet = bullet
        self._bullet_width = Text(bullet).cell_len
        self.styles.padding = (0, 0, 0, self._bullet_width)

    def render_lines(self, crop) -> list[Strip]:
        strips = super().render_lines(crop)
        if crop.y == 0 and crop.x == 0 and strips:
            first = strips[0]
            segments = list(first.crop(0, 1))
            base = segments[0].style if segments and segments[0].style else None
            style = self.get_component_rich_style("item-bullet", partial=True)
            style = base + style if base is not None else style
            bullet = Strip([Segment(self.bullet, style)], self._bullet_width)
            strips = [Strip.join([bullet, first.crop(self._bullet_width)]), *strips[1:]]
        return strips


def _list_items(blocks: list[MarkdownBlock], symbols: list[str]):
    for block, symbol in zip(blocks, symbols, strict=True):
        inner = child_blocks(block)
        if len(inner) == 1 and type(inner[0]) in (MarkdownParagraph, AnswerParagraph):
            yield ItemParagraph(inner[0], symbol)
        else:  # nested lists, several paragraphs, code: Textual's own layout
            bullet = MarkdownBullet()
            bullet.symbol = symbol
            yield Horizontal(bullet, Vertical(*inner))


class AnswerBulletList(SharedComponentStyles, MarkdownBulletList):
    def compose(self) -> ComposeResult:
        blocks = child_blocks(self)
        items = [b for b in blocks if isinstance(b, MarkdownListItem)]
        yield from _list_items(items, [item.bullet for item in items])
        blocks.clear()


class AnswerOrderedList(SharedComponentStyles, MarkdownOrderedList):
    def compose(self) -> ComposeResult:
        blocks = child_blocks(self)
        items = [b for b in blocks if isinstance(b, MarkdownListItem)]
        start = 1
        if items and isinstance(items[0], MarkdownOrderedListItem):
            try:
                start = int(items[0].bullet)
            except ValueError:
                pass
        numbers = [f"{n}. " for n in range(start, start + len(items))]
        size = max((len(n) for n in numbers), default=0)
        yield from _list_items(items, [n.rjust(size + 1) for n in numbers])
        blocks.clear()


# The blocks a segment can run on from into the next.
_RUNS_ON = (MarkdownParagraph, MarkdownList)


class AnswerMarkdown(BlockHookMarkdown):
    """The Markdown of an answer (links are not opened: citations are handled by the app)."""

    BLOCKS = {
        **{name: _shared(block) for name, block in Markdown.BLOCKS.items()},
        "paragraph_open": AnswerParagraph,
        "fence": AnswerFence,
        "code_block": AnswerFence,
        "bullet_list_open": AnswerBulletList,
        "ordered_list_open": AnswerOrderedList,
    }

    def __init__(self, markdown: str | None = None, **kwargs: Any) -> None:
        super().__init__(markdown, open_links=False, parser_factory=shared_parser, **kwargs)

    # A segment that the next one runs on from (`-runs-on`: a long paragraph line cut, or a
    # long list split between two items) ends without its last paragraph's or list's
    # margin. Marked with a class, not `:last-child`: an order rule on every block would
    # restyle all of a segment's blocks after each append.
    def blocks_made(self, blocks: list[MarkdownBlock]) -> None:
        if blocks and self.has_class("-runs-on") and isinstance(blocks[-1], _RUNS_ON):
            blocks[-1].add_class("-run-on-end")

    def mark_run_on_end(self) -> None:
        last = self.children[-1] if self.children else None
        if isinstance(last, _RUNS_ON):
            last.add_class("-run-on-end")


# A frozen segment's lines still to render are rendered this many at a time, when a frame
# first shows one of them.
LAZY_CHUNK_LINES = 48


class FrozenSegment(Widget):
    """A finished Markdown segment as its rendered lines: one widget instead of dozens.

    Made from a laid-out Markdown segment with a compositor of its own; clicks on
    citation links still post `Markdown.LinkClicked`. A new width or theme turns it
    back into a Markdown widget.

    Made `lazy`, it renders its lines only when a frame shows them: while an answer floods
    in, most of a segment scrolls past unseen, and rendering every line of it at once was
    a large share of the work of streaming. Until `settle()` (which renders the rest and removes
    it), the Markdown it came from stays mounted, hidden, to render from.
    """

    def __init__(self, lines: list[Strip | None], source: str, width: int, *,
                 pending: tuple[Markdown, Any] | None = None) -> None:
        super().__init__(classes="body-frozen")
        self._lines = lines
        self.source = source
        self._width = width
        self.retired = False
        self._pending = pending  # (the hidden Markdown, its compositor) while lines are left

    @classmethod
    def from_markdown(cls, markdown: Markdown, width: int = 0, *,
                      lazy: bool = False) -> FrozenSegment | None:
        """The segment as its rendered lines, or None if it cannot be rendered yet.

        On a screen that can lay out off screen (`PacedScreen.offscreen`), the segment
        is laid out and rendered at `width` by a compositor of its own, whether or not a
        frame has laid it out. Elsewhere it must have been laid out on screen, as it is
        now (its height there equal to the height of what it holds). `lazy` (off screen
        only): laid out now, rendered as its lines are shown; the caller hides `markdown`
        and leaves it mounted until `settle()`."""
        width = width or markdown.outer_size.width
        if width <= 0:
            return None
        # Render every block afresh: a block's cached lines can lag behind its last update
        # (seen live as a paragraph's last line, or a few blocks, left blank).
        widgets = list(markdown.walk_children(with_self=True))
        for widget in widgets:
            widget.refresh()
            clear_arrangement_cache(widget)  # cleared by Textual only at its next layout
        screen = markdown.screen
        offscreen = getattr(screen, "offscreen", None)
        gutter = markdown.styles.gutter
        inner = width - gutter.width
        if inner <= 0:
            return None
        # The height of what it holds now: a block that grew in the last append (a
        # paragraph's new line) may not be laid out on screen yet.
        probe = Size(width, 0)
        height = markdown.get_content_height(probe, probe, inner) + gutter.height
        if offscreen is None and (width, height) != tuple(markdown.outer_size):
            return None  # not laid out on screen as it is now: try after the next refresh
        if height <= 0:
            return None
        size = Size(width, height)
        compositor = Compositor()
        lazy = lazy and offscreen is not None
        with offscreen(compositor) if offscreen is not None else nullcontext():
            compositor.reflow(markdown, size)
            lines = None if lazy else compositor.render_strips(size)
        if lines is None:
            frozen = cls([None] * height, markdown.source, width, pending=(markdown, compositor))
        elif len(lines) != height:
            for widget in widgets:
                widget.refresh()  # rendered at the off-screen sizes: not for the screen
            return None
        else:
            frozen = cls(lines, markdown.source, width)
        frozen.set_class(markdown.has_class("-runs-on"), "-runs-on")
        return frozen

    @property
    def pending(self) -> bool:
        """Lines are left to render from the hidden Markdown."""
        return self._pending is not None

    @property
    def lines(self) -> list[Strip]:
        """All its lines (rendering those left)."""
        self._render_rest()
        return self._lines  # type: ignore[return-value]

    def settle(self) -> None:
        """Render the lines left and remove the hidden Markdown they came from."""
        self._render_rest()
        self.release()

    def release(self) -> None:
        """Remove the hidden Markdown without rendering the rest (for a segment on its way
        out: lines left would show blank)."""
        if self._pending is not None:
            markdown, _ = self._pending
            self._pending = None
            if markdown.is_attached:
                markdown.remove()

    def _render_rest(self) -> None:
        y = 0
        while self._pending is not None:
            try:
                y = self._lines.index(None, y)
            except ValueError:
                break
            self._render_from(y)

    def _render_from(self, y: int) -> None:
        """Render LAZY_CHUNK_LINES lines from line y (those not rendered yet)."""
        lines = self._lines
        end = min(len(lines), y + LAZY_CHUNK_LINES)
        pending = self._pending
        chops = None
        if pending is not None:
            markdown, compositor = pending
            offscreen = getattr(markdown.screen, "offscreen", None) if markdown.is_attached else None
            if offscreen is not None:
                with offscreen(compositor):
                    chops = render_chops(
                        compositor, Region(0, y, self._width, end - y), lambda n: y <= n < end)
        for n in range(y, end):
            if lines[n] is None:
                chop = chops[n] if chops is not None and n < len(chops) else None
                lines[n] = Strip.join(chop.values()) if chop else Strip.blank(self._width)
        if chops is None:
            self.release()  # nothing left to render from: blank rather than wrong

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._thaw())

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines)

    def render_line(self, y: int) -> Strip:
        if y < len(self._lines):
            line = self._lines[y]
            if line is None:
                self._render_from(y)
                line = self._lines[y]
            return line
        return Strip.blank(self.size.width)

    def on_resize(self, event) -> None:
        if event.size.width != self._width:
            self._thaw()

    def _thaw(self) -> None:
        if self.parent is not None and self.is_mounted and not self.retired:
            self.retired = True
            self.release()
            markdown = AnswerMarkdown(self.source, classes="body-more")
            markdown.set_class(self.has_class("-runs-on"), "-runs-on")
            self.parent.mount(markdown, before=self)
            self.remove()

    async def action_link(self, href: str) -> None:
        self.post_message(Markdown.LinkClicked(self, href))
