"""`livecomposer run --record` killed with SIGKILL mid-performance: the file is still readable.

A keyboard process plays a rising line through real JACK; after about two seconds the run
gets ``kill -9`` (no handler, no flush, no close).  The recording must parse with mido and
hold, in both tracks, every note played up to about a second before the kill.
"""

from __future__ import annotations

import signal
import time

import mido
import pytest

from conftest import unique
from test_jack_run import start_run, wait_connected

pytestmark = pytest.mark.jack


def test_kill_minus_9_during_a_take_leaves_the_recording_readable(tmp_path, jack_server, midi_sender, midi_receiver, run_cli) -> None:
    keyboard = midi_sender()
    recording = tmp_path / "take.mid"
    proc, out_port = start_run(run_cli, jack_server, keyboard.port, "--output", unique("lc-run"), "--record", str(recording))
    daw = midi_receiver(source=out_port)
    wait_connected(jack_server, keyboard.port, "livecomposer-in")
    played: list[tuple[int, int]] = []  # (monotonic ns when sent, note)
    start = time.monotonic()
    note = 30
    while time.monotonic() - start < 2.2:
        [t] = keyboard.send([0x90, note, 100])
        keyboard.send([0x80, note, 0])
        played.append((t, note))
        note = 30 if note >= 100 else note + 1
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    killed_ns = time.monotonic_ns()
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    heard = {m[1] for _, m in daw.messages() if m[0] == 0x90}
    midi = mido.MidiFile(recording)  # complete chunks: the last flush was a whole file
    tracks = {track.name: track for track in midi.tracks}
    assert {"livecomposer in", "livecomposer out"} <= set(tracks), list(tracks)
    recorded_in = [m.note for m in tracks["livecomposer in"] if m.type == "note_on" and m.velocity > 0]
    recorded_out = [m.note for m in tracks["livecomposer out"] if m.type == "note_on" and m.velocity > 0]
    early = [n for t, n in played if t < killed_ns - 1_000_000_000]
    assert len(early) > 20
    # In order and complete up to about a second before the kill, in both tracks.
    assert recorded_in[: len(early)] == early, (len(recorded_in), len(early), len(played))
    assert recorded_out[: len(early)] == early, (len(recorded_out), len(early), len(played))
    assert set(early) <= heard  # and the DAW heard them too
