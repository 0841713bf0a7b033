"""Play MIDI from a separate process through a real JACK virtual output port (a keyboard stand-in).

Prints ``ready PORTNAME`` once the port exists, then reads commands from stdin, one a line:
``send HEX...`` (e.g. ``send 90 3c 64``) sends at once and answers ``sent T_NS`` (the
time.monotonic_ns just before sending); ``wait MS`` sleeps; ``quit`` ends.
Usage: python midi_send.py CLIENT [--port NAME]

Under PipeWire (``LC_AUDIO_SERVER=pipewire``) the port is livecomposer's own compiled JACK
output client, through the system's libjack, which ``pw-jack`` points at PipeWire's:
python-rtmidi's wheel carries its own libjack, which cannot reach PipeWire.  Under jackd it
is python-rtmidi's, which starts in a tenth of a second (ours compiles its callback first,
seconds on a loaded machine).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def open_output(client: str, port: str):
    """``(sender, full port name, close)``: a JACK MIDI output others connect to."""
    if os.environ.get("LC_AUDIO_SERVER") == "pipewire":
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from livecomposer.rt.jack_midi_out import JackMidiOut

        out = JackMidiOut(client)
        out.open_virtual_port(port)
        wait_listed(out.port_name)
        return out, out.port_name, out.close_port
    import rtmidi

    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
    out.open_virtual_port(port)
    return out, f"{client}:{port}", lambda: (out.close_port(), out.delete())


def wait_listed(port: str, timeout: float = 5.0) -> None:
    """Until another client lists ``port``: PipeWire tells other clients of a new port a
    moment after it was registered (jackd before jack_port_register returns), and a test
    that lists ports once this stand-in is ready must find it."""
    from livecomposer.rt.jackclient import JackClient

    other = JackClient(f"{port.split(':')[0]}-check")
    try:
        deadline = time.monotonic() + timeout
        while port not in other.ports() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        other.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client")
    parser.add_argument("--port", default="out")
    args = parser.parse_args()
    out, name, close = open_output(args.client, args.port)
    print(f"ready {name}", flush=True)
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
    close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
