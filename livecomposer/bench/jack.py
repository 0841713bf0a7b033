"""Engine figures through real JACK ports (when a JACK server answers).

A keyboard stand-in (an rtmidi virtual output in this process) plays into the engine's
rtmidi input; the engine's virtual output is read by a DAW stand-in (an rtmidi input).
Two figures: what our code adds (input callback stamp -> ``send`` returned, the same
definition as the in-memory figure), and the whole loop keyboard -> DAW, which includes
JACK's two period boundaries (64 frames at 48 kHz: 1.33 ms each).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

from ..engine import Engine, LatencyRing
from ..plugins.base import Plugin
from . import BenchOptions, Measurement, summarize


class _Thru(Plugin):
    name = "bench_thru"


def jack_running() -> bool:
    try:
        return subprocess.run(["jack_lsp"], capture_output=True, timeout=3, env=dict(os.environ, JACK_NO_START_SERVER="1")).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def thru_through_jack(count: int, spacing_s: float = 0.001) -> list[Measurement]:
    import rtmidi

    from ..ports.rtmidi_ports import open_inputs, open_output

    tag = f"b{os.getpid()}"
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"kbd-{tag}")
    keyboard.open_virtual_port("out")
    daw = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=f"daw-{tag}")
    received: list[int] = []
    got_all = threading.Event()

    def on_message(message, _data) -> None:
        if message[0][0] & 0xF0 in (0x80, 0x90):
            received.append(time.monotonic_ns())
            if len(received) >= count:
                got_all.set()

    daw.set_callback(on_message)
    output = open_output("jack", virtual=f"lc-{tag}")
    inputs = open_inputs("jack", f"kbd-{tag}")
    daw_ports = daw.get_ports()
    daw.open_port(next(i for i, p in enumerate(daw_ports) if f"lc-{tag}" in p), "in")
    engine = Engine(_Thru(), inputs=inputs, output=output)
    engine.stats.latency = LatencyRing(count + 64)
    sent_at: list[int] = []
    try:
        with engine:
            time.sleep(0.2)
            for i in range(count):
                note = 36 + (i // 2) % 48
                sent_at.append(time.monotonic_ns())
                keyboard.send_message([0x90, note, 100] if i % 2 == 0 else [0x80, note, 0])
                time.sleep(spacing_s)
            got_all.wait(2.0)
            added = engine.stats.latency.values()
    finally:
        daw.close_port()
        keyboard.close_port()
        del daw, keyboard
    loop = [r - s for r, s in zip(received, sent_at)]
    note = f"{len(received)}/{count} arrived"
    return [summarize("engine.thru.jack.added", added, note), summarize("engine.thru.jack.loop", loop, note + ", keyboard -> DAW incl. JACK periods")]


def measure(options: BenchOptions) -> list[Measurement]:
    if not jack_running():
        return [Measurement("engine.thru.jack", 0, float("nan"), float("nan"), float("nan"), "skipped: no JACK server answers (start jackd)")]
    return thru_through_jack(500 if options.quick else options.events)
