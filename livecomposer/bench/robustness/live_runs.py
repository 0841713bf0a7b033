"""Runs through the real parts: fuzz and floods through a JACK port into a live engine,
and a live engine beside a playing partner whose model is slow or fails.

The generators and the in-memory runs they build on are in :mod:`.runs`.
"""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass


from ...kernel.engine import Engine
from ...kernel.events import NS_PER_MS, NS_PER_S
from ...kernel.plugin import Parallel
from ...plugins.effects import Thru

from .runs import PROBE_CHANNEL, LedgerOutput, performance, rss_bytes


@dataclass
class JackFuzzResult:
    generated: int
    refused_by_rtmidi: int
    sent: int
    reached_engine: int
    bad: int
    ignored: int
    notes_after: bool
    stuck: dict


def fuzz_through_jack(n: int, seed: int = 3) -> JackFuzzResult:
    """``n`` fuzzed messages from an rtmidi JACK output in this process into a live engine's
    JACK input (thru, to a ledger output); then a note, which must come out (no EOX first:
    a sysex the fuzz left unterminated must not swallow it).
    Needs a running JACK server (JACK_DEFAULT_SERVER)."""
    import uuid

    import rtmidi

    from ...ports.inputs import open_inputs
    from . import fuzz

    client = f"lc-fuzz-{uuid.uuid4().hex[:6]}"
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
    keyboard.open_virtual_port("out")
    out = LedgerOutput()
    engine = Engine(Thru(), inputs=open_inputs("jack", [f"{client}:out"]), output=out)
    refused = sent = 0
    try:
        with engine:
            for message in fuzz.messages(n, seed=seed):
                if not fuzz.sendable(message):
                    refused += 1
                    continue
                keyboard.send_message(list(message))
                sent += 1
                if sent % 25 == 0:
                    time.sleep(0.001)
            last = -1
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and engine.stats.messages_in != last:
                last = engine.stats.messages_in
                time.sleep(0.3)
            stats = engine.stats
            reached, bad, ignored = stats.messages_in, stats.bad_messages, stats.ignored_messages
            before = out.note_offs
            out.probe(1, 64, time.monotonic_ns())
            keyboard.send_message([0x91, 64, 99])
            keyboard.send_message([0x81, 64, 0])
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (out.pending or out.note_offs == before):
                time.sleep(0.01)
            notes_after = not out.pending and out.note_offs > before
    finally:
        keyboard.close_port()
        keyboard.delete()
    return JackFuzzResult(n, refused, sent, reached, bad, ignored, notes_after, dict(out.sounding))


@dataclass
class FaultRunResult:
    latency_ns: list[int]
    model_steps: int
    partner_failures: int
    stuck: dict
    notes_in: int


def model_fault_run(mode: str, seconds: float, model_folder, delay: float = 0.1, seed: int = 0) -> FaultRunResult:
    """Thru beside a continuation partner whose model raises or takes ``delay`` s a step;
    the performance is played live for ``seconds``; the thru layer's added latency is what
    the performer would feel if the engine ever waited on the model."""
    from ...plugins.partners.continuation import Continuation
    from .faults import faulty_models

    out = LedgerOutput()
    with faulty_models(mode, delay) as made:
        graph = Parallel([Thru(id="dry"), Continuation(id="line", model=str(model_folder), channel=3, autostart=True, key="none")])
        engine = Engine(graph, output=out, seed=seed)
    messages = performance(seconds, seed=seed, notes_per_s=6.0, cc_per_s=5.0)
    with engine:
        start = time.monotonic_ns()
        for offset, message in messages:
            due = start + offset
            while (now := time.monotonic_ns()) < due:
                time.sleep(min(0.002, (due - now) / NS_PER_S))
            t = time.monotonic_ns()
            if message[0] == 0x90:
                out.probe(0, message[1], t)
            engine.sink(t, message)
        time.sleep(0.3)
        line = engine.graph.find("line")
        failures = getattr(line, "failures", 0)
    return FaultRunResult([ns for _, ns in out.samples], made[0].steps if made else 0, failures, dict(out.sounding), engine.stats.notes_in)


