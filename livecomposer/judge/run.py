"""Rendering files through a preset and gathering what the machine and the humans played.

Each render is the live engine on its manual clock (:func:`livecomposer.app.session.render_offline`),
with the preset's tempo set to the file's so that the partner's beat and the tune's beat
agree.  What the machine plays is told apart from what it passes through by channel: each
partner plugin plays on its own ``channel``.  Which figures apply follows from the partner
in the preset graph: ``answers`` for call and response and continuation, ``accompaniment``
for the accompanist, ``voices`` for the harmonizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..kernel.events import NS_PER_S
from ..app.render import sent_events
from ..app.session import load, render_offline
from ..kernel.theory import Key
from .metrics import Note, key_of
from .phrases import Call, calls, cut, to_messages, whole

MODES = {"call_response": "answers", "continuation": "answers", "accompanist": "accompaniment", "harmonizer": "voices"}
"""Partner plugin -> what its output is judged as."""

TAIL_BEATS = 8.0
"""Render this long past the last call in whole-file mode (room for a last answer)."""

GRID_TOLERANCE_S = 0.030
"""An onset this close to the grid is on it: players in a band spread 20-50 ms around a
common beat, so 30 ms is tight but human."""


class JudgeError(ValueError):
    """A preset or file the judge cannot measure; the message says why."""


@dataclass(frozen=True)
class Exchange:
    """A call and what answered it (machine or human), with the tune's key."""

    call: list[Note]
    answer: list[Note]
    key: Key
    beats: float  # phrase length: the window the rhythms are compared over
    file: str = ""
    call_index: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class Part:
    """A part played beside the performer (machine or human), judged over the span the
    performer plays: before the first note and after the last there is nothing to accompany."""

    notes: list[Note]
    performer: list[Note]
    key: Key
    start: float
    end: float
    beats_per_bar: float
    grid_tolerance: float  # beats
    file: str = ""


@dataclass
class Gathered:
    """Everything measured, before figures: machine and human material of one mode."""

    mode: str
    machine_exchanges: list[Exchange] = field(default_factory=list)
    human_exchanges: list[Exchange] = field(default_factory=list)
    machine_parts: list[Part] = field(default_factory=list)
    human_parts: list[Part] = field(default_factory=list)
    calls: int = 0
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def partner_mode(preset: Any) -> tuple[str, frozenset[int]]:
    """(mode, machine channels 0-15) of the preset's partner plugins; one mode per judge."""
    from ..app.presets import build_graph

    partners = [p for p in build_graph(preset).walk() if getattr(p, "name", None) in MODES]
    if not partners:
        raise JudgeError(f"{preset.path}: no partner plugin to judge (one of {', '.join(MODES)})")
    modes = {MODES[p.name] for p in partners}
    if len(modes) > 1:
        raise JudgeError(f"{preset.path}: partners of different kinds ({', '.join(sorted(modes))}); judge one kind at a time")
    return modes.pop(), frozenset(int(p.channel) - 1 for p in partners)


def at_tempo(preset: Any, bpm: float, beats_per_bar: float | None) -> Any:
    """The preset on its own internal clock at the file's tempo and metre, as a player would
    set it before playing along (an offline render has no DAW to follow)."""
    clock = replace(preset.clock, bpm=bpm, source="internal", send=False)
    if beats_per_bar is not None and beats_per_bar == int(beats_per_bar):
        clock = replace(clock, beats_per_bar=int(beats_per_bar))
    return replace(preset, clock=clock)


def whole_bars(beats: float, beats_per_bar: float) -> float:
    """``beats`` rounded to whole bars (at least one), so phrases start on bar lines."""
    return max(1, round(beats / beats_per_bar)) * beats_per_bar


