"""The music made visible: a piano roll over the picture, scrolling right to left.

Time runs across (the "now" line in the middle: the past on its left, the machine's
plans coming in from the right), pitch up the frame (the range follows what is
playing, smoothly).  The performer's notes are warm white, the machine's cyan, and the
machine's planned notes (scheduled, not yet played) cyan outlines with a half-tone fill, so a
player sees what the machine is about to do before it sounds.

Drawn on the final uint8 frame with numpy slices: well under a millisecond for the
160 rows of the note table.
"""

from __future__ import annotations

import math

import numpy as np

from . import notes as N

NOW_AT = 0.5  # the now line, as a fraction of the width: as much past as plans ahead
PERFORMER_RGB = np.array([255, 240, 205], dtype=np.float32)
MACHINE_RGB = np.array([60, 215, 255], dtype=np.float32)
NOW_RGB = np.array([255, 255, 255], dtype=np.float32)
SHADOW_RGB = np.array([0, 0, 0], dtype=np.float32)
MIN_SPAN = 24  # semitones shown at least
RANGE_TAU_S = 1.5


class Overlay:
    """Stateful only in its pitch range, which glides to fit the notes in view."""

    def __init__(self) -> None:
        self.low = 48.0
        self.high = 84.0

    def draw(self, frame: np.ndarray, rows: np.ndarray, now_s: float, window_s: float, dt: float) -> np.ndarray:
        """Draws the notes of ``rows`` (the note table, (CAPACITY, COLUMNS)) on ``frame`` in place."""
        h, w = frame.shape[:2]
        past, future = NOW_AT * window_s, (1 - NOW_AT) * window_s
        who = rows[:, N.WHO]
        on, off = rows[:, N.ON], rows[:, N.OFF]
        visible = (who != N.EMPTY) & (on < now_s + future) & (off > now_s - past)
        shown = rows[visible]
        self._fit(shown[:, N.PITCH], dt)
        span = self.high - self.low
        lane = h / span
        px_per_s = w / window_s
        x_now = int(round(NOW_AT * w))
        for on_s, off_s, pitch, kind, velocity in shown:
            end = now_s + future if math.isinf(off_s) else off_s
            if kind != N.PLANNED_NOTE and math.isinf(off_s):
                end = now_s  # a sounding note grows up to the now line
            x0 = int(x_now + (on_s - now_s) * px_per_s)
            x1 = max(x0 + 2, int(x_now + (end - now_s) * px_per_s))
            y1 = int(round(h - (pitch - self.low) * lane))
            y0 = int(round(y1 - max(2.0, lane * 0.8)))
            x0, x1, y0, y1 = max(0, x0), min(w, x1), max(0, y0), min(h, y1)
            if x1 <= x0 or y1 <= y0:
                continue
            colour = PERFORMER_RGB if kind == N.PERFORMER_NOTE else MACHINE_RGB
            alpha = 0.45 + 0.45 * velocity / 127.0
            # a dark rim first: the notes stay readable on light grounds and on their own colour
            _blend(frame[max(0, y0 - 1):y1 + 1, max(0, x0 - 1):x1 + 1], SHADOW_RGB, 0.6)
            if kind == N.PLANNED_NOTE:
                _blend(frame[y0:y1, x0:x1], colour, 0.4)
                _blend(frame[y0:y0 + 1, x0:x1], colour, 0.95)
                _blend(frame[y1 - 1:y1, x0:x1], colour, 0.95)
                _blend(frame[y0:y1, x0:x0 + 1], colour, 0.95)
                _blend(frame[y0:y1, x1 - 1:x1], colour, 0.95)
            else:
                _blend(frame[y0:y1, x0:x1], colour, alpha)
        _blend(frame[:, x_now:x_now + 1], NOW_RGB, 0.5)
        return frame

    def _fit(self, pitches: np.ndarray, dt: float) -> None:
        if len(pitches):
            low, high = float(pitches.min()) - 2, float(pitches.max()) + 3
            middle = (low + high) / 2
            half = max(MIN_SPAN, high - low) / 2
            low, high = middle - half, middle + half
        else:
            low, high = self.low, self.high
        k = min(1.0, dt / RANGE_TAU_S) if dt > 0 else 1.0
        self.low += (low - self.low) * k
        self.high += (high - self.high) * k


def _blend(region: np.ndarray, colour: np.ndarray, alpha: float) -> None:
    if region.size:
        region[:] = (region * (1.0 - alpha) + colour * alpha).astype(np.uint8)
