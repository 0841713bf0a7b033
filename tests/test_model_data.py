"""Corpus parsing and event encoding: the data the model learns from is what we think it is."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from livecomposer.model import corpus
from livecomposer.model.tokens import (DT_EDGES, N_DT, NO_AUGMENT, Augment, dt_bin, humanize, notes_to_events,
                                       vel_bin)

TUNE = """X:1
T:Test reel
M:4/4
L:1/8
K:G
GABc d2 {e}dB | G2 B2- Bd g2 |]
"""


def test_abc_tune_to_notes_drops_graces_and_merges_ties():
    from music21 import converter

    (tune,) = corpus._split_abc("% header\nL:1/8\n" + TUNE)
    on, du, pi, pa = corpus._score_notes(converter.parseData(tune, format="abc"))
    assert pi.tolist() == [67, 69, 71, 72, 74, 74, 71, 67, 71, 74, 79]  # no grace e, tied B once
    assert on.tolist()[:5] == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert du.tolist()[8] == 1.5  # B2- B: one note of three eighths
    assert set(pa.tolist()) == {0}


def test_only_licensed_corpora_are_read():
    assert set(corpus.FOLK_DIRS) == {"oneills1850", "ryansMammoth", "airdsAirs", "miscFolk"}
    assert not set(corpus.FOLK_DIRS) & set(corpus.FORBIDDEN)


def test_dedupe_drops_transposed_repeats():
    a = (np.arange(10.0), np.ones(10), np.arange(60, 70), np.zeros(10))
    b = (np.arange(10.0), np.ones(10), np.arange(62, 72), np.zeros(10))  # a, a tone up
    c = (np.arange(10.0), np.ones(10), np.arange(70, 60, -1), np.zeros(10))
    ns = corpus.NoteSet.build([("a", *a), ("b", *b), ("c", *c)], "quarter")
    assert corpus.dedupe(ns).names == ["a", "c"]


def test_bins():
    assert dt_bin(0.0) == 0 and dt_bin(0.0039) == 0 and dt_bin(100.0) == N_DT - 1
    assert DT_EDGES[dt_bin(0.25)] <= 0.25 < DT_EDGES[dt_bin(0.25) + 1]
    assert vel_bin(0) == 0 and vel_bin(1) == 1 and vel_bin(127) == 8


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.floats(0.01, 2), st.integers(40, 50), st.integers(0, 1)),
                min_size=1, max_size=40))
def test_every_note_on_gets_its_off_and_no_key_is_struck_twice(notes):
    on, du, pi, vo = (np.array(x) for x in zip(*notes))
    ev = notes_to_events(on, du, pi, np.full(len(on), 80), vo)
    held: dict[int, set[int]] = {0: set(), 1: set()}
    held_bits = np.unpackbits(ev.held, axis=1).astype(bool)
    for i in range(len(ev)):
        v, p = int(ev.voice[i]), int(ev.pitch[i])
        assert set(np.flatnonzero(held_bits[i])) == held[v]  # the encoder's held notes are right
        if ev.v[i] > 0:
            assert p not in held[v]
            held[v].add(p)
        else:
            assert p in held[v]
            held[v].discard(p)
    assert held == {0: set(), 1: set()}
    assert np.all(ev.seconds >= 0) and (ev.v > 0).sum() * 2 == len(ev)


def test_humanize_changes_what_it_should():
    on = np.arange(16) * 0.5
    du = np.full(16, 0.5)
    pi = np.array([60, 62, 64, 65] * 4)
    pa = np.zeros(16, np.int64)
    plain = humanize(on, du, pi, pa, None, "quarter", np.random.default_rng(0), NO_AUGMENT)
    assert set(plain.velocity[plain.v > 0].tolist()) == {80} and set(plain.voice.tolist()) == {0}
    rng = np.random.default_rng(0)
    shifts, vels = set(), set()
    for _ in range(20):
        ev = humanize(on, du, pi, pa, None, "quarter", rng, Augment())
        shifts.add(int(ev.pitch[ev.v > 0][0]) - 60)
        vels |= set(ev.velocity[ev.v > 0].tolist())
    assert len(shifts) > 3 and max(abs(s) for s in shifts) <= 6
    assert len(vels) > 10