def render_notes(preset: Any, performer: list[Note], bpm: float, end_beats: float, seed: int, channels: frozenset[int]) -> tuple[list[Note], list]:
    """Play ``performer`` (channel 1) through the preset; the machine's notes on ``channels``
    in beats, and every event sent (for audio)."""
    from ..app.presets import build_graph

    if 0 in channels:
        raise JudgeError("the partner plays on channel 1, where the judge plays the performer; give it another channel")
    ns_per_beat = 60.0 * NS_PER_S / bpm
    messages = to_messages(performer, bpm)
    result = render_offline(build_graph(preset), preset, messages, round(end_beats * ns_per_beat), seed=seed)
    sent = sent_events(result.output.sent)
    held: dict[tuple[int, int], tuple[int, int]] = {}
    notes: list[Note] = []
    for e in sent:
        if not e.is_note or e.channel not in channels:
            continue
        k = (e.channel, e.note)
        if k in held:
            on, vel = held.pop(k)
            notes.append(Note(on / ns_per_beat, e.time / ns_per_beat, e.note, vel))
        if e.is_note_on and e.velocity > 0:
            held[k] = (e.time, e.velocity)
    for (_, pitch), (on, vel) in held.items():
        notes.append(Note(on / ns_per_beat, end_beats, pitch, vel))
    return sorted(notes, key=lambda n: (n.start, n.pitch)), sent


def bass_line(notes: list[Note]) -> list[Note]:
    """Notes that are the lowest sounding when they start: the bass part of merged voices."""
    return [n for n in notes if not any(o.pitch < n.pitch and o.start <= n.start < o.end for o in notes)]


def gather(preset_path: Path, files: list[Path], phrases: float | None, seeds: int, wav: Path | None = None) -> Gathered:
    """Render every file (or its calls) with ``seeds`` seeds and collect machine and human material."""
    from ..audio.wav import render_wav
    from ..app.midifile import MidiFileError
    from .phrases import read_piece

    preset, _ = load(preset_path)
    mode, channels = partner_mode(preset)
    if phrases and mode != "answers":
        raise JudgeError(f"--phrases cuts calls for call and response or continuation; {preset.path.name} is judged as {mode}")
    out = Gathered(mode)
    for path in files:
        try:
            piece = read_piece(path)
        except MidiFileError as exc:
            out.skipped.append(str(exc))
            continue
        key = key_of(piece.performer)
        if key is None:
            out.skipped.append(f"{path}: no performer notes")
            continue
        out.files.append(str(path))
        bar = piece.beats_per_bar or preset.clock.beats_per_bar
        live = at_tempo(preset, piece.bpm, piece.beats_per_bar)
        beats = whole_bars(phrases, bar) if phrases else piece.end
        if phrases:
            played = calls(piece, beats, bar)
            source = cut(piece.performer, beats)
            out.human_exchanges += [Exchange(a, b, key, beats, str(path), k) for k, (a, b) in enumerate(zip(source, source[1:])) if a and b]
        else:
            played = [whole(piece, TAIL_BEATS)]
            out.human_exchanges.append(Exchange([], piece.performer, key, piece.end, str(path)))
        if not played:
            continue
        out.calls += len(played)
        performer = [n for c in played for n in c.notes]
        end = played[-1].slot_end
        tolerance = GRID_TOLERANCE_S * piece.bpm / 60.0
        for s in range(seeds):
            seed = preset.seed + s
            machine, sent = render_notes(live, performer, piece.bpm, end, seed, channels)
            if wav is not None and s == 0:
                wav.mkdir(parents=True, exist_ok=True)
                render_wav(sent, wav / f"{Path(path).stem}.wav", start_ns=0)
            if mode == "answers":
                out.machine_exchanges += [_answer(c, machine, key, beats, str(path), seed) for c in played]
            else:
                out.machine_parts.append(Part(machine, performer, key, piece.start, piece.end, bar, tolerance, str(path)))
        if mode == "accompaniment" and piece.others:
            out.human_parts.append(Part(bass_line(piece.others), piece.performer, key, piece.start, piece.end, bar, tolerance, str(path)))
        elif mode == "voices" and piece.others:
            out.human_parts.append(Part(piece.others, piece.performer, key, piece.start, piece.end, bar, tolerance, str(path)))
    return out


def _answer(call: Call, machine: list[Note], key: Key, beats: float, file: str, seed: int) -> Exchange:
    answer = [n for n in machine if call.start <= n.start < call.slot_end]
    return Exchange(call.notes, answer, key, beats, file, call.index, seed)
