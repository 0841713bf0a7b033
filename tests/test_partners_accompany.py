"""Accompaniment with harmonic foresight, on the manual clock with fixed seeds: the running
chord estimate, the comping voice (voice-led, out of the player's register, in its
pattern), the bass's commit-ahead, and the harmonizer's voice leading."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from test_partners import BEAT, CHORALE, calls, chorale, machine, performer_notes, render_graph, shipped_models  # noqa: F401  (model checks)
from livecomposer.app.demo_phrase import demo_phrase, duration_ns
from livecomposer.kernel.events import NS_PER_S
from livecomposer.plugins.partners import Accompanist, Harmonizer
from livecomposer.plugins.partners.chords import BeatPhase, ChordEstimate
from livecomposer.plugins.partners.comping import safest, voice_lead

NS = NS_PER_S


def chords_of(events) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for e in machine(events):
        out[e.time].append(e.note)
    return {t: sorted(v) for t, v in sorted(out.items())}


# --------------------------------------------------------------------------- hand-built cases


def test_chord_estimate_follows_the_harmony() -> None:
    est = ChordEstimate(beat_ns=BEAT)
    t = 0
    for p in (62, 66, 69, 66):  # D F# A F#: D major
        est.note_on(t, p)
        est.note_off(t + BEAT, p)
        t += BEAT
    assert est.chord(t) == (2, frozenset({2, 6, 9}))
    for p in (67, 71, 74, 71, 67, 71):  # then G B D: G major takes over within a few beats
        est.note_on(t, p)
        est.note_off(t + BEAT, p)
        t += BEAT
    assert est.chord(t) == (7, frozenset({7, 11, 2}))
    assert ChordEstimate(BEAT).chord(0) is None


def test_beat_phase_moves_only_on_clear_evidence() -> None:
    """Grid positions from the first note.  Even eighths at one loudness say nothing: the
    grid stays.  An eighth pickup, then quarter notes: the beat is half a beat on, found
    by the third note after the pickup.  Long notes on the off-eighths of an eighth-note
    line: the grid moves there."""
    even = BeatPhase()
    assert all(even.add(k / 2, 80) is None and even.shift() == 0.0 for k in range(32))
    pickup = BeatPhase()
    shifts = [(pickup.add(beat, 80), pickup.shift())[1] for beat in (0.0, 0.5, 1.5, 2.5, 3.5)]
    assert shifts[:2] == [0.0, 0.0] and 0.5 in shifts[:4] and sum(shifts) == 0.5
    agogic = BeatPhase()
    beats = [0.0, 0.5, 1.0, 1.5, 2.5, 3.0, 3.5, 4.5, 5.0, 5.5, 6.5]  # a quarter on each "and"
    assert sum((agogic.add(b, 80), agogic.shift())[1] for b in beats) == 0.5


def test_voice_leading_moves_least_and_covers_the_chord() -> None:
    g_major = frozenset({7, 11, 2})
    chord = voice_lead(g_major, 7, 59, prev=(50, 54, 57), low=48, count=3)  # from D F# A
    assert chord[0] == 59 and {p % 12 for p in chord} == g_major
    assert sum(abs(a - b) for a, b in zip(chord, (57, 54, 50))) <= 4  # B-G-D: 2 + 1 + 0
    assert all(a - b >= 3 for a, b in zip(chord, chord[1:]))  # no seconds inside


def test_foresight_keeps_what_suits_the_expected_note() -> None:
    expected = np.zeros(12)
    expected[4] = 1.0  # the player will play an E
    assert safest(frozenset({2, 6, 9}), expected) == frozenset({9})  # A (a fourth/fifth from E); not D or F# (seconds)


# --------------------------------------------------------------------------- the partners


def test_comping_plays_voice_led_chords_below_the_players_range(chorale) -> None:
    messages = demo_phrase()
    plugin = Accompanist(id="comp", model=CHORALE, part="comping", pattern="charleston", voices=3, low="C3", high="C6")
    events, engine = render_graph([plugin], messages, end=duration_ns())
    chords = chords_of(events)
    lowest = min(p for _, _, p in performer_notes(messages))
    assert len(chords) >= 16
    assert all(max(c) < lowest for c in chords.values()), "the comp went into the player's register"
    assert all(len(c) >= 2 for c in chords.values()) and sum(len(c) == 3 for c in chords.values()) >= 0.75 * len(chords)
    # Beat 1 and the "and" of 2, from each phrase's first note (the grid's anchor).
    starts = [start for start, _ in calls(messages)]
    for t in chords:
        anchor = max(start for start in starts if start <= t)
        phase = ((t - anchor) % (4 * BEAT)) / BEAT
        assert min(abs(phase - 0.0), abs(phase - 1.5), abs(phase - 4.0)) < 0.01, f"chord at beat {phase:.2f} of the bar"
    moves = [sum(abs(a - b) for a, b in zip(x, y)) / 3 for x, y in zip(list(chords.values()), list(chords.values())[1:])]
    assert np.mean(moves) <= 2.0
    assert engine.stats.plugin_failures == 0


def test_comping_goes_above_a_player_who_plays_low(chorale) -> None:
    low_player = [(t, bytes([m[0], m[1] - 24, m[2]])) for t, m in demo_phrase()[:18]]  # the first call two octaves down
    plugin = Accompanist(id="comp", model=CHORALE, part="comping", low="C2", high="C6")
    events, _ = render_graph([plugin], low_player, end=low_player[-1][0] + 2 * NS)
    chords = chords_of(events)
    assert chords
    for t, chord in chords.items():
        played = [p for on, _, p in performer_notes(low_player) if on <= t]
        assert min(chord) > max(played), "the comp went into the register the player had used"


def test_comping_chords_are_consonant_with_what_the_player_holds(chorale) -> None:
    """A chord committed while the player holds a note has no tone a second or a tritone
    from it: where the estimated chord's tones clash, the comp takes what suits the note."""
    messages = demo_phrase()
    notes = performer_notes(messages)
    for seed in (0, 1, 2):
        plugin = Accompanist(id="comp", model=CHORALE, part="comping", key="D major", low="C3", high="C6")
        events, _ = render_graph([plugin], messages, end=duration_ns(), seed=seed)
        commit = int(plugin.commit * NS)
        total = clashes = 0
        for t, chord in chords_of(events).items():
            heard = [p for on, off, p in notes if on < t - commit and t < off]
            if heard:
                total += 1
                clashes += any(min((n - p) % 12, (p - n) % 12) in (1, 2, 6) for n in chord for p in heard)
        assert total >= 4 and clashes == 0, f"seed {seed}: {clashes} of {total} chords clash with a held note"


