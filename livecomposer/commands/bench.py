"""``livecomposer bench``: timing figures (median, p99, max in microseconds)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import pkgutil
import sys

from .. import bench
from ..bench import BenchOptions, Measurement

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency and throughput (median, p99, max in us)")
    p.add_argument("--json", action="store_true", help="print one JSON list of measurements")
    p.add_argument("--events", type=int, default=5000, help="events per latency measurement (default 5000)")
    p.add_argument("--quick", action="store_true", help="short runs (smoke test of the benchmark itself)")
    p.add_argument("--stage", action="store_true", help="also the long stage-hardening runs")
    p.add_argument("--only", help="only the benchmark modules whose name contains this")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = BenchOptions(events=args.events, quick=args.quick, stage=args.stage, only=args.only)
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
        if not args.json:
            for m in found:
                print(f"{m.name:<40} n={m.n:<6} median={m.median_us:>9.1f} us  p99={m.p99_us:>9.1f} us  max={m.max_us:>9.1f} us  {m.note}", flush=True)
    if args.json:
        print(json.dumps([m.as_dict() for m in results], indent=1))
    sys.stdout.flush()  # the figures must reach a file even if a driver crashes at exit
    return 1 if any(m.name.endswith(".error") for m in results) else 0
