"""Reading a MIDI file as beats, and cutting it into calls with room to answer.

The judge measures rhythm on the beat grid, so times here are beats (quarter notes) taken
from the file's ticks, not seconds: a file written at a steady tempo (as the held-out sets
are) keeps its bar lines wherever its first note falls.  The first part of the file (track,
then channel) is the performer, as in training; every other part is the human reference
for what the machine plays beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import mido

from ..kernel.events import NS_PER_S
from ..app.midifile import MidiFileError
from .metrics import Note


@dataclass(frozen=True)
class Piece:
    """A file as the judge sees it: the performer's notes, the other parts' notes, its tempo."""

    path: Path
    bpm: float
    beats_per_bar: float | None  # from the time signature; None when the file has none
    performer: list[Note]
    others: list[Note]

    @property
    def start(self) -> float:
        return min((n.start for n in self.performer), default=0.0)

    @property
    def end(self) -> float:
        return max((n.end for n in self.performer), default=0.0)


@dataclass(frozen=True)
class Call:
    """One call as played to the partner.  ``notes`` and the slot are in render time (beats);
    the machine's answer is what it starts in ``[start, slot_end)``.  ``index`` is the
    phrase's number in the file."""

    index: int
    start: float
    slot_end: float
    notes: list[Note]


def read_piece(path: str | Path) -> Piece:
    """Notes of every part of a MIDI file in beats; the tempo is the file's first."""
    path = Path(path)
    try:
        mf = mido.MidiFile(str(path), clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise MidiFileError(f"{path}: not a readable MIDI file ({exc})") from None
    tpb = mf.ticks_per_beat or 480
    tempo: int | None = None
    bar: float | None = None
    held: dict[tuple[int, int, int], tuple[int, int]] = {}
    parts: dict[tuple[int, int], list[Note]] = {}
    for ti, track in enumerate(mf.tracks):
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo" and tempo is None:
                tempo = msg.tempo
            elif msg.type == "time_signature" and bar is None:
                bar = msg.numerator * 4 / msg.denominator
            elif msg.type in ("note_on", "note_off"):
                key = (ti, msg.channel, msg.note)
                if key in held:  # a note-off, or a new note-on on a held pitch, ends it
                    on, vel = held.pop(key)
                    parts.setdefault((ti, msg.channel), []).append(Note(on / tpb, tick / tpb, msg.note, vel))
                if msg.type == "note_on" and msg.velocity > 0:
                    held[key] = (tick, msg.velocity)
    for (ti, ch, note), (on, vel) in held.items():  # never released: give it a beat
        parts.setdefault((ti, ch), []).append(Note(on / tpb, on / tpb + 1.0, note, vel))
    if not parts:
        raise MidiFileError(f"{path}: no notes")
    order = sorted(parts)
    performer = sorted(parts[order[0]], key=lambda n: (n.start, n.pitch))
    others = sorted((n for k in order[1:] for n in parts[k]), key=lambda n: (n.start, n.pitch))
    bpm = mido.tempo2bpm(tempo) if tempo else 120.0
    return Piece(path, float(bpm), bar, performer, others)


def cut(notes: list[Note], beats: float) -> list[list[Note]]:
    """Phrases of ``beats`` beats from the file's beat 0: each note goes to the phrase it
    starts in and is cut at the phrase's end.  Empty phrases (rests) stay, as empty lists."""
    if not notes:
        return []
    count = int(max(n.start for n in notes) // beats) + 1
    phrases: list[list[Note]] = [[] for _ in range(count)]
    for n in notes:
        k = int(n.start // beats)
        phrases[k].append(Note(n.start, min(n.end, (k + 1) * beats), n.pitch, n.velocity))
    return phrases


def slot_beats(beats: float, beats_per_bar: float) -> float:
    """Room for one call and its answer: the call, then a pause as long as the call plus a
    bar (the partner first has to hear that the call ended), rounded up to whole bars so
    that calls of whole bars start on bar lines, as they did in the tune."""
    return math.ceil((2 * beats + beats_per_bar) / beats_per_bar) * beats_per_bar


def calls(piece: Piece, beats: float, beats_per_bar: float) -> list[Call]:
    """The file's non-empty phrases, one after another, each followed by its pause."""
    slot = slot_beats(beats, beats_per_bar)
    out = []
    for k, phrase in enumerate(cut(piece.performer, beats)):
        if phrase:
            start = len(out) * slot
            shift = start - k * beats
            moved = [Note(n.start + shift, n.end + shift, n.pitch, n.velocity) for n in phrase]
            out.append(Call(k, start, start + slot, moved))
    return out


def whole(piece: Piece, tail_beats: float) -> Call:
    """The whole performer part as one call, answered until ``tail_beats`` after its end."""
    return Call(0, 0.0, piece.end + tail_beats, piece.performer)


def to_messages(notes: list[Note], bpm: float, channel: int = 0) -> list[tuple[int, bytes]]:
    """Timed raw MIDI for the engine: nanoseconds at ``bpm``; at equal times note-offs first,
    so a repeated pitch is released before it is struck again."""
    ns_per_beat = 60.0 * NS_PER_S / bpm
    timed = []
    for n in notes:
        timed.append((round(n.start * ns_per_beat), 1, bytes([0x90 | channel, n.pitch, max(1, min(127, n.velocity))])))
        timed.append((round(n.end * ns_per_beat), 0, bytes([0x80 | channel, n.pitch, 0])))
    timed.sort(key=lambda x: (x[0], x[1]))
    return [(t, m) for t, _, m in timed]
