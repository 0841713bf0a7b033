"""events.parse / to_bytes: every message kind, and bad bytes as the wire delivers them."""

from __future__ import annotations

import mido
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecomposer.kernel.events import Event, Kind, MidiParseError, control, from_mido, note_off, note_on, parse, program, sort_key, sorted_events, to_bytes, to_mido

T = 123_456_789


@pytest.mark.parametrize(
    "data, expected",
    [
        ([0x90, 60, 100], Event(Kind.NOTE_ON, T, 0, 60, 100)),
        ([0x9F, 127, 1], Event(Kind.NOTE_ON, T, 15, 127, 1)),
        ([0x93, 60, 0], Event(Kind.NOTE_OFF, T, 3, 60, 0)),  # velocity 0 is a note-off
        ([0x81, 61, 64], Event(Kind.NOTE_OFF, T, 1, 61, 64)),  # release velocity kept
        ([0xB2, 64, 127], Event(Kind.CONTROL, T, 2, control=64, value=127)),
        ([0xC5, 7], Event(Kind.PROGRAM, T, 5, value=7)),
        ([0xD0, 99], Event(Kind.AFTERTOUCH, T, 0, value=99)),
        ([0xA4, 60, 33], Event(Kind.POLY_AFTERTOUCH, T, 4, 60, 33)),
        ([0xE0, 0x00, 0x40], Event(Kind.PITCHBEND, T, 0, value=0)),
        ([0xE0, 0x00, 0x00], Event(Kind.PITCHBEND, T, 0, value=-8192)),
        ([0xE0, 0x7F, 0x7F], Event(Kind.PITCHBEND, T, 0, value=8191)),
        ([0xF8], Event(Kind.CLOCK, T)),
        ([0xFA], Event(Kind.START, T)),
        ([0xFB], Event(Kind.CONTINUE, T)),
        ([0xFC], Event(Kind.STOP, T)),
        ([0xF2, 0x10, 0x01], Event(Kind.SONG_POSITION, T, value=0x10 | (1 << 7))),
    ],
)
def test_parse_every_kind(data, expected) -> None:
    assert parse(bytes(data), T) == expected


def test_voice_is_carried_and_input_types_accepted() -> None:
    assert parse([0x90, 60, 1], T, voice=2).voice == 2
    assert parse(bytearray([0xF8]), T) == parse((0xF8,), T) == parse(b"\xf8", T)


@pytest.mark.parametrize(
    "data",
    [
        [0xF0, 0x7D, 0x01, 0xF7],  # sysex
        [0xF0, 0xF7],  # empty sysex
        [0xF1, 0x20],  # MTC quarter frame
        [0xF3, 0x01],  # song select
        [0xF6],  # tune request
        [0xFE],  # active sensing
        [0xFF],  # reset
    ],
)
def test_well_formed_messages_we_ignore_give_none(data) -> None:
    assert parse(bytes(data), T) is None


@pytest.mark.parametrize(
    "data, words",
    [
        ([], "empty"),
        ([0x3C, 0x64], "stray data byte"),
        ([0x00], "stray data byte"),
        ([0x90, 60], "needs 2 data bytes"),  # truncated note-on
        ([0x90], "needs 2 data bytes"),
        ([0x90, 60, 100, 1], "needs 2 data bytes"),  # running-status leftovers glued on
        ([0xC0], "needs 1 data bytes"),
        ([0xC0, 1, 2], "needs 1 data bytes"),
        ([0x90, 0x80, 100], "data byte >= 0x80"),
        ([0x90, 60, 0xFF], "data byte >= 0x80"),
        ([0xE0, 0x00, 0x90], "data byte >= 0x80"),
        ([0xF4], "undefined status"),
        ([0xF5, 1], "undefined status"),
        ([0xF9], "undefined status"),
        ([0xFD], "undefined status"),
        ([0xF8, 0x01], "trailing"),
        ([0xFE, 0x00], "trailing"),
        ([0xF0, 0x01, 0x02], "sysex"),  # unterminated
        ([0xF0, 0x01, 0x90, 0xF7], "sysex"),  # status byte inside sysex
        ([0xF0], "sysex"),
        ([0xF2, 0x01], "song position"),
        ([0xF2, 0x01, 0x80], "song position"),
        ([0xF1], "system common"),
        ([0xF3, 0x80], "system common"),
    ],
)
def test_malformed_bytes_raise_a_parse_error_that_says_why(data, words) -> None:
    with pytest.raises(MidiParseError, match=words):
        parse(bytes(data), T)


