"""The private parts of Textual's Markdown an answer relies on (see the package's
docstring and `PRIVATE_NAMES` there for each name's reason and replacement).

Imported with an answer's Markdown (tui/widgets/answer_markdown.py), after the first
paint: Textual's Markdown brings markdown-it and Pygments.
"""

from __future__ import annotations

from typing import Any

from textual.dom import DOMNode
from textual.widgets._markdown import (  # noqa: F401 - re-exported for answer_markdown
    MarkdownBullet,
    MarkdownBulletList,
    MarkdownList,
    MarkdownListItem,
    MarkdownOrderedList,
    MarkdownOrderedListItem,
    MarkdownParagraph,
)
from textual.widgets.markdown import Markdown, MarkdownBlock


def child_blocks(block: MarkdownBlock) -> list[MarkdownBlock]:
    """The blocks a block holds before it composes them (a list's items, an item's
    paragraphs); the list itself, so a compose that takes them over can clear it."""
    return block._blocks


def paragraph_args(paragraph: MarkdownParagraph) -> tuple[Any, Any, Any]:
    """What `MarkdownParagraph.__init__` takes, from a paragraph Textual made."""
    return paragraph._markdown, paragraph._token, paragraph.source_range


def adopt_paragraph(target: MarkdownParagraph, paragraph: MarkdownParagraph) -> None:
    """`target` shows what `paragraph` holds (links included) without a new parse."""
    target._inline_token = paragraph._inline_token
    target.set_content(paragraph._content)


class BlockHookMarkdown(Markdown):
    """A Markdown that passes the blocks it makes from each parse to `blocks_made`."""

    def blocks_made(self, blocks: list[MarkdownBlock]) -> None:
        pass

    def _parse_markdown(self, tokens):
        blocks = list(super()._parse_markdown(tokens))
        self.blocks_made(blocks)
        return blocks


# Component styles per (block class, theme name, dark).
_SHARED_COMPONENT_STYLES: dict[tuple, dict[str, Any]] = {}


class SharedComponentStyles:
    """Mixin for an answer's Markdown blocks: component styles (.strong, .em, .s,
    .code_inline, .item-bullet) from one cache per block class and theme. Textual works
    them out again for every block it mounts, applying the whole stylesheet to a
    throwaway node per component class; they do not depend on the block."""

    _shared_key: tuple | None = None

    @classmethod
    def _get_component_classes(cls) -> frozenset[str]:
        return frozenset()  # the stylesheet skips them; get_component_styles fills them in

    @classmethod
    def _own_component_classes(cls) -> frozenset[str]:
        return frozenset().union(*(c.__dict__.get("COMPONENT_CLASSES", ()) for c in cls.__mro__))

    def get_component_styles(self, *names: str):
        app = self.app
        key = (type(self), app.theme, app.current_theme.dark)
        if self._shared_key != key:
            shared = _SHARED_COMPONENT_STYLES.get(key)
            if shared is None:
                shared = {}
                for component in sorted(self._own_component_classes()):
                    virtual = DOMNode(classes=component)
                    virtual._attach(self)
                    app.stylesheet.apply(virtual, animate=False)
                    shared[component] = virtual.styles
                _SHARED_COMPONENT_STYLES[key] = shared
            self._component_styles = dict(shared)
            self._shared_key = key
        return super().get_component_styles(*names)
