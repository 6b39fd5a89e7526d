"""Widget removals that a cancellation cannot cut short."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


async def removed(removal: Awaitable[object]) -> None:
    """Await a widget removal (`widget.remove()`, `remove_children()`, a query's `remove()`)
    to its end even if the awaiting task is cancelled meanwhile; the cancellation is raised
    after it.

    Textual awaits a removal with `gather` over the removed widgets' message pumps, and a
    cancelled `gather` cancels what it gathers: a pump stopped that way drops the messages
    still in its queue (a `call_later` from the screen or the test pilot never runs, and
    `Pilot._wait_for_screen` times out after 30 s), and the change is left half done. An
    answer's worker is cancelled by Escape or by the next question, which may come while the
    answer is still being redrawn (tests/test_faults_tui.py). Removals are per segment, not
    per token: this costs a task each, not one per streamed fragment.
    """
    task = asyncio.ensure_future(removal)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
