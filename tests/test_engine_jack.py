"""The engine on real JACK ports: what a DAW in another process receives when we stop."""

from __future__ import annotations

import time

from livecomposer.kernel.engine import Engine
from livecomposer.kernel.plugin import Plugin
from livecomposer.ports.memory import MemoryInput
from livecomposer.ports.outputs import open_output

from conftest import unique


def test_stop_with_several_held_notes_delivers_every_note_off_and_cc123(jack_server, midi_receiver):
    name = unique("lc-stop")
    output = open_output("jack", virtual=name, verify=False)
    daw = midi_receiver(source=name)
    keyboard = MemoryInput()
    with Engine(Plugin(), inputs=[keyboard], output=output, realtime=False):
        for note in (60, 64, 67):
            keyboard.feed([0x90, note, 100], time.monotonic_ns())
        time.sleep(0.2)
    got = [bytes(m) for _, m in daw.wait_count(3 + 3 + 16, timeout=5)]
    ons = [m for m in got if m[0] == 0x90]
    offs = [m for m in got if m[0] == 0x80]
    cc123 = [m for m in got if m[0] & 0xF0 == 0xB0 and m[1] == 123]
    assert sorted(m[1] for m in ons) == [60, 64, 67]
    assert sorted(m[1] for m in offs) == [60, 64, 67]
    assert sorted(m[0] & 0x0F for m in cc123) == list(range(16))
    assert max(got.index(m) for m in offs) < min(got.index(m) for m in cc123)  # note-offs first
