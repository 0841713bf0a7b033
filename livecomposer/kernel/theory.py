"""Keys, scales and pitch-class sets: the small amount of music theory plugins share.

Presets speak in musicians' words (``key: D minor``, ``range: [C3, C6]``); plugins work in
MIDI note numbers and pitch classes (0 = C ... 11 = B).  Everything here is pure, fast and
table-driven, so it is safe to call on the engine thread.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
"""Spelling used when we print a pitch class (sharps or flats as players usually name keys)."""

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "s": 1, "b": -1, "♭": -1, "##": 2, "x": 2, "bb": -2}

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "melodic_minor": (0, 2, 3, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "whole_tone": (0, 2, 4, 6, 8, 10),
    "chromatic": tuple(range(12)),
}
"""Scale name -> semitone offsets from the tonic."""

SCALE_ALIASES = {
    "ionian": "major",
    "aeolian": "minor",
    "natural_minor": "minor",
    "maj": "major",
    "min": "minor",
    "m": "minor",
    "pentatonic": "major_pentatonic",
    "harmonic": "harmonic_minor",
    "melodic": "melodic_minor",
}


class TheoryError(ValueError):
    """A key, scale or note name we cannot read; the message says what would be valid."""


def _suggest(word: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_pitch_class(text: str | int) -> int:
    """``"C#"``, ``"Db"``, ``"f"``, ``"B♭"`` or an int 0-11 -> pitch class 0-11."""
    if isinstance(text, bool):
        raise TheoryError(f"not a pitch class: {text!r}")
    if isinstance(text, int):
        if not 0 <= text <= 11:
            raise TheoryError(f"pitch class must be 0-11; got {text}")
        return text
    s = str(text).strip()
    if not s:
        raise TheoryError("empty pitch class name")
    letter, acc = s[0].upper(), s[1:]
    if letter not in _LETTERS or acc not in _ACCIDENTALS:
        raise TheoryError(f"not a pitch class name: {text!r} (use C, C#, Db, ... B)")
    return (_LETTERS[letter] + _ACCIDENTALS[acc]) % 12


def normalize_scale(name: str) -> str:
    """Canonical scale name (``"Harmonic Minor"`` -> ``"harmonic_minor"``); raises with a suggestion."""
    key = re.sub(r"[\s-]+", "_", str(name).strip().lower())
    key = SCALE_ALIASES.get(key, key)
    if key not in SCALES:
        raise TheoryError(f"unknown scale {name!r}{_suggest(key, SCALES)}")
    return key


@dataclass(frozen=True)
class Key:
    """A tonic pitch class and a scale name, e.g. ``Key(2, "minor")`` is D minor."""

    tonic: int
    scale: str = "major"

    @property
    def pitch_classes(self) -> frozenset[int]:
        return scale_pitch_classes(self)

    @property
    def tonic_name(self) -> str:
        return PITCH_CLASS_NAMES[self.tonic]

    def __str__(self) -> str:
        return f"{self.tonic_name} {self.scale.replace('_', ' ')}"


_KEY_RE = re.compile(r"^\s*([A-Ga-g](?:##|bb|[#♯b♭x]|s(?![a-z]))?)\s*(.*?)\s*$")


def split_key(text: str) -> tuple[int, str | None]:
    """``"D minor"`` -> (2, "minor"); ``"D"`` -> (2, None): whether the text named a scale."""
    if not isinstance(text, str):
        raise TheoryError(f"a key must be text like 'D minor'; got {text!r}")
    m = _KEY_RE.match(text)
    if not m:
        raise TheoryError(f"not a key: {text!r} (write it like 'D minor' or 'F# dorian')")
    tonic = parse_pitch_class(m.group(1))
    rest = m.group(2)
    return tonic, (normalize_scale(rest) if rest else None)


def parse_key(text: str | Key, default_scale: str = "major") -> Key:
    """Read a key as players write it.

    ``"D minor"``, ``"F# dorian"``, ``"Bb"`` (major unless ``default_scale`` says otherwise),
    ``"Am"`` / ``"Cm"`` (minor), ``"Eb harmonic minor"``.
    """
    if isinstance(text, Key):
        return text
    tonic, scale = split_key(text)
    return Key(tonic, scale or normalize_scale(default_scale))


def scale_pitch_classes(key: str | int | Key, scale: str | None = None) -> frozenset[int]:
    """Pitch classes of a scale on a tonic.

    ``scale_pitch_classes("D minor")``, ``scale_pitch_classes("D", "minor")``,
    ``scale_pitch_classes(2, "minor")`` and ``scale_pitch_classes(Key(2, "minor"))`` agree.
    An explicit ``scale`` overrides the one inside ``key``.
    """
    if isinstance(key, int) and not isinstance(key, bool):
        k = Key(parse_pitch_class(key), normalize_scale(scale or "major"))
    else:
        k = parse_key(key)
        if scale is not None:
            k = Key(k.tonic, normalize_scale(scale))
    return _pcs(k.tonic, k.scale)


_PCS_CACHE: dict[tuple[int, str], frozenset[int]] = {}


def _pcs(tonic: int, scale: str) -> frozenset[int]:
    cached = _PCS_CACHE.get((tonic, scale))
    if cached is None:
        cached = frozenset((tonic + step) % 12 for step in SCALES[scale])
        _PCS_CACHE[(tonic, scale)] = cached
    return cached


def in_scale(note: int, pitch_classes: Iterable[int]) -> bool:
    return note % 12 in pitch_classes


def quantize(note: int, pitch_classes: Iterable[int], direction: str = "nearest", low: int = 0, high: int = 127) -> int | None:
    """Snap a MIDI note to the set: ``nearest`` (ties go down), ``down`` or ``up``.

    Stays within ``low..high``; returns ``None`` when no note of the set lies in that range
    in the asked direction (or the set is empty).
    """
    pcs = frozenset(pitch_classes)
    if not pcs:
        return None
    if note % 12 in pcs and low <= note <= high:
        return note
    below = next((n for n in range(min(note, high), max(low, note - 12) - 1, -1) if n % 12 in pcs), None)
    above = next((n for n in range(max(note, low), min(high, note + 12) + 1) if n % 12 in pcs), None)
    if direction == "down":
        return below
    if direction == "up":
        return above
    if direction != "nearest":
        raise TheoryError(f"direction must be nearest, down or up; got {direction!r}")
    if below is None:
        return above
    if above is None:
        return below
    return below if note - below <= above - note else above


def pitch_class_set(notes: Iterable[int]) -> frozenset[int]:
    return frozenset(n % 12 for n in notes)


def pitch_class_histogram(notes: Iterable[int], weights: Iterable[float] | None = None) -> list[float]:
    """Twelve bins: how much of each pitch class (counts, or summed weights such as durations)."""
    hist = [0.0] * 12
    if weights is None:
        for n in notes:
            hist[n % 12] += 1.0
    else:
        for n, w in zip(notes, weights):
            hist[n % 12] += float(w)
    return hist


# Krumhansl-Kessler key profiles (probe-tone ratings), the classic key-finding templates.
_MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def _correlation(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = sum(a) / 12, sum(b) / 12
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    da = sum((x - ma) ** 2 for x in a) ** 0.5
    db = sum((y - mb) ** 2 for y in b) ** 0.5
    return num / (da * db) if da and db else 0.0


def estimate_key(notes: Iterable[int], weights: Iterable[float] | None = None) -> Key | None:
    """Best major or minor key for some notes (Krumhansl-Schmuckler); ``None`` for no notes.

    Useful to check that generated material fits the performer's phrase, or to follow the
    performer's key when a preset says ``key: auto``.
    """
    hist = pitch_class_histogram(notes, weights)
    if not any(hist):
        return None
    best: tuple[float, Key] | None = None
    for tonic in range(12):
        rotated = hist[tonic:] + hist[:tonic]
        for scale, profile in (("major", _MAJOR_PROFILE), ("minor", _MINOR_PROFILE)):
            r = _correlation(rotated, profile)
            if best is None or r > best[0]:
                best = (r, Key(tonic, scale))
    assert best is not None
    return best[1]


_NOTE_RE = re.compile(r"^\s*([A-Ga-g])(##|bb|#|♯|b|♭)?(-?\d+)\s*$")


def parse_note(text: str | int) -> int:
    """``"C4"`` -> 60 (middle C is C4), ``"F#2"``, ``"Bb-1"``; ints 0-127 pass through."""
    if isinstance(text, bool):
        raise TheoryError(f"not a note: {text!r}")
    if isinstance(text, int):
        if not 0 <= text <= 127:
            raise TheoryError(f"MIDI note must be 0-127; got {text}")
        return text
    m = _NOTE_RE.match(str(text))
    if not m:
        raise TheoryError(f"not a note: {text!r} (write it like C4, F#2 or a number 0-127)")
    letter, acc, octave = m.group(1).upper(), m.group(2) or "", int(m.group(3))
    note = (octave + 1) * 12 + _LETTERS[letter] + _ACCIDENTALS[acc]
    if not 0 <= note <= 127:
        raise TheoryError(f"note {text!r} is outside MIDI's 0-127")
    return note


def note_name(note: int) -> str:
    """60 -> ``"C4"``."""
    return f"{PITCH_CLASS_NAMES[note % 12]}{note // 12 - 1}"


def parse_range(value: Sequence[str | int]) -> tuple[int, int]:
    """``[C3, C6]`` or ``[48, 84]`` -> (low, high) MIDI notes, low <= high."""
    if isinstance(value, (str, bytes)) or len(value) != 2:
        raise TheoryError(f"a note range is two notes like [C3, C6]; got {value!r}")
    low, high = parse_note(value[0]), parse_note(value[1])
    if low > high:
        raise TheoryError(f"range goes down: {note_name(low)} is above {note_name(high)}")
    return low, high


def degree_step(note: int, steps: int, scale: Sequence[int] | None) -> int:
    """The note ``steps`` scale degrees above (below, if negative) ``note`` in the pitch
    classes ``scale`` (semitones when ``scale`` is None); a note outside the scale counts
    from the scale note just below it.  Motif variations move in degrees so a sequence or
    an inversion stays in the key: a third stays a third, major or minor as the key says."""
    if not scale:
        return note + steps
    pcs = frozenset(scale)
    n = note
    while n % 12 not in pcs:
        n -= 1
    step = 1 if steps > 0 else -1
    for _ in range(abs(steps)):
        n += step
        while n % 12 not in pcs:
            n += step
    return n


def degree_interval(a: int, b: int, scale: Sequence[int] | None) -> int:
    """How many scale degrees ``b`` lies above ``a`` (negative: below); semitones without a scale."""
    if not scale:
        return b - a
    pcs = frozenset(scale)
    lo, hi = min(a, b), max(a, b)
    count = sum(1 for n in range(lo + 1, hi + 1) if n % 12 in pcs)
    return count if b >= a else -count


CHORD_TEMPLATES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
}
"""Chord quality -> semitones above the root (triads and sevenths)."""


def chord_table() -> tuple[list[tuple[int, str]], list[frozenset[int]], list[list[float]]]:
    """Every (root, quality), its pitch classes and a template row for matching a
    pitch-class histogram: +1 on chord tones, -1/2 elsewhere, sevenths slightly below
    triads (a major seventh most) so a triad wins unless its seventh is really there."""
    names, sets, rows = [], [], []
    for quality, steps in CHORD_TEMPLATES.items():
        for root in range(12):
            pcs = frozenset((root + s) % 12 for s in steps)
            row = [1.0 if pc in pcs else -0.5 for pc in range(12)]
            row[root] += 0.25  # the root weighs most: C-E-G is C, not E minor with a flat 6th
            if len(steps) == 4:
                row = [x * (0.8 if quality == "maj7" else 0.88) for x in row]
            names.append((root, quality))
            sets.append(pcs)
            rows.append(row)
    return names, sets, rows
