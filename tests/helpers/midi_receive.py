"""Receive MIDI in a separate process through a real JACK virtual input port (a DAW stand-in).

Usage: python midi_receive.py CLIENT [--port NAME] [--source SUBSTRING]

Prints ``ready PORTNAME`` once the port exists (and, with --source, once it is connected to
the first JACK output port containing SUBSTRING, waiting up to 10 s for it to appear), then
one line per message: ``T_NS HEX HEX ...`` with time.monotonic_ns at reception.  Ends on
stdin EOF or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import rtmidi


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client")
    parser.add_argument("--port", default="in")
    parser.add_argument("--source", default=None)
    args = parser.parse_args()
    lines: list[str] = []
    lock = threading.Lock()
    wake = threading.Event()

    def callback(message, _data) -> None:
        t = time.monotonic_ns()
        with lock:
            lines.append(f"{t} " + " ".join(f"{b:02x}" for b in message[0]))
        wake.set()

    midi = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=args.client)
    midi.ignore_types(sysex=False, timing=False, active_sense=False)
    midi.set_callback(callback)
    if args.source:
        deadline = time.monotonic() + 10
        while True:
            ports = [p for p in midi.get_ports() if args.source in p]
            if ports:
                break
            if time.monotonic() > deadline:
                print(f"error: no port contains {args.source!r}", flush=True)
                return 1
            time.sleep(0.01)
        midi.open_port(midi.get_ports().index(ports[0]), args.port)
        print(f"ready {ports[0]}", flush=True)
    else:
        midi.open_virtual_port(args.port)
        print(f"ready {args.client}:{args.port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        wake.wait(0.05)
        wake.clear()
        with lock:
            out, lines[:] = list(lines), []
        for line in out:
            print(line, flush=True)
    time.sleep(0.05)
    with lock:
        for line in lines:
            print(line, flush=True)
    midi.close_port()
    midi.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
