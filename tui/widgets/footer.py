"""The footer: Textual's, brought up to date in place instead of made again.

Textual's Footer composes all its keys again whenever the screen's bindings may have
changed: when an answer starts (its worker goes pending, then running: two rebuilds)
and when it ends, though all that changes is one key ("Stop answer"). A rebuild costs
tens of milliseconds on a slow machine, at the start of the stream, where it delays the
first words. `AppFooter` compares what it would show with what it shows: nothing changed, it
does nothing; keys appeared, went or were enabled/disabled, it mounts, removes or
restyles just those keys, at once (not after the next frame, which the frame pacer may
hold while an answer floods in), and asks for the next frame to show them. Binding
groups (which this app does not use) fall back to Textual's rebuild.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from tui.textual_compat import (
    FooterKey,
    footer_bindings_ready,
    footer_key_enabled,
    set_footer_bindings_ready,
    set_footer_key_enabled,
)

# (key, key display, description, action, tooltip, command palette?): a key as shown,
# and whether it is enabled.
_Entry = tuple[str, str, str, str, str, bool]


class AppFooter(Footer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: list[tuple[_Entry, bool]] | None = None  # what the keys show, in order
        self._update_pending = False

    def _entries(self) -> list[tuple[_Entry, bool]] | None:
        """What Textual's Footer would show now (None: binding groups, left to it)."""
        active = self.screen.active_bindings
        entries: list[tuple[_Entry, bool]] = []
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in active.values():
            if not binding.show:
                continue
            if binding.group is not None:
                return None
            if binding.action in seen:
                continue  # the first binding of an action stands for it, as in Textual's
            seen.add(binding.action)
            entries.append(((binding.key, self.app.get_key_display(binding),
                             binding.description, binding.action, tooltip or "", False), enabled))
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            found = active.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                entries.append(((binding.key, self.app.get_key_display(binding),
                                 binding.description, binding.action,
                                 binding.tooltip or binding.description, True), enabled))
        return entries

    def _key(self, entry: _Entry, enabled: bool) -> FooterKey:
        key, display, description, action, tooltip, palette = entry
        widget = FooterKey(key, display, description, action, disabled=not enabled,
                           tooltip=tooltip, classes="-command-palette" if palette else "")
        if not palette:
            # Textual binds this to the footer's `compact`; set once, the key is not
            # restyled again right after it is mounted.
            widget.set_reactive(FooterKey.compact, self.compact)
            widget.set_class(self.compact, "-compact")
        return widget

    def compose(self) -> ComposeResult:
        if not footer_bindings_ready(self):
            return
        entries = self._entries()
        if entries is None:
            self._shown = None
            yield from super().compose()
            return
        self._shown = entries
        self.styles.grid_size_columns = sum(not e[5] for e, _ in entries)  # as Textual's does
        for entry, enabled in entries:
            yield self._key(entry, enabled)

    def bindings_changed(self, screen: Screen) -> None:
        set_footer_bindings_ready(self)
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._update_pending:
            # Several changes in a row make one update. Not put off until after the next
            # frame, as Textual's is: while an answer floods in, frames are held (see
            # tui/pacing.py) and "Stop answer" would show late, or not at all.
            self._update_pending = True
            if self._shown is None:
                # The first keys: after the first frame, as Textual's (start-up comes first).
                self.call_after_refresh(self._update_keys)
            else:
                self.call_later(self._update_keys)

    async def _update_keys(self) -> None:
        self._update_pending = False
        if not self.is_attached:
            return
        entries = self._entries()
        shown = self._shown
        if entries is None or shown is None:
            await self.recompose()
            return
        if entries == shown:
            return
        pacer = getattr(self.app, "pacer", None)
        if pacer is not None:
            pacer.show_soon()  # the next frame shows the new keys
        keys = list(self.query_children(FooterKey))
        if len(keys) != len(shown):
            await self.recompose()  # not what it composed: start again
            return
        from difflib import SequenceMatcher  # not at start-up: only when keys change

        matcher = SequenceMatcher(a=[e for e, _ in shown], b=[e for e, _ in entries],
                                  autojunk=False)
        removed: list[FooterKey] = []
        for op, a0, a1, b0, b1 in matcher.get_opcodes():
            if op == "equal":
                for widget, (_, enabled) in zip(keys[a0:a1], entries[b0:b1], strict=True):
                    if footer_key_enabled(widget) != enabled:  # enabled or disabled since
                        set_footer_key_enabled(widget, enabled)
                continue
            removed.extend(keys[a0:a1])
            new = [self._key(entry, enabled) for entry, enabled in entries[b0:b1]]
            if new:
                if a1 < len(keys):
                    await self.mount_all(new, before=keys[a1])
                else:
                    await self.mount_all(new)
        if removed:
            await self.remove_children(removed)
        self._shown = entries
