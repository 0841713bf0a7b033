"""Faults mid-performance, through real JACK ports between other processes.

A keyboard stand-in (another process) plays into the engine; a DAW stand-in (a third process)
listens on the other end and checks, at the end, that every note-on it heard got its
note-off (:func:`ledger.stuck_notes`; CC 123 does not count).  The faults:
the input port vanishes and comes back, the output port vanishes and comes back, a plugin
raises on every call, the model raises or takes 100 ms a step, the visualizer process dies.
SIGINT/SIGTERM/SIGHUP to ``livecomposer run --record`` are in ``test_stage_signals.py``.
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager
from typing import Sequence

import pytest

from conftest import unique, wait_until
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import NS_PER_MS, NS_PER_S, Event, note_off, note_on
from livecomposer.kernel.plugin import Parallel, Plugin, PluginContext
from livecomposer.plugins.effects import Thru
from livecomposer.bench.robustness.faults import FaultyModel, InjectedFault, tiny_checkpoint
from ledger import stuck_notes

pytestmark = pytest.mark.jack


class BrokenPlugin(Plugin):
    """First call: a note-on now and its note-off ``hold_s`` later.  Every call after: raise."""

    name = "broken"
    summary = "fault injection: holds a note, then raises on every call"

    def __init__(self, id: str | None = "broken", note: int = 72, channel: int = 9, hold_s: float = 30.0) -> None:
        super().__init__(id=id)
        self.note = note
        self.channel = channel
        self.hold_ns = int(hold_s * NS_PER_S)
        self.calls = 0

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        self.calls += 1
        if self.calls == 1:
            return [
                note_on(now, self.note, 90, self.channel, voice=self.voice),
                note_off(now + self.hold_ns, self.note, self.channel, voice=self.voice),
            ]
        raise InjectedFault(f"{self.id}: process call {self.calls}")

    def next_wakeup(self) -> int | None:
        if self.calls:
            raise InjectedFault(f"{self.id}: next_wakeup")
        return None

    def reset(self) -> None:
        raise InjectedFault(f"{self.id}: reset")

    def close(self) -> None:
        raise InjectedFault(f"{self.id}: close")



def heard(daw) -> list[list[int]]:
    return [m for _, m in daw.messages() if m[0] != 0xF0]  # the output's delivery probe is sysex


@contextmanager
def live(graph, keyboard_port: str, daw_factory, observers=()):
    """An engine between the keyboard's port and a virtual output a DAW process listens to."""
    from livecomposer.ports.inputs import open_inputs
    from livecomposer.ports.outputs import open_output

    name = unique("lc-stage")
    output = open_output("jack", virtual=name)
    inputs = open_inputs("jack", [keyboard_port])
    daw = daw_factory(source=f"{name}:{name}")
    engine = Engine(graph, inputs=inputs, output=output, observers=list(observers))
    with engine:
        yield engine, daw


def test_a_plugin_that_raises_on_every_call_is_bypassed_and_its_note_released(jack_server, midi_sender, midi_receiver) -> None:
    keyboard = midi_sender()
    broken = BrokenPlugin(note=72, channel=9, hold_s=30)
    with live(Parallel([Thru(), broken]), keyboard.port, midi_receiver) as (engine, daw):
        keyboard.send([0x90, 60, 100], gap_ms=20)  # the broken plugin starts its long note
        assert wait_until(lambda: [0x99, 72, 90] in heard(daw))
        keyboard.send([0x80, 60, 0], [0x90, 62, 100], [0x80, 62, 0], gap_ms=5)  # now it raises
        assert wait_until(lambda: [0x80, 62, 0] in heard(daw))
        assert wait_until(lambda: [0x89, 72, 0] in heard(daw)), "its held note is released when it is bypassed"
        assert broken.failed and engine.stats.plugin_failures == 1, "bypassed once, logged once"
        keyboard.send(*[[0x90, 64 + i, 90] for i in range(5)], *[[0x80, 64 + i, 0] for i in range(5)], gap_ms=2)
        assert wait_until(lambda: [0x80, 68, 0] in heard(daw)), "the music goes on"
    time.sleep(0.2)
    got = heard(daw)
    assert [0x99, 72, 90] not in got[got.index([0x89, 72, 0]):], "never re-struck"
    assert stuck_notes(got) == {}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("models"))


def model_graph(tiny_model):
    from livecomposer.plugins.partners.continuation import Continuation

    return Parallel([Thru(), Continuation(id="line", model=str(tiny_model), channel=3, autostart=True, key="none")])


@pytest.mark.parametrize("mode", ["slow", "raise"])
def test_a_failing_or_slow_model_never_holds_up_the_other_plugins(mode, tiny_model, monkeypatch, jack_server, midi_sender, midi_receiver) -> None:
    real_load = PluginContext.load_model
    made: list[FaultyModel] = []

    def load_faulty(self, name):
        made.append(FaultyModel(real_load(self, name), mode, delay=0.1))
        return made[-1]

    monkeypatch.setattr(PluginContext, "load_model", load_faulty)
    keyboard = midi_sender()
    graph = model_graph(tiny_model)
    with live(graph, keyboard.port, midi_receiver) as (engine, daw):
        line = engine.graph.find("line")
        sent_at = []
        for i in range(12):  # a phrase, each note answered by the model (100 ms a step if slow)
            sent_at += keyboard.send([0x90, 60 + i, 100], [0x80, 60 + i, 0], gap_ms=40)
        assert wait_until(lambda: [0x80, 71, 0] in heard(daw))
        time.sleep(0.5)
        if mode == "slow":
            assert made[0].steps > 3, "the model did run (slowly)"
        else:
            assert line.failures > 0, "the model's failures are counted"
    time.sleep(0.2)
    messages = [(t, m) for t, m in daw.messages() if m[0] != 0xF0]
    got = [m for _, m in messages]
    thru_times = [t for t, m in messages if m[0] == 0x90 and 60 <= m[1] < 72 and m[2] == 100]
    assert len(thru_times) == 12, "every note the player played came through"
    delays = [(t - s) / NS_PER_MS for t, s in zip(thru_times, sent_at[0::2])]
    # A 100 ms model step in the path would show as >= 100 ms here; JACK adds ~1-3 ms.
    assert max(delays) < 50, f"thru was held up by the model: {delays}"
    assert stuck_notes(got) == {}


