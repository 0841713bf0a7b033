"""The streaming model's per-event arithmetic, compiled (numba): one GRU step, one head's
logits, one constrained draw, and a chord of draws from one state.

Why compiled: the harmonizer answers a performer's note with one step and a draw per
voice, between two of the performer's notes the model's weights and numpy's own code
leave the cache, and then each of the thirty-odd numpy calls such a step took cost 5 to
10 microseconds (0.6 ms in all, measured with 4 ms between notes on a busy two-core
machine).  Each function here is one call that reads its arrays once, and writes its
result into an array it is given (numba unpickles a type per call to return a new one).

The matrix products loop over the rows of a transposed (input-major) matrix, so the
compiler vectorises them without reordering any sum (no ``fastmath``): a result may differ
from numpy's BLAS in the last bit, never between runs.  Everything is float32, as the
weights are.  :func:`compile_all` compiles each for its declared types when a model loads
(once per machine, then from numba's cache), so none ever compiles on the engine thread.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def gru_step(t_v: np.ndarray, t_pitch: np.ndarray, t_dt: np.ndarray, t_voice: np.ndarray, t_int: np.ndarray,
             v: int, pitch: int, dtb: int, voice: int, interval: int, gh: np.ndarray, h: np.ndarray, out: np.ndarray) -> None:
    """The new hidden state after one GRU step, into ``out``: the input half is the sum of the fields'
    rows of the folded input tables (``t_int`` has no columns for a model without the
    interval input), the recurrent half ``gh`` is W_hh h + b_hh (reset, update, new: 3H
    each); h' = (h - n) z + n."""
    H = h.shape[0]
    one = np.float32(1.0)
    rel = t_int.shape[1] > 0
    for i in range(H):
        j, k = H + i, 2 * H + i
        gr = t_v[v, i] + t_pitch[pitch, i] + t_dt[dtb, i] + t_voice[voice, i]
        gz = t_v[v, j] + t_pitch[pitch, j] + t_dt[dtb, j] + t_voice[voice, j]
        gn = t_v[v, k] + t_pitch[pitch, k] + t_dt[dtb, k] + t_voice[voice, k]
        if rel:
            gr += t_int[interval, i]
            gz += t_int[interval, j]
            gn += t_int[interval, k]
        r = one / (np.exp(-(gr + gh[i])) + one)
        z = one / (np.exp(-(gz + gh[j])) + one)
        n = np.tanh(gh[k] * r + gn)
        out[i] = (h[i] - n) * z + n


@njit(cache=True, nogil=True)
def matvec_t(wt: np.ndarray, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``wt.T @ x + b`` for an input-major matrix ``wt`` (inputs x outputs)."""
    out = b.copy()
    for j in range(wt.shape[0]):
        xj = x[j]
        row = wt[j]
        for i in range(out.shape[0]):
            out[i] += row[i] * xj
    return out


@njit(cache=True, nogil=True)
def head_logits(h: np.ndarray, in_wt: np.ndarray, in_b: np.ndarray, voice_row: np.ndarray, known1: np.ndarray,
                known2: np.ndarray, out_wt: np.ndarray, out_b: np.ndarray, rel_wt: np.ndarray, rel_b: np.ndarray,
                rel_idx: np.ndarray, logits: np.ndarray) -> None:
    """A head's logits from the hidden state ``h``, into ``logits``: its input layer (``in_wt``, ``in_b``) plus
    the asked voice's embedding and those of the known fields (``known1``, ``known2``; empty
    when fewer are known), tanh, the output layer, and (when ``rel_idx`` is not empty) the
    interval logits placed on absolute pitches (``rel_idx[p]``: pitch p's interval index,
    the last one meaning none)."""
    z = matvec_t(in_wt, h, in_b)
    D = z.shape[0]
    for i in range(D):
        x = z[i] + voice_row[i]
        if known1.shape[0] > 0:
            x += known1[i]
        if known2.shape[0] > 0:
            x += known2[i]
        z[i] = np.tanh(x)
    logits[:] = matvec_t(out_wt, z, out_b)
    if rel_idx.shape[0] > 0:
        rel = np.zeros(rel_b.shape[0] + 1, np.float32)
        rel[: rel_b.shape[0]] = matvec_t(rel_wt, z, rel_b)
        for p in range(logits.shape[0]):
            logits[p] += rel[rel_idx[p]]


@njit(cache=True, nogil=True)
def _pick(p: np.ndarray, top_p: float, u: float, best: int) -> int:
    """The value whose share of the (top-``top_p``) weights ``p`` the uniform ``u`` falls in."""
    if top_p < 1.0:
        order = np.argsort(p)[::-1]
        c = np.cumsum(p[order])
        k = min(_count_below(c, c.shape[0], top_p * c[-1], False) + 1, c.shape[0])
        j = _count_below(c, k, u * c[k - 1], True)
        return int(order[min(j, k - 1)])
    c = np.cumsum(p)
    j = min(_count_below(c, c.shape[0], u * c[-1], True), c.shape[0] - 1)
    return j if p[j] > 0.0 else best


@njit(cache=True, nogil=True)
def _count_below(c: np.ndarray, n: int, x: float, inclusive: bool) -> int:
    """How many of the sorted ``c[:n]`` are below ``x`` (or equal too, with ``inclusive``):
    numpy's searchsorted, left or right (whose ``side`` string numba unpickles per call)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if c[mid] < x or (inclusive and c[mid] == x):
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def draw(logits: np.ndarray, allow: np.ndarray, deny: np.ndarray, bias: np.ndarray, penalty_at: int, penalty: float,
         temperature: float, top_p: float, u: float, weight: float, q: np.ndarray) -> int:
    """An index where ``allow`` holds and ``deny`` (if not empty) does not, drawn with the
    uniform ``u`` from softmax((logits - penalty at ``penalty_at`` + bias) / temperature)
    (``bias`` may be empty), mixed in linear space with ``q`` (weight ``weight``,
    renormalised over the allowed values; ignored where it gives them nothing, or when it is
    empty), then the nucleus ``top_p``.  -1: nothing is allowed."""
    n = logits.shape[0]
    ok = allow.copy()
    if deny.shape[0] > 0:
        for i in range(n):
            ok[i] = ok[i] and not deny[i]
    l = np.empty(n, np.float64)
    best = -1
    for i in range(n):
        x = np.float64(logits[i])
        if i == penalty_at:
            x -= penalty
        if bias.shape[0] > 0:
            x += bias[i]
        l[i] = x
        if ok[i] and (best < 0 or x > l[best]):
            best = i
    if best < 0:
        return -1
    total_q = 0.0
    if q.shape[0] > 0 and weight > 0.0:
        for i in range(n):
            if ok[i]:
                total_q += q[i]
    mixed = total_q > 0.0
    if temperature <= 1e-4 and not mixed:
        return best
    inv = 1.0 / max(temperature, 1e-4)
    top = l[best]
    p = np.zeros(n, np.float64)
    for i in range(n):
        if ok[i]:
            p[i] = np.exp((l[i] - top) * inv)
    if mixed:
        scale = (1.0 - weight) / p.sum()
        for i in range(n):
            p[i] *= scale
            if ok[i]:
                p[i] += q[i] * (weight / total_q)
    return _pick(p, top_p, u, best)



