"""Stage hardening: ``livecomposer bench --stage``, the long runs that show livecomposer
survives a stage (fuzzed input, floods, failing models, an hour of playing), and the
generators, fault plugins and checkers they share with the ``tests/test_stage_*`` tests.

Without ``--stage`` this module measures nothing.  With it (``--quick`` shortens every run):

- fuzz: 100,000 fuzzed messages into ``events.parse`` (time per message), into the engine on
  the manual clock, and through a real JACK port into a live engine (what gets through);
- flood: 10,000 messages a second for 60 s through the effects graph (probe-note latency
  during and from one second after the flood, backlog, RSS), and an overload of notes alone
  into an engine made too slow for it (30 s);
- faults: thru's added latency while a playing partner's model takes 100 ms a step, or
  raises on every step (60 s each);
- soak: an hour of performance on the manual clock, and ten minutes in real time; one point
  a minute (RSS, live objects, p50/p99), also written to ``out/stage_soak_*.csv``.

Latency figures are microseconds; counts and memory are in each measurement's note.
"""

from __future__ import annotations

import csv
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import BenchOptions, Measurement, skipped, summarize

OUT = Path("out")
MB = 2**20


def measure(options: BenchOptions) -> list[Measurement]:
    if not options.stage:
        return []
    quick = options.quick
    results: list[Measurement] = []
    for name, section in (("fuzz", _fuzz), ("flood", _flood), ("faults", _faults), ("soak", _soak)):
        started = time.monotonic()
        try:
            results += section(quick)
        except Exception as exc:  # one broken section must not hide the others
            logging.getLogger(__name__).exception("stage bench %s failed", name)
            results.append(Measurement(f"stage {name}.error", 0, float("nan"), float("nan"), float("nan"), repr(exc)))
        logging.getLogger(__name__).info("stage %s took %.0f s", name, time.monotonic() - started)
    return results


def _single(name: str, n: int, value_us: float, note: str) -> Measurement:
    return Measurement(name, n, round(value_us, 2), float("nan"), float("nan"), note)


# --------------------------------------------------------------------------- fuzz


def _fuzz(quick: bool) -> list[Measurement]:
    from ...kernel.clock import ManualClock
    from ...kernel.engine import Engine
    from ...kernel.events import MidiParseError, parse
    from ...plugins.effects import Thru
    from ...ports.memory import MemoryOutput
    from . import fuzz

    n = 20_000 if quick else 100_000
    messages = list(fuzz.messages(n, seed=1))
    costs = np.empty(n, dtype=np.int64)
    counts = {"bad": 0, "ignored": 0, "event": 0}
    clock = time.perf_counter_ns
    for i, message in enumerate(messages):
        t0 = clock()
        try:
            kind = "event" if parse(message, 0) is not None else "ignored"
        except MidiParseError:
            kind = "bad"
        costs[i] = clock() - t0
        counts[kind] += 1
    results = [summarize("stage fuzz: events.parse per message", costs,
                         f"{n} fuzzed: {counts['bad']} bad, {counts['ignored']} ignored, {counts['event']} events; no other exception")]

    manual = ManualClock()
    out = MemoryOutput(manual.now)
    engine = Engine(Thru(), output=out, clock=manual)
    t0 = time.perf_counter()
    engine.run_offline([(i * 10_000, m) for i, m in enumerate(messages)], n * 10_000 + 1_000_000)
    wall = time.perf_counter() - t0
    s = engine.stats
    results.append(_single("stage fuzz: engine on the manual clock, per message", s.messages_in, wall / n * 1e6,
                           f"mean us/message; {s.messages_in} in, {s.bad_messages} counted bad, {s.ignored_messages} ignored, "
                           f"{s.messages_out} out"))

    from ..jackd import JackUnavailable, jack_available, jack_server
    from .live_runs import fuzz_through_jack

    if not jack_available():
        results.append(skipped("stage fuzz: through JACK", "jackd is not installed"))
        return results
    try:
        with jack_server(period=64, reuse=True):
            r = fuzz_through_jack(n)
    except JackUnavailable as exc:
        results.append(skipped("stage fuzz: through JACK", str(exc)))
        return results
    results.append(_single("stage fuzz: through JACK into a live engine", r.reached_engine, float("nan"),
                           f"{r.generated} generated, {r.refused_by_rtmidi} refused by rtmidi's send, {r.sent} sent, "
                           f"{r.reached_engine} reached the engine ({100 * r.reached_engine / max(1, r.sent):.1f}%; sysex, "
                           f"whole or cut short, is dropped at the port), {r.bad} counted bad, "
                           f"{r.ignored} ignored; notes after: {'yes' if r.notes_after else 'NO'}; stuck {len(r.stuck)}"))
    return results


# --------------------------------------------------------------------------- flood


def _flood_note(r) -> str:
    return (f"fed {r.fed} ({r.notes_fed} note-ons), dropped {r.dropped}, max backlog {r.max_backlog}, "
            f"RSS {r.rss_start / MB:.1f} -> peak {r.rss_peak / MB:.1f} -> end {r.rss_end / MB:.1f} MB, "
            f"backlog empty {r.backlog_clear_s:.3f} s after the end, stuck notes {len(r.stuck)}, "
            f"out {r.note_ons_out} on / {r.note_offs_out} off")