def test_bass_notes_are_consonant_with_what_the_player_holds(chorale) -> None:
    """Except a note committed (``commit`` seconds ahead) before the player's note came."""
    messages = demo_phrase()
    plugin = Accompanist(id="bass", model=CHORALE, key="D major")
    events, _ = render_graph([plugin], messages, end=duration_ns())
    notes = performer_notes(messages)
    clashes = total = 0
    commit = int(plugin.commit * NS)
    for e in machine(events):
        heard = [p for on, off, p in notes if on < e.time - commit and e.time < off]  # held before the note was committed
        if heard:
            total += 1
            clashes += any(min((e.note - p) % 12, (p - e.note) % 12) in (1, 2, 6) for p in heard)
    assert total >= 10 and clashes == 0


def test_harmonizer_voices_move_by_small_steps(chorale) -> None:
    messages = demo_phrase()
    plugin = Harmonizer(id="choir", model=CHORALE, voices=2, key="D major")
    events, _ = render_graph([plugin], messages, end=duration_ns())
    chords = list(chords_of(events).values())
    moves = [abs(a - b) for x, y in zip(chords, chords[1:]) if len(x) == len(y) for a, b in zip(x[::-1], y[::-1])]
    assert moves and np.mean(moves) <= 3.0


def test_a_pickup_does_not_put_the_bass_between_the_beats(chorale) -> None:
    """A tune starting with an eighth-note pickup: the grid anchored to that first note
    moves onto the beat its long notes show, within the first bar."""
    start = NS // 2  # the pickup; the beats fall half a beat later
    notes = [(0.0, 0.5, 69)] + [(0.5 + k, 0.9, p) for k, p in enumerate((74, 73, 71, 69, 67, 66, 64, 62))]
    messages = []
    for beat, length, pitch in notes:
        on = start + int(beat * BEAT)
        messages += [(on, bytes([0x90, pitch, 90 if length > 0.5 else 60])), (on + int(length * BEAT), bytes([0x80, pitch, 0]))]
    messages.sort(key=lambda m: m[0])
    plugin = Accompanist(id="bass", model=CHORALE, key="D major")
    events, _ = render_graph([plugin], messages, end=messages[-1][0])
    later = [e for e in machine(events) if e.time >= start + int(2.5 * BEAT)]
    assert len(later) >= 4
    for e in later:
        phase = ((e.time - start) / BEAT - 0.5) % 1.0
        assert min(phase, 1.0 - phase) < 0.02, "bass note between the beats"


