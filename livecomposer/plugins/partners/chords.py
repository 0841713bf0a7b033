"""A running chord estimate from the performer's notes (engine thread, incremental).

Each performer note adds to a pitch-class histogram: a little when it starts (a fresh note
counts at once), and its held length (up to two beats) when it ends, so long notes weigh
more than passing ones.  The histogram decays with a half-life of ``half_life`` beats, so
the estimate follows the harmony as it moves, per beat or so.  The chord is the best match
of the histogram (plus the notes still held, by how long they have sounded) against
templates of the 72 triads and sevenths (:func:`livecomposer.theory.chord_table`).  One
note costs a few numpy operations; a match is one 72x12 product (~10 microseconds).
"""

from __future__ import annotations

import numpy as np

from ...theory import chord_table

_NAMES, _SETS, _ROWS = chord_table()
_TABLE = np.array(_ROWS)
ONSET_WEIGHT = 0.5  # beats' worth of weight a note has the moment it starts


class ChordEstimate:
    """The performer's harmony right now: (root, pitch classes) of the best-matching chord."""

    def __init__(self, beat_ns: int, half_life: float = 2.0) -> None:
        self.beat_ns = beat_ns
        self.half_life = half_life
        self.hist = np.zeros(12)
        self.t = 0
        self.sounding: dict[int, int] = {}  # pitch -> note-on time

    def _decay(self, t: int) -> None:
        if t > self.t:
            self.hist *= 0.5 ** ((t - self.t) / (self.half_life * self.beat_ns))
            self.t = t

    def note_on(self, t: int, pitch: int) -> None:
        self._decay(t)
        self.hist[pitch % 12] += ONSET_WEIGHT
        self.sounding[pitch] = t

    def note_off(self, t: int, pitch: int) -> None:
        on = self.sounding.pop(pitch, None)
        if on is None:
            return
        self._decay(t)
        self.hist[pitch % 12] += min(2.0, (t - on) / self.beat_ns)

    def chord(self, t: int) -> tuple[int, frozenset[int]] | None:
        """(root, pitch classes) of the chord the recent notes spell, or None before any note."""
        self._decay(t)
        h = self.hist.copy()
        for pitch, on in self.sounding.items():
            h[pitch % 12] += min(2.0, max(0, t - on) / self.beat_ns)
        if h.max() <= 1e-6:
            return None
        best = int(np.argmax(_TABLE @ h))
        return _NAMES[best][0], _SETS[best]


class BeatPhase:
    """Where the beat falls in the performer's playing, for a grid anchored to their first
    note (no clock to follow): a tune that starts with a pickup would otherwise put every
    grid note between the beats.  Each finished note adds its length (up to two beats)
    times its loudness to the sixteenth of the beat it started on: long and accented notes
    fall on beats.  When another
    sixteenth clearly outweighs the grid's own (1.5 times, plus a beat), the grid moves there.
    """

    BINS = 4

    def __init__(self) -> None:
        self.weight = np.zeros(self.BINS)

    def add(self, beat: float, length: float, velocity: int) -> None:
        """A note that started at grid position ``beat``, lasted ``length`` beats, struck this hard."""
        self.weight[int(round((beat % 1.0) * self.BINS)) % self.BINS] += min(2.0, length) * velocity / 80.0

    def shift(self) -> float:
        """Beats to move the grid by (0: it is where the long notes are)."""
        best = int(np.argmax(self.weight))
        if best == 0 or self.weight[best] <= 1.5 * self.weight[0] + 1.0:
            return 0.0
        self.weight = np.roll(self.weight, -best)
        return best / self.BINS
