"""The partners as musicians, on the manual clock with fixed seeds: an answer develops the
call's motif, the session memory brings a repeated lick back, no pitch runs longer than
allowed, and the pieces underneath (steered sampling, the memory, scale steps) on hand-built
cases."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from test_partners import BEAT, MELODY, machine, render_graph, shipped_models  # noqa: F401  (model check)
from livecomposer.app.demo_phrase import demo_phrase
from livecomposer.kernel.events import NS_PER_S
from livecomposer.model import load_model
from livecomposer.model.api import Constraints, ModelEvent
from livecomposer.model.sampling import draw_mixed
from livecomposer.plugins.partners import CallResponse, Continuation
from livecomposer.plugins.partners.memory import SessionMemory
from livecomposer.kernel.theory import degree_interval, degree_step, scale_pitch_classes

NS = NS_PER_S
D_MAJOR = tuple(sorted(scale_pitch_classes("D")))


def longest_run(pitches: list[int]) -> int:
    best = run = 0
    for i, p in enumerate(pitches):
        run = run + 1 if i and p == pitches[i - 1] else 1
        best = max(best, run)
    return best


def interval_grams(pitches: list[int]) -> list[tuple[int, ...]]:
    iv = [b - a for a, b in zip(pitches, pitches[1:])]
    return [tuple(iv[i:i + 3]) for i in range(len(iv) - 2)]


# --------------------------------------------------------------------------- hand-built cases


def test_scale_steps_stay_in_the_key() -> None:
    assert degree_step(62, 2, D_MAJOR) == 66  # D up a third: F#
    assert degree_step(62, -1, D_MAJOR) == 61  # D down a step: C#
    assert degree_step(63, 1, D_MAJOR) == 64  # Eb counts from D
    assert degree_interval(62, 69, D_MAJOR) == 4 and degree_interval(69, 62, D_MAJOR) == -4
    assert degree_step(60, 3, None) == 63


def test_memory_learns_intervals_and_predicts_them_transposed() -> None:
    mem = SessionMemory(order=3)
    for _ in range(3):
        for p in (60, 64, 62, 67):  # +4 -2 +5
            mem.learn(p)
    q = mem.predict([70, 74, 72])  # the lick's start, a tone higher: +4 -2 -> +5
    assert q is not None and q.argmax() == 77 and q[77] == pytest.approx(1.0)
    assert mem.continuations([50, 54]) == {-2: 3}  # order 1: after +4 came -2, three times
    assert mem.continuations([70, 71]) == {4: 3, -2: 3, 5: 3, -7: 2}  # +1 never played: the player's intervals
    assert SessionMemory().predict([60, 62]) is None  # nothing learnt yet


def test_mixing_gives_the_outside_distribution_its_weight() -> None:
    logits = np.zeros(4)
    mask = np.array([True, True, True, False])
    q = np.array([0.0, 0.0, 0.5, 0.5])  # half of it on a masked value: renormalised to index 2
    draws = [draw_mixed(logits, mask, 1.0, 1.0, u, 0.7, q) for u in np.linspace(0, 0.999, 1000)]
    share = draws.count(2) / len(draws)
    assert share == pytest.approx(0.3 / 3 + 0.7, abs=0.01)
    assert 3 not in draws


def test_repeat_penalty_and_pitch_bias_steer_the_model() -> None:
    model = load_model(MELODY)
    model.reset()
    for p in (62, 66, 69, 74):
        model.feed(ModelEvent(0.3, p, 80, 0))
        model.feed(ModelEvent(0.25, p, 0, 0))
    model.feed(ModelEvent(0.3, 69, 80, 1))
    model.feed(ModelEvent(0.25, 69, 0, 1))
    rng = np.random.default_rng(0)
    base = Constraints(temperature=1.0, pitch_range=(60, 84), note_on=True, dt=0.0)

    def repeats(c: Constraints) -> int:
        return sum(model.sample(c, rng).pitch == 69 for _ in range(400))

    assert repeats(replace(base, repeat_penalty=3.0)) < repeats(base) / 4 + 1
    bias = -4.0 * np.abs(np.arange(128) - 76.0)
    near = [model.sample(replace(base, pitch_bias=bias), rng).pitch for _ in range(200)]
    assert np.mean([abs(p - 76) <= 1 for p in near]) > 0.9


# --------------------------------------------------------------------------- the partners


def test_an_answer_develops_the_calls_motif() -> None:
    """develop 1: the first cycle keeps the call's rhythm, and its scale-step shape (upside
    down for an inversion) in most notes; the last note is a tonic-triad tone."""
    messages = demo_phrase()[:18]  # D F# A D' C# B A F# A
    call = [m[1] for _, m in messages if m[0] & 0xF0 == 0x90]
    call_on = [t for t, m in messages if m[0] & 0xF0 == 0x90]
    plugin = CallResponse(id="answer", model=MELODY, key="D major", develop=1.0, length=2, unit="bars")
    events, _ = render_graph([plugin], messages, end=messages[-1][0] + 8 * NS)
    notes = machine(events)
    kind = plugin.variations[0][0]
    assert kind in ("repeat", "sequence", "inversion", "displace")
    first = notes[: len(call)]
    shift = BEAT // 2 if kind == "displace" else 0
    for i, (e, t) in enumerate(zip(first, call_on)):
        expected = (t - call_on[0]) + (shift if i else 0)
        assert abs((e.time - first[0].time) - expected) <= 1, f"note {i} off the call's rhythm"
    sign = -1 if kind == "inversion" else 1
    want = [sign * degree_interval(a, b, D_MAJOR) for a, b in zip(call, call[1:])]
    got = [degree_interval(a.note, b.note, D_MAJOR) for a, b in zip(first, first[1:])]
    same = sum(w == g for w, g in zip(want[:-1], got[:-1]))  # (the last note is the cadence's)
    assert same >= 0.75 * (len(want) - 1), (kind, want, got)
    assert notes[-1].note % 12 in {2, 6, 9}


def test_develop_zero_is_the_models_free_answer() -> None:
    messages = demo_phrase()[:18]
    plugin = CallResponse(id="answer", model=MELODY, key="D major", develop=0.0)
    render_graph([plugin], messages, end=messages[-1][0] + 8 * NS)
    assert plugin.variations == [] and len(plugin.answers) == 1


@pytest.mark.parametrize("develop", [0.0, 0.7])
def test_no_pitch_runs_longer_than_two(develop) -> None:
    """A low temperature and no repetition penalty make the model repeat; the run limit holds."""
    messages = demo_phrase()
    def run(max_run: int) -> list[int]:
        plugin = CallResponse(id="answer", model=MELODY, key="D major", temperature=0.1, repeat_penalty=0.0,
                              max_run=max_run, develop=develop, length=4, unit="bars")
        events, _ = render_graph([plugin], messages, end=messages[-1][0] + 8 * NS)
        return [e.note for e in machine(events)]
    assert longest_run(run(2)) <= 2
    if develop == 0.0:
        assert longest_run(run(8)) > 2  # (without the limit the model does run on)


MOTIF = [62, 66, 64, 69, 67, 71, 69, 74]


def motif_session() -> tuple[list[tuple[int, bytes]], int, int]:
    """A performer plays one lick four times (pausing after each), then four other phrases."""
    msgs: list[tuple[int, bytes]] = []
    t = NS // 2
    for _ in range(4):
        for p in MOTIF:
            msgs += [(t, bytes([0x90, p, 80])), (t + BEAT // 2 - 20_000_000, bytes([0x80, p, 0]))]
            t += BEAT // 2
        t += 8 * BEAT
    split = t
    for phrase in ([69, 67, 66, 64, 62], [74, 73, 71, 69, 71], [66, 67, 69, 71, 69], [62, 64, 66, 67, 69]):
        for p in phrase:
            msgs += [(t, bytes([0x90, p, 80])), (t + BEAT - 20_000_000, bytes([0x80, p, 0]))]
            t += BEAT
        t += 8 * BEAT
    return sorted(msgs, key=lambda x: x[0]), split, t


@pytest.mark.parametrize("make", [lambda m: Continuation(id="p", model=MELODY, key="D major", memory=m),
                                  lambda m: CallResponse(id="p", model=MELODY, key="D major", memory=m, develop=0.7)],
                         ids=["continuation", "call_response"])
def test_memory_raises_motif_reuse(make) -> None:
    """After the lick, the share of the machine's interval 3-grams taken from it, memory 0.7
    against memory 0 (the network alone): at least three times as many."""
    messages, split, end = motif_session()
    lick = set(interval_grams(MOTIF))

    def share(memory: float) -> float:
        hits = total = 0
        for seed in (0, 1, 2):
            events, _ = render_graph([make(memory)], messages, end=end, seed=seed)
            grams = interval_grams([e.note for e in machine(events) if e.time >= split])
            hits += sum(g in lick for g in grams)
            total += len(grams)
        return hits / total

    without, with_memory = share(0.0), share(0.7)
    assert with_memory >= 0.02  # (and not 0 against 0)
    assert with_memory >= 3 * without
