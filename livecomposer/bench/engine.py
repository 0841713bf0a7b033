"""Engine figures: added latency on the thru path, and lateness of scheduled output.

Both run the live engine thread (real clock, realtime priority where allowed) with
in-memory ports, so they measure our code alone: from the moment an input callback
stamps a message to the moment the output port's ``send`` returns.  The JACK variant
(``bench/jack.py``) adds real ports.
"""

from __future__ import annotations

import threading
import time

from ..rt.priority import INPUT_READER, make_realtime
from ..kernel.engine import Engine
from ..kernel.events import note_off, note_on
from ..kernel.plugin import Plugin
from ..ports.memory import MemoryInput, MemoryOutput
from . import BenchOptions, Measurement, summarize


class _Thru(Plugin):
    name = "bench_thru"


class _Metronome(Plugin):
    """Plans one short note every ``spacing_ns``, a little ahead, like a generator does."""

    name = "bench_metronome"

    def __init__(self, start: int, spacing_ns: int, count: int) -> None:
        super().__init__()
        self.start, self.spacing, self.count = start, spacing_ns, count
        self.planned = 0

    def process(self, events, now):
        out = []
        horizon = now + 5_000_000
        while self.planned < self.count and self.start + self.planned * self.spacing <= horizon:
            t = self.start + self.planned * self.spacing
            note = 36 + self.planned % 48
            out += [note_on(t, note, 90, channel=1, voice=self.voice), note_off(t + self.spacing // 2, note, channel=1, voice=self.voice)]
            self.planned += 1
        return out

    def next_wakeup(self):
        return None if self.planned >= self.count else self.start + self.planned * self.spacing - 4_000_000


def thru_samples(count: int, observers=(), spacing_s: float = 0.0005, realtime_feeder: bool = False) -> tuple[list[int], int]:
    """Input stamp -> output send returned (ns) for ``count`` note messages through a thru
    engine with ``observers``; and the engine's plugin failures.  ``realtime_feeder``: feed
    from a thread at realtime priority where allowed, as JACK's MIDI thread would, so the
    figure is the engine's and not the feeding thread's wait for a busy core."""
    inp = MemoryInput("bench-in")
    out = MemoryOutput(time.monotonic_ns, "bench-out")
    stamps: list[int] = []

    def feed() -> None:
        if realtime_feeder:
            make_realtime(INPUT_READER)
        for i in range(count):
            note = 36 + (i // 2) % 48
            t = time.monotonic_ns()
            stamps.append(t)
            inp.feed([0x90, note, 100] if i % 2 == 0 else [0x80, note, 0], t)
            time.sleep(spacing_s)

    with Engine(_Thru(), inputs=[inp], output=out, observers=list(observers)) as engine:
        time.sleep(0.05)
        if realtime_feeder:
            feeder = threading.Thread(target=feed, name="bench-feeder")
            feeder.start()
            feeder.join()
        else:
            feed()
        time.sleep(0.05)
        failures = engine.stats.plugin_failures
    sent = [t for t, m in out.sent if m[0] & 0xF0 in (0x80, 0x90)][:count]
    return [s - t for s, t in zip(sent, stamps)], failures


def thru_latency(count: int, spacing_s: float = 0.0005) -> Measurement:
    """Input callback stamp -> output send returned, for ``count`` note messages."""
    samples, failures = thru_samples(count, spacing_s=spacing_s)
    return summarize("engine.thru.memory", samples, f"{len(samples)}/{count} delivered, {failures} plugin failures")


def scheduled_lateness(count: int, spacing_ns: int = 500_000) -> Measurement:
    """How late planned notes leave compared with their due time."""
    out = MemoryOutput(time.monotonic_ns, "bench-out")
    start = time.monotonic_ns() + 100_000_000
    metronome = _Metronome(start, spacing_ns, count)
    with Engine(metronome, output=out):
        time.sleep((start - time.monotonic_ns()) / 1e9 + count * spacing_ns / 1e9 + 0.1)
    ons = [t for t, m in out.sent if m[0] == 0x91][:count]
    samples = [t - (start + i * spacing_ns) for i, t in enumerate(ons)]
    return summarize("engine.scheduled.lateness", samples, f"{len(ons)}/{count} sent, {spacing_ns // 1000} us apart")


def measure(options: BenchOptions) -> list[Measurement]:
    n = 500 if options.quick else options.events
    return [thru_latency(n), scheduled_lateness(n)]
