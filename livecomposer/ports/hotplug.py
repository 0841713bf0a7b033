"""Inputs that appear while running: a keyboard switched on after the program, a program
started later.  Opened on the port watcher's thread (:mod:`.watch`), never the engine's."""

from __future__ import annotations

import logging
import threading
from typing import Iterable, Sequence

from .backends import DEFAULT_CLIENT, resolve_api
from .base import PortError
from .inputs import MidiInput
from .listing import system
from .names import OWN, is_own_client, stable
from .watch import SystemView, watcher

log = logging.getLogger(__name__)


class InputWatch:
    """Opens inputs that appear while running.  Runs on the port watcher's thread (off the
    timing path), right after each round's checks: at once on JACK's port-registration
    notice, else about twice a second (the ALSA sequencer has no notice we use: it is
    polled).

    A port matching ``names`` (None: every input; else any of the substrings, ignoring
    case) that is neither ours nor one we already have (an input that vanished reconnects
    itself when its port returns under the same name) becomes a :class:`~.inputs.MidiInput`,
    handed to ``appeared(port)`` from :meth:`start` on.  After :meth:`close` returns, none
    is opened any more.  Make it before the engine starts: on JACK it compiles the input
    callback (half a second holding the GIL) unless an input already did.
    """

    def __init__(
        self, api: str, names: str | Sequence[str] | None, appeared, known: Iterable[MidiInput] = (),
        client: str = f"{DEFAULT_CLIENT}-in",
    ) -> None:
        self.backend = resolve_api(api)
        midi = system(self.backend)
        self.server = midi.server
        self._wanted = None if names is None else [n.lower() for n in ([names] if isinstance(names, str) else names)]
        self._appeared = appeared
        self._client = client
        self.ports: list[MidiInput] = list(known)
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0
        midi.prepare_input()  # here, not when the keyboard appears

    def start(self) -> "InputWatch":
        """Watch from now on (the port watcher's thread scans at once)."""
        watcher().add_watch(self)
        return self

    def wants(self, name: str) -> bool:
        """Whether ``name`` is an input this watch should open (not counting ones it has)."""
        if OWN.includes(name) or is_own_client(name):
            return False
        return self._wanted is None or any(w in name.lower() for w in self._wanted)

    def scan(self, view: SystemView) -> None:
        """Open the wanted inputs of ``view`` that we do not have (the watcher calls this)."""
        with self._lock:
            if self._closed or not view.up:
                return
            have = {stable(p.name) for p in self.ports}
            for name in view.inputs:
                if stable(name) in have or not self.wants(name):
                    continue
                try:
                    port = MidiInput(self.backend, name, self._client)
                except PortError as exc:  # gone again already, or the server went away
                    log.debug("new MIDI input %r could not be opened: %s", name, exc)
                    continue
                self.ports.append(port)
                have.add(stable(port.name))
                self.opened += 1
                log.warning("new MIDI input %r connected", port.name)
                try:
                    self._appeared(port)
                except Exception:
                    log.exception("handing over the new MIDI input %r failed", port.name)

    def close(self) -> None:
        """Stop opening inputs (those opened stay open: their owner closes them)."""
        with self._lock:
            self._closed = True
        watcher().remove_watch(self)
