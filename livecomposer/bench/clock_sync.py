"""MIDI clock through a private JACK server: following a DAW's clock, sending ours, and the monitor's under-runs.

Measured through real JACK ports when ``jackd`` is installed (a private server on the dummy
driver is started and stopped here), with a second process playing the DAW's clock:

- ``clock follow <case>``: |estimated - true| BPM after each tick once locked, for a steady,
  a drifting and a jittered clock (reported in milli-BPM in the *_us fields' place: see note).
- ``clock send interval error``: |tick interval - ideal| of ``clock_leader`` running in the
  live engine, as a receiving process timestamps the ticks through JACK.
- ``monitor under-runs``: PortAudio output under-flows of the built-in synth over a run.

The DAW's clock is a second process: ``python -m livecomposer.bench.clock_sync send-clock ...``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid

import numpy as np

from ..kernel.events import NS_PER_MS, NS_PER_S
from . import BenchOptions, Measurement, skipped, summarize
from .jackd import JackUnavailable, jack_available, jack_period, private_server
from .receiver import JackReceiver


# -- the DAW stand-in: a process that sends MIDI clock ---------------------------------------------
def clock_schedule(bpm: float, seconds: float, drift_bpm_per_s: float = 0.0, jitter_ms: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(send offsets ns, true BPM at each tick) for a clock starting at ``bpm`` and ramping by
    ``drift_bpm_per_s``, each tick displaced by Gaussian jitter (kept in order)."""
    ideal, tempos, t = [], [], 0.0
    while t < seconds * NS_PER_S:
        b = bpm + drift_bpm_per_s * t / NS_PER_S
        ideal.append(t)
        tempos.append(b)
        t += 60.0 * NS_PER_S / (b * 24)
    rng = np.random.default_rng(seed)
    sent = np.asarray(ideal) + rng.normal(0.0, jitter_ms * NS_PER_MS, len(ideal)) if jitter_ms > 0 else np.asarray(ideal)
    sent = np.maximum.accumulate(np.maximum(sent, 0.0))
    return sent.astype(np.int64), np.asarray(tempos)


