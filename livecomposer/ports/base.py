"""Port interfaces: where raw MIDI bytes enter and leave livecomposer.

An input port calls its sink from the driver's thread with ``(timestamp_ns, bytes)`` and
does nothing else: no parsing, no locks beyond the queue, no allocation it can avoid.  An
output port sends raw bytes.  Real ports (:mod:`.inputs`, :mod:`.outputs`) run on a MIDI
system's driver (:mod:`.driver`: JACK or python-rtmidi); the in-memory ones (:mod:`.memory`)
let tests and offline renders run the same engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Sequence

#: The MIDI systems a port can be opened on (``auto``: JACK if a server runs, else the
#: platform's own); the one list the presets, the commands and the backends check against.
MIDI_APIS = ("auto", "alsa", "jack", "coremidi", "windows")

InputSink = Callable[[int, bytes], None]
"""Receives ``(timestamp_ns, raw_message)`` from a port's callback thread."""


class PortError(RuntimeError):
    """A port could not be opened (bad name, no MIDI system); the message says what to do."""


class PortGone(OSError):
    """Sending to an output whose port or MIDI server has vanished."""


class InputPort(ABC):
    name: str

    @abstractmethod
    def start(self, sink: InputSink) -> None:
        """Begin delivering messages to ``sink`` (from any thread)."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    def alive(self) -> bool:
        """False once the port has vanished (device unplugged, server gone)."""
        return True


class OutputPort(ABC):
    name: str

    @abstractmethod
    def send(self, message: Sequence[int], due_ns: int | None = None) -> None:
        """Send one complete MIDI message now.  ``due_ns`` (``time.monotonic_ns`` base) is
        when it was meant to leave: a port that places messages in time (our JACK output)
        uses it so the sender's lateness does not reach the music; others ignore it."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    def alive(self) -> bool:
        return True
