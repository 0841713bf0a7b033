"""The plugin interface, and the two containers (chain, parallel) that are plugins too.

A plugin sees the new input events of one engine tick and returns the events it wants
sent, each at its own (possibly future) time: the engine's scheduler sends them when due.
Plugins run only on the engine thread, so they need no locks; anything slow (the model)
goes through :meth:`PluginContext.submit`, which runs it on the inference worker and hands
the result back on the engine thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Generic, Iterable, Self, Sequence, TypeVar, cast, overload

import numpy as np

from .events import Event, sorted_events

if TYPE_CHECKING:
    from .tempo import Tempo

log = logging.getLogger(__name__)


T = TypeVar("T")
_MISSING: Any = object()


@dataclass(frozen=True, init=False)
class Param(Generic[T]):
    """A plugin setting: validated from presets, and (if ``live``) movable by a CC while playing.

    Declared as a class attribute of the plugin, it is also the attribute itself::

        class Echo(Plugin):
            delay_ms = Param(default=100.0, min=1.0, max=5000.0, doc="how late the echo comes")

    so ``self.delay_ms`` is a ``float`` to type checkers, the class collects its ``Param``
    attributes into ``params`` (base classes' first; a subclass may redeclare one, e.g.
    :meth:`with_default`, and it keeps its place), and an assignment such as
    ``plugin.delay_ms = 9000`` is checked like a preset value, naming the plugin and the
    parameter when it is refused.  The value lives in the instance ``__dict__`` under the
    parameter's name and the class defines no ``__get__`` at run time (only for type
    checkers), so a read in :meth:`Plugin.process` is one dictionary look-up, not a Python
    call: ~16 ns against ~80-140 ns with a ``__get__`` and ~2 ns for a plain attribute of an
    instance without a ``__dict__`` (CPython 3.11; a non-data descriptor, the other way to
    keep reads in the ``__dict__``, costs the same and could not check assignments).

    The older spelling, ``params = (Param("delay_ms", 100.0, 1.0, 5000.0),)``, still works
    (untyped): the class makes each of them its attribute.
    """

    name: str
    default: T
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    doc: str = ""
    live: bool = True

    @overload
    def __init__(self, *, default: T, min: float | None = None, max: float | None = None,
                 choices: tuple[Any, ...] | None = None, doc: str = "", live: bool = True) -> None: ...

    @overload
    def __init__(self, name: str, default: T, min: float | None = None, max: float | None = None,
                 choices: tuple[Any, ...] | None = None, doc: str = "", live: bool = True) -> None: ...

    def __init__(self, name: str = "", default: Any = _MISSING, min: float | None = None, max: float | None = None,
                 choices: tuple[Any, ...] | None = None, doc: str = "", live: bool = True) -> None:
        if default is _MISSING:
            raise TypeError("Param needs a default")
        for key, value in (("name", name), ("default", default), ("min", min), ("max", max),
                           ("choices", choices), ("doc", doc), ("live", live)):
            object.__setattr__(self, key, value)

    # -- the attribute ------------------------------------------------------------------------
    def __set_name__(self, owner: type, name: str) -> None:
        if not self.name:
            object.__setattr__(self, "name", name)
        elif self.name != name:
            raise TypeError(f"{owner.__name__}.{name} is declared as parameter {self.name!r}")

    if TYPE_CHECKING:
        @overload
        def __get__(self, obj: None, owner: type | None = None) -> Self: ...

        @overload
        def __get__(self, obj: object, owner: type | None = None) -> T: ...

        def __get__(self, obj: object | None, owner: type | None = None) -> Self | T: ...

    def __set__(self, obj: Any, value: T) -> None:
        """``plugin.name = value``: checked (and converted) by :meth:`check`."""
        try:
            value = self.check(value)
        except ValueError as exc:
            raise ParamError(getattr(obj, "id", type(obj).__name__), self.name, str(exc)) from None
        obj.__dict__[self.name] = value

    def with_default(self, default: T) -> Self:
        """This parameter with another default (a subclass that starts elsewhere)."""
        return replace(self, default=default)

    # -- values ------------------------------------------------------------------------------
    def coerce(self, value: Any) -> T:
        """Check and convert a value; raises ``ValueError`` with a readable reason."""
        if self.choices is not None:
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(map(str, self.choices))}; got {value!r}")
            return value
        kind: Any = type(self.default)
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false; got {value!r}")
            return cast(T, value)
        if kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"must be a number; got {value!r}")
            if kind is int and float(value) != int(value):
                raise ValueError(f"must be a whole number; got {value!r}")
            value = kind(value)
            if self.min is not None and value < self.min:
                raise ValueError(f"must be >= {self.min}; got {value}")
            if self.max is not None and value > self.max:
                raise ValueError(f"must be <= {self.max}; got {value}")
            return value
        if self.default is not None and not isinstance(value, kind):
            raise ValueError(f"must be a {kind.__name__}; got {value!r}")
        return value

    def check(self, value: Any) -> T:
        """A value assigned to the attribute: in the form :meth:`coerce` returns (which is
        what a preset says, except for parameters that convert, like channel lists)."""
        return self.coerce(value)

    def clamp(self, value: float) -> Any:
        """For CC mappings: bring a number into range instead of refusing it."""
        if self.choices is not None:
            index = int(round(max(0.0, min(1.0, float(value))) * (len(self.choices) - 1)))
            return self.choices[index]
        if isinstance(self.default, bool):
            return bool(value)
        if self.min is not None:
            value = max(self.min, value)
        if self.max is not None:
            value = min(self.max, value)
        if isinstance(self.default, int):
            return int(round(value))  # a knob's zero covers as much travel as every other step
        return float(value) if isinstance(self.default, float) else value


class PluginContext:
    """What the engine offers a plugin.  The engine provides the real implementation;
    this base is also a usable stand-alone context for unit tests of a single plugin
    (synchronous submit, no scheduler)."""

    def __init__(self, now: Callable[[], int] = lambda: 0, seed: int = 0) -> None:
        self.now = now
        self.rng = np.random.default_rng(seed)
        self.tempo: Tempo | None = None  # set by the engine
        self._next_tag = 0
        self._next_voice = 0
        self.cancelled: list[int] = []

    def new_tag(self) -> int:
        """A fresh tag for a plan of scheduled events, so it can be cancelled as a whole."""
        self._next_tag += 1
        return self._next_tag

    def new_voice(self) -> int:
        """A machine voice number (>= 1) for a generating plugin's events."""
        self._next_voice += 1
        return self._next_voice

    def cancel(self, tag: int) -> None:
        """Drop scheduled events with this tag; notes of it already sounding get note-offs now."""
        self.cancelled.append(tag)

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """Run ``work`` off the engine thread and call ``done(result)`` back on it.

        On the manual clock (tests, renders) this runs synchronously, for determinism.
        """
        done(work())

    def load_model(self, name: str):
        """The named shipped model (or a checkpoint path) as an ``IncrementalModel``."""
        from ..model import load_model

        return load_model(name)

    def publish(self, key: str, value: Any) -> None:
        """Share a value with observers (visualizer features, status screen); never blocks."""