@given(st.binary(min_size=0, max_size=8))
def test_any_bytes_parse_or_raise_midiparseerror_never_anything_else(data: bytes) -> None:
    try:
        event = parse(data, T)
    except MidiParseError:
        return
    if event is not None:
        # What we accept encodes back to a message that parses to the same event.
        assert parse(bytes(to_bytes(event)), T) == event


channel_events = st.one_of(
    st.builds(note_on, st.just(T), st.integers(0, 127), st.integers(1, 127), st.integers(0, 15)),
    st.builds(lambda n, v, c: note_off(T, n, c, velocity=v), st.integers(0, 127), st.integers(0, 127), st.integers(0, 15)),
    st.builds(control, st.just(T), st.integers(0, 127), st.integers(0, 127), st.integers(0, 15)),
    st.builds(program, st.just(T), st.integers(0, 127), st.integers(0, 15)),
    st.builds(lambda v, c: Event(Kind.PITCHBEND, T, c, value=v), st.integers(-8192, 8191), st.integers(0, 15)),
    st.builds(lambda v, c: Event(Kind.AFTERTOUCH, T, c, value=v), st.integers(0, 127), st.integers(0, 15)),
    st.builds(lambda n, v, c: Event(Kind.POLY_AFTERTOUCH, T, c, n, v), st.integers(0, 127), st.integers(0, 127), st.integers(0, 15)),
    st.builds(lambda v: Event(Kind.SONG_POSITION, T, value=v), st.integers(0, 16383)),
    st.sampled_from([Event(Kind.CLOCK, T), Event(Kind.START, T), Event(Kind.CONTINUE, T), Event(Kind.STOP, T)]),
)


@given(channel_events)
def test_round_trip_through_bytes_and_mido(event: Event) -> None:
    data = to_bytes(event)
    assert parse(bytes(data), T) == event
    assert to_mido(event).bytes() == data
    assert from_mido(mido.Message.from_bytes(data), T) == event


def test_to_bytes_clamps_out_of_range_values_into_valid_midi() -> None:
    assert to_bytes(note_on(T, 60, 0)) == [0x90, 60, 1]  # a note-on never turns into a note-off
    assert to_bytes(note_on(T, 60, 300)) == [0x90, 60, 127]
    assert to_bytes(control(T, 7, -5)) == [0xB0, 7, 0]
    assert to_bytes(control(T, 7, 200)) == [0xB0, 7, 127]
    assert to_bytes(Event(Kind.PITCHBEND, T, value=99_999)) == [0xE0, 0x7F, 0x7F]
    assert to_bytes(Event(Kind.PITCHBEND, T, value=-99_999)) == [0xE0, 0x00, 0x00]
    for data in (to_bytes(note_on(T, 200, 100, channel=20)), to_bytes(program(T, 130))):
        assert all(b < 0x80 for b in data[1:])
        assert parse(bytes(data), T) is not None


def test_from_mido_drops_meta_and_ignored_messages() -> None:
    assert from_mido(mido.MetaMessage("set_tempo", tempo=500000), T) is None
    assert from_mido(mido.Message("sysex", data=[1, 2]), T) is None
    assert from_mido(mido.Message("note_on", note=60, velocity=0), T) == note_off(T, 60)


def test_simultaneous_note_off_sorts_before_note_on() -> None:
    on, off = note_on(T, 60), note_off(T, 60)
    assert sort_key(off) < sort_key(on)
    assert sorted_events([on, off, note_on(T - 1, 62)]) == [note_on(T - 1, 62), off, on]


def test_events_are_immutable_and_compact() -> None:
    event = note_on(T, 60)
    with pytest.raises(AttributeError):
        event.note = 61  # type: ignore[misc]
    assert event.at(T + 1).time == T + 1 and event.time == T
    assert event.with_(note=62).note == 62
    assert "note=60" in repr(event)
    assert not hasattr(event, "__dict__")
