"""Constrained sampling of the next event, one field at a time.

Fixed fields (``Constraints.pitch``/``dt``/``velocity``/``note_on``) are conditioned on and
returned as given; every sampled field is drawn from its head under a mask built from the
constraints and the held notes, then temperature and top-p.  Rules:

* a note-off is only for a pitch the asked voice holds; a note-on never for a pitch that
  voice already holds;
* pitch range, pitch classes and ``exclude_pitches`` limit note-ons (a held note can always
  be released);
* ``max_polyphony`` counts the notes the asked voice holds;
* if nothing satisfies the constraints, :class:`ValueError` says so.

Steering a note-on's pitch (what partners use to develop a motif and to learn the player):

* ``repeat_penalty`` is subtracted from the logit of the voice's last note-on pitch (the
  folk model, left alone, repeats a note about half again as often as the tunes it learnt);
* ``pitch_bias`` (128 logit offsets) is added before temperature: a soft target, e.g. the
  pitch a motif's variation asks for, among which the model still chooses;
* ``pitch_mix = (m, q)`` mixes an outside distribution ``q`` over pitches in **linear**
  space after temperature and the masks: p = (1 - m) p_net + m q (q renormalised over the
  allowed pitches; ignored where it gives them nothing), then top-p on the mixture.  Linear,
  not log-linear: a lick the player repeats gets probability ``m`` even where the network
  thinks it unlikely, and the network keeps ``1 - m`` where the memory knows nothing.
"""

from __future__ import annotations

import functools
import math
from typing import Protocol

import numpy as np

from . import kernels
from .api import ChordConstraints, Constraints, ModelEvent
from .tokens import DT_EDGES, DT_MAX, DT_MIN, DT_UPPER, N_DT, N_PITCH, N_V, VEL_HI, VEL_LO, dt_bin, vel_bin



class HeadState(Protocol):
    """What the sampler reads from a streaming model (:class:`.network.StreamingModel`,
    which creates its sampler): its heads' logits for the current state, and the notes each
    voice holds.  A protocol, so this module need not import that one."""

    version: int
    _held: dict[int, set[int]]
    _held_mask: np.ndarray
    _last: list[int]

    def head_logits(self, k: int, voice: int, known: dict[int, int], out: np.ndarray | None = None) -> np.ndarray: ...

V, PITCH, DT = 0, 1, 2
_VEL_LO, _VEL_HI = [int(x) for x in VEL_LO], [int(x) for x in VEL_HI]
_LOG_LO = [math.log(x) if x > 0 else 0.0 for x in DT_EDGES]
_LOG_HI = [math.log(x) for x in DT_UPPER]


_NONE_F = np.zeros(0, np.float32)
_NONE_B = np.zeros(0, bool)
_NONE_Q = np.zeros(0)
_ALL = np.ones(max(N_V, N_PITCH, N_DT), bool)
_PITCH_CLASS = np.arange(N_PITCH) % 12
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))  # the bias types the compiled draw takes
_ALL_CLASSES = (1 << 12) - 1
_NO_RULE = np.zeros(0, np.int64)


@functools.lru_cache(maxsize=64)
def _class_bits(pitch_classes: frozenset[int]) -> int:
    """Pitch classes as 12 bits (bit pc), as the compiled chord draw takes them (a key's
    set is the same object note after note: cached)."""
    bits = 0
    for pc in pitch_classes:
        bits |= 1 << (pc % 12)
    return bits


def draw(logits: np.ndarray, mask: np.ndarray | None, temperature: float, top_p: float, u: float) -> int:
    """An index of ``logits`` where ``mask`` is true, with temperature and nucleus (top-p).

    ``u`` is a uniform draw in [0, 1): one random number per field keeps this cheap and
    the result a pure function of (logits, constraints, u).  (Compiled: :func:`.kernels.draw`.)
    """
    return draw_mixed(logits, mask, temperature, top_p, u, 0.0, _NONE_Q)


def draw_mixed(logits: np.ndarray, mask: np.ndarray | None, temperature: float, top_p: float, u: float,
               weight: float, q: np.ndarray) -> int:
    """As :func:`draw`, from (1 - weight) softmax(logits / temperature) + weight q, both
    over the allowed values (``mask``); plain :func:`draw` where q gives them nothing."""
    logits = np.ascontiguousarray(logits, np.float32)
    allow = _ALL[: logits.shape[0]] if mask is None else np.ascontiguousarray(mask, bool)
    return _drawn(kernels.draw(logits, allow, _NONE_B, _NONE_F, -1, 0.0, float(temperature), float(top_p), float(u),
                               float(weight), np.asarray(q, np.float64)))


