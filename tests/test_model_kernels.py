"""The streaming model's compiled arithmetic (model/kernels.py) against plain numpy, and the
shortcuts the harmonizer's latency path takes (a primed step, an unchanged state kept)."""

from __future__ import annotations

import numpy as np
import pytest

from test_partners import CHORALE, require_model
from livecomposer.model import kernels, load_model
from livecomposer.model.api import ChordConstraints, Constraints, ModelEvent
from livecomposer.plugins.partners.harmonizer import AGREE, CONSONANT
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


class _Uniform:
    """A generator whose every ``random(5)`` puts one given uniform in the pitch slot, so
    the reference chord below draws with the same uniforms as the compiled one."""

    def __init__(self, u: float) -> None:
        self.u = u

    def random(self, n: int) -> np.ndarray:
        return np.array([0.5, self.u, 0.5, 0.5, 0.5])[:n]


def _agreeing(anchor, notes, key, doubled=False):
    """The pitch classes consonant with ``anchor`` and every note (plain sets: the rule the
    harmonizer states), within ``key`` (None: all twelve)."""
    def near(pc, same):
        return {(pc + i) % 12 for i in CONSONANT} | ({pc} if same else set())

    pcs = set(range(12)) if key is None else set(key)
    if anchor is not None:
        pcs &= near(anchor % 12, False)
    for n in notes:
        pcs &= near(n % 12, doubled)
    return frozenset(pcs)


def reference_chord(model, c: ChordConstraints, us) -> list[int]:
    """The chord as one constrained sample per note (the harmonizer's loop before the
    compiled call): the same notes, from the same uniforms."""
    chosen: list[int] = []
    before = list(c.lead_from) if c.lead_pull > 0 else []
    rows = np.abs(np.arange(128)[:, None] - np.arange(128)[None, :]).astype(np.float32) * -c.lead_pull
    for u in us:
        pcs = c.pitch_classes
        if c.agree is not None:
            pcs = (_agreeing(c.anchor, chosen + list(c.soft), c.pitch_classes) or _agreeing(c.anchor, chosen, c.pitch_classes)
                   or _agreeing(c.anchor, chosen, c.pitch_classes, doubled=True))
            if not pcs:
                break
        bias = np.max([rows[b] for b in before], axis=0) if before else None
        one = Constraints(pitch_classes=pcs, exclude_pitches=c.exclude_pitches.union(chosen), pitch_bias=bias,
                          pitch_mix=None if chosen else c.pitch_mix, pitch_range=c.pitch_range, voice=c.voice,
                          note_on=True, dt=0.0, temperature=c.temperature, top_p=c.top_p, velocity=c.velocity)
        try:
            pitch = model.sample(one, _Uniform(float(u))).pitch
        except ValueError:
            break
        chosen.append(pitch)
        if before:
            before.remove(min(before, key=lambda b: abs(b - pitch)))
    return chosen


def test_a_note_and_its_compiled_chord_are_the_step_and_one_sample_per_note(model) -> None:
    """``feed_and_sample_chord`` (one compiled call: the harmonizer's latency path) leaves
    the state ``feed`` leaves and draws the chord that one constrained sample per note,
    the consonance rule and the voice leading written out in Python, draw from it."""
    rng = np.random.default_rng(5)
    chords = 0
    for _ in range(300):
        model.reset()
        for _ in range(int(rng.integers(1, 12))):
            model.feed(ModelEvent(float(rng.uniform(0, 1)), int(rng.integers(40, 84)), int(rng.integers(0, 2)) * 80,
                                  int(rng.integers(0, 2))))
        if rng.random() < 0.5:
            model.prime()
        melody = int(rng.integers(55, 84))
        note = ModelEvent(float(rng.uniform(0, 1)), melody, int(rng.integers(1, 128)), 0)
        key = None if rng.random() < 0.3 else frozenset(int(x) for x in rng.choice(12, size=7, replace=False))
        lead = [int(x) for x in rng.integers(45, 75, size=int(rng.integers(0, 4)))]
        if lead and rng.random() < 0.5:
            lead = [lead[0], lead[0] + 4]  # an answer half way between them: a tie for the nearest
        chord = ChordConstraints(
            size=int(rng.integers(1, 4)), velocity=int(rng.integers(20, 120)), temperature=float(rng.uniform(0.3, 1.2)),
            top_p=float(rng.choice([1.0, 0.9])), pitch_range=(48, melody - 1) if rng.random() < 0.7 else (40, 90),
            pitch_classes=key, exclude_pitches=frozenset(range(melody % 12, 128, 12)),
            anchor=melody if rng.random() < 0.8 else None, soft=tuple(int(x) for x in rng.integers(50, 80, size=int(rng.integers(0, 3)))),
            agree=AGREE if rng.random() < 0.8 else None, lead_from=tuple(lead),
            lead_pull=float(rng.choice([0.0, 0.6, 2.0])), pitch_mix=(0.5, rng.random(128)) if rng.random() < 0.3 else None)
        seed = int(rng.integers(1 << 30))
        state = model.get_state()
        got = model.feed_and_sample_chord(note, chord, np.random.default_rng(seed))
        after = model.hidden_features()
        model.set_state(state)
        model.feed(note)
        assert np.array_equal(model.hidden_features(), after)
        assert got == reference_chord(model, chord, np.random.default_rng(seed).random(chord.size)), chord
        chords += len(got) > 1
    assert chords > 100  # most cases draw a real chord, not one note or none
