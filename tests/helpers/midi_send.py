"""Play MIDI from a separate process through a real JACK virtual output port (a keyboard stand-in).

Prints ``ready PORTNAME`` once the port exists, then reads commands from stdin, one a line:
``send HEX...`` (e.g. ``send 90 3c 64``) sends at once and answers ``sent T_NS`` (the
time.monotonic_ns just before sending); ``wait MS`` sleeps; ``quit`` ends.
Usage: python midi_send.py CLIENT [--port NAME]
"""

from __future__ import annotations

import argparse
import sys
import time

import rtmidi


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client")
    parser.add_argument("--port", default="out")
    args = parser.parse_args()
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=args.client)
    out.open_virtual_port(args.port)
    print(f"ready {args.client}:{args.port}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "send":
            data = [int(w, 16) for w in words[1:]]
            t = time.monotonic_ns()
            out.send_message(data)
            print(f"sent {t}", flush=True)
        elif words[0] == "wait":
            time.sleep(float(words[1]) / 1000)
        elif words[0] == "quit":
            break
    out.close_port()
    out.delete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
