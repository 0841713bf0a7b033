"""Accompanist: a second voice (a bass line, or a counter-melody) beside the performer.

It plays on the tempo grid (``grid`` beats apart, from ``ctx.tempo``): the rhythm comes from
the grid (each point gets a note with probability ``density``, held for ``legato`` of the
gap), the pitches and velocities from the model, which has heard everything the performer
played.  A bar or so is planned ahead; each performer note-on makes the notes that have
not started yet stale, and they are sampled again from the new state, so the line follows
the harmony.  The grid is the preset's tempo (a DAW's clock when following one), or,
without an external clock, anchored to the performer's first note (``anchor: auto``), so a
player without a click is not fought by an offset grid.  After ``stop_after`` bars without
the performer it rests, and starts again with them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

from ...events import NS_PER_S, Event
from ...tempo import Tempo
from ..base import Param
from .common import LinePartner, Note, common_params, drop_unstarted, melodic_params
from .track import Step, Track, hear_all

NS = NS_PER_S
CONSONANT_WINDOW_NS = 150_000_000  # a grid note this soon after a performer note sounds against it


class Accompanist(LinePartner):
    name = "accompanist"
    summary = "a second voice (bass or counter-melody) on the tempo grid, steered by the performer"
    params = common_params("chorale-harmony", channel=5, low="C2", high="G3", temperature=0.8) + melodic_params(0.5) + (
        Param("grid", 1.0, min=0.125, max=8.0, doc="beats between the voice's notes"),
        Param("legato", 0.9, min=0.1, max=1.0, doc="how much of the gap each note is held"),
        Param("density", 1.0, min=0.0, max=1.0, doc="share of grid points that get a note"),
        Param("horizon", 4.0, min=0.5, max=32.0, doc="beats planned ahead"),
        Param("anchor", "auto", choices=("auto", "tempo", "first_note"), doc="grid from the tempo, or from the performer's first note; auto: tempo when following a MIDI clock"),
        Param("stop_after", 2.0, min=0.0, max=64.0, doc="rest after this many bars without a performer note (0: never)"),
        Param("consonant", True, doc="a note starting right after a performer note is a 3rd, 5th, 6th or octave from the notes they hold"),
    )

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self.forget()

    def forget(self) -> None:
        self._anchor: int | None = None  # grid origin (first_note mode); None: not playing
        self._playing = False
        self._notes: list[Note] = []
        self._plan_to = 0  # first grid point not planned yet
        self._requested = False
        self._last_on = 0
        self._held: set[int] = set()  # performer notes sounding

    # -- the grid ---------------------------------------------------------------------------
    def tempo(self) -> Tempo:
        tempo = self.ctx.tempo if self.ctx is not None else None
        if tempo is None:
            tempo = self._fallback_tempo = getattr(self, "_fallback_tempo", None) or Tempo(120.0)
        return tempo

    def _on_tempo_grid(self) -> bool:
        if self.anchor == "tempo":  # type: ignore[attr-defined]
            return True
        if self.anchor == "first_note":  # type: ignore[attr-defined]
            return False
        return getattr(self.tempo(), "source", "internal") == "midi"

    def next_point(self, t: int) -> int:
        """The first grid point at or after ``t``."""
        tempo = self.tempo()
        grid = self.grid  # type: ignore[attr-defined]
        if self._on_tempo_grid() or self._anchor is None:
            k = math.ceil(tempo.beat_at(t) / grid - 1e-9)
            point = tempo.time_of_beat(k * grid)
            return point if point >= t else tempo.time_of_beat((k + 1) * grid)
        step = grid * tempo.beat_ns
        k = math.ceil((t - self._anchor) / step - 1e-9)
        return self._anchor + int(round(k * step))

    def points(self, start: int, count: int) -> list[int]:
        out = [self.next_point(start)]
        while len(out) < count + 1:
            out.append(self.next_point(out[-1] + 1))
        return out

    # -- the plugin -------------------------------------------------------------------------
    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        heard = self.hear_events(events)
        onsets = [t for t, _, v in heard if v > 0]
        for _, pitch, velocity in heard:
            (self._held.add if velocity else self._held.discard)(pitch)
        if onsets:
            if self._playing and self._rest_at() <= now:
                self._stop()  # it had already come to rest: start afresh with the performer
            if not self._playing:
                self._playing = True
                self._anchor = onsets[0]
                start = onsets[0] if not self._on_tempo_grid() else self.next_point(now)
                start = max(start, now)
            else:
                self._drop_stale(now)
                start = self.next_point(now + 1)
            self._last_on = onsets[-1]
            self._plan(start, now, hear_all(heard))
        elif heard:
            self.submit(hear_all(heard), None, fresh_only=False)
        if not self._requested and self._playing and self._plan_to - self._lead() <= now and not self._pending:
            if self._rest_at() <= self._plan_to:
                self._stop()
            else:
                self._plan(self._plan_to, now, None)
        return self.take_pending()

    def _stop(self) -> None:
        self._playing = False
        self._anchor = None
        self._notes = [n for n in self._notes if n.off > self._last_on]

    def _rest_at(self) -> int:
        """No note starts at or after this: ``stop_after`` bars after the performer's last note."""
        bars = self.stop_after  # type: ignore[attr-defined]
        if bars <= 0:
            return 2**62
        return self._last_on + int(bars * self.tempo().bar_ns)

    def _lead(self) -> int:
        return int(self.horizon * self.tempo().beat_ns / 2)  # type: ignore[attr-defined]

    def _drop_stale(self, now: int) -> None:
        self._notes = drop_unstarted(self._notes, now, self.ctx.cancel)  # type: ignore[union-attr]
        self._gen += 1

    def _plan(self, start: int, now: int, feed) -> None:
        count = max(1, int(round(self.horizon / self.grid)))  # type: ignore[attr-defined]
        points = self.points(start, count)
        legato = self.legato  # type: ignore[attr-defined]
        rest = self._rest_at()
        pairs = [(on, nxt) for on, nxt in zip(points, points[1:]) if on < rest]
        onsets = [on for on, _ in pairs]
        ends = [on + max(1, int((nxt - on) * legato)) for on, nxt in pairs]
        self._plan_to = points[-1]
        constraints = self.constraints()
        density = self.density  # type: ignore[attr-defined]
        first = None
        if self.consonant and self._held and onsets and onsets[0] - now <= CONSONANT_WINDOW_NS:  # type: ignore[attr-defined]
            pcs = set(range(12)) if constraints.pitch_classes is None else set(constraints.pitch_classes)
            for held in self._held:
                pcs &= {(held + i) % 12 for i in (0, 3, 4, 7, 8, 9)}
            if pcs:
                first = replace(constraints, pitch_classes=frozenset(pcs))

        def work(track: Track) -> list[Step]:
            if feed is not None:
                feed(track)
                track.cut(now, keep_sounding=True)
            return track.plan_grid(onsets, ends, constraints, density, first)

        self._requested = True

        def done(steps: list[Step]) -> None:
            self._requested = False
            self._notes += self.queue_plan(steps)

        self.submit(work, done)

    def next_wakeup(self) -> int | None:
        if self._pending:
            return 0
        if not self._playing or self._requested:
            return None
        return self._plan_to - self._lead()
