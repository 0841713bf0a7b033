"""``livecomposer demo``: hear (and see) what livecomposer does, with no keyboard or sound card.

Plays the bundled performance through the default preset on the offline engine and
writes what came out: the performer's part, the session (performer and machine tracks),
a WAV of it through the built-in synth, and a contact sheet of the visuals when the
visual model is installed.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cli import CommandError, preset_arg

log = logging.getLogger(__name__)

DEFAULT_PRESETS = ("duet", "thru")


def default_preset() -> Path:
    """The shipped duet preset (thru if it is missing), found as ``run`` finds a name."""
    from ..paths import find_preset, preset_dirs

    for name in DEFAULT_PRESETS:
        try:
            return find_preset(name)
        except FileNotFoundError:
            continue
    raise CommandError(f"no default preset found in {', '.join(map(str, preset_dirs()))}", 2)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="play the bundled phrase through the default preset and write the result")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--preset", type=preset_arg, help="preset file or name to demo (default: duet)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-wav", action="store_true", help="skip the audio")
    p.add_argument("--no-visual", action="store_true", help="skip the contact sheet")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import mido

    from ..demo_phrase import BPM, demo_phrase
    from ..presets import PresetError
    from ..render import render_files

    preset = args.preset or default_preset()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    messages = demo_phrase()
    _write_performer(messages, out / "performer.mid", BPM, mido)
    try:
        summary = render_files(preset, messages, out / "session.mid", seed=args.seed, wav=None if args.no_wav else out / "session.wav")
    except PresetError as exc:
        raise CommandError(str(exc), 2) from None
    print(f"preset {preset.name}")
    print(f"performer: {out / 'performer.mid'}")
    print(f"session:   {summary}")
    if not args.no_wav:
        print(f"audio:     {out / 'session.wav'}")
    if not args.no_visual:
        sheet = _contact_sheet(out)
        if sheet:
            print(f"visuals:   {sheet}")
    return 0


def _write_performer(messages, path: Path, bpm: float, mido) -> None:
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name="performer", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    last = 0
    for t, data in messages:
        tick = int(round(t / 1e9 * bpm / 60.0 * 480))
        track.append(mido.Message.from_bytes(list(data), time=tick - last))
        last = tick
    midi.save(str(path))


def _contact_sheet(out: Path) -> Path | None:
    """The visuals for the session, if the visual package and its model are installed."""
    try:
        from ..visual import render_contact_sheet
    except ImportError:
        return None
    from ..midifile import read_messages
    from ..events import parse

    events = [e for e in (parse(m, t) for t, m in read_messages(out / "session.mid")) if e is not None]
    try:
        return render_contact_sheet(events, out / "visuals.png")
    except FileNotFoundError as exc:
        log.warning("no visuals: %s", exc)
        return None
