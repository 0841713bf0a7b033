"""The comping voice: chords in a rhythm pattern, voice-led, in a register the player leaves free.

On the inference worker (:func:`plan_comp`), for each pattern point: the model chooses the
chord's top note among the chord's tones in the register, pulled toward the previous top
note (so the melody of the comp moves by steps); the other voices are the chord tones
below it that, together, cover the chord and move least in total from the previous
voicing (:func:`voice_lead`, a search over at most a few hundred candidate sets).  Every
chord is fed to the model as machine note-ons at one instant, so it hears its own comp.

Also here, the accompanist's **foresight** (:func:`foresee`): the model's distribution
of the performer's next pitch class, from the state that heard everything so far, so the
note due on the next beat can be chosen consonant with what the player is likely to
play on it, before they play it.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from typing import Sequence

import numpy as np

from ...model.api import MACHINE_VOICE, PERFORMER_VOICE, Constraints, ModelEvent
from ...model.tokens import vel_bin
from .track import NS, Step, Track

CONSONANT_CLASSES = frozenset({0, 3, 4, 5})  # folded interval classes heard as consonant
_CONSONANT = np.array([[min((a - b) % 12, (b - a) % 12) in CONSONANT_CLASSES for b in range(12)] for a in range(12)], float)
TOP_PULL = 0.8  # logits per semitone the comp's top note pays for leaving the previous one


def foresee(track: Track) -> np.ndarray:
    """(Worker) Twelve probabilities: the performer's next note's pitch class, as the model expects it."""
    logp = track.model.log_probs(1, PERFORMER_VOICE, {0: vel_bin(80)})
    p = np.exp(logp - logp.max())
    pc = np.bincount(np.arange(len(p)) % 12, weights=p, minlength=12)
    return pc / pc.sum()


def safest(pcs: frozenset[int], expected: np.ndarray, prefer: frozenset[int] = frozenset(), slack: float = 0.05) -> frozenset[int]:
    """The pitch classes of ``pcs`` most likely consonant with a next note drawn from
    ``expected`` (within ``slack``; those in ``prefer``, the chord's, get a small head start)."""
    if not pcs:
        return pcs
    score = {c: float(_CONSONANT[c] @ expected) + (0.03 if c in prefer else 0.0) for c in pcs}
    best = max(score.values())
    return frozenset(c for c, s in score.items() if s >= best - slack)


def voice_lead(pcs: frozenset[int], root: int, top: int, prev: Sequence[int], low: int, count: int) -> tuple[int, ...]:
    """``count`` pitches with ``top`` highest, the rest chord tones in [low, top), covering
    as many of the chord's pitch classes as they can (root and third before the rest), and
    of those the set closest to ``prev`` (sum of moves, voices paired from the top)."""
    below = [p for p in range(low, top) if p % 12 in pcs]
    count = min(count, len(below) + 1)
    need = min(count, len(pcs))
    best: tuple[float, tuple[int, ...]] | None = None
    old = sorted(prev, reverse=True)
    for rest in combinations(below, count - 1):
        chord = (top,) + tuple(sorted(rest, reverse=True))
        covered = {p % 12 for p in chord}
        missing = need - len(covered)
        cost = 100.0 * max(0, missing) + (0 if root in covered else 50.0)
        cost += 4.0 * sum(1 for a, b in zip(chord, chord[1:]) if a - b < 3)  # no seconds inside the comp
        cost += sum(abs(a - b) for a, b in zip(chord, old)) if old else sum(top - p for p in rest) * 0.1
        if best is None or cost < best[0]:
            best = (cost, chord)
    return best[1] if best is not None else (top,)


def last_chord(track: Track) -> tuple[int, ...]:
    """The machine's latest chord: its note-ons at the latest onset in the plan, or fed."""
    onsets = [s for s in track.future if s.velocity > 0]
    if onsets:
        t = onsets[-1].time
        return tuple(s.pitch for s in onsets if s.time == t)
    return track.chord


def plan_comp(track: Track, onsets: Sequence[int], ends: Sequence[int], chords: Sequence[tuple[int, frozenset[int]] | None],
              constraints: Constraints, voices: int, first_pcs: frozenset[int] | None = None) -> list[Step]:
    """(Worker) One voiced chord at each onset (held to its end); ``first_pcs`` (what suits
    the performer's held and expected notes) narrows the first chord where two of its tones
    remain, and replaces its tones where fewer do (held-out chorales: consonant with the
    player 84% -> 91%)."""
    m = track.model
    prev = last_chord(track)
    snapshot, t, held = track._lookahead()
    line, mine = track._line, track._mine
    low, high = constraints.pitch_range
    out: list[Step] = []
    try:
        for i, (on, end, chord) in enumerate(zip(onsets, ends, chords)):
            if on < t or chord is None:
                continue
            for pitch in sorted(held):
                m.feed(ModelEvent(max(0, on - t) / NS, pitch, 0, MACHINE_VOICE))
                out.append(Step(max(on, t), pitch, 0))
                t = max(t, on)
            held.clear()
            root, pcs = chord
            allowed = pcs if constraints.pitch_classes is None else (pcs & constraints.pitch_classes) or pcs
            if i == 0 and first_pcs and len(first_pcs & allowed) >= 2:
                allowed = first_pcs & allowed
            elif i == 0 and first_pcs and len(first_pcs) >= 2:
                allowed = first_pcs  # the chord's tones clash with what the player holds: what suits it
            top_pcs = allowed
            bias = -TOP_PULL * np.abs(np.arange(128) - max(prev)) if prev else None
            ev = None
            for tops in (top_pcs, allowed):
                c = replace(constraints, pitch_classes=frozenset(tops), pitch_range=(min(high, low + 8), high),
                            pitch_bias=bias, note_on=True, dt=(on - t) / NS)
                try:
                    ev = track.sample(c, line, mine)
                    break
                except ValueError:
                    continue
            if ev is None:
                continue
            chord_pitches = voice_lead(frozenset(allowed), root, ev.pitch, prev, low, voices)
            for k, p in enumerate(sorted(chord_pitches)):
                m.feed(ModelEvent((on - t) / NS if k == 0 else 0.0, p, ev.velocity, MACHINE_VOICE))
                out.append(Step(on, p, ev.velocity))
                t = on
                line.append(p)
                held[p] = on
            for k, p in enumerate(sorted(chord_pitches)):
                m.feed(ModelEvent((end - t) / NS if k == 0 else 0.0, p, 0, MACHINE_VOICE))
                out.append(Step(end, p, 0))
                t = end
            held.clear()
            mine.append(ev.pitch)
            prev = chord_pitches
    finally:
        m.set_state(snapshot)
    track.future.extend(out)
    return out