def send_clock_main(argv: list[str]) -> int:
    """``send-clock CLIENT --bpm B --seconds S [--drift D] [--jitter MS] [--seed N]``: open a JACK
    virtual output, print ``ready CLIENT:clock``, wait for ``go`` on stdin, send START then the
    ticks on schedule, then STOP, and print ``done N``."""
    from ..kernel.clock import MonotonicClock
    from ..rt.priority import ENGINE, make_realtime
    from ..rt.jack_midi_out import JackMidiOut

    p = argparse.ArgumentParser(prog="send-clock")
    p.add_argument("client")
    p.add_argument("--bpm", type=float, default=120.0)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--drift", type=float, default=0.0)
    p.add_argument("--jitter", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    offsets, _ = clock_schedule(args.bpm, args.seconds, args.drift, args.jitter, args.seed)
    # A DAW schedules ahead and places each tick on its own sample: so does this stand-in,
    # queueing every tick 2 ms early stamped with its due time (a late wake-up on a busy
    # machine does not move it).
    out = JackMidiOut(args.client)
    out.open_virtual_port("clock")
    print(f"ready {out.client_name}:clock", flush=True)
    line = sys.stdin.readline()
    if line.strip() != "go":
        out.close_port()
        return 1
    make_realtime(ENGINE)  # a DAW's sequencer thread, below JACK's clients
    clock = MonotonicClock()
    start = clock.now() + 50 * NS_PER_MS
    clock.sleep_until(start - NS_PER_MS)
    out.send_message([0xFA], start - NS_PER_MS)
    for offset in offsets:
        due = start + int(offset)
        clock.sleep_until(due - 2 * NS_PER_MS)
        out.send_message([0xF8], due)
    time.sleep(0.01)
    out.send_message([0xFC])
    time.sleep(0.05)
    print(f"done {len(offsets)}", flush=True)
    sys.stdin.readline()  # wait for the parent to let go, so the port does not vanish mid-read
    out.close_port()
    return 0


def follow_clock_through_jack(bpm: float, seconds: float, drift: float = 0.0, jitter_ms: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, object]:
    """Run the clock-sending process against a :class:`~.receiver.JackReceiver` on the current JACK
    server; feed what arrives to a MIDI-following :class:`~livecomposer.kernel.tempo.Tempo` in order.
    Returns (estimated BPM after each tick, true BPM of each tick, the Tempo)."""
    from ..kernel.events import Kind, parse
    from ..kernel.tempo import Tempo

    receiver = JackReceiver(f"lc-follow-{uuid.uuid4().hex[:6]}")
    sender = subprocess.Popen(
        [sys.executable, "-m", "livecomposer.bench.clock_sync", "send-clock", f"lc-daw-{uuid.uuid4().hex[:6]}",
         "--bpm", str(bpm), "--seconds", str(seconds), "--drift", str(drift), "--jitter", str(jitter_ms), "--seed", str(seed)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        ready = sender.stdout.readline().split()  # type: ignore[union-attr]
        if not ready or ready[0] != "ready":
            raise JackUnavailable(f"clock sender did not start: {ready}")
        subprocess.run(["jack_connect", ready[1], receiver.port], check=True)
        time.sleep(0.2)  # rtmidi's JACK ports, connected within milliseconds of appearing, lost a whole stream in 1 of 18 starts here
        sender.stdin.write("go\n")  # type: ignore[union-attr]
        sender.stdin.flush()  # type: ignore[union-attr]
        done = sender.stdout.readline()  # type: ignore[union-attr]
        if not done.startswith("done"):
            raise JackUnavailable(f"clock sender failed: {done!r}")
        time.sleep(0.05)
        messages = receiver.take()
        sender.stdin.write("\n")  # type: ignore[union-attr]
        sender.stdin.flush()  # type: ignore[union-attr]
        sender.wait(10)
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
        receiver.close()
    _, true_bpm = clock_schedule(bpm, seconds, drift, jitter_ms, seed)
    tempo = Tempo(bpm=100.0, source="midi")
    estimates = []
    for t, data in messages:
        event = parse(data, t)
        if event is None:
            continue
        tempo.observe_clock(event)
        if event.kind is Kind.CLOCK:
            estimates.append(tempo.bpm)
    return np.asarray(estimates), true_bpm, tempo


# -- the measurements -----------------------------------------------------------------------------
FOLLOW_CASES = {
    "steady 120": dict(bpm=120.0),
    "drift 100->116 (+2 BPM/s)": dict(bpm=100.0, drift=2.0),
    "jitter 1 ms at 128": dict(bpm=128.0, jitter_ms=1.0),
    "jitter 2 ms + drift at 90": dict(bpm=90.0, drift=-1.0, jitter_ms=2.0),
}


def bpm_errors(estimates: np.ndarray, true_bpm: np.ndarray, skip: int = 48) -> np.ndarray:
    n = min(len(estimates), len(true_bpm))
    return np.abs(estimates[skip:n] - true_bpm[skip:n])


def _bpm_measurement(name: str, errors: np.ndarray, note: str) -> Measurement:
    """BPM errors reported in the Measurement's µs fields as milli-BPM (1 = 0.001 BPM)."""
    m = summarize(name, (errors * 1e6).astype(np.int64), note)  # 1e6 "ns" = 1000 "us" per BPM
    return m


def measure_clock_follow(seconds: float) -> list[Measurement]:
    out = []
    for label, case in FOLLOW_CASES.items():
        estimates, true_bpm, tempo = follow_clock_through_jack(seconds=seconds, **case)
        errors = bpm_errors(estimates, true_bpm)
        out.append(_bpm_measurement(
            f"clock follow {label}: BPM error in milli-BPM (JACK)", errors,
            f"the *_us fields hold |estimated - true BPM| x 1000 after each tick from the 3rd beat; {len(estimates)} ticks; "
            f"outliers {tempo.follower.outliers}, relocks {tempo.follower.relocks}",
        ))
    return out


def measure_clock_send(seconds: float) -> list[Measurement]:
    """clock_leader in the live engine -> JACK -> a receiving process: tick interval error,
    at our send call and as received (the latter includes JACK's once-per-period delivery)."""
    from ..kernel.engine import Engine
    from ..plugins.tempo import ClockLeader
    from ..kernel.tempo import Tempo

    output, port_name = _jack_output_port()
    receiver = JackReceiver(f"lc-send-{uuid.uuid4().hex[:6]}")
    try:
        subprocess.run(["jack_connect", port_name, receiver.port], check=True)
        time.sleep(0.2)
        engine = Engine(ClockLeader(start_on="beat"), output=output, tempo=Tempo(bpm=120.0))
        with engine:
            time.sleep(seconds)
        time.sleep(0.05)
        messages = receiver.take()
    finally:
        receiver.close()
    ideal = NS_PER_S * 60 / (120.0 * 24)
    results = []
    for label, times in (
        ("at send", [t for t, m in output.stamps if m == [0xF8]]),
        ("received through JACK", [t for t, m in messages if m == b"\xf8"]),
    ):
        ticks = np.asarray(times, dtype=np.int64)
        if ticks.size < 3:
            results.append(summarize(f"clock send interval error {label}", [], "no ticks"))
            continue
        errors = np.abs(np.diff(ticks) - ideal)
        results.append(summarize(f"clock send interval error {label}", errors.astype(np.int64),
                                 f"|tick interval - {ideal / 1e6:.3f} ms| at 120 BPM from clock_leader in the live engine; {ticks.size} ticks"))
    return results


def _jack_output_port():
    """A JACK virtual output (our frame-accurate client) wrapped as an OutputPort that also
    notes when each message was sent."""
    from ..ports.base import OutputPort
    from ..rt.jack_midi_out import JackMidiOut

    class JackOut(OutputPort):
        def __init__(self) -> None:
            self.midi = JackMidiOut(f"lc-out-{uuid.uuid4().hex[:6]}")
            self.midi.open_virtual_port("out")
            self.name = self.midi.port_name or ""
            self.stamps: list[tuple[int, list[int]]] = []

        def send(self, message, due_ns: int | None = None) -> None:
            self.midi.send_message(message, due_ns)
            self.stamps.append((time.monotonic_ns(), list(message)))

        def close(self) -> None:
            time.sleep(0.03)  # messages leave a period after send: let the last ones go
            self.midi.close_port()

    port = JackOut()
    return port, port.name


def _server_xruns(seconds: float) -> int:
    """xruns JACK reports server-wide over ``seconds`` with none of our audio running: the
    machine's own floor (on a shared VM the dummy driver's timer alone wakes late)."""
    from ..rt.jackclient import JackClient

    watch = JackClient("lc-xrun-floor", count_xruns=True)
    try:
        time.sleep(seconds)
        return watch.xruns
    finally:
        watch.close()


def measure_monitor(seconds: float, blocksize: int = 256) -> list[Measurement]:
    """The built-in synth as the live engine's monitor on JACK's dummy driver, playing a busy
    part (three-note chords, ten a second, fed to the engine's input): synth block render
    times; gaps (the audio callback found the ring short: the renderer fell behind);
    PortAudio's under-flow flags; and the server's xruns over the same window, beside the
    floor measured with no audio client at all."""
    from ..audio.monitor import Monitor
    from ..kernel.clock import MonotonicClock
    from ..kernel.engine import Engine
    from ..kernel.plugin import Plugin
    from ..rt.jackclient import JackClient
    from ..ports.memory import MemoryInput, MemoryOutput

    floor_s = max(1.0, seconds / 3)
    floor = _server_xruns(floor_s)
    clock = MonotonicClock()
    keyboard = MemoryInput()
    monitor = Monitor(blocksize=blocksize)
    monitor.start()
    watch = JackClient("lc-xrun-watch", count_xruns=True)
    engine = Engine(Plugin(), inputs=[keyboard], output=MemoryOutput(clock.now), observers=[monitor])
    try:
        with engine:  # closes the monitor on the way out
            time.sleep(0.5)  # let the stream settle; count from here
            start = (monitor.blocks, monitor.underruns, monitor.starved, watch.xruns)
            t_end = time.monotonic() + seconds
            k = 0
            while time.monotonic() < t_end:
                notes = [48 + (k * 7) % 36, 60 + (k * 5) % 24, 64 + (k * 3) % 12]
                for n in notes:
                    keyboard.feed([0x90, n, 90], clock.now())
                time.sleep(0.07)
                for n in notes:
                    keyboard.feed([0x80, n, 0], clock.now())
                time.sleep(0.03)
                k += 1
            blocks, underruns, gaps, xruns = (
                now - before for now, before in zip((monitor.blocks, monitor.underruns, monitor.starved, watch.xruns), start)
            )
    finally:
        monitor.close()
        watch.close()
    period = jack_period()
    return [summarize(
        f"monitor synth block render ({blocksize}-frame blocks, JACK period {period}, live engine)", monitor.recent_callback_ns(),
        f"over {seconds:.0f} s: {gaps} gaps in {blocks} blocks, {underruns} PortAudio under-flow flags, "
        f"{xruns} server xruns (floor with no audio client: {floor} in {floor_s:.0f} s); {engine.stats.notes_out} notes",
    )]


def measure(options: BenchOptions) -> list[Measurement]:
    if not jack_available():
        return [skipped("stage kit", "jackd is not installed: stage figures need JACK")]
    seconds = 2.0 if options.quick else 10.0
    monitor_s = 2.0 if options.quick else 60.0
    results: list[Measurement] = []
    with private_server(64):
        results += measure_clock_follow(seconds)
        results += measure_clock_send(seconds)
    # The monitor's 256-frame blocks on a 256-frame period (as an audio interface would be
    # set for them), then on the 64-frame period the MIDI figures use.
    from ..audio.monitor import MonitorError

    for period in (256, 64):
        with private_server(period):
            try:
                results += measure_monitor(monitor_s)
            except MonitorError as exc:  # no PortAudio here: the other figures still count
                results.append(skipped(f"monitor synth block render (JACK period {period})", str(exc)))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "send-clock":
        return send_clock_main(argv[1:])
    quick = "--quick" in argv
    for m in measure(BenchOptions(quick=quick)):
        print(m.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
