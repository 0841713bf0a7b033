"""Real MIDI outputs: a virtual port others connect to, or a connection to an existing one.

:meth:`MidiOutput.send` is one call into the driver: on JACK our own client places each
message at its own frame one period after it was due (:mod:`.jack`); rtmidi sends at once.
While an output is not alive, ``send`` raises :class:`~.base.PortGone` (an ``OSError``),
the same signal the in-memory port gives, so the engine can forget the notes it held there.

Lost-output race (seen with rtmidi's JACK ports: a thru program whose ports were connected
within milliseconds of appearing sent nothing in about one start in three): outputs are
opened before inputs, and a new output is checked end to end: a private probe input is
connected to it and a harmless non-commercial sysex (``F0 7D ...``) must arrive; if it does
not, the output is reopened (:meth:`MidiOutput.verify`).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

from .backends import DEFAULT_CLIENT, resolve_api
from .base import OutputPort, PortError, PortGone
from .driver import OUTPUTS, OutputDriver
from .listing import available, system
from .names import OWN, describe, find
from .reopen import Reopenable
from .watch import SystemView, watcher

log = logging.getLogger(__name__)

#: Probe message for the end-to-end output check: sysex with the non-commercial
#: manufacturer id 0x7D, which every receiver that does not know it ignores.
PROBE_PREFIX = (0xF0, 0x7D, 0x6C, 0x63)  # F0 7D 'l' 'c'


class MidiOutput(Reopenable[OutputDriver], OutputPort):
    """A virtual output port (other programs connect to it) or a connection to an existing port."""

    def __init__(self, backend: str, virtual: str | None, target: str | None, client: str) -> None:
        super().__init__(backend, virtual or target or "?", client)
        self.virtual = virtual
        self.target = target
        OWN.add_client(client)
        try:
            self._driver = self._open()
        except BaseException:
            OWN.discard_client(client)
            raise
        watcher().add(self)

    def _open(self) -> OutputDriver:
        driver = self.system.output(self._client)
        try:
            if self.virtual is not None:
                driver.open(self.virtual, None)
            else:
                ports = driver.ports()
                index = find(ports, self.target or "")
                if index is None:
                    raise PortError(f"MIDI output {self.target!r} is gone; existing outputs: {describe(ports)}")
                self.target = ports[index]
                driver.open("out", self.target)
        except Exception:
            driver.release()
            raise
        return self._opened(driver)

    def send(self, message: Sequence[int], due_ns: int | None = None) -> None:
        driver = self._driver
        if driver is None or not self._alive:
            raise PortGone(f"MIDI output {self.name!r} is gone")
        driver.send(message, due_ns)

    def verify(self, attempts: int = 3, timeout: float = 0.5) -> bool:
        """Check end to end that what we send arrives; reopen the port if it does not.

        Works where our port can be listed (ALSA, JACK); elsewhere it returns True.  Call it
        before the engine starts sending (``open_output`` does): it replaces the driver.
        """
        for attempt in range(attempts):
            nonce = [b & 0x7F for b in os.urandom(4)]
            assert self._driver is not None
            result = self._driver.delivers(list(PROBE_PREFIX) + nonce + [0xF7], timeout)
            if result is None or result:
                return True
            log.warning("MIDI output %r delivered nothing (attempt %d); reopening it", self.name, attempt + 1)
            with self._lock:
                old, self._driver = self._driver, None
                self._forget_own()
                # Free the old client now, so the new one gets the same JACK name (a DAW
                # reconnects by name).  Safe here: verify() runs before anyone sends.
                old.release()
                self._driver = self._open()
                self._alive = True
                self.reconnects += 1
        return False

    def check(self, view: SystemView) -> None:
        if self._closed:
            return
        jack_own = view.jack is not None and self.own_name is not None and not self._settling()
        if not view.up:
            ok = False
        elif self.virtual is not None:
            ok = view.jack.exists(self.own_name) if jack_own else True
        else:
            ok = find(view.outputs, self.target or "") is not None
            if ok and jack_own:
                ok = (self.target or "") in view.jack.connections(self.own_name)
        if self._alive and not ok:
            log.warning("MIDI output %r vanished", self.name)
            self._alive = False  # alive again only through a reconnect (see MidiInput.check)

    def reconnect_if_needed(self, view: SystemView | None = None) -> bool:
        """Reopen a dead output once its server (virtual) or its target port is back."""
        if self._closed:
            return False
        if view is None:
            view = SystemView.take(self.backend, self.server)
            self.check(view)
        if self._alive or not view.up:
            return False
        if self.virtual is None and find(view.outputs, self.target or "") is None:
            return False
        return self._reopen("output")

    def close(self) -> None:
        """Close; on JACK the driver first lets the server take what is still queued (the
        final note-offs and CC 123 of a stop)."""
        self._shut()
        OWN.discard_client(self._client)


def open_output(
    api: str = "auto",
    virtual: str | None = None,
    port: str | None = None,
    client: str | None = None,
    verify: bool = True,
) -> MidiOutput:
    """Open a virtual output named ``virtual`` or connect to the existing port containing ``port``.

    Open the output before the inputs (see the module notes).  ``verify`` checks delivery
    end to end and reopens the port if nothing arrives.
    """
    if (virtual is None) == (port is None):
        raise PortError("give exactly one of virtual=NAME or port=SUBSTRING for the MIDI output")
    backend = resolve_api(api)
    target = None
    if virtual is not None:
        if backend == "windows":
            raise PortError(
                "Windows has no virtual MIDI ports: install loopMIDI (or use Windows MIDI Services), "
                "create a port there and use output: {port: NAME}"
            )
    else:
        ports = available(system(backend), OUTPUTS)
        matches = [p for p in ports if port.lower() in p.lower()]
        if not matches:
            raise PortError(f"no MIDI output matches {port!r}; existing outputs: {describe(ports)}")
        if len(matches) > 1:
            log.info("output %r matches %s; using %r", port, matches, matches[0])
        target = matches[0]
    out = MidiOutput(backend, virtual, target, client or virtual or DEFAULT_CLIENT)
    if verify and not out.verify():
        out.close()
        raise PortError(f"MIDI output {out.name!r} delivered nothing even after reopening it")
    return out
