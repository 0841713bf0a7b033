"""Keys, scales, note names and quantizing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecomposer.kernel.theory import SCALES, Key, TheoryError, estimate_key, note_name, parse_key, parse_note, parse_pitch_class, parse_range, quantize, scale_pitch_classes, split_key


@pytest.mark.parametrize(
    "text, key",
    [
        ("D minor", Key(2, "minor")),
        ("F# dorian", Key(6, "dorian")),
        ("Bb", Key(10, "major")),
        ("bb minor", Key(10, "minor")),
        ("Am", Key(9, "minor")),
        ("Abm", Key(8, "minor")),
        ("Eb harmonic minor", Key(3, "harmonic_minor")),
        ("B blues", Key(11, "blues")),
        ("C Major Pentatonic", Key(0, "major_pentatonic")),
        ("G aeolian", Key(7, "minor")),
    ],
)
def test_parse_key(text, key):
    assert parse_key(text) == key


def test_split_key_says_whether_a_scale_was_named():
    assert split_key("D") == (2, None)
    assert split_key("D minor") == (2, "minor")


def test_bad_keys_explain():
    with pytest.raises(TheoryError, match="did you mean 'minor'"):
        parse_key("D minro")
    with pytest.raises(TheoryError):
        parse_key("H major")
    with pytest.raises(TheoryError):
        parse_key(5)  # type: ignore[arg-type]


def test_scale_pitch_classes_forms_agree():
    d_minor = frozenset({2, 4, 5, 7, 9, 10, 0})
    assert scale_pitch_classes("D minor") == d_minor
    assert scale_pitch_classes("D", "minor") == d_minor
    assert scale_pitch_classes(2, "minor") == d_minor
    assert scale_pitch_classes(Key(2, "minor")) == d_minor
    assert scale_pitch_classes("D major", "minor") == d_minor  # explicit scale wins


def test_every_scale_contains_its_tonic():
    for name in SCALES:
        assert 0 in scale_pitch_classes(0, name)


def test_pitch_class_spellings():
    assert parse_pitch_class("C#") == parse_pitch_class("Db") == 1
    assert parse_pitch_class("B♭") == 10
    assert parse_pitch_class("Cb") == 11


@given(note=st.integers(0, 127), tonic=st.integers(0, 11), scale=st.sampled_from(sorted(SCALES)))
def test_quantize_lands_in_scale_and_close(note, tonic, scale):
    pcs = scale_pitch_classes(tonic, scale)
    q = quantize(note, pcs)
    assert q is not None and q % 12 in pcs and 0 <= q <= 127
    assert abs(q - note) <= 2  # no scale here has a gap wider than 3 semitones
    assert quantize(q, pcs) == q


def test_quantize_directions_and_ties():
    c_major = scale_pitch_classes("C")
    assert quantize(61, c_major) == 60  # tie goes down
    assert quantize(61, c_major, "up") == 62
    assert quantize(66, c_major, "down") == 65
    assert quantize(127, scale_pitch_classes("C# major")) == 126  # nothing above within MIDI
    assert quantize(61, c_major, low=61, high=61) is None
    assert quantize(60, frozenset()) is None


def test_note_names_round_trip():
    assert parse_note("C4") == 60
    assert parse_note("A4") == 69
    assert parse_note("C-1") == 0
    assert parse_note("F#2") == 42
    for n in range(128):
        assert parse_note(note_name(n)) == n
    with pytest.raises(TheoryError):
        parse_note("H2")
    with pytest.raises(TheoryError):
        parse_note("A9")  # 129: beyond MIDI


def test_parse_range():
    assert parse_range(["C3", "C6"]) == (48, 84)
    assert parse_range([40, 50]) == (40, 50)
    with pytest.raises(TheoryError, match="goes down"):
        parse_range(["C6", "C3"])


def test_estimate_key_finds_the_key_of_a_tune():
    # the opening of a D minor melody, and a C major scale
    assert estimate_key([62, 64, 65, 67, 69, 70, 69, 65, 62, 61, 62, 57, 62]) == Key(2, "minor")
    assert estimate_key([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60]) == Key(0, "major")
    assert estimate_key([]) is None
