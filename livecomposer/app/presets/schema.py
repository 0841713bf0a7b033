"""The validated preset: frozen dataclasses, and the names each section accepts."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ...kernel.plugin import Plugin


MONITOR_SYNTHS = ("builtin", "fluidsynth")
CURVES = ("linear", "exp", "log")
ACTIONS = ("panic", "next_preset", "prev_preset", "tap_tempo", "learn")
SUSTAIN_CC = 64
CHANNEL_MODE_CCS = range(120, 128)  # all sound off, reset, local, all notes off, omni, mono, poly
DEFAULT_VIRTUAL_PORT = "livecomposer"
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_CURVE_K = 3.0  # steepness of the exp and log curves


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
