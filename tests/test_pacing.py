"""The frame pacer: frames held while tokens flood in, released at once when they stop."""

from __future__ import annotations

import asyncio
from time import monotonic

from tui.pacing import (
    FLOOD_FRAME_SHARE,
    FLOOD_MAX_HOLD_S,
    FRAME_SHARE,
    MAX_HOLD_S,
    QUIET_S,
    FramePacer,
)


async def test_no_frame_is_held_without_a_stream():
    pacer = FramePacer()
    pacer.framed(monotonic() - 0.2, monotonic())  # an expensive frame just now
    assert pacer.hold_for(monotonic()) == 0.0


async def test_frames_are_held_to_a_share_of_the_time_while_tokens_flood_in():
    pacer = FramePacer()
    pacer.token()
    start = monotonic()
    pacer.framed(start, start + 0.04)  # a 40 ms frame
    wait = pacer.hold_for(start + 0.05)
    # The next frame waits until 40 ms / FRAME_SHARE after the first began, never longer
    # than MAX_HOLD_S.
    assert 0.0 < wait <= MAX_HOLD_S
    assert abs((start + 0.05 + wait) - (start + 0.16)) < 1e-6
    # A cheap frame between two expensive ones does not let the next expensive one early.
    pacer.framed(start + 0.2, start + 0.2001)
    assert pacer.hold_for(start + 0.21) > 0.05
    pacer.taken()


async def test_user_input_is_never_held():
    pacer = FramePacer()
    pacer.token()
    now = monotonic()
    pacer.framed(now, now + 0.05)
    assert pacer.hold_for(now + 0.06) > 0
    released = []
    pacer.on_release(lambda: released.append(True))
    pacer.user_input()
    assert released and pacer.hold_for(monotonic()) == 0.0
    pacer.taken()


async def test_quiet_releases_the_frame_and_calls_back_once():
    pacer = FramePacer()
    released, quiet = [], []
    pacer.on_release(lambda: released.append(True))
    pacer.token()
    pacer.when_quiet(lambda: quiet.append(1))
    pacer.when_quiet(lambda: quiet.append(2))
    pacer.taken()
    now = monotonic()
    pacer.framed(now, now + 0.05)
    assert pacer.active
    for _ in range(200):
        if not pacer.active:
            break
        await asyncio.sleep(QUIET_S / 2)
    assert not pacer.active and quiet == [1, 2] and released
    assert pacer.hold_for(monotonic()) == 0.0


async def test_a_fragment_still_being_handled_is_not_quiet():
    """While a fragment is handled (a segment being frozen, say), the next tokens wait
    unread in the socket: that is not the end of the stream."""
    pacer = FramePacer()
    pacer.token()  # not taken yet
    await asyncio.sleep(QUIET_S * 4)
    assert pacer.active
    pacer.taken()
    for _ in range(200):
        if not pacer.active:
            break
        await asyncio.sleep(QUIET_S / 2)
    assert not pacer.active


async def test_a_flood_faster_than_anyone_reads_gets_a_smaller_share_of_frames():
    """Fragments back to back (a model faster than reading, or a backlog in the socket):
    frames take FLOOD_FRAME_SHARE of the time; at a reading pace, FRAME_SHARE."""
    flood = FramePacer()
    for _ in range(200):
        flood.token()
        flood.taken()
    start = monotonic()
    flood.framed(start, start + 0.03)
    assert abs(start + 0.03 + flood.hold_for(start + 0.03) - (start + 0.03 / FLOOD_FRAME_SHARE)) < 1e-6
    flood.framed(start + 1.0, start + 1.2)  # an expensive frame: held no longer than the cap
    assert abs(flood.hold_for(start + 1.2) - (FLOOD_MAX_HOLD_S - 0.2)) < 1e-6

    reading = FramePacer()  # ~200 fragments a second
    for _ in range(150):
        reading.token()
        reading.taken()
        await asyncio.sleep(0.005)
    reading.token()
    start = monotonic()
    reading.framed(start, start + 0.03)
    assert abs(start + 0.03 + reading.hold_for(start + 0.03) - (start + 0.03 / FRAME_SHARE)) < 1e-6
    reading.taken()