def test_input_port_vanishes_and_comes_back_by_name(jack_server, midi_sender, midi_receiver) -> None:
    client = unique("kbd")
    keyboard = midi_sender(client)
    with live(Thru(), keyboard.port, midi_receiver) as (engine, daw):
        port = engine.inputs[0]
        keyboard.send([0x90, 60, 100], [0x90, 64, 100], gap_ms=5)  # held when the cable is pulled
        assert wait_until(lambda: [0x90, 64, 100] in heard(daw))
        keyboard.close()
        assert wait_until(lambda: not port.alive, 5), "the vanished input is noticed"
        assert wait_until(lambda: [0x80, 60, 0] in heard(daw) and [0x80, 64, 0] in heard(daw), 3), \
            "the notes held on a vanished keyboard are released (their note-offs can never come)"
        again = midi_sender(client)  # the same device comes back
        assert wait_until(lambda: port.alive and port.reconnects >= 1, 10), "reconnected by name"
        time.sleep(0.1)
        again.send([0x90, 67, 90], [0x80, 67, 0], gap_ms=5)
        assert wait_until(lambda: [0x80, 67, 0] in heard(daw)), "notes flow again"
    time.sleep(0.2)
    assert stuck_notes(heard(daw)) == {}


def test_output_port_vanishes_and_comes_back(jack_server, midi_sender, midi_receiver) -> None:
    """Output to an existing port (a DAW's input) whose program quits and restarts."""
    from livecomposer.ports.inputs import open_inputs
    from livecomposer.ports.outputs import open_output

    keyboard = midi_sender()
    daw_client = unique("daw")
    first = midi_receiver(daw_client)
    output = open_output("jack", port=f"{daw_client}:in")
    inputs = open_inputs("jack", [keyboard.port])
    engine = Engine(Thru(), inputs=inputs, output=output)
    with engine:
        keyboard.send([0x90, 60, 100], gap_ms=5)
        assert wait_until(lambda: [0x90, 60, 100] in heard(first))
        first.close()  # the DAW quits with the note held
        assert wait_until(lambda: not output.alive, 5)
        keyboard.send([0x90, 62, 100], [0x80, 62, 0], gap_ms=5)  # played into the void: no crash
        assert wait_until(lambda: engine.stats.send_errors > 0 or engine.stats.messages_in >= 3, 3)
        second = midi_receiver(daw_client)  # the DAW restarts
        assert wait_until(lambda: output.alive and output.reconnects >= 1, 10), "the output reconnects by name"
        keyboard.send([0x90, 65, 100], [0x80, 65, 0], gap_ms=5)
        assert wait_until(lambda: [0x80, 65, 0] in heard(second))
        keyboard.send([0x90, 67, 100], gap_ms=5)  # held at the end
        assert wait_until(lambda: [0x90, 67, 100] in heard(second))
    time.sleep(0.3)
    got = heard(second)
    assert stuck_notes(got) == {}, got
    assert [0x80, 60, 0] in got, "what was held when the output vanished is released when it returns"


def test_the_visualizer_process_dies_and_the_music_goes_on(tmp_path, jack_server, midi_sender, midi_receiver) -> None:
    from livecomposer.visual import start_visualizer
    from livecomposer.visual.config import VisualConfig
    from livecomposer.visual.gan import GanConfig, Generator, save_generator

    generator = tmp_path / "tiny-gan.safetensors"  # a small real generator: the test needs no shipped model
    save_generator(Generator(GanConfig(channels=(64, 32, 16), d_channels=(16, 32), tail_channels=8)).eval(), generator)
    keyboard = midi_sender()
    visualizer = start_visualizer(VisualConfig(enabled=True, model=str(generator), port=0, fps=10, size=64))
    try:
        visualizer.wait_ready(60)
        with live(Thru(), keyboard.port, midi_receiver, observers=[visualizer.observer]) as (engine, daw):
            keyboard.send([0x90, 60, 100], [0x90, 64, 100], gap_ms=5)
            assert wait_until(lambda: [0x90, 64, 100] in heard(daw))
            assert wait_until(lambda: visualizer.status().frames > 0, 20), "the renderer was painting"
            os.kill(visualizer.process.pid, signal.SIGKILL)
            visualizer.process.join(5)
            for i in range(15):  # a second and a half of playing after the crash
                keyboard.send([0x90, 70 + i % 5, 90], [0x80, 70 + i % 5, 0], gap_ms=50)
            keyboard.send([0x80, 60, 0], [0x80, 64, 0], gap_ms=5)
            assert wait_until(lambda: [0x80, 64, 0] in heard(daw))
            assert not visualizer.observer.alive, "the dead renderer was noticed"
    finally:
        visualizer.close()
    time.sleep(0.2)
    got = heard(daw)
    assert len([m for m in got if m[0] == 0x90]) == 17
    assert stuck_notes(got) == {}
