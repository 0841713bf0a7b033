"""How a MIDI event becomes the three small integers the network reads and predicts.

Each event is one step with three fields, predicted one after another in any order:

* ``v``: 0 for a note-off, ``1..N_VEL`` for a note-on in that velocity bin;
* ``pitch``: 0..127;
* ``dt``: the time since the previous event, in one of ``N_DT`` log-spaced bins (13 % wide,
  from 4 ms to 8 s, plus a "together" bin below 4 ms), so a chord and a slow air share one scale.

Plus ``voice`` (performer or machine), which is always known.  Helpers here also turn notes
(score or performance) into humanized event streams for training and evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_PITCH = 128
N_VEL = 8
N_V = N_VEL + 1  # + note-off
N_DT = 64
N_VOICE = 2
DT_MIN = 0.004
DT_MAX = 8.0

# DT_EDGES[i] is the lower edge of bin i; bin N_DT-1 is everything from DT_MAX up.
DT_EDGES = np.concatenate([[0.0], np.geomspace(DT_MIN, DT_MAX, N_DT - 1)])
DT_UPPER = np.concatenate([DT_EDGES[1:], [DT_MAX * 1.5]])
# Velocity bins: bin b (1..N_VEL) covers VEL_LO[b]..VEL_HI[b] inclusive.

N_INT = 49  # intervals -24..+24 from the voice's last note-on; index N_INT = none or farther
REL_RANGE = 24

FIELDS = ("v", "pitch", "dt")
FIELD_SIZES = (N_V, N_PITCH, N_DT)


def dt_bin(dt: float) -> int:
    """The bin of a time gap in seconds (negative gaps count as 0)."""
    if dt < DT_MIN:
        return 0
    i = int(np.searchsorted(DT_EDGES, dt, side="right")) - 1
    return min(i, N_DT - 1)


def dt_bins(dt: np.ndarray) -> np.ndarray:
    i = np.searchsorted(DT_EDGES, np.maximum(dt, 0.0), side="right") - 1
    return np.clip(i, 0, N_DT - 1).astype(np.int64)


def vel_bin(velocity: int) -> int:
    """0 for a note-off (velocity 0), else the velocity bin 1..N_VEL."""
    if velocity <= 0:
        return 0
    return 1 + min(N_VEL - 1, ((min(int(velocity), 127) - 1) * N_VEL) // 127)


def vel_bins(velocity: np.ndarray) -> np.ndarray:
    v = np.clip(velocity, 0, 127).astype(np.int64)
    return np.where(v <= 0, 0, 1 + np.minimum(N_VEL - 1, ((v - 1) * N_VEL) // 127))


_ALL_VEL_BINS = vel_bins(np.arange(128))
VEL_LO = np.array([0] + [int(np.flatnonzero(_ALL_VEL_BINS == b)[0]) for b in range(1, N_V)])
VEL_HI = np.array([0] + [int(np.flatnonzero(_ALL_VEL_BINS == b)[-1]) for b in range(1, N_V)])


@dataclass
class EventArrays:
    """An event stream as parallel int arrays (plus the exact dt and velocity, for writing MIDI).

    ``held`` (packed bits, 16 bytes per event) says which pitches the event's own voice holds
    just before it: a note-off is always for one of them and a note-on never is, which the
    network's loss and the sampler both use.
    """

    v: np.ndarray
    pitch: np.ndarray
    dt: np.ndarray
    voice: np.ndarray
    seconds: np.ndarray  # exact dt in seconds
    velocity: np.ndarray  # exact velocity (0 = off)
    held: np.ndarray  # (N, 16) uint8, np.packbits of 128 pitches
    last: np.ndarray  # the voice's last note-on pitch before the event, -1 if none

    def __len__(self) -> int:
        return len(self.v)

    def slice(self, a: int, b: int) -> "EventArrays":
        return EventArrays(*(x[a:b] for x in (self.v, self.pitch, self.dt, self.voice, self.seconds, self.velocity,
                                              self.held, self.last)))


def interval_index(pitch: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Index of the interval from ``last`` to ``pitch`` (N_INT when there is no last or it is far)."""
    d = np.asarray(pitch) - np.asarray(last)
    return np.where((np.asarray(last) >= 0) & (np.abs(d) <= REL_RANGE), d + REL_RANGE, N_INT)


