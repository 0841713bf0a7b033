"""A session: what ``run``, ``render`` and ``demo`` build from a preset.

Live: open the output (first, see ports notes), then the inputs, build the graph, the
tempo, the controls and the observers (recorder, monitor, visualizer), start the engine,
and stay until a signal.  While it runs, inputs that appear and match the preset's input
filter are connected (:meth:`LiveSession.watch_inputs`); one that vanishes reconnects
itself when it returns under its name.  Every way out goes through ``Engine.stop``: note-offs for held
notes, then CC 123.  Offline: the same graph on a manual clock, faster than real time.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..kernel.clock import ManualClock
from ..kernel.controls import ControlRouter
from ..kernel.engine import Engine
from ..kernel.events import NS_PER_S
from ..ports.memory import MemoryOutput

log = logging.getLogger(__name__)


def load(path: str | Path) -> tuple[Any, Any]:
    """(preset, graph) for a preset file; raises PresetError with file:line: key: reason."""
    from .presets import build_graph, load_preset

    preset = load_preset(path)
    return preset, build_graph(preset)


def make_tempo(preset: Any, origin: int) -> Any:
    from ..kernel.tempo import Tempo

    return Tempo.from_config(getattr(preset, "clock", None), origin=origin)


def make_router(preset: Any) -> ControlRouter:
    bank = list(getattr(preset, "bank", ()) or ())
    index = None
    path = getattr(preset, "path", None)
    if path is not None:
        resolved = [Path(p).resolve() for p in bank]
        if Path(path).resolve() in resolved:
            index = resolved.index(Path(path).resolve())
    return ControlRouter(getattr(preset, "controls", ()), bank, load_preset=load, current_index=index)


def with_clock_leader(preset: Any, graph: Any) -> Any:
    """``clock: {send: true}``: we lead the DAW, so a clock_leader plays beside the graph."""
    from ..kernel.plugin import Parallel
    from ..plugins.tempo import ClockLeader

    if not preset.clock.send or any(isinstance(p, ClockLeader) for p in graph.walk()):
        return graph
    return Parallel([graph, ClockLeader(id="clock_out")], id="root")


@dataclass
class LiveOptions:
    api: str = "auto"
    inputs: list[str] | None = None  # overrides the preset's midi.input
    output_virtual: str | None = None
    output_port: str | None = None
    record: Path | None = None
    monitor: str | None = None  # None | "builtin" | "fluidsynth"
    visual: bool | None = None  # None: as the preset says
    frames_dir: Path | None = None  # write the visuals' frames as PNGs here
    learn: str | None = None
    status: bool = False
    osc_port: int | None = None  # None: no OSC control surface
    osc_host: str = "127.0.0.1"
    extra_observers: list = field(default_factory=list)


def output_spec(preset: Any, options: LiveOptions) -> dict:
    if options.output_virtual or options.output_port:
        return {"virtual": options.output_virtual} if options.output_virtual else {"port": options.output_port}
    return {preset.midi.output_kind: preset.midi.output_name}


class LiveSession:
    """Ports, engine and observers for ``livecomposer run``."""

    def __init__(self, preset: Any, graph: Any, options: LiveOptions) -> None:
        from ..ports.inputs import open_inputs
        from ..ports.outputs import open_output

        self.preset = preset
        self.options = options
        api = options.api if options.api != "auto" else preset.midi.api
        self.api = api
        self.stopping = threading.Event()
        self.observers: list[Any] = list(options.extra_observers)
        #: (time.time(), what) of inputs connected while running, newest last (status screen).
        self.input_news: collections.deque[tuple[float, str]] = collections.deque(maxlen=4)
        self._input_watch: Any = None
        opened: list[Any] = []
        try:
            self.output = open_output(api, **output_spec(preset, options))
            opened.append(self.output)
            names = options.inputs if options.inputs is not None else preset.midi.inputs
            self.input_names = names
            # A keyboard not there yet is connected when it appears (watch_inputs).
            self.inputs = open_inputs(api, names, strict=False)
            opened.extend(self.inputs)
            now = time.monotonic_ns()
            if options.record is not None:
                from .recording import Recorder

                self.observers.append(Recorder(options.record, now, bpm=preset.clock.bpm))
            self.observers.extend(self._monitor_and_visual())
        except BaseException:
            for thing in opened + self.observers:
                try:
                    thing.close()
                except Exception:
                    pass
            raise
        self.router = make_router(preset)
        if options.learn:
            self.router.start_learning(options.learn)
        self.engine = Engine(
            with_clock_leader(preset, graph),
            inputs=self.inputs,
            output=self.output,
            observers=self.observers,
            seed=getattr(preset, "seed", 0) or 0,
            tempo=make_tempo(preset, time.monotonic_ns()),
            control_handler=self.router,
        )
        # A DAW or synth with its own output latency: the scheduler sends early / late.
        self.engine.scheduler.compensate(preset.midi.latency_ms, preset.midi.delay_ms)
        if getattr(self, "visualizer", None) is not None:
            self.visualizer.observer.tempo = self.engine.tempo  # the stage look pulses on the beat

    def _monitor_and_visual(self) -> list[Any]:
        found = []
        monitor = self.options.monitor or (self.preset.monitor.synth if self.preset.monitor.enabled else None)
        if monitor:
            from ..audio.open import open_monitor

            found.append(open_monitor(monitor, self.preset.monitor))
        raw = dict(self.preset.visual or {})
        visual = self.options.visual if self.options.visual is not None else bool(raw.get("enabled", False))
        if visual:
            from ..visual import start_visualizer
            from ..visual.config import parse_visual

            if self.options.frames_dir is not None:
                raw["frames_dir"] = str(self.options.frames_dir)
            self.visualizer = start_visualizer(parse_visual({**raw, "enabled": True}))
            found.append(self.visualizer.observer)
        return found

    def _start_extras(self) -> list[Any]:
        """Things that need the running engine: the OSC surface, an Ableton Link session."""
        extras: list[Any] = []
        if self.options.osc_port is not None:
            from .osc import OscServer

            extras.append(OscServer(self.engine, port=self.options.osc_port, host=self.options.osc_host, router=self.router).start())
        from .link import LinkSync, link_forbidden, link_requested

        if link_requested(self.preset.clock):
            reason = link_forbidden()
            if reason:
                log.warning("Ableton Link not started: %s", reason)
            else:
                extras.append(LinkSync(self.engine.tempo, quantum=self.preset.clock.beats_per_bar).start())
        return extras

    def prepare_input_watch(self) -> None:
        """Ready the watch of :meth:`watch_inputs` (before the engine starts: on JACK this
        compiles the input callback, which holds the GIL for about half a second)."""
        from ..ports.hotplug import InputWatch

        if self._input_watch is None and self.input_names != ():
            self._input_watch = InputWatch(self.api, self.input_names, self._input_appeared, known=self.inputs)

    def watch_inputs(self) -> None:
        """Connect inputs that appear from now on (call once the engine runs): a keyboard
        switched on after the program, a cable plugged back in under another name.  Opening
        happens on the port watcher's thread, never the engine's."""
        self.prepare_input_watch()
        if self._input_watch is not None:
            self._input_watch.start()

    def _input_appeared(self, port: Any) -> None:
        self.inputs.append(port)
        self.engine.add_input(port)
        self.input_news.append((time.time(), f"{port.name} connected"))

    def stop_watching_inputs(self) -> None:
        """No new inputs from now on; those opened while running are closed with the rest."""
        if self._input_watch is not None:
            self._input_watch.close()
            self._input_watch = None

    def close_inputs(self) -> None:
        """Close every input (the engine closes those it knows; this also catches one that
        appeared while it was stopping).  Closing twice is harmless."""
        for port in list(self.inputs):
            try:
                port.close()
            except Exception:
                log.exception("closing input %s failed", getattr(port, "name", port))

    @contextlib.contextmanager
    def running(self) -> Iterator["LiveSession"]:
        """The engine running, new inputs connected as they appear; on the way out the
        engine stops (every note released) and every input is closed."""
        try:
            self.prepare_input_watch()
            with self.engine:
                self.watch_inputs()
                try:
                    yield self
                finally:
                    self.stop_watching_inputs()
        finally:
            self.close_inputs()

    def describe(self) -> str:
        ins = ", ".join(p.name for p in self.inputs) or "(no inputs yet: waiting for one)"
        return f"preset {getattr(self.preset, 'name', '?')}: {ins} -> {self.output.name}"

    def run_until_signal(self) -> int:
        """Run until SIGINT, SIGTERM or SIGHUP; release every note on the way out."""
        received: list[int] = []

        def stop(signum, _frame) -> None:
            received.append(signum)
            self.stopping.set()

        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        screen = None
        extras: list[Any] = []
        try:
            with self.running():
                extras = self._start_extras()
                print(self.describe(), flush=True)
                if self.options.status:
                    from .status import StatusScreen

                    screen = StatusScreen(self)
                    screen.start()
                while not self.stopping.wait(0.2):
                    if screen is not None and screen.quit_requested:
                        break
        finally:
            if screen is not None:
                screen.stop()
            for extra in extras:
                extra.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
            visualizer = getattr(self, "visualizer", None)
            if visualizer is not None:
                visualizer.close()
        if self.router.learned:
            for mapping in self.router.learned:
                print(f"learned: - {{cc: {mapping['cc']}, to: {mapping['to']}}}")
        return 0


@dataclass
class RenderResult:
    output: MemoryOutput
    engine: Engine
    end_ns: int


def render_offline(graph: Any, preset: Any, messages: list[tuple[int, bytes]], end_ns: int, seed: int | None = None, observers=()) -> RenderResult:
    """Run ``messages`` through ``graph`` on the manual clock; returns what was sent."""
    clock = ManualClock()
    output = MemoryOutput(clock.now, "render")
    engine = Engine(
        with_clock_leader(preset, graph),
        output=output,
        clock=clock,
        observers=list(observers),
        seed=seed if seed is not None else (getattr(preset, "seed", 0) or 0),
        tempo=make_tempo(preset, 0),
        control_handler=make_router(preset) if getattr(preset, "controls", None) else None,
    )
    engine.run_offline(messages, end_ns)
    return RenderResult(output, engine, end_ns)


def tail_ns(messages: list[tuple[int, bytes]], seconds: float = 4.0) -> int:
    """End time for a render: the last input plus time for the machine to answer."""
    last = max((t for t, _ in messages), default=0)
    return last + int(seconds * NS_PER_S)
