"""``livecomposer judge PRESET FILES...``: how musical a preset's partner is, beside human music."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="render MIDI files through a preset and compare what the machine played with the human music in them",
                       description="Renders each file (the first part is the performer) through PRESET on the offline engine and "
                                   "prints the same figures for the machine's notes and for the human music in the files: "
                                   "the tune's next phrase for call and response, the other parts for the accompanist and "
                                   "the harmonizer. Tempo and beat come from each file.")
    p.add_argument("preset", help="preset file or name (duet, accompanist, ...)")
    p.add_argument("files", nargs="+", type=Path, help="MIDI files (or folders of them)")
    p.add_argument("--json", action="store_true", help="print JSON: each figure's machine and human values, pooled and per file")
    p.add_argument("--seeds", type=int, default=1, metavar="N", help="render each file with N seeds (the preset's and the next ones; default 1)")
    p.add_argument("--phrases", type=float, metavar="BEATS",
                   help="cut each file into calls of BEATS beats (rounded to whole bars of its metre), each followed by a pause to answer in (call and response, continuation)")
    p.add_argument("--wav", type=Path, metavar="DIR", help="also write each file's first render as DIR/NAME.wav (built-in synth)")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import CommandError, midi_file_args
    from ..judge.figures import figures, per_file
    from ..judge.report import as_json, markdown, table
    from ..judge.run import JudgeError, gather
    from ..paths import find_preset
    from ..app.presets import PresetError

    if args.seeds < 1:
        raise CommandError("--seeds must be at least 1", 2)
    if args.phrases is not None and args.phrases <= 0:
        raise CommandError("--phrases must be a positive number of beats", 2)
    files = midi_file_args(args.files, 2)
    try:
        preset = find_preset(args.preset)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc), 2) from None
    try:
        g = gather(preset, files, args.phrases, args.seeds, wav=args.wav)
    except (PresetError, JudgeError) as exc:
        raise CommandError(str(exc), 2) from None
    if not g.files:
        raise CommandError("no file could be judged: " + "; ".join(g.skipped), 2)
    rows, machine, human = figures(g)
    if args.json:
        print(json.dumps({"preset": str(preset), "mode": g.mode, "files": g.files, "skipped": g.skipped,
                          "calls": g.calls, "seeds": args.seeds, "phrases": args.phrases,
                          "figures": as_json(rows, machine, human),
                          "per_file": {f: as_json(rows, *mh) for f, mh in per_file(g).items()}}, indent=2))
        return 0
    what = f"{g.calls} calls of {args.phrases:g} beats in whole bars" if args.phrases else "whole files"
    title = (f"{preset} judged as {g.mode}: {len(g.files)} files, {what}, {args.seeds} seed{'s' if args.seeds > 1 else ''}, "
             "at each file's tempo; machine beside the human music in the files")
    print(markdown(rows, machine, human) if args.markdown else table(title, rows, machine, human))
    for s in g.skipped:
        print(f"skipped: {s}")
    return 0
