"""The stuck-note check: every note-on that reached the far end must have its note-off.

A receiver (a DAW stand-in on the other end of a real port, or a memory output) hands the
raw messages it got, in order, to :func:`stuck_notes`.  A note-off is ``8n`` or ``9n`` with
velocity 0.  CC 123 (all notes off) does *not* count as a note-off here: some synths ignore
it, so on every way out the engine sends the explicit note-offs first, then CC 123.
"""

from __future__ import annotations

from typing import Iterable, Sequence


def stuck_notes(messages: Iterable[Sequence[int]]) -> dict[tuple[int, int], int]:
    """``{(channel, note): count}`` of note-ons never followed by a note-off, in order.

    A second note-on for a sounding note (a re-strike) without a note-off in between is
    counted as one more sounding instance: MIDI synths stack them, so each needs an off.
    Only note-offs matter after that: one note-off ends one instance.
    """
    sounding: dict[tuple[int, int], int] = {}
    for message in messages:
        if len(message) < 3:
            continue
        status, note, velocity = message[0], message[1], message[2]
        high, channel = status & 0xF0, status & 0x0F
        key = (channel, note)
        if high == 0x90 and velocity > 0:
            sounding[key] = sounding.get(key, 0) + 1
        elif high == 0x80 or (high == 0x90 and velocity == 0):
            if sounding.get(key):
                sounding[key] -= 1
                if not sounding[key]:
                    del sounding[key]
    return sounding


def count_notes(messages: Iterable[Sequence[int]]) -> tuple[int, int]:
    """(note-ons, note-offs) among ``messages``."""
    ons = offs = 0
    for message in messages:
        if len(message) < 3:
            continue
        high = message[0] & 0xF0
        if high == 0x90 and message[2] > 0:
            ons += 1
        elif high == 0x80 or (high == 0x90 and message[2] == 0):
            offs += 1
    return ons, offs
