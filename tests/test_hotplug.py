"""Keyboards come and go while `run` is going: real JACK clients appear and vanish mid-run.

The session runs a real engine (presets/thru.yaml) on the test's JACK server; keyboard and
DAW stand-ins are separate processes.  A keyboard that appears is connected within a second
(JACK's port-registration notice wakes the port watcher at once); one that vanishes gets its
held notes released and is reconnected when it comes back under the same name; the log and
the status screen say so.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from conftest import unique, wait_until
from livecomposer.rt import jackclient
from livecomposer.app.session import LiveOptions, LiveSession, load
from livecomposer.app.status import StatusScreen

REPO = Path(__file__).resolve().parents[1]
NOTE_ON, NOTE_OFF = 0x90, 0x80


def thru_session(prefix: str) -> LiveSession:
    """presets/thru.yaml live on JACK, taking the inputs whose names contain ``prefix``."""
    preset, graph = load(REPO / "presets" / "thru.yaml")
    return LiveSession(preset, graph, LiveOptions(api="jack", inputs=[prefix], output_virtual=unique("lc-hot")))


def notes(messages) -> list[tuple[int, int]]:
    """(status high nibble, note) of the note messages a DAW got (a note-on of velocity 0 is an off)."""
    out = []
    for _, m in messages:
        if len(m) == 3 and m[0] & 0xF0 in (NOTE_ON, NOTE_OFF):
            out.append((NOTE_OFF if m[0] & 0xF0 == NOTE_OFF or m[2] == 0 else NOTE_ON, m[1]))
    return out


def hanging(messages) -> set[int]:
    sounding: set[int] = set()
    for kind, note in notes(messages):
        (sounding.add if kind == NOTE_ON else sounding.discard)(note)
    return sounding


def screen_text(session: LiveSession) -> str:
    return StatusScreen(session, keys=False).render_text(width=160)


def test_the_watch_client_hears_port_registrations_at_once(jack_server, midi_sender) -> None:
    """The compiled port-registration notice posts the watcher's semaphore: no polling."""
    from livecomposer.rt.semaphore import Semaphore

    wake = Semaphore()
    client = jackclient.JackClient(unique("lc-hear"), wake=wake)
    try:
        while wake.wait(0.2):  # whatever was registering before
            pass
        before = client.registrations
        keyboard = midi_sender()
        assert wake.wait(2.0), "no notice within 2 s of a port being registered"
        assert client.registrations > before
        keyboard.close()
        assert wait_until(lambda: client.registrations >= before + 2, 5.0), "unregistering is a notice too"
    finally:
        client.close()


def test_a_keyboard_switched_on_while_running_is_connected_within_a_second(
    jack_server, midi_sender, midi_receiver, caplog
) -> None:
    prefix = unique("hot")
    session = thru_session(prefix)  # no such keyboard yet: the run waits for it
    assert session.inputs == [] and "waiting" in session.describe()
    caplog.set_level(logging.INFO)
    with session.running():
        daw = midi_receiver(source=session.output.name)
        assert "(none yet" in screen_text(session)
        other = midi_sender(unique("other"))  # does not match the preset's input filter
        keyboard = midi_sender(f"{prefix}-kbd")
        appeared = time.monotonic()
        assert wait_until(lambda: any(p.name == keyboard.port and p.alive for p in session.inputs), 1.0), (
            f"not connected within a second; inputs: {[p.name for p in session.inputs]}"
        )
        took = time.monotonic() - appeared
        keyboard.send([0x90, 60, 100], [0x80, 60, 0], gap_ms=20)
        got = daw.wait_for(lambda m: len(notes(m)) >= 2, 5.0)
        assert notes(got) == [(NOTE_ON, 60), (NOTE_OFF, 60)]
        assert [p.name for p in session.inputs] == [keyboard.port], "nothing else taken, the other keyboard neither"
        assert other.port not in [p.name for p in session.inputs]
        assert f"{keyboard.port} connected" in screen_text(session)
    assert any("new MIDI input" in r.getMessage() and keyboard.port in r.getMessage() for r in caplog.records)
    print(f"connected {took * 1000:.0f} ms after the keyboard's port appeared")


