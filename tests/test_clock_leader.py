"""clock_leader sends clock on our grid; tap_tempo turns a key into taps.  Manual clock, real engine."""

from __future__ import annotations

import numpy as np
import pytest

from livecomposer.kernel.clock import ManualClock
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import NS_PER_MS, NS_PER_S, Event, Kind, parse
from livecomposer.kernel.plugin import Chain, PluginContext
from livecomposer.plugins.tempo import ClockLeader, TapTempo
from livecomposer.ports.memory import MemoryOutput
from livecomposer.kernel.tempo import Tempo


def drive(plugin: ClockLeader, clock: ManualClock, until: int) -> list[Event]:
    """Call the plugin at each of its wake-ups, as the engine does, collecting its output."""
    out: list[Event] = []
    while True:
        wake = plugin.next_wakeup()
        if wake is None or wake > until:
            return out
        clock.set(max(wake, clock.now()))
        out.extend(plugin.process([], clock.now()))


def test_start_on_the_next_bar_then_24_ticks_per_beat():
    clock = ManualClock(start=100 * NS_PER_MS)
    ctx = PluginContext(now=clock.now)
    ctx.tempo = Tempo(bpm=120)
    leader = ClockLeader()
    leader.prepare(ctx)
    out = drive(leader, clock, 3 * NS_PER_S)
    assert out[0].kind is Kind.START and out[1].kind is Kind.CLOCK
    assert out[0].time == out[1].time == 2 * NS_PER_S  # the first bar line after 100 ms
    ticks = [e.time for e in out if e.kind is Kind.CLOCK]
    intervals = np.diff(ticks)
    assert np.all(np.abs(intervals - NS_PER_S / 48) <= 1)
    # always handed out ahead of time, never more than the horizon ahead
    assert len(ticks) == 24 * 2 + 1


def test_follows_a_tempo_change_without_a_jump():
    clock = ManualClock()
    ctx = PluginContext(now=clock.now)
    ctx.tempo = Tempo(bpm=120)
    leader = ClockLeader(start_on="now")
    leader.prepare(ctx)
    drive(leader, clock, NS_PER_S)
    ctx.tempo.set_bpm(90, clock.now())
    out = drive(leader, clock, 3 * NS_PER_S)
    intervals = np.diff([e.time for e in out if e.kind is Kind.CLOCK])
    assert intervals[-1] == pytest.approx(NS_PER_S * 60 / 90 / 24, abs=1)
    assert intervals.max() <= NS_PER_S * 60 / 90 / 24 + 1 and intervals.min() > 0


def test_after_a_panic_the_daw_starts_again_on_a_bar():
    clock = ManualClock()
    out = MemoryOutput(clock.now)
    engine = Engine(ClockLeader(), output=out, clock=clock, tempo=Tempo(bpm=120))
    engine.run_offline([(2500 * NS_PER_MS, [0xB0, 1, 1])], 2500 * NS_PER_MS)  # runs, then stops
    realtime = [(t, m[0]) for t, m in out.sent if m[0] >= 0xF0]
    assert realtime[0] == (2 * NS_PER_S, 0xFA)
    assert realtime[-1][1] == 0xFC  # the engine stopped the DAW on the way out

    clock = ManualClock()
    ctx = PluginContext(now=clock.now)
    ctx.tempo = Tempo(bpm=120)
    leader = ClockLeader()
    leader.prepare(ctx)
    drive(leader, clock, 2500 * NS_PER_MS)
    leader.reset()  # a panic (the engine sends STOP with it)
    again = drive(leader, clock, 4500 * NS_PER_MS)
    assert [e.kind for e in again].count(Kind.START) == 1
    assert next(e for e in again if e.kind is Kind.START).time == 4 * NS_PER_S


