"""Tempo: where the beats and bars fall, from the preset's BPM, tap tempo, or a DAW's MIDI clock.

Plugins ask ``ctx.tempo`` for phrase boundaries (``next_bar``), beat positions and a quantize
grid.  The tempo is one straight line from time to beat position ("the map"), re-anchored
whenever the tempo changes so the beat position never jumps.  The map is one immutable
tuple swapped in a single assignment, so another thread (status screen, Link poller) always
reads a consistent map without locks.

Following a DAW's clock (24 ticks per quarter note): a tick's time is noisy (USB, drivers,
the DAW's own timer) and sometimes wrong (a late burst, a lost tick).  We fit tick index ->
time through the last ``window`` ticks (three beats) by least squares: a straight line for
a steady tempo, a parabola when the tempo is visibly ramping (see :class:`ClockFollower`).
A tick far off the fit (many times the typical residual) is left out; a run of such ticks
means the tempo really changed, and the fit restarts from them.  The slope at the newest
tick is the tempo; the fitted time of that tick anchors the phase.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

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
    """Estimates tick period and phase from MIDI clock tick times (robust line or curve fit).

    Each tick, two least-squares fits run over the last ``window`` ticks (tick index ->
    time): a straight line (a steady tempo) and a parabola (a tempo ramp).  A line over a
    window lags a ramp by half the window; the parabola's slope at the newest tick does
    not, but is noisier.  So the parabola is used only when its curvature is significant
    (``curve_t`` standard errors from zero), which keeps steady-but-jittery clocks on the
    quieter line.  With the usual gap-free window the fits are fixed linear filters
    (precomputed per window length), so a tick costs a few small numpy operations.
    """

    def __init__(
        self,
        window: int = 72,
        outlier_factor: float = 6.0,
        floor_ns: int = 3_000_000,
        period_fraction: float = 0.45,
        relock_after: int = 3,
        curve_t: float = 3.0,
    ) -> None:
        if window < 6:
            raise ValueError("clock window must be at least 6 ticks")
        self.window = window
        self.outlier_factor = outlier_factor
        self.floor_ns = floor_ns  # never call a residual below this an outlier (USB and driver jitter)
        self.period_fraction = period_fraction  # ... nor one below this fraction of a tick
        self.relock_after = relock_after
        self.curve_t = curve_t
        self.ticks = 0  # ticks seen in total
        self.outliers = 0  # ticks left out of the fit
        self.relocks = 0  # fits restarted after a tempo jump
        self.curved = False  # the last fit was the parabola (a tempo ramp)
        self._filters: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}
        self._reset_fit()

    def _reset_fit(self) -> None:
        w = self.window
        # A linear buffer twice the window: the window is always a slice (a view, no copy);
        # when the end is reached the newest points move to the front (once per window).
        self._n = np.zeros(2 * w, dtype=np.int64)
        self._t = np.zeros(2 * w, dtype=np.float64)  # ns since self._base (exact below ~100 days)
        self._base = 0
        self._start = self._end = 0
        self._model: tuple[int, int, float, float, float] | None = None  # n_last, t_last, a0, a1, a2
        self._scale = 0.0  # typical |residual| in ns (running mean)
        self._suspects: list[tuple[int, int]] = []

    def clear(self) -> None:
        """Forget the fit (after a start or a song position jump); keep the counters."""
        self._reset_fit()

    @property
    def points(self) -> int:
        return self._end - self._start

    # -- fitting ---------------------------------------------------------------------------
    def _filter(self, m: int) -> tuple[np.ndarray, float]:
        """For x = -(m-1)..0, one stacked filter F (8 x m) so that F @ y gives at once the
        line (b0, b1), the parabola (c0, c1, c2) and V'y (for the parabola's residual);
        and (V'V)^-1[2,2] (for the curvature's standard error)."""
        cached = self._filters.get(m)
        if cached is None:
            x = np.arange(-(m - 1), 1, dtype=np.float64)
            line = np.linalg.pinv(np.stack([np.ones(m), x], axis=1))
            if m >= 4:
                vand = np.stack([np.ones(m), x, x * x], axis=1)
                stacked = np.vstack([line, np.linalg.pinv(vand), vand.T])
                cached = (stacked, float(np.linalg.inv(vand.T @ vand)[2, 2]))
            else:  # too few points for a parabola with a residual
                cached = (np.vstack([line, np.zeros((6, m))]), float("inf"))
            self._filters[m] = cached
        return cached

    def _refit(self) -> None:
        m = self._end - self._start
        if m < 2:
            self._model = None
            return
        n = self._n[self._start : self._end]
        t = self._t[self._start : self._end]
        n_last = int(n[-1])
        t_last_rel = float(t[-1])
        t_last = self._base + int(t_last_rel)
        y = t - t_last_rel
        self.curved = False
        if int(n[0]) == n_last - (m - 1):  # the usual case: no hole in the window
            f, c22 = self._filter(m)
            b0, b1, c0, c1, c2, v0, v1, v2 = f @ y
            if m >= 12:
                sse = float(y @ y) - (c0 * v0 + c1 * v1 + c2 * v2)
                se = (max(sse / (m - 3), 1.0) * c22) ** 0.5
                if abs(c2) > self.curve_t * se:
                    b0, b1 = c0, c1
                    self.curved = True
                else:
                    c2 = 0.0
            else:
                c2 = 0.0
        else:  # an outlier left a hole: solve this window directly (rare)
            x = (n - n_last).astype(np.float64)
            b1, b0 = np.polyfit(x, y, 1)
            c2 = 0.0
            if m >= 12:
                vand = np.stack([np.ones(m), x, x * x], axis=1)
                coef, *_ = np.linalg.lstsq(vand, y, rcond=None)
                residual = y - vand @ coef
                se = (max(float(residual @ residual) / (m - 3), 1.0) * float(np.linalg.inv(vand.T @ vand)[2, 2])) ** 0.5
                if abs(coef[2]) > self.curve_t * se:
                    b0, b1, c2 = coef
                    self.curved = True
        self._model = (n_last, t_last, float(b0), float(b1), float(c2)) if b1 > 0 else None

    def predict(self, n: int) -> float | None:
        """Fitted time of tick ``n`` (None until two ticks are in)."""
        if self._model is None:
            return None
        n_last, t_last, a0, a1, a2 = self._model
        dx = n - n_last
        return t_last + a0 + a1 * dx + a2 * dx * dx

    def period_ns(self) -> float | None:
        """Tick period at the newest tick."""
        return None if self._model is None else self._model[3]

    def fitted_last(self) -> tuple[int, float] | None:
        """(index, fitted time) of the newest tick in the fit."""
        if self._model is None:
            return None
        n_last, t_last, a0, _, _ = self._model
        return n_last, t_last + a0

    # -- one tick -----------------------------------------------------------------------
    def _append(self, n: int, t: int) -> None:
        if self._end == self._start:
            self._base = t
            self._start = self._end = 0
        elif self._end == self._n.size:
            keep = self.window - 1
            self._n[:keep] = self._n[self._end - keep : self._end]
            self._t[:keep] = self._t[self._end - keep : self._end]
            self._start, self._end = 0, keep
        self._n[self._end] = n
        self._t[self._end] = t - self._base
        self._end += 1
        if self._end - self._start > self.window:
            self._start += 1

    def add_tick(self, n: int, t: int) -> None:
        """Tick number ``n`` (counted from the song start) arrived at time ``t``."""
        self.ticks += 1
        if self._end - self._start >= 3 and self._model is not None:
            slope = self._model[3]
            predicted = self.predict(n)
            assert predicted is not None
            r = abs(t - predicted)
            # An outlier is off by much more than the typical residual AND by a good part of
            # a tick: MIDI through JACK arrives once per audio period, so residuals of a whole
            # period (2.7 ms at 128 frames) are normal.
            limit = max(self.floor_ns, self.outlier_factor * self._scale, self.period_fraction * slope)
            self._scale = r if self._scale == 0.0 else self._scale + (min(r, 2.0 * limit) - self._scale) / 32.0
            if r > limit:
                self.outliers += 1
                self._suspects.append((n, t))
                if len(self._suspects) >= self.relock_after:
                    # Not noise: the tempo changed (or ticks were lost).  Refit from the suspects.
                    suspects = self._suspects
                    self._reset_fit()
                    for sn, st in suspects:
                        self._append(sn, st)
                    self._refit()
                    self.relocks += 1
                return
            self._suspects.clear()
        self._append(n, t)
        self._refit()


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
        window: int = 72,
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
            period = f.period_ns()
            if period is None or not MIN_BPM <= 60.0 * NS_PER_S / (period * TICKS_PER_BEAT) <= MAX_BPM:
                if self.running and f.points <= 1:
                    # First tick after START/CONTINUE: it marks the beat position; keep the tempo.
                    self.map = TempoMap(event.time, n / TICKS_PER_BEAT, self.map.beat_ns)
                return
            if not self.running:
                # Many DAWs send clock with the transport stopped: follow the tempo, not the phase.
                m = self.map
                self.map = TempoMap(event.time, m.beat_at(event.time), period * TICKS_PER_BEAT)
                return
            last = f.fitted_last()
            assert last is not None
            last_n, t_last = last
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
