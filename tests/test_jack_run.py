"""`livecomposer run presets/thru.yaml --api jack` between two other programs, through real JACK.

A keyboard stand-in (another process) plays into our input; a DAW stand-in (a third
process) listens on our virtual output.  Stopping the run with SIGINT or SIGTERM while a
note is held must leave no stuck note: the DAW sees the note-off, then CC 123.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from conftest import JackServer, _Lines, unique

pytestmark = pytest.mark.jack

ALL_NOTES_OFF = 123


def start_run(run_cli, jack_server: JackServer, keyboard_port: str, *extra: str):
    """Start the run command and wait until it plays; return (process, its output port's JACK name)."""
    before = set(jack_server.ports())
    proc = run_cli("run", "presets/thru.yaml", "--api", "jack", "--input", keyboard_port, *extra)
    lines = _Lines(proc)
    # The run prints "preset NAME: INPUTS -> OUTPUT" once the engine runs and inputs are live.
    lines.wait_for(lambda ls: any(l.startswith("preset ") for l in ls), 30)
    if proc.poll() is not None or not any(l.startswith("preset ") for l in lines.lines):
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"run did not start (exit {proc.returncode}): {lines.lines} {err}")
    new = sorted(set(jack_server.ports()) - before)
    # The virtual output: client "livecomposer" (JACK appends -01... if the name is taken) or ours.
    ours = [p for p in new if re.match(r"^(livecomposer(-\d\d)?|lc-run-[0-9a-f]+):", p)]
    assert len(ours) == 1, f"expected one new output port, got {new}"
    return proc, ours[0]


def wait_connected(jack_server: JackServer, source: str, destination_substring: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(destination_substring in d for d in jack_server.connections().get(source, [])):
            return
        time.sleep(0.05)
    raise AssertionError(f"{source} never got connected to {destination_substring}: {jack_server.connections()}")


def test_thru_passes_notes_from_one_program_to_another(jack_server, midi_sender, midi_receiver, run_cli) -> None:
    keyboard = midi_sender()
    proc, out_port = start_run(run_cli, jack_server, keyboard.port)
    assert out_port.split(":")[0] == "livecomposer" or out_port.startswith("livecomposer-")
    daw = midi_receiver(source=out_port)
    wait_connected(jack_server, keyboard.port, "livecomposer-in")
    played = [[0x90, 60, 100], [0x90, 64, 90], [0xB0, 1, 33], [0x80, 60, 0], [0x80, 64, 0]]
    keyboard.send(*played, gap_ms=3)
    got = daw.wait_for(lambda g: len([m for _, m in g if m[0] != 0xF0]) >= len(played), timeout=10)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    err = proc.stderr.read()
    assert proc.returncode in (0, 130), err
    heard = [m for _, m in got if m[0] != 0xF0]
    assert heard[: len(played)] == played


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_mid_note_leaves_no_stuck_note(sig, jack_server, midi_sender, midi_receiver, run_cli) -> None:
    keyboard = midi_sender()
    name = unique("lc-run")
    proc, out_port = start_run(run_cli, jack_server, keyboard.port, "--output", name)
    assert out_port == f"{name}:{name}"
    daw = midi_receiver(source=out_port)
    wait_connected(jack_server, keyboard.port, "livecomposer-in")
    keyboard.send([0x92, 67, 100])  # held, never released by the player
    assert [0x92, 67, 100] in [m for _, m in daw.wait_for(lambda g: [0x92, 67, 100] in [m for _, m in g], timeout=10)]
    proc.send_signal(sig)
    proc.wait(timeout=20)
    err = proc.stderr.read()
    assert "Traceback" not in err
    got = [m for _, m in daw.wait_for(lambda g: any(m[:2] == [0xB2, ALL_NOTES_OFF] for _, m in g), timeout=10)]
    note_off = next(i for i, m in enumerate(got) if (m[0] == 0x82 and m[1] == 67) or (m[0] == 0x92 and m[1] == 67 and m[2] == 0))
    all_off = next(i for i, m in enumerate(got) if m[0] == 0xB2 and m[1] == ALL_NOTES_OFF)
    assert note_off < all_off, f"note-off must come before CC 123: {got}"
