"""Engine figures through real JACK ports (when a JACK server answers).

A keyboard stand-in (an rtmidi virtual output in this process) plays into the engine's
rtmidi input; the engine's virtual output is read by a DAW stand-in (an rtmidi input).
Two figures: what our code adds (the input's stamp, the JACK time of the cycle that
carried the message, -> ``send`` returned), and the whole loop keyboard -> DAW (the
keyboard's send -> the JACK time of the cycle that delivered it to the DAW stand-in, see
:mod:`.receiver`), which includes JACK's period boundaries (64 frames at 48 kHz: 1.33 ms).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

from ..kernel.engine import Engine
from ..kernel.stats import LatencyRing
from ..kernel.plugin import Plugin
from . import BenchOptions, Measurement, skipped, summarize
from .receiver import JackReceiver


class _Thru(Plugin):
    name = "bench_thru"


def jack_running() -> bool:
    try:
        return subprocess.run(["jack_lsp"], capture_output=True, timeout=3, env=dict(os.environ, JACK_NO_START_SERVER="1")).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def thru_through_jack(count: int, spacing_s: float = 0.001) -> list[Measurement]:
    import rtmidi

    from ..ports.inputs import open_inputs
    from ..ports.outputs import open_output

    tag = f"b{os.getpid()}"
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"kbd-{tag}")
    keyboard.open_virtual_port("out")
    received: list[int] = []
    got_all = threading.Event()

    def on_message(stamp: int, message: bytes) -> None:
        if message[0] & 0xF0 in (0x80, 0x90):
            received.append(stamp)
            if len(received) >= count:
                got_all.set()

    output = open_output("jack", virtual=f"lc-{tag}")
    inputs = open_inputs("jack", f"kbd-{tag}")
    daw = JackReceiver(f"daw-{tag}", source=f"lc-{tag}", on_message=on_message)
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
        daw.close()
        keyboard.close_port()
        del keyboard
    loop = [r - s for r, s in zip(received, sent_at)]
    note = f"{len(received)}/{count} arrived"
    return [summarize("engine.thru.jack.added", added, note), summarize("engine.thru.jack.loop", loop, note + ", keyboard -> DAW incl. JACK periods")]


def measure(options: BenchOptions) -> list[Measurement]:
    if not jack_running():
        return [skipped("engine.thru.jack", "no JACK server answers (start jackd)")]
    return thru_through_jack(500 if options.quick else options.events)
