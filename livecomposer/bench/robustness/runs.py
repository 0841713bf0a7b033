"""Flood and soak runs in memory, sized by arguments: a CI test runs seconds of what the bench runs
for a minute or an hour.

Each run drives a real :class:`~livecomposer.kernel.engine.Engine` the way a MIDI driver does, by
calling its input sink from another thread with ``(monotonic_ns, bytes)``, and collects:
memory (RSS, sampled), the input backlog (the engine's raw queue, sampled), the added
latency of probe notes (send time minus input time stamp), and what went out.
"""

from __future__ import annotations

import gc
import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...kernel.clock import ManualClock
from ...kernel.engine import Engine
from ...kernel.events import NS_PER_MS, NS_PER_S
from ...kernel.plugin import Chain, Parallel
from ...plugins.effects import NoteLengthLimit, ScaleQuantize, Thru, Transpose, VelocityCurve
from ...kernel.plugin import Plugin
from ...ports.base import OutputPort

PAGE = os.sysconf("SC_PAGE_SIZE")
PROBE_CHANNEL = 15  # probe notes travel here; the flood never uses it


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def effects_graph() -> Parallel:
    """A realistic effects preset: thru beside a chain of the built-in effects."""
    return Parallel([
        Thru(id="dry"),
        Chain([Transpose(id="up", semitones=12), VelocityCurve(id="vel", gamma=0.8), ScaleQuantize(id="scale", key="D minor"),
               NoteLengthLimit(id="limit", max_ms=2000.0)], id="fx"),
    ], id="layers")


class LedgerOutput(OutputPort):
    """An output that keeps no message, only what long runs need: counts, the notes still
    sounding at the far end (the stuck-note ledger) and probe latencies.  Keeping every
    message (as :class:`MemoryOutput` does) would itself look like a leak in an hour's run.

    Probe notes: :meth:`probe` stamps a note-on going in; when the engine sends a note-on
    with the same (channel, note), its latency (send time minus stamp) is recorded."""

    name = "ledger-out"

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.clock = clock
        self.messages = 0
        self.note_ons = 0
        self.note_offs = 0
        self.sounding: dict[tuple[int, int], int] = {}
        self.pending: dict[tuple[int, int], int] = {}
        self.samples: list[tuple[int, int]] = []  # (input time, latency ns)
        self.fail = False  # True: behave like a port that vanished

    def probe(self, channel: int, note: int, t_in: int) -> None:
        self.pending[(channel, note)] = t_in

    def send(self, message, due_ns: int | None = None) -> None:
        if self.fail:
            raise OSError("output gone")
        self.messages += 1
        if len(message) != 3 or message[0] & 0xE0 != 0x80:
            return
        key = (message[0] & 0x0F, message[1])
        if message[0] & 0xF0 == 0x90 and message[2]:
            self.note_ons += 1
            self.sounding[key] = self.sounding.get(key, 0) + 1
            t_in = self.pending.pop(key, None)
            if t_in is not None:
                self.samples.append((t_in, self.clock() - t_in))
        else:
            self.note_offs += 1
            if self.sounding.get(key):
                self.sounding[key] -= 1
                if not self.sounding[key]:
                    del self.sounding[key]

    def close(self) -> None:
        pass


class SlowEffect(Plugin):
    """Passes events through, spending ``us_per_event`` of CPU on each: a machine too slow
    for the traffic, so a flood really piles up in the engine's input queue."""

    name = "slow_effect"

    def __init__(self, us_per_event: float = 50.0, id: str | None = "slow") -> None:
        super().__init__(id=id)
        self.cost_ns = int(us_per_event * 1000)

    def process(self, events, now):
        until = time.perf_counter_ns() + self.cost_ns * len(events)
        while time.perf_counter_ns() < until:
            pass
        return list(events)


@dataclass
class FloodResult:
    rate: int
    seconds: float
    fed: int = 0
    notes_fed: int = 0
    note_offs_fed: int = 0
    dropped: int = 0
    max_backlog: int = 0
    rss_start: int = 0
    rss_peak: int = 0
    rss_end: int = 0
    backlog_clear_s: float = float("nan")  # after the flood's end
    latency_during: list[int] = field(default_factory=list)
    latency_after: list[tuple[float, int]] = field(default_factory=list)  # (s after the end, ns)
    stuck: dict = field(default_factory=dict)
    note_ons_out: int = 0
    note_offs_out: int = 0
    engine: Engine | None = None