class Plugin:
    """Base class.  Subclasses set ``name``, ``summary``, declare their parameters as
    :class:`Param` class attributes and override :meth:`process`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    params: ClassVar[tuple[Param[Any], ...]] = ()  # every parameter, in declaration order (set per class)
    _param_index: ClassVar[dict[str, Param[Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Collect the class's parameters into ``params`` (presets, ``livecomposer plugins
        NAME`` and CC mappings read them there), or, for a class that lists ``params``
        itself (the older spelling), make each of them its attribute."""
        super().__init_subclass__(**kwargs)
        listed = cls.__dict__.get("params")
        if listed is not None:
            for spec in listed:
                if not spec.name:
                    raise TypeError(f"{cls.__name__}.params: a Param listed in params needs its name")
                if cls.__dict__.get(spec.name) is not spec:
                    setattr(cls, spec.name, spec)
        else:
            found: dict[str, Param[Any]] = {}
            for klass in reversed(cls.__mro__):
                for key, value in vars(klass).items():
                    if isinstance(value, Param):
                        found[key] = value  # a redeclared one keeps its base's place
            cls.params = tuple(found.values())
        cls._param_index = {spec.name: spec for spec in cls.params}

    def __init__(self, id: str | None = None, **options: Any) -> None:
        self.id = id or self.name or type(self).__name__.lower()
        self.ctx: PluginContext | None = None
        self.voice = 0
        self.failed = False
        specs = self._param_index
        unknown = set(options) - set(specs)
        if unknown:
            raise UnknownOption(sorted(unknown)[0], sorted(specs))
        if not self.params:
            return  # (``__dict__`` untouched: see below)
        # Writing through ``__dict__`` (as every Param does) turns the instance's inline
        # attribute values into a dict: CPython 3.11 then reads any attribute of it in ~17 ns
        # instead of ~2 ns.  A plugin without parameters (chain, parallel, thru) keeps them.
        values = self.__dict__
        for spec in self.params:
            value = options.get(spec.name, spec.default)
            try:
                values[spec.name] = spec.coerce(value)
            except ValueError as exc:
                raise OptionError(spec.name, str(exc)) from None

    # -- life cycle -------------------------------------------------------------------
    def prepare(self, ctx: PluginContext) -> None:
        """Called once before the first :meth:`process`, on the engine thread (or just before
        a preset swap, off it): load what you need here, never in :meth:`process`."""
        self.ctx = ctx

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        """Return the events to send for this tick's new input.  Default: pass through."""
        return list(events)

    def next_wakeup(self) -> int | None:
        """When to call :meth:`process` again even with no input (generators); None: only on input."""
        return None

    def reset(self) -> None:
        """Forget musical state (held notes, plans): the engine has released every note."""

    def close(self) -> None:
        """Free resources; called when the preset is unloaded."""

    # -- parameters -------------------------------------------------------------------
    @classmethod
    def param_spec(cls, name: str) -> Param[Any]:
        spec = cls._param_index.get(name)
        if spec is None:
            raise UnknownOption(name, [p.name for p in cls.params])
        return spec

    def set_param(self, name: str, value: Any) -> None:
        """Change a setting while playing (from a CC mapping, OSC or the status screen): a
        number is brought into range (a knob's sweep), anything else must be valid."""
        spec = self.param_spec(name)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        self.__dict__[name] = spec.clamp(value) if numeric else spec.coerce(value)
        self.param_changed(name)

    def param_changed(self, name: str) -> None:
        """Hook for plugins that derive state from a parameter."""

    # -- tree -------------------------------------------------------------------------
    def children(self) -> Sequence["Plugin"]:
        return ()

    def walk(self) -> Iterable["Plugin"]:
        yield self
        for child in self.children():
            yield from child.walk()

    def find(self, plugin_id: str) -> "Plugin | None":
        for plugin in self.walk():
            if plugin.id == plugin_id:
                return plugin
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


