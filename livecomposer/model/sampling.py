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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .api import Constraints, ModelEvent
from .tokens import DT_EDGES, DT_MAX, DT_MIN, DT_UPPER, N_DT, N_PITCH, N_V, VEL_HI, VEL_LO, dt_bin, vel_bin

if TYPE_CHECKING:
    from .network import StreamingModel

V, PITCH, DT = 0, 1, 2


def draw(logits: np.ndarray, mask: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Sample an index of ``logits`` where ``mask`` is true, with temperature and nucleus (top-p)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        raise ValueError("no value satisfies the constraints")
    if idx.size == 1:
        return int(idx[0])
    l = logits[idx]
    if temperature <= 1e-4:
        return int(idx[int(np.argmax(l))])
    l = l / temperature
    p = np.exp(l - l.max())
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p)
        c = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(c, top_p)) + 1]
        idx, p = idx[keep], p[keep] / p[keep].sum()
    c = np.cumsum(p)
    return int(idx[min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), idx.size - 1)])


class Sampler:
    def __init__(self, model: "StreamingModel") -> None:
        self.m = model
        self._pitch_masks: dict = {}
        self._dt_masks: dict = {}
        self._vel_masks: dict = {}

    def _base_pitch_mask(self, c: Constraints) -> np.ndarray:
        key = (c.pitch_range, c.pitch_classes, c.exclude_pitches)
        m = self._pitch_masks.get(key)
        if m is None:
            p = np.arange(N_PITCH)
            lo, hi = c.pitch_range
            m = (p >= lo) & (p <= hi)
            if c.pitch_classes is not None:
                m &= np.isin(p % 12, list(c.pitch_classes))
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
        held = m._held.get(voice, set())
        known: dict[int, int] = {}
        if c.velocity is not None:
            known[V] = vel_bin(int(c.velocity))
        elif c.note_on is False:
            known[V] = 0
        if c.pitch is not None:
            known[PITCH] = int(c.pitch)
        if c.dt is not None:
            known[DT] = dt_bin(float(c.dt))
        pre = m.head_pre()
        for k in (V, PITCH, DT):
            if k in known:
                continue
            if k == V:
                mask = self._v_mask(c, held, known.get(PITCH))
            elif k == PITCH:
                if known[V] == 0:
                    mask = np.zeros(N_PITCH, bool)
                    if held:
                        mask[list(held)] = True
                else:
                    mask = self._base_pitch_mask(c).copy()
                    if held:
                        mask[list(held)] = False
            else:
                mask = self._dt_mask(c)
            z = pre[k] + m._head_voice[k][voice]
            for j, x in known.items():
                z = z + m._head_known[k][j][x]
            logits = m._out_w[k] @ np.tanh(z) + m._out_b[k]
            if mask is None:
                mask = np.ones(logits.shape[0], bool)
            try:
                known[k] = draw(logits, mask, c.temperature, c.top_p, rng)
            except ValueError:
                raise ValueError(f"no event satisfies the constraints ({'note-on/off' if k == V else ('pitch' if k == PITCH else 'time')}: held {sorted(held)}, {c})") from None
        return ModelEvent(self._dt_value(c, known[DT], rng), known[PITCH], self._velocity_value(c, known[V], rng), c.voice)

    def _v_mask(self, c: Constraints, held: set[int], pitch: int | None) -> np.ndarray:
        mask = np.zeros(N_V, bool)
        can_off = c.note_on is not True and bool(held) and (pitch is None or pitch in held)
        can_on = c.note_on is not False and (c.max_polyphony is None or len(held) < c.max_polyphony)
        if can_on:
            if pitch is None:
                pm = self._base_pitch_mask(c)
                can_on = bool(pm.any()) and (not held or bool(np.delete(pm, list(held)).any()))
            else:
                can_on = pitch not in held
        mask[0] = can_off
        if can_on:
            mask |= self._vel_mask(c)
        return mask

    @staticmethod
    def _velocity_value(c: Constraints, vb: int, rng: np.random.Generator) -> int:
        if c.velocity is not None:
            return int(c.velocity)
        if vb == 0:
            return 0
        lo, hi = max(int(VEL_LO[vb]), c.velocity_range[0], 1), min(int(VEL_HI[vb]), c.velocity_range[1], 127)
        return int(rng.integers(lo, hi + 1)) if hi >= lo else int(np.clip(VEL_LO[vb], 1, 127))

    @staticmethod
    def _dt_value(c: Constraints, b: int, rng: np.random.Generator) -> float:
        if c.dt is not None:
            return float(c.dt)
        if b == 0:
            x = float(rng.uniform(0.0, DT_MIN))
        elif b == N_DT - 1:
            x = DT_MAX
        else:
            x = float(np.exp(rng.uniform(np.log(DT_EDGES[b]), np.log(DT_UPPER[b]))))
        if c.dt_range is not None:
            x = min(max(x, c.dt_range[0]), c.dt_range[1])
        return x
