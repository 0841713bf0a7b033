"""Timed output: a heap of future events, and the record of which notes are sounding.

Plugins return events stamped with the time they should sound; the scheduler holds them
until due.  At send time it keeps MIDI's note bookkeeping honest: a note-on for a note
that is already sounding is re-struck (note-off first), a note-off for a note that is not
sounding is dropped, and every sounding note is remembered so that any way out (stop,
panic, preset switch, a failed plugin, a cancelled plan) can release it.

Latency compensation (:meth:`Scheduler.compensate`, the preset's ``midi.output.latency_ms``
and ``delay_ms``) is applied here, where planned events are known ahead: a DAW or synth
with its own output latency hears the machine's notes (every event of a machine voice:
answers, accompaniment) that much earlier, never before "now"; a delay holds all output,
the performer's thru included, that much later.  MIDI clock we lead a DAW with is not a
voice's and is not moved early: its ticks are planned only a few ms ahead, and moving them
up to "now" would bunch them (a tempo wobble at the DAW).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from .events import PERFORMER, Event, Kind, control, note_off

ALL_NOTES_OFF = 123
ALL_SOUND_OFF = 120


@dataclass(order=True, slots=True)
class _Entry:
    time: int
    # When it was planned for, before compensation: events moved up to "now" together keep
    # their planned order (a note's off after its on), not note-offs first.
    planned: int
    order: int  # note-offs before anything else at the same instant
    seq: int
    event: Event = field(compare=False)


@dataclass(slots=True)
class SendStats:
    retriggered: int = 0  # note-on for an already sounding note: re-struck
    orphan_note_offs: int = 0  # note-off for a note that was not sounding: dropped


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._seq = itertools.count()
        self.held: dict[tuple[int, int], Event] = {}  # (channel, note) -> the note-on that sounds
        self.transport_running = False  # we sent MIDI start/continue: a way out must send stop
        self.stats = SendStats()
        self.early_ns = 0  # machine voices' events go out this much early (never before now)
        self.delay_ns = 0  # every event goes out this much late

    def compensate(self, latency_ms: float = 0.0, delay_ms: float = 0.0) -> None:
        """Send the machine's events ``latency_ms`` early and everything ``delay_ms`` late."""
        if latency_ms < 0 or delay_ms < 0:
            raise ValueError("latency_ms and delay_ms are >= 0")
        self.early_ns = round(latency_ms * 1_000_000)
        self.delay_ns = round(delay_ms * 1_000_000)

    # -- planning ---------------------------------------------------------------------
    def push(self, event: Event, now: int | None = None) -> None:
        """Hold ``event`` until due, compensated (:meth:`compensate`); ``now`` is the
        earliest a machine event moved early may go (None: no floor)."""
        planned = event.time
        if self.early_ns or self.delay_ns:
            due = planned + self.delay_ns
            if event.voice != PERFORMER:
                due -= self.early_ns
                if now is not None and due < now:
                    due = now
            if due != planned:
                event = event.at(due)
        order = 0 if event.kind is Kind.NOTE_OFF else 1
        heapq.heappush(self._heap, _Entry(event.time, planned, order, next(self._seq), event))

    def next_due(self) -> int | None:
        return self._heap[0].time if self._heap else None

    def pending(self) -> int:
        return len(self._heap)

    def pop_due(self, now: int) -> list[Event]:
        """Events due at or before ``now``, in time order, after note bookkeeping."""
        out: list[Event] = []
        heap = self._heap
        while heap and heap[0].time <= now:
            out.extend(self.admit(heapq.heappop(heap).event))
        return out

    # -- note bookkeeping at send time --------------------------------------------------
    def admit(self, event: Event) -> list[Event]:
        """What actually goes on the wire for ``event`` (zero, one or two messages)."""
        kind = event.kind
        if kind is Kind.NOTE_ON:
            key = (event.channel, event.note)
            previous = self.held.get(key)
            self.held[key] = event
            if previous is not None:
                self.stats.retriggered += 1
                return [note_off(event.time, event.note, event.channel, previous.voice, previous.tag), event]
            return [event]
        if kind is Kind.NOTE_OFF:
            if self.held.pop((event.channel, event.note), None) is None:
                self.stats.orphan_note_offs += 1
                return []
            return [event]
        if kind is Kind.START or kind is Kind.CONTINUE:
            self.transport_running = True
        elif kind is Kind.STOP:
            self.transport_running = False
        return [event]

    # -- cancelling and releasing ---------------------------------------------------------
    def cancel_tag(self, tag: int, now: int) -> list[Event]:
        """Drop the pending events of a plan; return note-offs for its notes already sounding."""
        self._heap = [entry for entry in self._heap if entry.event.tag != tag]
        heapq.heapify(self._heap)
        return self._release(now, lambda held: held.tag == tag)

    def cancel_voice(self, voice: int, now: int) -> list[Event]:
        """Silence one machine voice (its plugin failed): pending events dropped, notes released."""
        self._heap = [entry for entry in self._heap if entry.event.voice != voice]
        heapq.heapify(self._heap)
        return self._release(now, lambda held: held.voice == voice)

    def release_all(self, now: int, all_sound_off: bool = False) -> list[Event]:
        """Everything off: drop every pending event; note-offs for sounding notes, then CC 123
        (and CC 120 for a panic) on all 16 channels, because some synths ignore CC 123."""
        self._heap.clear()
        out = self._release(now, lambda held: True)
        if self.transport_running:  # the DAW we lead stops with us
            self.transport_running = False
            out.insert(0, Event(Kind.STOP, now))
        for channel in range(16):
            out.append(control(now, ALL_NOTES_OFF, 0, channel))
            if all_sound_off:
                out.append(control(now, ALL_SOUND_OFF, 0, channel))
        return out

    def _release(self, now: int, which) -> list[Event]:
        keys = [key for key, held in self.held.items() if which(held)]
        out = []
        for key in keys:
            held = self.held.pop(key)
            out.append(note_off(now, held.note, held.channel, held.voice, held.tag))
        return out
