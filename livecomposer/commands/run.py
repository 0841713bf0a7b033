"""``livecomposer run PRESET``: play live, from the keyboard's MIDI to the DAW's."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..ports.base import MIDI_APIS
from . import CommandError, preset_arg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="play live with a preset (MIDI in -> plugins -> virtual MIDI out)")
    p.add_argument("preset", type=preset_arg, help="preset file (presets/thru.yaml) or name (duet; see `livecomposer presets list`)")
    p.add_argument("--api", choices=MIDI_APIS, default="auto", help="MIDI backend (default: auto)")
    p.add_argument("--input", action="append", dest="inputs", metavar="NAME", help="input port name substring (repeatable; default: the preset's, else all)")
    p.add_argument("--output", metavar="NAME", help="name of the virtual output port (default: the preset's, else 'livecomposer')")
    p.add_argument("--output-port", metavar="NAME", help="send to an existing output port instead of a virtual one")
    p.add_argument("--record", type=Path, metavar="FILE.mid", help="record everything in and out (crash-safe)")
    p.add_argument("--monitor", nargs="?", const="builtin", choices=("builtin", "fluidsynth"), help="hear the output (built-in synth or FluidSynth)")
    p.add_argument("--visual", action="store_true", default=None, help="start the visualizer page (also: the preset's visual.enabled)")
    p.add_argument("--frames", type=Path, metavar="DIR", help="with the visuals: also write every frame as a PNG into DIR")
    p.add_argument("--learn", metavar="PLUGIN.PARAM", help="MIDI learn: the next knob moved is mapped to this parameter")
    p.add_argument("--status", action="store_true", help="show the live status screen")
    p.add_argument("--osc", type=int, nargs="?", const=9000, metavar="PORT", help="OSC control surface on 127.0.0.1:PORT (default 9000)")
    p.add_argument("--osc-host", default="127.0.0.1", help="address for --osc (default 127.0.0.1; anything else exposes it to the network)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ports.base import PortError
    from ..app.presets import PresetError
    from ..app.session import LiveOptions, LiveSession, load

    try:
        preset, graph = load(args.preset)
    except PresetError as exc:
        raise CommandError(str(exc), 2) from None
    except OSError as exc:
        raise CommandError(f"{args.preset}: {exc.strerror or exc}", 2) from None
    options = LiveOptions(
        api=args.api,
        inputs=args.inputs,
        output_virtual=args.output,
        output_port=args.output_port,
        record=args.record,
        monitor=args.monitor,
        visual=True if args.frames else args.visual,
        frames_dir=args.frames,
        learn=args.learn,
        status=args.status,
        osc_port=args.osc,
        osc_host=args.osc_host,
    )
    try:
        session = LiveSession(preset, graph, options)
    except PortError as exc:
        raise CommandError(str(exc), 3) from None
    return session.run_until_signal()
