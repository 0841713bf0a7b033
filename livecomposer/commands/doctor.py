"""``livecomposer doctor [--json]``: is this machine ready for a live set, and what to fix.

One line per check (ok, warn, FAIL) and, under each problem, one line saying how to fix
it.  Exit status 0 when a set can run (warnings allowed), 1 when one cannot.
"""

from __future__ import annotations

import argparse
import json

from ..ports.base import MIDI_APIS  # not ports.backends: `livecomposer --help` would load libjack and numba


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check what a live set needs (JACK, MIDI, realtime, sound, models) and how to fix it")
    p.add_argument("--api", choices=MIDI_APIS, default="auto", help="the MIDI backend `run` will use (default: auto)")
    p.add_argument("--json", action="store_true", help="print {ok, checks: [{name, status, detail, fix}]} as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..app.doctor import FAIL, OK, can_play, run_checks

    checks = run_checks(args.api)
    ok = can_play(checks)
    if args.json:
        print(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}, indent=1))
    else:
        for c in checks:
            mark = {OK: "ok  ", FAIL: "FAIL"}.get(c.status, "warn")
            print(f"{mark}  {c.name:<18} {c.detail}")
            if c.fix:
                print(f"      {'':<18} fix: {c.fix}")
        print("ready for a live set" if ok else "not ready: fix the FAIL lines above")
    return 0 if ok else 1
