"""``livecomposer bench``: timing figures as measured distributions.

Each module in this package exposes ``measure(options) -> list[Measurement]``; the command
discovers them, so every area (engine, model, partners, visuals, stage) adds its own
measurements in its own module.  Figures are median, p99 and max in microseconds.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Measurement:
    name: str
    n: int
    median_us: float
    p99_us: float
    max_us: float
    note: str = ""
    skipped: str = ""  # why this machine cannot measure it (no JACK, no PortAudio, no model)

    def as_dict(self) -> dict:
        """For ``bench --json``: a skipped figure is ``{"name", "skipped"}``; a number that
        could not be had is None (JSON null: NaN is not JSON, and tools reject it)."""
        if self.skipped:
            return {"name": self.name, "skipped": self.skipped}
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items() if k != "skipped"}

    def text(self) -> str:
        """One line for people: the figures, or why there are none."""
        if self.skipped:
            return f"{self.name:<40} skipped: {self.skipped}"
        return f"{self.name:<40} n={self.n:<6} median={self.median_us:>9.1f} us  p99={self.p99_us:>9.1f} us  max={self.max_us:>9.1f} us  {self.note}"


def skipped(name: str, why: str) -> Measurement:
    """A figure this machine cannot measure, and why: listed, not failed."""
    nan = float("nan")
    return Measurement(name, 0, nan, nan, nan, skipped=why)


def summarize(name: str, samples_ns: Sequence[int] | np.ndarray, note: str = "") -> Measurement:
    """Median, p99 and max of a list of nanosecond samples, in microseconds."""
    a = np.asarray(samples_ns, dtype=np.float64) / 1000.0
    if a.size == 0:
        return Measurement(name, 0, float("nan"), float("nan"), float("nan"), note or "no samples")
    return Measurement(name, int(a.size), round(float(np.median(a)), 1), round(float(np.percentile(a, 99)), 1), round(float(a.max()), 1), note)


@dataclass(frozen=True)
class BenchOptions:
    events: int = 5000  # events per latency measurement (the issue asks for >= 5,000)
    quick: bool = False  # smaller runs, for tests of the bench command itself
    stage: bool = False  # the long stage-hardening runs (issue 7)
    only: str | None = None  # run only modules whose name contains this
