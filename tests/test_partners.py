"""The playing partners on the manual clock, with the shipped models (no stand-in model).

Musical checks on the bundled demo phrase (four two-bar calls in D major, each followed by
two bars of silence): generated notes stay in the phrase's key, answers start after the call
ends and never during it, every note-on has its note-off, the same input and seed give the
same output, and a program change in the middle of a phrase leaves no note hanging.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import need
from livecomposer.kernel.clock import ManualClock
from livecomposer.app.demo_phrase import BPM, demo_phrase, duration_ns
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import NS_PER_S, Event, Kind, parse
from livecomposer.model import CheckpointError, resolve
from livecomposer.kernel.plugin import Parallel, PluginContext
from livecomposer.plugins.effects import Thru
from livecomposer.plugins.partners import Accompanist, CallResponse, Continuation, Harmonizer
from livecomposer.ports.memory import MemoryOutput
from livecomposer.app.presets import build_graph, load_preset
from livecomposer.app.session import load, render_offline
from livecomposer.kernel.tempo import Tempo
from livecomposer.kernel.theory import estimate_key, parse_note

PRESETS = Path(__file__).resolve().parents[1] / "presets"
MODES = ("duet", "continuation", "harmonizer", "accompanist")
MELODY, CHORALE = "folk-melody", "chorale-harmony"
NS = NS_PER_S
BEAT = int(60 * NS / BPM)


def require_model(name: str) -> None:
    try:
        resolve(name)
    except CheckpointError as exc:
        need(False, f"shipped model missing: {exc}")


@pytest.fixture(scope="module", autouse=True)
def shipped_models() -> None:
    require_model(MELODY)


@pytest.fixture
def chorale() -> None:
    """For the tests that need the chorale model too (harmonizer, accompanist)."""
    require_model(CHORALE)


def models_for(preset: str) -> None:
    if preset in ("harmonizer", "accompanist"):
        require_model(CHORALE)


# --------------------------------------------------------------------------- helpers


def render_preset(name: str, messages=None, seed: int | None = None, tail_s: float = 4.0):
    preset, graph = load(PRESETS / f"{name}.yaml")
    messages = demo_phrase() if messages is None else messages
    end = max(t for t, _ in messages) + int(tail_s * NS)
    result = render_offline(graph, preset, messages, end, seed=seed)
    return [e for e in (parse(m, t) for t, m in result.output.sent) if e is not None], result.engine


def render_graph(plugins, messages, end: int, seed: int = 0, bpm: float = BPM):
    clock = ManualClock()
    out = MemoryOutput(clock.now)
    engine = Engine(Parallel([Thru(), *plugins]), output=out, clock=clock, seed=seed, tempo=Tempo(bpm))
    engine.run_offline(messages, end)
    return [e for e in (parse(m, t) for t, m in out.sent) if e is not None], engine


def machine(events: list[Event], kind: Kind = Kind.NOTE_ON) -> list[Event]:
    return [e for e in events if e.kind is kind and e.channel != 0]


def performer_notes(messages) -> list[tuple[int, int, int]]:
    """(on, off, pitch) of the performer's notes."""
    ons: dict[int, int] = {}
    notes = []
    for t, m in sorted(messages, key=lambda x: x[0]):
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            ons[m[1]] = t
        elif m[0] & 0xF0 in (0x80, 0x90) and m[1] in ons:
            notes.append((ons.pop(m[1]), t, m[1]))
    return notes


