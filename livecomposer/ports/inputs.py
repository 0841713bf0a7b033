"""Real MIDI inputs: one per source port, found again by name if it returns.

Timing path: an input's reader thread (realtime priority) hands arriving messages to the
sink, nothing else.  Where the messages come from and how they are stamped is the driver's
(:mod:`.jack`: each event's own frame time, the reader woken by a semaphore;
:mod:`.rtmidi_driver`: rtmidi's queue, polled).  Liveness and reconnecting: :mod:`.reopen`;
inputs that appear while running: :mod:`.hotplug`.
"""

from __future__ import annotations

import logging
import threading
from typing import Sequence

from ..rt import priority
from .backends import DEFAULT_CLIENT, resolve_api
from .base import InputPort, InputSink, PortError
from .driver import INPUTS, InputDriver
from .listing import available, system
from .names import describe, find
from .reopen import Reopenable
from .watch import SystemView, watcher

log = logging.getLogger(__name__)

#: While the port has no driver (being reopened): wake at least this often to see a close.
NO_DRIVER_WAIT_S = 0.5


class MidiInput(Reopenable[InputDriver], InputPort):
    """One input connected to one source port (found again by name if it returns)."""

    def __init__(self, backend: str, source: str, client: str = f"{DEFAULT_CLIENT}-in") -> None:
        super().__init__(backend, source, client)
        # The reader hands messages to the sink in this one-slot box, swapped by start();
        # until then messages are dropped and counted.
        self._sink_box: list = [self._before_start]
        self.dropped_before_start = 0
        self._driver = self._open()
        self._reader = threading.Thread(target=self._read, name=f"midi-in {source}", daemon=True)
        self._reader.start()
        watcher().add(self)

    def _open(self) -> InputDriver:
        driver = self.system.input(self._client)
        try:
            ports = driver.ports()
            index = find(ports, self.name)
            if index is None:
                raise PortError(f"MIDI input {self.name!r} is gone; existing inputs: {describe(ports)}")
            self.name = ports[index]
            driver.open("in", self.name)
        except BaseException:
            driver.release()
            raise
        return self._opened(driver)

    def _read(self) -> None:
        """Move arriving messages to the sink, and nothing else."""
        priority.make_realtime(priority.INPUT_READER)
        box = self._sink_box
        lock = self._lock
        while not self._closed:
            with lock:
                driver = self._driver
                if driver is not None:
                    # The sink is looked up for each message, after the read: a first read
                    # takes milliseconds (JACK: loading compiled code), and what arrived
                    # after a start() meanwhile belongs to the new sink.
                    for stamp, message in driver.read():
                        box[0](stamp, message)
            if driver is not None:
                driver.wait()
            else:
                self._has_driver.wait(NO_DRIVER_WAIT_S)  # (polling woke it 4,000 times a second)

    def _before_start(self, _time_ns: int, _message: bytes) -> None:
        self.dropped_before_start += 1

    def start(self, sink: InputSink) -> None:
        self._sink_box[0] = sink

    def check(self, view: SystemView) -> None:
        """Update ``alive`` from a fresh look at the system (watcher thread)."""
        if self._closed:
            return
        ok = view.up and find(view.inputs, self.name) is not None
        if ok and self.own_name and view.jack is not None and not self._settling():  # JACK: connected?
            ok = self.own_name in view.jack.connections(self.name)
        if self._alive and not ok:
            log.warning("MIDI input %r vanished", self.name)
            # Only a reconnect makes it alive again: a source that returns under the same
            # name is a new port, and nothing connects us to it by itself.
            self._alive = False

    def reconnect_if_needed(self, view: SystemView | None = None) -> bool:
        """Reopen the port if it is dead and its source exists again; True if reopened.

        Safe from any thread.  Cheap while alive; reopening takes milliseconds.
        """
        if self._closed:
            return False
        if view is None:
            view = SystemView.take(self.backend, self.server)
            self.check(view)
        if self._alive or not view.up or find(view.inputs, self.name) is None:
            return False
        return self._reopen("input")

    def close(self) -> None:
        self._shut()


def open_inputs(
    api: str = "auto", names: str | Sequence[str] | None = None, client: str = f"{DEFAULT_CLIENT}-in",
    strict: bool = True,
) -> list[MidiInput]:
    """Open inputs whose names contain ``names`` (a substring, a list of them, or None: all).

    Matching ignores case.  Every substring must match at least one port, otherwise
    :class:`PortError` lists the inputs that exist; with ``strict=False`` (a live run whose
    :class:`~.hotplug.InputWatch` connects the keyboard when it is switched on) that is only
    logged.  Our own ports are never included.
    """
    backend = resolve_api(api)
    ports = available(system(backend), INPUTS)
    if names is None:
        chosen = ports
    else:
        wanted = [names] if isinstance(names, str) else list(names)
        chosen = []
        for substring in wanted:
            matches = [p for p in ports if substring.lower() in p.lower()]
            if not matches:
                message = f"no MIDI input matches {substring!r}; existing inputs: {describe(ports)}"
                if strict:
                    raise PortError(message)
                log.warning("%s; it is connected when it appears", message)
            chosen += [m for m in matches if m not in chosen]
    opened: list[MidiInput] = []
    try:
        for source in chosen:
            opened.append(MidiInput(backend, source, client))
    except Exception:
        for port in opened:
            port.close()
        raise
    return opened
