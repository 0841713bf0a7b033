"""Latency compensation: the machine's planned notes leave early, any output late, on the manual clock.

A synth or DAW with its own output latency (say 12 ms) sounds every note we send that much
late.  The machine's events are planned ahead, so the scheduler can send them early
(``midi.output.latency_ms``), never before "now"; ``delay_ms`` holds all output.  The
performer's thru cannot be sent early: it is sent as it comes (or delayed).
"""

from __future__ import annotations

from typing import Sequence

import pytest

from livecomposer.kernel.clock import ManualClock
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import PERFORMER, Event, Kind, note_off, note_on
from livecomposer.kernel.plugin import Plugin
from livecomposer.plugins.effects import Thru
from livecomposer.ports.memory import MemoryOutput
from livecomposer.app.presets import PresetError, loads_preset

MS = 1_000_000


class Echo(Plugin):
    """Answers each performer note-on with a machine note ``after`` ms later, ``length`` ms long."""

    name = "echo"

    def __init__(self, after_ms: float, length_ms: float, interval: int = 7) -> None:
        super().__init__()
        self.after, self.length, self.interval = int(after_ms * MS), int(length_ms * MS), interval

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        out = []
        for event in events:
            if event.kind is Kind.NOTE_ON and event.voice == PERFORMER:
                start = now + self.after
                note = event.note + self.interval
                out += [note_on(start, note, 90, 1, voice=self.voice), note_off(start + self.length, note, 1, voice=self.voice)]
        return out


def play(latency_ms: float = 0.0, delay_ms: float = 0.0, after_ms: float = 100, length_ms: float = 50):
    """A performer note at 1.000 s (off at 1.400 s) through thru + echo; what left, when (ms)."""
    from livecomposer.kernel.plugin import Parallel

    clock = ManualClock()
    output = MemoryOutput(clock.now)
    engine = Engine(Parallel([Thru(), Echo(after_ms, length_ms)]), output=output, clock=clock)
    engine.scheduler.compensate(latency_ms, delay_ms)
    engine.run_offline([(1000 * MS, [0x90, 60, 100]), (1400 * MS, [0x80, 60, 0])], 3000 * MS)
    notes = [(t / MS, m) for t, m in output.sent if m[0] & 0xF0 in (0x80, 0x90)]
    return notes, engine


def test_without_compensation_the_answer_leaves_when_planned():
    notes, _ = play()
    assert notes == [
        (1000.0, [0x90, 60, 100]), (1100.0, [0x91, 67, 90]), (1150.0, [0x81, 67, 0]), (1400.0, [0x80, 60, 0]),
    ]


def test_latency_ms_sends_the_machines_planned_notes_early_and_thru_as_it_comes():
    notes, engine = play(latency_ms=12)
    assert notes == [
        (1000.0, [0x90, 60, 100]), (1088.0, [0x91, 67, 90]), (1138.0, [0x81, 67, 0]), (1400.0, [0x80, 60, 0]),
    ]
    assert not engine.scheduler.held


def test_an_early_shift_never_goes_before_now_and_keeps_a_notes_off_after_its_on():
    # The answer is planned 5 ms ahead and lasts 3 ms; 12 ms early would be in the past:
    # both leave at once (at the performer's note), note-on first, and nothing hangs.
    notes, engine = play(latency_ms=12, after_ms=5, length_ms=3)
    assert notes[:3] == [(1000.0, [0x90, 60, 100]), (1000.0, [0x91, 67, 90]), (1000.0, [0x81, 67, 0])]
    assert notes[3] == (1400.0, [0x80, 60, 0])
    assert engine.scheduler.stats.orphan_note_offs == 0
    assert not engine.scheduler.held


def test_an_answer_partly_inside_the_window_keeps_its_end_early():
    # Planned 8 ms ahead, 12 ms early: its start is held at now, its end still moves up 12 ms.
    notes, _ = play(latency_ms=12, after_ms=8, length_ms=50)
    assert notes[1:3] == [(1000.0, [0x91, 67, 90]), (1046.0, [0x81, 67, 0])]


def test_delay_ms_holds_everything_including_thru():
    notes, _ = play(delay_ms=20)
    assert notes == [
        (1020.0, [0x90, 60, 100]), (1120.0, [0x91, 67, 90]), (1170.0, [0x81, 67, 0]), (1420.0, [0x80, 60, 0]),
    ]


def test_latency_and_delay_together():
    notes, _ = play(latency_ms=30, delay_ms=10)
    assert [t for t, _ in notes] == [1010.0, 1080.0, 1130.0, 1410.0]


def test_compensation_must_not_be_negative():
    from livecomposer.kernel.scheduler import Scheduler

    with pytest.raises(ValueError):
        Scheduler().compensate(latency_ms=-1)


# ------------------------------------------------------------------------ the preset option


def preset(output: str) -> str:
    return f"name: t\nmidi:\n  output: {output}\ngraph: [thru]\n"


def test_the_preset_option_reaches_the_midi_spec():
    spec = loads_preset(preset("{virtual: lc, latency_ms: 12, delay_ms: 2.5}"), "p.yaml")
    assert (spec.midi.output_kind, spec.midi.output_name, spec.midi.latency_ms, spec.midi.delay_ms) == ("virtual", "lc", 12.0, 2.5)
    assert "12 ms early" in spec.describe()
    plain = loads_preset(preset("{port: Synth}"), "p.yaml")
    assert (plain.midi.latency_ms, plain.midi.delay_ms) == (0.0, 0.0)


@pytest.mark.parametrize(
    "output, key, words",
    [
        ("{virtual: lc, latency_ms: -5}", "midi.output.latency_ms", "use delay_ms"),
        ("{virtual: lc, delay_ms: -5}", "midi.output.delay_ms", "use latency_ms"),
        ("{virtual: lc, latency_ms: 900}", "midi.output.latency_ms", "at most 500"),
        ("{virtual: lc, latency_ms: soon}", "midi.output.latency_ms", "must be a number"),
        ("{virtual: lc, latncy_ms: 5}", "midi.output.latncy_ms", "did you mean 'latency_ms'"),
        ("{latency_ms: 5}", "midi.output", "exactly one of virtual"),
        ("{virtual: lc, port: x}", "midi.output", "exactly one of virtual"),
    ],
)
def test_bad_compensation_names_file_line_and_key(output, key, words):
    with pytest.raises(PresetError) as failure:
        loads_preset(preset(output), "stage.yaml")
    message = str(failure.value)
    assert message.startswith("stage.yaml:3:"), message
    assert key in message and words in message, message
