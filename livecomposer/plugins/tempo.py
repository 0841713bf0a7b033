"""Lead the DAW: MIDI clock, start and stop from our own tempo; and tap tempo from a key or pedal.

``clock_leader`` sends START on a bar line, then 24 CLOCK ticks per beat placed on the shared
tempo grid (``ctx.tempo``), so a DAW slaved to us plays in time with what our plugins
generate, and follows tempo changes at once.  Ticks are handed to the scheduler a little
ahead of time (``horizon_ms``) as future-timed events, so the scheduler's precise send loop
sets their timing, not this plugin's wake-ups.  Use it as a parallel layer: it emits only
clock messages and passes nothing through.  STOP is the engine's job: its scheduler sends it
on every way out (stop, panic, preset switch) when a START went out.

``tap_tempo`` turns a chosen note or CC (a spare key, a footswitch) into tempo taps and
swallows it, passing everything else through: use it first in a chain.
"""

from __future__ import annotations

import math
from typing import Sequence

from ..kernel.events import Event, Kind
from ..kernel.tempo import TICKS_PER_BEAT, Tempo
from ..kernel.plugin import Param, Plugin, PluginContext


class ClockLeader(Plugin):
    name = "clock_leader"
    summary = "send MIDI clock (24 per beat), start and stop to the DAW from our tempo"
    horizon_ms = Param(default=20.0, min=1.0, max=200.0, doc="how far ahead ticks are scheduled", live=False)
    start_on = Param(default="bar", choices=("bar", "beat", "now"), doc="where the DAW's song starts")

    def prepare(self, ctx: PluginContext) -> None:
        super().prepare(ctx)
        if ctx.tempo is None:
            ctx.tempo = Tempo()
        self.tempo: Tempo = ctx.tempo
        self._tick: int | None = None  # index (on our grid, 24 per beat) of the next tick to send
        self._last_time: int | None = None  # time of the last tick handed out
        self.sent_ticks = 0

    @property
    def _horizon(self) -> int:
        return int(self.horizon_ms * 1_000_000)

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        out: list[Event] = []
        tempo = self.tempo
        until = now + self._horizon
        if self._tick is None:
            beat = tempo.beat_at(now + self._horizon)
            step = {"bar": tempo.beats_per_bar, "beat": 1, "now": 1 / TICKS_PER_BEAT}[self.start_on]
            start_beat = math.ceil(beat / step - 1e-9) * step
            self._tick = round(start_beat * TICKS_PER_BEAT)
        while True:
            t = self._tick_time(self._tick)
            if t > until:
                break
            if self._last_time is None:
                out.append(Event(Kind.START, max(t, now)))
            t = max(t, now)
            out.append(Event(Kind.CLOCK, t))
            self._last_time = t
            self._tick += 1
            self.sent_ticks += 1
        return out

    def _tick_time(self, index: int) -> int:
        """Grid time of tick ``index``; if the grid jumped back (a tap re-phased it), skip
        ahead rather than burst, so the DAW never sees a sudden tempo spike."""
        t = self.tempo.time_of_beat(index / TICKS_PER_BEAT)
        last = self._last_time
        if last is not None:
            half = self.tempo.beat_ns // (2 * TICKS_PER_BEAT)
            if t < last + half:
                self._tick = math.floor(self.tempo.beat_at(last + half) * TICKS_PER_BEAT) + 1
                t = self.tempo.time_of_beat(self._tick / TICKS_PER_BEAT)
        return t

    def next_wakeup(self) -> int | None:
        if self._tick is None:
            return 0  # as soon as possible (any past time means: now)
        return self.tempo.time_of_beat(self._tick / TICKS_PER_BEAT) - self._horizon

    def reset(self) -> None:
        """The engine released everything (panic), which also sent the DAW a STOP (the
        scheduler does that for every way out): start it again on our next bar line."""
        self._tick = None
        self._last_time = None


class TapTempo(Plugin):
    name = "tap_tempo"
    summary = "tap the tempo on a spare key (note) or footswitch (cc); the taps are not played"
    note = Param(default=-1, min=-1, max=127, doc="tap note number (-1: none)")
    cc = Param(default=-1, min=-1, max=127, doc="tap controller number (-1: none); values >= 64 tap")
    channel = Param(default=-1, min=-1, max=15, doc="only this channel (-1: any)")

    def prepare(self, ctx: PluginContext) -> None:
        super().prepare(ctx)
        if ctx.tempo is None:
            ctx.tempo = Tempo()
        self._pedal_down = False

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        out = []
        tempo: Tempo = self.ctx.tempo  # type: ignore[union-attr]
        for e in events:
            if self.channel >= 0 and e.channel != self.channel and e.kind in (Kind.NOTE_ON, Kind.NOTE_OFF, Kind.CONTROL):
                out.append(e)
                continue
            if self.note >= 0 and e.is_note and e.note == self.note:
                if e.kind is Kind.NOTE_ON:
                    tempo.tap(e.time)
                continue
            if self.cc >= 0 and e.kind is Kind.CONTROL and e.control == self.cc:
                down = e.value >= 64
                if down and not self._pedal_down:
                    tempo.tap(e.time)
                self._pedal_down = down
                continue
            out.append(e)
        return out


class GridQuantize(Plugin):
    """Put generated notes on the beat grid (``ctx.tempo``): each note-on moves to the
    nearest grid point (by ``strength``; 1 = exactly on it), never into the past; its
    note-off moves by the same amount, so the note keeps its length.  By default only
    machine voices are moved: what the performer plays is never delayed."""

    name = "grid_quantize"
    summary = "move generated notes onto the tempo grid (e.g. 16ths), keeping their lengths"
    grid = Param(default=0.25, min=1 / 64, max=4.0, doc="grid in beats: 0.25 = 16ths, 0.5 = 8ths, 1/3 = 8th triplets")
    strength = Param(default=1.0, min=0.0, max=1.0, doc="how far towards the grid point (0: off, 1: exactly on it)")
    performer = Param(default=False, doc="also move what the performer plays (delays it!)")

    def prepare(self, ctx: PluginContext) -> None:
        super().prepare(ctx)
        if ctx.tempo is None:
            ctx.tempo = Tempo()
        self._shift: dict[tuple[int, int, int], int] = {}  # (voice, channel, note) -> ns moved

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        tempo: Tempo = self.ctx.tempo  # type: ignore[union-attr]
        out = []
        for e in events:
            if not e.is_note or (e.voice == 0 and not self.performer):
                out.append(e)
                continue
            key = (e.voice, e.channel, e.note)
            if e.kind is Kind.NOTE_ON:
                target = tempo.quantize(e.time, self.grid)
                t = e.time + int(round(self.strength * (target - e.time)))
                if t < now:  # never into the past: the next grid point instead
                    t = max(now, tempo.time_of_beat(math.ceil(tempo.beat_at(now) / self.grid - 1e-9) * self.grid))
                self._shift[key] = t - e.time
                out.append(e.at(t))
            else:
                shift = self._shift.pop(key, 0)
                out.append(e.at(max(now, e.time + shift)))
        return out

    def reset(self) -> None:
        self._shift.clear()
