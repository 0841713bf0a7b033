"""Training data: which pieces, how they are split, and how they become batches.

``--data folk|chorales`` reads the cached music21 corpus (parsed once, see
:mod:`corpus`); ``--data DIR`` reads every MIDI file under DIR (cached too).  Pieces are
split by a fixed seed into train / validation / test, so evaluation and the n-gram baseline
see exactly the pieces training saw, and the held-out ones stay held out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .corpus import NoteSet, cache_dir, load_corpus
from .tokens import Augment, EventArrays, humanize

log = logging.getLogger(__name__)

SPLIT_SEED = 20261128


class DataError(Exception):
    """Training data that cannot make a useful model (missing, too little)."""


@dataclass
class Dataset:
    notes: NoteSet
    vel: np.ndarray | None  # per-note velocities (performance data) or None (score data)
    source: str

    def piece(self, i: int):
        on, du, pi, pa = self.notes.piece(i)
        a, b = int(self.notes.starts[i]), int(self.notes.starts[i + 1])
        return on, du, pi, pa, (self.vel[a:b] if self.vel is not None else None)


def load_dataset(data: str) -> Dataset:
    if data in ("folk", "chorales"):
        return Dataset(load_corpus(data), None, data)
    folder = Path(data)
    if not folder.is_dir():
        raise DataError(f"--data {data!r}: not 'folk', 'chorales' or a folder of MIDI files")
    from .midi import folder_key, load_folder

    path = cache_dir() / f"midi-{folder_key(folder)}.npz"
    if path.exists():
        ns = NoteSet.load(path)
        with np.load(path) as z:
            vel = z["vel"] if "vel" in z else None
    else:
        ns, vel, _skipped = load_folder(folder)
        if len(ns):
            ns.save(path, vel=vel)
    return Dataset(ns, vel, str(folder))


def split(n: int, val_frac: float = 0.05, test_frac: float = 0.03) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) piece indices, fixed by SPLIT_SEED; at least one validation piece."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = int(n * test_frac) if n >= 40 else 0
    n_val = max(1, int(round(n * val_frac)))
    return np.sort(perm[n_test + n_val:]), np.sort(perm[n_test:n_test + n_val]), np.sort(perm[:n_test])


def render(ds: Dataset, pieces: np.ndarray, rng: np.random.Generator, aug: Augment) -> list[EventArrays]:
    out = []
    for i in pieces:
        on, du, pi, pa, ve = ds.piece(int(i))
        out.append(humanize(on, du, pi, pa, ve, ds.notes.unit, rng, aug))
    return out


def batches(streams: list[EventArrays], seq_len: int, batch_size: int, rng: np.random.Generator | None):
    """Windows of at most seq_len events as padded (v, pitch, dt, voice, mask, held, last) tensor batches.

    With an rng, windows start at a random offset and are shuffled (training); without,
    they are in order (validation, deterministic).
    """
    windows = []
    for ev in streams:
        n = len(ev)
        start = int(rng.integers(0, min(seq_len, n))) if rng is not None and n > seq_len else 0
        if start:
            windows.append(ev.slice(0, start))
        for a in range(start, n, seq_len):
            windows.append(ev.slice(a, min(n, a + seq_len)))
    windows = [w for w in windows if len(w) >= 2]
    if rng is not None:
        rng.shuffle(windows)
    else:
        windows.sort(key=len)
    for b in range(0, len(windows), batch_size):
        group = windows[b:b + batch_size]
        T = max(len(w) for w in group)
        arr = np.zeros((5, len(group), T), np.int64)
        held = np.zeros((len(group), T, 16), np.uint8)
        last = np.full((len(group), T), -1, np.int64)
        for r, w in enumerate(group):
            L = len(w)
            arr[0, r, :L], arr[1, r, :L], arr[2, r, :L], arr[3, r, :L] = w.v, w.pitch, w.dt, w.voice
            arr[4, r, :L] = 1
            held[r, :L] = w.held
            last[r, :L] = w.last
        t = torch.from_numpy(arr)
        yield t[0], t[1], t[2], t[3], t[4].float(), torch.from_numpy(held), torch.from_numpy(last)
