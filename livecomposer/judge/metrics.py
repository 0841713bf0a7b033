"""Musical figures on note lists: pure functions, one definition each, times in beats.

Every function takes :class:`Note` lists (start and end in beats of the piece's tempo) so
the machine's output and the human reference go through exactly the same code.  Shares are
returned as :class:`Share` (hits, total) so that figures pooled over many answers or files
weigh every note equally instead of averaging ratios of short and long pieces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Iterable, Sequence

from ..kernel.theory import SCALES, Key, estimate_key

CONSONANT_INTERVAL_CLASSES = frozenset({0, 3, 4, 5})
"""Interval classes (semitones mod 12, folded to 0-6) heard as consonant: 0 unison/octave,
3 minor third/major sixth, 4 major third/minor sixth, 5 perfect fourth/fifth.  The perfect
fourth counts: folded interval classes cannot tell a fourth from its inverted fifth, and a
fourth between upper voices (or a 6/4 chord) is normal in the music we compare with.
Seconds/sevenths (1, 2) and the tritone (6) are dissonant."""

FRAMES_PER_BEAT = 4
"""Sixteenth-note frames, as the note-in-chord ratio of ReaLchords uses."""


@dataclass(frozen=True, slots=True)
class Note:
    """One note: ``start`` and ``end`` in beats (quarter notes of the piece's tempo), MIDI pitch."""

    start: float
    end: float
    pitch: int
    velocity: int = 64


@dataclass(frozen=True, slots=True)
class Share:
    """``hits`` out of ``total``; add Shares to pool them.  ``value`` is None when nothing was counted."""

    hits: int = 0
    total: int = 0

    def __add__(self, other: "Share") -> "Share":
        return Share(self.hits + other.hits, self.total + other.total)

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


def pooled(shares: Iterable[Share]) -> Share:
    return sum(shares, Share())


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that exist (None where there are none)."""
    xs = [v for v in values if v is not None]
    return sum(xs) / len(xs) if xs else None


def melody(notes: Iterable[Note]) -> list[Note]:
    """Notes in playing order (start, then pitch): the order intervals are taken in."""
    return sorted(notes, key=lambda n: (n.start, n.pitch))


def key_of(notes: Sequence[Note]) -> Key | None:
    """Key of the performer's notes: Krumhansl-Kessler profiles over the 24 major and minor
    keys, each note weighted by its length (a held note says more about the key than a
    passing one)."""
    return estimate_key([n.pitch for n in notes], [max(n.end - n.start, 1e-3) for n in notes])


def in_key(notes: Sequence[Note], key: Key) -> Share:
    """Notes whose pitch class is in the key's scale (MusPy's pitch-in-scale rate)."""
    pcs = key.pitch_classes
    return Share(sum(1 for n in notes if n.pitch % 12 in pcs), len(notes))


def interval_class(a: int, b: int) -> int:
    """Distance of two pitches in semitones, octaves removed and folded to 0-6."""
    d = abs(a - b) % 12
    return min(d, 12 - d)


def consonant(a: int, b: int) -> bool:
    return interval_class(a, b) in CONSONANT_INTERVAL_CLASSES


def consonance(machine: Sequence[Note], performer: Sequence[Note], tolerance: float = 1 / 16) -> Share:
    """At each machine onset, is the new note consonant with every performer note sounding then?

    Onsets are compared with a ``tolerance`` (beats), as ears hear notes played together:
    a performer note that starts up to that much after the machine's counts as sounding,
    and one released up to that much after it as already gone (legato playing overlaps the
    next note by a few milliseconds).  Machine notes with no performer note sounding are not
    counted: there is nothing to be consonant with.
    """
    hits = total = 0
    for m in machine:
        heard = [p for p in performer if p.start - tolerance <= m.start < p.end - tolerance]
        if heard:
            total += 1
            hits += all(consonant(m.pitch, p.pitch) for p in heard)
    return Share(hits, total)


def _frames(notes: Sequence[Note]) -> dict[int, set[int]]:
    """Pitch classes sounding at the middle of each sixteenth-note frame."""
    out: dict[int, set[int]] = {}
    for n in notes:
        first = math.ceil(n.start * FRAMES_PER_BEAT - 0.5)
        last = math.ceil(n.end * FRAMES_PER_BEAT - 0.5)  # frames whose middle is before the end
        for f in range(max(first, 0), last):
            out.setdefault(f, set()).add(n.pitch % 12)
    return out


def note_in_chord(machine: Sequence[Note], performer: Sequence[Note]) -> Share:
    """Note-in-chord ratio (ReaLchords): in every sixteenth frame where both sound, is each
    performer pitch class among the machine's sounding pitch classes?  Counted per
    (frame, performer pitch class)."""
    m, p = _frames(machine), _frames(performer)
    hits = total = 0
    for f, pcs in p.items():
        chord = m.get(f)
        if chord:
            total += len(pcs)
            hits += len(pcs & chord)
    return Share(hits, total)


def intervals(notes: Sequence[Note]) -> list[int]:
    """Signed semitone steps between consecutive notes of one voice (in playing order)."""
    ps = [n.pitch for n in melody(notes)]
    return [b - a for a, b in zip(ps, ps[1:])]


def repeated(notes: Sequence[Note]) -> Share:
    """Consecutive notes on the same pitch, out of all consecutive pairs."""
    iv = intervals(notes)
    return Share(sum(1 for d in iv if d == 0), len(iv))


def longest_run(notes: Sequence[Note]) -> int:
    """Most notes in a row on one pitch (1: never repeated; 0: no notes)."""
    best = run = 0
    last = None
    for n in melody(notes):
        run = run + 1 if n.pitch == last else 1
        last = n.pitch
        best = max(best, run)
    return best


def steps(notes: Sequence[Note]) -> Share:
    """Consecutive pairs a step apart (1 or 2 semitones)."""
    iv = intervals(notes)
    return Share(sum(1 for d in iv if 1 <= abs(d) <= 2), len(iv))


def leaps(notes: Sequence[Note]) -> Share:
    """Consecutive pairs a leap apart (more than 4 semitones)."""
    iv = intervals(notes)
    return Share(sum(1 for d in iv if abs(d) > 4), len(iv))


def pitch_class_entropy(notes: Sequence[Note]) -> float | None:
    """Shannon entropy (bits) of the pitch-class histogram (note counts): 0 for one class,
    log2 12 = 3.585 when all twelve are equally used."""
    if not notes:
        return None
    counts = [0] * 12
    for n in notes:
        counts[n.pitch % 12] += 1
    total = len(notes)
    return -sum(c / total * math.log2(c / total) for c in counts if c) + 0.0


def pitch_range(notes: Sequence[Note]) -> int | None:
    """Highest minus lowest pitch, in semitones."""
    return max(n.pitch for n in notes) - min(n.pitch for n in notes) if notes else None


def onset_grid(notes: Sequence[Note], origin: float, beats: float, division: int = 2) -> frozenset[int]:
    """Slots (eighths by default) of ``beats`` beats from ``origin`` that have an onset."""
    slots = set()
    for n in notes:
        k = round((n.start - origin) * division)
        if 0 <= k < beats * division:
            slots.add(k)
    return frozenset(slots)


def rhythm_grid(notes: Sequence[Note], beats: float, division: int = 2) -> frozenset[int]:
    """Onset grid of a phrase measured from its own first onset: its rhythm, wherever in
    time it starts (an answer that displaces the call's rhythm by a beat still matches it)."""
    if not notes:
        return frozenset()
    return onset_grid(notes, min(n.start for n in notes), beats, division)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float | None:
    """Shared slots over slots used by either; None when both are empty."""
    union = a | b
    return len(a & b) / len(union) if union else None


def tonic_triad(key: Key) -> frozenset[int]:
    """Tonic, third (major if the scale has one, else minor) and fifth of the key."""
    third = 4 if 4 in SCALES[key.scale] else 3
    return frozenset({key.tonic % 12, (key.tonic + third) % 12, (key.tonic + 7) % 12})


def ends_on_tonic_triad(notes: Sequence[Note], key: Key) -> bool | None:
    """Does the phrase's last note (the lowest, if several start together) belong to the
    tonic triad?  The usual sign of a cadence in a melody."""
    if not notes:
        return None
    last = max(n.start for n in notes)
    final = min((n for n in notes if n.start >= last - 1e-6), key=lambda n: n.pitch)
    return final.pitch % 12 in tonic_triad(key)


def groove_consistency(notes: Sequence[Note], beats_per_bar: float = 4, resolution: int = 24) -> float | None:
    """MusPy's groove consistency, as its code computes it: binary onset vectors per bar at
    ``resolution`` steps per beat; 1 minus the Hamming distance of neighbouring bars divided
    by the steps per bar, averaged.  Bars from the first to the last one with an onset; None
    for fewer than two bars."""
    if not notes:
        return None
    per_bar = round(beats_per_bar * resolution)
    positions = {round(n.start * resolution) for n in notes}
    first, last = min(positions) // per_bar, max(positions) // per_bar
    if last - first < 1:
        return None
    bars = [frozenset(p % per_bar for p in positions if p // per_bar == b) for b in range(first, last + 1)]
    distance = sum(len(a ^ b) for a, b in zip(bars, bars[1:]))
    return 1.0 - distance / (per_bar * (len(bars) - 1))


def empty_beats(notes: Sequence[Note], start: float, end: float) -> Share:
    """Beats between ``start`` and ``end`` (whole beats of the piece) in which no note sounds
    at all (MusPy's empty-beat rate, over the span the part was meant to play)."""
    first, last = math.floor(start + 1e-6), math.ceil(end - 1e-6)
    empty = sum(1 for b in range(first, last) if not any(n.start < b + 1 and n.end > b for n in notes))
    return Share(empty, max(last - first, 0))


def on_grid(notes: Sequence[Note], division: int, tolerance: float) -> Share:
    """Onsets within ``tolerance`` beats of the 1/``division``-beat grid (4: sixteenths)."""
    hits = 0
    for n in notes:
        x = n.start * division
        hits += abs(x - round(x)) <= tolerance * division
    return Share(hits, len(notes))


def chords(notes: Sequence[Note], tolerance: float = 1 / 32) -> list[list[int]]:
    """The sounding pitches (low to high) at each distinct onset: the chords a listener hears
    change.  Onsets closer than ``tolerance`` beats are one onset."""
    onsets: list[float] = []
    for t in sorted(n.start for n in notes):
        if not onsets or t - onsets[-1] > tolerance:
            onsets.append(t)
    return [sorted(n.pitch for n in notes if n.start - tolerance <= t < n.end) for t in onsets]


def voice_movement(notes: Sequence[Note]) -> float | None:
    """Mean distance (semitones) an added voice moves from one chord to the next, voices
    paired by rank from the top (the top note with the top note, and so on); a held note
    moves 0.  Small values mean smooth voice leading."""
    moves = []
    cs = [c for c in chords(notes) if c]
    for a, b in zip(cs, cs[1:]):
        for x, y in zip(reversed(a), reversed(b)):
            moves.append(abs(x - y))
    return sum(moves) / len(moves) if moves else None


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions) of two pitch sequences."""
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def distinct(sequences: Sequence[Sequence[int]]) -> float | None:
    """Share of distinct pitch sequences among answers to one call (1: all different)."""
    return len({tuple(s) for s in sequences}) / len(sequences) if sequences else None


def mean_edit_distance(sequences: Sequence[Sequence[int]]) -> float | None:
    """Mean pairwise edit distance between answers to one call, each divided by the longer
    sequence's length (0: identical answers, 1: nothing in common)."""
    pairs = [edit_distance(a, b) / max(len(a), len(b), 1) for a, b in combinations(sequences, 2)]
    return sum(pairs) / len(pairs) if pairs else None