class OptionError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class UnknownOption(OptionError):
    def __init__(self, key: str, known: Sequence[str]) -> None:
        import difflib

        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else (f" (known: {', '.join(known)})" if known else " (it takes no options)")
        super().__init__(key, f"unknown option {key!r}{hint}")



class ParamError(OptionError):
    """A built plugin's parameter set to a value it refuses (``plugin.low = 200``)."""

    def __init__(self, plugin_id: str, key: str, reason: str) -> None:
        ValueError.__init__(self, f"plugin {plugin_id!r}: {key}: {reason}")
        self.plugin_id = plugin_id
        self.key = key
        self.reason = reason


FailureHandler = Callable[[Plugin, BaseException], None]


def _default_failure(plugin: Plugin, exc: BaseException) -> None:
    log.error("plugin %s raised %r: bypassed from now on", plugin.id, exc, exc_info=exc)


class Container(Plugin):
    """Holds child plugins; a child that raises is bypassed (marked ``failed``) and reported once."""

    def __init__(self, plugins: Sequence[Plugin], id: str | None = None) -> None:
        super().__init__(id=id)
        self.plugins = list(plugins)
        self.on_failure: FailureHandler = _default_failure

    def children(self) -> Sequence[Plugin]:
        return self.plugins

    def prepare(self, ctx: PluginContext) -> None:
        super().prepare(ctx)
        for plugin in self.plugins:
            if isinstance(plugin, Container):
                plugin.on_failure = self.on_failure
            plugin.prepare(ctx)

    def _run(self, plugin: Plugin, events: Sequence[Event], now: int) -> list[Event] | None:
        if plugin.failed:
            return None
        try:
            return plugin.process(events, now)
        except Exception as exc:  # a broken plugin must never stop the music
            plugin.failed = True
            self.on_failure(plugin, exc)
            return None

    def next_wakeup(self) -> int | None:
        times = []
        for plugin in self.plugins:
            if plugin.failed:
                continue
            try:
                t = plugin.next_wakeup()
            except Exception as exc:
                plugin.failed = True
                self.on_failure(plugin, exc)
                continue
            if t is not None:
                times.append(t)
        return min(times) if times else None

    def reset(self) -> None:
        for plugin in self.plugins:
            try:
                plugin.reset()
            except Exception as exc:
                if not plugin.failed:
                    plugin.failed = True
                    self.on_failure(plugin, exc)

    def close(self) -> None:
        for plugin in self.plugins:
            try:
                plugin.close()
            except Exception:
                log.exception("plugin %s failed to close", plugin.id)


class Chain(Container):
    """Each plugin's output is the next one's input.  A failed plugin passes events through."""

    name = "chain"
    summary = "run plugins in series: each one's output feeds the next"

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        current = list(events)
        for plugin in self.plugins:
            out = self._run(plugin, current, now)
            if out is not None:
                current = out
        return current


class Parallel(Container):
    """Every plugin hears the same input; their outputs merge in time order.  A failed one falls silent."""

    name = "parallel"
    summary = "run plugins side by side on the same input and merge their outputs in time order"

    def process(self, events: Sequence[Event], now: int) -> list[Event]:
        merged: list[Event] = []
        for plugin in self.plugins:
            out = self._run(plugin, events, now)
            if out:
                merged.extend(out)
        return sorted_events(merged) if len(self.plugins) > 1 else merged
