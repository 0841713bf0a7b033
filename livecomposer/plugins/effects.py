"""Built-in MIDI effects: thru, transpose, channel filter and map, velocity curve, scale
quantize and note-length limit.

The rule every effect here keeps: each note-on it sends gets exactly one matching
note-off, even when a parameter moves while the note is held (a transposed note must be
released at the pitch it started on, not the new one), when the same key is struck twice
without a release, or when two keys land on the same output note.  :class:`NoteRouter`
does that bookkeeping for all of them.  Events that are not notes pass through unchanged
(channel effects also move or filter channel messages such as CCs).

Channels in parameters are numbered 1-16, as on a keyboard's display; inside, events use
0-15.  Nothing here loads files or models, so building these plugins is always cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence, cast

from ..kernel.events import CHANNEL_KINDS, NS_PER_MS, Event, Kind, note_off
from ..kernel.theory import PITCH_CLASS_NAMES, SCALES, TheoryError, normalize_scale, quantize, scale_pitch_classes, split_key
from ..kernel.plugin import OptionError, Param, Plugin, PluginContext

InKey = tuple[int, int, int]  # (voice, channel, note) of the input note
OutKey = tuple[int, int]  # (channel, note) of the note we sent


def _as(event: Event, kind: Kind, channel: int, note: int, velocity: int | None = None) -> Event:
    """``event`` with another kind/channel/note; direct construction is about twice as fast
    as ``dataclasses.replace``, and this runs for every note on the engine thread."""
    return Event(kind, event.time, channel, note, event.velocity if velocity is None else velocity, event.control, event.value, event.voice, event.tag)


class NoteRouter:
    """Remembers which output note each held input note became, so its note-off matches.

    Output notes are reference-counted: when a second held key lands on a note that is
    already sounding, nothing more is sent, and only the last release sends the note-off.
    (Re-striking it, off then on, would go wrong when both keys arrive in one tick: the
    scheduler puts simultaneous note-offs before note-ons.)  Every note-on that leaves
    therefore has exactly one note-off, and no note is switched on twice.
    """

    def __init__(self) -> None:
        self.held: dict[InKey, OutKey] = {}
        self.sounding: dict[OutKey, int] = {}
        self.stray_offs = 0  # note-offs with no held note-on: dropped (counted for tests and status)

    @staticmethod
    def key(event: Event) -> InKey:
        return (event.voice, event.channel, event.note)

    def note_on(self, event: Event, out: OutKey | None) -> list[Event]:
        """Start ``event`` as output note ``out`` (None: swallow it, and later its note-off)."""
        sent: list[Event] = []
        k = self.key(event)
        if k in self.held:  # struck again without a release: end what the first strike started
            sent += self._release(k, _as(event, Kind.NOTE_OFF, event.channel, event.note, 0))
        if out is None:
            return sent
        count = self.sounding.get(out, 0)
        if not count:  # if another held key already sounds this note, it just sounds on
            sent.append(_as(event, Kind.NOTE_ON, out[0], out[1]))
        self.held[k] = out
        self.sounding[out] = count + 1
        return sent

    def note_off(self, event: Event) -> list[Event]:
        """The note-off for whatever this input note started (nothing if it started nothing)."""
        k = self.key(event)
        if k not in self.held:
            self.stray_offs += 1
            return []
        return self._release(k, event)

    def _release(self, k: InKey, event: Event) -> list[Event]:
        out = self.held.pop(k)
        count = self.sounding[out] - 1
        if count:
            self.sounding[out] = count
            return []
        del self.sounding[out]
        return [_as(event, Kind.NOTE_OFF, out[0], out[1])]

    def lookup(self, event: Event) -> OutKey | None:
        """Where a held input note went (for poly aftertouch), or None."""
        return self.held.get(self.key(event))

    def clear(self) -> None:
        self.held.clear()
        self.sounding.clear()


class MappingEffect(Plugin):
    """Base for effects that turn each note into at most one other note.

    Subclasses implement :meth:`map_note` (and optionally :meth:`map_other`); this class
    routes note-offs and poly aftertouch to where their note-on went.
    """

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self.router = NoteRouter()

    def map_note(self, event: Event) -> OutKey | None:
        """Output (channel, note) for a note-on under the current settings; None drops it."""
        return (event.channel, event.note)

    def map_other(self, event: Event) -> Event | None:
        """Non-note events: unchanged by default; None drops it."""
        return event

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        out: list[Event] = []
        for event in events:
            kind = event.kind
            if kind is Kind.NOTE_ON:
                out += self.router.note_on(event, self.map_note(event))
            elif kind is Kind.NOTE_OFF:
                out += self.router.note_off(event)
            elif kind is Kind.POLY_AFTERTOUCH:
                target = self.router.lookup(event)
                if target is not None:
                    out.append(_as(event, event.kind, target[0], target[1]))
            else:
                mapped = self.map_other(event)
                if mapped is not None:
                    out.append(mapped)
        return out

    def reset(self) -> None:
        self.router.clear()


# --------------------------------------------------------------------------------------
# Parameter types the base Param cannot express (lists and maps of channels, keys).


class ChannelsParam(Param[tuple[int, ...]]):
    """A channel number 1-16 or a list of them; stored as a tuple of 0-15 channels."""

    def __init__(self, name: str = "", default: int | Sequence[int] | None = None, **rest: Any) -> None:
        super().__init__(name, cast(Any, default), **rest)  # the default is what a preset would say

    def coerce(self, value: Any) -> tuple[int, ...]:
        if value is None:
            return ()
        items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"must be a channel 1-16 or a list of them; got {value!r}")
        result = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 16:
                raise ValueError(f"channels are numbered 1-16; got {item!r}")
            result.append(item - 1)
        return tuple(sorted(set(result)))

    def check(self, value: Any) -> tuple[int, ...]:
        """Assigned to the attribute: channels 0-15, as stored."""
        if not isinstance(value, (list, tuple)) or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 15 for c in value):
            raise ValueError(f"must be a tuple of channels 0-15 (as stored; presets say 1-16); got {value!r}")
        return tuple(sorted(set(value)))

    def clamp(self, value: float) -> Any:
        raise ValueError(f"{self.name} cannot be moved by a CC")


class ChannelMapParam(Param[dict[int, int]]):
    """``{from: to}`` with channels 1-16; stored as a dict of 0-15 channels."""

    def __init__(self, name: str = "", default: Mapping[int, int] | None = None, **rest: Any) -> None:
        super().__init__(name, cast(Any, default), **rest)  # the default is what a preset would say

    def coerce(self, value: Any) -> dict[int, int]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a map like {{1: 2, 3: 4}} (channels 1-16); got {value!r}")
        result = {}
        for src, dst in value.items():
            for ch in (src, dst):
                if isinstance(ch, bool) or not isinstance(ch, int) or not 1 <= ch <= 16:
                    raise ValueError(f"channels are numbered 1-16; got {ch!r}")
            result[src - 1] = dst - 1
        return result

    def check(self, value: Any) -> dict[int, int]:
        """Assigned to the attribute: ``{from: to}`` with channels 0-15, as stored."""
        if not isinstance(value, Mapping) or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 15 for c in (*value, *value.values())):
            raise ValueError(f"must be a map of channels 0-15 (as stored; presets say 1-16); got {value!r}")
        return dict(value)

    def clamp(self, value: float) -> Any:
        raise ValueError(f"{self.name} cannot be moved by a CC")


TONICS = PITCH_CLASS_NAMES  # what a CC sweeping a key steps through


class KeyParam(Param[str]):
    """A key such as ``D`` or ``D minor``.  A CC sweeps the twelve tonics."""

    def coerce(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"must be a key like 'D' or 'D minor'; got {value!r}")
        try:
            split_key(value)
        except TheoryError as exc:
            raise ValueError(str(exc)) from None
        return value

    def clamp(self, value: float) -> Any:
        index = int(round(max(0.0, min(1.0, float(value))) * 11))
        return TONICS[index]


def _split_key_option(plugin: ScaleQuantize, options: Mapping[str, Any]) -> None:
    """``key: D minor`` names the scale too: keep the tonic in ``key`` and the scale in ``scale``."""
    tonic, scale = split_key(plugin.key)
    if scale is not None:
        if "scale" in options and options["scale"] != scale:
            raise OptionError("scale", f"key {plugin.key!r} already says {scale}; drop one of them")
        plugin.scale = scale
    plugin.key = TONICS[tonic]


# --------------------------------------------------------------------------------------
# The effects.


class Thru(Plugin):
    """Everything in goes out unchanged: the default preset's whole graph."""

    name = "thru"
    summary = "pass everything through unchanged"


