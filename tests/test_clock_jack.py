"""MIDI clock across processes through real JACK ports.

Following: a second process plays the DAW, sending clock at steady, drifting and jittered
tempos; our follower must find the tempo and the beat.  Leading: clock_leader in the live
engine sends clock to a receiving JACK client, whose follower must find our tempo.
The error figures themselves are reported by ``livecomposer bench`` (bench/clock_sync.py), not asserted
tightly here: these bounds catch a broken follower, not a slow machine."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

from livecomposer.bench import clock_sync
from livecomposer.bench.receiver import JackReceiver
from livecomposer.kernel.events import parse
from livecomposer.kernel.tempo import Tempo

pytestmark = pytest.mark.jack


@pytest.mark.parametrize(
    "case, bound",
    [
        (dict(bpm=120.0), 0.3),
        (dict(bpm=100.0, drift=2.0), 1.0),  # a 2 BPM/s ramp: the curve fit keeps up
        (dict(bpm=128.0, jitter_ms=1.0), 1.0),
    ],
    ids=["steady", "drift", "jitter"],
)
def test_follows_a_daw_clock_from_another_process(jack_server, case, bound):
    estimates, true_bpm, tempo = clock_sync.follow_clock_through_jack(seconds=2.5, **case)
    assert len(estimates) >= len(true_bpm) - 1  # no tick lost on the way
    errors = clock_sync.bpm_errors(estimates, true_bpm)
    assert errors.size > 10
    assert float(np.median(errors)) < bound, f"median |error| {np.median(errors):.3f} BPM"
    assert tempo.follower.relocks == 0
    assert not tempo.running  # the sender ended with STOP


def test_leading_a_daw_through_jack(jack_server):
    from livecomposer.kernel.engine import Engine
    from livecomposer.plugins.tempo import ClockLeader

    output, name = clock_sync._jack_output_port()
    receiver = JackReceiver(f"lc-daw-{uuid.uuid4().hex[:6]}")
    try:
        jack_server.connect(name, receiver.port)
        time.sleep(0.2)
        engine = Engine(ClockLeader(start_on="beat"), output=output, tempo=Tempo(bpm=132.0), realtime=False)
        with engine:
            time.sleep(1.6)
        time.sleep(0.05)
        messages = receiver.take()
    finally:
        receiver.close()
    realtime = [(t, m) for t, m in messages if m[0] >= 0xF0]
    kinds = [m[0] for _, m in realtime]
    assert kinds[0] == 0xFA and kinds.count(0xF8) > 24
    assert kinds[-1] == 0xFC and kinds.count(0xFC) == 1  # the DAW is stopped when we stop
    ccs = [m for _, m in messages if m[0] & 0xF0 == 0xB0]
    assert sorted(m[0] & 0x0F for m in ccs if m[1] == 123) == list(range(16))  # then all notes off
    follower = Tempo(bpm=100, source="midi")
    follower.observe(e for e in (parse(m, t) for t, m in realtime[:-1]) if e is not None)
    assert follower.running and follower.clock_locked
    assert follower.bpm == pytest.approx(132.0, abs=0.5)
