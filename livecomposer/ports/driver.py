"""What a port needs from a MIDI system: the driver interface under the generic ports.

A :class:`MidiSystem` is one backend: JACK through our compiled clients (:mod:`.jack`), or
ALSA, CoreMIDI and Windows through python-rtmidi (:mod:`.rtmidi_driver`).  It lists the
ports that exist and makes drivers, each one client with one port of ours.  The generic
ports (:mod:`.inputs`, :mod:`.outputs`) find a port by name, reopen it when it comes back,
check that it is alive and give :class:`~.base.PortGone` while it is not; they never look
at which kind of driver they hold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterable, Sequence

#: ``kind`` of a listing: ports we can receive from, or ports we can send to.
INPUTS, OUTPUTS = "inputs", "outputs"


class Driver(ABC):
    """One client of the MIDI system with (once :meth:`open`) one port of ours."""

    #: Our port's full name once open, where the system tells us (else None).
    own_name: str | None = None

    @abstractmethod
    def ports(self) -> list[str]:
        """Other clients' ports ours can connect to: sources for an input, destinations for
        an output (full names)."""

    @abstractmethod
    def open(self, name: str, other: str | None) -> None:
        """Make our port ``name`` and connect it with ``other``, a name from :meth:`ports`
        (None: a virtual port, which other programs connect to)."""

    @abstractmethod
    def close(self) -> None:
        """Close our port, never raising.  Safe while another thread still holds the driver
        (a send in flight): the client itself goes with the last reference."""

    def release(self) -> None:
        """Close, and free the client now, so that a new one gets the same name (a DAW
        reconnects by name).  Only when no other thread can be using the driver."""
        self.close()


class InputDriver(Driver):
    """Where an input's messages come from."""

    @abstractmethod
    def read(self) -> Iterable[tuple[int, bytes]]:
        """Everything that arrived, as ``(stamp_ns, message)`` in order (``time.monotonic_ns``
        base).  The input's reader thread, nothing else, calls it."""

    @abstractmethod
    def wait(self) -> None:
        """Return when more may have arrived (or after a short while): the reader's pause."""


class OutputDriver(Driver):
    """Where an output's messages go."""

    @abstractmethod
    def send(self, message: Sequence[int], due_ns: int | None = None) -> None:
        """Send one complete message; ``due_ns`` as in :meth:`~.base.OutputPort.send`."""

    @abstractmethod
    def delivers(self, message: list[int], timeout: float) -> bool | None:
        """Send ``message`` through our open port to a private probe input connected to it:
        True if it arrived within ``timeout`` seconds, None where this system cannot check."""


class MidiSystem(ABC):
    """One MIDI backend: the ports that exist, and drivers for ports of ours."""

    #: ``jack``, ``alsa``, ``coremidi`` or ``windows``.
    backend: str
    #: The JACK server a port was opened on (it is reopened there); ``""`` elsewhere.
    server: str = ""

    @abstractmethod
    def ports(self, kind: str) -> list[str]:
        """The ports that exist now: :data:`INPUTS` (we can receive from) or :data:`OUTPUTS`."""

    @abstractmethod
    def input(self, client: str) -> InputDriver:
        """A new client named ``client`` for one input (:class:`~.base.PortError` if none)."""

    @abstractmethod
    def output(self, client: str) -> OutputDriver:
        """A new client named ``client`` for one output (:class:`~.base.PortError` if none)."""

    def prepare_input(self) -> None:
        """Do now the slow part of opening inputs later (a keyboard plugged in while the
        engine runs must connect in milliseconds)."""