def flood(rate: int = 10_000, seconds: float = 5.0, note_share: float = 0.2, after_s: float = 2.0,
          graph: Callable[[], Plugin] = Thru, seed: int = 0) -> FloodResult:
    """Feed ``rate`` messages a second for ``seconds`` into a live engine (thru by default).

    The mix: ``note_share`` of the messages are note-ons and note-offs on channels 1-15
    (at most 24 held), the rest CCs, pitch bend and channel pressure.  Probe notes on
    channel 16 every 20 ms, during the flood and for ``after_s`` after it, measure the
    engine-added latency.  The backlog (the engine's raw input queue) is sampled by the
    feeding thread itself, every millisecond.
    """
    rng = random.Random(seed)
    out = LedgerOutput()
    engine = Engine(graph(), output=out)
    result = FloodResult(rate, seconds, engine=engine)
    gc.collect()
    result.rss_start = result.rss_peak = rss_bytes()
    sunk = [0]

    def sink(t: int, message: bytes, _sink=engine.sink) -> None:
        sunk[0] += 1
        _sink(t, message)

    raw = engine._raw
    clock = time.monotonic_ns
    held: list[tuple[int, int]] = []
    probe_note = 0

    def probe(now: int) -> int:
        nonlocal probe_note
        probe_note = (probe_note + 1) % 128
        t = clock()
        out.probe(PROBE_CHANNEL, probe_note, t)
        sink(t, bytes([0x90 | PROBE_CHANNEL, probe_note, 64]))
        sink(clock(), bytes([0x80 | PROBE_CHANNEL, probe_note, 0]))
        return now + 20 * NS_PER_MS

    with engine:
        start = clock()
        end = start + int(seconds * NS_PER_S)
        next_probe = start
        next_rss = start
        while True:
            now = clock()
            if now >= end:
                break
            owed = int(rate * (now - start) / NS_PER_S) - result.fed
            for _ in range(owed):
                r = rng.random()
                if r < note_share:
                    if held and (rng.random() < 0.5 or len(held) > 24):
                        ch, note = held.pop(rng.randrange(len(held)))
                        sink(clock(), bytes([0x80 | ch, note, 0]))
                        result.note_offs_fed += 1
                    else:
                        ch, note = rng.randrange(15), rng.randrange(128)
                        sink(clock(), bytes([0x90 | ch, note, 1 + rng.randrange(127)]))
                        held.append((ch, note))
                        result.notes_fed += 1
                elif r < note_share + (1 - note_share) * 0.6:
                    sink(clock(), bytes([0xB0 | rng.randrange(15), rng.randrange(120), rng.randrange(128)]))
                elif r < note_share + (1 - note_share) * 0.85:
                    v = rng.randrange(16384)
                    sink(clock(), bytes([0xE0 | rng.randrange(15), v & 0x7F, v >> 7]))
                else:
                    sink(clock(), bytes([0xD0 | rng.randrange(15), rng.randrange(128)]))
                result.fed += 1
            result.max_backlog = max(result.max_backlog, len(raw))
            if now >= next_probe:
                next_probe = probe(now)
            if now >= next_rss:
                result.rss_peak = max(result.rss_peak, rss_bytes())
                next_rss = now + 100 * NS_PER_MS
            time.sleep(0.0005)
        flood_end = clock()
        for ch, note in held:  # the player lets go
            sink(flood_end, bytes([0x80 | ch, note, 0]))
            result.note_offs_fed += 1
        held.clear()
        after_end = flood_end + int(after_s * NS_PER_S)
        while True:
            now = clock()
            if now >= after_end:
                break
            result.max_backlog = max(result.max_backlog, len(raw))
            # Cleared once everything fed was handled or shed (an empty deque alone can be
            # the moment the engine is shedding it).
            stats = engine.stats
            if result.backlog_clear_s != result.backlog_clear_s and stats.messages_in + stats.dropped >= sunk[0]:
                result.backlog_clear_s = (now - flood_end) / NS_PER_S
            if now >= next_probe:
                next_probe = probe(now)
            time.sleep(0.001)
        result.rss_peak = max(result.rss_peak, rss_bytes())
    gc.collect()
    result.rss_end = rss_bytes()
    result.dropped = engine.stats.dropped
    for t_in, lat in out.samples:
        if t_in < flood_end:
            result.latency_during.append(lat)
        else:
            result.latency_after.append(((t_in - flood_end) / NS_PER_S, lat))
    result.stuck = dict(out.sounding)
    result.note_ons_out, result.note_offs_out = out.note_ons, out.note_offs
    return result


# --------------------------------------------------------------------------- soak


def performance(seconds: float, notes_per_s: float = 8.0, cc_per_s: float = 20.0, seed: int = 0,
                start_ns: int = 0) -> list[tuple[int, bytes]]:
    """A long, plausible performance: overlapping notes (30 ms to 1.5 s), a mod-wheel and
    expression stream, occasional pitch bends; every note-on has its note-off."""
    rng = random.Random(seed)
    events: list[tuple[int, bytes]] = []
    t = start_ns
    end = start_ns + int(seconds * NS_PER_S)
    while True:
        t += int(rng.expovariate(notes_per_s) * NS_PER_S) + 1
        if t >= end:
            break
        note = 36 + rng.randrange(60)
        events.append((t, bytes([0x90, note, 20 + rng.randrange(100)])))
        events.append((min(end - 1, t + int(rng.uniform(0.03, 1.5) * NS_PER_S)), bytes([0x80, note, 0])))
    t = start_ns
    while True:
        t += int(rng.expovariate(cc_per_s) * NS_PER_S) + 1
        if t >= end:
            break
        if rng.random() < 0.9:
            events.append((t, bytes([0xB0, rng.choice((1, 11)), rng.randrange(128)])))
        else:
            v = rng.randrange(16384)
            events.append((t, bytes([0xE0, v & 0x7F, v >> 7])))
    events.sort(key=lambda e: e[0])
    return events


