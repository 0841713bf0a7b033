"""Plugin names -> plugin classes.

Three sources, in this order:

1. **Built-ins**: :data:`BUILTINS`, a table of ``name -> "module:Class"`` strings imported
   only when asked for, so listing them is cheap and a module that is missing or broken
   spoils only its own names.  Adding a built-in is one line here.
2. **Entry points** in the group ``livecomposer.plugins`` (``pip install`` a package that
   declares ``[project.entry-points."livecomposer.plugins"] my_fx = "my_pkg.fx:MyFx"``).
   A built-in name always wins over an entry point of the same name.
3. **``module:Class``** written directly in a preset (``plugin: my_pkg.fx:MyFx``).
   This imports code named by the preset, exactly as an installed entry point would; a
   preset is a program the user chose to run, not data from the network.

Failures are :class:`RegistryError` with a one-line reason; unknown names suggest close
ones (``unknown plugin 'call_respons' (did you mean 'call_response'?)``).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from dataclasses import dataclass
from ..kernel.plugin import Plugin

ENTRY_POINT_GROUP = "livecomposer.plugins"

BUILTINS: dict[str, str] = {
    # containers (normally written as {chain: [...]} / {parallel: [...]})
    "chain": "livecomposer.kernel.plugin:Chain",
    "parallel": "livecomposer.kernel.plugin:Parallel",
    # MIDI effects
    "thru": "livecomposer.plugins.effects:Thru",
    "transpose": "livecomposer.plugins.effects:Transpose",
    "channel_filter": "livecomposer.plugins.effects:ChannelFilter",
    "channel_map": "livecomposer.plugins.effects:ChannelMap",
    "velocity_curve": "livecomposer.plugins.effects:VelocityCurve",
    "scale_quantize": "livecomposer.plugins.effects:ScaleQuantize",
    "note_length_limit": "livecomposer.plugins.effects:NoteLengthLimit",
    # tempo
    "clock_leader": "livecomposer.plugins.tempo:ClockLeader",
    "grid_quantize": "livecomposer.plugins.tempo:GridQuantize",
    "tap_tempo": "livecomposer.plugins.tempo:TapTempo",
    # playing partners (driven by the model)
    "call_response": "livecomposer.plugins.partners:CallResponse",
    "continuation": "livecomposer.plugins.partners:Continuation",
    "harmonizer": "livecomposer.plugins.partners:Harmonizer",
    "accompanist": "livecomposer.plugins.partners:Accompanist",
}


class RegistryError(LookupError):
    """A plugin name that cannot be turned into a class; ``str()`` is the one-line reason."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class UnknownPlugin(RegistryError):
    """No plugin has this name; ``suggestions`` holds close names (maybe empty)."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" (did you mean {self.suggestions[0]!r}?)" if self.suggestions else ""
        super().__init__(name, f"unknown plugin {name!r}{hint}")


@dataclass(frozen=True)
class PluginInfo:
    """One row of the catalog: where a name comes from, and its class or why it has none."""

    name: str
    source: str  # "built-in" | "entry point (DIST)"
    target: str  # "module:Class"
    cls: type[Plugin] | None
    error: str | None

    @property
    def summary(self) -> str:
        if self.cls is None:
            return ""
        return self.cls.summary or (self.cls.__doc__ or "").strip().split("\n")[0]


_cache: dict[str, type[Plugin]] = {}


def clear_cache() -> None:
    """Forget resolved classes and entry points (tests; after installing a plugin package)."""
    _cache.clear()


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Entry points of our group by name; the first of duplicates wins, built-ins shadow them."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in BUILTINS:
            found.setdefault(ep.name, ep)
    return found


def names() -> list[str]:
    """Every name a preset may use (built-ins, then entry points), without importing any."""
    return list(BUILTINS) + sorted(_entry_points())


def _load_target(name: str, target: str) -> type[Plugin]:
    """Import ``module:Class`` and check it is a Plugin subclass."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(name, f"{target!r} is not of the form 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise RegistryError(name, f"plugin {name!r} is not available: module {module_name!r} not found") from None
        raise RegistryError(name, f"plugin {name!r} is not available: importing {module_name!r} failed: {exc}") from None
    except Exception as exc:  # a broken plugin module must not take the host down
        raise RegistryError(name, f"plugin {name!r} is not available: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise RegistryError(name, f"plugin {name!r} is not available: {module_name!r} has no {attr!r}")
    if not (isinstance(obj, type) and issubclass(obj, Plugin)):
        raise RegistryError(name, f"plugin {name!r}: {target} is not a livecomposer Plugin subclass")
    return obj


def resolve(name: str) -> type[Plugin]:
    """The plugin class for a built-in name, an entry-point name or ``module:Class``."""
    cached = _cache.get(name)
    if cached is not None:
        return cached
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(str(name), f"a plugin name must be text; got {name!r}")
    if name in BUILTINS:
        cls = _load_target(name, BUILTINS[name])
    elif ":" in name:
        cls = _load_target(name, name)
    else:
        entry_points = _entry_points()
        ep = entry_points.get(name)
        if ep is None:
            raise UnknownPlugin(name, list(BUILTINS) + sorted(entry_points))
        cls = _load_target(name, ep.value)
    _cache[name] = cls
    return cls


def catalog() -> list[PluginInfo]:
    """Every known name with its class, or the reason it cannot be loaded (never raises)."""
    rows: list[PluginInfo] = []
    entries = [(n, "built-in", t) for n, t in BUILTINS.items()]
    entries += [(n, f"entry point ({_dist_name(ep)})", ep.value) for n, ep in sorted(_entry_points().items())]
    for name, source, target in entries:
        try:
            rows.append(PluginInfo(name, source, target, resolve(name), None))
        except RegistryError as exc:
            rows.append(PluginInfo(name, source, target, None, exc.reason))
    return rows


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "installed package"


def available() -> list[tuple[str, str]]:
    """(name, one-line summary) of every plugin that loads."""
    return [(row.name, row.summary) for row in catalog() if row.cls is not None]