def test_a_keyboard_that_vanishes_and_returns_is_reconnected_and_no_note_hangs(
    jack_server, midi_sender, midi_receiver, caplog
) -> None:
    prefix = unique("hot")
    keyboard = midi_sender(f"{prefix}-kbd")
    session = thru_session(prefix)
    [port] = session.inputs
    caplog.set_level(logging.INFO)
    with session.running():
        daw = midi_receiver(source=session.output.name)
        keyboard.send([0x90, 60, 100], [0x80, 60, 0], [0x90, 64, 100])  # 64 held when the cable goes
        assert notes(daw.wait_for(lambda m: len(notes(m)) >= 3, 5.0)) == [(NOTE_ON, 60), (NOTE_OFF, 60), (NOTE_ON, 64)]

        keyboard.close()  # unplugged, key 64 still down
        assert wait_until(lambda: not port.alive, 2.0), "the vanished keyboard was not noticed"
        got = daw.wait_for(lambda m: (NOTE_OFF, 64) in notes(m), 2.0)
        assert (NOTE_OFF, 64) in notes(got), "the note held on the vanished keyboard was not released"
        assert "GONE" in screen_text(session)

        back = midi_sender(f"{prefix}-kbd")  # plugged back in: same name
        returned = time.monotonic()
        assert wait_until(lambda: port.alive, 1.0), "not reconnected within a second"
        took = time.monotonic() - returned
        assert port.reconnects == 1 and session.inputs == [port], "reconnected, not opened twice"
        assert "GONE" not in screen_text(session)
        back.send([0x90, 67, 100], [0x80, 67, 0], gap_ms=20)
        got = daw.wait_for(lambda m: (NOTE_OFF, 67) in notes(m), 5.0)
        assert notes(got)[-2:] == [(NOTE_ON, 67), (NOTE_OFF, 67)]
        back.send([0x90, 72, 100])  # held at the stop: the engine releases it
    got = daw.wait_for(lambda m: (NOTE_OFF, 72) in notes(m), 5.0)
    assert not hanging(got), f"notes left hanging: {hanging(got)}"
    messages = [r.getMessage() for r in caplog.records]
    assert any("vanished" in m and keyboard.port in m for m in messages)
    assert any("is back" in m and keyboard.port in m for m in messages)
    print(f"reconnected {took * 1000:.0f} ms after the keyboard came back")


def test_a_second_keyboard_plugged_in_plays_beside_the_first_and_leaving_releases_its_notes(
    jack_server, midi_sender, midi_receiver
) -> None:
    prefix = unique("hot")
    first = midi_sender(f"{prefix}-a")
    session = thru_session(prefix)
    with session.running():
        daw = midi_receiver(source=session.output.name)
        second = midi_sender(f"{prefix}-b")
        assert wait_until(lambda: len(session.inputs) == 2, 1.0)
        first.send([0x90, 48, 100])
        second.send([0x90, 55, 100])
        got = daw.wait_for(lambda m: len(notes(m)) >= 2, 5.0)
        assert sorted(notes(got)) == [(NOTE_ON, 48), (NOTE_ON, 55)]
        second.close()  # the new keyboard leaves with a key down
        got = daw.wait_for(lambda m: (NOTE_OFF, 55) in notes(m), 2.0)
        assert (NOTE_OFF, 55) in notes(got), "the hot-plugged input's vanishing released nothing"
        first.send([0x90, 50, 100], [0x80, 50, 0], gap_ms=10)
        got = daw.wait_for(lambda m: (NOTE_OFF, 50) in notes(m), 5.0)
        assert (NOTE_ON, 50) in notes(got)
    got = daw.wait_for(lambda m: not hanging(m), 5.0)
    assert not hanging(got)


@pytest.mark.parametrize("names", [None, ()])
def test_inputs_none_takes_nothing_and_all_takes_any(names, jack_server, midi_sender) -> None:
    """``input: []`` (no inputs) never connects one; left out (every input), any new one."""
    from livecomposer.app.presets import loads_preset

    preset = loads_preset(f"name: t\nmidi: {{api: jack, input: {'[]' if names == () else 'null'}}}\ngraph: [thru]\n")
    _, graph = load(REPO / "presets" / "thru.yaml")
    session = LiveSession(preset, graph, LiveOptions(api="jack", output_virtual=unique("lc-hot")))
    with session.running():
        before = {p.name for p in session.inputs}
        keyboard = midi_sender(unique("any"))
        if names == ():
            time.sleep(1.0)
            assert session.inputs == []
        else:
            assert wait_until(lambda: keyboard.port in {p.name for p in session.inputs} - before, 1.0)
            assert session.output.own_name not in {p.name for p in session.inputs}, "our own output taken: a loop"


def _blocked(thread) -> int:
    """How many times ``thread`` has blocked so far (its voluntary context switches: each
    sleep or wait that did not return at once)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches")))


def test_an_input_left_without_a_driver_sleeps_until_it_is_reopened(jack_server, midi_sender) -> None:
    """A reopen that fails (the source vanished between the listing and the open) leaves the
    input with no driver until the next one succeeds.  Its reader must sleep meanwhile, not
    poll (it woke 4,000 times a second), and read again as soon as the port is reopened."""
    from livecomposer.ports.inputs import NO_DRIVER_WAIT_S, MidiInput

    prefix = unique("idle")
    keyboard = midi_sender(f"{prefix}-kbd")
    port = MidiInput("jack", keyboard.port)
    got: list[bytes] = []
    port.start(lambda stamp, message: got.append(bytes(message)))
    try:
        keyboard.close()
        assert wait_until(lambda: not port.alive, 2.0), "the vanished keyboard was not noticed"
        assert not port._reopen("input")  # its source is gone: the port is left without a driver
        before = _blocked(port._reader)
        time.sleep(1.0)
        woke = _blocked(port._reader) - before
        assert woke <= 2 / NO_DRIVER_WAIT_S + 5, f"the reader woke {woke} times in a second with no driver"
        back = midi_sender(f"{prefix}-kbd")
        assert wait_until(lambda: port.alive, 2.0), "not reopened when the keyboard came back"
        back.send([0x90, 60, 100], [0x80, 60, 0])
        assert wait_until(lambda: len(got) >= 2, 2.0), f"nothing read after the reopen: {got}"
    finally:
        port.close()
