"""The one event type used everywhere inside livecomposer.

Raw MIDI bytes are parsed into :class:`Event` once, on the engine thread, and turned back
into bytes only when sent.  mido is used only at the edges (files, listings).  Times are
absolute nanoseconds on the engine's clock (``time.monotonic_ns`` live, a manual clock in
tests and renders), so every component agrees on "when" without conversions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Iterable, Sequence

import mido

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000

PERFORMER = 0
"""``Event.voice`` of what the human played. Machine voices are 1, 2, ..."""


class Kind(IntEnum):
    NOTE_ON = 1
    NOTE_OFF = 2
    CONTROL = 3
    PITCHBEND = 4
    AFTERTOUCH = 5  # channel pressure
    POLY_AFTERTOUCH = 6
    PROGRAM = 7
    CLOCK = 8
    START = 9
    CONTINUE = 10
    STOP = 11
    SONG_POSITION = 12


CHANNEL_KINDS = frozenset(
    {Kind.NOTE_ON, Kind.NOTE_OFF, Kind.CONTROL, Kind.PITCHBEND, Kind.AFTERTOUCH, Kind.POLY_AFTERTOUCH, Kind.PROGRAM}
)
REALTIME_KINDS = frozenset({Kind.CLOCK, Kind.START, Kind.CONTINUE, Kind.STOP})


@dataclass(frozen=True, slots=True)
class Event:
    """One MIDI event at an absolute time.

    ``note``/``velocity`` are used by notes and poly aftertouch; ``control``/``value`` by
    CCs; ``value`` alone carries the program number, the pitch bend (-8192..8191), the
    channel pressure or the song position (in 16ths).  ``voice`` says who played it
    (:data:`PERFORMER` or a machine voice) and ``tag`` groups scheduled events so a stale
    plan can be cancelled as a whole (0: never cancelled).
    """

    kind: Kind
    time: int
    channel: int = 0
    note: int = 0
    velocity: int = 0
    control: int = 0
    value: int = 0
    voice: int = PERFORMER
    tag: int = 0

    @property
    def is_note_on(self) -> bool:
        return self.kind is Kind.NOTE_ON

    @property
    def is_note_off(self) -> bool:
        return self.kind is Kind.NOTE_OFF

    @property
    def is_note(self) -> bool:
        return self.kind is Kind.NOTE_ON or self.kind is Kind.NOTE_OFF

    def at(self, time: int) -> "Event":
        return replace(self, time=time)

    def with_(self, **changes) -> "Event":
        return replace(self, **changes)

    def __repr__(self) -> str:  # compact, for logs and test failures
        fields = [f"{self.kind.name}", f"t={self.time}", f"ch={self.channel}"]
        if self.kind in (Kind.NOTE_ON, Kind.NOTE_OFF, Kind.POLY_AFTERTOUCH):
            fields += [f"note={self.note}", f"vel={self.velocity}"]
        elif self.kind is Kind.CONTROL:
            fields += [f"cc={self.control}", f"val={self.value}"]
        elif self.kind not in REALTIME_KINDS:
            fields.append(f"val={self.value}")
        if self.voice:
            fields.append(f"voice={self.voice}")
        if self.tag:
            fields.append(f"tag={self.tag}")
        return "Event(" + " ".join(fields) + ")"


def note_on(time: int, note: int, velocity: int = 100, channel: int = 0, voice: int = PERFORMER, tag: int = 0) -> Event:
    return Event(Kind.NOTE_ON, time, channel, note, velocity, voice=voice, tag=tag)


def note_off(time: int, note: int, channel: int = 0, voice: int = PERFORMER, tag: int = 0, velocity: int = 0) -> Event:
    return Event(Kind.NOTE_OFF, time, channel, note, velocity, voice=voice, tag=tag)


def control(time: int, cc: int, value: int, channel: int = 0, voice: int = PERFORMER) -> Event:
    return Event(Kind.CONTROL, time, channel, control=cc, value=value, voice=voice)


def program(time: int, number: int, channel: int = 0) -> Event:
    return Event(Kind.PROGRAM, time, channel, value=number)


class MidiParseError(ValueError):
    """A byte sequence that is not one complete, valid MIDI message we handle."""


# Data bytes that follow each channel status (high nibble).
_CHANNEL_LENGTH = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}
_REALTIME = {0xF8: Kind.CLOCK, 0xFA: Kind.START, 0xFB: Kind.CONTINUE, 0xFC: Kind.STOP}


def parse(data: Sequence[int], time: int, voice: int = PERFORMER) -> Event | None:
    """Parse one MIDI message from raw bytes.

    Returns ``None`` for well-formed messages we deliberately ignore (sysex, MTC, tune
    request, active sensing, reset).  Raises :class:`MidiParseError` for anything
    malformed: empty, stray data bytes, unknown status, wrong length, data bytes >= 0x80.
    A note-on with velocity 0 is returned as a note-off, as the MIDI spec says.
    """
    n = len(data)
    if n == 0:
        raise MidiParseError("empty message")
    status = data[0]
    if status < 0x80:
        raise MidiParseError(f"stray data byte 0x{status:02X} without a status byte")
    if status >= 0xF0:
        kind = _REALTIME.get(status)
        if kind is not None:
            if n != 1:
                raise MidiParseError(f"realtime 0x{status:02X} with {n - 1} trailing bytes")
            return Event(kind, time, voice=voice)
        if status == 0xF2:
            if n != 3 or data[1] > 0x7F or data[2] > 0x7F:
                raise MidiParseError("malformed song position pointer")
            return Event(Kind.SONG_POSITION, time, value=data[1] | (data[2] << 7), voice=voice)
        if status == 0xF0:
            if n < 2 or data[-1] != 0xF7 or any(b > 0x7F for b in data[1:-1]):
                raise MidiParseError("malformed or unterminated sysex")
            return None
        if status in (0xF1, 0xF3):
            if n != 2 or data[1] > 0x7F:
                raise MidiParseError(f"malformed system common 0x{status:02X}")
            return None
        if status in (0xF6, 0xFE, 0xFF):
            if n != 1:
                raise MidiParseError(f"system 0x{status:02X} with trailing bytes")
            return None
        raise MidiParseError(f"undefined status byte 0x{status:02X}")
    high = status & 0xF0
    expected = _CHANNEL_LENGTH[high]
    if n != expected + 1:
        raise MidiParseError(f"status 0x{status:02X} needs {expected} data bytes, got {n - 1}")
    d1 = data[1]
    d2 = data[2] if expected == 2 else 0
    if d1 > 0x7F or d2 > 0x7F:
        raise MidiParseError(f"data byte >= 0x80 in message 0x{status:02X}")
    channel = status & 0x0F
    if high == 0x90:
        if d2 == 0:
            return Event(Kind.NOTE_OFF, time, channel, d1, 0, voice=voice)
        return Event(Kind.NOTE_ON, time, channel, d1, d2, voice=voice)
    if high == 0x80:
        return Event(Kind.NOTE_OFF, time, channel, d1, d2, voice=voice)
    if high == 0xB0:
        return Event(Kind.CONTROL, time, channel, control=d1, value=d2, voice=voice)
    if high == 0xE0:
        return Event(Kind.PITCHBEND, time, channel, value=(d1 | (d2 << 7)) - 8192, voice=voice)
    if high == 0xC0:
        return Event(Kind.PROGRAM, time, channel, value=d1, voice=voice)
    if high == 0xD0:
        return Event(Kind.AFTERTOUCH, time, channel, value=d1, voice=voice)
    return Event(Kind.POLY_AFTERTOUCH, time, channel, d1, d2, voice=voice)


def to_bytes(event: Event) -> list[int]:
    """Encode an event as one MIDI message (clamping values into range)."""
    k = event.kind
    ch = event.channel & 0x0F
    if k is Kind.NOTE_ON:
        return [0x90 | ch, event.note & 0x7F, max(1, min(127, event.velocity))]
    if k is Kind.NOTE_OFF:
        return [0x80 | ch, event.note & 0x7F, max(0, min(127, event.velocity))]
    if k is Kind.CONTROL:
        return [0xB0 | ch, event.control & 0x7F, max(0, min(127, event.value))]
    if k is Kind.PITCHBEND:
        v = max(0, min(16383, event.value + 8192))
        return [0xE0 | ch, v & 0x7F, v >> 7]
    if k is Kind.PROGRAM:
        return [0xC0 | ch, event.value & 0x7F]
    if k is Kind.AFTERTOUCH:
        return [0xD0 | ch, max(0, min(127, event.value))]
    if k is Kind.POLY_AFTERTOUCH:
        return [0xA0 | ch, event.note & 0x7F, max(0, min(127, event.velocity))]
    if k is Kind.SONG_POSITION:
        v = max(0, min(16383, event.value))
        return [0xF2, v & 0x7F, v >> 7]
    return [{Kind.CLOCK: 0xF8, Kind.START: 0xFA, Kind.CONTINUE: 0xFB, Kind.STOP: 0xFC}[k]]


def to_mido(event: Event, delta_ticks: int = 0) -> mido.Message:
    """mido message for files; ``delta_ticks`` becomes ``msg.time``."""
    return mido.Message.from_bytes(to_bytes(event), time=delta_ticks)


def from_mido(msg: mido.Message, time: int, voice: int = PERFORMER) -> Event | None:
    """Event from a mido message (``None`` for meta messages and ignored ones)."""
    if msg.is_meta:
        return None
    try:
        return parse(msg.bytes(), time, voice)
    except MidiParseError:
        return None


def sort_key(event: Event) -> tuple[int, int]:
    """Order for simultaneous events: note-offs before note-ons, so re-struck notes sound."""
    return (event.time, 0 if event.kind is Kind.NOTE_OFF else 1)


def sorted_events(events: Iterable[Event]) -> list[Event]:
    return sorted(events, key=sort_key)