@njit(cache=True, nogil=True)
def _agreeing(agree: np.ndarray, key_bits: int, anchor: int, notes: np.ndarray, count: int, soft: np.ndarray,
              doubled: bool) -> int:
    """The pitch classes (12 bits) in ``key_bits`` that agree with the anchor's, with each of
    the first ``count`` ``notes`` and with each ``soft`` pitch (``agree[pc]``: the classes
    that agree with pc); with ``doubled``, a note's own class counts as agreeing with it."""
    bits = key_bits if anchor < 0 else key_bits & agree[anchor % 12]
    for i in range(count):
        pc = notes[i] % 12
        bits &= agree[pc] | (1 << pc) if doubled else agree[pc]
    for i in range(soft.shape[0]):
        bits &= agree[soft[i] % 12]
    return bits


@njit(cache=True, nogil=True)
def chord_draws(logits: np.ndarray, allow: np.ndarray, deny: np.ndarray, key_bits: int, anchor: int, agree: np.ndarray,
                pitches: np.ndarray, n_soft: int, pull: float, weight: float, q: np.ndarray,
                temperature: float, top_p: float, u: np.ndarray, out: np.ndarray) -> int:
    """Up to ``u.shape[0]`` pitches drawn one after another from one head's ``logits``
    (each with its uniform ``u[i]``, as :func:`draw`), into ``out``; the count drawn.
    ``pitches``: the ``soft`` pitches (the first ``n_soft``), then the ``lead_from`` ones.

    Each pitch is allowed (``allow``, not ``deny``, not drawn already) and its pitch class
    in ``key_bits`` (12 bits); with a rule (``agree`` not empty) it also agrees with the
    ``anchor`` pitch's class (none if negative) and with every pitch drawn before it, and
    with the ``soft`` pitches where that still leaves a class, else a drawn class may be
    doubled; when no class is left the chord ends there.  Voice leading: with ``pull`` > 0,
    each pitch is pulled (``-pull`` logits per semitone) toward the nearest of the
    ``lead_from`` pitches not yet taken, and the drawn pitch takes the nearest one (the
    first in order on a tie).  The first pitch alone mixes in ``q`` (``weight``).
    """
    n = logits.shape[0]
    size = min(u.shape[0], out.shape[0])
    soft = pitches[:n_soft]
    lead_from = pitches[n_soft:]
    rule = agree.shape[0] > 0
    none = np.empty(0, np.int64)
    taken = np.zeros(lead_from.shape[0], np.bool_)
    left = lead_from.shape[0] if pull > 0.0 else 0
    ok = np.empty(n, np.bool_)
    bias = np.empty(n, np.float32)
    no_bias = np.empty(0, np.float32)
    no_q = np.empty(0, np.float64)
    drawn = np.zeros(n, np.bool_)
    step = np.float32(-pull)
    for k in range(size):
        bits = key_bits
        if rule:
            bits = _agreeing(agree, key_bits, anchor, out, k, soft, False)
            if bits == 0:
                bits = _agreeing(agree, key_bits, anchor, out, k, none, False)
            if bits == 0:
                bits = _agreeing(agree, key_bits, anchor, out, k, none, True)
            if bits == 0:
                return k
        for p in range(n):
            ok[p] = allow[p] and not drawn[p] and (bits >> (p % 12)) & 1 == 1
        if left > 0:
            for p in range(n):
                best = np.float32(-np.inf)
                for j in range(lead_from.shape[0]):
                    if not taken[j]:
                        best = max(best, step * np.float32(abs(p - lead_from[j])))
                bias[p] = best
        pick = draw(logits, ok, deny, bias if left > 0 else no_bias, -1, 0.0, temperature, top_p, u[k],
                    weight if k == 0 else 0.0, q if k == 0 else no_q)
        if pick < 0:
            return k
        out[k] = pick
        drawn[pick] = True
        if left > 0:
            near = -1
            for j in range(lead_from.shape[0]):
                if not taken[j] and (near < 0 or abs(lead_from[j] - pick) < abs(lead_from[near] - pick)):
                    near = j
            taken[near] = True
            left -= 1
    return size


