"""Our virtual output drives a real FluidSynth (the DAW stand-in) through JACK; its audio has the right pitches."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import FluidSynthDaw, JackServer, need, unique
from livecomposer.audio.analysis import fundamental, pitch_track
from livecomposer.audio.wav import read_wav
from livecomposer.ports.outputs import open_output

pytestmark = pytest.mark.jack

ARPEGGIO = [60, 64, 67, 72]


def test_notes_sent_on_our_port_sound_at_their_pitch_in_fluidsynth(
    jack_server: JackServer, fluidsynth_daw: FluidSynthDaw, tmp_path
) -> None:
    import shutil

    need(shutil.which("jack_rec") is not None, "jack_rec is not installed (Debian package jackd2)")
    name = unique("lc-out")
    out = open_output("jack", virtual=name)
    wav = tmp_path / "daw.wav"
    recorder = None
    try:
        jack_server.connect(out.own_name, fluidsynth_daw.midi_port)  # as a user would, with jack_connect
        out.send([0xC0, 79])  # ocarina: steady, nearly sine tones
        recorder = fluidsynth_daw.record(wav, 3.4)
        time.sleep(0.4)  # jack_rec is connected and writing
        for note in ARPEGGIO:
            out.send([0x90, note, 100])
            time.sleep(0.45)
            out.send([0x80, note, 0])
            time.sleep(0.2)
        out.send([0xB0, 123, 0])
        recorder.wait(15)
    finally:
        out.close()
        if recorder is not None and recorder.poll() is None:
            recorder.kill()
    audio, rate = read_wav(wav)
    assert rate == 48000 and audio.shape[1] == 2
    assert np.abs(audio).max() > 0.01, "FluidSynth produced silence"
    hop = 0.05
    track = pitch_track(audio, rate, hop_s=hop)
    for note in ARPEGGIO:
        times = [t for t, p in track if round(p) == note]
        assert len(times) >= 3, f"note {note} not heard; pitch track: {[round(p, 2) for _, p in track]}"
        # One long window over the note's steady part (its first frame skipped: the attack)
        # resolves the pitch to a cent or two; 50 ms frames alone would give about +-10.
        segment = audio[int((times[1]) * rate) : int((times[-1] + hop) * rate)]
        cents = 100 * (fundamental(segment, rate) - note)
        print(f"note {note}: {cents:+.1f} cents over {len(segment) / rate:.2f} s")
        # FluidR3's own samples are tuned up to ~9 cents off (ocarina: -8 at C4, +2 at C5).
        assert abs(cents) < 12, f"note {note} is {cents:+.1f} cents off"
    # The notes came in order: the first frame of each is later than the previous one's.
    firsts = [min(t for t, p in track if round(p) == note) for note in ARPEGGIO]
    assert firsts == sorted(firsts)
