"""SIGINT, SIGTERM and SIGHUP to ``livecomposer run --record`` mid-phrase.

A keyboard process holds a chord and keeps playing; the signal arrives; a DAW process on
the other end must have heard a note-off for every note-on (before CC 123), and the
recording must be readable by mido with what was played in it.
"""

from __future__ import annotations

import signal
import threading
import time

import mido
import pytest

from conftest import JackServer, _Lines, unique
from livecomposer.bench.robustness.faults import tiny_checkpoint
from ledger import stuck_notes
from test_jack_run import start_run, wait_connected

pytestmark = pytest.mark.jack


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_mid_phrase_leaves_no_stuck_note_and_a_readable_recording(sig, tmp_path, jack_server, midi_sender, midi_receiver, run_cli) -> None:
    keyboard = midi_sender()
    name = unique("lc-run")
    recording = tmp_path / "take.mid"
    proc, out_port = start_run(run_cli, jack_server, keyboard.port, "--output", name, "--record", str(recording))
    daw = midi_receiver(source=out_port)
    wait_connected(jack_server, keyboard.port, "livecomposer-in")
    keyboard.send([0x90, 48, 80], [0x90, 55, 80], [0x90, 64, 80], gap_ms=5)  # a held chord
    assert [0x90, 64, 80] in [m for _, m in daw.wait_for(lambda g: [0x90, 64, 80] in [m for _, m in g])]
    stop = threading.Event()

    def melody() -> None:  # still playing when the signal lands
        i = 0
        while not stop.is_set() and proc.poll() is None and i < 200:
            note = 70 + i % 7
            try:
                keyboard.send([0x90, note, 90], gap_ms=15)
                keyboard.send([0x80, note, 0], gap_ms=5)
            except (OSError, ValueError):
                return
            i += 1

    player = threading.Thread(target=melody, daemon=True)
    player.start()
    time.sleep(0.4)
    proc.send_signal(sig)
    proc.wait(timeout=20)
    stop.set()
    player.join(5)
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 130, -sig), (proc.returncode, err)
    got = [m for _, m in daw.wait_for(lambda g: any(m[:2] == [0xB0, 123] for _, m in g), timeout=5) if m[0] != 0xF0]
    assert stuck_notes(got) == {}, got[-20:]
    all_off = next(i for i, m in enumerate(got) if m[:2] == [0xB0, 123])
    assert stuck_notes(got[:all_off]) == {}, "the explicit note-offs come before CC 123"
    # The recording: readable, with the chord in the input track and in the output track.
    midi = mido.MidiFile(recording)
    by_name = {track.name: track for track in midi.tracks}
    assert {"livecomposer in", "livecomposer out"} <= set(by_name), list(by_name)
    for track_name in ("livecomposer in", "livecomposer out"):
        ons = {m.note for m in by_name[track_name] if m.type == "note_on" and m.velocity > 0}
        assert {48, 55, 64} <= ons, (track_name, sorted(ons))
    out_track = by_name["livecomposer out"]
    assert stuck_notes([m.bytes() for m in out_track if not m.is_meta]) == {}, "the recorded output releases every note too"


PARTNER_PRESET = """\
name: stage-partner
midi: {{output: {{virtual: livecomposer}}}}
clock: {{source: internal, bpm: 120}}
graph:
  - thru
  - {{plugin: continuation, id: line, model: {model}, channel: 3, autostart: true, key: none, density: 2.0, while_playing: play}}
seed: 0
"""


def start_preset(run_cli, jack_server: JackServer, preset, keyboard_port: str, name: str, *extra: str):
    proc = run_cli("run", str(preset), "--api", "jack", "--input", keyboard_port, "--output", name, *extra)
    lines = _Lines(proc)
    lines.wait_for(lambda ls: any(l.startswith("preset ") for l in ls), 60)
    if proc.poll() is not None or not any(l.startswith("preset ") for l in lines.lines):
        proc.kill()
        raise AssertionError(f"run did not start (exit {proc.returncode}): {lines.lines} {proc.stderr.read()}")
    return proc


@pytest.mark.parametrize("sig", [signal.SIGHUP])  # one signal: the three share one handler (above), and each start costs ~10 s
def test_signal_while_the_machine_plays_leaves_no_stuck_note(sig, tmp_path, jack_server, midi_sender, midi_receiver, run_cli) -> None:
    """The same with a playing partner (a real, small model) sounding its own notes on channel 3."""
    model = tiny_checkpoint(tmp_path)
    preset = tmp_path / "partner.yaml"
    preset.write_text(PARTNER_PRESET.format(model=model))
    keyboard = midi_sender()
    name = unique("lc-run")
    recording = tmp_path / "take.mid"
    proc = start_preset(run_cli, jack_server, preset, keyboard.port, name, "--record", str(recording))
    daw = midi_receiver(source=f"{name}:{name}")
    wait_connected(jack_server, keyboard.port, "livecomposer-in")
    keyboard.send([0x90, 60, 90], [0x80, 60, 0], [0x90, 62, 90], gap_ms=60)  # 62 stays held
    machine = lambda g: [m for _, m in g if m[0] == 0x92 and m[2] > 0]  # noqa: E731
    assert len(machine(daw.wait_for(lambda g: len(machine(g)) >= 3, timeout=20))) >= 3, "the partner plays"
    proc.send_signal(sig)
    proc.wait(timeout=20)
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    got = [m for _, m in daw.wait_for(lambda g: any(m[:2] == [0xB0, 123] for _, m in g), timeout=5) if m[0] != 0xF0]
    assert stuck_notes(got) == {}, got[-20:]
    all_off = next(i for i, m in enumerate(got) if m[:2] == [0xB0, 123])
    assert stuck_notes(got[:all_off]) == {}, "the explicit note-offs come before CC 123"
    midi = mido.MidiFile(recording)
    out_track = next(t for t in midi.tracks if t.name == "livecomposer out")
    played = [m.bytes() for m in out_track if not m.is_meta]
    assert any(b[0] == 0x92 and b[2] > 0 for b in played), "the machine's notes are in the recording"
    assert stuck_notes(played) == {}
