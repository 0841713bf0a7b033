"""Model timing: one feed (GRU step), one sample (three constrained heads), and both, per shipped model.

Each shipped model is loaded, warmed up on a short phrase, then timed event by event on
one thread (torch and BLAS held to one thread, as in the engine).  The fed events are a
scale-like melody with note-offs; the sampler is asked for a machine note in G major,
pitch range 48-84, at most 4 held notes, temperature 0.9, top-p 0.95.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from . import BenchOptions, Measurement, summarize


def _events(n: int, rng: np.random.Generator):
    from ..model.api import ModelEvent

    out = []
    pitch = 67
    for i in range(n // 2 + 1):
        pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2, 3, -3]), 50, 84))
        out.append(ModelEvent(float(rng.uniform(0.05, 0.3)), pitch, int(rng.integers(50, 110)), 0))
        out.append(ModelEvent(float(rng.uniform(0.05, 0.2)), pitch, 0, 0))
    return out[:n]


def measure_model(name: str, events: int, seed: int = 0) -> list[Measurement]:
    from ..model import load_model
    from ..model.api import Constraints

    torch.set_num_threads(1)
    t0 = time.perf_counter_ns()
    m = load_model(name)
    load_ns = time.perf_counter_ns() - t0
    rng = np.random.default_rng(seed)
    evs = _events(events, rng)
    c = Constraints(temperature=0.9, top_p=0.95, pitch_range=(48, 84), pitch_classes=frozenset({7, 9, 11, 0, 2, 4, 6}),
                    max_polyphony=4, note_on=True)
    for e in evs[:200]:  # warm up caches and the branch predictor
        m.feed(e)
        m.sample(c, rng)
    m.reset()
    feed, samp, both = [], [], []
    clock = time.perf_counter_ns
    for e in evs:
        t = clock()
        m.feed(e)
        t1 = clock()
        m.sample(c, rng)
        t2 = clock()
        feed.append(t1 - t)
        samp.append(t2 - t1)
        both.append(t2 - t)
    hidden = getattr(m, "hidden_size", "?")
    note = f"hidden {hidden}, one thread"
    return [
        summarize(f"model.{name}.load", [load_ns], note="load_model, torch already imported"),
        summarize(f"model.{name}.feed", feed, note),
        summarize(f"model.{name}.sample", samp, note + ", first sample after a feed (heads recomputed)"),
        summarize(f"model.{name}.feed+sample", both, note),
    ]


def measure(options: BenchOptions) -> list[Measurement]:
    from ..model import shipped_models

    n = 500 if options.quick else options.events
    out: list[Measurement] = []
    for name in shipped_models():
        out += measure_model(name, n)
    return out
