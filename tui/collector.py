"""The garbage collector's policy for the app (process-wide, so the app can turn it off).

Textual makes many objects per Markdown block. With the default thresholds, young
collections run often while an answer streams, and each full collection rescans every
long-lived object (modules, services, finished answers) in the middle of the stream.
So: what exists after start-up and after each answer is moved out of the collector's way
(`gc.freeze`; frozen objects are still freed by reference counting), young collections
are rare and full ones do not run while an answer streams, and `thaw()` hands the frozen
objects back when a conversation's widgets are removed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Collect the youngest generation every 20,000 new objects (default 700), the middle one
# every 50 of those, the oldest not at all while an answer streams.
STREAMING_GC_THRESHOLDS = (20_000, 50, 1_000_000)


class CollectorPolicy:
    """`enabled=False` (tests sharing a process with other suites) leaves the collector alone."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def settle(self) -> None:
        """Everything that exists now is long-lived: collect once, then freeze it."""
        if self.enabled:
            gc.collect()
            gc.freeze()

    def freeze(self) -> None:
        if self.enabled:
            gc.freeze()

    def thaw(self) -> None:
        """Widgets are about to be removed: they must be collectable again."""
        if self.enabled:
            gc.unfreeze()

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Around a streaming answer: rare young collections, no full ones; after it, the
        answer's own cyclic garbage (young objects only) and a freeze of its widgets."""
        if not self.enabled:
            yield
            return
        thresholds = gc.get_threshold()
        gc.set_threshold(*STREAMING_GC_THRESHOLDS)
        try:
            yield
        finally:
            gc.set_threshold(*thresholds)
            gc.collect(1)
            gc.freeze()
