"""``livecomposer plugins [NAME]``: what a preset's graph can use, one line each.

Lists built-ins and installed entry points; a plugin that cannot be loaded is listed with
the reason instead of crashing the listing.  With a NAME, shows that plugin's parameters.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list the plugins presets can use (or show one plugin's parameters)")
    p.add_argument("name", nargs="?", help="a plugin name: show its parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..plugins import registry

    if args.name:
        return _show(args.name)
    rows = registry.catalog()
    width = max(len(row.name) for row in rows)
    broken = 0
    for row in rows:
        if row.cls is not None:
            print(f"{row.name:<{width}}  {row.summary}")
        else:
            broken += 1
            reason = (row.error or "").removeprefix(f"plugin {row.name!r} is not available: ")
            print(f"{row.name:<{width}}  unavailable: {reason}")
    extra = [row for row in rows if row.source != "built-in"]
    print(f"\n{len(rows) - broken} plugins available ({len(extra)} from installed packages); "
          f"'livecomposer plugins NAME' shows a plugin's parameters.")
    return 0


def _show(name: str) -> int:
    from ..plugins import registry

    try:
        cls = registry.resolve(name)
    except registry.RegistryError as exc:
        # printed here rather than raised as CommandError: under ``python -m livecomposer.cli``
        # the cli module is __main__, and its CommandError is another class than ours
        print(f"livecomposer: {exc}", file=sys.stderr)
        return 2
    print(f"{name}: {cls.summary}")
    if not cls.params:
        print("  (no parameters)")
    for p in cls.params:
        limits = ""
        if p.choices is not None:
            limits = " one of " + ", ".join(map(str, p.choices))
        elif p.min is not None or p.max is not None:
            limits = f" {'' if p.min is None else p.min}..{'' if p.max is None else p.max}"
        live = "live" if p.live else "fixed"
        print(f"  {p.name:<14} default {p.default!r}{limits} ({live})  {p.doc}")
    return 0