def pickup_in_even_eighths(start_beat: float, seed: int) -> list[tuple[int, bytes]]:
    """An eighth-note pickup, then two bars of even eighths, all one length and loudness
    (nothing in the notes says which eighth is the beat), with 8 ms of onset jitter."""
    rng = np.random.default_rng(seed)
    tune = (69, 74, 76, 78, 74, 71, 74, 78, 81, 79, 78, 76, 74, 73, 71, 69, 74)
    messages = []
    for k, pitch in enumerate(tune):
        on = int((start_beat + k / 2) * BEAT + rng.normal(0.0, 0.008) * NS)
        messages += [(on, bytes([0x90, pitch, 80])), (on + int(0.45 * BEAT), bytes([0x80, pitch, 0]))]
    return sorted(messages, key=lambda m: m[0])


def test_a_pickup_played_with_the_clock_gets_the_bass_on_the_clocks_beats(chorale) -> None:
    """Played with the engine's clock (the pickup on the "and" of beat 4), the bass takes
    the clock's beat: on each beat from the first downbeat, 10 ms behind it."""
    for seed in (0, 1, 2):
        messages = pickup_in_even_eighths(3.5, seed)
        plugin = Accompanist(id="bass", model=CHORALE, key="D major")
        events, engine = render_graph([plugin], messages, end=messages[-1][0], seed=seed)
        bass = machine(events)
        assert len(bass) >= 6
        beats = [(e.time - 10 * NS // 1000) / BEAT for e in bass]
        assert abs(beats[0] - 4.0) < 0.01, "the bass did not start on the first downbeat"
        assert all(abs(b - round(b)) < 0.01 for b in beats), f"bass off the clock's beats: {beats}"
        assert engine.stats.plugin_failures == 0


def test_harmonizer_memory_steers_its_top_line_and_keeps_it_consonant(chorale) -> None:
    messages = demo_phrase()
    tops = {}
    for memory in (0.0, 0.9):
        plugin = Harmonizer(id="choir", model=CHORALE, voices=2, key="D major", memory=memory)
        events, _ = render_graph([plugin], messages, end=duration_ns())
        chords = chords_of(events)
        tops[memory] = [max(c) for c in chords.values()]
        melody = {on: p for on, _, p in performer_notes(messages)}
        for t, chord in chords.items():
            assert all(min((n - melody[t]) % 12, (melody[t] - n) % 12) in (3, 4, 5) for n in chord)
    assert tops[0.0] != tops[0.9]
