"""FluidSynth as monitor (live on JACK, recorded back) and as offline renderer; pitches by FFT."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from livecomposer.audio.analysis import note_sequence, pitch_track
from livecomposer.audio.fluid import JACK_ID, FluidSynthMonitor, find_soundfont, render_wav_fluidsynth, shell_command, write_midi
from livecomposer.audio.monitor import MonitorError
from livecomposer.audio.wav import read_wav
from livecomposer.kernel.events import NS_PER_MS, Event, Kind, control, note_off, note_on

NOTES = [60, 64, 67, 72]


def need_fluidsynth():
    if shutil.which("fluidsynth") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("fluidsynth is not installed")
        pytest.skip("fluidsynth is not installed")
    try:
        find_soundfont()
    except MonitorError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def pitch_sequence(audio, rate, hop_s=0.05, rel=0.3):
    track = pitch_track(audio, rate, hop_s, rel)
    return note_sequence(track, min_frames=2), [p for _, p in track]


def test_shell_commands():
    assert shell_command(note_on(0, 60, 100, channel=2)) == "noteon 2 60 100"
    assert shell_command(note_off(0, 60)) == "noteoff 0 60"
    assert shell_command(control(0, 64, 127)) == "cc 0 64 127"
    assert shell_command(Event(Kind.PROGRAM, 0, 1, value=40)) == "prog 1 40"
    assert shell_command(Event(Kind.CLOCK, 0)) is None


def test_missing_soundfont_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(MonitorError, match="does not exist"):
        find_soundfont(tmp_path / "nope.sf2")
    monkeypatch.setenv("LIVECOMPOSER_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(MonitorError, match="gone.sf2"):
        find_soundfont()


def test_offline_render_has_the_notes(tmp_path):
    need_fluidsynth()
    events = []
    for k, n in enumerate(NOTES):
        t = 1_000_000_000 + k * 500 * NS_PER_MS
        events += [note_on(t, n, 100), note_off(t + 450 * NS_PER_MS, n)]
    out = render_wav_fluidsynth(events, tmp_path / "fs.wav")
    audio, rate = read_wav(out)
    assert rate == 48000
    seq, heard = pitch_sequence(audio, rate, hop_s=0.1)
    assert seq == NOTES, f"heard {seq}"
    # the MIDI file in between keeps the timing: the last note starts 1.5 s in
    mid = write_midi(events, tmp_path / "x.mid")
    import mido

    assert mido.MidiFile(str(mid)).length == pytest.approx(1.95 + 0.5, abs=0.01)


@pytest.mark.jack
def test_live_fluidsynth_monitor_on_jack(tmp_path, jack_server):
    need_fluidsynth()
    from livecomposer.bench import jackd

    if True:
        monitor = FluidSynthMonitor()
        monitor.start()
        recorder = None
        try:
            assert "jack" in monitor.describe()
            ports = jackd.wait_for_ports(JACK_ID, 2)
            wav = tmp_path / "live.wav"
            recorder = subprocess.Popen(["jack_rec", "-f", str(wav), "-d", "3", *sorted(ports)[:2]],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            for n in NOTES:
                t = time.monotonic_ns()
                monitor.observe((), [note_on(t, n, 100)], t)
                time.sleep(0.45)
                monitor.observe((), [note_off(t, n)], t)
                time.sleep(0.05)
            recorder.wait(10)
        finally:
            monitor.close()
            if recorder is not None and recorder.poll() is None:
                recorder.kill()
        assert not monitor.running and monitor.sent == 2 * len(NOTES)
        audio, rate = read_wav(wav)
        seq, _ = pitch_sequence(audio, rate, hop_s=0.1)
        assert seq == NOTES, f"heard {seq}"
