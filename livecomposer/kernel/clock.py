"""Clocks: the real monotonic one, and a manual one that makes the engine deterministic.

The engine never calls ``time`` directly; it asks its clock.  Live, that is
``time.monotonic_ns`` (the same base the input callbacks stamp with); in tests and offline
renders it is a :class:`ManualClock` that only moves when told, so a whole performance
can run faster than real time and give identical output every run.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol

from .events import NS_PER_MS


class Clock(Protocol):
    def now(self) -> int:
        """Current time in nanoseconds."""
        ...


class MonotonicClock:
    """``time.monotonic_ns``: the clock live input is stamped with."""

    #: Below this much time left, :meth:`sleep_until` spins instead of sleeping,
    #: because the OS wakes sleepers up to a few hundred microseconds late.
    spin_ns = 600_000

    def now(self) -> int:
        return time.monotonic_ns()

    def sleep_until(self, deadline: int) -> None:
        """Sleep, then spin the last fraction of a millisecond, to wake on time."""
        while True:
            left = deadline - time.monotonic_ns()
            if left <= 0:
                return
            if left > self.spin_ns:
                time.sleep((left - self.spin_ns) / 1e9)
            else:
                time.sleep(0)  # yield the GIL to the MIDI callbacks while spinning


class ManualClock:
    """A clock that moves only when the test or the offline renderer advances it."""

    def __init__(self, start: int = 0) -> None:
        self._now = start

    def now(self) -> int:
        return self._now

    def set(self, time_ns: int) -> None:
        if time_ns < self._now:
            raise ValueError(f"manual clock cannot go back ({time_ns} < {self._now})")
        self._now = time_ns

    def advance(self, delta_ns: int) -> None:
        self.set(self._now + delta_ns)

    def advance_ms(self, ms: float) -> None:
        self.advance(int(ms * NS_PER_MS))


def tune_interpreter() -> None:
    """Let MIDI callbacks (which need the GIL) in more often than the default 5 ms."""
    sys.setswitchinterval(0.0005)
