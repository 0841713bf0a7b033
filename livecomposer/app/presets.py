"""Presets: YAML files that say which ports, tempo, plugin graph, controls and visuals to use.

A preset is read with ``yaml.safe_load`` semantics (no Python objects, no code), but through
a loader that remembers the line of every key and list item, so that every mistake is
reported as ``FILE:LINE: KEY.PATH: reason`` with a suggestion where one exists::

    presets/duet.yaml:12: graph[1].plugin: unknown plugin 'call_respons' (did you mean 'call_response'?)

The result is a frozen :class:`Preset`.  :func:`build_graph` turns its graph into live
plugin objects; building never loads a model (plugins do that in ``prepare``), so a preset
can be checked completely without opening a port (:func:`check_preset` does both).
:func:`add_control` writes a MIDI-learned mapping back into a file, keeping its comments.

Schema (every section but ``graph`` is optional)::

    name: duet
    description: the machine answers each phrase
    midi: {api: auto, input: "Keystation", output: {virtual: livecomposer}}
                              # output may add latency_ms: 12 (the machine's notes 12 ms early,
                              # for a synth with 12 ms of its own latency) and delay_ms (all later)
    clock: {source: internal, bpm: 96, beats_per_bar: 4, send: false}
    graph:                    # top-level list = parallel; {chain: [...]} / {parallel: [...]} nest
      - thru
      - {plugin: call_response, id: answer, model: folk-melody, channel: 2}
    controls:
      - {cc: 21, to: answer.temperature, range: [0.2, 1.5], curve: linear, channel: 1}
      - {cc: 102, to: panic}    # or next_preset, prev_preset, tap_tempo, learn
      - {program_change: bank}
    bank: [duet.yaml, continuation.yaml]   # relative to this file's folder, never outside it
    visual: {enabled: false}  # checked by livecomposer.visual.config when that exists
    monitor: {enabled: false, synth: builtin}
    seed: 0
"""

from __future__ import annotations

import copy
import difflib
import importlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Collection, Iterable, Mapping, NoReturn, Sequence

import yaml

from ..plugins import registry
from ..kernel.plugin import Chain, Container, OptionError, Parallel, Plugin

MIDI_APIS = ("auto", "alsa", "jack", "coremidi", "windows")
CLOCK_SOURCES = ("internal", "midi", "link")
MONITOR_SYNTHS = ("builtin", "fluidsynth")
CURVES = ("linear", "exp", "log")
ACTIONS = ("panic", "next_preset", "prev_preset", "tap_tempo", "learn")
SUSTAIN_CC = 64
CHANNEL_MODE_CCS = range(120, 128)  # all sound off, reset, local, all notes off, omni, mono, poly
DEFAULT_VIRTUAL_PORT = "livecomposer"
_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_CURVE_K = 3.0  # steepness of the exp and log curves


class PresetError(ValueError):
    """A preset mistake.  ``str()`` is ``FILE:LINE: KEY.PATH: reason`` (parts omitted when unknown)."""

    def __init__(self, file: str, line: int | None, path: str, reason: str) -> None:
        self.file = file
        self.line = line
        self.path = path
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"


# --------------------------------------------------------------------------------------
# Reading YAML with line numbers.


