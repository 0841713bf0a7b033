"""The engine on the manual clock (deterministic) and on the real clock with in-memory ports."""

from __future__ import annotations

import time

import pytest

from livecomposer.kernel.clock import ManualClock
from livecomposer.kernel.backlog import MAX_BACKLOG
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import NS_PER_MS, Event, Kind, note_off, note_on, parse
from livecomposer.kernel.plugin import Chain, Param, Parallel, Plugin
from livecomposer.ports.memory import MemoryInput, MemoryOutput

MS = NS_PER_MS


class Thru(Plugin):
    name = "test_thru"


class Echo(Plugin):
    """Repeats each note 100 ms later on channel 2, as one cancellable plan per input note."""

    name = "test_echo"
    params = (Param("delay_ms", 100.0, 1.0, 5000.0),)

    def process(self, events, now):
        out = []
        for e in events:
            if e.kind is Kind.NOTE_ON:
                tag = self.ctx.new_tag()
                self.last_tag = tag
                d = int(self.delay_ms * MS)
                out.append(note_on(e.time + d, e.note, e.velocity, channel=2, voice=self.voice, tag=tag))
                out.append(note_off(e.time + 10 * d, e.note, channel=2, voice=self.voice, tag=tag))
        return out


class Broken(Plugin):
    name = "test_broken"

    def __init__(self, after: int = 0, **kw):
        super().__init__(**kw)
        self.calls = 0
        self.after = after

    def process(self, events, now):
        self.calls += 1
        out = [note_on(now, 70, 100, channel=5, voice=self.voice)] if events else []
        if self.calls > self.after:
            raise RuntimeError("boom")
        return out


def offline(graph, messages, end_ms, **kw):
    clock = ManualClock()
    out = MemoryOutput(clock.now)
    engine = Engine(graph, output=out, clock=clock, **kw)
    engine.run_offline(messages, end_ms * MS)
    return engine, [(t, parse(m, t)) for t, m in out.sent]


