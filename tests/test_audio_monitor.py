"""The live monitor on a real JACK server: its audio is recorded back with jack_rec and the
pitches played through the live engine are found in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import numpy as np
import pytest

from livecomposer.audio.analysis import note_sequence, pitch_track
from livecomposer.audio.monitor import JACK_CLIENT_NAME, Monitor, MonitorError
from livecomposer.audio.wav import read_wav
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.plugin import Plugin
from livecomposer.ports.memory import MemoryInput, MemoryOutput
from livecomposer.kernel.clock import MonotonicClock

pytestmark = pytest.mark.jack


@pytest.fixture
def jack(jack_server):
    from conftest import need

    need(shutil.which("jack_rec") is not None, "jack_rec is not installed (Debian package jackd2)")
    return jack_server


def test_monitor_plays_the_engine_output_at_the_right_pitches(jack, tmp_path):
    from livecomposer.bench.jackd import wait_for_ports

    notes = [57, 60, 64, 69, 72]
    monitor = Monitor(blocksize=256)
    clock = MonotonicClock()
    keyboard = MemoryInput()
    engine = Engine(Plugin(), inputs=[keyboard], output=MemoryOutput(clock.now), observers=[monitor])
    monitor.start()
    recorder = None
    try:
        assert monitor.jack_ports and monitor.jack_ports[0].startswith(JACK_CLIENT_NAME)
        ports = monitor.jack_ports
        wait_for_ports(ports[0])
        wav = tmp_path / "monitor.wav"
        recorder = subprocess.Popen(["jack_rec", "-f", str(wav), "-d", "4", *sorted(ports)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.4)
        with engine:  # the engine closes the monitor (an observer) when it stops
            for n in notes:
                keyboard.feed([0x90, n, 100], clock.now())
                time.sleep(0.35)
                keyboard.feed([0x80, n, 0], clock.now())
                time.sleep(0.15)
            time.sleep(0.3)
        recorder.wait(10)
    finally:
        monitor.close()
        if recorder is not None and recorder.poll() is None:
            recorder.kill()
    assert not monitor.running
    audio, rate = read_wav(wav)
    assert audio.shape[1] == 2 and np.abs(audio).max() > 0.05
    # cut the recording into 50 ms frames, keep the loud ones, and read the pitch sequence
    track = pitch_track(audio, rate, hop_s=0.05)
    heard = [p for _, p in track]
    sequence = note_sequence(track, min_frames=2)
    assert sequence == notes, f"heard {sequence}"
    # within tuning: the 50 ms frames resolve about +-20 cents; steady notes are exact
    for note in notes:
        near = [p for p in heard if round(p) == note]
        assert abs(np.median(near) - note) < 0.2
    assert monitor.events_played >= 2 * len(notes)
    # under-runs are a timing figure (JACK counts them server-wide): `livecomposer bench` reports them


def test_no_audio_output_gives_advice(monkeypatch):
    """Without JACK or a sound card, starting the monitor fails with what to do (no traceback)."""
    import sounddevice as sd

    from livecomposer.audio.monitor import rescan_audio, shutdown_audio

    # point PortAudio at a JACK server that does not exist: only real sound cards remain
    monkeypatch.setenv("JACK_NO_START_SERVER", "1")
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"lc-no-such-server-{os.getpid()}")
    try:
        rescan_audio()
        if any(d["max_output_channels"] > 0 for d in sd.query_devices()):
            from conftest import in_ci

            assert not in_ci(), "a CI machine should have no sound card"
            pytest.skip("this machine has a sound card")
        with pytest.raises(MonitorError, match="start JACK"):
            Monitor().start()
    finally:
        shutdown_audio()


def test_open_monitor_from_a_preset_section(jack):
    from livecomposer.audio.open import open_monitor

    monitor = open_monitor("builtin", {"blocksize": 128, "gain": 0.2, "device": None})
    try:
        assert monitor.running and monitor.blocksize == 128 and "JACK" in monitor.describe()
        time.sleep(0.2)
        assert monitor.blocks > 10
    finally:
        monitor.close()
    with pytest.raises(MonitorError, match="unknown monitor"):
        open_monitor("casio")


def test_block_size_is_bounded():
    with pytest.raises(ValueError, match="256"):
        Monitor(blocksize=512)
