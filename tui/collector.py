"""The garbage collector's policy for the app (process-wide, so the app can turn it off).

Textual makes many objects per Markdown block. With the default thresholds, young
collections run often while an answer streams, and each full collection rescans every
long-lived object (modules, services, the conversation's widgets). So:
- what exists after start-up is moved out of the collector's way once (`gc.freeze`; frozen
  objects are still freed by reference counting, never by the cycle collector);
- while an answer streams, young collections are rare and full ones do not run;
- the collector never starts a full collection by itself (its third threshold is set out of
  reach): the app runs one when a conversation's widgets have been removed (`collect()`,
  after the next frame: the new screen shows first) and after every `FULL_EVERY` answers
  of one conversation. Each scans only what is not frozen: the conversation on screen and
  what was made after start-up.

Why not freeze each answer after it is drawn (as this policy once did): a widget is freed
by the cycle collector, not by reference counting (it, its parent, its children and its
message queue refer to each other), so frozen answers were never freed once their
conversation was left, and `gc.unfreeze()` can hand them back only for a full collection of
everything, start-up included. A long session grew by every conversation it left
(bench/soak.py: ~9,600 objects an answer); left to the collector's own schedule instead, full
collections ran about once an answer.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Collect the youngest generation every 20,000 new objects (default 700), the middle one
# every 50 of those, the oldest not at all while an answer streams.
STREAMING_GC_THRESHOLDS = (20_000, 50, 1_000_000)
# Between answers: Python's young and middle thresholds; full collections only when the
# app asks (a threshold no session reaches).
IDLE_GC_THRESHOLDS = (700, 10, 1_000_000)
# A full collection after this many answers of one conversation (the garbage of streaming:
# replaced segments, messages, timers).
FULL_EVERY = 10


class CollectorPolicy:
    """`enabled=False` (tests sharing a process with other suites) leaves the collector alone."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.answers_since_full = 0
        self.full_collections = 0  # run by the policy (the benchmark reads it)

    def settle(self) -> None:
        """Everything that exists now (after start-up) is long-lived: collect once, freeze
        it, and leave full collections to the app."""
        if self.enabled:
            gc.collect()
            gc.freeze()
            gc.set_threshold(*IDLE_GC_THRESHOLDS)

    def collect(self) -> None:
        """A full collection: a conversation's widgets were removed (or many answers made
        garbage). Scans what is not frozen."""
        if self.enabled:
            gc.collect()
            self.answers_since_full = 0
            self.full_collections += 1

    def refreeze(self) -> None:
        """What the warm-up loaded after `settle` (the modules an answer imports on first
        use, the embedding model) is long-lived too: collect once and freeze it, so that the
        app's full collections do not scan it again and again. Called once, when the
        warm-up ends (an answer already on screen then, if any, stays for the session)."""
        if self.enabled:
            gc.collect()
            gc.freeze()

    @contextmanager
    def streaming(self, later: Callable[[Callable[[], None]], Any] | None = None) -> Iterator[None]:
        """Around a streaming answer: rare young collections, no full ones; after it, the
        thresholds as they were, the answer's own cyclic garbage (young objects only), and
        every `FULL_EVERY` answers a full collection, handed to `later` when given (the
        screen's `call_after_refresh`: the answer's last frame is drawn before the pause of
        a full collection, a few hundred ms on a loaded machine, not after it)."""
        if not self.enabled:
            yield
            return
        thresholds = gc.get_threshold()
        gc.set_threshold(*STREAMING_GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            self.answers_since_full += 1
            if self.answers_since_full >= FULL_EVERY:
                (later or _now)(self.collect)
            else:
                gc.collect(1)


def _now(callback: Callable[[], None]) -> None:
    callback()
