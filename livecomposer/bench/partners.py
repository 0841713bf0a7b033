"""Playing-partner figures: the reactive path, and how soon an answer starts.

* ``partners.harmonizer.memory``: performer note-on stamped by the input callback -> the
  first harmony note-on's ``send`` returned, on the live engine (real clock, inference
  worker thread) with in-memory ports.  ``...added`` is the same minus the thru copy of
  the performer's note: what asking the model adds; ``...thru`` is the thru copy's own
  latency in that graph (the harmonizer must not delay the performer's notes).  The note
  says where the answers were computed (engine thread or worker).
* ``partners.harmonizer.jack``: the same through real JACK ports (keyboard stand-in ->
  engine -> DAW stand-in, all rtmidi), when a JACK server answers; ``...added`` is the
  harmony's arrival minus the thru note's arrival at the DAW.
* ``partners.call_response.first_note``: the moment the call is over (last note-off plus
  the silence threshold) -> the answer's first note-on sent.

The shipped models are used (``chorale-harmony`` for the harmonizer, ``folk-melody`` for
call and response); a missing model gives a row that says so.
"""

from __future__ import annotations

import bisect
import os
import time

from ..kernel.engine import Engine
from ..kernel.events import NS_PER_S
from ..model import CheckpointError, resolve
from ..plugins.effects import Thru
from ..kernel.plugin import Parallel
from ..ports.memory import MemoryInput, MemoryOutput
from ..kernel.tempo import Tempo
from . import BenchOptions, Measurement, skipped, summarize
from .receiver import JackReceiver

#: A JACK stamp is the start of the cycle that carried a message: up to a period (64 frames
#: at 48 kHz) before the keyboard's own reading of when it sent it.
PERIOD_SLACK_NS = 1_400_000

HARMONY_CHANNEL = 4  # 1-16, as in the presets


def _missing(name: str, model: str) -> Measurement | None:
    try:
        resolve(model)
    except CheckpointError as exc:
        return skipped(name, str(exc))
    return None


def _harmonizer(model: str):
    from ..plugins.partners import Harmonizer

    return Harmonizer(id="choir", model=model, channel=HARMONY_CHANNEL, voices=2, key="none")


def harmonizer_memory(notes: int, model: str = "chorale-harmony", hold_s: float = 0.004, gap_s: float = 0.004) -> list[Measurement]:
    missing = _missing("partners.harmonizer.memory", model)
    if missing:
        return [missing]
    inp = MemoryInput("bench-in")
    out = MemoryOutput(time.monotonic_ns, "bench-out")
    stamps: list[int] = []
    harmonizer = _harmonizer(model)
    engine = Engine(Parallel([Thru(), harmonizer]), inputs=[inp], output=out)
    with engine:
        time.sleep(0.1)
        for i in range(notes):
            note = 60 + (i * 7) % 24
            t = time.monotonic_ns()
            stamps.append(t)
            inp.feed([0x90, note, 90], t)
            time.sleep(hold_s)
            inp.feed([0x80, note, 0], time.monotonic_ns())
            time.sleep(gap_s)
        time.sleep(0.1)
        failures = engine.stats.plugin_failures
    thru_on = [t for t, m in out.sent if m[0] == 0x90]
    thru = [t - stamp for t, stamp in zip(thru_on, stamps)] if len(thru_on) == len(stamps) else []
    harmony_ch = 0x90 | (HARMONY_CHANNEL - 1)
    # The first harmony note-on after each performer note-on (none if it was released first).
    harmony: list[int] = []
    added: list[int] = []
    firsts = [t for t, m in out.sent if m[0] == harmony_ch]
    j = 0
    for k, stamp in enumerate(stamps):
        nxt = stamps[k + 1] if k + 1 < len(stamps) else 2**62
        while j < len(firsts) and firsts[j] < stamp:
            j += 1
        if j < len(firsts) and firsts[j] < nxt:
            harmony.append(firsts[j] - stamp)
            if k < len(thru_on):
                added.append(firsts[j] - thru_on[k])
    cost = harmonizer.step_cost
    note = (f"{len(harmony)}/{notes} notes harmonized ({cost.inline} answers computed on the engine thread, "
            f"{cost.offloaded} on the worker), {failures} plugin failures; model {model}")
    return [
        summarize("partners.harmonizer.memory", harmony, note + "; performer note-on stamp -> harmony note-on sent"),
        summarize("partners.harmonizer.memory.added", added, "harmony note-on sent - thru note-on sent"),
        summarize("partners.harmonizer.memory.thru", thru, "performer note-on stamp -> its thru copy sent, harmonizer in the graph"),
    ]


