"""The benchmarks' DAW and clock-receiver stand-ins: JACK MIDI inputs in the measuring process.

Each is our compiled JACK reader (:class:`~livecomposer.rt.jack_midi.JackMidiIn`), so what
it measures is when JACK delivered a message (its frame time), not when a Python callback
got the GIL.  An rtmidi callback here did need the GIL, on JACK's thread: the engine under
test then delayed the stand-in's own stamps by a hundred microseconds or more, and lost
messages with them.
"""

from __future__ import annotations

import threading
from typing import Callable

from ..rt.jack_midi import JackMidiIn


class JackReceiver:
    """``JackReceiver(client, source=None, on_message=None)``: a JACK MIDI input connected to
    the first port whose name contains ``source`` (or a port others connect to, named
    :attr:`port`).  Messages are kept for :meth:`take`, or handed to ``on_message(time_ns,
    message)`` from the reader thread."""

    def __init__(self, client: str, source: str | None = None, on_message: Callable[[int, bytes], None] | None = None) -> None:
        self.midi = JackMidiIn(client)
        if source is None:
            self.midi.open_virtual_port("in")
        else:
            ports = self.midi.get_ports()
            matches = [i for i, p in enumerate(ports) if source in p]
            if not matches:
                self.midi.close_port()
                raise OSError(f"no JACK MIDI output contains {source!r}: {ports}")
            self.midi.open_port(matches[0], "in")
        self.port = self.midi.port_name or ""
        self.received: list[tuple[int, bytes]] = []
        self._on_message = on_message
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._read, name=f"receiver {client}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        midi = self.midi
        while not self._closed:
            messages = midi.take()
            if messages:
                if self._on_message is not None:
                    for stamp, message in messages:
                        self._on_message(stamp, message)
                else:
                    with self._lock:
                        self.received += messages
            midi.wait(0.05)

    def take(self) -> list[tuple[int, bytes]]:
        with self._lock:
            out, self.received = self.received, []
        return out

    def close(self) -> None:
        self._closed = True
        self.midi.close_port()
        self._thread.join(1.0)
