"""What real inputs and outputs share: a driver reopened under the port's name, liveness.

Liveness is checked off the timing path: the port watcher's thread (:mod:`.watch`) looks
at every open port about twice a second (and at once when the JACK server shuts down,
which rtmidi itself never reports) and clears ``alive``.  It also reconnects by name: an
input whose source port comes back, an output whose destination port comes back, or a
virtual output whose JACK server was restarted, is reopened (and only that makes a port
alive again).  ``reconnect_if_needed`` does the same synchronously for a caller that wants
to drive it itself: cheap while the port is alive, but reopening creates a client,
milliseconds, so call it from a housekeeping thread, not the engine tick.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Generic, TypeVar

from .base import PortError
from .driver import Driver
from .listing import system
from .names import OWN
from .watch import watcher

log = logging.getLogger(__name__)

D = TypeVar("D", bound=Driver)

#: How long after opening a port a missing connection (or, for our virtual port, its not
#: being listed) is not taken for the port's death; see :meth:`Reopenable._settling`.
CONNECT_GRACE_S = 1.0


class Reopenable(Generic[D]):
    """A port on a driver of its MIDI system (:mod:`.driver`), reopened under its name."""

    def __init__(self, backend: str, name: str, client: str) -> None:
        self.system = system(backend)
        self.backend = backend
        self.server = self.system.server
        self.name = name
        self._client = client
        self._lock = threading.Lock()
        self._alive = True
        self._closed = False
        self.reconnects = 0
        self.own_name: str | None = None  # our own port's full name, where we can learn it
        self._driver: D | None = None
        # Set while a driver is open: a reader waits on it, instead of polling, while the
        # port has none (a reopen that failed leaves none until the next one succeeds).
        self._has_driver = threading.Event()
        self._opened_at = 0.0

    def _open(self) -> D:
        """A new driver, our port open on it (:class:`PortError` if its counterpart is gone)."""
        raise NotImplementedError

    def _opened(self, driver: D) -> D:
        """Note the moment and our port's name after a successful open."""
        self._opened_at = time.monotonic()
        self._own(driver.own_name)
        self._has_driver.set()  # (the caller stores it under the lock the reader reads it with)
        return driver

    @property
    def alive(self) -> bool:
        return self._alive and not self._closed

    def _reopen(self, what: str) -> bool:
        with self._lock:
            if self._closed or self._alive:  # closed, or repaired meanwhile by another thread
                return False
            old, self._driver = self._driver, None
            self._has_driver.clear()
            self._forget_own()
            if old is not None:
                old.close()
            try:
                self._driver = self._open()
            except PortError as exc:
                log.debug("reconnect of %s %r failed: %s", what, self.name, exc)
                return False
            self._alive = True
            self.reconnects += 1
        log.warning("MIDI %s %r is back", what, self.name)
        return True

    def _shut(self) -> None:
        """Close for good (see ``close``)."""
        with self._lock:
            self._closed = True
            old, self._driver = self._driver, None
            self._forget_own()
            if old is not None:
                old.close()
        self._has_driver.set()  # a reader waiting for a driver wakes, and sees the port closed
        watcher().remove(self)

    def _own(self, name: str | None) -> None:
        """Our port's full name: on JACK our client's own (exact, at once: under PipeWire
        another client's listing shows a new port only a moment later), on ALSA the port
        that appeared while we opened it."""
        self.own_name = name
        if name:
            OWN.add(name)

    def _forget_own(self) -> None:
        if self.own_name:
            OWN.discard(self.own_name)

    def _settling(self) -> bool:
        """Within CONNECT_GRACE_S of (re)opening: PipeWire shows a new port's connections
        to other clients a moment after jack_connect returned, so a missing one is no
        sign of death yet (a port that is gone is, at once)."""
        return time.monotonic() - self._opened_at < CONNECT_GRACE_S