def harmonizer_jack(notes: int, model: str = "chorale-harmony", hold_s: float = 0.004, gap_s: float = 0.006) -> list[Measurement]:
    from .jack import jack_running

    if not jack_running():
        return [skipped("partners.harmonizer.jack", "no JACK server answers (start jackd)")]
    missing = _missing("partners.harmonizer.jack", model)
    if missing:
        return [missing]
    import rtmidi

    from ..ports.inputs import open_inputs
    from ..ports.outputs import open_output

    tag = f"p{os.getpid()}"
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=f"kbd-{tag}")
    keyboard.open_virtual_port("out")
    thru_at: list[int] = []
    harmony_at: list[int] = []
    harmony_status = 0x90 | (HARMONY_CHANNEL - 1)

    def on_message(stamp: int, message: bytes) -> None:
        status = message[0]
        if status == 0x90:
            thru_at.append(stamp)
        elif status == harmony_status:
            harmony_at.append(stamp)

    output = open_output("jack", virtual=f"lc-{tag}")
    inputs = open_inputs("jack", f"kbd-{tag}")
    daw = JackReceiver(f"daw-{tag}", source=f"lc-{tag}", on_message=on_message)
    engine = Engine(Parallel([Thru(), _harmonizer(model)]), inputs=inputs, output=output)
    sent_at: list[int] = []
    try:
        with engine:
            time.sleep(0.3)
            for i in range(notes):
                note = 60 + (i * 7) % 24
                sent_at.append(time.monotonic_ns())
                keyboard.send_message([0x90, note, 90])
                time.sleep(hold_s)
                keyboard.send_message([0x80, note, 0])
                time.sleep(gap_s)
            time.sleep(0.2)
    finally:
        daw.close()
        keyboard.close_port()
        del keyboard
    loop, added = [], []
    harmony_at.sort()
    thru_at.sort()
    for k, sent in enumerate(sent_at):
        # the window of note k; JACK stamps may precede the keyboard's reading by a period
        start = sent - PERIOD_SLACK_NS
        end = (sent_at[k + 1] if k + 1 < len(sent_at) else 2**62) - PERIOD_SLACK_NS
        h = bisect.bisect_left(harmony_at, start)
        if h < len(harmony_at) and harmony_at[h] < end:
            loop.append(harmony_at[h] - sent)
            t = bisect.bisect_left(thru_at, start)
            if t < len(thru_at) and thru_at[t] < end:
                added.append(harmony_at[h] - thru_at[t])
    note = f"{len(loop)}/{notes} notes harmonized through JACK; model {model}"
    return [
        summarize("partners.harmonizer.jack", loop, note + "; keyboard send -> DAW receives the harmony (incl. JACK periods)"),
        summarize("partners.harmonizer.jack.added", added, "harmony arrival - thru arrival at the DAW"),
    ]


def first_answer_note(calls: int, model: str = "folk-melody", silence_s: float = 0.1) -> Measurement:
    """Trigger (last note-off + silence) -> the answer's first note-on sent, live; answers of
    two bars at 100 BPM as in the duet preset (each cut short by the next call)."""
    missing = _missing("partners.call_response.first_note", model)
    if missing:
        return missing
    from ..plugins.partners import CallResponse

    inp = MemoryInput("bench-in")
    out = MemoryOutput(time.monotonic_ns, "bench-out")
    answer = CallResponse(id="answer", model=model, channel=2, silence=silence_s, length=2, unit="bars", key="D major")
    triggers: list[int] = []
    with Engine(Parallel([Thru(), answer]), inputs=[inp], output=out, tempo=Tempo(100.0)):
        time.sleep(0.1)
        for i in range(calls):
            for k, note in enumerate((62, 66, 69, 74)):
                inp.feed([0x90, note + (i % 3), 80], time.monotonic_ns())
                time.sleep(0.03)
                off = time.monotonic_ns()
                inp.feed([0x80, note + (i % 3), 0], off)
                time.sleep(0.01)
            triggers.append(off + int(silence_s * NS_PER_S))
            time.sleep(silence_s + 0.15)  # the answer starts, then the next call interrupts it
        time.sleep(0.1)
    answers = [t for t, m in out.sent if m[0] == 0x91]
    samples = []
    for k, trigger in enumerate(triggers):
        first = next((t for t in answers if t >= trigger - 1_000_000), None)
        if first is not None and (k + 1 >= len(triggers) or first < triggers[k + 1]):
            samples.append(first - trigger)
    return summarize("partners.call_response.first_note", samples, f"{len(samples)}/{calls} answers; trigger -> first answer note sent; model {model}")


def measure(options: BenchOptions) -> list[Measurement]:
    notes = 300 if options.quick else max(500, options.events // 2)
    calls = 10 if options.quick else 60
    return harmonizer_memory(notes) + harmonizer_jack(notes) + [first_answer_note(calls)]