class _Map(dict):
    """A mapping read from YAML that knows its line, and the line of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Seq(list):
    """A sequence read from YAML that knows its line, and the line of each item."""

    line: int = 0
    item_lines: list[int]


class _DuplicateKey(Exception):
    def __init__(self, line: int, key: str) -> None:
        self.line = line
        self.key = key


class _LineLoader(yaml.SafeLoader):
    """SafeLoader (same tags, same values) whose mappings and lists carry line numbers."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode):
    data = _Map()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    seen: set[tuple[str, str]] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            ident = (key_node.tag, key_node.value)
            if ident in seen:
                raise _DuplicateKey(key_node.start_mark.line + 1, key_node.value)
            seen.add(ident)
    data.update(loader.construct_mapping(node))  # (this also resolves merge keys into node.value)
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            data.key_lines.setdefault(key, key_node.start_mark.line + 1)
        except TypeError:  # an unhashable key; construct_mapping has already refused it
            pass


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode):
    data = _Seq()
    data.line = node.start_mark.line + 1
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _read_yaml(text: str, file: str) -> Any:
    loader = _LineLoader(text)
    try:
        return loader.get_single_data()
    except _DuplicateKey as exc:
        raise PresetError(file, exc.line, "", f"duplicate key {exc.key!r}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        raise PresetError(file, line, "", f"not valid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise PresetError(file, None, "", f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


def _plain(value: Any) -> Any:
    """Plain dicts and lists (no line-number subclasses) for what plugins receive."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class _At:
    """A value in the document, with where it is (key path and line) for error messages."""

    value: Any
    path: str
    line: int | None
    file: str

    def fail(self, reason: str) -> NoReturn:
        raise PresetError(self.file, self.line, self.path, reason)

    def _sub(self, key: Any) -> str:
        if isinstance(key, int) and isinstance(self.value, list):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else str(key)

    def has(self, key: str) -> bool:
        return isinstance(self.value, dict) and key in self.value

    def get(self, key: str, default: Any = None) -> "_At":
        """The child under ``key`` (or ``default`` placed at this mapping's line)."""
        if isinstance(self.value, dict) and key in self.value:
            lines = getattr(self.value, "key_lines", {})
            return _At(self.value[key], self._sub(key), lines.get(key, self.line), self.file)
        return _At(default, self._sub(key), self.line, self.file)

    def items(self) -> Iterable[tuple[Any, "_At"]]:
        for key in self.value:
            yield key, self.get(key)

    def elements(self) -> Iterable["_At"]:
        lines = getattr(self.value, "item_lines", [])
        for i, item in enumerate(self.value):
            yield _At(item, self._sub(i), lines[i] if i < len(lines) else self.line, self.file)

    # -- shape checks -------------------------------------------------------------------
    def mapping(self, what: str = "a mapping") -> "_At":
        if not isinstance(self.value, dict):
            self.fail(f"must be {what}; got {_describe(self.value)}")
        return self

    def sequence(self, what: str = "a list") -> "_At":
        if not isinstance(self.value, list):
            self.fail(f"must be {what}; got {_describe(self.value)}")
        return self

    def only_keys(self, known: Collection[str]) -> None:
        """Unknown keys are errors, pointing at the key's own line, with the closest name."""
        for key in self.value:
            if key not in known:
                at = self.get(key)
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
                _At(key, at.path, at.line, self.file).fail(f"unknown key {str(key)!r}{hint}")

    def require(self, key: str) -> "_At":
        if not self.has(key):
            self.fail(f"missing required key {key!r}")
        return self.get(key)

    def text(self, allow_empty: bool = False) -> str:
        if not isinstance(self.value, str) or (not allow_empty and not self.value.strip()):
            self.fail(f"must be text; got {_describe(self.value)}")
        return self.value

    def choice(self, choices: Sequence[str]) -> str:
        if self.value not in choices:
            close = difflib.get_close_matches(str(self.value), list(choices), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(f"must be one of {', '.join(choices)}; got {self.value!r}{hint}")
        return self.value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            self.fail(f"must be true or false; got {_describe(self.value)}")
        return self.value

    def integer(self, low: int | None = None, high: int | None = None) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            self.fail(f"must be a whole number; got {_describe(self.value)}")
        self._bounds(self.value, low, high)
        return self.value

    def number(self, low: float | None = None, high: float | None = None) -> float:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)) or not math.isfinite(self.value):
            self.fail(f"must be a number; got {_describe(self.value)}")
        self._bounds(self.value, low, high)
        return float(self.value)

    def _bounds(self, value: float, low: float | None, high: float | None) -> None:
        if (low is not None and value < low) or (high is not None and value > high):
            self.fail(f"must be {_span(low, high)}; got {value}")

    def all_lines(self, prefix: str = "") -> dict[str, int]:
        """Line of every key path below this node, relative (``answer.length``, ``notes[2]``)."""
        found: dict[str, int] = {}
        if isinstance(self.value, dict):
            for key, child in self.items():
                name = f"{prefix}.{key}" if prefix else str(key)
                if child.line is not None:
                    found[name] = child.line
                found.update(child.all_lines(name))
        elif isinstance(self.value, list):
            for i, child in enumerate(self.elements()):
                name = f"{prefix}[{i}]"
                if child.line is not None:
                    found[name] = child.line
                found.update(child.all_lines(name))
        return found


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _span(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f">= {low}" if low is not None else f"<= {high}"


# --------------------------------------------------------------------------------------
# The validated preset.


@dataclass(frozen=True)
class MidiSpec:
    """Which ports to open.  ``inputs``: name substrings, ``None`` = every input, ``()`` = none.
    ``output_kind`` is ``"virtual"`` (create a port named ``output_name``) or ``"port"``
    (open the existing output whose name contains ``output_name``)."""

    api: str = "auto"
    inputs: tuple[str, ...] | None = None
    output_kind: str = "virtual"
    output_name: str = DEFAULT_VIRTUAL_PORT
    #: Latency compensation for a DAW or synth with its own output latency: the machine's
    #: planned events leave ``latency_ms`` early (never before now); ``delay_ms`` holds
    #: all output, thru included, that much longer.
    latency_ms: float = 0.0
    delay_ms: float = 0.0


#: The most latency compensation a preset may ask for, either way.
MAX_COMPENSATION_MS = 500.0


@dataclass(frozen=True)
class ClockSpec:
    """Tempo source: ``internal`` (bpm), ``midi`` (follow a DAW's clock) or ``link``;
    ``send``: also send MIDI clock out."""

    source: str = "internal"
    bpm: float = 120.0
    beats_per_bar: int = 4
    send: bool = False


@dataclass(frozen=True)
class MonitorSpec:
    """Hear the output locally (``--monitor`` turns it on too)."""

    enabled: bool = False
    synth: str = "builtin"
    soundfont: str | None = None
    device: str | int | None = None
    gain: float = 0.3
    blocksize: int = 256


@dataclass(frozen=True)
class PluginSpec:
    """One plugin of the graph: registry name, unique id, options as written."""

    name: str
    id: str
    options: Mapping[str, Any]
    cls: type[Plugin]
    path: str  # key path, e.g. "graph[1]"
    line: int | None
    option_lines: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupSpec:
    """A ``chain`` or ``parallel`` of child specs."""

    kind: str  # "chain" | "parallel"
    children: tuple["PluginSpec | GroupSpec", ...]
    id: str
    path: str
    line: int | None

    def walk(self) -> Iterable["PluginSpec | GroupSpec"]:
        yield self
        for child in self.children:
            if isinstance(child, GroupSpec):
                yield from child.walk()
            else:
                yield child


@dataclass(frozen=True)
class Control:
    """A MIDI control mapping.

    ``kind`` is ``"cc"`` or ``"program_change"``.  For a CC, ``to`` is ``"plugin_id.param"``
    or one of :data:`ACTIONS`; for a program change it is ``"bank"`` (program N selects the
    Nth preset of the bank, counting from 0).  ``channel`` is 0-15 (written 1-16 in the
    file) or ``None`` for any channel.  ``range`` and ``curve`` apply to parameter targets:
    :meth:`scale` turns a CC value 0-127 into the parameter value.
    """

    kind: str
    to: str
    cc: int | None = None
    channel: int | None = None
    range: tuple[float, float] = (0.0, 1.0)
    curve: str = "linear"
    line: int | None = None
    path: str = ""

    @property
    def is_param(self) -> bool:
        return "." in self.to

    @property
    def plugin_id(self) -> str | None:
        return self.to.split(".", 1)[0] if self.is_param else None

    @property
    def param(self) -> str | None:
        return self.to.split(".", 1)[1] if self.is_param else None

    @property
    def action(self) -> str | None:
        return None if self.is_param else self.to

    def matches(self, channel: int, number: int | None = None) -> bool:
        """Whether a CC (``number``) or program change on ``channel`` (0-15) is this control's."""
        if self.channel is not None and channel != self.channel:
            return False
        return self.kind == "program_change" if number is None else (self.kind == "cc" and self.cc == number)

    def scale(self, value: int) -> float:
        """CC value 0-127 -> parameter value in ``range``, shaped by ``curve``.

        ``linear`` is a straight line; ``exp`` moves slowly at first and fast at the top
        (fine control of small values, like a volume knob); ``log`` is its mirror.  Both
        meet the range's ends exactly at 0 and 127.  A reversed range ([hi, lo]) inverts.
        """
        x = max(0.0, min(1.0, value / 127.0))
        if self.curve == "exp":
            x = math.expm1(_CURVE_K * x) / math.expm1(_CURVE_K)
        elif self.curve == "log":
            x = math.log1p(math.expm1(_CURVE_K) * x) / _CURVE_K
        lo, hi = self.range
        return lo + (hi - lo) * x

    @staticmethod
    def pressed(value: int) -> bool:
        """For action targets: a button press is a value of 64 or more."""
        return value >= 64


@dataclass(frozen=True)
class Preset:
    """A validated preset.  ``graph`` is the spec; :func:`build_graph` makes the plugins."""

    name: str
    path: Path
    graph: GroupSpec
    description: str = ""
    midi: MidiSpec = MidiSpec()
    clock: ClockSpec = ClockSpec()
    controls: tuple[Control, ...] = ()
    bank: tuple[Path, ...] = ()
    visual: dict[str, Any] = field(default_factory=dict)  # raw; livecomposer.visual.config.parse_visual(preset.visual)
    monitor: MonitorSpec = MonitorSpec()
    seed: int = 0
    warnings: tuple[str, ...] = ()

    @property
    def file(self) -> str:
        return str(self.path)

    def bank_path(self, program: int) -> Path | None:
        """The preset program change ``program`` selects: bank entry ``program`` (0-based as on
        the wire; most keyboards display it as program+1), or None when the bank is shorter."""
        return self.bank[program] if 0 <= program < len(self.bank) else None

    def bank_step(self, step: int) -> Path | None:
        """For next_preset (+1) / prev_preset (-1): the neighbour of this file in its bank,
        wrapping around; from a preset that is not in its own bank, next is the first and
        previous the last."""
        if not self.bank:
            return None
        here = self.path.resolve()
        index = self.bank.index(here) if here in self.bank else (-1 if step > 0 else len(self.bank))
        return self.bank[(index + step) % len(self.bank)]

    def plugin_ids(self) -> list[str]:
        return [spec.id for spec in self.graph.walk() if isinstance(spec, PluginSpec)]

    def describe(self) -> str:
        """One line for listings: name, graph, output."""

        def show(spec: PluginSpec | GroupSpec) -> str:
            if isinstance(spec, PluginSpec):
                return spec.id if spec.id == spec.name else f"{spec.id}={spec.name}"
            inner = ", ".join(show(c) for c in spec.children)
            return f"{spec.kind}[{inner}]"

        graph = ", ".join(show(c) for c in self.graph.children)
        out = f"{self.midi.output_kind} {self.midi.output_name!r}"
        if self.midi.latency_ms:
            out += f" ({self.midi.latency_ms:g} ms early)"
        if self.midi.delay_ms:
            out += f" ({self.midi.delay_ms:g} ms late)"
        return f"{self.name}: {graph} -> {out}" + (f"; {len(self.controls)} controls" if self.controls else "")


# --------------------------------------------------------------------------------------
# Validation.

TOP_KEYS = ("name", "description", "midi", "clock", "graph", "controls", "bank", "visual", "monitor", "seed")


def load_preset(path: str | Path) -> Preset:
    """Read and validate a preset file (plugins resolved, ids and control targets checked).

    Raises :class:`PresetError`.  Does not build plugins (see :func:`build_graph`, or
    :func:`check_preset` for both).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PresetError(str(path), None, "", "no such file") from None
    except IsADirectoryError:
        raise PresetError(str(path), None, "", "is a folder, not a preset file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(str(path), None, "", f"cannot read: {exc}") from None
    return loads_preset(text, path)


def loads_preset(text: str, path: str | Path = "<preset>") -> Preset:
    """Validate preset text; ``path`` names it in errors and anchors relative bank paths."""
    path = Path(path)
    file = str(path)
    data = _read_yaml(text, file)
    root = _At(data, "", 1, file)
    if data is None:
        root.fail("the file is empty; a preset needs at least 'graph:'")
    root.mapping("a mapping of preset keys (name, midi, graph, ...)")
    root.only_keys(TOP_KEYS)
    warnings: list[str] = []

    name = root.get("name", path.stem).text() if root.has("name") else path.stem
    description = root.get("description").text(allow_empty=True) if root.has("description") else ""
    midi = _midi(root.get("midi", {}))
    clock = _clock(root.get("clock", {}))
    graph = _graph(root.require("graph"))
    bank = _bank(root.get("bank", []), path)
    controls = _controls(root.get("controls", []), graph, bank, warnings)
    visual = _visual(root.get("visual", {}))
    monitor = _monitor(root.get("monitor", {}))
    seed = root.get("seed", 0).integer(0, 2**63 - 1)
    return Preset(
        name=name,
        path=path,
        graph=graph,
        description=description,
        midi=midi,
        clock=clock,
        controls=controls,
        bank=bank,
        visual=_plain(visual),
        monitor=monitor,
        seed=seed,
        warnings=tuple(warnings),
    )


def _midi(at: _At) -> MidiSpec:
    if at.value is None:
        return MidiSpec()
    at.mapping()
    at.only_keys(("api", "input", "output"))
    api = at.get("api", "auto").choice(MIDI_APIS)
    inputs: tuple[str, ...] | None = None
    if at.has("input") and at.get("input").value is not None:
        node = at.get("input")
        if isinstance(node.value, str):
            inputs = (node.text(),)
        elif isinstance(node.value, list):
            inputs = tuple(item.text() for item in node.elements())
        else:
            node.fail(f"must be a port name (part of it), a list of them, or left out for all inputs; got {_describe(node.value)}")
    kind, name = "virtual", DEFAULT_VIRTUAL_PORT
    latency_ms = delay_ms = 0.0
    if at.has("output"):
        out = at.get("output")
        out.mapping("{virtual: NAME} (a new port others connect to) or {port: NAME} (an existing port)")
        out.only_keys(("virtual", "port", "latency_ms", "delay_ms"))
        kinds = [key for key in ("virtual", "port") if key in out.value]
        if len(kinds) != 1:
            out.fail("give exactly one of virtual: NAME or port: NAME")
        kind = kinds[0]
        name = out.get(kind).text()
        latency_ms = _compensation(out.get("latency_ms", 0.0), "to send all output later, use delay_ms")
        delay_ms = _compensation(out.get("delay_ms", 0.0), "to send the machine's notes earlier, use latency_ms")
    return MidiSpec(api, inputs, kind, name, latency_ms, delay_ms)


def _compensation(at: _At, negative_hint: str) -> float:
    """Milliseconds of latency compensation: a number from 0 to MAX_COMPENSATION_MS."""
    value = at.number()
    if value < 0:
        at.fail(f"must be >= 0 ms; got {value} ({negative_hint})")
    if value > MAX_COMPENSATION_MS:
        at.fail(f"must be at most {MAX_COMPENSATION_MS:g} ms; got {value}")
    return value


def _clock(at: _At) -> ClockSpec:
    if at.value is None:
        return ClockSpec()
    at.mapping()
    at.only_keys(("source", "bpm", "beats_per_bar", "send"))
    return ClockSpec(
        source=at.get("source", "internal").choice(CLOCK_SOURCES),
        bpm=at.get("bpm", 120.0).number(20, 400),
        beats_per_bar=at.get("beats_per_bar", 4).integer(1, 32),
        send=at.get("send", False).boolean(),
    )


def _monitor(at: _At) -> MonitorSpec:
    if at.value is None:
        return MonitorSpec()
    at.mapping()
    at.only_keys(("enabled", "synth", "soundfont", "device", "gain", "blocksize"))
    device = at.get("device").value
    if device is not None and (isinstance(device, bool) or not isinstance(device, (str, int))):
        at.get("device").fail(f"must be a device name or number; got {_describe(device)}")
    soundfont = at.get("soundfont").text() if at.has("soundfont") else None
    return MonitorSpec(
        enabled=at.get("enabled", False).boolean(),
        synth=at.get("synth", "builtin").choice(MONITOR_SYNTHS),
        soundfont=soundfont,
        device=device,
        gain=at.get("gain", 0.3).number(0.0, 4.0),
        blocksize=at.get("blocksize", 256).integer(16, 4096),
    )


def _visual(at: _At) -> Any:
    """Kept raw; checked by ``livecomposer.visual.config.parse_visual`` when that module exists."""
    if at.value is None:
        return {}
    at.mapping()
    try:
        config = importlib.import_module("livecomposer.visual.config")
    except ModuleNotFoundError as exc:
        if exc.name not in ("livecomposer.visual.config",):
            raise
        return at.value
    parse = getattr(config, "parse_visual", None)
    if parse is None:
        return at.value
    try:
        parse(_plain(at.value))
    except (ValueError, TypeError) as exc:
        # parse_visual raises ValueError("key: reason"); point at that key's line
        message = str(exc)
        key, sep, reason = message.partition(": ")
        where = at
        for part in key.split(".") if sep else ():  # "look.trails": the line of trails inside look
            if not where.has(part):
                break
            where = where.get(part)
        if where is not at:
            where.fail(reason)
        at.fail(message)
    return at.value


def _bank(at: _At, path: Path) -> tuple[Path, ...]:
    """Bank entries resolve against this preset's folder and may not leave it."""
    if at.value is None:
        return ()
    at.sequence("a list of preset files, e.g. [duet.yaml, continuation.yaml]")
    folder = path.parent.resolve()
    files = []
    for item in at.elements():
        entry = item.text()
        target = (folder / entry).resolve()  # resolves '..' and symlinks before the check
        if not target.is_relative_to(folder):
            item.fail(f"{entry!r} is outside this preset's folder {str(path.parent) or '.'!r}; bank presets must live beside it")
        if not target.is_file():
            item.fail(f"no preset file {entry!r} in {str(path.parent) or '.'!r}")
        files.append(target)
    return tuple(files)


# -- graph ------------------------------------------------------------------------------

_ENTRY_HELP = "a plugin name, {plugin: NAME, ...options}, {chain: [...]} or {parallel: [...]}"


def _graph(at: _At) -> GroupSpec:
    at.sequence("a list of plugins (they run side by side)")
    if not at.value:
        at.fail("is empty; use [thru] to pass MIDI through")
    ids: dict[str, str] = {"graph": "the top of the graph"}  # the root's id: reserved
    root = GroupSpec("parallel", tuple(_entry(item, ids) for item in at.elements()), "graph", "graph", at.line)
    return root


def _entry(at: _At, ids: dict[str, str]) -> PluginSpec | GroupSpec:
    if isinstance(at.value, str):
        cls = _resolve(at, at.value)
        return PluginSpec(at.value, _claim(at, _default_id(at.value, cls), ids, explicit=False), MappingProxyType({}), cls, at.path, at.line)
    if not isinstance(at.value, dict):
        at.fail(f"must be {_ENTRY_HELP}; got {_describe(at.value)}")
    kinds = [k for k in ("plugin", "chain", "parallel") if k in at.value]
    if len(kinds) > 1:
        at.fail(f"has both {kinds[0]!r} and {kinds[1]!r}; one entry is one plugin or one group")
    if not kinds:
        keys = [str(k) for k in at.value]
        if len(keys) == 1 and keys[0] in registry.names():
            at.fail(f"write {{plugin: {keys[0]}, ...options}} (options beside 'plugin', not nested under the name)")
        close = [c for k in keys for c in difflib.get_close_matches(k, ("plugin", "chain", "parallel"), n=1)]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        at.fail(f"must be {_ENTRY_HELP}; it has no 'plugin', 'chain' or 'parallel' key{hint}")
    kind = kinds[0]
    if kind in ("chain", "parallel"):
        at.only_keys((kind, "id"))
        group_id = _claim(at.get("id"), at.get("id").text(), ids, explicit=True) if at.has("id") else at.path
        members = at.get(kind).sequence(f"a list of plugins to run {'in series' if kind == 'chain' else 'side by side'}")
        if not members.value:
            members.fail("is empty")
        children = tuple(_entry(item, ids) for item in members.elements())
        return GroupSpec(kind, children, group_id, at.path, at.line)
    name_at = at.get("plugin")
    name = name_at.text()
    cls = _resolve(name_at, name)
    if issubclass(cls, Container):
        name_at.fail(f"write {{{name}: [...]}} to group plugins")
    explicit = at.has("id")
    plugin_id = at.get("id").text() if explicit else _default_id(name, cls)
    plugin_id = _claim(at.get("id") if explicit else at, plugin_id, ids, explicit)
    options = {k: _plain(v) for k, v in at.value.items() if k not in ("plugin", "id")}
    for key in options:
        if not isinstance(key, str):
            at.get(key).fail(f"option names are text; got {key!r}")
    lines = {k: v for k, v in at.all_lines().items() if k.split(".")[0].split("[")[0] not in ("plugin", "id")}
    return PluginSpec(name, plugin_id, MappingProxyType(options), cls, at.path, at.line, MappingProxyType(lines))


def _resolve(at: _At, name: str) -> type[Plugin]:
    try:
        return registry.resolve(name)
    except registry.RegistryError as exc:
        at.fail(exc.reason)


def _default_id(name: str, cls: type[Plugin]) -> str:
    if ":" in name:
        return cls.name or cls.__name__.lower()
    return name


def _claim(at: _At, plugin_id: str, ids: dict[str, str], explicit: bool) -> str:
    if not _ID_RE.match(plugin_id):
        at.fail(f"id {plugin_id!r} must be letters, digits, '_' or '-' (no dots: controls write ID.PARAM)")
    if plugin_id in ids:
        if explicit:
            at.fail(f"duplicate id {plugin_id!r} (already used at {ids[plugin_id]})")
        at.fail(f"a second {plugin_id!r} needs its own id: {{plugin: {plugin_id}, id: {plugin_id}2, ...}} (first one at {ids[plugin_id]})")
    ids[plugin_id] = at.path.removesuffix(".id")
    return plugin_id


# -- controls -------------------------------------------------------------------------------


def _controls(at: _At, graph: GroupSpec, bank: tuple[Path, ...], warnings: list[str]) -> tuple[Control, ...]:
    if at.value is None:
        return ()
    at.sequence("a list of mappings like {cc: 21, to: ID.PARAM, range: [0, 1]}")
    plugins = {spec.id: spec for spec in graph.walk() if isinstance(spec, PluginSpec)}
    return tuple(_control(item, plugins, bank, warnings) for item in at.elements())


def _control(at: _At, plugins: Mapping[str, PluginSpec], bank: tuple[Path, ...], warnings: list[str]) -> Control:
    at.mapping("a mapping like {cc: 21, to: ID.PARAM} or {program_change: bank}")
    channel = None
    if at.has("channel"):
        channel = at.get("channel").integer(1, 16) - 1
    if at.has("program_change"):
        at.only_keys(("program_change", "channel"))
        at.get("program_change").choice(("bank",))
        if not bank:
            at.get("program_change").fail("program change selects a preset of the bank, but this preset has no 'bank:' list")
        return Control("program_change", "bank", None, channel, line=at.line, path=at.path)
    if not at.has("cc"):
        keys = [str(k) for k in at.value]
        close = [c for k in keys for c in difflib.get_close_matches(k, ("cc", "program_change"), n=1)]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        at.fail(f"needs 'cc: NUMBER' or 'program_change: bank'{hint}")
    at.only_keys(("cc", "to", "range", "curve", "channel"))
    cc_at = at.get("cc")
    cc = cc_at.integer(0, 127)
    if cc in CHANNEL_MODE_CCS:
        cc_at.fail(f"CC {cc} is a channel mode message (120-127: all notes off, reset...); map another CC")
    if cc == SUSTAIN_CC:
        warnings.append(str(PresetError(at.file, cc_at.line, cc_at.path, "CC 64 is the sustain pedal; mapping it steals the pedal from the synth")))
    to_at = at.require("to")
    to = to_at.text()
    if "." not in to:
        to_at.choice(ACTIONS)
        if to in ("next_preset", "prev_preset") and not bank:
            to_at.fail(f"{to} moves through the bank, but this preset has no 'bank:' list")
        for key in ("range", "curve"):
            if at.has(key):
                at.get(key).fail(f"only for parameter targets (ID.PARAM); {to} is a button")
        return Control("cc", to, cc, channel, line=at.line, path=at.path)
    plugin_id, param = to.split(".", 1)
    spec = plugins.get(plugin_id)
    if spec is None and plugin_id == "visual":
        return _look_control(at, to_at, cc, channel, param)
    if spec is None:
        close = difflib.get_close_matches(plugin_id, list(plugins), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (ids: {', '.join(plugins)})"
        to_at.fail(f"no plugin with id {plugin_id!r}{hint}")
    params = {p.name: p for p in spec.cls.params}
    if param not in params:
        close = difflib.get_close_matches(param, list(params), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else (f" (it has: {', '.join(params)})" if params else " (it has no parameters)")
        to_at.fail(f"plugin {plugin_id!r} ({spec.name}) has no parameter {param!r}{hint}")
    p = params[param]
    if not p.live:
        to_at.fail(f"{to} cannot change while playing (set it in the graph instead)")
    numeric = p.choices is None and isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
    if at.has("range"):
        range_at = at.get("range").sequence("[LOW, HIGH]")
        if len(range_at.value) != 2:
            range_at.fail(f"must be [LOW, HIGH]; got {len(range_at.value)} values")
        lo, hi = (item.number() for item in range_at.elements())
        if numeric:
            for v in (lo, hi):
                if (p.min is not None and v < p.min) or (p.max is not None and v > p.max):
                    range_at.fail(f"[{lo:g}, {hi:g}] goes outside the limits of {param} ({_span(p.min, p.max)})")
        elif not (0 <= lo <= 1 and 0 <= hi <= 1):
            range_at.fail(f"{param} is a choice or switch: the range is a fraction of its sweep, within [0, 1]")
    elif numeric:
        if p.min is None or p.max is None:
            at.fail(f"needs range: [LOW, HIGH] ({param} has no fixed limits)")
        lo, hi = float(p.min), float(p.max)
    else:
        lo, hi = 0.0, 1.0
    curve = at.get("curve", "linear").choice(CURVES)
    return Control("cc", to, cc, channel, (lo, hi), curve, at.line, at.path)


def _look_control(at: _At, to_at: _At, cc: int, channel: int | None, knob: str) -> Control:
    """``to: visual.KNOB``: a knob on the visuals' stage look (no plugin has the id ``visual``)."""
    from ..visual.look import KNOBS, RANGES

    if knob not in KNOBS:
        close = difflib.get_close_matches(knob, KNOBS, n=1)
        to_at.fail(f"the visuals' look has no knob {knob!r}" + (f" (did you mean {close[0]!r}?)" if close else f" (knobs: {', '.join(KNOBS)})"))
    lo, hi = RANGES.get(knob, (0.0, 1.0))  # choices and switches: a fraction of their sweep
    if at.has("range"):
        range_at = at.get("range").sequence("[LOW, HIGH]")
        if len(range_at.value) != 2:
            range_at.fail(f"must be [LOW, HIGH]; got {len(range_at.value)} values")
        values = [item.number() for item in range_at.elements()]
        if any(not lo <= v <= hi for v in values):
            range_at.fail(f"[{values[0]:g}, {values[1]:g}] goes outside the limits of visual.{knob} ({lo:g}..{hi:g})")
        lo, hi = values
    curve = at.get("curve", "linear").choice(CURVES)
    return Control("cc", f"visual.{knob}", cc, channel, (lo, hi), curve, at.line, at.path)


# --------------------------------------------------------------------------------------
# Building.


def build_graph(preset: Preset) -> Plugin:
    """Instantiate the preset's plugins (a Parallel at the top).  Cheap: no models load here.

    Bad options raise :class:`PresetError` at the line of the option.
    """
    return _build(preset.graph, preset.file)


def _build(spec: PluginSpec | GroupSpec, file: str) -> Plugin:
    if isinstance(spec, GroupSpec):
        children = [_build(child, file) for child in spec.children]
        return (Chain if spec.kind == "chain" else Parallel)(children, id=spec.id)
    try:
        return spec.cls(id=spec.id, **copy.deepcopy(dict(spec.options)))
    except OptionError as exc:
        key = str(exc.key)
        line = spec.option_lines.get(key) or spec.option_lines.get(key.split(".")[0]) or spec.line
        raise PresetError(file, line, f"{spec.path}.{key}", exc.reason) from None
    except Exception as exc:  # a plugin's own check that is not an OptionError
        raise PresetError(file, spec.line, spec.path, f"{spec.name} rejected its options: {type(exc).__name__}: {exc}") from None


def check_preset(path: str | Path) -> Preset:
    """Everything short of opening ports: load, validate, build the graph, close it again."""
    preset = load_preset(path)
    graph = build_graph(preset)
    graph.close()
    return preset


# --------------------------------------------------------------------------------------
# Writing a learned control back (MIDI learn).


def add_control(path: str | Path, control: Mapping[str, Any]) -> Preset:
    """Add a control mapping to a preset file, keeping its comments and layout (MIDI learn).

    ``control`` is written as in the file, e.g. ``{"cc": 21, "to": "answer.temperature",
    "range": [0.2, 1.5]}``.  A control already on the same CC and channel is replaced.  The
    new text is validated before the file is replaced (atomically), so a bad mapping never
    damages the preset; raises :class:`PresetError`.  Call it off the engine thread.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    load_preset(path)  # the file must be valid before we touch it
    item = yaml.safe_dump(dict(control), default_flow_style=True, sort_keys=False).strip()
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    controls_node = controls_key = None
    for key_node, value_node in root.value:
        if key_node.value == "controls":
            controls_key, controls_node = key_node, value_node
    channel = control.get("channel")
    if controls_node is None or (isinstance(controls_node, yaml.ScalarNode) and controls_node.value in ("", "~", "null")):
        if controls_node is None:
            new_text = text + ("" if text.endswith("\n") or not text else "\n") + f"controls:\n  - {item}\n"
        elif controls_node.value == "":  # "controls:" with nothing after it
            colon = text.index(":", controls_key.end_mark.index) + 1
            new_text = text[:colon] + f" [{item}]" + text[colon:]
        else:  # controls: ~ / null
            start, end = controls_node.start_mark.index, controls_node.end_mark.index
            new_text = text[:start] + f"[{item}]" + text[end:]
    elif isinstance(controls_node, yaml.SequenceNode):
        same = None
        for node in controls_node.value:
            if isinstance(node, yaml.MappingNode):
                fields = {k.value: v.value for k, v in node.value if isinstance(v, yaml.ScalarNode)}
                if fields.get("cc") == str(control.get("cc")) and fields.get("channel") == (None if channel is None else str(channel)):
                    same = node
        if same is not None:
            new_text = text[: same.start_mark.index] + item + text[_content_end(same) :]
        elif controls_node.flow_style:
            close = controls_node.end_mark.index - 1  # the ']'
            sep = ", " if controls_node.value else ""
            new_text = text[:close] + sep + item + text[close:]
        else:
            last = controls_node.value[-1]
            dash_column = controls_node.value[0].start_mark.column - 2
            line_end = text.find("\n", _content_end(last))
            insert_at = len(text) if line_end < 0 else line_end + 1
            prefix = "" if line_end >= 0 else "\n"
            new_text = text[:insert_at] + prefix + " " * max(0, dash_column) + f"- {item}\n" + text[insert_at:]
    else:
        raise PresetError(str(path), controls_node.start_mark.line + 1, "controls", "must be a list")
    preset = loads_preset(new_text, path)  # raises before anything is written
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new_text, encoding="utf-8")
    tmp.replace(path)
    return preset


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends.  A block collection's end mark lies at the next token
    (past newlines and indentation), so follow its last child instead."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return node.end_mark.index
