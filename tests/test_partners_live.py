"""The playing partners live: the real clock and the inference worker thread, then the four
presets through `livecomposer run` between two other programs on a real JACK server.

Behaviour only (what comes out, and that nothing hangs); the timing figures come from
``livecomposer bench --only partners``.
"""

from __future__ import annotations

import signal
import time

import pytest

from conftest import JackServer, _Lines, unique, wait_until
from test_partners import CHORALE, MELODY, chorale, models_for, shipped_models  # noqa: F401  (model checks)
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.plugin import Parallel
from livecomposer.plugins.effects import Thru
from livecomposer.plugins.partners import CallResponse, Harmonizer
from livecomposer.ports.memory import MemoryInput, MemoryOutput

ALL_NOTES_OFF = 123




def hanging(sent: list[tuple[int, list[int]]], channel: int) -> set[int]:
    sounding: set[int] = set()
    for _, m in sent:
        if m[0] == 0x90 | channel and m[2] > 0:
            sounding.add(m[1])
        elif m[0] in (0x80 | channel, 0x90 | channel):
            sounding.discard(m[1])
    return sounding


def test_harmonizer_live_answers_through_the_worker_and_releases_with_the_note(chorale) -> None:
    inp = MemoryInput()
    out = MemoryOutput(time.monotonic_ns)
    with Engine(Parallel([Thru(), Harmonizer(id="choir", model=CHORALE, channel=4, voices=2, key="C major")]), inputs=[inp], output=out):
        for note in (72, 76, 79):
            inp.feed([0x90, note, 90], time.monotonic_ns())
            assert wait_until(lambda: len([m for _, m in out.sent if m[0] == 0x93]) >= 2 * (1 + (note > 72) + (note > 76)))
            inp.feed([0x80, note, 0], time.monotonic_ns())
            assert wait_until(lambda: not hanging(out.sent, 3))
        # Held at the stop: the engine's way out releases the harmony too.
        inp.feed([0x90, 74, 90], time.monotonic_ns())
        assert wait_until(lambda: len(hanging(out.sent, 3)) == 2)
    harmony = [m for _, m in out.sent if m[0] == 0x93]
    assert all(m[1] % 12 in (0, 2, 4, 5, 7, 9, 11) and m[1] < 79 for m in harmony)
    assert not hanging(out.sent, 3)


def test_harmony_is_due_with_the_performers_note_however_late_the_answer(chorale) -> None:
    """On the live engine the answer leaves a tick (or more) after the note; it is sent due
    at the note's own time, so an output that places messages by due time (JACK: one period
    after it) sounds it on the same frame as the thru copy."""
    inp = MemoryInput()
    out = MemoryOutput(time.monotonic_ns)
    with Engine(Parallel([Thru(), Harmonizer(id="choir", model=CHORALE, channel=4, voices=2, key="C major")]), inputs=[inp], output=out):
        stamps = []
        for note in (72, 76, 79, 74):
            stamps.append(time.monotonic_ns())
            inp.feed([0x90, note, 90], stamps[-1])
            assert wait_until(lambda: len([m for _, m in out.sent if m[0] == 0x93]) >= 2 * len(stamps))
            inp.feed([0x80, note, 0], time.monotonic_ns())
            assert wait_until(lambda: not hanging(out.sent, 3))
    sent = list(zip(out.sent, out.due))
    for stamp, note in zip(stamps, (72, 76, 79, 74)):
        [((thru_at, _), thru_due)] = [(s, d) for s, d in sent if s[1] == [0x90, note, 90]]
        harmony = [(s, d) for s, d in sent if s[1][0] == 0x93 and s[1][2] > 0 and s[0] >= thru_at][:2]
        assert thru_due == stamp
        assert [d for _, d in harmony] == [stamp, stamp], "the harmony is due with its note"


def test_call_response_live_answers_after_the_pause_and_stops_when_played_over() -> None:
    inp = MemoryInput()
    out = MemoryOutput(time.monotonic_ns)
    answer = CallResponse(id="answer", model=MELODY, channel=2, silence=0.2, length=16, unit="notes", key="D major")
    with Engine(Parallel([Thru(), answer]), inputs=[inp], output=out):
        for note in (62, 66, 69, 74):
            inp.feed([0x90, note, 80], time.monotonic_ns())
            time.sleep(0.05)
            inp.feed([0x80, note, 0], time.monotonic_ns())
        call_end = time.monotonic_ns()
        assert wait_until(lambda: any(m[0] == 0x91 for _, m in out.sent), 3.0)
        first = next(t for t, m in out.sent if m[0] == 0x91)
        assert first >= call_end + 200_000_000 - 2_000_000
        inp.feed([0x90, 64, 80], time.monotonic_ns())  # played over: the answer stops
        interrupted = time.monotonic_ns()
        time.sleep(0.3)
        inp.feed([0x80, 64, 0], time.monotonic_ns())
        assert not [t for t, m in out.sent if m[0] == 0x91 and t > interrupted + 20_000_000]
        assert not hanging([(t, m) for t, m in out.sent if t <= interrupted + 20_000_000], 1)
    assert not hanging(out.sent, 1)


# --------------------------------------------------------------------------- through JACK

pytestjack = pytest.mark.jack

# (preset, machine channel 0-15, what the keyboard plays: (message, gap before the next in ms))
PHRASE = [62, 66, 69, 74, 73, 71, 69]
LIVE = [("duet", 1), ("continuation", 2), ("harmonizer", 3), ("accompanist", 4)]


def start_run(run_cli, jack_server: JackServer, preset: str, keyboard_port: str, name: str):
    proc = run_cli("run", f"presets/{preset}.yaml", "--api", "jack", "--input", keyboard_port, "--output", name)
    lines = _Lines(proc)
    lines.wait_for(lambda ls: any(l.startswith("preset ") for l in ls), 60)
    if proc.poll() is not None or not any(l.startswith("preset ") for l in lines.lines):
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"run {preset} did not start (exit {proc.returncode}): {lines.lines} {err[-2000:]}")
    return proc


@pytestjack
@pytest.mark.parametrize("preset,channel", LIVE)
def test_each_preset_plays_live_through_jack(preset, channel, jack_server, midi_sender, midi_receiver, run_cli) -> None:
    models_for(preset)
    keyboard = midi_sender()
    name = unique("lc-partner")
    proc = start_run(run_cli, jack_server, preset, keyboard.port, name)
    daw = midi_receiver(source=f"{name}:{name}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any("livecomposer-in" in d for d in jack_server.connections().get(keyboard.port, [])):
        time.sleep(0.05)
    for note in PHRASE:
        keyboard.send([0x90, note, 85], gap_ms=120)
        keyboard.send([0x80, note, 0], gap_ms=30)
    machine_on = lambda got: [m for _, m in got if m[0] == 0x90 | channel and m[2] > 0]
    got = daw.wait_for(lambda g: len(machine_on(g)) >= 2, timeout=10)
    assert len(machine_on(got)) >= 2, f"{preset}: no machine notes on channel {channel + 1}: {got[:20]}"
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    err = proc.stderr.read()
    assert "Traceback" not in err, err[-2000:]
    got = daw.wait_for(lambda g: any(m[0] == 0xB0 | channel and m[1] == ALL_NOTES_OFF for _, m in g), timeout=5)
    before_all_off = []
    for _, m in got:
        if m[0] == 0xB0 | channel and m[1] == ALL_NOTES_OFF:
            break
        before_all_off.append((0, m))
    assert not hanging(before_all_off, channel), f"{preset}: notes left for CC 123 to end"
