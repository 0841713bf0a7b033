"""A fast keyboard stand-in for the stage tests: another process that sends a known stream.

``python tests/helpers/stream_send.py CLIENT COUNT [--burst N] [--seed S]`` opens a JACK
virtual output ``CLIENT:out``, prints ``ready CLIENT:out``, waits for a line on stdin (the
receiver is connected), then sends COUNT random CC messages, ``--burst`` at a time with a
1 ms pause between bursts (10 per burst: 10,000 a second), prints ``done xruns=N`` (the
server's xruns while it ran) and waits for stdin to close.  :func:`stream` gives the same messages, so the receiver can compare.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path


def stream(count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [bytes([0xB0 | rng.randrange(15), rng.randrange(120), rng.randrange(128)]) for _ in range(count)]


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from livecomposer.rt.jack_midi_out import JackMidiOut

    parser = argparse.ArgumentParser()
    parser.add_argument("client")
    parser.add_argument("count", type=int)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # Our own JACK client (the system's libjack): it counts the server's xruns, in which
    # JACK drops a late client's cycle, so a receiver can tell that loss from its own.
    out = JackMidiOut(args.client)
    out.open_virtual_port("out")
    print(f"ready {out.client_name}:out", flush=True)
    sys.stdin.readline()
    messages = stream(args.count, args.seed)
    for start in range(0, len(messages), args.burst):
        for message in messages[start:start + args.burst]:
            out.send_message(list(message))
        time.sleep(0.001)
    deadline = time.monotonic() + 2.0
    while out.written < len(messages) and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        print(f"done xruns={out.xruns}", flush=True)
        sys.stdin.read()
    except (BrokenPipeError, OSError):  # the receiver went first
        pass
    out.close_port()
    return 0


if __name__ == "__main__":
    sys.exit(main())
