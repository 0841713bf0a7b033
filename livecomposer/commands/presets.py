"""``livecomposer presets check FILE...`` and ``livecomposer presets list [DIR]``.

``list`` shows the name ``livecomposer run NAME`` takes, what the preset does, and its file.

``check`` validates without opening a port: YAML, keys, plugin names, options (by building
the graph; no model loads), control targets, bank files.  It prints one line per file and
exits with 2 if any file is wrong, so it can guard a commit hook or CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="check or list preset files")
    verbs = p.add_subparsers(dest="presets_command", metavar="SUBCOMMAND")
    check = verbs.add_parser("check", help="validate preset files without opening ports (exit 2 on any error)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--bank", action="store_true", help="also check the presets each file's bank names")
    check.set_defaults(func=run_check)
    listing = verbs.add_parser("list", help="list the presets `run NAME` finds (or those in FOLDER)")
    listing.add_argument("folder", nargs="?", type=Path, help="a folder of presets (default: $LIVECOMPOSER_PRESETS, ./presets, the shipped presets)")
    listing.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_check(args: argparse.Namespace) -> int:
    from ..app.presets import PresetError, check_preset

    failed = 0
    queue = [Path(f) for f in args.files]
    seen: set[Path] = set()
    while queue:
        path = queue.pop(0)
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            preset = check_preset(path)
        except PresetError as exc:
            failed += 1
            print(exc, file=sys.stderr)
            continue
        for warning in preset.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(f"{path}: OK ({preset.describe()})")
        if args.bank:
            queue.extend(preset.bank)
    if failed:
        print(f"{failed} of {len(seen)} preset{'s' if len(seen) != 1 else ''} failed", file=sys.stderr)
        return 2
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..paths import list_presets, preset_dirs
    from ..app.presets import PresetError, check_preset

    if args.folder is not None:
        files = sorted(args.folder.glob("*.yaml")) + sorted(args.folder.glob("*.yml"))
        where = str(args.folder)
    else:
        files = list_presets()
        where = ", ".join(str(d) for d in preset_dirs())
    if not files:
        print(f"no presets in {where}", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        try:
            preset = check_preset(path)
        except PresetError as exc:
            failed += 1
            print(f"{path.stem:<14} (broken: {exc.reason})  ({path})")
            continue
        print(f"{path.stem:<14} {preset.description or preset.describe()}  ({path})")
    return 2 if failed else 0
