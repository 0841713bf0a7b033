"""The engine: one thread that owns the plugin graph, the scheduler and the output port.

Input callbacks (MIDI driver threads) only append ``(timestamp, bytes)`` to a deque and
set a wake-up flag.  The engine thread drains that deque, parses, routes controls, runs
the plugins on the new events, schedules what they return, sends what is due, and then
waits for the next input or the next due time (sleeping, then spinning the last fraction
of a millisecond).  Nothing here waits on the model: plugins hand model work to the
:class:`~.inference.InferenceWorker` and get the answer back as a call on this thread.

The same code runs on a :class:`~livecomposer.kernel.clock.ManualClock` (``run_offline``) for
tests and renders, deterministically for a given input and seed.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable, Iterable, Protocol, Sequence

from .clock import Clock, ManualClock, MonotonicClock, tune_interpreter
from .backlog import MAX_BATCH, overflowing, shed
from .inference import EngineContext, InferenceWorker
from .stats import EngineStats
from ..rt import priority
from .events import PERFORMER, Event, Kind, MidiParseError, parse, to_bytes
from .plugin import Parallel, Plugin
from ..ports.base import InputPort, OutputPort
from .scheduler import Scheduler

log = logging.getLogger(__name__)

#: Never plan a generator wake-up closer than this after a tick: no busy loops.
MIN_WAKEUP_NS = 100_000
#: Spin window before a deadline when the engine thread got realtime priority.
REALTIME_SPIN_NS = 80_000


_TRANSPORT_KINDS = frozenset({Kind.CLOCK, Kind.START, Kind.STOP, Kind.CONTINUE, Kind.SONG_POSITION})


class Observer(Protocol):
    """Sees each tick's parsed inputs and the events actually sent (recorder, visuals,
    monitor synth).  Called on the engine thread: must hand off and return at once."""

    def observe(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None: ...


ControlHandler = Callable[["Engine", Event], bool]
"""Given an incoming CC/program change, act on it (param, panic, preset) and return True if consumed."""


class Engine:
    def __init__(
        self,
        graph: Plugin,
        inputs: Sequence[InputPort] = (),
        output: OutputPort | None = None,
        clock: Clock | None = None,
        observers: Iterable[Observer] = (),
        seed: int = 0,
        tempo: Any = None,
        control_handler: ControlHandler | None = None,
        realtime: bool = True,
    ) -> None:
        self.clock = clock or MonotonicClock()
        self.manual = isinstance(self.clock, ManualClock)
        self.inputs = list(inputs)
        self.output = output
        self.observers: list[Observer] = list(observers)
        self.tempo = tempo
        self.seed = seed
        self.control_handler = control_handler
        self.realtime = realtime
        self.stats = EngineStats()
        self.scheduler = Scheduler()
        self.stats.held_source = lambda: len(self.scheduler.held)
        self._raw: collections.deque[tuple[int, bytes]] = collections.deque()
        self._calls: collections.deque[Callable[[], None]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: InferenceWorker | None = None
        self._output_ok = True
        self._inputs_alive = [True] * len(self.inputs)
        self._spin_ns = MonotonicClock.spin_ns
        self.graph = self._wrap(graph)
        self.ctx = EngineContext(self, seed)
        self._prepare(self.graph)

    # -- graph --------------------------------------------------------------------------
    @staticmethod
    def _wrap(graph: Plugin) -> Parallel:
        """The top of the graph is always a container, so a failing plugin is always bypassed."""
        return graph if isinstance(graph, Parallel) else Parallel([graph], id="root")

    def _prepare(self, graph: Parallel) -> None:
        graph.on_failure = self._plugin_failed
        for plugin in graph.walk():
            if not plugin.children() and plugin.voice == 0:
                plugin.voice = self.ctx.new_voice()  # generated notes carry it; a failure releases it
        graph.prepare(self.ctx)

    def _plugin_failed(self, plugin: Plugin, exc: BaseException) -> None:
        """A plugin raised: it is bypassed from now on, logged once, and its notes released."""
        self.stats.plugin_failures += 1
        log.error("plugin %r raised %s: %s; bypassed, the music goes on", plugin.id, type(exc).__name__, exc, exc_info=exc)
        if plugin.voice:
            self._send_now(self.scheduler.cancel_voice(plugin.voice, self.clock.now()))

    # -- thread-safe entry points ---------------------------------------------------------
    def sink(self, timestamp: int, message: bytes) -> None:
        """The input callback: timestamp and queue, nothing else."""
        self._raw.append((timestamp, message))
        self._wake.set()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the engine thread at the next tick (immediately when offline)."""
        if self.manual or self._thread is None:
            fn()
            return
        self._calls.append(fn)
        self._wake.set()

    def add_input(self, port: InputPort) -> None:
        """From any thread: an input that appeared while running (a keyboard plugged in)
        joins the others; its messages flow at once, its vanishing releases notes too."""

        def attach() -> None:
            self.inputs.append(port)
            self._inputs_alive.append(port.alive)

        self.call_soon(attach)
        port.start(self.sink)

    def panic(self) -> None:
        """From any thread: everything off at the next tick."""
        self.call_soon(self.panic_now)

    def panic_now(self) -> None:
        """On the engine thread: note-offs for every sounding note, then CC 123 and CC 120,
        and the plugins forget their plans."""
        self._send_now(self.scheduler.release_all(self.clock.now(), all_sound_off=True))
        self.graph.reset()

    def set_param(self, target: str, value: Any) -> None:
        """``plugin_id.param`` = value, applied between ticks."""
        plugin_id, _, param = target.rpartition(".")

        def apply() -> None:
            plugin = self.graph.find(plugin_id)
            if plugin is None:
                log.warning("set_param: no plugin %r", plugin_id)
                return
            plugin.set_param(param, value)

        self.call_soon(apply)

    def switch_graph(self, graph: Plugin, after: Callable[[], None] | None = None) -> None:
        """Swap in a new plugin graph (prepared here, off the engine thread: models load
        now, not in the tick); every note the old graph held is released first, then
        ``after`` runs on the engine thread."""
        new = self._wrap(graph)
        self._prepare(new)

        def swap() -> None:
            now = self.clock.now()
            self._send_now(self.scheduler.release_all(now))
            old, self.graph = self.graph, new
            try:
                old.close()
            except Exception:
                log.exception("closing the old graph failed")
            if after is not None:
                after()

        self.call_soon(swap)

    # -- life cycle -----------------------------------------------------------------------
    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self.manual:
            raise RuntimeError("an engine on a manual clock runs with run_offline()")
        tune_interpreter()
        self._worker = InferenceWorker(self.call_soon, realtime=self.realtime)
        self._thread = threading.Thread(target=self._run, name="livecomposer-engine", daemon=True)
        self._thread.start()
        for port in self.inputs:
            port.start(self.sink)

    def stop(self) -> None:
        """Stop the thread, release every note (note-offs, then CC 123), close everything."""
        self._stop.set()  # first: inputs closed from here on have not vanished (_watch_inputs)
        for port in self.inputs:
            try:
                port.close()
            except Exception:
                log.exception("closing input %s failed", getattr(port, "name", port))
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=5.0)
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            # The release burst: the output port delivers what it queued before it closes.
            self._send_now(self.scheduler.release_all(self.clock.now()))
        finally:
            if self._worker is not None:
                self._worker.close()
                self._worker = None
            self.graph.close()
            for observer in self.observers:
                close = getattr(observer, "close", None)
                if close is not None:
                    try:
                        close()
                    except Exception:
                        log.exception("closing observer %r failed", observer)
            if self.output is not None:
                try:
                    self.output.close()
                except Exception:
                    log.exception("closing the output failed")

    # -- the loop -------------------------------------------------------------------------
    def _run(self) -> None:
        if self.realtime and priority.make_realtime(priority.ENGINE):
            # Realtime threads wake on time (p99 ~0.1 ms measured here), so spin only briefly:
            # a long spin at realtime priority trips the kernel's RT throttling (50 ms stalls).
            self._spin_ns = REALTIME_SPIN_NS
            log.info("engine thread runs with realtime priority")
        clock = self.clock
        while not self._stop.is_set():
            try:
                self._wake.clear()
                self.tick(clock.now())
                self._wait(self._deadline())
            except Exception:  # a bug must not stop the show: release and carry on
                log.exception("engine tick failed; releasing notes and carrying on")
                self._send_now(self.scheduler.release_all(clock.now()))
                time.sleep(0.001)

    def _deadline(self) -> int | None:
        due = self.scheduler.next_due()
        wake = self.graph.next_wakeup()
        if wake is not None:
            wake = max(wake, self.clock.now() + MIN_WAKEUP_NS)
            due = wake if due is None else min(due, wake)
        return due

    def _wait(self, deadline: int | None) -> None:
        """Until new input, a call, or ``deadline``: sleep on the flag, then spin the end."""
        if deadline is None:
            self._wake.wait(0.05)  # also keeps port liveness checks going
            return
        spin = self._spin_ns
        while True:
            left = deadline - time.monotonic_ns()
            if left <= 0 or self._raw or self._calls or self._stop.is_set():
                return
            if left > spin:
                if self._wake.wait((left - spin) / 1e9):
                    return
            else:
                time.sleep(0)  # yield the GIL to callbacks while spinning

    def tick(self, now: int, raw: Sequence[tuple[int, bytes]] | None = None) -> None:
        """One engine step: controls, input, plugins, then send what is due by ``now``."""
        self.stats.ticks += 1
        while self._calls:
            self._calls.popleft()()
        if not self._output_ok and self.output is not None and self.output.alive:
            self._output_returned()
        if self.inputs:
            self._watch_inputs()
        events = self._parse(raw if raw is not None else self._drain())
        if events:
            events = self._route_controls(events)
        planned: list[Event] = []
        if events or self._wakeup_due(now):
            planned = self.graph.process(events, now)
            for event in planned:
                self.scheduler.push(event, now)
        sent = self._send_due(now)
        if self.ctx.after_sends:
            sent += self._answer()
        if self.observers:
            if events or sent:
                self._notify(events, sent, now)
            if planned:  # what was scheduled, for the visuals' note overlay: after this tick's sends
                self.ctx.publish("plan", (now, planned))

    def _answer(self) -> list[Event]:
        """The model work this tick queued for after its sends (a harmony's answer computed
        on this thread), then at once what its results woke: processed and sent in this
        tick, without a round through the loop (tens of microseconds on the answer's path)."""
        self.ctx.run_after_sends()
        now = self.clock.now()
        if not self._wakeup_due(now):
            return []
        for event in self.graph.process([], now):
            self.scheduler.push(event, now)
        return self._send_due(now)

    def _wakeup_due(self, now: int) -> bool:
        wake = self.graph.next_wakeup()
        return wake is not None and wake <= now

    def _drain(self) -> list[tuple[int, bytes]]:
        raw = self._raw
        if overflowing(raw):
            self.stats.dropped += shed(raw)
        batch = []
        for _ in range(min(len(raw), MAX_BATCH)):
            batch.append(raw.popleft())
        if raw:
            self._wake.set()
        return batch

    def _parse(self, raw: Sequence[tuple[int, bytes]]) -> list[Event]:
        stats = self.stats
        events: list[Event] = []
        for timestamp, message in raw:
            stats.messages_in += 1
            try:
                event = parse(message, timestamp)
            except MidiParseError as exc:
                stats.bad_messages += 1
                stats.last_bad = f"{message[:8].hex(' ')}: {exc}"
                continue
            if event is None:
                stats.ignored_messages += 1
                continue
            if event.kind is Kind.NOTE_ON:
                stats.notes_in += 1
            events.append(event)
        return events

    def _route_controls(self, events: list[Event]) -> list[Event]:
        tempo = self.tempo
        handler = self.control_handler
        if handler is None and tempo is None:
            return events
        kept = []
        following = tempo is not None and getattr(tempo, "source", None) == "midi"
        for event in events:
            kind = event.kind
            if tempo is not None and kind in _TRANSPORT_KINDS:
                observe = getattr(tempo, "observe_clock", None)
                if observe is not None:
                    observe(event)
                if following:
                    continue  # the DAW's clock drives our tempo; echoing it back could loop
            if handler is not None and kind in (Kind.CONTROL, Kind.PROGRAM, Kind.NOTE_ON) and handler(self, event):
                continue
            kept.append(event)
        return kept

    def _send_due(self, now: int) -> list[Event]:
        return self._send(self.scheduler.pop_due(now), now)

    def _send_now(self, events: list[Event]) -> None:
        if events:
            sent = self._send(events, self.clock.now())
            if sent and self.observers:
                self._notify((), sent, self.clock.now())

    def _send(self, events: list[Event], now: int) -> list[Event]:
        if not events or self.output is None:
            return events
        stats = self.stats
        send = self.output.send
        sent = []
        for event in events:
            try:
                send(to_bytes(event), event.time if event.time <= now else None)
            except Exception as exc:
                stats.send_errors += 1
                if self._output_ok:
                    log.error("output %s failed: %s; its notes are released when it returns", getattr(self.output, "name", "?"), exc)
                    self._output_ok = False
                continue
            lateness = self.clock.now() - event.time
            stats.latency.add(lateness if lateness > 0 else 0)
            stats.messages_out += 1
            if event.kind is Kind.NOTE_ON:
                stats.notes_out += 1
            sent.append(event)
        return sent

    def _watch_inputs(self) -> None:
        """An input that vanished (keyboard unplugged, its program quit) will never send the
        note-offs for the keys held on it: release the performer's sounding notes.  (With
        several keyboards this also releases the others' held keys: better than a hung note.)"""
        if self._stop.is_set():
            return
        for i, port in enumerate(self.inputs):
            alive = port.alive
            if alive != self._inputs_alive[i]:
                self._inputs_alive[i] = alive
                if not alive:
                    log.warning("input %s vanished: releasing the notes held on it", getattr(port, "name", "?"))
                    self._send_now(self.scheduler.cancel_voice(PERFORMER, self.clock.now()))

    def _output_returned(self) -> None:
        """The output port is back (reconnected by the port watcher): whatever the synth on
        the other side still holds from before it vanished gets its note-off, then CC 123."""
        self._output_ok = True
        log.warning("output %s is back: releasing the notes held when it vanished", getattr(self.output, "name", "?"))
        self._send_now(self.scheduler.release_all(self.clock.now()))

    def _notify(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None:
        for observer in list(self.observers):
            try:
                observer.observe(inputs, outputs, now)
            except Exception:
                log.exception("observer %r failed; removed", observer)
                self.observers.remove(observer)

    def _cancel_tag(self, tag: int) -> None:
        now = self.clock.now()
        self._send_now(self.scheduler.cancel_tag(tag, now))
        if self.observers:
            self.ctx.publish("plan.cancel", (now, tag))

    # -- offline --------------------------------------------------------------------------
    def run_offline(self, messages: Iterable[tuple[int, Sequence[int]]], end_time: int) -> None:
        """Play timed raw messages through the engine on its manual clock, as fast as it can.

        Time jumps from one thing to do to the next (an input, a due event, a plugin
        wake-up) until ``end_time``; then every note is released, as at a live stop.
        """
        if not self.manual:
            raise RuntimeError("run_offline needs a ManualClock")
        clock: ManualClock = self.clock  # type: ignore[assignment]
        pending = collections.deque(sorted(((int(t), bytes(m)) for t, m in messages), key=lambda x: x[0]))
        while True:
            candidates = []
            if pending:
                candidates.append(pending[0][0])
            due = self._deadline()
            if due is not None:
                candidates.append(due)
            if not candidates:
                break
            t = max(min(candidates), clock.now())
            if t > end_time:
                break
            clock.set(t)
            batch = []
            while pending and pending[0][0] <= t:
                batch.append(pending.popleft())
            self.tick(t, batch)
        clock.set(max(clock.now(), end_time))
        self._shutdown()
