"""From gathered material to figures: the same function for the machine and the humans.

Shares are pooled over all notes (or pairs, or frames) of all answers and files; per-phrase
figures (entropy, range, rhythm kinship) are means over phrases, so a long answer does not
outweigh a short one.  A figure is None where it does not apply (no overlap to be consonant
with, one seed for diversity, no human part beside the melody).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace

from . import metrics as m
from .run import Exchange, Gathered, Part


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    kind: str  # "share" (0-1, shown in %), "number", "bits", "semitones"


ANSWER_FIGURES = (
    Figure("answered", "calls answered", "share"),
    Figure("notes", "notes per answer", "number"),
    Figure("in_key", "in key", "share"),
    Figure("repeated", "repeated notes", "share"),
    Figure("longest_run", "longest repeated run", "number"),
    Figure("new_runs", "answers with a run > 3 the call lacks", "share"),
    Figure("steps", "steps (1-2 semitones)", "share"),
    Figure("leaps", "leaps (> 4 semitones)", "share"),
    Figure("entropy", "pitch-class entropy", "bits"),
    Figure("range", "range", "semitones"),
    Figure("kinship", "rhythm kinship with the call", "share"),
    Figure("cadence", "ending on a tonic-triad tone", "share"),
    Figure("consonance", "consonant with the performer", "share"),
    Figure("in_chord", "note-in-chord", "share"),
    Figure("distinct", "distinct answers across seeds", "share"),
    Figure("edit_distance", "edit distance between seeds", "share"),
)

PART_FIGURES = (
    Figure("per_beat", "notes per beat", "number"),
    Figure("in_key", "in key", "share"),
    Figure("consonance", "consonant with the performer", "share"),
    Figure("in_chord", "note-in-chord", "share"),
    Figure("grid4", "on the beat", "share"),
    Figure("grid16", "on the 16th grid", "share"),
    Figure("grid8", "on the 8th grid", "share"),
    Figure("groove", "groove consistency", "share"),
    Figure("empty", "empty beats", "share"),
    Figure("repeated", "repeated notes", "share"),
    Figure("steps", "steps (1-2 semitones)", "share"),
    Figure("leaps", "leaps (> 4 semitones)", "share"),
    Figure("movement", "voice movement per chord", "semitones"),
    Figure("entropy", "pitch-class entropy", "bits"),
    Figure("range", "range", "semitones"),
)

MONOPHONIC_ONLY = {"repeated", "steps", "leaps"}
"""Interval figures read one line; the harmonizer's voices are judged by their movement."""


def answer_figures(exchanges: list[Exchange]) -> dict[str, float | None]:
    """Figures of the answers to calls (all seeds, all files)."""
    if not exchanges:
        return {f.key: None for f in ANSWER_FIGURES}
    given = [x for x in exchanges if x.answer]
    new_runs = [m.longest_run(x.answer) > 3 and m.longest_run(x.call) <= 3 for x in given if x.call]
    kin = [m.jaccard(m.rhythm_grid(x.call, x.beats), m.rhythm_grid(x.answer, x.beats)) for x in given if x.call]
    cadence = [m.ends_on_tonic_triad(x.answer, x.key) for x in given]
    groups: dict[tuple[str, int], list[list[int]]] = defaultdict(list)
    for x in exchanges:
        if x.seed is not None:
            groups[(x.file, x.call_index)].append([n.pitch for n in m.melody(x.answer)])
    several = [g for g in groups.values() if len(g) > 1]
    return {
        "answered": len(given) / len(exchanges),
        "notes": m.mean(len(x.answer) for x in exchanges),
        "in_key": m.pooled(m.in_key(x.answer, x.key) for x in given).value,
        "repeated": m.pooled(m.repeated(x.answer) for x in given).value,
        "longest_run": max((m.longest_run(x.answer) for x in given), default=None),
        "new_runs": sum(new_runs) / len(new_runs) if new_runs else None,
        "steps": m.pooled(m.steps(x.answer) for x in given).value,
        "leaps": m.pooled(m.leaps(x.answer) for x in given).value,
        "entropy": m.mean(m.pitch_class_entropy(x.answer) for x in given),
        "range": m.mean(m.pitch_range(x.answer) for x in given),
        "kinship": m.mean(kin),
        "cadence": sum(1 for c in cadence if c) / len(cadence) if cadence else None,
        "consonance": m.pooled(m.consonance(x.answer, x.call) for x in given).value,
        "in_chord": m.pooled(m.note_in_chord(x.answer, x.call) for x in given).value,
        "distinct": m.mean(m.distinct(g) for g in several),
        "edit_distance": m.mean(m.mean_edit_distance(g) for g in several),
    }


def part_figures(parts: list[Part], monophonic: bool) -> dict[str, float | None]:
    """Figures of a part played beside the performer (bass line or added voices)."""
    if not parts:
        return {f.key: None for f in PART_FIGURES}
    beats = sum(p.end - p.start for p in parts)
    out = {
        "per_beat": sum(len(p.notes) for p in parts) / beats if beats else None,
        "in_key": m.pooled(m.in_key(p.notes, p.key) for p in parts).value,
        "consonance": m.pooled(m.consonance(p.notes, p.performer) for p in parts).value,
        "in_chord": m.pooled(m.note_in_chord(p.notes, p.performer) for p in parts).value,
        "grid4": m.pooled(m.on_grid(p.notes, 1, p.grid_tolerance) for p in parts).value,
        "grid16": m.pooled(m.on_grid(p.notes, 4, p.grid_tolerance) for p in parts).value,
        "grid8": m.pooled(m.on_grid(p.notes, 2, p.grid_tolerance) for p in parts).value,
        "groove": m.mean(m.groove_consistency(p.notes, p.beats_per_bar) for p in parts),
        "empty": m.pooled(m.empty_beats(p.notes, p.start, p.end) for p in parts).value,
        "repeated": m.pooled(m.repeated(p.notes) for p in parts).value,
        "steps": m.pooled(m.steps(p.notes) for p in parts).value,
        "leaps": m.pooled(m.leaps(p.notes) for p in parts).value,
        "movement": m.mean(m.voice_movement(p.notes) for p in parts),
        "entropy": m.mean(m.pitch_class_entropy(p.notes) for p in parts),
        "range": m.mean(m.pitch_range(p.notes) for p in parts),
    }
    if not monophonic:
        out.update({k: None for k in MONOPHONIC_ONLY})
    return out


def figures(g: Gathered) -> tuple[tuple[Figure, ...], dict[str, float | None], dict[str, float | None]]:
    """(figure list, machine figures, human figures) for the gathered material's mode."""
    if g.mode == "answers":
        return ANSWER_FIGURES, answer_figures(g.machine_exchanges), answer_figures(g.human_exchanges)
    mono = g.mode == "accompaniment"
    return PART_FIGURES, part_figures(g.machine_parts, mono), part_figures(g.human_parts, mono)


def per_file(g: Gathered) -> dict[str, tuple[dict[str, float | None], dict[str, float | None]]]:
    """(machine, human) figures of each file alone: where a pooled figure comes from."""
    out = {}
    for f in g.files:
        one = replace(g, machine_exchanges=[x for x in g.machine_exchanges if x.file == f],
                      human_exchanges=[x for x in g.human_exchanges if x.file == f],
                      machine_parts=[p for p in g.machine_parts if p.file == f],
                      human_parts=[p for p in g.human_parts if p.file == f])
        _rows, machine, human = figures(one)
        out[f] = (machine, human)
    return out