def calls(messages, gap_ns: int = NS // 2) -> list[tuple[int, int]]:
    """(start, end) of each phrase: notes closer than ``gap_ns`` belong together."""
    spans: list[list[int]] = []
    for on, off, _ in sorted(performer_notes(messages)):
        if spans and on - spans[-1][1] < gap_ns:
            spans[-1][1] = max(spans[-1][1], off)
        else:
            spans.append([on, off])
    return [(a, b) for a, b in spans]


def unclosed(events: list[Event]) -> list[Event]:
    """Note-ons with no later note-off on the same channel and note."""
    sounding: dict[tuple[int, int], Event] = {}
    for e in sorted(events, key=lambda e: (e.time, 0 if e.kind is Kind.NOTE_OFF else 1)):
        key = (e.channel, e.note)
        if e.kind is Kind.NOTE_ON:
            sounding[key] = e
        elif e.kind is Kind.NOTE_OFF:
            sounding.pop(key, None)
        elif e.kind is Kind.CONTROL and e.control == 123:
            for k in [k for k in sounding if k[0] == e.channel]:
                sounding.pop(k)
    return list(sounding.values())


def phrase_key_pcs():
    key = estimate_key([p for _, _, p in performer_notes(demo_phrase())])
    assert key is not None and str(key) == "D major"
    return key.pitch_classes


# --------------------------------------------------------------------------- all four presets


@pytest.mark.parametrize("name", MODES)
def test_each_preset_plays_in_the_phrase_key_and_closes_every_note(name) -> None:
    models_for(name)
    events, engine = render_preset(name)
    notes = machine(events)
    assert len(notes) >= 8, f"{name} played only {len(notes)} notes"
    pcs = phrase_key_pcs()
    in_key = sum(1 for e in notes if e.note % 12 in pcs) / len(notes)
    assert in_key >= 0.8, f"{name}: only {in_key:.0%} of its notes are in D major"
    # Every note-on has its own note-off (explicit, before the CC 123 of the shutdown).
    explicit = [e for e in events if not (e.kind is Kind.CONTROL and e.control == 123)]
    assert unclosed(explicit) == []
    assert engine.stats.plugin_failures == 0


@pytest.mark.parametrize("name", MODES)
def test_same_input_and_seed_give_the_same_output(name) -> None:
    models_for(name)
    a, _ = render_preset(name, seed=3)
    b, _ = render_preset(name, seed=3)
    c, _ = render_preset(name, seed=4)
    assert a == b
    assert machine(a) != machine(c)


# --------------------------------------------------------------------------- call and response


def test_answers_start_after_each_call_and_never_during_it() -> None:
    messages = demo_phrase()
    events, engine = render_preset("duet", messages)
    spans = calls(messages)
    answer = engine.graph.find("answer")
    notes = machine(events)
    assert len(answer.answers) == len(spans) == 4
    for start, end in spans:
        assert not [e for e in notes if start <= e.time <= end], "the machine played during a call"
    # Each answer's first note sounds exactly when the call is over: silence after its last note.
    silence = int(answer.silence * NS)
    for (start, end), (trigger, first) in zip(spans, answer.answers):
        assert trigger == end + silence
        assert first == trigger
        assert any(e.time == first for e in notes)
    # ... and on its own channel, answers only (nothing between an answer's end and the next call).
    assert {e.channel for e in notes} == {1}


def test_the_answer_comes_from_the_state_that_heard_the_call() -> None:
    """Not re-primed: the model has been fed every performer event, then the answer's notes."""
    messages = demo_phrase()
    plugin = CallResponse(id="answer", model=MELODY, length=4, unit="notes")
    events, _ = render_graph([plugin], messages[:18], end=messages[17][0] + 3 * NS)
    performer_events = len(messages[:18])
    answer_events = len(machine(events)) + len(machine(events, Kind.NOTE_OFF))
    assert len(machine(events)) == 4
    assert plugin._track.fed + len(plugin._track.future) == performer_events + answer_events
    # A different call leads to a different answer from the same seed.
    other = [(t, bytes([m[0], m[1] + 2 if m[0] & 0xE0 == 0x80 else m[1], m[2]])) for t, m in messages[:18]]
    plugin2 = CallResponse(id="answer", model=MELODY, length=4, unit="notes")
    events2, _ = render_graph([plugin2], other, end=messages[17][0] + 3 * NS)
    assert [e.note for e in machine(events)] != [e.note for e in machine(events2)]


def answer_lengths(unit: str, length: float) -> list[Event]:
    messages = demo_phrase()[:18]  # the first call
    plugin = CallResponse(id="answer", model=MELODY, length=length, unit=unit, key="D major")
    events, _ = render_graph([plugin], messages, end=messages[-1][0] + 12 * NS)
    return events


def test_answer_length_in_notes_seconds_and_bars() -> None:
    assert len(machine(answer_lengths("notes", 5))) == 5
    for unit, length, span in (("seconds", 1.5, int(1.5 * NS)), ("bars", 1, 4 * BEAT)):
        events = answer_lengths(unit, length)
        ons, offs = machine(events), machine(events, Kind.NOTE_OFF)
        assert ons and max(e.time for e in offs) <= ons[0].time + span


def test_playing_again_stops_the_answer_with_note_offs() -> None:
    messages = demo_phrase()[:18]
    last = messages[-1][0]
    plugin = CallResponse(id="answer", model=MELODY, length=8, unit="bars", key="D major")
    # First see the uninterrupted answer, then interrupt it after its second note.
    events, _ = render_graph([plugin], messages, end=last + 20 * NS)
    ons = machine(events)
    assert len(ons) >= 3
    cut = ons[1].time + 1_000_000
    interrupted = messages + [(cut, bytes([0x90, 62, 90])), (cut + NS // 4, bytes([0x80, 62, 0]))]
    plugin = CallResponse(id="answer", model=MELODY, length=8, unit="bars", key="D major")
    events, _ = render_graph([plugin], interrupted, end=last + 20 * NS)
    before = [e for e in machine(events) if e.time <= cut]
    assert [e.note for e in before] == [e.note for e in ons[:2]]  # same answer up to the cut
    explicit = [e for e in events if e.time <= cut + NS // 4]
    assert unclosed([e for e in explicit if e.channel != 0]) == []  # its sounding note ended at the cut
    # No more notes of that answer; the next answer begins only after the new call ends.
    after = [e for e in machine(events) if e.time > cut]
    assert all(e.time >= cut + NS // 4 + int(plugin.silence * NS) for e in after)


def test_finish_phrase_lets_the_answer_end() -> None:
    messages = demo_phrase()[:18]
    last = messages[-1][0]
    plugin = CallResponse(id="answer", model=MELODY, length=8, unit="notes", key="D major", finish_phrase=True)
    events, _ = render_graph([plugin], messages, end=last + 20 * NS)
    ons = machine(events)
    cut = ons[1].time + 1_000_000
    plugin = CallResponse(id="answer", model=MELODY, length=8, unit="notes", key="D major", finish_phrase=True)
    events2, _ = render_graph([plugin], messages + [(cut, bytes([0x90, 62, 90])), (cut + NS // 8, bytes([0x80, 62, 0]))], end=last + 20 * NS)
    assert [e.note for e in machine(events2)][:8] == [e.note for e in ons]


def test_bar_trigger_answers_on_the_next_bar_line() -> None:
    messages = demo_phrase(start_ns=0)[:18]  # a phrase on the grid of the tempo
    plugin = CallResponse(id="answer", model=MELODY, trigger="bar", length=1, unit="bars")
    events, _ = render_graph([plugin], messages, end=messages[-1][0] + 6 * NS)
    first = machine(events)[0].time
    assert first == 8 * BEAT + 40_000_000  # the bar after the two-bar call, once no late note came
    assert first > max(t for t, _ in messages)


def test_a_cc_ends_the_call_at_once() -> None:
    messages = demo_phrase()[:18]
    press = messages[-1][0] + 50_000_000
    plugin = CallResponse(id="answer", model=MELODY, trigger="cc", trigger_cc=27, length=2, unit="notes")
    events, _ = render_graph([plugin], messages + [(press, bytes([0xB0, 27, 127]))], end=press + 5 * NS)
    assert machine(events)[0].time == press


# --------------------------------------------------------------------------- harmonizer


def test_harmonizer_adds_chosen_notes_under_each_note_and_ends_them_with_it(chorale) -> None:
    messages = demo_phrase()
    plugin = Harmonizer(id="choir", model=CHORALE, voices=2, key="D major")
    events, _ = render_graph([plugin], messages, end=duration_ns())
    pcs = phrase_key_pcs()
    ons, offs = machine(events), machine(events, Kind.NOTE_OFF)
    for on, off, pitch in performer_notes(messages):
        added = [e for e in ons if e.time == on]
        assert 1 <= len(added) <= 2
        for e in added:
            assert e.note < pitch and e.note % 12 != pitch % 12 and e.note % 12 in pcs
            assert parse_note("C3") <= e.note
            assert any(o.note == e.note and o.time == off for o in offs), "harmony must end with its note"
        chord = {e.note % 12 for e in added} | {pitch % 12}
        assert any(chord <= {(root + i) % 12 for i in triad} for root in range(12) for triad in ((0, 4, 7), (0, 3, 7))), "not a triad"


def test_harmonizer_voices_and_density_are_live(chorale) -> None:
    messages = demo_phrase()[:18]
    plugin = Harmonizer(id="choir", model=CHORALE, voices=1)
    plugin_three = Harmonizer(id="choir", model=CHORALE, voices=3, position="any")
    one, _ = render_graph([plugin], messages, end=duration_ns())
    three, _ = render_graph([plugin_three], messages, end=duration_ns())
    assert len(machine(one)) == 9 and len(machine(three)) == 27
    plugin = Harmonizer(id="choir", model=CHORALE, voices=2, density=0.0)
    none, _ = render_graph([plugin], messages, end=duration_ns())
    assert machine(none) == []


# --------------------------------------------------------------------------- continuation


def test_continuation_plays_on_and_re_plans_on_every_note() -> None:
    messages = demo_phrase()
    plugin = Continuation(id="line", model=MELODY, key="D major")
    events, _ = render_graph([plugin], messages, end=duration_ns())
    notes = machine(events)
    # It plays through the performer's pauses, not only while they play.
    for start, end in calls(messages)[:3]:
        assert [e for e in notes if end < e.time < end + 4 * BEAT], "silent during a pause"
    assert plugin.replans == len(performer_notes(messages)) * 2  # every note-on and note-off
    assert unclosed([e for e in events if e.channel != 0 and not (e.kind is Kind.CONTROL)]) == []


def test_continuation_stops_after_the_performer_leaves() -> None:
    messages = demo_phrase()[:18]
    plugin = Continuation(id="line", model=MELODY, stop_after=2.0)
    events, _ = render_graph([plugin], messages, end=messages[-1][0] + 20 * NS)
    last_input = messages[-1][0]
    assert all(e.time < last_input + 2 * NS + int(plugin.horizon * NS) + 3 * NS for e in machine(events))


# --------------------------------------------------------------------------- accompanist


def test_accompanist_plays_on_the_grid_from_the_first_note_in_its_range(chorale) -> None:
    messages = demo_phrase()
    plugin = Accompanist(id="bass", model=CHORALE, key="D major", grid=1.0)
    events, _ = render_graph([plugin], messages, end=duration_ns())
    notes = machine(events)
    spans = calls(messages)
    assert notes[0].time == spans[0][0]
    for e in notes:
        anchor = max(start for start, _ in spans if start <= e.time)  # each phrase's first note
        assert (e.time - anchor) % BEAT in (0, 1, BEAT - 1), "off the grid"
        assert parse_note("C2") <= e.note <= parse_note("G3")
    # It rests in the long pauses after stop_after bars, and comes back with the performer.
    for (_, end), (nxt, _) in zip(spans, spans[1:]):
        assert not [e for e in notes if end + 2 * 4 * BEAT + 4 * BEAT < e.time < nxt]
        assert [e for e in notes if e.time == nxt]


# --------------------------------------------------------------------------- controls


@pytest.mark.parametrize("first,second", [(2, 1), (1, 0)])  # harmonizer then continuation; continuation then duet
def test_program_change_in_the_middle_of_a_phrase_leaves_no_note_hanging(first, second) -> None:
    bank = ("duet", "continuation", "harmonizer", "accompanist")
    channels = {"duet": 1, "continuation": 2, "harmonizer": 3, "accompanist": 4}
    models_for(bank[first])
    messages = demo_phrase()
    # The first answer is sounding at 7 s (call 1 ends about 5.3 s); the third call is playing at 20.3 s.
    switches = [(7 * NS, bytes([0xC0, first])), (int(20.3 * NS), bytes([0xC0, second]))]
    events, engine = render_preset("duet", sorted(messages + switches, key=lambda x: x[0]), tail_s=3.0)
    explicit = [e for e in events if not (e.kind is Kind.CONTROL and e.control == 123)]
    for switch, _ in switches:
        before = [e for e in explicit if e.time <= switch]
        assert unclosed(before) == [], f"notes left hanging at the switch at {switch / NS:.1f} s"
    assert unclosed(explicit) == []
    # The switches happened: each new preset's partner played on its own channel.
    assert any(e.channel == channels[bank[first]] and switches[0][0] < e.time < switches[1][0] for e in machine(events))
    assert any(e.channel == channels[bank[second]] and e.time > switches[1][0] for e in machine(events))
    assert not any(e.channel == 1 and switches[0][0] < e.time < switches[1][0] for e in machine(events))


def test_knobs_move_the_partner_while_playing() -> None:
    messages = demo_phrase()[:18] + [(6 * NS, bytes([0xB0, 21, 127])), (6 * NS + 1, bytes([0xB0, 23, 0]))]
    events, engine = render_preset("duet", sorted(messages, key=lambda x: x[0]))
    answer = engine.graph.find("answer")
    assert answer.temperature == pytest.approx(1.5)
    assert answer.length == pytest.approx(1.0)
    assert not any(e.kind is Kind.CONTROL and e.control in (21, 23) for e in events)  # consumed by the mapping


def test_building_a_preset_loads_no_model_and_prepare_names_a_missing_one() -> None:
    graph = build_graph(load_preset(PRESETS / "duet.yaml"))
    plugin = graph.find("answer")
    assert plugin._model is None
    with pytest.raises(CheckpointError, match="no-such-model"):
        CallResponse(model="no-such-model").prepare(PluginContext())
    with pytest.raises(Exception, match="low"):
        CallResponse(low="C6", high="C4")


def test_key_and_range_params_read_musicians_words() -> None:
    plugin = CallResponse(key="F# dorian", low="A2", high=84)
    assert (plugin.key, plugin.scale, plugin.low, plugin.high) == ("F#", "dorian", 45, 84)
    assert plugin.pitch_classes() == frozenset({6, 8, 9, 11, 1, 3, 4})
    plugin.set_param("key", 0.0)  # a CC sweeps the tonics
    assert plugin.key == "C"
    assert CallResponse(key="none").pitch_classes() is None


def test_the_model_state_is_published_for_the_visuals() -> None:
    class Seen:
        def __init__(self) -> None:
            self.hidden = []

        def observe(self, inputs, outputs, now) -> None:
            pass

        def publish(self, key, value) -> None:
            if key == "model.hidden":
                self.hidden.append(value)

    seen = Seen()
    messages = demo_phrase()[:18]
    clock = ManualClock()
    engine = Engine(Parallel([CallResponse(id="answer", model=MELODY)]), output=MemoryOutput(clock.now), clock=clock, observers=[seen])
    engine.run_offline(messages, messages[-1][0] + NS)
    assert len(seen.hidden) >= len(messages)
    assert seen.hidden[0].ndim == 1 and seen.hidden[0].size >= 16
    assert any((a != b).any() for a, b in zip(seen.hidden, seen.hidden[1:]))


def test_key_follower_finds_the_scale_of_tonal_melodies() -> None:
    import numpy as np

    from livecomposer.plugins.partners.common import KeyFollower
    from livecomposer.kernel.theory import Key, scale_pitch_classes

    rng = np.random.default_rng(0)
    found = 0
    for i in range(300):
        key = Key(int(rng.integers(12)), ("major", "minor")[i % 2])
        steps = sorted((p - key.tonic) % 12 for p in scale_pitch_classes(key))
        weights = np.array([4, 1, 3, 1, 3, 1, 1.0]) / 14  # tonic-triad degrees more often
        follower = KeyFollower(32)
        melody = [60 + key.tonic + steps[int(rng.choice(7, p=weights))] for _ in range(24)]
        for note in melody:
            follower.add(note)
        found += follower.pitch_classes() == scale_pitch_classes(key)
        assert all(n % 12 in follower.pitch_classes() for n in melody)  # never rules out a played note
    assert found >= 0.9 * 300
    assert KeyFollower().pitch_classes() is None


def test_panic_mid_answer_silences_it_and_the_next_call_is_answered() -> None:
    messages = demo_phrase()
    press = 7 * NS  # the first answer is sounding
    events, engine = render_preset("duet", sorted(messages + [(press, bytes([0xB0, 102, 127]))], key=lambda x: x[0]))
    explicit = [e for e in events if not (e.kind is Kind.CONTROL and e.control in (120, 123))]
    assert unclosed([e for e in explicit if e.time <= press]) == []
    assert any(e.kind is Kind.CONTROL and e.control == 120 and e.time == press for e in events)
    spans = calls(messages)
    assert not [e for e in machine(events) if press < e.time < spans[1][0]]  # the answer stopped
    assert [e for e in machine(events) if e.time > spans[1][1]]  # and the next call got one


def test_accompanist_follows_the_tempo_grid_when_asked(chorale) -> None:
    messages = demo_phrase()[:18]  # starts 0.5 s after beat 0, so off the tempo's grid
    plugin = Accompanist(id="bass", model=CHORALE, anchor="tempo", grid=0.5)
    events, _ = render_graph([plugin], messages, end=messages[-1][0] + 2 * NS)
    notes = machine(events)
    assert len(notes) >= 8
    assert all(e.time % (BEAT // 2) in (0, 1, BEAT // 2 - 1) for e in notes)


def test_continuation_rests_while_the_performer_plays_unless_told_to_play_over() -> None:
    messages = demo_phrase()
    notes = performer_notes(messages)
    plugin = Continuation(id="line", model=MELODY, key="D major", gap=0.25)
    events, _ = render_graph([plugin], messages, end=duration_ns())
    starts = [e.time for e in machine(events)]
    assert starts
    for on, off, _ in notes:
        assert not [t for t in starts if on <= t < off + NS // 4], "started a note over the performer"
    plugin = Continuation(id="line", model=MELODY, key="D major", while_playing="play")
    events, _ = render_graph([plugin], messages, end=duration_ns())
    assert any(on <= e.time < off for e in machine(events) for on, off, _ in notes)


def test_a_held_sustain_pedal_keeps_the_call_going() -> None:
    messages = demo_phrase()[:18]
    last = messages[-1][0]
    release = last + 2 * NS
    pedal = [(messages[0][0], bytes([0xB0, 64, 127])), (release, bytes([0xB0, 64, 0]))]
    plugin = CallResponse(id="answer", model=MELODY, length=2, unit="notes")
    events, _ = render_graph([plugin], sorted(messages + pedal, key=lambda x: x[0]), end=release + 3 * NS)
    assert machine(events)[0].time == release + int(plugin.silence * NS)
    plugin = CallResponse(id="answer", model=MELODY, length=2, unit="notes", pedal=False)
    events, _ = render_graph([plugin], sorted(messages + pedal, key=lambda x: x[0]), end=release + 3 * NS)
    assert machine(events)[0].time == last + int(plugin.silence * NS)
