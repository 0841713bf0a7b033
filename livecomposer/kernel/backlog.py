"""The engine's input backlog under a flood: how much may queue, and what is dropped first.

The input callback appends ``(stamp, bytes)`` to a deque; the engine thread drains at most
:data:`MAX_BATCH` per tick.  When more arrive than the graph can handle, the queue is kept
bounded in count and in age: the oldest non-note traffic goes first, then the oldest
note-ons, never a note-off (the note-off of a dropped note-on is dropped later, at send
time, as an orphan), so no note is left hanging.
"""

from __future__ import annotations

from collections import deque

#: At most this many raw messages are handled per tick; the rest wait for the next tick.
MAX_BATCH = 2048
#: Backlog bound: beyond this many queued raw messages, the oldest non-note traffic is dropped.
MAX_BACKLOG = 20_000
#: Beyond MAX_BATCH queued messages, those this much older than the newest are shed the same
#: way, so that latency recovers within about a second after a flood the graph cannot keep up
#: with (a count bound alone let a slow graph lag seconds behind).
MAX_BACKLOG_AGE_NS = 200_000_000


def _not_a_note(message: bytes) -> bool:
    return not message or message[0] & 0xF0 not in (0x80, 0x90)


def _a_note_on(message: bytes) -> bool:
    return len(message) == 3 and message[0] & 0xF0 == 0x90 and message[2] != 0


def overflowing(raw: deque[tuple[int, bytes]]) -> bool:
    """Whether the queue is beyond its bound in count, or in age past a batch."""
    return len(raw) > MAX_BACKLOG or (len(raw) > MAX_BATCH and raw[-1][0] - raw[0][0] > MAX_BACKLOG_AGE_NS)


def shed(raw: deque[tuple[int, bytes]]) -> int:
    """Drop the oldest non-note traffic, then the oldest note-ons, until ``raw`` is bounded
    in count and in age; the number dropped.  (Without the note-on pass a flood of notes
    alone grew the queue without bound.)

    Works in place at the left end while the callback may append at the right end (both
    deque operations are atomic), so nothing arriving meanwhile is lost."""
    count = len(raw)
    excess = count - MAX_BACKLOG
    items = [raw.popleft() for _ in range(count)]
    stale = items[-1][0] - MAX_BACKLOG_AGE_NS if count > MAX_BATCH else -(1 << 62)
    dropped = 0
    for droppable in (_not_a_note, _a_note_on):
        kept: list[tuple[int, bytes]] = []
        for item in items:
            if (excess > 0 or item[0] < stale) and droppable(item[1]):
                excess -= 1
                dropped += 1
                continue
            kept.append(item)
        items = kept
    raw.extendleft(reversed(items))
    return dropped
