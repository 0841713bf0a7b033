"""The bundled performance for ``livecomposer demo``: a keyboard player's phrases, with pauses.

Four two-bar calls in D major (a folk-style tune, the kind the shipped melody model
learned), each followed by two bars of silence for the machine to answer, played with a
human touch: timing jitter, uneven velocities, legato overlaps.  Generated from a fixed
seed, so the demo is the same on every machine.
"""

from __future__ import annotations

import numpy as np

from ..kernel.events import NS_PER_S

BPM = 100.0
# (beat offset within the call, duration in beats, MIDI pitch); 8 beats per call.
CALLS: list[list[tuple[float, float, int]]] = [
    [(0, 1, 62), (1, 0.5, 66), (1.5, 0.5, 69), (2, 1, 74), (3, 1, 73), (4, 0.5, 71), (4.5, 0.5, 69), (5, 1, 66), (6, 2, 69)],
    [(0, 0.5, 71), (0.5, 0.5, 69), (1, 1, 67), (2, 1, 66), (3, 1, 64), (4, 1.5, 66), (5.5, 0.5, 67), (6, 2, 64)],
    [(0, 1, 69), (1, 1, 74), (2, 0.5, 76), (2.5, 0.5, 74), (3, 1, 73), (4, 1, 71), (5, 1, 73), (6, 2, 74)],
    [(0, 0.5, 74), (0.5, 0.5, 73), (1, 1, 71), (2, 1, 69), (3, 1, 67), (4, 1, 66), (5, 1, 64), (6, 2, 62)],
]


def demo_phrase(seed: int = 7, start_ns: int = NS_PER_S // 2) -> list[tuple[int, bytes]]:
    """Timed raw MIDI messages (channel 1) of the demo performance."""
    rng = np.random.default_rng(seed)
    beat = 60.0 / BPM
    out: list[tuple[int, bytes]] = []
    for index, call in enumerate(CALLS):
        call_start = index * 16 * beat  # 8 beats of call, 8 beats of silence
        for offset, length, pitch in call:
            on = call_start + offset * beat + rng.normal(0.0, 0.012)
            off = on + length * beat * rng.uniform(0.82, 0.97)
            accent = 14 if offset % 2 == 0 else 0
            velocity = int(np.clip(rng.normal(78 + accent, 8), 35, 120))
            out.append((start_ns + int(max(0.0, on) * NS_PER_S), bytes([0x90, pitch, velocity])))
            out.append((start_ns + int(off * NS_PER_S), bytes([0x80, pitch, 64])))
    out.sort(key=lambda item: item[0])
    return out


def duration_ns(start_ns: int = NS_PER_S // 2) -> int:
    return start_ns + int(len(CALLS) * 16 * 60.0 / BPM * NS_PER_S)