def voice_state(v: np.ndarray, pitch: np.ndarray, voice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per event, the pitches its voice holds just before it (packed bits, (N, 16)) and the
    voice's last note-on pitch before it; before a voice's first note, the other voice's last
    note-on (so a machine's first answer is anchored in the key just played), else -1."""
    n = len(v)
    out = np.zeros((n, 16), np.uint8)
    last_out = np.full(n, -1, np.int64)
    last = [-1, -1]
    state = np.zeros((2, 16), np.uint8)
    byte = (np.asarray(pitch) >> 3).tolist()
    bit = (0x80 >> (np.asarray(pitch) & 7)).tolist()
    vo = np.minimum(np.asarray(voice), 1).tolist()
    on = (np.asarray(v) > 0).tolist()
    pl = np.asarray(pitch).tolist()
    for i in range(n):
        s = state[vo[i]]
        out[i] = s
        last_out[i] = last[vo[i]] if last[vo[i]] >= 0 else last[1 - vo[i]]
        if on[i]:
            s[byte[i]] |= bit[i]
            last[vo[i]] = pl[i]
        else:
            s[byte[i]] &= 0xFF ^ bit[i]
    return out, last_out


def notes_to_events(onset: np.ndarray, dur: np.ndarray, pitch: np.ndarray, velocity: np.ndarray,
                    voice: np.ndarray) -> EventArrays:
    """Notes in seconds -> a time-ordered event stream (offs before ons at equal times).

    Within a voice a pitch sounds once at a time: a doubled note (same voice, pitch and
    onset, like a unison of alto and tenor) is dropped, and a note is cut when its pitch
    starts again, so every note-on has its note-off before the key is struck again.
    """
    onset = np.asarray(onset, np.float64)
    dur = np.asarray(dur, np.float64)
    pitch = np.asarray(pitch, np.int64)
    voice = np.minimum(np.asarray(voice, np.int64), 1)
    velocity = np.asarray(velocity, np.int64)
    if len(onset):
        order = np.lexsort((onset, pitch, voice))
        dup = np.zeros(len(onset), bool)
        same = (pitch[order][1:] == pitch[order][:-1]) & (voice[order][1:] == voice[order][:-1])
        dup[order[1:]] = same & (onset[order][1:] - onset[order][:-1] < 0.01)
        keep = ~dup
        onset, dur, pitch, voice, velocity = onset[keep], dur[keep], pitch[keep], voice[keep], velocity[keep]
    n = len(onset)
    if n == 0:
        z = np.zeros(0, np.int64)
        return EventArrays(z, z, z, z, np.zeros(0), z, np.zeros((0, 16), np.uint8), z)
    off = onset + np.maximum(dur, 0.01)
    order = np.lexsort((onset, pitch, voice))
    p_s, v_s, on_s = pitch[order], voice[order], onset[order]
    nxt = np.full(n, np.inf)
    same_next = (p_s[1:] == p_s[:-1]) & (v_s[1:] == v_s[:-1])
    nxt[:-1] = np.where(same_next, on_s[1:], np.inf)
    off[order] = np.minimum(off[order], nxt)
    times = np.concatenate([off, onset])
    is_on = np.concatenate([np.zeros(n, bool), np.ones(n, bool)])
    pit = np.concatenate([pitch, pitch])
    vo = np.concatenate([voice, voice])
    vel = np.concatenate([np.zeros(n, np.int64), np.clip(velocity, 1, 127)])
    # Sort by time; offs before ons; the performer before machines; low pitch first.
    times = np.round(times, 6)  # microseconds: sort and gaps agree, no tiny negative gaps
    idx = np.lexsort((pit, vo, is_on, times))
    t = times[idx]
    dt = np.diff(t, prepend=t[0])
    dt[0] = 0.0
    v = vel_bins(vel[idx])
    held, last = voice_state(v, pit[idx], vo[idx])
    return EventArrays(v, pit[idx], dt_bins(dt), vo[idx], dt, vel[idx], held, last)


@dataclass(frozen=True)
class Augment:
    """How far training data is pushed towards human playing."""

    transpose: int = 6  # semitones, each way
    bpm: tuple[float, float] = (70.0, 170.0)  # score data: tempo drawn log-uniformly (quarter notes)
    tempo_scale: float = 0.15  # performance data: +-15 %
    jitter_s: float = 0.012  # onset timing noise (std, seconds)
    articulation: tuple[float, float] = (0.55, 1.0)  # fraction of the written length that sounds
    velocity_base: tuple[int, int] = (45, 105)
    velocity_noise: float = 9.0
    accent: float = 10.0  # extra velocity on beats
    call_response_p: float = 0.75  # single-part pieces: alternate performer and machine phrases


NO_AUGMENT = Augment(transpose=0, tempo_scale=0.0, jitter_s=0.0, articulation=(1.0, 1.0), velocity_noise=0.0,
                     accent=0.0, call_response_p=0.0)


def humanize(onset: np.ndarray, dur: np.ndarray, pitch: np.ndarray, part: np.ndarray, vel: np.ndarray | None,
             unit: str, rng: np.random.Generator, aug: Augment, performer_part: int | None = None) -> EventArrays:
    """One augmented rendering of a piece: transposed, at some tempo, jittered, with velocities.

    ``vel`` of zeros (score data) gets synthesized velocities (a base level, accents on beats,
    noise); real velocities are scaled and jittered.  Multi-part pieces: ``performer_part``
    (random if None) is the performer and every other part a machine voice.  Single-part
    pieces alternate performer and machine phrases (call and response) with probability
    ``aug.call_response_p``.
    """
    n = len(onset)
    shift = int(rng.integers(-aug.transpose, aug.transpose + 1)) if aug.transpose else 0
    p = np.asarray(pitch, np.int64) + shift
    if p.size and (p.min() < 0 or p.max() > 127):
        p = np.asarray(pitch, np.int64)
    if unit == "quarter":
        lo, hi = aug.bpm
        spq = 60.0 / float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    else:
        spq = 1.0 + (float(rng.uniform(-aug.tempo_scale, aug.tempo_scale)) if aug.tempo_scale else 0.0)
    on = np.asarray(onset, np.float64) * spq
    du = np.asarray(dur, np.float64) * spq
    if aug.jitter_s:
        on = on + rng.normal(0.0, aug.jitter_s, n)
        on = np.maximum(on, 0.0)
    a0, a1 = aug.articulation
    if unit == "quarter" and a1 > a0:
        du = du * rng.uniform(a0, a1) * rng.uniform(0.9, 1.1, n)
    du = np.maximum(du, 0.03)
    if vel is None or not np.any(vel):
        base = rng.integers(*aug.velocity_base) if aug.velocity_noise or aug.accent else 80
        beat = (np.abs(np.asarray(onset) - np.round(np.asarray(onset))) < 1e-6)
        v = base + aug.accent * beat + rng.normal(0.0, aug.velocity_noise, n) if n else np.zeros(0)
        # A slow swell over the piece, as players shape phrases.
        if n and aug.velocity_noise:
            v = v + 8.0 * np.sin(np.asarray(onset) * rng.uniform(0.05, 0.3) + rng.uniform(0, 6.3))
    else:
        scale = float(rng.uniform(0.8, 1.2)) if aug.velocity_noise else 1.0
        v = np.asarray(vel, np.float64) * scale + (rng.normal(0.0, aug.velocity_noise / 2, n) if aug.velocity_noise else 0)
    v = np.clip(np.round(v), 1, 127).astype(np.int64)
    parts = np.asarray(part, np.int64)
    nparts = int(parts.max()) + 1 if n else 1
    if nparts > 1:
        perf = performer_part if performer_part is not None else (0 if rng.random() < 0.5 else int(rng.integers(nparts)))
        voice = (parts != perf).astype(np.int64)
    elif aug.call_response_p and rng.random() < aug.call_response_p:
        span = float(rng.choice([4.0, 8.0, 16.0])) * (1.0 if unit == "quarter" else 0.5)
        phase = int(rng.integers(2))
        voice = ((np.floor(np.asarray(onset) / span).astype(np.int64) + phase) % 2)
    else:
        voice = np.zeros(n, np.int64)
    return notes_to_events(on, du, p, v, voice)
