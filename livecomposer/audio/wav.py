"""Offline audio: render a session's events to a WAV with the built-in synth.

``render`` and ``demo`` call :func:`render_wav` with the events they sent, so a session can
be heard on a machine with no sound card.  Sample-accurate: each event lands on the sample
its nanosecond time falls on.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..kernel.events import NS_PER_S, Event, Kind, sorted_events
from .synth import Synth

_AUDIBLE = (Kind.NOTE_ON, Kind.NOTE_OFF, Kind.CONTROL)
_CHUNK = 4096


@dataclass(frozen=True)
class WavInfo:
    path: Path
    sample_rate: int
    frames: int
    peak: float  # largest absolute sample, 0..1
    notes: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def render_audio(
    events: Iterable[Event],
    sample_rate: int = 48000,
    start_ns: int | None = None,
    tail_s: float = 1.5,
    synth: Synth | None = None,
) -> np.ndarray:
    """The session as a float32 array (frames, 2).  ``start_ns``: the time of sample 0
    (default: the first event's time); ``tail_s``: silence kept after the last event for
    the releases to ring out."""
    timed = [e for e in sorted_events(events) if e.kind in _AUDIBLE]
    synth = synth or Synth(sample_rate=sample_rate)
    if synth.sample_rate != sample_rate:
        raise ValueError(f"synth runs at {synth.sample_rate} Hz, asked for {sample_rate} Hz")
    if not timed:
        return np.zeros((int(tail_s * sample_rate), 2), dtype=np.float32)
    start = timed[0].time if start_ns is None else start_ns

    def frame_of(t: int) -> int:
        return max(0, (t - start) * sample_rate // NS_PER_S)

    total = frame_of(timed[-1].time) + int(tail_s * sample_rate)
    out = np.zeros((total, 2), dtype=np.float32)
    pos = 0
    i = 0
    while pos < total:
        # render up to the next event (or a chunk), then apply every event due at this frame
        while i < len(timed) and frame_of(timed[i].time) <= pos:
            synth.handle(timed[i])
            i += 1
        nxt = frame_of(timed[i].time) if i < len(timed) else total
        n = max(1, min(nxt - pos, _CHUNK, total - pos))
        out[pos : pos + n] = synth.render(n)
        pos += n
    return out


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = 48000) -> Path:
    """16-bit PCM WAV, stereo or mono, from float samples in [-1, 1]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.asarray(audio, dtype=np.float32)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(float32 samples (frames, channels), sample rate) of a 16- or 32-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV not supported")
    return data.reshape(-1, channels), rate


def render_wav(
    events: Iterable[Event],
    path: str | Path,
    sample_rate: int = 48000,
    start_ns: int | None = None,
    tail_s: float = 1.5,
) -> WavInfo:
    """Render the events (note on/off and CCs; the rest is ignored) with the built-in synth
    and write a 16-bit stereo WAV.  Returns what was written."""
    events = list(events)
    audio = render_audio(events, sample_rate=sample_rate, start_ns=start_ns, tail_s=tail_s)
    written = write_wav(path, audio, sample_rate)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    notes = sum(1 for e in events if e.kind is Kind.NOTE_ON)
    return WavInfo(written, sample_rate, len(audio), peak, notes)
