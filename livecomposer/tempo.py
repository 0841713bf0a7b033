"""Tempo: where the beats and bars fall, from the preset's BPM, tap tempo, or a DAW's MIDI clock.

Plugins ask ``ctx.tempo`` for phrase boundaries (``next_bar``), beat positions and a quantize
grid.  The tempo is one straight line from time to beat position ("the map"), re-anchored
whenever the tempo changes so the beat position never jumps.  The map is one immutable
tuple swapped in a single assignment, so another thread (status screen, Link poller) always
reads a consistent map without locks.

Following a DAW's clock (24 ticks per quarter note): a tick's time is noisy (USB, drivers,
the DAW's own timer) and sometimes wrong (a late burst, a lost tick).  We fit a straight
line, tick index -> time, through the last ``window`` ticks by least squares, with running
sums so each tick costs O(1).  A tick far off the line (many times the typical residual)
is left out of the fit; a run of such ticks means the tempo really changed, and the fit
restarts from them.  The slope is the tempo; the line also gives the phase.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .events import NS_PER_S, Event, Kind

TICKS_PER_BEAT = 24
MIN_BPM = 20.0
MAX_BPM = 400.0
SOURCES = ("internal", "midi", "link")


def bpm_to_beat_ns(bpm: float) -> float:
    return 60.0 * NS_PER_S / bpm


@dataclass(frozen=True, slots=True)
class TempoMap:
    """Beat position ``beat0`` at time ``t0``, then ``beat_ns`` nanoseconds per beat."""

    t0: int
    beat0: float
    beat_ns: float

    def beat_at(self, t: int) -> float:
        return self.beat0 + (t - self.t0) / self.beat_ns

    def time_of(self, beat: float) -> int:
        return self.t0 + int(round((beat - self.beat0) * self.beat_ns))


class ClockFollower:
    """Estimates tick period and phase from MIDI clock tick times (robust line fit)."""

    def __init__(
        self,
        window: int = 48,
        outlier_factor: float = 6.0,
        floor_ns: int = 3_000_000,
        period_fraction: float = 0.45,
        relock_after: int = 3,
    ) -> None:
        if window < 4:
            raise ValueError("clock window must be at least 4 ticks")
        self.window = window
        self.outlier_factor = outlier_factor
        self.floor_ns = floor_ns  # never call a residual below this an outlier (USB and driver jitter)
        self.period_fraction = period_fraction  # ... nor one below this fraction of a tick
        self.relock_after = relock_after
        self.ticks = 0  # ticks seen in total
        self.outliers = 0  # ticks left out of the fit
        self.relocks = 0  # fits restarted after a tempo jump
        self._reset_fit()

    def _reset_fit(self) -> None:
        self._points: deque[tuple[int, int]] = deque()  # (tick index, time ns) in the fit
        self._ref_n = 0
        self._ref_t = 0
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._since_rebase = 0
        self._scale = 0.0  # typical |residual| in ns (running mean)
        self._suspects: list[tuple[int, int]] = []

    def clear(self) -> None:
        """Forget the fit (after a stop or a song position jump); keep the counters."""
        self._reset_fit()

    # -- running least squares ----------------------------------------------------------
    def _add(self, n: int, t: int) -> None:
        x = float(n - self._ref_n)
        y = float(t - self._ref_t)
        self._sx += x
        self._sy += y
        self._sxx += x * x
        self._sxy += x * y
        self._points.append((n, t))

    def _remove_oldest(self) -> None:
        n, t = self._points.popleft()
        x = float(n - self._ref_n)
        y = float(t - self._ref_t)
        self._sx -= x
        self._sy -= y
        self._sxx -= x * x
        self._sxy -= x * y

    def _rebase(self) -> None:
        """Recompute the sums around the oldest point: keeps float error from piling up."""
        points = list(self._points)
        self._points.clear()
        self._sx = self._sy = self._sxx = self._sxy = 0.0
        if points:
            self._ref_n, self._ref_t = points[0]
        for n, t in points:
            self._add(n, t)
        self._since_rebase = 0

    def fit(self) -> tuple[float, float] | None:
        """(period ns per tick, fitted time of tick index ``ref``) as (slope, intercept at ref)."""
        m = len(self._points)
        if m < 2:
            return None
        den = m * self._sxx - self._sx * self._sx
        if den <= 0:
            return None
        slope = (m * self._sxy - self._sx * self._sy) / den
        if slope <= 0:
            return None
        intercept = (self._sy - slope * self._sx) / m
        return slope, intercept

    def predict(self, n: int) -> float | None:
        f = self.fit()
        if f is None:
            return None
        slope, intercept = f
        return self._ref_t + intercept + slope * (n - self._ref_n)

    def period_ns(self) -> float | None:
        f = self.fit()
        return None if f is None else f[0]

    @property
    def points(self) -> int:
        return len(self._points)

    # -- one tick -----------------------------------------------------------------------
    def add_tick(self, n: int, t: int) -> None:
        """Tick number ``n`` (counted from the song start) arrived at time ``t``."""
        self.ticks += 1
        if not self._points:
            self._ref_n, self._ref_t = n, t
        fit = self.fit() if len(self._points) >= 3 else None
        if fit is not None:
            slope, intercept = fit
            residual = t - (self._ref_t + intercept + slope * (n - self._ref_n))
            # A tick is an outlier only if it is off by much more than the typical residual
            # AND by a good part of a tick: MIDI through JACK arrives once per audio period,
            # so residuals of a whole period (2.7 ms at 128 frames) are normal, not outliers.
            limit = max(self.floor_ns, self.outlier_factor * self._scale, self.period_fraction * slope)
            r = abs(residual)
            self._scale = r if self._scale == 0.0 else self._scale + (min(r, 2.0 * limit) - self._scale) / 32.0
            if r > limit:
                self.outliers += 1
                self._suspects.append((n, t))
                if len(self._suspects) >= self.relock_after:
                    # Not noise: the tempo changed (or ticks were lost).  Refit from the suspects.
                    suspects = self._suspects
                    self._reset_fit()
                    self._ref_n, self._ref_t = suspects[0]
                    for sn, st in suspects:
                        self._add(sn, st)
                    self.relocks += 1
                return
            self._suspects.clear()
        self._add(n, t)
        while len(self._points) > self.window:
            self._remove_oldest()
        self._since_rebase += 1
        if self._since_rebase >= self.window:
            self._rebase()


class Tempo:
    """The beat grid every plugin shares; also follows tap tempo or an external MIDI clock.

    Construct with ``Tempo(bpm=120, beats_per_bar=4, source="internal")`` or from the
    preset's clock section with :meth:`from_config`.  The engine feeds MIDI clock events
    to :meth:`observe_clock` on the engine thread (used only when ``source == "midi"``).
    """

    def __init__(
        self,
        bpm: float = 120.0,
        beats_per_bar: int = 4,
        source: str = "internal",
        origin: int = 0,
        window: int = 48,
    ) -> None:
        if source not in SOURCES:
            raise ValueError(f"clock source must be one of {', '.join(SOURCES)}; got {source!r}")
        _check_bpm(bpm)
        if not isinstance(beats_per_bar, int) or beats_per_bar < 1:
            raise ValueError(f"beats_per_bar must be a whole number >= 1; got {beats_per_bar!r}")
        self.source = source
        self.beats_per_bar = beats_per_bar
        self.map = TempoMap(origin, 0.0, bpm_to_beat_ns(bpm))
        # Internal and Link time run from the start; a followed clock runs once the DAW starts.
        self.running = source != "midi"
        self.follower = ClockFollower(window=window)
        self._next_tick = 0  # index of the next MIDI clock tick (24 per beat from song start)
        self._taps: deque[int] = deque(maxlen=9)
        self.tap_timeout_ns = 2 * NS_PER_S

    @classmethod
    def from_config(cls, clock: Any = None, origin: int = 0) -> "Tempo":
        """From the preset's ``clock`` section (a mapping or an object with ``source``, ``bpm``,
        optional ``beats_per_bar``); missing fields take the defaults (internal, 120, 4)."""
        if clock is None:
            return cls(origin=origin)

        def get(key: str, default: Any) -> Any:
            if isinstance(clock, Mapping):
                return clock.get(key, default)
            return getattr(clock, key, default)

        bpm = get("bpm", 120.0)
        return cls(
            bpm=float(bpm) if bpm is not None else 120.0,
            beats_per_bar=int(get("beats_per_bar", 4) or 4),
            source=str(get("source", "internal") or "internal"),
            origin=origin,
        )

    # -- reading ----------------------------------------------------------------------------
    @property
    def bpm(self) -> float:
        return 60.0 * NS_PER_S / self.map.beat_ns

    @property
    def beat_ns(self) -> int:
        return int(round(self.map.beat_ns))

    @property
    def bar_ns(self) -> int:
        return int(round(self.map.beat_ns * self.beats_per_bar))

    def beat_at(self, t: int) -> float:
        """Beat position at time ``t`` (beat 0 = the origin or the DAW's song start)."""
        return self.map.beat_at(t)

    def bar_at(self, t: int) -> float:
        return self.map.beat_at(t) / self.beats_per_bar

    def time_of_beat(self, beat: float) -> int:
        return self.map.time_of(beat)

    def next_beat(self, t: int) -> int:
        """Time of the first beat at or after ``t``."""
        return self._next_multiple(t, 1.0)

    def next_bar(self, t: int) -> int:
        """Time of the first bar line (downbeat) at or after ``t``."""
        return self._next_multiple(t, float(self.beats_per_bar))

    def quantize(self, t: int, grid: float = 0.25) -> int:
        """Nearest grid point to ``t``; ``grid`` in beats (0.25 = sixteenths, 1/3 = eighth triplets)."""
        if grid <= 0:
            return t
        m = self.map
        return m.time_of(round(m.beat_at(t) / grid) * grid)

    def _next_multiple(self, t: int, step: float) -> int:
        m = self.map
        b = m.beat_at(t)
        target = math.ceil(b / step - 1e-9) * step
        time = m.time_of(target)
        if time < t:  # rounding put it a nanosecond early
            time = m.time_of(target + step)
        return time

    # -- internal tempo -------------------------------------------------------------------
    def set_bpm(self, bpm: float, at: int) -> None:
        """Change tempo at time ``at`` without moving the beat position there."""
        _check_bpm(bpm)
        m = self.map
        self.map = TempoMap(at, m.beat_at(at), bpm_to_beat_ns(bpm))

    def tap(self, t: int) -> float | None:
        """A tap on the beat at time ``t`` (from a note or CC).  From the second tap on, the
        tempo becomes the median of the recent intervals and the tap lands on a beat.
        Returns the new BPM, or None (first tap, or a followed clock owns the tempo)."""
        if self.source != "internal":
            return None
        if self._taps and (t - self._taps[-1] > self.tap_timeout_ns or t <= self._taps[-1]):
            self._taps.clear()
        self._taps.append(t)
        if len(self._taps) < 2:
            return None
        taps = list(self._taps)
        intervals = sorted(b - a for a, b in zip(taps, taps[1:]))
        mid = len(intervals) // 2
        median = intervals[mid] if len(intervals) % 2 else (intervals[mid - 1] + intervals[mid]) / 2
        bpm = min(MAX_BPM, max(MIN_BPM, 60.0 * NS_PER_S / median))
        beat = round(self.map.beat_at(t))  # the tap is a beat: snap the phase to it
        self.map = TempoMap(t, float(beat), bpm_to_beat_ns(bpm))
        return bpm

    # -- external MIDI clock ------------------------------------------------------------------
    def observe(self, events: Iterable[Event]) -> None:
        """Feed any events; the clock ones are used (convenience for plugins and tests)."""
        for event in events:
            if event.kind in _CLOCK_KINDS:
                self.observe_clock(event)

    def observe_clock(self, event: Event) -> None:
        """One MIDI clock/start/stop/continue/song-position event, in arrival order.

        Ignored unless ``source == "midi"``.  START: the next tick is the song's beat 0.
        SONG_POSITION (16ths): where the next CONTINUE resumes.  STOP: ``running`` False;
        the grid keeps free-running at the last tempo so phrase boundaries still exist.
        """
        if self.source != "midi":
            return
        kind = event.kind
        if kind is Kind.CLOCK:
            n = self._next_tick
            self._next_tick = n + 1
            f = self.follower
            f.add_tick(n, event.time)
            fit = f.fit()
            if not self.running:
                # Many DAWs send clock with the transport stopped: follow the tempo, not the phase.
                if fit is not None and MIN_BPM <= 60.0 * NS_PER_S / (fit[0] * TICKS_PER_BEAT) <= MAX_BPM:
                    m = self.map
                    self.map = TempoMap(event.time, m.beat_at(event.time), fit[0] * TICKS_PER_BEAT)
                return
            if fit is None:
                # First tick after START/CONTINUE: it marks the beat position; keep the tempo.
                self.map = TempoMap(event.time, n / TICKS_PER_BEAT, self.map.beat_ns)
                return
            period = fit[0]
            bpm = 60.0 * NS_PER_S / (period * TICKS_PER_BEAT)
            if not MIN_BPM <= bpm <= MAX_BPM:
                return
            last_n = f._points[-1][0]
            t_last = f.predict(last_n)
            assert t_last is not None
            self.map = TempoMap(int(round(t_last)), last_n / TICKS_PER_BEAT, period * TICKS_PER_BEAT)
        elif kind is Kind.START:
            self._next_tick = 0
            self.follower.clear()
            self.running = True
        elif kind is Kind.CONTINUE:
            self.follower.clear()
            self.running = True
        elif kind is Kind.STOP:
            self.running = False
        elif kind is Kind.SONG_POSITION:
            self._next_tick = event.value * (TICKS_PER_BEAT // 4)
            self.follower.clear()

    @property
    def clock_locked(self) -> bool:
        """A followed clock has enough ticks in its fit to trust the tempo (half a beat)."""
        return self.source == "midi" and self.running and self.follower.points >= TICKS_PER_BEAT // 2

    def describe(self) -> str:
        """One line for the status screen: '120.0 BPM 4/4 internal' / '97.9 BPM midi (locked)'."""
        state = ""
        if self.source == "midi":
            if self.follower.ticks == 0:
                state = " (waiting for clock)"
            elif not self.running:
                state = " (stopped)"
            else:
                state = " (locked)" if self.clock_locked else " (locking)"
        return f"{self.bpm:.1f} BPM {self.beats_per_bar}/4 {self.source}{state}"

    def __repr__(self) -> str:
        return f"<Tempo {self.describe()}>"


_CLOCK_KINDS = frozenset({Kind.CLOCK, Kind.START, Kind.STOP, Kind.CONTINUE, Kind.SONG_POSITION})


def _check_bpm(bpm: float) -> None:
    if isinstance(bpm, bool) or not isinstance(bpm, (int, float)) or not MIN_BPM <= bpm <= MAX_BPM:
        raise ValueError(f"bpm must be a number from {MIN_BPM:g} to {MAX_BPM:g}; got {bpm!r}")
