"""Frame pacing while an answer floods in.

A frame of the main screen (reflow and repaint of the scrolled conversation) costs
milliseconds on a fast machine and tens of milliseconds on a slow one. Textual starts a
frame whenever something changed, up to its frame rate; while a fast model streams, the
frames alone can take most of the event loop, the tokens queue up in the socket and the
pane falls behind the model.

`FramePacer` keeps frames to a share of the time while tokens arrive: after a frame that
took D seconds, the next waits until D / FRAME_SHARE seconds after the first began (with a
10 ms frame: no wait at 20 frames a second). Input from the user (a key, the mouse) is
never held back, and the moment the stream goes quiet (QUIET_S without a token, which
includes its end) the held frame is drawn at once, so the last words appear without a
wait. While fragments come faster than anyone reads (over FLOOD_RATE a second: a very
fast model, or the pane reading a backlog from the socket), frames take a smaller share
(FLOOD_FRAME_SHARE) and may wait longer (FLOOD_MAX_HOLD_S): on a slow machine the frames
are what makes the pane fall behind. `PacedScreen` is the screen that asks it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic

from textual import errors
from textual.map_geometry import MapGeometry
from textual.widget import Widget

from tui.textual_compat import Compositor, GatedScreen

# Frames may take at most this share of the time while an answer streams in.
FRAME_SHARE = 0.25
# No token for this long: the stream is quiet (or over) and frames are not held.
QUIET_S = 0.012
# A frame is never held for longer than this (at a reading pace; see FLOOD_MAX_HOLD_S).
MAX_HOLD_S = 0.25
# Fragments coming faster than this (per second) are more than anyone reads along
# (or the pane is behind and reads them from the socket's backlog): frames then take at
# most FLOOD_FRAME_SHARE of the time and wait up to FLOOD_MAX_HOLD_S.
FLOOD_RATE = 400.0
FLOOD_FRAME_SHARE = 0.15
FLOOD_MAX_HOLD_S = 0.35
# The fragment rate is a moving average of the gaps between fragments, this much the newest.
_RATE_WEIGHT = 0.05


class FramePacer:
    def __init__(self) -> None:
        self.last_token = -1.0  # the last fragment's arrival, or the end of its handling
        self.last_arrival = -1.0  # the last fragment's arrival (the benchmark reads it)
        self.last_user_input = -1.0
        self.frame_start = -1.0
        self.frame_cost = 0.0
        self.active = False  # tokens are flooding in (no quiet since the last one)
        self.fragment_gap = 1.0  # moving average of the seconds between fragments (each at most 1 s)
        self._check_due = 0.0
        self._taking = 0  # fragments being handled now
        self._quiet_handle: asyncio.TimerHandle | None = None
        self._quiet_callbacks: list[Callable[[], object]] = []
        self._release: Callable[[], object] | None = None

    # -- what the app tells it ---------------------------------------------------
    def token(self) -> None:
        """A streamed fragment arrived; `taken()` when it has been handled."""
        now = monotonic()
        if self.last_arrival >= 0:
            self.fragment_gap += (min(now - self.last_arrival, 1.0) - self.fragment_gap) * _RATE_WEIGHT
        self.last_token = self.last_arrival = now
        self.active = True
        self._taking += 1
        if self._quiet_handle is None:
            self._schedule_check(self.last_token + QUIET_S)

    def taken(self) -> None:
        """The fragment is handled: the reader waits for the next one from now."""
        self._taking -= 1
        self.last_token = monotonic()

    def user_input(self) -> None:
        """A key or mouse event: the next frame is not held."""
        self.last_user_input = monotonic()
        self._wake()

    def show_soon(self) -> None:
        """Something the user must see at once changed (the keys in the footer): the next
        frame is not held, as after a key."""
        self.user_input()

    def when_quiet(self, callback: Callable[[], object]) -> None:
        """Call `callback` once, the next time the stream goes quiet."""
        if callback not in self._quiet_callbacks:
            self._quiet_callbacks.append(callback)

    def on_release(self, callback: Callable[[], object] | None) -> None:
        """What resumes a held screen (set by the screen)."""
        self._release = callback

    # -- what the screen asks ----------------------------------------------------
    def hold_for(self, now: float) -> float:
        """Seconds the next frame should wait (0: draw it now)."""
        if not self.active or self.last_user_input >= self.frame_start:
            return 0.0
        if self.fragment_gap * FLOOD_RATE < 1.0:
            gap = min(FLOOD_MAX_HOLD_S, self.frame_cost / FLOOD_FRAME_SHARE)
        else:
            gap = min(MAX_HOLD_S, self.frame_cost / FRAME_SHARE)
        return max(0.0, self.frame_start + gap - now)

    def framed(self, start: float, end: float) -> None:
        # The cost of a frame, remembered with a slow decay: a cheap frame (a cursor, a
        # single line) between two full ones must not let the next full one through early.
        self.frame_start = start
        self.frame_cost = max(end - start, self.frame_cost * 0.8)

    # -- internals -----------------------------------------------------------------
    def _schedule_check(self, when: float) -> None:
        self._check_due = when
        self._quiet_handle = asyncio.get_running_loop().call_at(when, self._check_quiet)

    def _check_quiet(self) -> None:
        self._quiet_handle = None
        now = monotonic()
        if self._taking or now - self.last_token < QUIET_S:
            # Still handling a fragment (a segment being frozen, say: the next tokens wait
            # unread meanwhile), or one came in within QUIET_S.
            self._schedule_check(max(now, self.last_token) + QUIET_S)
            return
        if now - self._check_due > QUIET_S / 2:
            # The check itself ran late: the loop was busy (a frame, a render) and tokens
            # may be waiting in the socket unread. Quiet means quiet with the loop free.
            self._schedule_check(now + QUIET_S)
            return
        self.active = False
        callbacks, self._quiet_callbacks = self._quiet_callbacks, []
        for callback in callbacks:
            callback()
        self._wake()

    def _wake(self) -> None:
        if self._release is not None:
            self._release()


class PacedScreen(GatedScreen):
    """The app's main screen: its frames are paced by the app's `FramePacer`."""

    def __init__(self, pacer: FramePacer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pacer = pacer
        self._held: asyncio.TimerHandle | None = None
        self._offscreen: Compositor | None = None

    @contextmanager
    def offscreen(self, compositor: Compositor) -> Iterator[None]:
        """While inside: widgets laid out by `compositor` (a compositor of the caller's own,
        rooted at a widget of this screen) render at their places in it, not on screen.
        Lets a finished answer segment be rendered before any frame has laid it out."""
        outer, self._offscreen = self._offscreen, compositor
        try:
            yield
        finally:
            self._offscreen = outer

    def find_widget(self, widget: Widget) -> MapGeometry:
        if self._offscreen is not None:
            try:
                return self._offscreen.find_widget(widget)
            except errors.NoWidget:
                pass
        return super().find_widget(widget)

    def on_mount(self) -> None:
        self.pacer.on_release(self._resume)

    def on_unmount(self) -> None:
        self.pacer.on_release(None)

    def _resume(self) -> None:
        if self._held is not None:
            self._held.cancel()
            self._held = None
            self.release_frames()

    def frame_may_start(self, now: float) -> bool:
        wait = self.pacer.hold_for(now)
        if wait > 0:
            self.hold_frames()
            if self._held is None:
                self._held = asyncio.get_running_loop().call_later(wait, self._resume)
            return False
        if self._held is not None:
            self._held.cancel()
            self._held = None
        return True

    def framed(self, start: float, end: float) -> None:
        self.pacer.framed(start, end)
