"""``livecomposer bench``: timing figures (median, p99, max in microseconds).

With ``--json`` standard output carries one JSON list and nothing else, so a tool can read
it: everything else that would reach file descriptor 1 while the benchmarks run (our log
lines, a visualizer child's address, libjack's messages) goes to standard error instead.
A figure this machine cannot measure is an entry ``{"name", "skipped": why}``; the exit
status is 1 only when a benchmark broke.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import pkgutil
import sys
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from ..bench import BenchOptions, Measurement

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency and throughput (median, p99, max in us)")
    p.add_argument("--json", action="store_true", help="print one JSON list of measurements (only that, on stdout)")
    p.add_argument("--events", type=int, default=5000, help="events per latency measurement (default 5000)")
    p.add_argument("--quick", action="store_true", help="short runs (smoke test of the benchmark itself)")
    p.add_argument("--stage", action="store_true", help="also the long stage-hardening runs")
    p.add_argument("--only", help="only the benchmark modules whose name contains this")
    p.set_defaults(func=run)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at standard error (child processes and C libraries included)
    until the block ends."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)


def measure_all(options: BenchOptions, show: bool) -> list[Measurement]:
    """Every benchmark module's figures; ``show`` prints each as it comes."""
    from .. import bench
    from ..bench import Measurement

    results: list[Measurement] = []
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if options.only and options.only not in info.name:
            continue
        module = importlib.import_module(f"{bench.__name__}.{info.name}")
        measure = getattr(module, "measure", None)
        if measure is None:
            continue
        try:
            found = measure(options)
        except Exception as exc:  # one broken benchmark must not hide the others
            log.exception("benchmark %s failed", info.name)
            found = [Measurement(f"{info.name}.error", 0, float("nan"), float("nan"), float("nan"), repr(exc))]
        results.extend(found)
        if show:
            for m in found:
                print(m.text(), flush=True)
    return results


def run(args: argparse.Namespace) -> int:
    from ..bench import BenchOptions

    options = BenchOptions(events=args.events, quick=args.quick, stage=args.stage, only=args.only)
    if args.json:
        with stdout_to_stderr():
            results = measure_all(options, show=False)
        print(json.dumps([m.as_dict() for m in results], indent=1, allow_nan=False))
    else:
        results = measure_all(options, show=True)
    sys.stdout.flush()  # the figures must reach a file even if a driver crashes at exit
    return 1 if any(m.name.endswith(".error") for m in results) else 0