@dataclass
class SoakPoint:
    minute: float  # of performance time
    rss_mb: float
    objects: int  # live Python objects (gc), a leak shows here before it shows in RSS
    p50_us: float
    p99_us: float
    n: int


class _MinuteSampler:
    """Observer: once per ``every_ns`` of engine time, record memory and the tick costs
    (wall time between consecutive observer calls, i.e. one engine step) of that period."""

    def __init__(self, every_ns: int, stamp: Callable[[], int] = time.perf_counter_ns) -> None:
        self.every_ns = every_ns
        self.stamp = stamp
        self.points: list[SoakPoint] = []
        self._next = every_ns
        self._last: int | None = None
        self._costs: list[int] = []

    def observe(self, inputs, outputs, now: int) -> None:
        t = self.stamp()
        if self._last is not None:
            self._costs.append(t - self._last)
        self._last = t
        if now >= self._next:
            self._next += self.every_ns
            self.flush(now)
            self._last = self.stamp()

    def flush(self, now: int) -> None:
        costs = np.asarray(self._costs or [0], dtype=np.float64) / 1000.0
        self.points.append(SoakPoint(now / (60 * NS_PER_S), rss_bytes() / 2**20, len(gc.get_objects()),
                                     float(np.median(costs)), float(np.percentile(costs, 99)), len(self._costs)))
        self._costs = []


@dataclass
class SoakResult:
    points: list[SoakPoint]
    wall_s: float
    messages: int
    stuck: dict
    engine: Engine


def soak_manual(minutes: float, seed: int = 0, every_s: float = 60.0, **perf) -> SoakResult:
    """``minutes`` of performance through the effects graph on the manual clock, as fast as
    it runs; one :class:`SoakPoint` per ``every_s`` of performance time (the cost figures are
    wall time per engine step)."""
    clock = ManualClock()
    out = LedgerOutput(clock.now)
    sampler = _MinuteSampler(int(every_s * NS_PER_S))
    engine = Engine(effects_graph(), output=out, clock=clock, observers=[sampler], seed=seed)
    messages = performance(minutes * 60, seed=seed, **perf)
    gc.collect()
    t0 = time.perf_counter()
    engine.run_offline(messages, int(minutes * 60 * NS_PER_S) + NS_PER_S)
    wall = time.perf_counter() - t0
    return SoakResult(sampler.points, wall, out.messages, dict(out.sounding), engine)


def soak_realtime(seconds: float, seed: int = 0, every_s: float = 60.0, speed: float = 1.0) -> SoakResult:
    """``seconds`` of performance played in real time into a live engine (effects graph):
    one point per ``every_s`` with RSS and the engine-added latency of that period's notes
    (output send time minus the input time stamp, on the dry layer)."""
    out = LedgerOutput()
    engine = Engine(effects_graph(), output=out, seed=seed)
    messages = performance(seconds, seed=seed, notes_per_s=8.0 * speed, cc_per_s=20.0 * speed)
    points: list[SoakPoint] = []
    every_ns = int(every_s * NS_PER_S)
    gc.collect()
    t0 = time.perf_counter()
    with engine:
        start = time.monotonic_ns()
        next_point = start + every_ns
        taken = 0
        for offset, message in messages:
            due = start + offset
            while True:
                now = time.monotonic_ns()
                if now >= next_point:
                    lat = [ns for _, ns in out.samples[taken:]]
                    taken = len(out.samples)
                    a = np.asarray(lat or [0], dtype=np.float64) / 1000.0
                    points.append(SoakPoint((now - start) / (60 * NS_PER_S), rss_bytes() / 2**20, len(gc.get_objects()),
                                            float(np.median(a)), float(np.percentile(a, 99)), len(lat)))
                    next_point += every_ns
                if now >= due:
                    break
                time.sleep(min(0.002, (due - now) / NS_PER_S))
            t = time.monotonic_ns()
            if message[0] == 0x90:
                out.probe(0, message[1], t)  # the dry layer answers on channel 1
            engine.sink(t, message)
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if len(out.samples) > 100_000:
        del out.samples[:-100_000]
    return SoakResult(points, wall, out.messages, dict(out.sounding), engine)


# --------------------------------------------------------------------------- fuzz and faults
