"""The streaming model's compiled arithmetic (model/kernels.py) against plain numpy, and the
shortcuts the harmonizer's latency path takes (a primed step, an unchanged state kept)."""

from __future__ import annotations

import numpy as np
import pytest

from test_partners import CHORALE, require_model
from livecomposer.model import kernels, load_model
from livecomposer.model.api import Constraints, ModelEvent
from livecomposer.model.tokens import N_INT, dt_bin, vel_bin


@pytest.fixture(scope="module")
def model():
    require_model(CHORALE)
    return load_model(CHORALE)


def reference_draw(logits, mask, temperature, top_p, u, weight=0.0, q=None):
    """The draw as numpy code, in float64 (what kernels.draw computes)."""
    l = np.where(mask, logits.astype(np.float64), -np.inf)
    best = int(l.argmax())
    p = np.where(mask, np.exp((l - l[best]) / max(temperature, 1e-4)), 0.0)
    if q is not None and weight > 0 and (qm := np.where(mask, q, 0.0)).sum() > 0:
        p = p * (1 - weight) / p.sum() + qm * (weight / qm.sum())
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        c = np.cumsum(p[order])
        k = min(int(np.searchsorted(c, top_p * c[-1])) + 1, len(c))
        return int(order[min(int(np.searchsorted(c[:k], u * c[k - 1], "right")), k - 1)])
    c = np.cumsum(p)
    j = min(int(np.searchsorted(c, u * c[-1], "right")), len(c) - 1)
    return j if p[j] > 0 else best


def test_the_compiled_draw_picks_what_numpy_picks() -> None:
    rng = np.random.default_rng(1)
    none_b, none_f = np.zeros(0, bool), np.zeros(0, np.float32)
    for _ in range(2000):
        logits = (rng.normal(size=128) * 3).astype(np.float32)
        mask = rng.random(128) < 0.3
        mask[rng.integers(128)] = True
        t, top_p, u = float(rng.uniform(0.2, 1.5)), float(rng.choice([1.0, 0.9])), float(rng.random())
        q = rng.random(128) if rng.random() < 0.5 else None
        w = 0.6 if q is not None else 0.0
        got = kernels.draw(logits, mask, none_b, none_f, -1, 0.0, t, top_p, u, w, q if q is not None else np.zeros(0))
        assert got == reference_draw(logits, mask, t, top_p, u, w, q)
    assert kernels.draw(logits, np.zeros(128, bool), none_b, none_f, -1, 0.0, 1.0, 1.0, 0.5, 0.0, np.zeros(0)) == -1


def test_a_kernel_never_compiles_for_new_types_at_run_time(model) -> None:
    with pytest.raises(TypeError):
        kernels.matvec_t(np.zeros((3, 2)), np.zeros(3), np.zeros(2))  # float64: not a declared signature


def test_a_primed_step_is_the_same_step(model) -> None:
    rng = np.random.default_rng(2)
    model.reset()
    for _ in range(50):
        e = ModelEvent(float(rng.uniform(0, 2)), int(rng.integers(40, 90)), int(rng.integers(0, 128)), int(rng.integers(0, 2)))
        state = model.get_state()
        model.feed(e)
        plain = model.hidden_features()
        model.set_state(state)
        model.prime()
        model.feed(e)
        assert np.array_equal(model.hidden_features(), plain)


def test_feed_bins_time_and_velocity_as_the_tokens_do(model) -> None:
    for dt in (0.0, 0.0039, 0.004, 0.05, 0.5, 7.99, 8.0, 30.0):
        model.reset()
        model.feed(ModelEvent(dt, 64, 70, 0))
        fed = model.hidden_features()
        model.reset()
        model.step(vel_bin(70), 64, dt_bin(dt), 0, N_INT)
        assert np.array_equal(model.hidden_features(), fed), dt


def test_two_voices_from_one_state_reuse_the_logits_and_keep_the_draws(model) -> None:
    """The harmonizer draws its voices from one state: the second draw must equal a draw
    from a freshly restored copy of that state (the cached logits are never changed)."""
    model.reset()
    for p in (62, 66, 69):
        model.feed(ModelEvent(0.3, p, 80, 0))
    state = model.get_state()
    bias = -0.6 * np.abs(np.arange(128) - 60.0).astype(np.float32)
    c1 = Constraints(pitch_range=(48, 70), note_on=True, dt=0.0, velocity=70, pitch_bias=bias, repeat_penalty=1.0)
    c2 = Constraints(pitch_range=(48, 70), note_on=True, dt=0.0, velocity=70, exclude_pitches=frozenset({62}))
    a = np.random.default_rng(3)
    first, second = model.sample(c1, a), model.sample(c2, a)
    model.set_state(state)
    b = np.random.default_rng(3)
    model.sample(c1, b)
    model.set_state(state)
    assert model.sample(c2, b) == second and first.pitch != 62
