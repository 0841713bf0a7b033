"""What the music is doing, as a small vector the visualizer can read at any moment.

:class:`FeatureTracker` runs on the engine thread (through the observer), so each update is
a handful of float operations and never allocates much.  Its state is a flat float64
vector (layout below) stamped with the time of the last update; quantities that fade
(pitch-class energy, loudness, onset pulse, density) decay exponentially, and
:func:`decayed` brings a snapshot forward to any later time.  That is what lets the
renderer read only the newest snapshot from the mailbox, at its own frame rate, and still
see each onset (as a decaying pulse) and calm down smoothly when the playing stops.
"""

from __future__ import annotations

import math
from typing import Iterable, Protocol, Sequence

import numpy as np

from ..kernel.events import PERFORMER, Event, Kind


class FeatureSettings(Protocol):
    """The part of :class:`.config.VisualConfig` the tracker reads (a protocol: the config
    imports the look, which reads this module's layout, so this module cannot import it)."""

    decay_s: float
    accent_velocity: int
    seed: int

# -- layout of the feature vector -------------------------------------------------------------
STAMP = 0  # time (ns, as float) the vector was last brought up to date
PC = slice(1, 13)  # pitch-class energies C..B (sum of velocity/127, decaying)
LOUDNESS = 13  # recent velocity level 0..1 (decaying)
PULSE = 14  # onset pulse: velocity/127 bumps, fast decay
DENSITY = 15  # onsets per second (leaky counter)
REGISTER = 16  # recent mean pitch, 0 (A0) .. 1 (C8)
ACCENTS = 17  # count of strong accents (the renderer jumps when it grows)
ONSETS = 18  # count of all onsets
MACHINE = 19  # the machine's onsets per second (leaky counter)
HELD = 20  # notes held right now (performer and machine)
HIDDEN_DIMS = 16
HIDDEN = slice(21, 21 + HIDDEN_DIMS)  # projection of the model's hidden state
BEAT_AT = 21 + HIDDEN_DIMS  # time (ns, as float) of a beat of the session's tempo (0: no tempo known)
BEAT_NS = BEAT_AT + 1  # the beat's length in ns; the renderer extrapolates the beat from these two
SIZE = BEAT_NS + 1

PULSE_TAU_S = 0.22


def time_constants(cfg: FeatureSettings) -> np.ndarray:
    """Per-field decay time constants in seconds (inf: does not decay)."""
    tau = np.full(SIZE, np.inf)
    tau[PC] = 0.75 * cfg.decay_s
    tau[LOUDNESS] = 0.5 * cfg.decay_s
    tau[PULSE] = PULSE_TAU_S
    tau[DENSITY] = cfg.decay_s
    tau[MACHINE] = cfg.decay_s
    return tau


def decayed(vec: np.ndarray, now: int, tau: np.ndarray) -> np.ndarray:
    """A copy of ``vec`` brought forward (faded) to time ``now``."""
    out = vec.copy()
    dt = (now - vec[STAMP]) / 1e9
    if dt > 0:
        out *= np.exp(-dt / tau)
        out[STAMP] = now
        out[ACCENTS] = vec[ACCENTS]
        out[ONSETS] = vec[ONSETS]
    return out


class FeatureTracker:
    """Engine-side feature state.  ``update`` is called with each tick's events."""

    def __init__(self, cfg: FeatureSettings) -> None:
        self.cfg = cfg
        self.tau = time_constants(cfg)
        self._rate = 1.0 / self.tau  # exp(-dt * rate); 0 for non-decaying fields
        self.vec = np.zeros(SIZE)
        self.vec[REGISTER] = 0.5
        self._held: set[tuple[int, int, int]] = set()
        self._projections: dict[int, np.ndarray] = {}

    def advance(self, now: int) -> None:
        dt = (now - self.vec[STAMP]) / 1e9
        if dt > 0:
            keep = self.vec[ACCENTS], self.vec[ONSETS]
            self.vec *= np.exp(-dt * self._rate)
            self.vec[ACCENTS], self.vec[ONSETS] = keep
            self.vec[STAMP] = now

    def update(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None:
        """Fold one tick in: the performer's notes from ``inputs``, the machine's from ``outputs``
        (events sent for the performer, e.g. by ``thru``, are not counted twice)."""
        self.advance(now)
        self._notes(e for e in inputs if e.voice == PERFORMER)
        self._notes((e for e in outputs if e.voice != PERFORMER), machine=True)
        self.vec[HELD] = len(self._held)

    def _notes(self, events: Iterable[Event], machine: bool = False) -> None:
        v = self.vec
        for e in events:
            key = (e.voice, e.channel, e.note)
            if e.kind is Kind.NOTE_ON and e.velocity > 0:
                level = e.velocity / 127.0
                v[1 + e.note % 12] += level
                v[LOUDNESS] += (level - v[LOUDNESS]) * 0.35
                v[PULSE] = min(3.0, v[PULSE] + level)
                v[DENSITY] += 1.0 / self.tau[DENSITY]
                if machine:
                    v[MACHINE] += 1.0 / self.tau[MACHINE]
                v[REGISTER] += ((e.note - 21) / 87.0 - v[REGISTER]) * 0.2
                v[ONSETS] += 1
                if e.velocity >= self.cfg.accent_velocity:
                    v[ACCENTS] += 1
                self._held.add(key)
            elif e.kind is Kind.NOTE_OFF or (e.kind is Kind.NOTE_ON and e.velocity == 0):
                self._held.discard(key)
            elif e.kind is Kind.CONTROL and e.control in (120, 123):
                self._held.clear()

    def hidden(self, value: np.ndarray) -> None:
        """The model's hidden state (any length): projected to 16 numbers in about [-1, 1]
        by a fixed random matrix (seeded, so the same state always looks the same)."""
        flat = np.asarray(value, dtype=np.float64).ravel()
        n = flat.size
        if n == 0:
            return
        proj = self._projections.get(n)
        if proj is None:
            rng = np.random.default_rng(self.cfg.seed + 9173)
            proj = rng.standard_normal((HIDDEN_DIMS, n)) / math.sqrt(n)
            self._projections[n] = proj
        self.vec[HIDDEN] = np.tanh(proj @ flat * 1.5)

    def beat(self, tempo, engine_now: int, now: int) -> None:
        """The tempo's beat, as (a beat's time on this tracker's clock, its length): what the
        stage look pulses to.  ``engine_now`` is the same moment on the tempo's clock."""
        beat_ns = tempo.beat_ns
        self.vec[BEAT_AT] = now - (tempo.beat_at(engine_now) % 1.0) * beat_ns
        self.vec[BEAT_NS] = beat_ns

    def snapshot(self) -> np.ndarray:
        return self.vec.copy()
