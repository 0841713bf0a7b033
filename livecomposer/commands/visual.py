"""``livecomposer visual``: the visualizer on its own, driven by a MIDI file or the demo phrase.

Live (default): serves the page and plays the notes (in a loop) into the visualizer in
real time, so the look of a model and the mapping strengths can be judged without a
keyboard.  ``--sheet PNG`` or ``--offline`` render instead, deterministically;
``--variety`` prints how varied the pictures over the piece are.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("visual", help="show (or render) the GAN visuals for a MIDI file or the demo phrase")
    p.add_argument("midi", nargs="?", type=Path, help="a MIDI file (default: the bundled demo phrase)")
    p.add_argument("--model", default="clipart-gan", help="visual model name or .safetensors path")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--fps", type=int, default=60)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", type=Path, help="also write every frame as PNG into this directory")
    p.add_argument("--sheet", type=Path, help="render a contact sheet PNG offline and exit")
    p.add_argument("--variety", action="store_true",
                   help="print how varied the pictures over the piece are (distinct pictures, change over 4 s) and exit")
    p.add_argument("--offline", action="store_true", help="with --frames: render the frames offline (30 fps) and exit")
    p.add_argument("--seconds", type=float, default=0.0, help="live: stop after this long (default: until Ctrl-C)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any visual preset key, e.g. --set pulse=1.5")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):
    import yaml

    from . import CommandError
    from ..visual.config import parse_visual

    section = {"enabled": True, "model": args.model, "host": args.host, "port": args.port, "fps": args.fps, "size": args.size}
    if args.frames and not args.offline:
        section["frames_dir"] = str(args.frames)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"--set {item}: expected KEY=VALUE", 2)
        section[key.strip()] = yaml.safe_load(value)
    try:
        return parse_visual(section)
    except ValueError as exc:
        raise CommandError(f"visual: {exc}", 2) from None


def _events(midi: Path | None):
    from ..app.demo_phrase import demo_phrase
    from ..kernel.events import parse
    from ..app.midifile import read_messages

    messages = read_messages(midi) if midi else demo_phrase()
    return [e for e in (parse(m, t) for t, m in messages) if e is not None]


def run(args: argparse.Namespace) -> int:
    from . import CommandError

    cfg = _config(args)
    if args.midi is not None and not args.midi.is_file():
        raise CommandError(f"{args.midi}: no such MIDI file", 2)
    events = _events(args.midi)
    try:
        if args.sheet:
            from ..visual.offline import render_contact_sheet

            print(render_contact_sheet(events, args.sheet, cfg))
            return 0
        if args.variety:
            import json

            from ..visual.offline import variety

            print(json.dumps(variety(events, cfg)))
            return 0
        if args.offline:
            if not args.frames:
                raise CommandError("--offline needs --frames DIR", 2)
            from ..visual.offline import render_frames

            paths = render_frames(events, args.frames, cfg)
            print(f"{len(paths)} frames in {args.frames}")
            return 0
        from ..visual import start_visualizer

        handle = start_visualizer(cfg)
    except FileNotFoundError as exc:
        raise CommandError(str(exc), 2) from None
    try:
        handle.wait_ready(60)
        _play(handle, events, args.seconds)
    except RuntimeError as exc:
        raise CommandError(str(exc), 1) from None
    finally:
        handle.close()
    return 0


def _play(handle, events, seconds: float) -> None:
    """Feed the events to the observer at their times, looping, like the engine would."""
    if not events:
        events = []
    first = events[0].time if events else 0
    span = (events[-1].time - first + 2_000_000_000) if events else 1_000_000_000
    start = time.monotonic_ns()
    deadline = start + int(seconds * 1e9) if seconds > 0 else None
    loop = 0
    while True:
        for event in events:
            due = start + loop * span + (event.time - first)
            while (now := time.monotonic_ns()) < due:
                time.sleep(min(0.01, (due - now) / 1e9))
            if deadline and now > deadline:
                return
            handle.observer.observe([event.at(now)], [], now)
            if not handle.observer.alive:
                raise RuntimeError("the visualizer process stopped")
        loop += 1
        if not events:
            time.sleep(1.0)
        if deadline and time.monotonic_ns() > deadline:
            return
