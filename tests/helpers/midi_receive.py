"""Receive MIDI in a separate process through a real JACK virtual input port (a DAW stand-in).

Usage: python midi_receive.py CLIENT [--port NAME] [--source SUBSTRING]

Prints ``ready PORTNAME`` once the port exists (and, with --source, once it is connected to
the first JACK output port containing SUBSTRING, waiting up to 10 s for it to appear), then
one line per message: ``T_NS HEX HEX ...`` with time.monotonic_ns at reception.  Every
message is kept, sysex and active sensing included.  Ends on stdin EOF or SIGTERM.

Under PipeWire (``LC_AUDIO_SERVER=pipewire``) the port is livecomposer's own compiled JACK
input client, through the system's libjack (``pw-jack`` points it at PipeWire's), and T_NS
is the time JACK delivered the message; under jackd it is python-rtmidi's (see
midi_send.py for why both).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path


class RtmidiInput:
    """python-rtmidi's JACK input: its callback stamps and queues each message."""

    def __init__(self, client: str) -> None:
        import rtmidi

        self.midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client)
        self.midi.ignore_types(sysex=False, timing=False, active_sense=False)
        self.midi.set_callback(self._arrived)
        self._lines: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def _arrived(self, message, _data) -> None:
        t = time.monotonic_ns()
        with self._lock:
            self._lines.append((t, bytes(message[0])))
        self._wake.set()

    def get_ports(self) -> list[str]:
        return self.midi.get_ports()

    def open_port(self, index: int, name: str) -> None:
        self.midi.open_port(index, name)

    def open_virtual_port(self, name: str) -> None:
        self.midi.open_virtual_port(name)

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def take(self) -> list[tuple[int, bytes]]:
        with self._lock:
            out, self._lines = self._lines, []
        return out

    def close_port(self) -> None:
        self.midi.close_port()
        self.midi.delete()


def open_input(client: str):
    if os.environ.get("LC_AUDIO_SERVER") == "pipewire":
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from livecomposer.rt.jack_midi import JackMidiIn

        midi = JackMidiIn(client)
        midi.raw = True
        return midi
    return RtmidiInput(client)


#: PipeWire links a connection in the background, after jack_connect returned (jackd has
#: done it by then): wait until it shows, then this many cycles, before saying "ready".
SETTLE_CYCLES = 16


def wait_linked(midi, timeout: float = 5.0) -> None:
    """Under PipeWire, until our port's connection is in the graph (see SETTLE_CYCLES)."""
    if not hasattr(midi, "state"):
        return  # python-rtmidi on jackd: connected when open_port returned
    import ctypes

    from livecomposer.rt.jack_midi import CYCLES

    lib = midi._lib
    lib.jack_port_connected.argtypes, lib.jack_port_connected.restype = [ctypes.c_void_p], ctypes.c_int
    deadline = time.monotonic() + timeout
    while lib.jack_port_connected(midi._port) <= 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    start = int(midi.state[CYCLES])
    while int(midi.state[CYCLES]) < start + SETTLE_CYCLES and time.monotonic() < deadline:
        time.sleep(0.002)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client")
    parser.add_argument("--port", default="in")
    parser.add_argument("--source", default=None)
    args = parser.parse_args()
    midi = open_input(args.client)
    if args.source:
        deadline = time.monotonic() + 10
        while True:
            ports = [p for p in midi.get_ports() if args.source in p]
            if ports:
                break
            if time.monotonic() > deadline:
                print(f"error: no port contains {args.source!r}", flush=True)
                midi.close_port()
                return 1
            time.sleep(0.01)
        midi.open_port(midi.get_ports().index(ports[0]), args.port)
        wait_linked(midi)
        print(f"ready {ports[0]}", flush=True)
    else:
        midi.open_virtual_port(args.port)
        print(f"ready {args.client}:{args.port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()

    def flush() -> None:
        for stamp, message in midi.take():
            print(f"{stamp} " + " ".join(f"{b:02x}" for b in message), flush=True)

    while not stop.is_set():
        midi.wait(0.05)
        flush()
    time.sleep(0.05)
    flush()
    midi.close_port()
    return 0


if __name__ == "__main__":
    sys.exit(main())