def _flood(quick: bool) -> list[Measurement]:
    from ...kernel.plugin import Parallel
    from ...plugins.effects import Thru
    from .runs import SlowEffect, effects_graph, flood

    seconds = 5.0 if quick else 60.0
    r = flood(rate=10_000, seconds=seconds, note_share=0.2, after_s=2.0, graph=effects_graph)
    after = [lat for s, lat in r.latency_after if s >= 1.0]
    first = [lat for s, lat in r.latency_after if s < 0.1]
    results = [
        summarize(f"stage flood 10k/s x {seconds:.0f} s: probe latency during", r.latency_during, _flood_note(r)),
        summarize("stage flood: probe latency in the first 100 ms after", first),
        summarize("stage flood: probe latency from 1 s after", after),
    ]
    over_s = 5.0 if quick else 30.0
    o = flood(rate=10_000, seconds=over_s, note_share=1.0, after_s=2.0, graph=lambda: Parallel([Thru(), SlowEffect(100.0)]))
    results.append(summarize(f"stage overload (notes only, 100 us/event graph) x {over_s:.0f} s: probe latency during",
                             o.latency_during, _flood_note(o)))
    results.append(summarize("stage overload: probe latency from 1 s after", [lat for s, lat in o.latency_after if s >= 1.0]))

    from ..jackd import JackUnavailable, jack_available, jack_server
    from .live_runs import flood_through_jack

    name = f"stage flood 10k/s x {seconds:.0f} s through JACK: probe latency (send to output)"
    if not jack_available():
        return results + [skipped(name, "jackd is not installed")]
    try:
        with jack_server(period=64, reuse=True):
            j = flood_through_jack(rate=10_000, seconds=seconds)
    except JackUnavailable as exc:
        return results + [skipped(name, str(exc))]
    results.append(summarize(name, j.latency,
                             f"sent {j.sent}, reached the engine {j.received} ({100 * j.received / max(1, j.sent):.2f}%), "
                             f"dropped {j.dropped}, max backlog {j.max_backlog}, RSS {j.rss_start / MB:.1f} -> {j.rss_peak / MB:.1f} MB, "
                             f"notes still sounding at the end {j.sounding_before_stop} (lost note-offs), none after the stop: "
                             f"{'yes' if not j.stuck else 'NO'}; notes after: {'yes' if j.notes_after else 'NO'}"))
    return results


# --------------------------------------------------------------------------- faults


def _faults(quick: bool) -> list[Measurement]:
    from .faults import tiny_checkpoint
    from .live_runs import model_fault_run

    seconds = 5.0 if quick else 60.0
    results = []
    with tempfile.TemporaryDirectory() as folder:
        model = tiny_checkpoint(Path(folder))
        previous = logging.root.manager.disable
        logging.disable(logging.ERROR)  # the raising model logs every failed step
        try:
            for mode in ("slow", "raise"):
                r = model_fault_run(mode, seconds, model)
                label = "takes 100 ms a step" if mode == "slow" else "raises on every step"
                results.append(summarize(f"stage fault: thru latency while the model {label}", r.latency_ns,
                                         f"{seconds:.0f} s live; {r.notes_in} notes played, model steps {r.model_steps}, "
                                         f"partner failures {r.partner_failures}, stuck notes {len(r.stuck)}"))
        finally:
            logging.disable(previous)
    return results


# --------------------------------------------------------------------------- soak


def _write_csv(path: Path, points) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["minute", "rss_mb", "objects", "p50_us", "p99_us", "n"])
        for p in points:
            writer.writerow([f"{p.minute:.3f}", f"{p.rss_mb:.2f}", p.objects, f"{p.p50_us:.1f}", f"{p.p99_us:.1f}", p.n])


def _curve(points, every: int) -> str:
    picked = points[::every] + ([points[-1]] if (len(points) - 1) % every else [])
    return "; ".join(f"min {p.minute:.1f}: {p.rss_mb:.1f} MB, {p.objects} obj, p50 {p.p50_us:.0f} p99 {p.p99_us:.0f} us" for p in picked)


def _soak_measurement(name: str, r, every: int, csv_path: Path) -> Measurement:
    points = r.points
    _write_csv(csv_path, points)
    if not points:
        return _single(name, 0, float("nan"), "no points")
    n = sum(p.n for p in points)
    return Measurement(name, n, round(float(np.median([p.p50_us for p in points])), 1),
                       round(float(np.median([p.p99_us for p in points])), 1), round(max(p.p99_us for p in points), 1),
                       f"median of per-minute p50 / median and max of per-minute p99; wall {r.wall_s:.0f} s; "
                       f"{r.messages} messages out; stuck {len(r.stuck)}; curve: {_curve(points, every)}; CSV {csv_path}")


def _soak(quick: bool) -> list[Measurement]:
    from .runs import soak_manual, soak_realtime

    minutes = 5.0 if quick else 60.0
    manual = soak_manual(minutes, every_s=60.0)
    results = [_soak_measurement(f"stage soak: {minutes:.0f} min on the manual clock, step cost", manual,
                                 max(1, len(manual.points) // 6), OUT / "stage_soak_manual.csv")]
    seconds = 30.0 if quick else 600.0
    every = 5.0 if quick else 60.0
    live = soak_realtime(seconds, every_s=every)
    results.append(_soak_measurement(f"stage soak: {seconds / 60:.1f} min in real time, added latency", live,
                                     max(1, len(live.points) // 5), OUT / "stage_soak_realtime.csv"))
    return results
