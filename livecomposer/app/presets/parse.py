"""From a YAML file to a validated :class:`~.schema.Preset`: every section checked, every
mistake reported at its line with a suggestion where one exists.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ...plugins import registry
from ...kernel.plugin import Container, Plugin
from ...kernel.tempo import SOURCES as CLOCK_SOURCES
from ...ports.base import MIDI_APIS
from .errors import PresetError
from .reader import At, describe, plain, read_yaml, span
from .schema import ACTIONS, CHANNEL_MODE_CCS, CURVES, ClockSpec, Control, DEFAULT_VIRTUAL_PORT, GroupSpec, ID_RE, MAX_COMPENSATION_MS, MONITOR_SYNTHS, MidiSpec, MonitorSpec, PluginSpec, Preset, SUSTAIN_CC


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
    data = read_yaml(text, file)
    root = At(data, "", 1, file)
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
        visual=plain(visual),
        monitor=monitor,
        seed=seed,
        warnings=tuple(warnings),
    )


def _midi(at: At) -> MidiSpec:
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
            node.fail(f"must be a port name (part of it), a list of them, or left out for all inputs; got {describe(node.value)}")
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


def _compensation(at: At, negative_hint: str) -> float:
    """Milliseconds of latency compensation: a number from 0 to MAX_COMPENSATION_MS."""
    value = at.number()
    if value < 0:
        at.fail(f"must be >= 0 ms; got {value} ({negative_hint})")
    if value > MAX_COMPENSATION_MS:
        at.fail(f"must be at most {MAX_COMPENSATION_MS:g} ms; got {value}")
    return value


def _clock(at: At) -> ClockSpec:
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


def _monitor(at: At) -> MonitorSpec:
    if at.value is None:
        return MonitorSpec()
    at.mapping()
    at.only_keys(("enabled", "synth", "soundfont", "device", "gain", "blocksize"))
    device = at.get("device").value
    if device is not None and (isinstance(device, bool) or not isinstance(device, (str, int))):
        at.get("device").fail(f"must be a device name or number; got {describe(device)}")
    soundfont = at.get("soundfont").text() if at.has("soundfont") else None
    return MonitorSpec(
        enabled=at.get("enabled", False).boolean(),
        synth=at.get("synth", "builtin").choice(MONITOR_SYNTHS),
        soundfont=soundfont,
        device=device,
        gain=at.get("gain", 0.3).number(0.0, 4.0),
        blocksize=at.get("blocksize", 256).integer(16, 4096),
    )


def _visual(at: At) -> Any:
    """Kept raw (the visualizer builds its own config from it), but checked here with
    :func:`livecomposer.visual.config.parse_visual` so a mistake names its line."""
    from ...visual.config import parse_visual  # not at import: it loads the visuals' look tables

    if at.value is None:
        return {}
    at.mapping()
    try:
        parse_visual(plain(at.value))
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


def _bank(at: At, path: Path) -> tuple[Path, ...]:
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


def _graph(at: At) -> GroupSpec:
    at.sequence("a list of plugins (they run side by side)")
    if not at.value:
        at.fail("is empty; use [thru] to pass MIDI through")
    ids: dict[str, str] = {"graph": "the top of the graph"}  # the root's id: reserved
    root = GroupSpec("parallel", tuple(_entry(item, ids) for item in at.elements()), "graph", "graph", at.line)
    return root


def _entry(at: At, ids: dict[str, str]) -> PluginSpec | GroupSpec:
    if isinstance(at.value, str):
        cls = _resolve(at, at.value)
        return PluginSpec(at.value, _claim(at, _default_id(at.value, cls), ids, explicit=False), MappingProxyType({}), cls, at.path, at.line)
    if not isinstance(at.value, dict):
        at.fail(f"must be {_ENTRY_HELP}; got {describe(at.value)}")
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
    options = {k: plain(v) for k, v in at.value.items() if k not in ("plugin", "id")}
    for key in options:
        if not isinstance(key, str):
            at.get(key).fail(f"option names are text; got {key!r}")
    lines = {k: v for k, v in at.all_lines().items() if k.split(".")[0].split("[")[0] not in ("plugin", "id")}
    return PluginSpec(name, plugin_id, MappingProxyType(options), cls, at.path, at.line, MappingProxyType(lines))


def _resolve(at: At, name: str) -> type[Plugin]:
    try:
        return registry.resolve(name)
    except registry.RegistryError as exc:
        at.fail(exc.reason)


def _default_id(name: str, cls: type[Plugin]) -> str:
    if ":" in name:
        return cls.name or cls.__name__.lower()
    return name


def _claim(at: At, plugin_id: str, ids: dict[str, str], explicit: bool) -> str:
    if not ID_RE.match(plugin_id):
        at.fail(f"id {plugin_id!r} must be letters, digits, '_' or '-' (no dots: controls write ID.PARAM)")
    if plugin_id in ids:
        if explicit:
            at.fail(f"duplicate id {plugin_id!r} (already used at {ids[plugin_id]})")
        at.fail(f"a second {plugin_id!r} needs its own id: {{plugin: {plugin_id}, id: {plugin_id}2, ...}} (first one at {ids[plugin_id]})")
    ids[plugin_id] = at.path.removesuffix(".id")
    return plugin_id


# -- controls -------------------------------------------------------------------------------


def _controls(at: At, graph: GroupSpec, bank: tuple[Path, ...], warnings: list[str]) -> tuple[Control, ...]:
    if at.value is None:
        return ()
    at.sequence("a list of mappings like {cc: 21, to: ID.PARAM, range: [0, 1]}")
    plugins = {spec.id: spec for spec in graph.walk() if isinstance(spec, PluginSpec)}
    return tuple(_control(item, plugins, bank, warnings) for item in at.elements())


def _control(at: At, plugins: Mapping[str, PluginSpec], bank: tuple[Path, ...], warnings: list[str]) -> Control:
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
                    range_at.fail(f"[{lo:g}, {hi:g}] goes outside the limits of {param} ({span(p.min, p.max)})")
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


def _look_control(at: At, to_at: At, cc: int, channel: int | None, knob: str) -> Control:
    """``to: visual.KNOB``: a knob on the visuals' stage look (no plugin has the id ``visual``)."""
    from ...visual.look import KNOBS, RANGES

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
