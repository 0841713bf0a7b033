"""Pitch checks on rendered or captured audio (tests and the stage benchmark use them)."""

from __future__ import annotations

import math

import numpy as np


def hz_to_midi(hz: float) -> float:
    return 69.0 + 12.0 * math.log2(hz / 440.0)


def spectrum(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, magnitudes) of a mono mix of ``audio`` under a Hann window."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    window = np.hanning(len(mono))
    mags = np.abs(np.fft.rfft(mono * window))
    freqs = np.fft.rfftfreq(len(mono), 1.0 / sample_rate)
    return freqs, mags


def peak_pitches(audio: np.ndarray, sample_rate: int, count: int = 1, fmin: float = 30.0, fmax: float = 5000.0) -> list[float]:
    """The ``count`` strongest spectral peaks as fractional MIDI notes (parabolic interpolation),
    strongest first; peaks within a semitone of a stronger one are skipped."""
    freqs, mags = spectrum(audio, sample_rate)
    band = (freqs >= fmin) & (freqs <= fmax)
    idx = np.flatnonzero(band)
    if idx.size < 3:
        return []
    m = mags
    local = idx[(idx > 0) & (idx < len(m) - 1)]
    local = local[(m[local] > m[local - 1]) & (m[local] >= m[local + 1])]
    order = local[np.argsort(m[local])[::-1]]
    found: list[float] = []
    for k in order:
        a, b, c = np.log(m[k - 1] + 1e-12), np.log(m[k] + 1e-12), np.log(m[k + 1] + 1e-12)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
        hz = freqs[k] + shift * (freqs[1] - freqs[0])
        note = hz_to_midi(hz)
        if all(abs(note - f) > 1.0 for f in found):
            found.append(note)
        if len(found) == count:
            break
    return found


def fundamental(audio: np.ndarray, sample_rate: int) -> float | None:
    """Fractional MIDI note of the strongest peak, or None for silence."""
    if audio.size == 0 or float(np.abs(audio).max()) < 1e-4:
        return None
    found = peak_pitches(audio, sample_rate, 1)
    return found[0] if found else None


def pitch_track(audio: np.ndarray, sample_rate: int, hop_s: float = 0.05, rel: float = 0.3) -> list[tuple[float, float]]:
    """(time s, fractional MIDI note) of each ``hop_s`` frame louder than ``rel`` x the peak."""
    hop = max(64, int(sample_rate * hop_s))
    level = float(np.abs(audio).max()) if audio.size else 0.0
    track = []
    for start in range(0, len(audio) - hop + 1, hop):
        frame = audio[start : start + hop]
        if level > 0 and float(np.abs(frame).max()) > rel * level:
            p = fundamental(frame, sample_rate)
            if p is not None:
                track.append((start / sample_rate, p))
    return track


def note_sequence(track: list[tuple[float, float]], min_frames: int = 2) -> list[int]:
    """The notes heard, in order: a pitch counts once it holds for ``min_frames`` frames in a
    row (frames that straddle two notes, or a decaying tail's overtone, do not)."""
    notes: list[int] = []
    run_note, run = None, 0
    for _, p in track:
        n = int(round(p))
        run = run + 1 if n == run_note else 1
        run_note = n
        if run == min_frames and (not notes or notes[-1] != n):
            notes.append(n)
    return notes