class Transpose(MappingEffect):
    """Shift notes by semitones; a held note is released at the pitch it started on."""

    name = "transpose"
    summary = "shift notes up or down by semitones (note-offs follow the note-on even if the amount moves)"
    semitones = Param(default=0, min=-48, max=48, doc="how far to shift; negative is down")

    def map_note(self, event: Event) -> OutKey | None:
        note = event.note + self.semitones
        return (event.channel, note) if 0 <= note <= 127 else None


class ChannelFilter(MappingEffect):
    """Let only some channels through (notes, CCs, bends...); system messages always pass."""

    name = "channel_filter"
    summary = "pass only the listed MIDI channels (1-16), or drop the excluded ones"
    channels = ChannelsParam(default=None, doc="channels to pass (empty: all)", live=False)
    exclude = ChannelsParam(default=None, doc="channels to drop", live=False)

    def _passes(self, channel: int) -> bool:
        allowed = self.channels
        return (not allowed or channel in allowed) and channel not in self.exclude

    def map_note(self, event: Event) -> OutKey | None:
        return (event.channel, event.note) if self._passes(event.channel) else None

    def map_other(self, event: Event) -> Event | None:
        if event.kind in CHANNEL_KINDS and not self._passes(event.channel):
            return None
        return event


class ChannelMap(MappingEffect):
    """Move channel messages to other channels, e.g. split a keyboard's output to two synths."""

    name = "channel_map"
    summary = "move MIDI channels: map {from: to} (1-16), or send everything to one channel"
    map = ChannelMapParam(default=None, doc="{from: to}, channels 1-16", live=False)
    to = Param(default=0, min=0, max=16, doc="send every channel here (1-16); 0: use map")

    def _target(self, channel: int) -> int:
        if self.to:
            return self.to - 1
        return self.map.get(channel, channel)

    def map_note(self, event: Event) -> OutKey | None:
        return (self._target(event.channel), event.note)

    def map_other(self, event: Event) -> Event | None:
        if event.kind in CHANNEL_KINDS:
            return _as(event, event.kind, self._target(event.channel), event.note)
        return event