@njit(cache=True, nogil=True)
def step_chord(t_v: np.ndarray, t_pitch: np.ndarray, t_dt: np.ndarray, t_voice: np.ndarray, t_int: np.ndarray,
               v: int, pitch: int, dtb: int, voice: int, interval: int, gh: np.ndarray, h: np.ndarray, h_out: np.ndarray,
               in_wt: np.ndarray, in_b: np.ndarray, voice_row: np.ndarray, known1: np.ndarray, known2: np.ndarray,
               out_wt: np.ndarray, out_b: np.ndarray, rel_wt: np.ndarray, rel_b: np.ndarray, rel_idx: np.ndarray,
               logits: np.ndarray, allow: np.ndarray, deny: np.ndarray, key_bits: int, anchor: int, agree: np.ndarray,
               pitches: np.ndarray, n_soft: int, pull: float, weight: float, q: np.ndarray,
               temperature: float, top_p: float, u: np.ndarray, out: np.ndarray) -> int:
    """:func:`gru_step` into ``h_out``, then the pitch head's :func:`head_logits` from it, then
    :func:`chord_draws`: a harmony's whole answer to one note in one call (each call from
    Python costs microseconds of dispatch, and more when the machine has been idle)."""
    gru_step(t_v, t_pitch, t_dt, t_voice, t_int, v, pitch, dtb, voice, interval, gh, h, h_out)
    head_logits(h_out, in_wt, in_b, voice_row, known1, known2, out_wt, out_b, rel_wt, rel_b, rel_idx, logits)
    return chord_draws(logits, allow, deny, key_bits, anchor, agree, pitches, n_soft, pull, weight, q, temperature, top_p, u, out)

_SIGNATURES = {
    gru_step: ["void(float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1], "
               "int64, int64, int64, int64, int64, float32[::1], float32[::1], float32[::1])"],
    matvec_t: ["float32[::1](float32[:, ::1], float32[::1], float32[::1])"],
    head_logits: ["void(float32[::1], float32[:, ::1], float32[::1], float32[::1], float32[::1], float32[::1], "
                  "float32[:, ::1], float32[::1], float32[:, ::1], float32[::1], int64[::1], float32[::1])"],
    _count_below: ["int64(float64[::1], int64, float64, boolean)"],
    _pick: ["int64(float64[::1], float64, float64, int64)"],
    draw: [f"int64(float32[::1], boolean[::1], boolean[::1], {t}[::1], int64, float64, float64, float64, float64, float64, float64[::1])"
           for t in ("float32", "float64")],
    _agreeing: ["int64(int64[::1], int64, int64, int64[::1], int64, int64[::1], boolean)"],
    chord_draws: ["int64(float32[::1], boolean[::1], boolean[::1], int64, int64, int64[::1], int64[::1], int64, "
                  "float64, float64, float64[::1], float64, float64, float64[::1], int64[::1])"],
    step_chord: ["int64(float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1], float32[:, ::1], "
                 "int64, int64, int64, int64, int64, float32[::1], float32[::1], float32[::1], "
                 "float32[:, ::1], float32[::1], float32[::1], float32[::1], float32[::1], "
                 "float32[:, ::1], float32[::1], float32[:, ::1], float32[::1], int64[::1], float32[::1], "
                 "boolean[::1], boolean[::1], int64, int64, int64[::1], int64[::1], int64, "
                 "float64, float64, float64[::1], float64, float64, float64[::1], int64[::1])"],
}
_ready = False


def compile_all() -> None:
    """Compile every kernel for its declared types (or load them from numba's cache: about
    a second), then forbid compiling more: an argument of another type is a TypeError, never
    a compilation on the engine thread.  Called when a model loads."""
    global _ready
    if _ready:
        return
    for kernel, signatures in _SIGNATURES.items():
        for signature in signatures:
            kernel.compile(signature)
        kernel.disable_compile()
    _ready = True
