"""Reading MIDI files as the engine's input: timed raw messages on a nanosecond clock."""

from __future__ import annotations

from pathlib import Path

import mido

from ..kernel.events import NS_PER_S


class MidiFileError(ValueError):
    """A MIDI file that cannot be read; the message names the file."""


def read_messages(path: str | Path, start_ns: int = 0) -> list[tuple[int, bytes]]:
    """All channel and realtime messages of a MIDI file, merged across tracks, as
    ``(time_ns, bytes)`` with tempo changes applied (mido's playback timing)."""
    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise MidiFileError(f"{path}: not a readable MIDI file ({exc})") from None
    t = 0.0
    out: list[tuple[int, bytes]] = []
    for msg in midi:  # merged tracks, msg.time = seconds since the previous message
        t += msg.time
        if msg.is_meta or msg.type == "sysex":
            continue
        out.append((start_ns + int(round(t * NS_PER_S)), bytes(msg.bytes())))
    return out