class VelocityCurve(Plugin):
    """Reshape note-on velocities: a gamma curve into [min, max], or one fixed velocity.

    With the defaults (gamma 1, min 1, max 127) it changes nothing.  gamma < 1 makes soft
    playing louder, gamma > 1 makes it softer.  Note-offs are untouched (pitch and channel
    never change, so pairing is never at risk).
    """

    name = "velocity_curve"
    summary = "reshape velocities: gamma curve into a min-max range, or a fixed velocity"
    gamma = Param(default=1.0, min=0.1, max=10.0, doc="curve exponent: <1 louder, >1 softer")
    min = Param(default=1, min=1, max=127, doc="velocity for the softest touch")
    max = Param(default=127, min=1, max=127, doc="velocity for the hardest touch")
    fixed = Param(default=0, min=0, max=127, doc="if not 0, every note gets this velocity")

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self._table = self._make_table()

    def _make_table(self) -> tuple[int, ...]:
        """All 128 answers at once, so a note costs one lookup (recomputed when a param moves)."""
        table = [0]
        for velocity in range(1, 128):
            if self.fixed:
                table.append(self.fixed)
                continue
            x = (velocity - 1) / 126.0
            lo, hi = self.min, self.max
            table.append(max(1, min(127, int(round(lo + (hi - lo) * x**self.gamma)))))
        return tuple(table)

    def param_changed(self, name: str) -> None:
        self._table = self._make_table()

    def curve(self, velocity: int) -> int:
        return self._table[max(1, min(127, velocity))]

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        table = self._table
        return [_as(e, e.kind, e.channel, e.note, table[max(1, min(127, e.velocity))]) if e.kind is Kind.NOTE_ON else e for e in events]


