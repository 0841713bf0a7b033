"""The event RNN: a GRU that takes one step per MIDI event, and factorised output heads.

Training uses :class:`EventRNN` (torch, whole sequences at once).  Playing uses
:class:`StreamingModel`, the same weights copied into numpy arrays and folded so that one
step is three table look-ups plus one matrix-vector product: per-call torch overhead
would cost more than the arithmetic at these sizes.

The heads: each field (``v`` = note-off or velocity bin, ``pitch``, ``dt`` bin) has its own
head that reads the hidden state, the voice being asked for, and an embedding of every
other field that is already known (or an "unknown" embedding).  Training draws a random
order of the three fields per event, so any subset can be fixed and the rest sampled in
sequence: p(a, b, c) = p(a) p(b | a) p(c | a, b) for every order.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from . import kernels
from .api import ChordConstraints, Constraints, ModelEvent
from .sampling import Sampler
from .tokens import DT_EDGES, DT_MIN, FIELD_SIZES, N_DT, N_INT, N_PITCH, N_V, N_VOICE, REL_RANGE, vel_bin


@dataclass(frozen=True)
class NetConfig:
    hidden: int = 256  # GRU state size
    embed: int = 128  # input embedding size
    head: int = 128  # width of each head's hidden layer
    relative: bool = False  # interval-from-last-note input and interval-relative pitch logits
    dropout: float = 0.0  # training only (GRU input and output): long GPU runs see each tune hundreds of times

    def as_dict(self) -> dict:
        return asdict(self)


class EventRNN(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        E, H, D = cfg.embed, cfg.hidden, cfg.head
        self.in_v = nn.Embedding(N_V, E)
        self.in_pitch = nn.Embedding(N_PITCH, E)
        self.in_dt = nn.Embedding(N_DT, E)
        self.in_voice = nn.Embedding(N_VOICE, E)
        self.gru = nn.GRU(E, H, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(H))
        self.drop = nn.Dropout(cfg.dropout)  # no weights: checkpoints and the streaming model do not change
        # Head k: hidden -> D, plus the asked voice, plus known-field embeddings (index N = unknown).
        self.head_in = nn.ModuleList(nn.Linear(H, D) for _ in range(3))
        self.head_voice = nn.ModuleList(nn.Embedding(N_VOICE, D) for _ in range(3))
        self.head_known = nn.ModuleList(
            nn.ModuleList(nn.Embedding(FIELD_SIZES[j] + 1, D) for j in range(3)) for _ in range(3)
        )
        self.head_out = nn.ModuleList(nn.Linear(D, FIELD_SIZES[k]) for k in range(3))
        if cfg.relative:
            # Melodies move by intervals: the input says how far this note is from the voice's
            # last note-on, and the pitch head adds interval logits to its absolute ones, so a
            # pattern learnt in one key works in all of them.
            self.in_interval = nn.Embedding(N_INT + 1, E)
            self.rel_out = nn.Linear(D, N_INT)

    def forward(self, v, pitch, dt, voice, mask, held=None, last=None, order=None):
        """The training loss (so DistributedDataParallel wraps it): see :meth:`loss`."""
        return self.loss(v, pitch, dt, voice, mask, held=held, last=last, order=order)

    def embed(self, v: torch.Tensor, pitch: torch.Tensor, dt: torch.Tensor, voice: torch.Tensor,
              last: torch.Tensor | None = None) -> torch.Tensor:
        x = self.in_v(v) + self.in_pitch(pitch) + self.in_dt(dt) + self.in_voice(voice)
        if self.cfg.relative:
            x = x + self.in_interval(interval_index_t(pitch, last if last is not None else torch.full_like(pitch, -1)))
        return x

    def run(self, v, pitch, dt, voice, last=None, h=None):
        """Hidden states *before* each event (so position t predicts event t) and the last state.

        ``last``: each event's voice's previous note-on pitch (-1 none), for the interval input.
        """
        B, T = v.shape
        x = self.drop(self.embed(v, pitch, dt, voice, last))
        h_init = self.h0.expand(1, B, -1).contiguous() if h is None else h
        # The recurrence stays float32 under autocast: over hundreds of steps bf16's short
        # mantissa would drift from the float32 step that plays.
        with torch.autocast(x.device.type, enabled=False):
            out, h_last = self.gru(x.float(), h_init.float())
        before = torch.cat([h_init.transpose(0, 1), out[:, :-1]], dim=1)
        return before, h_last

    @staticmethod
    def _allowed(v, pitch, mask, held, order):
        return _allowed_impl(v, pitch, mask, held, order)

    def head_logits(self, k: int, hb: torch.Tensor, voice: torch.Tensor, known: list[torch.Tensor],
                    last: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of field k; ``known[j]`` holds field j's value or FIELD_SIZES[j] for unknown."""
        z = self.head_in[k](hb) + self.head_voice[k](voice)
        for j in range(3):
            if j != k:
                z = z + self.head_known[k][j](known[j])
        a = torch.tanh(z)
        logits = self.head_out[k](a)
        if k == 1 and self.cfg.relative:
            rel = self.rel_out(a)
            rel = torch.cat([rel, torch.zeros_like(rel[..., :1])], dim=-1)
            lst = last if last is not None else torch.full(voice.shape, -1, dtype=torch.long, device=voice.device)
            idx = interval_index_t(torch.arange(N_PITCH, device=voice.device), lst.unsqueeze(-1))
            logits = logits + torch.gather(rel, -1, idx)
        return logits

    def loss(self, v, pitch, dt, voice, mask, held: torch.Tensor | None = None, last: torch.Tensor | None = None,
             order: torch.Tensor | None = None):
        """Summed NLL (nats) of each field and the number of events, under random field orders.

        ``order``: (B, T, 3) rank of each field (0 first); random when None.  Canonical
        evaluation uses ranks (0, 1, 2): v, then pitch, then dt.  ``held``: (B, T, 16) packed
        bits of the pitches the event's voice holds; with it, the heads are renormalised over
        the events that can happen (note-offs of held pitches, note-ons of the others), as
        the sampler does.
        """
        hb, _ = self.run(v, pitch, dt, voice, last)
        hb = self.drop(hb)
        if order is None:
            order = torch.argsort(torch.rand(*v.shape, 3, device=v.device), dim=-1)
        allowed = self._allowed(v, pitch, mask, held, order) if held is not None else (None, None)
        vals = (v, pitch, dt)
        losses = []
        for k in range(3):
            known = []
            for j in range(3):
                if j == k:
                    known.append(vals[j])
                else:
                    unk = torch.full_like(vals[j], FIELD_SIZES[j])
                    known.append(torch.where(order[..., j] < order[..., k], vals[j], unk))
            logits = self.head_logits(k, hb, voice, known, last)
            if k < 2 and allowed[k] is not None:
                logits = logits.masked_fill(~allowed[k], -1e9)
            nll = nn.functional.cross_entropy(logits.reshape(-1, FIELD_SIZES[k]), vals[k].reshape(-1), reduction="none")
            losses.append((nll.view(v.shape) * mask).sum())
        return losses, mask.sum()


