"""Developing the performer's call: which variation to play, decided on the engine thread.

A musician answers a phrase by reworking it: the same motif again, a sequence (the motif a
step or a third higher or lower), its inversion (the intervals upside down), the motif
displaced by an eighth, a changed ending.  :func:`vary` chooses those transformations and
writes them as a :class:`~.track.MotifPlan`: the rhythm (onsets and lengths, the call's,
one cycle per call length, repeated to fill the answer) and, for every note, how many
scale steps it should move from the note the model actually chose before it.  The model
then chooses each pitch under that pull (``plan_motif`` on the inference worker), so the
answer is the model's melody shaped like the call, and the last note is a cadence.

``develop`` (0-1) sets how close: the pull's strength, how many notes are left free, how
often the rhythm is varied (notes split or merged).  The call's notes are collected as
they arrive (:class:`CallNotes`), so nothing is re-read when the answer is due; building
the plan costs a few hundred microseconds once per answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...kernel.theory import degree_interval, degree_step
from .track import MotifPlan

MAX_CALL_NOTES = 64
TRANSFORMS = ("repeat", "sequence", "inversion", "displace")
WEIGHTS = (0.25, 0.4, 0.15, 0.2)
SEQUENCE_SHIFTS = (-2, -1, 1, 2)  # scale steps: a second or a third down or up


@dataclass
class CallNote:
    on: int
    pitch: int
    off: int | None = None


class CallNotes:
    """The performer's current call, one voice (the top note of a chord), as it arrives."""

    def __init__(self) -> None:
        self.notes: list[CallNote] = []

    def clear(self) -> None:
        self.notes = []

    def note_on(self, t: int, pitch: int) -> None:
        notes = self.notes
        if notes and notes[-1].on == t:  # a chord: keep its top note
            if pitch > notes[-1].pitch:
                notes[-1] = CallNote(t, pitch)
            return
        if len(notes) < MAX_CALL_NOTES:
            notes.append(CallNote(t, pitch))

    def note_off(self, t: int, pitch: int) -> None:
        for note in reversed(self.notes):
            if note.pitch == pitch and note.off is None:
                note.off = t
                return

    def longest_run(self) -> int:
        """Most consecutive notes of the call on one pitch."""
        best = run = 0
        last = None
        for note in self.notes:
            run = run + 1 if note.pitch == last else 1
            last = note.pitch
            best = max(best, run)
        return best


def _fold(pitch: int, low: int, high: int) -> int:
    while pitch < low and pitch + 12 <= high:
        pitch += 12
    while pitch > high and pitch - 12 >= low:
        pitch -= 12
    return pitch


def _rhythm(call: list[CallNote], develop: float, beat_ns: int, rng: np.random.Generator) -> tuple[list[tuple[int, int]], list[int], int]:
    """(onset, length) of the call's notes from its first onset, each note's index in the
    call (a split note repeats it), and the cycle length (the call, in whole beats).  Below
    ``develop`` 1 some long notes are split in two and some short pairs merged."""
    t0 = call[0].on
    end = max((n.off if n.off is not None else n.on + beat_ns // 2) for n in call)
    cycle = max(1, int(np.ceil((end - t0) / beat_ns - 0.25))) * beat_ns
    rhythm: list[tuple[int, int]] = []
    source: list[int] = []
    change = (1.0 - develop) * 0.35
    i = 0
    while i < len(call):
        on = call[i].on - t0
        nxt = call[i + 1].on - t0 if i + 1 < len(call) else cycle
        length = max(1, min((call[i].off if call[i].off is not None else call[i].on + beat_ns // 2) - call[i].on, nxt - on))
        if length >= beat_ns and rng.random() < change:  # a long note becomes two
            half = (nxt - on) // 2
            rhythm += [(on, min(length, half - 1)), (on + half, max(1, length - half))]
            source += [i, i]
        elif i + 1 < len(call) and nxt - on < beat_ns // 2 + 1 and rng.random() < change * 0.5:  # two short notes become one
            nxt2 = call[i + 2].on - t0 if i + 2 < len(call) else cycle
            rhythm.append((on, max(1, nxt2 - on - 1)))
            source.append(i)
            i += 1
        else:
            rhythm.append((on, length))
            source.append(i)
        i += 1
    return rhythm, source, cycle


def vary(call: list[CallNote], start: int, until: int, max_notes: int | None, develop: float, beat_ns: int,
         scale: tuple[int, ...] | None, low: int, high: int, rng: np.random.Generator) -> tuple[MotifPlan, list[str]]:
    """The answer's plan (from ``start``, nothing at or after ``until``, at most
    ``max_notes``) and the names of the transformations chosen, one per cycle."""
    rhythm, source, cycle = _rhythm(call, develop, beat_ns, rng)
    pitches = [call[j].pitch for j in source]
    moves_in = [0] + [degree_interval(a, b, scale) for a, b in zip(pitches, pitches[1:])]
    onsets: list[int] = []
    ends: list[int] = []
    moves: list[int | None] = []
    chosen: list[str] = []
    free = (1.0 - develop) * 0.5
    first = pitches[0]
    k = 0
    while True:
        base = start + k * cycle
        if base >= until or (max_notes is not None and len(onsets) >= max_notes):
            break
        kind = TRANSFORMS[int(rng.choice(len(TRANSFORMS), p=WEIGHTS))] if k or rng.random() < 0.8 else "repeat"
        chosen.append(kind)
        shift = int(rng.choice(SEQUENCE_SHIFTS)) if kind == "sequence" else 0
        displace = beat_ns // 2 if kind == "displace" else 0
        sign = -1 if kind == "inversion" else 1
        for i, (on, length) in enumerate(rhythm):
            t = base + on + (displace if i else 0)
            if t >= until or (max_notes is not None and len(onsets) >= max_notes):
                break
            if i == 0:
                if k == 0:
                    first = _fold(degree_step(pitches[0], shift, scale), low, high)
                    move: int | None = 0
                else:  # back to the motif's start from where the last cycle ended, shifted
                    move = degree_interval(pitches[-1], pitches[0], scale) + shift
            else:
                move = sign * moves_in[i]
            if i and rng.random() < free:
                move = None
            end = min(t + length + (displace if i == 0 else 0), until - 1)
            if i + 1 < len(rhythm):
                end = min(end, base + rhythm[i + 1][0] + displace - 1)
            onsets.append(t)
            ends.append(max(t + 1, end))
            moves.append(move)
        k += 1
    if len(moves) > 2 and rng.random() < 0.5:  # a changed ending: the model's own last notes
        moves[-2] = None
    if moves:
        moves[-1] = None  # the cadence (a tonic-triad tone) decides the last note
    strength = 0.5 + 3.5 * develop
    return MotifPlan(tuple(onsets), tuple(ends), first, tuple(moves), scale, strength), chosen