def _drawn(i: int) -> int:
    if i < 0:
        raise ValueError("no value satisfies the constraints")
    return i


class Sampler:
    def __init__(self, model: HeadState) -> None:
        self.m = model
        self._pitch_masks: dict = {}
        self._dt_masks: dict = {}
        self._vel_masks: dict = {}
        self._logits_key: tuple = ()  # the last head logits computed, and what they were for
        self._logits = np.zeros(0, np.float32)
        self._buffers = [np.zeros(n, np.float32) for n in (N_V, N_PITCH, N_DT)]  # each head's logits, written in place
        self._chord = np.empty(4, np.int64)  # a chord's pitches, written in place

    def _base_pitch_mask(self, c: Constraints | ChordConstraints, with_classes: bool = True) -> np.ndarray:
        pitch_classes = c.pitch_classes if with_classes else None
        key = (c.pitch_range, pitch_classes, c.exclude_pitches)
        m = self._pitch_masks.get(key)
        if m is None:
            m = np.zeros(N_PITCH, bool)
            lo, hi = c.pitch_range
            m[max(lo, 0):max(hi + 1, 0)] = True
            if pitch_classes is not None:
                allowed = np.zeros(12, bool)
                allowed[list(pitch_classes)] = True
                m &= allowed[_PITCH_CLASS]
            if c.exclude_pitches:
                m[list(c.exclude_pitches)] = False
            if len(self._pitch_masks) > 256:
                self._pitch_masks.clear()
            self._pitch_masks[key] = m
        return m

    def _dt_mask(self, c: Constraints) -> np.ndarray | None:
        if c.dt_range is None:
            return None
        m = self._dt_masks.get(c.dt_range)
        if m is None:
            lo, hi = c.dt_range
            if hi < lo:
                raise ValueError(f"dt_range {c.dt_range} is empty")
            m = (DT_EDGES <= hi) & (DT_UPPER > lo)
            m[N_DT - 1] |= hi >= DT_MAX
            self._dt_masks[c.dt_range] = m
        return m

    def _vel_mask(self, c: Constraints) -> np.ndarray:
        m = self._vel_masks.get(c.velocity_range)
        if m is None:
            lo, hi = c.velocity_range
            m = (VEL_LO <= hi) & (VEL_HI >= lo)
            m[0] = False
            self._vel_masks[c.velocity_range] = m
        return m

    def sample(self, c: Constraints, rng: np.random.Generator) -> ModelEvent:
        m = self.m
        voice = 1 if c.voice else 0
        held = m._held.get(voice, ())
        held_mask = m._held_mask[voice]
        known: dict[int, int] = {}
        if c.velocity is not None:
            known[V] = vel_bin(int(c.velocity))
        elif c.note_on is False:
            known[V] = 0
        if c.pitch is not None:
            known[PITCH] = int(c.pitch)
        if c.dt is not None:
            known[DT] = dt_bin(float(c.dt))
        u = rng.random(5).tolist()
        for k in (V, PITCH, DT):
            if k in known:
                continue
            logits = self._head_logits(k, voice, known)
            try:
                if k == PITCH and known[V] != 0:
                    known[k] = self._draw_pitch(c, logits, held_mask, voice, u[k])
                else:
                    if k == V:
                        mask = self._v_mask(c, held, held_mask, known.get(PITCH))
                    elif k == PITCH:
                        mask = held_mask
                    else:
                        mask = self._dt_mask(c)
                    known[k] = draw(logits, mask, c.temperature, c.top_p, u[k])
            except ValueError:
                what = ("note-on/off", "pitch", "time")[k]
                raise ValueError(f"no event satisfies the constraints ({what}; voice {voice} holds {sorted(held)}; {c})") from None
        return ModelEvent(self._dt_value(c, known[DT], u[3]), known[PITCH], self._velocity_value(c, known[V], u[4]), c.voice)

    def chord_args(self, c: ChordConstraints, rng: np.random.Generator) -> tuple:
        """The arguments of :func:`.kernels.chord_draws` after the logits, for the chord
        ``c`` (see :class:`ChordConstraints`; one uniform per note from ``rng``); the last
        one receives the pitches.  A whole chord is one compiled call: one :meth:`sample`
        per note, with its Python between notes, cost about 100 us more on the harmonizer's
        latency path (where each numpy call here costs microseconds too: few are made)."""
        if c.size > self._chord.shape[0]:
            self._chord = np.empty(c.size, np.int64)
        weight, q = (0.0, _NONE_Q) if c.pitch_mix is None else (float(c.pitch_mix[0]), np.asarray(c.pitch_mix[1], np.float64))
        return (self._base_pitch_mask(c, with_classes=False), self.m._held_mask[1 if c.voice else 0],
                _ALL_CLASSES if c.pitch_classes is None else _class_bits(c.pitch_classes),
                -1 if c.anchor is None else c.anchor, _NO_RULE if c.agree is None else c.agree,
                np.array(c.soft + c.lead_from, np.int64), len(c.soft), c.lead_pull, weight, q, c.temperature, c.top_p,
                rng.random(c.size), self._chord)

    def _head_logits(self, k: int, voice: int, known: dict[int, int]) -> np.ndarray:
        """Head ``k``'s logits given the voice and the known fields (never changed in place:
        the harmonizer draws all its voices from one state, so the second reuses them)."""
        m = self.m
        key = (m.version, k, voice, tuple(known.items()))
        if key == self._logits_key:
            return self._logits
        logits = m.head_logits(k, voice, known, self._buffers[k])
        self._logits_key, self._logits = key, logits
        return logits

    def _draw_pitch(self, c: Constraints, logits: np.ndarray, held_mask: np.ndarray, voice: int, u: float) -> int:
        """A note-on's pitch (not one the voice holds), steered by the repetition penalty, the
        bias and the mixture: one compiled call."""
        last = self.m._last[voice] if c.repeat_penalty else -1
        bias = _NONE_F if c.pitch_bias is None else c.pitch_bias
        if bias.dtype not in _FLOATS or not bias.flags.c_contiguous:
            bias = np.ascontiguousarray(bias, np.float64)
        weight, q = (0.0, _NONE_Q) if c.pitch_mix is None else (float(c.pitch_mix[0]), np.asarray(c.pitch_mix[1], np.float64))
        return _drawn(kernels.draw(logits, self._base_pitch_mask(c), held_mask, bias, last, float(c.repeat_penalty),
                                   float(c.temperature), float(c.top_p), u, weight, q))

    def _v_mask(self, c: Constraints, held, held_mask: np.ndarray, pitch: int | None) -> np.ndarray:
        can_off = c.note_on is not True and bool(held) and (pitch is None or pitch in held)
        can_on = c.note_on is not False and (c.max_polyphony is None or len(held) < c.max_polyphony)
        if can_on:
            if pitch is None:
                can_on = bool((self._base_pitch_mask(c) & ~held_mask).any())
            else:
                can_on = pitch not in held
        if can_on:
            mask = self._vel_mask(c).copy()
            mask[0] = can_off
            return mask
        mask = np.zeros(N_V, bool)
        mask[0] = can_off
        return mask

    @staticmethod
    def _velocity_value(c: Constraints, vb: int, u: float) -> int:
        """A velocity inside bin ``vb`` and the allowed range, drawn with the uniform ``u``."""
        if c.velocity is not None:
            return int(c.velocity)
        if vb == 0:
            return 0
        lo, hi = max(_VEL_LO[vb], c.velocity_range[0], 1), min(_VEL_HI[vb], c.velocity_range[1], 127)
        return lo + min(int(u * (hi - lo + 1)), hi - lo) if hi >= lo else max(1, _VEL_LO[vb])

    @staticmethod
    def _dt_value(c: Constraints, b: int, u: float) -> float:
        """A time inside bin ``b`` (log-uniform) and the allowed range, drawn with the uniform ``u``."""
        if c.dt is not None:
            return float(c.dt)
        if b == 0:
            x = u * DT_MIN
        elif b == N_DT - 1:
            x = DT_MAX
        else:
            x = math.exp(_LOG_LO[b] + u * (_LOG_HI[b] - _LOG_LO[b]))
        if c.dt_range is not None:
            x = min(max(x, c.dt_range[0]), c.dt_range[1])
        return x
