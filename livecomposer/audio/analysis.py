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