@dataclass
class JackFloodResult:
    rate: int
    seconds: float
    sent: int
    received: int
    dropped: int
    max_backlog: int
    rss_start: int
    rss_peak: int
    latency: list[int]
    stuck: dict
    notes_after: bool
    sounding_before_stop: int = 0  # notes still on at the end of the run, before the engine's stop released them


def flood_through_jack(rate: int = 10_000, seconds: float = 3.0, note_share: float = 0.2, seed: int = 0) -> JackFloodResult:
    """``rate`` messages a second from an rtmidi JACK output (in this process, a thread) into
    a live engine's JACK input, thru to a ledger output; probe notes on channel 16 every
    20 ms measure send-to-output latency (JACK's period included).  Needs a JACK server."""
    import uuid

    import rtmidi

    from ...ports.inputs import open_inputs

    rng = random.Random(seed)
    client = f"lc-flood-{uuid.uuid4().hex[:6]}"
    keyboard = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=client)
    keyboard.open_virtual_port("out")
    out = LedgerOutput()
    engine = Engine(Thru(), inputs=open_inputs("jack", [f"{client}:out"]), output=out)
    gc.collect()
    rss_start = rss_peak = rss_bytes()
    sent = max_backlog = 0
    held: list[tuple[int, int]] = []
    send = keyboard.send_message
    try:
        with engine:
            time.sleep(0.2)
            start = time.monotonic_ns()
            end = start + int(seconds * NS_PER_S)
            next_probe = next_rss = start
            probe_note = 0
            while (now := time.monotonic_ns()) < end:
                owed = int(rate * (now - start) / NS_PER_S) - sent
                for _ in range(owed):
                    r = rng.random()
                    if r < note_share:
                        if held and (rng.random() < 0.5 or len(held) > 24):
                            ch, note = held.pop(rng.randrange(len(held)))
                            send([0x80 | ch, note, 0])
                        else:
                            ch, note = rng.randrange(15), rng.randrange(128)
                            send([0x90 | ch, note, 1 + rng.randrange(127)])
                            held.append((ch, note))
                    else:
                        send([0xB0 | rng.randrange(15), rng.randrange(120), rng.randrange(128)])
                    sent += 1
                if now >= next_probe:
                    probe_note = (probe_note + 1) % 128
                    out.probe(PROBE_CHANNEL, probe_note, time.monotonic_ns())
                    send([0x90 | PROBE_CHANNEL, probe_note, 64])
                    send([0x80 | PROBE_CHANNEL, probe_note, 0])
                    sent += 2
                    next_probe = now + 20 * NS_PER_MS
                if now >= next_rss:
                    rss_peak = max(rss_peak, rss_bytes())
                    next_rss = now + 100 * NS_PER_MS
                max_backlog = max(max_backlog, len(engine._raw))
                time.sleep(0.0005)
            for ch, note in held:
                send([0x80 | ch, note, 0])
                sent += 1
            deadline = time.monotonic() + 5
            last = -1
            while time.monotonic() < deadline and engine.stats.messages_in != last:
                last = engine.stats.messages_in
                time.sleep(0.2)
            received = engine.stats.messages_in
            before = out.note_offs
            send([0x91, 64, 99])
            send([0x81, 64, 0])
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and out.note_offs == before:
                time.sleep(0.01)
            notes_after = out.note_offs > before
            sounding = sum(out.sounding.values())
    finally:
        keyboard.close_port()
        keyboard.delete()
    return JackFloodResult(rate, seconds, sent, received, engine.stats.dropped, max_backlog, rss_start,
                           max(rss_peak, rss_bytes()), [ns for _, ns in out.samples], dict(out.sounding), notes_after,
                           sounding)
