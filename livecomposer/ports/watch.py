"""Liveness of open MIDI ports, and new ones, checked off the timing path.

One daemon thread per process looks at the MIDI system about twice a second (and at once
when a JACK server shuts down or a JACK port comes or goes: :mod:`livecomposer.rt.jackclient` hears both
through compiled notices that post this thread's semaphore) and asks every open port to
:meth:`check` itself against that view; a dead port whose counterpart is back is told to
:meth:`reconnect_if_needed`.  Ports register with :func:`watcher` ``().add(port)``; they
provide ``backend``, ``server``, ``name``, ``alive``, ``check(view)`` and
``reconnect_if_needed(view)``.  Watches (``add_watch``: ``backend``, ``server``,
``scan(view)``) then see the same view, to open inputs that appeared (keyboards plugged in
while running).  On rtmidi backends (the ALSA sequencer) this polling is all there is.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ..rt import jackclient
from ..rt.semaphore import Semaphore
from .backends import DEFAULT_CLIENT, midi_in, midi_out

log = logging.getLogger(__name__)


@dataclass
class SystemView:
    """One look at the MIDI system, shared by all checks of one round."""

    backend: str
    server: str
    up: bool
    inputs: list[str]
    outputs: list[str]
    jack: "jackclient.JackClient | None" = None

    @classmethod
    def take(cls, backend: str, server: str = "", listers: dict | None = None) -> "SystemView":
        if backend == "jack":
            client = jackclient.watch(server, watcher().semaphore)
            if client is None or not client.alive:
                return cls(backend, server, False, [], [])
            inputs = client.ports(flags=jackclient.PORT_IS_OUTPUT)
            outputs = client.ports(flags=jackclient.PORT_IS_INPUT)
            return cls(backend, server, True, inputs, outputs, client)
        listers = listers if listers is not None else {}
        try:
            if backend not in listers:
                listers[backend] = (
                    midi_in(backend, f"{DEFAULT_CLIENT}-list"),
                    midi_out(backend, f"{DEFAULT_CLIENT}-list"),
                )
            lister_in, lister_out = listers[backend]
            return cls(backend, server, True, lister_in.get_ports(), lister_out.get_ports())
        except Exception:
            listers.pop(backend, None)
            return cls(backend, server, False, [], [])


class PortWatcher:
    """Background thread: refresh every open port's ``alive`` and reconnect what came back."""

    interval = 0.5
    #: After a notice, wait this long for the burst to end (a program registers its ports
    #: one by one, then connects them) before looking: one round, not half-done views.
    settle = 0.05

    def __init__(self) -> None:
        self._ports: list = []
        self._watches: list = []
        self._lock = threading.Lock()
        # Posted by JACK's (compiled) shutdown and port-registration notices, or by wake():
        # run a round now.
        self.semaphore = Semaphore()
        self._thread: threading.Thread | None = None
        self._listers: dict = {}
        self.auto_reconnect = True

    def add(self, port) -> None:
        with self._lock:
            self._ports.append(port)
            self._start()

    def remove(self, port) -> None:
        with self._lock:
            if port in self._ports:
                self._ports.remove(port)

    def add_watch(self, watch) -> None:
        """``watch.scan(view)`` runs after each round's checks (see the module notes)."""
        with self._lock:
            if watch not in self._watches:
                self._watches.append(watch)
            self._start()
        self.wake()

    def remove_watch(self, watch) -> None:
        with self._lock:
            if watch in self._watches:
                self._watches.remove(watch)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="midi-port-watcher", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Run a round now."""
        self.semaphore.post()

    def run_once(self) -> None:
        with self._lock:
            ports = list(self._ports)
            watches = list(self._watches)
        views: dict[tuple[str, str], SystemView] = {}

        def view_of(thing) -> SystemView:
            key = (thing.backend, thing.server)
            if key not in views:
                views[key] = SystemView.take(thing.backend, thing.server, self._listers)
            return views[key]

        for port in ports:
            try:
                port.check(view_of(port))
                if self.auto_reconnect and not port.alive:
                    if port.reconnect_if_needed(view_of(port)):
                        views.pop((port.backend, port.server), None)  # the system changed: look again
            except Exception:  # never let the watcher die
                log.exception("MIDI port check failed for %r", getattr(port, "name", port))
        for watch in watches:
            try:
                watch.scan(view_of(watch))
            except Exception:
                log.exception("MIDI port watch failed")

    def _run(self) -> None:
        while True:
            if self.semaphore.wait(self.interval):
                # A notice: let its burst end, then one round for all of it.
                time.sleep(self.settle)
                while self.semaphore.wait(0):
                    pass
            with self._lock:
                if not self._ports and not self._watches:
                    continue
            self.run_once()


_the_watcher: PortWatcher | None = None


def watcher() -> PortWatcher:
    """The process's port watcher (its thread starts with the first port)."""
    global _the_watcher
    if _the_watcher is None:
        _the_watcher = PortWatcher()
    return _the_watcher
