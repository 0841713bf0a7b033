"""``livecomposer demo``: hear (and see) what livecomposer does, with no keyboard or sound card.

Plays the bundled performance through the default preset on the offline engine and
writes what came out: the performer's part, the session (performer and machine tracks),
a WAV of it through the built-in synth, and, when the visual model is installed, a contact
sheet of the visuals and a video of them with the sound (``visuals.mp4`` through ffmpeg,
or ``visuals.webp`` without it).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from . import CommandError, preset_arg

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
    p.add_argument("--no-visual", action="store_true", help="skip the visuals (contact sheet and video)")
    p.add_argument("--no-video", action="store_true", help="the visuals' contact sheet only, no video")
    p.add_argument("--no-overlay", action="store_true", help="the video without the notes overlay (the stage picture alone)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import mido

    from ..app.demo_phrase import BPM, demo_phrase
    from ..app.presets import PresetError
    from ..app.render import render_files

    preset = args.preset or default_preset()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    messages = demo_phrase()
    _write_performer(messages, out / "performer.mid", BPM, mido)
    log_ = None if args.no_visual else _session_log()
    try:
        summary = render_files(preset, messages, out / "session.mid", seed=args.seed, wav=None if args.no_wav else out / "session.wav",
                               observers=[log_] if log_ is not None else ())
    except PresetError as exc:
        raise CommandError(str(exc), 2) from None
    print(f"preset {preset.name}")
    print(f"performer: {out / 'performer.mid'}")
    print(f"session:   {summary}")
    if not args.no_wav:
        print(f"audio:     {out / 'session.wav'}")
    if log_ is not None:
        for path in _visuals(out, preset, log_, video=not args.no_video, overlay=not args.no_overlay):
            print(f"visuals:   {path}")
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


def _session_log():
    """Records the session's notes and the machine's plans for the visuals (None without the visual package)."""
    try:
        from ..visual.notes import SessionLog
    except ImportError:
        return None
    return SessionLog()


def _visuals(out: Path, preset: Path, log_, video: bool, overlay: bool) -> list[Path]:
    """The contact sheet (the preset's stage look) and a video of the visuals, with the sound
    and, unless ``overlay`` is off, the notes overlay: the player's notes, the machine's, and
    its plans before they sound.  Nothing if the visual model is not installed."""
    from dataclasses import replace

    from ..app.presets import load_preset
    from ..app.session import make_tempo
    from ..visual.config import parse_visual
    from ..visual.offline import render_contact_sheet, render_video

    loaded = load_preset(preset)
    cfg = parse_visual(dict(loaded.visual or {}))
    tempo = make_tempo(loaded, 0)  # the offline render's tempo: the look pulses on its beat
    written: list[Path] = []
    try:
        written.append(render_contact_sheet(log_.events, out / "visuals.png", cfg, tempo=tempo))
        if video:
            wav = out / "session.wav"
            written.append(render_video(log_.events, out / "visuals", cfg.with_(look=replace(cfg.look, overlay=overlay)),
                                        plans=log_.plans, audio=wav if wav.is_file() else None, tempo=tempo))
    except FileNotFoundError as exc:
        log.warning("no visuals: %s", exc)
    return written
