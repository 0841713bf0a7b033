"""MIDI files <-> note arrays, for training on a player's own files and for evaluation.

mido reads the files (a broken or empty file raises :class:`MidiFileError` naming it);
every (track, channel) pair that plays notes becomes a part, in file order, so part 0 (the
first one) is the performer and the rest are machine voices.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from .corpus import NoteSet

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi", ".smf")


class MidiFileError(Exception):
    """A MIDI file that cannot be used (corrupt, empty, no notes)."""


def read_notes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(onset s, duration s, pitch, part, velocity) of every note in a MIDI file."""
    import mido

    path = Path(path)
    try:
        mf = mido.MidiFile(str(path), clip=True)
        merged = list(mido.merge_tracks(mf.tracks)) if mf.type != 2 else [m for t in mf.tracks for m in t]
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError... on bad files
        raise MidiFileError(f"{path}: unreadable MIDI file ({type(exc).__name__}: {exc})") from None
    # Track index of each message: merge_tracks loses it, so tag by walking tracks ourselves.
    tempo = 500000
    tpb = mf.ticks_per_beat or 480
    rows: list[tuple[float, float, int, tuple[int, int], int]] = []
    events = []
    for ti, track in enumerate(mf.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            events.append((tick, ti, msg))
    events.sort(key=lambda e: (e[0], 0 if e[2].type == "set_tempo" else 1))
    t_sec = 0.0
    last_tick = 0
    held: dict[tuple[int, int, int], tuple[float, int]] = {}
    for tick, ti, msg in events:
        t_sec += mido.tick2second(tick - last_tick, tpb, tempo)
        last_tick = tick
        if msg.type == "set_tempo":
            tempo = msg.tempo
        elif msg.type in ("note_on", "note_off"):
            key = (ti, msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                if key in held:
                    on, vel = held.pop(key)
                    rows.append((on, t_sec - on, msg.note, (ti, msg.channel), vel))
                held[key] = (t_sec, msg.velocity)
            elif key in held:
                on, vel = held.pop(key)
                rows.append((on, t_sec - on, msg.note, (ti, msg.channel), vel))
    for (ti, ch, note), (on, vel) in held.items():
        rows.append((on, max(t_sec - on, 0.1), note, (ti, ch), vel))
    if not rows:
        raise MidiFileError(f"{path}: no notes")
    order = {k: i for i, k in enumerate(sorted({r[3] for r in rows}))}
    rows.sort(key=lambda r: (r[0], order[r[3]], r[2]))
    on = np.array([r[0] for r in rows])
    return (on - on.min(), np.array([max(r[1], 0.005) for r in rows]), np.array([r[2] for r in rows], np.int16),
            np.array([order[r[3]] for r in rows], np.int8), np.array([r[4] for r in rows], np.int16))


def midi_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())


def load_folder(folder: Path, min_notes: int = 4) -> tuple[NoteSet, np.ndarray, list[str]]:
    """(notes, velocities, skipped) for every usable MIDI file under a folder.

    A corrupt or empty file is skipped with a warning naming it.
    """
    pieces, vels, skipped = [], [], []
    for f in midi_files(folder):
        try:
            on, du, pi, pa, ve = read_notes(f)
            if len(pi) < min_notes:
                raise MidiFileError(f"{f}: only {len(pi)} notes")
        except MidiFileError as exc:
            log.warning("skipping %s", exc)
            skipped.append(str(f))
            continue
        pieces.append((str(f.relative_to(folder)), on, du, pi, pa))
        vels.append(ve)
    ns = NoteSet.build(pieces, "second")
    return ns, (np.concatenate(vels).astype(np.int16) if vels else np.zeros(0, np.int16)), skipped


def folder_key(folder: Path) -> str:
    """A cache key that changes when any MIDI file under the folder changes."""
    h = hashlib.sha1(str(Path(folder).resolve()).encode())
    for f in midi_files(folder):
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def write_events(path: Path, ev, tempo_bpm: float = 120.0) -> None:
    """Write an event stream (see :class:`tokens.EventArrays`) as a MIDI file, one track per voice."""
    import mido

    tpb = 480
    tempo = mido.bpm2tempo(tempo_bpm)
    mf = mido.MidiFile(type=1, ticks_per_beat=tpb)
    t = np.cumsum(ev.seconds)
    for voice in sorted(set(int(x) for x in ev.voice)) or [0]:
        tr = mido.MidiTrack()
        if voice == sorted(set(int(x) for x in ev.voice))[0]:
            tr.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
        last = 0
        for i in np.flatnonzero(ev.voice == voice):
            tick = int(round(mido.second2tick(float(t[i]), tpb, tempo)))
            kind = "note_on" if ev.velocity[i] > 0 else "note_off"
            tr.append(mido.Message(kind, note=int(ev.pitch[i]), velocity=int(ev.velocity[i]), channel=min(voice, 15), time=tick - last))
            last = tick
        mf.tracks.append(tr)
    mf.save(str(path))
