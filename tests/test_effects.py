"""Built-in effects, driven directly through ``process`` with a stand-alone PluginContext.

The property every test here cares about most: each note-on sent has exactly one note-off,
whatever happens to the parameters while notes are held.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecomposer.kernel.events import NS_PER_MS, Event, Kind, control, note_off, note_on, sorted_events
from livecomposer.kernel.plugin import OptionError, PluginContext, UnknownOption
from livecomposer.plugins.effects import (
    ChannelFilter,
    ChannelMap,
    NoteLengthLimit,
    ScaleQuantize,
    Thru,
    Transpose,
    VelocityCurve,
)

MS = NS_PER_MS


class SchedulerContext(PluginContext):
    """The stand-alone context, plus when each tag was cancelled (``time`` is set by the
    test before each ``process``), so checks can drop only what was still pending."""

    def __init__(self) -> None:
        super().__init__()
        self.time = 0
        self.cancel_times: dict[int, int] = {}

    def cancel(self, tag: int) -> None:
        super().cancel(tag)
        self.cancel_times.setdefault(tag, self.time)


def make(cls, **options):
    plugin = cls(**options)
    ctx = SchedulerContext()
    plugin.prepare(ctx)
    return plugin, ctx


def notes(events, kind=None):
    return [(e.kind.name, e.channel, e.note) for e in events if e.is_note and (kind is None or e.kind is kind)]


def _sent(events, cancelled):
    """What the scheduler really sends: a cancelled tag's events after the cancel are dropped.
    ``cancelled`` is a SchedulerContext (cancel times known) or a list of tags (all dropped)."""
    times = cancelled.cancel_times if isinstance(cancelled, SchedulerContext) else dict.fromkeys(cancelled, -1)
    return sorted_events(e for e in events if not (e.tag in times and e.time > times[e.tag]))


def assert_paired(events, cancelled=()):
    """As a synth hears it (future events in time order, cancelled ones dropped): no
    note-on while that note sounds, no note-off for a silent note, nothing left sounding."""
    sounding: Counter = Counter()
    for e in _sent(events, cancelled):
        k = (e.channel, e.note)
        if e.kind is Kind.NOTE_ON:
            assert sounding[k] == 0, f"second note-on for sounding {k}: {e}"
            sounding[k] += 1
        elif e.kind is Kind.NOTE_OFF:
            assert sounding[k] == 1, f"note-off for silent {k}: {e}"
            sounding[k] -= 1
    assert not +sounding, f"left sounding: {+sounding}"


# -- thru -------------------------------------------------------------------------------


def test_thru_passes_everything_unchanged():
    plugin, _ = make(Thru)
    events = [note_on(0, 60), control(1, 7, 100), Event(Kind.CLOCK, 2), Event(Kind.PITCHBEND, 3, value=-200), note_off(4, 60)]
    assert plugin.process(events, 4) == events


# -- transpose ----------------------------------------------------------------------------


def test_transpose_shifts_notes_and_leaves_other_events():
    plugin, _ = make(Transpose, semitones=7)
    cc = control(1, 1, 64, channel=3)
    out = plugin.process([note_on(0, 60, 90, channel=3), cc, note_off(2, 60, channel=3)], 2)
    assert out == [note_on(0, 67, 90, channel=3), cc, note_off(2, 67, channel=3)]


def test_transpose_note_off_follows_note_on_when_amount_changes_mid_note():
    plugin, _ = make(Transpose, semitones=2)
    out = plugin.process([note_on(0, 60)], 0)
    plugin.set_param("semitones", -5)
    out += plugin.process([note_off(10, 60), note_on(11, 60), note_off(12, 60)], 12)
    assert notes(out) == [("NOTE_ON", 0, 62), ("NOTE_OFF", 0, 62), ("NOTE_ON", 0, 55), ("NOTE_OFF", 0, 55)]


def test_transpose_collision_sounds_once_and_releases_once():
    # 60 held at +2 sounds 62; then at 0, key 62 also sounds 62.
    plugin, _ = make(Transpose, semitones=2)
    out = plugin.process([note_on(0, 60)], 0)
    plugin.set_param("semitones", 0)
    out += plugin.process([note_on(1, 62)], 1)
    assert notes(out) == [("NOTE_ON", 0, 62)], "62 already sounds: no second note-on"
    out += plugin.process([note_off(2, 60)], 2)
    assert notes(out)[-1] == ("NOTE_ON", 0, 62), "62 must keep sounding while key 62 is held"
    out += plugin.process([note_off(3, 62)], 3)
    assert notes(out)[-1] == ("NOTE_OFF", 0, 62)
    assert_paired(out)


def test_transpose_drops_notes_pushed_out_of_range_with_their_offs():
    plugin, _ = make(Transpose, semitones=12)
    out = plugin.process([note_on(0, 120), note_off(1, 120), note_on(2, 100), note_off(3, 100)], 3)
    assert notes(out) == [("NOTE_ON", 0, 112), ("NOTE_OFF", 0, 112)]


def test_transpose_restrike_without_release_ends_first_strike():
    plugin, _ = make(Transpose, semitones=1)
    out = plugin.process([note_on(0, 60)], 0)
    plugin.set_param("semitones", 3)
    out += plugin.process([note_on(1, 60), note_off(2, 60)], 2)
    assert notes(out) == [("NOTE_ON", 0, 61), ("NOTE_OFF", 0, 61), ("NOTE_ON", 0, 63), ("NOTE_OFF", 0, 63)]


def test_transpose_stray_note_off_is_dropped_and_counted():
    plugin, _ = make(Transpose, semitones=1)
    assert plugin.process([note_off(0, 60)], 0) == []
    assert plugin.router.stray_offs == 1


def test_transpose_reset_forgets_held_notes():
    # After reset the engine has released everything: the late key-up must not send a second off.
    plugin, _ = make(Transpose, semitones=1)
    plugin.process([note_on(0, 60)], 0)
    plugin.reset()
    assert plugin.process([note_off(1, 60)], 1) == []


def test_transpose_poly_aftertouch_follows_its_note():
    plugin, _ = make(Transpose, semitones=2)
    plugin.process([note_on(0, 60)], 0)
    plugin.set_param("semitones", 4)
    at = Event(Kind.POLY_AFTERTOUCH, 1, 0, 60, 50)
    assert plugin.process([at], 1) == [at.with_(note=62)]


def test_transpose_separates_voices_and_channels():
    plugin, _ = make(Transpose, semitones=1)
    out = plugin.process([note_on(0, 60, channel=0), note_on(0, 60, channel=1), note_on(0, 60, voice=2)], 0)
    plugin.set_param("semitones", 2)
    out += plugin.process([note_off(1, 60, channel=1), note_off(1, 60, voice=2), note_off(1, 60, channel=0)], 1)
    # channel 0's two voices share output note 61: one note-on, one note-off when both are up
    assert [(e.kind.name, e.channel) for e in out if e.is_note] == [("NOTE_ON", 0), ("NOTE_ON", 1), ("NOTE_OFF", 1), ("NOTE_OFF", 0)]
    assert_paired(out)


def test_transpose_rejects_bad_options():
    with pytest.raises(OptionError) as err:
        Transpose(semitones=60)
    assert err.value.key == "semitones"
    with pytest.raises(UnknownOption) as err:
        Transpose(semitone=3)
    assert "did you mean 'semitones'" in str(err.value)


# -- channel filter and map ---------------------------------------------------------------


def test_channel_filter_passes_only_listed_channels():
    plugin, _ = make(ChannelFilter, channels=[1, 3])  # channels 1-16 -> 0 and 2
    clock = Event(Kind.CLOCK, 0)
    events = [note_on(0, 60, channel=0), note_on(0, 61, channel=1), control(0, 7, 1, channel=1), control(0, 7, 2, channel=2), clock]
    out = plugin.process(events, 0)
    assert out == [note_on(0, 60, channel=0), control(0, 7, 2, channel=2), clock]


def test_channel_filter_exclude():
    plugin, _ = make(ChannelFilter, exclude=10)
    out = plugin.process([note_on(0, 36, channel=9), note_on(0, 60, channel=0)], 0)
    assert notes(out) == [("NOTE_ON", 0, 60)]


def test_channel_filter_note_off_passes_after_filter_changes():
    plugin, _ = make(ChannelFilter, channels=[1])
    out = plugin.process([note_on(0, 60, channel=0)], 0)
    plugin.channels = (1,)  # set directly: the param is not live, but a preset swap could do this
    out += plugin.process([note_off(1, 60, channel=0), note_on(2, 60, channel=0), note_off(3, 60, channel=0)], 3)
    assert notes(out) == [("NOTE_ON", 0, 60), ("NOTE_OFF", 0, 60)]


def test_channel_filter_rejects_channel_zero():
    with pytest.raises(OptionError, match="1-16"):
        ChannelFilter(channels=[0])


def test_channel_map_moves_channel_messages():
    plugin, _ = make(ChannelMap, map={1: 2})
    out = plugin.process([note_on(0, 60, channel=0), control(0, 1, 5, channel=0), note_on(0, 62, channel=4), Event(Kind.START, 0)], 0)
    assert out == [note_on(0, 60, channel=1), control(0, 1, 5, channel=1), note_on(0, 62, channel=4), Event(Kind.START, 0)]


def test_channel_map_live_change_keeps_note_off_on_original_channel():
    plugin, _ = make(ChannelMap, to=2)
    out = plugin.process([note_on(0, 60, channel=0)], 0)
    plugin.set_param("to", 5)
    out += plugin.process([note_off(1, 60, channel=0)], 1)
    assert notes(out) == [("NOTE_ON", 1, 60), ("NOTE_OFF", 1, 60)]


def test_channel_map_merging_two_channels_keeps_note_sounding_until_last_release():
    plugin, _ = make(ChannelMap, to=1)
    out = plugin.process([note_on(0, 60, channel=0), note_on(1, 60, channel=1), note_off(2, 60, channel=0)], 2)
    assert notes(out)[-1] == ("NOTE_ON", 0, 60)
    out += plugin.process([note_off(3, 60, channel=1)], 3)
    assert_paired(out)


# -- velocity curve -------------------------------------------------------------------------


def test_velocity_curve_defaults_change_nothing():
    plugin, _ = make(VelocityCurve)
    events = [note_on(0, 60, v) for v in (1, 30, 64, 100, 127)]
    assert plugin.process(events, 0) == events


def test_velocity_curve_gamma_and_range():
    plugin, _ = make(VelocityCurve, gamma=0.5, min=40, max=100)
    velocities = [e.velocity for e in plugin.process([note_on(0, 60, v) for v in (1, 32, 64, 127)], 0)]
    assert velocities[0] == 40 and velocities[-1] == 100
    assert velocities == sorted(velocities)
    assert velocities[1] > 40 + (100 - 40) * 31 / 126  # gamma < 1 lifts soft notes above the straight line


def test_velocity_curve_fixed_leaves_note_offs_alone():
    plugin, _ = make(VelocityCurve, fixed=90)
    out = plugin.process([note_on(0, 60, 10), note_off(1, 60, velocity=33), control(1, 7, 3)], 1)
    assert out == [note_on(0, 60, 90), note_off(1, 60, velocity=33), control(1, 7, 3)]


def test_velocity_curve_follows_live_changes():
    plugin, _ = make(VelocityCurve)
    plugin.set_param("gamma", 2.0)
    soft = plugin.process([note_on(0, 60, 64)], 0)[0].velocity
    assert soft < 64
    plugin.set_param("fixed", 50)
    assert plugin.process([note_on(1, 60, 64)], 1)[0].velocity == 50
    plugin.set_param("fixed", 0)
    assert plugin.process([note_on(2, 60, 64)], 2)[0].velocity == soft


# -- scale quantize -------------------------------------------------------------------------


def test_scale_quantize_snaps_to_nearest_scale_tone():
    plugin, _ = make(ScaleQuantize, key="C", scale="major")
    out = plugin.process([note_on(0, n) for n in range(60, 73)], 0)
    assert [e.note for e in out if e.is_note_on and e.note % 12 not in {0, 2, 4, 5, 7, 9, 11}] == []


def test_scale_quantize_key_names_the_scale():
    plugin, _ = make(ScaleQuantize, key="D minor")
    assert (plugin.key, plugin.scale) == ("D", "minor")
    assert plugin.pitch_classes == frozenset({2, 4, 5, 7, 9, 10, 0})
    # C# (61) is between C and D: tie goes down; F# (66) snaps to F (65) or G (67): tie down.
    out = plugin.process([note_on(0, 61), note_on(0, 66)], 0)
    assert [e.note for e in out if e.is_note_on] == [60, 65]


def test_scale_quantize_key_and_conflicting_scale_is_an_error():
    with pytest.raises(OptionError) as err:
        ScaleQuantize(key="D minor", scale="major")
    assert err.value.key == "scale"
    with pytest.raises(OptionError) as err:
        ScaleQuantize(key="H")
    assert err.value.key == "key"
    with pytest.raises(OptionError) as err:
        ScaleQuantize(scale="dorain")
    assert "did you mean 'dorian'" in str(err.value)


def test_scale_quantize_up_down_drop():
    up, _ = make(ScaleQuantize, key="C", snap="up")
    down, _ = make(ScaleQuantize, key="C", snap="down")
    drop, _ = make(ScaleQuantize, key="C", snap="drop")
    assert [e.note for e in up.process([note_on(0, 61)], 0)] == [62]
    assert [e.note for e in down.process([note_on(0, 61)], 0)] == [60]
    assert drop.process([note_on(0, 61), note_off(1, 61)], 1) == []
    assert up.process([note_off(1, 61)], 1) == [note_off(1, 62)]
    up.set_param("snap", "drop")  # live change
    assert up.process([note_on(2, 61), note_on(2, 60)], 2) == [note_on(2, 60)]


def test_scale_quantize_note_off_matches_when_key_changes_mid_note():
    plugin, _ = make(ScaleQuantize, key="C", scale="major")
    out = plugin.process([note_on(0, 63)], 0)  # Eb -> D (tie down) in C major
    plugin.set_param("key", "C minor")  # now Eb is in the scale
    out += plugin.process([note_off(1, 63)], 1)
    assert notes(out) == [("NOTE_ON", 0, 62), ("NOTE_OFF", 0, 62)]


def test_scale_quantize_two_keys_on_one_tone_sound_once_and_release_last():
    plugin, _ = make(ScaleQuantize, key="C", scale="major")
    out = plugin.process([note_on(0, 60), note_on(1, 61)], 1)  # C# -> C
    out += plugin.process([note_off(2, 61)], 2)
    assert [e for e in out if e.is_note_off and e.time == 2] == []
    out += plugin.process([note_off(3, 60)], 3)
    assert_paired(out)


def test_scale_quantize_cc_sweeps_tonic_and_keeps_scale():
    plugin, _ = make(ScaleQuantize, key="A minor")
    plugin.set_param("key", 1.0)  # CC at the top: the last tonic
    assert (plugin.key, plugin.scale) == ("B", "minor")
    plugin.set_param("scale", 0.0)
    assert plugin.scale == "major"


# -- note length limit ----------------------------------------------------------------------


def test_note_length_limit_short_note_passes_and_cancels_the_early_off():
    plugin, ctx = make(NoteLengthLimit, max_ms=100)
    out = plugin.process([note_on(0, 60)], 0)
    assert out[0] == note_on(0, 60)
    early = out[1]
    assert early.kind is Kind.NOTE_OFF and early.time == 100 * MS and early.tag
    out2 = plugin.process([note_off(50 * MS, 60)], 50 * MS)
    assert out2 == [note_off(50 * MS, 60)]
    assert ctx.cancelled == [early.tag]
    assert_paired(out + out2, ctx.cancelled)


def test_note_length_limit_long_note_is_cut_and_late_off_swallowed():
    plugin, ctx = make(NoteLengthLimit, max_ms=100)
    out = plugin.process([note_on(0, 60)], 0)
    late = plugin.process([note_off(500 * MS, 60)], 500 * MS)
    assert late == [] and ctx.cancelled == []
    assert_paired(out + late, ctx.cancelled)


def test_note_length_limit_restrike_before_limit_ends_first_note_now():
    plugin, ctx = make(NoteLengthLimit, max_ms=100)
    out = plugin.process([note_on(0, 60)], 0)
    first_tag = out[1].tag
    out += plugin.process([note_on(40 * MS, 60)], 40 * MS)
    assert first_tag in ctx.cancelled
    assert [(e.kind.name, e.time) for e in out[2:4]] == [("NOTE_OFF", 40 * MS), ("NOTE_ON", 40 * MS)]
    out += plugin.process([note_off(60 * MS, 60)], 60 * MS)
    assert_paired(out, ctx.cancelled)


def test_note_length_limit_restrike_after_limit_needs_no_extra_off():
    plugin, ctx = make(NoteLengthLimit, max_ms=100)
    out = plugin.process([note_on(0, 60)], 0)
    out += plugin.process([note_on(300 * MS, 60)], 300 * MS)
    assert ctx.cancelled == []
    out += plugin.process([note_off(350 * MS, 60)], 350 * MS)
    assert_paired(out, ctx.cancelled)


def test_note_length_limit_change_mid_note_keeps_pairing():
    plugin, ctx = make(NoteLengthLimit, max_ms=100)
    out = plugin.process([note_on(0, 60)], 0)
    plugin.set_param("max_ms", 1000)
    out += plugin.process([note_off(500 * MS, 60), note_on(600 * MS, 61), note_off(1400 * MS, 61)], 1400 * MS)
    assert [e.time for e in out if e.is_note_off and e.tag not in ctx.cancelled] == [100 * MS, 1400 * MS]
    assert_paired(out, ctx.cancelled)


def test_note_length_limit_reset_cancels_pending_offs():
    plugin, ctx = make(NoteLengthLimit, max_ms=100)
    out = plugin.process([note_on(0, 60)], 0)
    plugin.reset()
    assert ctx.cancelled == [out[1].tag]
    assert plugin.process([note_off(10 * MS, 60)], 10 * MS) == []


def test_note_length_limit_passes_other_events():
    plugin, _ = make(NoteLengthLimit)
    events = [control(0, 1, 2), Event(Kind.PITCHBEND, 1, value=100)]
    assert plugin.process(events, 1) == events


# -- every effect, random playing and random parameter moves --------------------------------

_LIVE_MOVES = {
    Transpose: ("semitones", st.integers(-24, 24)),
    ChannelMap: ("to", st.integers(0, 16)),
    VelocityCurve: ("gamma", st.floats(0.1, 10)),
    ScaleQuantize: ("key", st.sampled_from(["C", "D minor", "F# dorian", "Bb blues", "E major_pentatonic"])),
    NoteLengthLimit: ("max_ms", st.floats(1, 50)),
}

_PURE = (Thru, VelocityCurve)  # never change pitch or channel, so they keep no note state

_action = st.one_of(
    st.tuples(st.just("on"), st.integers(0, 2), st.integers(55, 70)),
    st.tuples(st.just("off"), st.integers(0, 2), st.integers(55, 70)),
    st.tuples(st.just("move"), st.integers(0, 0), st.integers(0, 0)),
    st.tuples(st.just("reset"), st.integers(0, 0), st.integers(0, 0)),
)


@pytest.mark.parametrize("cls", [Thru, Transpose, ChannelFilter, ChannelMap, VelocityCurve, ScaleQuantize, NoteLengthLimit])
@settings(max_examples=60, deadline=None)
@given(actions=st.lists(_action, max_size=40), data=st.data())
def test_every_note_on_gets_exactly_one_note_off(cls, actions, data):
    options = {"channels": [1, 2]} if cls is ChannelFilter else {}
    plugin, ctx = make(cls, **options)
    sent: list[Event] = []
    held: set[tuple[int, int]] = set()
    t = 0
    for action, channel, note in actions:
        t += 7 * MS
        ctx.time = t
        if action == "on":
            if (channel, note) in held and cls in _PURE:
                continue  # these pass duplicate note-ons untouched, by design
            sent += plugin.process([note_on(t, note, 80, channel)], t)
            held.add((channel, note))
        elif action == "off":
            if (channel, note) not in held and cls in _PURE:
                continue
            sent += plugin.process([note_off(t, note, channel)], t)
            held.discard((channel, note))
        elif action == "move" and cls in _LIVE_MOVES:
            name, values = _LIVE_MOVES[cls]
            plugin.set_param(name, data.draw(values))
        elif action == "reset" and cls is not Thru:
            # the engine releases what is sounding (what we sent and did not end), then resets
            sent += _engine_release(sent, ctx, t)
            plugin.reset()
            held.clear()
    for channel, note in sorted(held):
        t += MS
        ctx.time = t
        sent += plugin.process([note_off(t, note, channel)], t)
    assert_paired(sent, ctx)


def _engine_release(sent, cancelled, now):
    """What the engine does on reset: note-offs now for notes sounding at ``now``, and
    scheduled events after ``now`` dropped (they will not be sent)."""
    sounding: Counter = Counter()
    for e in _sent([e for e in sent if e.time <= now], cancelled):
        if e.is_note_on:
            sounding[(e.channel, e.note)] += 1
        elif e.is_note_off:
            sounding[(e.channel, e.note)] -= 1
    future = [e for e in sent if e.time > now]
    for e in future:  # mark as dropped
        sent.remove(e)
    return [note_off(now, note, channel) for (channel, note), n in sorted(sounding.items()) if n > 0]
