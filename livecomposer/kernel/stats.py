"""What the engine counts while it runs: messages in and out, failures, recent lateness.

Written only by the engine thread; read by the status screen and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


class LatencyRing:
    """The most recent latencies (ns), for the live status screen."""

    def __init__(self, size: int = 4096) -> None:
        self._values = np.zeros(size, dtype=np.int64)
        self._count = 0

    def add(self, ns: int) -> None:
        self._values[self._count % self._values.size] = ns
        self._count += 1

    def values(self) -> np.ndarray:
        return self._values[: min(self._count, self._values.size)].copy()

    def summary(self) -> tuple[float, float]:
        """(median, p99) in microseconds of the recent window; NaN before any sample."""
        v = self.values()
        if v.size == 0:
            return (float("nan"), float("nan"))
        return (float(np.median(v)) / 1000.0, float(np.percentile(v, 99)) / 1000.0)


@dataclass
class EngineStats:
    messages_in: int = 0
    bad_messages: int = 0
    ignored_messages: int = 0  # well-formed but unused (sysex, active sensing...)
    dropped: int = 0  # dropped by the backlog bound
    notes_in: int = 0
    notes_out: int = 0
    messages_out: int = 0
    send_errors: int = 0
    plugin_failures: int = 0
    ticks: int = 0
    last_bad: str = ""
    latency: LatencyRing = field(default_factory=LatencyRing)  # output lateness: send time - due time
    held_source: Callable[[], int] = field(default=lambda: 0, repr=False)  # set by the engine

    @property
    def held_notes(self) -> int:
        return self.held_source()

    def latency_summary(self) -> tuple[float, float]:
        return self.latency.summary()
