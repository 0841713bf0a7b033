"""The notes the overlay draws: the performer's, the machine's, and the machine's planned ones.

:class:`NoteBoard` runs on the engine thread (through the visual observer) and keeps a
fixed table of the most recent notes, each a row ``(on_s, off_s, pitch, who, velocity)``
on the system's monotonic clock in seconds (``off_s`` is +inf while a note sounds or has
no planned end yet).  ``who`` says whose note it is: the performer's, the machine's, or the
machine's **planned**: scheduled by a partner but not yet played.  Planned notes come from
the engine's ``plan`` publication (the events a plugin handed the scheduler with a future
time), turn into the machine's played notes when the note-on goes out, and vanish when
their plan is cancelled (``plan.cancel``) or everything is released (CC 123).

The table is a flat float64 vector: the observer copies it into a latest-value mailbox
(a few kilobytes, microseconds, never waiting), and the renderer draws whatever is newest.
Offline renders fill the same board from a session's events and plans as recorded
during the render (:class:`SessionLog`).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from ..kernel.events import PERFORMER, Event, Kind

CAPACITY = 160  # rows: a few seconds of dense two-handed playing plus the machine's plans
ON, OFF, PITCH, WHO, VELOCITY = range(5)
COLUMNS = 5
SIZE = CAPACITY * COLUMNS
PERFORMER_NOTE, MACHINE_NOTE, PLANNED_NOTE = 0.0, 1.0, 2.0
EMPTY = -1.0
NS = 1e9


class NoteBoard:
    """Engine-side note table; ``changed`` tells the observer when to copy it out."""

    def __init__(self) -> None:
        self.rows = np.zeros((CAPACITY, COLUMNS))
        self.rows[:, WHO] = EMPTY
        self._next = 0
        self._sounding: dict[tuple[bool, int, int], int] = {}  # (machine, channel, pitch) -> row
        # tag -> {(channel, pitch): row}: by plan, so cancelling one costs only its own notes
        self._planned: dict[int, dict[tuple[int, int], int]] = {}
        self._owner: dict[int, tuple[dict, tuple, int | None]] = {}  # row -> (table, key, tag) pointing at it
        self.changed = False

    def vector(self) -> np.ndarray:
        return self.rows.ravel()

    def _row(self, on_s: float, pitch: int, who: float, velocity: int) -> int:
        r = self._next
        self._next = (r + 1) % CAPACITY
        owner = self._owner.pop(r, None)
        if owner is not None:  # the oldest row is reused: forget what pointed at it
            table, key, tag = owner
            if table.get(key) == r:
                del table[key]
            if tag is not None and not table and self._planned.get(tag) is table:
                del self._planned[tag]
        self.rows[r] = (on_s, math.inf, pitch, who, velocity)
        return r

    # -- what happened ------------------------------------------------------------------------
    def observe(self, inputs: Iterable[Event], outputs: Iterable[Event], now_s: float) -> None:
        """One engine tick: the performer's notes from ``inputs``, the machine's from ``outputs``
        (the performer's own notes sent on by ``thru`` are not counted twice).  An all-notes-off
        going out (a panic, a preset switch, the stop) ends every note and drops every plan:
        the engine has emptied its schedule."""
        for e in inputs:
            if e.voice == PERFORMER:
                self._note(e, now_s, machine=False)
        for e in outputs:
            if e.kind is Kind.CONTROL:
                if e.control in (120, 123):
                    self.release(now_s)
            elif e.voice != PERFORMER:
                self._note(e, now_s, machine=True)

    def _note(self, e: Event, now_s: float, machine: bool) -> None:
        rows = self.rows
        kind = e.kind
        if kind is Kind.NOTE_ON and e.velocity > 0:
            key = (machine, e.channel, e.note)
            r = None
            plan = self._planned.get(e.tag) if machine else None
            if plan is not None:
                r = plan.pop((e.channel, e.note), None)
                if not plan:
                    del self._planned[e.tag]
            if r is not None and rows[r, WHO] == PLANNED_NOTE:
                rows[r, ON], rows[r, WHO] = now_s, MACHINE_NOTE
            else:
                r = self._row(now_s, e.note, MACHINE_NOTE if machine else PERFORMER_NOTE, e.velocity)
            self._sounding[key] = r
            self._owner[r] = (self._sounding, key, None)
            self.changed = True
        elif kind is Kind.NOTE_OFF or (kind is Kind.NOTE_ON and e.velocity == 0):
            r = self._sounding.pop((machine, e.channel, e.note), None)
            if r is not None:
                rows[r, OFF] = now_s
                self._owner.pop(r, None)
                self.changed = True

    def release(self, now_s: float) -> None:
        """All notes off: sounding notes end now, plans go."""
        for r in self._sounding.values():
            self.rows[r, OFF] = now_s
            self._owner.pop(r, None)
        self._sounding.clear()
        for tag in list(self._planned):
            self.cancel(tag)
        self.changed = True

    # -- what the machine means to do -------------------------------------------------------------
    def planned(self, events: Sequence[Event], engine_now: int, now_s: float) -> None:
        """Events a plugin handed the scheduler at engine time ``engine_now``; those still in
        the future are the machine's plans (the performer's own notes are not)."""
        rows = self.rows
        for e in events:
            if e.time <= engine_now or e.voice == PERFORMER:
                continue
            at = now_s + (e.time - engine_now) / NS
            key = (e.channel, e.note)
            if e.kind is Kind.NOTE_ON and e.velocity > 0:
                r = self._row(at, e.note, PLANNED_NOTE, e.velocity)
                plan = self._planned.setdefault(e.tag, {})
                plan[key] = r
                self._owner[r] = (plan, key, e.tag)
                self.changed = True
            elif e.kind is Kind.NOTE_OFF or e.kind is Kind.NOTE_ON:
                r = self._planned.get(e.tag, {}).get(key)
                if r is not None:
                    rows[r, OFF] = at
                    self.changed = True

    def cancel(self, tag: int) -> None:
        """A plan was dropped: its notes that have not started disappear."""
        plan = self._planned.pop(tag, None)
        if not plan:
            return
        for r in plan.values():
            if self.rows[r, WHO] == PLANNED_NOTE:
                self.rows[r, WHO] = EMPTY
                self._owner.pop(r, None)
        self.changed = True


class BoardReplay:
    """A board filled offline, in time order, from a session's events and its plan log.

    ``plans`` are ``(engine_time, "plan", events)`` and ``(engine_time, "plan.cancel", tag)``
    as recorded by :class:`SessionLog` during the offline render (times in the events' ns).
    Their order at equal times does not matter: a plan's notes due at once are sent in the
    same tick and are no plans."""

    def __init__(self, events: Sequence[Event], plans: Sequence[tuple[int, str, object]] = ()) -> None:
        steps: list[tuple[int, int, str, object]] = [(e.time, 1, "event", e) for e in events]
        steps += [(t, 0, kind, value) for t, kind, value in plans]
        steps.sort(key=lambda s: (s[0], s[1]))
        self.steps = steps
        self.board = NoteBoard()
        self._i = 0

    def until(self, t: int) -> NoteBoard:
        """The board with everything up to engine time ``t`` applied (times in seconds = ns / 1e9)."""
        board = self.board
        while self._i < len(self.steps) and self.steps[self._i][0] <= t:
            when, _, kind, value = self.steps[self._i]
            self._i += 1
            if kind == "event":
                e: Event = value  # type: ignore[assignment]
                if e.voice == PERFORMER and e.kind is not Kind.CONTROL:
                    board.observe([e], (), when / NS)
                else:
                    board.observe((), [e], when / NS)
            elif kind == "plan":
                board.planned(value, when, when / NS)  # type: ignore[arg-type]
            elif kind == "plan.cancel":
                board.cancel(value)  # type: ignore[arg-type]
        return board


class SessionLog:
    """An engine observer for offline renders: the notes as the engine saw them (the
    performer's in, the machine's out, voices and plan tags kept, unlike a MIDI file) and
    what it published about plans (``plan``: ``(now, events)``; ``plan.cancel``:
    ``(now, tag)``), so a demo's overlay shows the machine's real plans (see :class:`BoardReplay`)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.plans: list[tuple[int, str, object]] = []

    def observe(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None:
        self.events += [e for e in inputs if e.voice == PERFORMER and e.kind is not Kind.CONTROL]
        self.events += [e for e in outputs if e.voice != PERFORMER or (e.kind is Kind.CONTROL and e.control in (120, 123))]

    def publish(self, key: str, value: object) -> None:
        if key == "plan":
            engine_now, events = value  # type: ignore[misc]
            self.plans.append((engine_now, "plan", list(events)))
        elif key == "plan.cancel":
            engine_now, tag = value  # type: ignore[misc]
            self.plans.append((engine_now, "plan.cancel", tag))