def interval_index_t(pitch: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`tokens.interval_index` (broadcasting)."""
    d = pitch - last
    return torch.where((last >= 0) & (d.abs() <= REL_RANGE), d + REL_RANGE, torch.full_like(d, N_INT))


_BITS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def unpack_held(held: torch.Tensor) -> torch.Tensor:
    """(..., 16) packed uint8 -> (..., 128) bool."""
    return (held.unsqueeze(-1) & _BITS.to(held.device)).ne(0).flatten(-2)


def _allowed_impl(v, pitch, mask, held, order):
    h = unpack_held(held)  # (B, T, 128)
    pad = (mask == 0).unsqueeze(-1)
    # pitch head, when v is known: offs among held pitches, ons among the others.
    v_known = (order[..., 0] < order[..., 1]).unsqueeze(-1)
    is_off = (v == 0).unsqueeze(-1)
    pitch_ok = torch.where(is_off, h, ~h)
    pitch_ok = torch.where(v_known, pitch_ok, torch.ones_like(h)) | pad
    # v head: with the pitch known, held -> off only, else on only; without it, off needs a held pitch.
    p_known = (order[..., 1] < order[..., 0]).unsqueeze(-1)
    p_held = torch.gather(h, -1, pitch.unsqueeze(-1))  # (B, T, 1)
    any_held = h.any(-1, keepdim=True)
    idx = torch.arange(N_V, device=v.device)
    off_slot = idx == 0
    v_known_pitch = torch.where(p_held, off_slot.expand(*v.shape, N_V), (~off_slot).expand(*v.shape, N_V))
    v_free = torch.where(any_held, torch.ones_like(v_known_pitch), (~off_slot).expand(*v.shape, N_V))
    v_ok = torch.where(p_known, v_known_pitch, v_free) | pad
    return v_ok, pitch_ok


def _blas_single_thread() -> None:
    """Keep numpy's OpenBLAS on the calling thread: a threaded matrix-vector product wakes a
    second core per step and turns a 20 us p99 into a millisecond on a busy machine."""
    import ctypes
    import glob
    import os

    global _BLAS_LOCAL
    if _BLAS_LOCAL is None:
        _BLAS_LOCAL = False
        for lib in glob.glob(os.path.join(os.path.dirname(np.__file__) + ".libs", "*openblas*")):
            try:
                fn = ctypes.CDLL(lib).openblas_set_num_threads_local
            except (OSError, AttributeError):
                continue
            fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
            _BLAS_LOCAL = fn
            break
    if _BLAS_LOCAL:
        _BLAS_LOCAL(1)


_BLAS_LOCAL = None
_BLAS_SET = threading.local()  # .done on a thread already made single-threaded (the setting is per thread)
_DT_EDGES = DT_EDGES.tolist()
_PITCH_HEAD = 1  # the heads: 0 note-off or velocity, 1 pitch, 2 time


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


class StreamingModel:
    """One event in, one GRU step; ``sample`` under constraints without touching the state.

    Implements :class:`livecomposer.model.api.IncrementalModel`.  Created by
    :func:`livecomposer.model.load_model`; all arithmetic is float32 on the calling thread:
    the recurrent product W_hh h through numpy's BLAS (ahead of time with :meth:`prime`),
    the rest of a step, the heads and the draws compiled (:mod:`.kernels`).
    """

    def __init__(self, net: EventRNN, name: str = "model", config: dict | None = None) -> None:
        self.name = name
        self.config = dict(config or {})
        with torch.inference_mode():
            g = net.gru
            w_ih, w_hh = _np(g.weight_ih_l0), _np(g.weight_hh_l0)
            b_ih, b_hh = _np(g.bias_ih_l0), _np(g.bias_hh_l0)
            # Input projection folded into per-field tables: W_ih (e_v + e_p + e_dt + e_voice) + b_ih.
            self._t_v = _np(net.in_v.weight) @ w_ih.T + b_ih
            self._t_pitch = _np(net.in_pitch.weight) @ w_ih.T
            self._t_dt = _np(net.in_dt.weight) @ w_ih.T
            self._t_voice = _np(net.in_voice.weight) @ w_ih.T
            self._w_hh = np.ascontiguousarray(w_hh)
            self._b_hh = b_hh
            self.hidden_size = w_hh.shape[1]
            self._h0 = _np(net.h0)
            # Heads.  Known-field embeddings are stored relative to "unknown", which is folded into the bias.
            head_w = [_np(net.head_in[k].weight) for k in range(3)]
            self._head_b = []
            self._head_known = []
            for k in range(3):
                b = _np(net.head_in[k].bias)
                rel = []
                for j in range(3):
                    if j == k:
                        rel.append(None)
                        continue
                    e = _np(net.head_known[k][j].weight)
                    b = b + e[-1]
                    rel.append(np.ascontiguousarray(e[:-1] - e[-1]))
                self._head_b.append(b)
                self._head_known.append(rel)
            self._head_voice = [_np(net.head_voice[k].weight) for k in range(3)]
            self._out_b = [_np(net.head_out[k].bias) for k in range(3)]
            # Input-major, for the compiled heads (see kernels.matvec_t).
            self._in_wt = [np.ascontiguousarray(w.T) for w in head_w]
            self._out_wt = [np.ascontiguousarray(_np(net.head_out[k].weight).T) for k in range(3)]
            self.relative = bool(net.cfg.relative)
            D = self._head_b[0].shape[0]
            if self.relative:
                self._t_int = _np(net.in_interval.weight) @ w_ih.T
                self._rel_wt = np.ascontiguousarray(_np(net.rel_out.weight).T)
                self._rel_b = _np(net.rel_out.bias)
                # _rel_idx[last + 1] maps the interval logits (+ a 0 for "far") onto absolute pitches.
                lasts = np.arange(-1, N_PITCH)[:, None]
                from .tokens import interval_index

                self._rel_idx = np.ascontiguousarray(interval_index(np.arange(N_PITCH)[None, :], lasts), dtype=np.int64)
            else:
                self._t_int = np.zeros((N_INT + 1, 0), np.float32)
                self._rel_wt = np.zeros((D, 0), np.float32)
                self._rel_b = np.zeros(0, np.float32)
                self._rel_idx = np.zeros((N_PITCH + 1, 0), np.int64)
        self._none = np.zeros(0, np.float32)
        self._spare = np.zeros(self.hidden_size, np.float32)
        self._chord_logits = np.zeros(N_PITCH, np.float32)
        kernels.compile_all()
        self._sampler = Sampler(self)
        self._thread = 0
        self.version = 0  # bumped by every change of state: a snapshot taken at a version still holds
        self.holder: object | None = None  # whose history the state is, set by its users (a partner's Track)
        self._warm_up()
        self.reset()

    def _warm_up(self) -> None:
        """One step and one draw now, where the model loads: the first ones find the BLAS
        library, and each compiled kernel's first call sets up its dispatch (11 ms measured
        for a first harmonizer answer, on the engine thread)."""
        self.reset()
        self.prime()
        self.feed(ModelEvent(0.1, 60, 80, 0))
        self.sample(Constraints(note_on=True, pitch_bias=np.zeros(128, np.float32), pitch_mix=(0.5, np.ones(128) / 128)),
                    np.random.default_rng(0))
        self.sample(Constraints(), np.random.default_rng(0))
        self.feed_and_sample_chord(ModelEvent(0.1, 72, 80, 0), ChordConstraints(
            size=2, velocity=80, anchor=72, soft=(76,), agree=np.full(12, 0xFFF, np.int64), lead_from=(60,), lead_pull=0.5,
            pitch_mix=(0.5, np.ones(128) / 128)), np.random.default_rng(0))

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        self._h = self._h0.copy()
        self._held: dict[int, set[int]] = {}
        self._held_mask = np.zeros((2, 128), bool)  # the same, as masks, for the sampler
        self._last = [-1, -1]  # each voice's last note-on pitch (before a voice's first note, the other's counts)
        self._gh: np.ndarray | None = None  # W_hh h + b_hh for the current state, once primed
        self.version += 1

    def get_state(self):
        return (self._h.copy(), {v: set(s) for v, s in self._held.items()}, tuple(self._last), self._gh)

    def set_state(self, state) -> None:
        h, held, last, gh = state
        self.version += 1
        self._h = h.copy()
        self._gh = gh
        self._last = list(last)
        self._held = {v: set(s) for v, s in held.items()}
        self._held_mask[:] = False
        for v, s in self._held.items():
            self._held_mask[v, list(s)] = True

    def held_pitches(self) -> frozenset[int]:
        out: set[int] = set()
        for s in self._held.values():
            out |= s
        return frozenset(out)

    def held_by(self, voice: int) -> frozenset[int]:
        return frozenset(self._held.get(voice, ()))

    def hidden_features(self) -> np.ndarray:
        return self._h.copy()

    # -- stepping ----------------------------------------------------------------------
    def feed(self, event) -> None:
        self.step(*self._account(event))

    def _account(self, event) -> tuple[int, int, int, int, int]:
        """``event``'s binned fields for :meth:`step` (its interval from the last note-on
        before it); the held notes and last pitches are updated to after it."""
        voice = 1 if event.voice else 0
        pitch = int(event.pitch)
        last = self._last[voice] if self._last[voice] >= 0 else self._last[1 - voice]
        iv = pitch - last + REL_RANGE if last >= 0 and -REL_RANGE <= pitch - last <= REL_RANGE else N_INT
        dt = event.dt
        dtb = 0 if dt < DT_MIN else min(bisect.bisect_right(_DT_EDGES, dt) - 1, N_DT - 1)  # tokens.dt_bin, without a numpy call
        held = self._held.setdefault(voice, set())
        if event.velocity > 0:
            self._last[voice] = pitch
            held.add(pitch)
            self._held_mask[voice, pitch] = True
        else:
            held.discard(pitch)
            self._held_mask[voice, pitch] = False
        return vel_bin(event.velocity), pitch, dtb, voice, iv

    def _on_this_thread(self) -> None:
        """numpy's BLAS single-threaded for the thread now calling (see :func:`_blas_single_thread`)."""
        ident = threading.get_ident()
        if ident != self._thread:
            self._thread = ident
            if not getattr(_BLAS_SET, "done", False):  # (per thread object: an ident is reused after a thread ends)
                _blas_single_thread()
                _BLAS_SET.done = True

    def step(self, v: int, pitch: int, dtb: int, voice: int, interval: int = N_INT) -> None:
        """One GRU step on already-binned fields (held notes and last pitches are the caller's business)."""
        self._on_this_thread()
        gh = self._gh if self._gh is not None else self._recurrent()
        out, self._spare = self._spare, self._h  # (nothing else holds the old state: snapshots copy it)
        kernels.gru_step(self._t_v, self._t_pitch, self._t_dt, self._t_voice, self._t_int, v, pitch, dtb, voice, interval, gh,
                         self._h, out)
        self._h = out
        self._gh = None
        self.version += 1

    def feed_and_sample_chord(self, event, chord: ChordConstraints, rng: np.random.Generator) -> list[int]:
        """:meth:`feed`, then a chord drawn from the new state (see :class:`ChordConstraints`),
        in one compiled call (:func:`.kernels.step_chord`): the harmonizer's answer to the
        performer's note.  Each Python call between them cost microseconds, tens of them
        together on a machine that was idle until the note came."""
        v, pitch, dtb, voice, iv = self._account(event)
        self._on_this_thread()
        gh = self._gh if self._gh is not None else self._recurrent()
        out, self._spare = self._spare, self._h
        cv = 1 if chord.voice else 0
        last = self._last[cv] if self._last[cv] >= 0 else self._last[1 - cv]
        known = self._head_known[_PITCH_HEAD]
        args = self._sampler.chord_args(chord, rng)
        count = kernels.step_chord(
            self._t_v, self._t_pitch, self._t_dt, self._t_voice, self._t_int, v, pitch, dtb, voice, iv, gh, self._h, out,
            self._in_wt[_PITCH_HEAD], self._head_b[_PITCH_HEAD], self._head_voice[_PITCH_HEAD][cv], known[0][vel_bin(chord.velocity)],
            known[2][0], self._out_wt[_PITCH_HEAD], self._out_b[_PITCH_HEAD], self._rel_wt, self._rel_b, self._rel_idx[last + 1],
            self._chord_logits, *args)
        self._h = out
        self._gh = None
        self.version += 1
        return args[-1][:count].tolist()

    def _recurrent(self) -> np.ndarray:
        """The recurrent half of the next step, W_hh h + b_hh: the model's largest matrix
        (1.7 MB for the chorale model), a few hundred microseconds when it is not in cache."""
        gh = self._w_hh @ self._h
        gh += self._b_hh
        return gh

    def prime(self) -> None:
        """Compute now the half of the next step that needs the state alone (W_hh h + b_hh):
        a job calls this off the latency path, so that the next :meth:`feed` (the performer's
        note the harmonizer answers) is table look-ups and a few vector operations."""
        if self._gh is None:
            self._on_this_thread()
            self._gh = self._recurrent()

    def head_logits(self, k: int, voice: int, known: dict[int, int], out: np.ndarray | None = None) -> np.ndarray:
        """Head ``k``'s logits for ``voice`` given the known fields, into ``out`` (float32, the
        head's size) or a new array."""
        self._on_this_thread()
        rows = [self._head_known[k][j][x] for j, x in known.items()] + [self._none, self._none]
        last = self._last[voice] if self._last[voice] >= 0 else self._last[1 - voice]
        rel_idx = self._rel_idx[last + 1] if k == 1 else self._rel_idx[0, :0]
        logits = np.empty(FIELD_SIZES[k], np.float32) if out is None else out
        kernels.head_logits(self._h, self._in_wt[k], self._head_b[k], self._head_voice[k][voice], rows[0], rows[1],
                            self._out_wt[k], self._out_b[k], self._rel_wt, self._rel_b, rel_idx, logits)
        return logits

    def sample(self, constraints, rng: np.random.Generator):
        return self._sampler.sample(constraints, rng)

    def log_probs(self, k: int, voice: int, known: dict[int, int]) -> np.ndarray:
        """Log-probabilities of field k given the voice and the known fields (for eval and tests)."""
        logits = self.head_logits(k, voice, known)
        m = logits.max()
        return logits - (m + np.log(np.exp(logits - m).sum()))