def notes(sent):
    return [(t // MS, e.kind.name, e.channel, e.note) for t, e in sent if e.is_note]


def test_thru_passes_notes_at_input_time_and_cc123_at_stop():
    engine, sent = offline(Thru(), [(10 * MS, [0x90, 60, 100]), (20 * MS, [0x80, 60, 0])], 50)
    assert notes(sent) == [(10, "NOTE_ON", 0, 60), (20, "NOTE_OFF", 0, 60)]
    ccs = [(e.channel, e.control) for t, e in sent if e.kind is Kind.CONTROL]
    assert ccs == [(ch, 123) for ch in range(16)]
    assert engine.stats.notes_in == 1 and engine.stats.notes_out == 1


def test_scheduled_events_leave_at_their_time_on_the_manual_clock():
    engine, sent = offline(Parallel([Thru(), Echo()]), [(0, [0x90, 64, 90]), (50 * MS, [0x80, 64, 0])], 2000)
    assert notes(sent) == [(0, "NOTE_ON", 0, 64), (50, "NOTE_OFF", 0, 64), (100, "NOTE_ON", 2, 64), (1000, "NOTE_OFF", 2, 64)]


def test_stop_releases_held_scheduled_notes_before_cc123():
    # The echo's note-off is due at 1000 ms, but we stop at 500: the engine must release it.
    engine, sent = offline(Echo(), [(0, [0x90, 64, 90])], 500)
    kinds = [(t // MS, e.kind.name, e.channel) for t, e in sent]
    assert kinds[0] == (100, "NOTE_ON", 2)
    assert kinds[1] == (500, "NOTE_OFF", 2)
    assert all(k == "CONTROL" for _, k, _ in kinds[2:])


def test_cancelling_a_plan_releases_its_sounding_notes_and_drops_the_rest():
    echo = Echo()

    class Canceller(Plugin):
        name = "test_canceller"

        def process(self, events, now):
            for e in events:
                if e.kind is Kind.CONTROL:
                    self.ctx.cancel(echo.last_tag)
            return []

    engine, sent = offline(Parallel([echo, Canceller()]), [(0, [0x90, 64, 90]), (300 * MS, [0xB0, 1, 5])], 3000)
    assert notes(sent) == [(100, "NOTE_ON", 2, 64), (300, "NOTE_OFF", 2, 64)]


def test_a_plugin_that_raises_is_bypassed_its_notes_released_and_music_flows():
    broken = Broken(after=1)
    messages = [(0, [0x90, 60, 100]), (10 * MS, [0x80, 60, 0]), (20 * MS, [0x90, 62, 100]), (30 * MS, [0x80, 62, 0])]
    engine, sent = offline(Parallel([Thru(), broken]), messages, 100)
    assert broken.failed and engine.stats.plugin_failures == 1
    # the broken plugin's first note (70 on ch 5) is released when it fails; thru goes on
    got = notes(sent)
    assert (0, "NOTE_ON", 5, 70) in got and (10, "NOTE_OFF", 5, 70) in got
    assert [g for g in got if g[2] == 0] == [(0, "NOTE_ON", 0, 60), (10, "NOTE_OFF", 0, 60), (20, "NOTE_ON", 0, 62), (30, "NOTE_OFF", 0, 62)]


def test_failed_plugin_in_a_chain_passes_events_through():
    engine, sent = offline(Chain([Broken(after=0), Thru()]), [(0, [0x90, 60, 100]), (5 * MS, [0x80, 60, 0])], 20)
    assert notes(sent) == [(0, "NOTE_ON", 0, 60), (5, "NOTE_OFF", 0, 60)]


def test_bad_bytes_are_counted_and_dropped_never_raised():
    messages = [
        (0, [0x90, 60]),  # truncated
        (1, [0x45]),  # stray data byte
        (2, [0xF4]),  # undefined status
        (3, [0x90, 200, 100]),  # data byte >= 0x80
        (4, [0xF0, 1, 2, 0xF7]),  # sysex: ignored, not bad
        (5, [0x90, 60, 0]),  # note-on velocity 0 = note-off (orphan: dropped at send)
        (6, [0x90, 61, 100]),
        (7, [0x90, 61, 100]),  # duplicate note-on: re-struck
        (8, [0x80, 61, 0]),
    ]
    engine, sent = offline(Thru(), messages, 20)
    assert engine.stats.bad_messages == 4
    assert engine.stats.ignored_messages == 1
    assert notes(sent) == [(0, "NOTE_ON", 0, 61), (0, "NOTE_OFF", 0, 61), (0, "NOTE_ON", 0, 61), (0, "NOTE_OFF", 0, 61)]
    assert engine.scheduler.stats.orphan_note_offs == 1 and engine.scheduler.stats.retriggered == 1


def test_same_input_same_output_offline():
    msgs = [(i * 37 * MS, [0x90, 60 + i % 12, 80]) for i in range(50)] + [(i * 37 * MS + 20 * MS, [0x80, 60 + i % 12, 0]) for i in range(50)]
    _, a = offline(Parallel([Thru(), Echo()]), msgs, 5000)
    _, b = offline(Parallel([Thru(), Echo()]), msgs, 5000)
    assert a == b and len(a) > 100


def test_switching_the_graph_releases_old_notes():
    clock = ManualClock()
    out = MemoryOutput(clock.now)
    engine = Engine(Echo(), output=out, clock=clock)
    engine.tick(0, [(0, b"\x90\x40\x5a")])
    clock.set(150 * MS)
    engine.tick(clock.now(), [])
    assert engine.scheduler.held  # the echo note sounds
    engine.switch_graph(Thru())
    assert not engine.scheduler.held and engine.scheduler.pending() == 0
    sent = [parse(m, t) for t, m in out.sent]
    assert sent[-17].kind is Kind.NOTE_OFF and sent[-17].note == 64


def test_flood_backlog_keeps_notes_and_drops_other_traffic():
    clock = ManualClock()
    engine = Engine(Thru(), output=MemoryOutput(clock.now), clock=clock)
    for i in range(MAX_BACKLOG + 5000):
        engine.sink(i, bytes([0xB0, 1, i % 128]) if i % 10 else bytes([0x90 if i % 20 else 0x80, 60, 100]))
    engine._drain()
    assert engine.stats.dropped == 5000
    assert len(engine._raw) + 2048 == MAX_BACKLOG
    # every note message survived (the first 2,048 of what was kept went into the batch)
    remaining = list(engine._raw)
    assert sum(1 for _, m in remaining if m[0] & 0xF0 in (0x80, 0x90)) == (MAX_BACKLOG + 5000) // 10 - sum(
        1 for i in range(MAX_BACKLOG + 5000) if i % 10 == 0 and i < remaining[0][0]
    )
    assert [t for t, _ in remaining] == sorted(t for t, _ in remaining)


def test_live_engine_thru_with_memory_ports():
    inp = MemoryInput()
    out = MemoryOutput(time.monotonic_ns)
    with Engine(Parallel([Thru(), Echo(delay_ms=30)]), inputs=[inp], output=out, realtime=False) as engine:
        t = time.monotonic_ns()
        inp.feed([0x90, 60, 100], t)
        time.sleep(0.1)
        inp.feed([0x80, 60, 0], time.monotonic_ns())
        time.sleep(0.05)
    sent = [parse(m, ts) for ts, m in out.sent]
    kinds = [(e.kind, e.channel) for e in sent if e.is_note]
    assert kinds[:3] == [(Kind.NOTE_ON, 0), (Kind.NOTE_ON, 2), (Kind.NOTE_OFF, 0)]
    # the echo's note-off (due at 300 ms) was released at stop, before the CC 123s
    assert kinds[3] == (Kind.NOTE_OFF, 2)
    echo_on = next(ts for ts, m in out.sent if m[0] == 0x92)
    assert echo_on - t >= 30 * MS
    assert engine.stats.notes_out == 2


def test_output_that_vanishes_gets_note_offs_when_it_returns():
    clock = ManualClock()
    out = MemoryOutput(clock.now)
    engine = Engine(Thru(), output=out, clock=clock)
    engine.tick(0, [(0, b"\x90\x3c\x64")])
    out.fail = True  # unplugged while the note sounds
    engine.tick(1, [(1, b"\x90\x3e\x64")])
    assert engine.stats.send_errors == 1
    out.fail = False  # plugged back in
    clock.set(2)
    engine.tick(2, [])
    sent = [parse(m, t) for t, m in out.sent]
    offs = sorted(e.note for e in sent if e.kind is Kind.NOTE_OFF)
    assert offs == [60, 62] and sent[-1].kind is Kind.CONTROL and sent[-1].control == 123
