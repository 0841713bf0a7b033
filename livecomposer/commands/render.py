"""``livecomposer render PRESET --input in.mid --output out.mid``: the live engine, offline."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import CommandError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="run a preset on a MIDI file, faster than real time, deterministically")
    p.add_argument("preset", type=Path)
    p.add_argument("--input", type=Path, required=True, metavar="IN.mid", help="what the performer plays")
    p.add_argument("--output", type=Path, required=True, metavar="OUT.mid", help="input and output tracks")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    p.add_argument("--tail", type=float, default=4.0, help="seconds to keep running after the last input (default 4)")
    p.add_argument("--wav", type=Path, metavar="OUT.wav", help="also write the audio of the output (built-in synth)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..app.midifile import MidiFileError, read_messages
    from ..app.presets import PresetError
    from ..app.render import render_files

    try:
        messages = read_messages(args.input)
    except MidiFileError as exc:
        raise CommandError(str(exc), 2) from None
    try:
        summary = render_files(args.preset, messages, args.output, seed=args.seed, tail_s=args.tail, wav=args.wav)
    except PresetError as exc:
        raise CommandError(str(exc), 2) from None
    print(summary)
    return 0
