"""Every use of Textual's private API, in one place.

The app is fast because it reaches past Textual's public API in a few places: it holds
frames while an answer floods in, renders a finished answer segment off screen, makes
list items cheaper, updates the footer in place and reads Enter in the prompt's own key
queue. Each such use lives here (or in `tui.textual_compat.markdown`, the part that needs
Textual's Markdown and is imported with the first answer), says why, and names the public
API or upstream issue that would replace it. Everything else in the app imports Textual's
public paths only.

`PRIVATE_NAMES` lists every private name these modules rely on;
`tests/test_textual_compat.py` checks that each exists in the installed Textual, so an
upgrade that moves one fails in that one test, with the missing names listed.
pyproject.toml pins Textual to the minor series this was checked against (see
CONTRIBUTING.md for how to move it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic

from textual import events
from textual._compositor import Compositor
from textual.geometry import Region
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, TextArea
from textual.widgets._footer import FooterKey

__all__ = [
    "PRIVATE_NAMES",
    "Compositor",
    "FooterKey",
    "GatedScreen",
    "KeyFirstTextArea",
    "PrivateName",
    "clear_arrangement_cache",
    "footer_bindings_ready",
    "footer_key_enabled",
    "set_footer_bindings_ready",
    "missing_private_names",
    "render_chops",
    "set_footer_key_enabled",
]


@dataclass(frozen=True)
class PrivateName:
    """One private name: where it lives, why the app needs it, what would replace it."""

    module: str
    path: str  # attribute path inside the module ("Class.attribute"); "" for the module
    reason: str
    replacement: str


PRIVATE_NAMES: tuple[PrivateName, ...] = (
    # -- frames (tui/pacing.py) ----------------------------------------------------
    PrivateName(
        "textual.screen", "Screen._on_timer_update",
        "the screen's frame callback: `GatedScreen` holds a frame while an answer floods "
        "in (the frames alone can take most of the loop on a slow machine)",
        "none public: a hook to throttle a screen's refresh (no upstream issue yet)"),
    PrivateName(
        "textual.screen", "Screen._update_timer",
        "paused while a frame is held, resumed when the pacer lets it go",
        "as above"),
    PrivateName(
        "textual._compositor", "Compositor",
        "a compositor of our own lays out and renders a finished answer segment off "
        "screen, before any frame has laid it out (the freeze does not wait for a frame)",
        "none public: Widget.render_lines of a whole subtree at a given size"),
    PrivateName(
        "textual._compositor", "Compositor.reflow",
        "lays out the segment at the answer's width", "as above"),
    PrivateName(
        "textual._compositor", "Compositor.render_strips",
        "renders all of a segment's lines at once", "as above"),
    PrivateName(
        "textual._compositor", "Compositor.find_widget",
        "`PacedScreen.offscreen` answers `Screen.find_widget` from our compositor",
        "as above"),
    PrivateName(
        "textual._compositor", "Compositor._render_chops",
        "renders only the lines a frame shows of a lazily frozen segment", "as above"),
    PrivateName(
        "textual.widget", "Widget._clear_arrangement_cache",
        "a block's arrangement is cached until Textual's next layout; the off-screen "
        "layout of a just-updated segment must not use the stale one",
        "none public"),
    # -- the footer (tui/widgets/footer.py) ------------------------------------------
    PrivateName(
        "textual.widgets._footer", "FooterKey",
        "`AppFooter` mounts and restyles single keys instead of recomposing the footer",
        "a public `textual.widgets.footer` module (Textual exports only `Footer`)"),
    PrivateName(
        "textual.widgets._footer", "Footer._bindings_ready",
        "set, as Textual's own `bindings_changed` does, before the first compose",
        "an in-place update in Textual's Footer (it recomposes on every change)"),
    PrivateName(
        "textual.widgets._footer", "FooterKey._disabled",
        "a key enabled or disabled in place (the reactive `disabled` would restyle the "
        "whole subtree)", "as above"),
    # -- the prompt (tui/widgets/prompt.py) ------------------------------------------
    PrivateName(
        "textual.widgets._text_area", "TextArea._on_key",
        "Enter and Ctrl+J are read in the prompt's own key queue, after the characters "
        "typed before them (a priority binding could run before those are inserted)",
        "none public: TextArea inserts printable keys in this handler"),
    # -- an answer's Markdown (tui/textual_compat/markdown.py) ----------------------------
    *(PrivateName(
        "textual.widgets._markdown", name,
        "the list and paragraph blocks an answer's Markdown replaces or subclasses",
        "export from textual.widgets.markdown (it has Markdown, MarkdownBlock, "
        "MarkdownFence, MarkdownStream only)")
      for name in ("MarkdownBullet", "MarkdownBulletList", "MarkdownList",
                   "MarkdownListItem", "MarkdownOrderedList", "MarkdownOrderedListItem",
                   "MarkdownParagraph")),
    PrivateName(
        "textual.widgets._markdown", "Markdown._parse_markdown",
        "marks the last block of a segment that the next one runs on from (no margin "
        "between the halves of a cut paragraph or list)",
        "a public hook on the blocks a Markdown makes"),
    PrivateName(
        "textual.widgets._markdown", "MarkdownBlock._blocks",
        "a list's items, to lay out a one-paragraph item as one widget", "as above"),
    PrivateName(
        "textual.widgets._markdown", "MarkdownBlock._markdown",
        "a paragraph rebuilt as a one-widget list item keeps its Markdown", "as above"),
    PrivateName(
        "textual.widgets._markdown", "MarkdownBlock._token",
        "... its token", "as above"),
    PrivateName(
        "textual.widgets._markdown", "MarkdownBlock._inline_token",
        "... its inline token (links)", "as above"),
    PrivateName(
        "textual.widgets._markdown", "MarkdownBlock._content",
        "... and its content, without parsing it again", "as above"),
    PrivateName(
        "textual.dom", "DOMNode._get_component_classes",
        "an answer's blocks skip the stylesheet's per-block pass over their component "
        "classes: the styles come from one cache per block class and theme",
        "none public: component styles shared per class (they do not depend on the node)"),
    PrivateName(
        "textual.dom", "DOMNode._component_styles",
        "filled from that cache", "as above"),
    PrivateName(
        "textual.message_pump", "MessagePump._attach",
        "the throwaway node the cache is computed on is attached to a block, as Textual "
        "does for each block", "as above"),
)


def _resolve(name: PrivateName) -> bool:
    try:
        target: object = importlib.import_module(name.module)
    except ImportError:
        return False
    for part in filter(None, name.path.split(".")):
        if not hasattr(target, part):
            # Instance attributes set in __init__ are not on the class: look for them in
            # the source of the class (and its bases), as `self.NAME` or a class attribute.
            if isinstance(target, type) and _assigned_in(target, part):
                return True
            return False
        target = getattr(target, part)
    return True


def _assigned_in(cls: type, attribute: str) -> bool:
    import inspect

    for klass in cls.__mro__:
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if f"self.{attribute} " in source or f"self.{attribute}:" in source:
            return True
    return False


def missing_private_names() -> list[str]:
    """The private names in PRIVATE_NAMES that the installed Textual lacks."""
    return [f"{n.module}.{n.path}".rstrip(".") for n in PRIVATE_NAMES if not _resolve(n)]


# -- frames ---------------------------------------------------------------------------


class GatedScreen(Screen):
    """A Screen that asks `frame_may_start(now)` before each frame.

    False holds the frame: the screen then calls `hold_frames()` and, later,
    `release_frames()` to draw it. `framed(start, end)` follows each frame drawn.
    """

    def frame_may_start(self, now: float) -> bool:
        return True

    def framed(self, start: float, end: float) -> None:
        pass

    def hold_frames(self) -> None:
        self._update_timer.pause()

    def release_frames(self) -> None:
        self._update_timer.resume()

    def _on_timer_update(self) -> None:
        start = monotonic()
        if not self.frame_may_start(start):
            return
        super()._on_timer_update()
        self.framed(start, monotonic())


def clear_arrangement_cache(widget: Widget) -> None:
    widget._clear_arrangement_cache()


def render_chops(compositor: Compositor, region: Region,
                 only: Callable[[int], bool]) -> list[dict[int, Strip]]:
    """The lines of `region` that `only(y)` accepts, as Textual's compositor chops."""
    return compositor._render_chops(region, only)


# -- the footer -----------------------------------------------------------------------


def footer_bindings_ready(footer: Footer) -> bool:
    return footer._bindings_ready


def set_footer_bindings_ready(footer: Footer) -> None:
    footer._bindings_ready = True


def footer_key_enabled(key: FooterKey) -> bool:
    return not key._disabled


def set_footer_key_enabled(key: FooterKey, enabled: bool) -> None:
    key._disabled = not enabled
    key.set_class(not enabled, "-disabled")
    key.refresh()


# -- the prompt -----------------------------------------------------------------------


class KeyFirstTextArea(TextArea):
    """A TextArea that offers each key to `key_first(event)` in its own key queue, before
    inserting it: True means handled (the key is stopped and not inserted)."""

    def key_first(self, event: events.Key) -> bool:
        return False

    async def _on_key(self, event: events.Key) -> None:
        if self.key_first(event):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)
