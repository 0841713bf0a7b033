"""The built-in synth and the offline WAV: right pitches, polyphony, pedal, stealing, silence after."""

from __future__ import annotations

import numpy as np
import pytest

from livecomposer.audio.analysis import fundamental, peak_pitches
from livecomposer.audio.synth import Synth
from livecomposer.audio.wav import read_wav, render_audio, render_wav
from livecomposer.kernel.events import NS_PER_MS, NS_PER_S, Event, Kind, control, note_off, note_on

SR = 48000


def arpeggio(notes, step_ms=400, length_ms=350, start=0):
    events = []
    for k, n in enumerate(notes):
        t = start + k * step_ms * NS_PER_MS
        events += [note_on(t, n, 100), note_off(t + length_ms * NS_PER_MS, n)]
    return events


def segment(audio, start_s, end_s):
    return audio[int(start_s * SR) : int(end_s * SR)]


def test_each_note_sounds_at_its_pitch_and_time():
    notes = [48, 60, 64, 67, 72, 79]
    audio = render_audio(arpeggio(notes), SR, start_ns=0)
    for k, n in enumerate(notes):
        got = fundamental(segment(audio, k * 0.4 + 0.05, k * 0.4 + 0.33), SR)
        assert got == pytest.approx(n, abs=0.1), f"note {k}: expected {n}, heard {got}"
    # silent before the first note, and after the last release has rung out
    assert np.abs(audio[: int(0.0 * SR) + 1]).max() < 1e-3
    assert np.abs(audio[-2000:]).max() < 1e-3


def test_a_chord_has_all_its_notes():
    chord = [60, 64, 67]
    events = [note_on(0, n, 90) for n in chord] + [note_off(NS_PER_S, n) for n in chord]
    audio = render_audio(events, SR, start_ns=0)
    found = peak_pitches(segment(audio, 0.2, 0.9), SR, count=3)
    assert sorted(round(f) for f in found) == chord


def test_velocity_sets_loudness():
    soft = render_audio([note_on(0, 60, 30), note_off(NS_PER_S // 2, 60)], SR, start_ns=0)
    loud = render_audio([note_on(0, 60, 120), note_off(NS_PER_S // 2, 60)], SR, start_ns=0)
    assert np.abs(loud).max() > 3 * np.abs(soft).max()


def test_voice_stealing_keeps_the_newest_notes():
    synth = Synth(SR, voices=2)
    for n in (60, 64, 67):
        synth.note_on(0, n, 100)
        synth.render(256)
    assert synth.sounding == 2 and synth.stolen == 1
    assert sorted(synth.note[synth.active].tolist()) == [64, 67]


def test_sustain_pedal_holds_then_releases():
    synth = Synth(SR)
    synth.handle(control(0, 64, 127))
    synth.handle(note_on(0, 60, 100))
    synth.render(4800)
    synth.handle(note_off(0, 60))
    synth.render(SR)  # a second later, still held by the pedal
    assert synth.sounding == 1 and np.abs(synth.render(256)).max() > 0.01
    synth.handle(control(0, 64, 0))
    synth.render(SR * 2)
    assert synth.sounding == 0


def test_all_sound_off_is_immediate_and_all_notes_off_releases():
    synth = Synth(SR)
    for n in (60, 62):
        synth.note_on(3, n, 100)
    synth.render(1000)
    synth.handle(control(0, 123, 0, channel=3))
    assert synth.sounding == 2  # releasing, not cut
    synth.handle(control(0, 120, 0, channel=3))
    assert synth.sounding == 0 and np.abs(synth.render(256)).max() == 0


def test_restrike_reuses_the_voice():
    synth = Synth(SR)
    for _ in range(5):
        synth.note_on(0, 60, 100)
        synth.render(128)
    assert synth.sounding == 1


def test_render_wav_writes_the_session(tmp_path):
    events = arpeggio([60, 67, 72], start=5 * NS_PER_S) + [Event(Kind.CLOCK, 5 * NS_PER_S)]
    info = render_wav(events, tmp_path / "out" / "session.wav")
    assert info.path.exists() and info.notes == 3
    assert 0.05 < info.peak <= 1.0
    audio, rate = read_wav(info.path)
    assert rate == SR and audio.shape == (info.frames, 2)
    assert info.seconds == pytest.approx(0.8 + 0.35 + 1.5, abs=0.01)  # from the first event, plus the tail
    assert fundamental(audio[int(0.45 * SR) : int(0.7 * SR)], SR) == pytest.approx(67, abs=0.1)


def test_render_of_nothing_is_silence(tmp_path):
    info = render_wav([], tmp_path / "empty.wav", tail_s=0.5)
    assert info.frames == SR // 2 and info.peak == 0.0


def test_rendering_is_fast_enough_for_live_blocks():
    """16 voices at once: rendering must take a small fraction of the block's duration.
    (Not a timing assertion on a shared machine: a generous 50 % of real time.)"""
    import time

    synth = Synth(SR, voices=16)
    for n in range(48, 64):
        synth.note_on(0, n, 100)
    t0 = time.perf_counter()
    for _ in range(200):
        synth.render(256)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5 * 200 * 256 / SR
