"""The baseline: a variable-order Markov model (Continuator-style n-grams with backoff).

Each event is predicted in the same three factors as the network, p(v) p(pitch | v)
p(dt | v, pitch), each from the last k events (k = 0..max order) of its own history symbols
(velocity bins; pitches with on/off; time bins) plus the voice.  Orders are mixed by
interpolated Witten-Bell smoothing down to a uniform distribution, so an unseen context
backs off to a shorter one and nothing gets probability zero.  Counting is vectorised with
numpy (hashed contexts, sorted unique keys), so a million events take seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tokens import N_DT, N_PITCH, N_V, EventArrays

_P = np.uint64(1_000_003)
_SIZES = (N_V, N_PITCH, N_DT)


def _symbols(ev: EventArrays) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(targets, conditions, history symbols) per factor; symbols start at 1 (0 pads)."""
    on = (ev.v > 0).astype(np.int64)
    voice = ev.voice.astype(np.int64)
    targets = [ev.v, ev.pitch, ev.dt]
    cond = [voice + 1, voice * 2 + on + 1, voice * 2 + on + 1]
    hist = [ev.v * 2 + voice + 1, ev.pitch * 2 + on + 1, ev.dt * 2 + voice + 1]
    return targets, cond, hist


def _keys(cond: np.ndarray, hist: np.ndarray, pos: np.ndarray, order: int) -> np.ndarray:
    key = cond.astype(np.uint64) + np.uint64(7_919)
    for i in range(1, order + 1):
        sh = np.roll(hist, i).astype(np.uint64)
        sh[pos < i] = 0
        key = key * _P + sh + np.uint64(1)
    return key


@dataclass
class _Table:
    ctx: np.ndarray  # sorted unique context keys
    total: np.ndarray  # events seen in each context
    types: np.ndarray  # distinct targets seen in each context
    pairs: np.ndarray  # sorted ctx_index * N + target
    counts: np.ndarray


def _concat(streams: list[EventArrays]) -> tuple[EventArrays, np.ndarray]:
    pos = np.concatenate([np.arange(len(e)) for e in streams]) if streams else np.zeros(0, np.int64)
    cat = EventArrays(*(np.concatenate([getattr(e, f) for e in streams]) for f in ("v", "pitch", "dt", "voice", "seconds", "velocity", "held", "last")))
    return cat, pos


class NGramModel:
    def __init__(self, max_order: int = 6) -> None:
        self.max_order = max_order
        self.tables: list[list[_Table]] = []
        self.events = 0

    def fit(self, streams: list[EventArrays]) -> "NGramModel":
        ev, pos = _concat(streams)
        self.events = len(ev)
        targets, cond, hist = _symbols(ev)
        self.tables = []
        for f in range(3):
            row = []
            for k in range(self.max_order + 1):
                key = _keys(cond[f], hist[f], pos, k)
                ctx, inv, total = np.unique(key, return_inverse=True, return_counts=True)
                pair, counts = np.unique(inv.astype(np.int64) * _SIZES[f] + targets[f], return_counts=True)
                types = np.bincount(pair // _SIZES[f], minlength=len(ctx))
                row.append(_Table(ctx, total, types, pair, counts))
            self.tables.append(row)
        return self

    def nll(self, streams: list[EventArrays]) -> np.ndarray:
        """Total NLL (nats) of the streams under each max order 0..max_order, summed over factors."""
        ev, pos = _concat(streams)
        targets, cond, hist = _symbols(ev)
        out = np.zeros(self.max_order + 1)
        for f in range(3):
            p = np.full(len(ev), 1.0 / _SIZES[f])
            for k in range(self.max_order + 1):
                t = self.tables[f][k]
                key = _keys(cond[f], hist[f], pos, k)
                i = np.searchsorted(t.ctx, key)
                i = np.minimum(i, len(t.ctx) - 1)
                seen = t.ctx[i] == key
                pid = i.astype(np.int64) * _SIZES[f] + targets[f]
                j = np.minimum(np.searchsorted(t.pairs, pid), len(t.pairs) - 1)
                c = np.where(seen & (t.pairs[j] == pid), t.counts[j], 0).astype(np.float64)
                tot = np.where(seen, t.total[i], 0).astype(np.float64)
                ty = np.where(seen, t.types[i], 0).astype(np.float64)
                p = np.where(seen, (c + ty * p) / np.maximum(tot + ty, 1.0), p)
                out[k] += -np.log(p).sum()
        return out
