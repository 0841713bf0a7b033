"""``livecomposer bench``: timing figures as measured distributions.

Each module in this package exposes ``measure(options) -> list[Measurement]``; the command
discovers them, so every area (engine, model, partners, visuals, stage) adds its own
measurements in its own module.  Figures are median, p99 and max in microseconds.
"""

from __future__ import annotations

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

    def as_dict(self) -> dict:
        return asdict(self)


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