class ScaleQuantize(MappingEffect):
    """Snap notes to a key's scale, so every key on the keyboard plays in key."""

    name = "scale_quantize"
    summary = "snap notes to the nearest tone of a key and scale (e.g. key: D minor)"
    key = KeyParam(default="C", doc="tonic, or tonic and scale: 'D', 'D minor', 'F# dorian'")
    scale = Param(default="major", choices=tuple(SCALES), doc="scale on the tonic")
    snap = Param(default="nearest", choices=("nearest", "down", "up", "drop"), doc="where out-of-scale notes go; drop: silence them")

    def __init__(self, id: str | None = None, **options: Any) -> None:
        if "scale" in options and isinstance(options["scale"], str):
            try:
                options["scale"] = normalize_scale(options["scale"])
            except TheoryError as exc:
                raise OptionError("scale", str(exc)) from None
        super().__init__(id=id, **options)
        try:
            _split_key_option(self, options)
        except TheoryError as exc:
            raise OptionError("key", str(exc)) from None
        self._update()

    def _update(self) -> None:
        """Where each of the 128 notes goes (None: dropped), so a note costs one lookup."""
        self.pitch_classes = scale_pitch_classes(self.key, self.scale)
        pcs, snap = self.pitch_classes, self.snap
        if snap == "drop":
            self._table = tuple(n if n % 12 in pcs else None for n in range(128))
        else:
            self._table = tuple(quantize(n, pcs, snap) for n in range(128))

    def param_changed(self, name: str) -> None:
        if name == "key":
            _split_key_option(self, {})
        self._update()

    def map_note(self, event: Event) -> OutKey | None:
        note = self._table[event.note]
        return None if note is None else (event.channel, note)


@dataclass
class _Limited:
    started: int  # time of the note-on
    deadline: int  # when our early note-off is due
    tag: int  # tag of that scheduled note-off, to cancel it if the key comes up first


class NoteLengthLimit(Plugin):
    """Cap how long a note sounds: stuck keys, drones from a sustain-happy generator.

    Each note-on is sent at once together with a note-off scheduled ``max_ms`` later
    (tagged on its own).  If the real note-off comes first, that scheduled one is cancelled
    and the real one passes; if it comes later, it is swallowed (the note already ended).
    A re-strike of a held key ends the first strike now.  Changing ``max_ms`` affects notes
    that start afterwards; held notes keep the limit they started with.
    """

    name = "note_length_limit"
    summary = "end notes that are held longer than max_ms with an early note-off"
    max_ms = Param(default=1000.0, min=1.0, max=600_000.0, doc="longest a note may sound, in milliseconds")

    def __init__(self, id: str | None = None, **options: Any) -> None:
        super().__init__(id=id, **options)
        self.held: dict[InKey, _Limited] = {}
        self.stray_offs = 0

    def _context(self) -> PluginContext:
        if self.ctx is None:  # used without an engine (a unit test that skipped prepare)
            self.ctx = PluginContext()
        return self.ctx

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if event.kind is Kind.NOTE_ON:
                k = NoteRouter.key(event)
                previous = self.held.pop(k, None)
                if previous is not None and event.time < previous.deadline:
                    self._context().cancel(previous.tag)
                    out.append(note_off(event.time, event.note, event.channel, event.voice, event.tag))
                tag = self._context().new_tag()
                deadline = event.time + int(self.max_ms * NS_PER_MS)
                self.held[k] = _Limited(event.time, deadline, tag)
                out.append(event)
                out.append(note_off(deadline, event.note, event.channel, event.voice, tag))
            elif event.kind is Kind.NOTE_OFF:
                held = self.held.pop(NoteRouter.key(event), None)
                if held is None:
                    self.stray_offs += 1
                elif event.time < held.deadline:
                    self._context().cancel(held.tag)
                    out.append(event)
                # else: our scheduled note-off already ended it; swallow this one
            else:
                out.append(event)
        return out

    def reset(self) -> None:
        # The engine released every note; make sure none of our scheduled note-offs fires
        # later into a note someone plays after the reset.
        if self.ctx is not None:
            for held in self.held.values():
                self.ctx.cancel(held.tag)
        self.held.clear()


BUILTIN_EFFECTS: tuple[type[Plugin], ...] = (Thru, Transpose, ChannelFilter, ChannelMap, VelocityCurve, ScaleQuantize, NoteLengthLimit)