def test_through_the_engine_a_follower_recovers_our_tempo():
    """Our clock output, fed to a MIDI-clock-following Tempo, gives back our BPM and bars."""
    clock = ManualClock()
    out = MemoryOutput(clock.now)
    engine = Engine(ClockLeader(), output=out, clock=clock, tempo=Tempo(bpm=97.5))
    engine.run_offline([], 6 * NS_PER_S)
    follower = Tempo(bpm=120, source="midi")
    events = [parse(m, t) for t, m in out.sent]
    assert events[-17].kind is Kind.STOP  # the engine's way out stops the DAW it leads, then CC 123s
    follower.observe(e for e in events[:-17] if e is not None)
    assert follower.running
    assert follower.bpm == pytest.approx(97.5, abs=1e-3)
    # the DAW's beat 0 is our bar line: their bars coincide with ours
    leader_tempo = engine.tempo
    t = 5 * NS_PER_S
    assert follower.beat_at(t) % 4 == pytest.approx(leader_tempo.beat_at(t) % 4, abs=1e-3)
    realtime = [m[0] for _, m in out.sent if m[0] >= 0xF0]
    assert realtime[0] == 0xFA and set(realtime[1:-1]) == {0xF8} and realtime[-1] == 0xFC and realtime[-1] == 0xFC


def test_tap_tempo_plugin_taps_on_its_note_and_swallows_it():
    clock = ManualClock()
    out = MemoryOutput(clock.now)
    tempo = Tempo(bpm=120)
    engine = Engine(Chain([TapTempo(note=24)]), output=out, clock=clock, tempo=tempo)
    msgs = []
    for k in range(4):
        t = NS_PER_S + k * 750 * NS_PER_MS  # 80 BPM
        msgs += [(t, [0x90, 24, 100]), (t + 50 * NS_PER_MS, [0x80, 24, 0])]
    msgs.append((5 * NS_PER_S, [0x90, 60, 90]))
    engine.run_offline(msgs, 6 * NS_PER_S)
    assert tempo.bpm == pytest.approx(80, abs=0.01)
    notes = [m for _, m in out.sent if m[0] & 0xF0 in (0x90, 0x80)]
    assert all(m[1] == 60 for m in notes) and notes  # the tap key is never played


def test_tap_tempo_on_a_footswitch_cc():
    tempo = Tempo(bpm=120)
    ctx = PluginContext()
    ctx.tempo = tempo
    tap = TapTempo(cc=80)
    tap.prepare(ctx)
    events = []
    for k in range(3):
        t = k * 400 * NS_PER_MS
        events += [Event(Kind.CONTROL, t, control=80, value=127), Event(Kind.CONTROL, t + 1000, control=80, value=127),
                   Event(Kind.CONTROL, t + 100 * NS_PER_MS, control=80, value=0)]
    assert tap.process(events + [Event(Kind.CONTROL, 0, control=1, value=5)], 0) == [Event(Kind.CONTROL, 0, control=1, value=5)]
    assert tempo.bpm == pytest.approx(150, abs=0.01)  # a held pedal (repeated 127) taps once


def test_grid_quantize_moves_generated_notes_and_keeps_lengths():
    from livecomposer.plugins.tempo import GridQuantize

    ctx = PluginContext()
    ctx.tempo = Tempo(bpm=120)  # 16ths: 125 ms
    q = GridQuantize(grid=0.25)
    q.prepare(ctx)
    ms = NS_PER_MS
    machine = [Event(Kind.NOTE_ON, 1010 * ms, note=60, velocity=90, voice=2),
               Event(Kind.NOTE_OFF, 1200 * ms, note=60, voice=2),
               Event(Kind.NOTE_ON, 1300 * ms, note=62, velocity=90, voice=2),
               Event(Kind.NOTE_OFF, 1330 * ms, note=62, voice=2)]
    played = Event(Kind.NOTE_ON, 1010 * ms, note=48, velocity=90)  # the performer: untouched
    out = q.process(machine + [played], 1000 * ms)
    times = {(e.kind, e.note): e.time for e in out}
    assert times[(Kind.NOTE_ON, 60)] == 1000 * ms and times[(Kind.NOTE_OFF, 60)] == 1190 * ms
    assert times[(Kind.NOTE_ON, 62)] == 1250 * ms and times[(Kind.NOTE_OFF, 62)] == 1280 * ms
    assert times[(Kind.NOTE_ON, 48)] == 1010 * ms
    # never into the past: a note due now, nearest grid point behind us, goes to the next one
    late = q.process([Event(Kind.NOTE_ON, 2010 * ms, note=64, velocity=90, voice=2)], 2010 * ms)
    assert late[0].time == 2125 * ms
    # half strength: half way
    half = GridQuantize(grid=0.25, strength=0.5)
    half.prepare(ctx)
    assert half.process([Event(Kind.NOTE_ON, 3040 * ms, note=65, velocity=90, voice=2)], 0)[0].time == 3020 * ms
