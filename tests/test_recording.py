"""Recorder: a crash-safe MIDI file with separate input and output tracks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mido
import pytest

from livecomposer.kernel.events import NS_PER_MS, Event, Kind, control, note_off, note_on
from livecomposer.app.recording import Recorder

REPO = Path(__file__).resolve().parents[1]
START = 5_000_000_000  # an arbitrary monotonic time: tick 0 of the file


def seconds_and_bytes(track: mido.MidiTrack, tempo_us: int, ppq: int) -> list[tuple[float, list[int]]]:
    """Absolute time in seconds and raw bytes of each channel message of a track."""
    out, ticks = [], 0
    for msg in track:
        ticks += msg.time
        if not msg.is_meta:
            out.append((mido.tick2second(ticks, ppq, tempo_us), msg.bytes()))
    return out


def test_inputs_and_outputs_go_to_separate_tracks_with_their_times(tmp_path: Path) -> None:
    path = tmp_path / "take.mid"
    rec = Recorder(path, START, bpm=100, ppq=960)
    rec.observe([note_on(START + 10 * NS_PER_MS, 60, 90)], [], START + 10 * NS_PER_MS)
    rec.observe([], [note_on(START + 12 * NS_PER_MS, 64, 80, channel=2, voice=1)], START + 12 * NS_PER_MS)
    rec.observe(
        [note_off(START + 500 * NS_PER_MS, 60), control(START + 600 * NS_PER_MS, 64, 127)],
        [note_off(START + 1_500 * NS_PER_MS, 64, channel=2, voice=1)],
        START + 1_500 * NS_PER_MS,
    )
    rec.close()
    mid = mido.MidiFile(path)
    assert mid.type == 1 and len(mid.tracks) == 3
    tempos = [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"]
    assert tempos == [600_000]  # 100 bpm
    names = [next(m.name for m in t if m.type == "track_name") for t in mid.tracks[1:]]
    assert names == ["livecomposer in", "livecomposer out"]
    ins = seconds_and_bytes(mid.tracks[1], tempos[0], mid.ticks_per_beat)
    outs = seconds_and_bytes(mid.tracks[2], tempos[0], mid.ticks_per_beat)
    assert [b for _, b in ins] == [[0x90, 60, 90], [0x80, 60, 0], [0xB0, 64, 127]]
    assert [b for _, b in outs] == [[0x92, 64, 80], [0x82, 64, 0]]
    for (t, _), expected in zip(ins + outs, [0.010, 0.500, 0.600, 0.012, 1.500]):
        assert t == pytest.approx(expected, abs=0.001)
    assert rec.events_written == 5


def test_clock_messages_are_skipped_and_crossing_stamps_never_go_backwards(tmp_path: Path) -> None:
    path = tmp_path / "clock.mid"
    with Recorder(path, START) as rec:
        rec.observe([Event(Kind.CLOCK, START + NS_PER_MS), Event(Kind.START, START + NS_PER_MS)], [], START)
        # A callback stamp slightly older than the previous event, and one before the start.
        rec.observe([note_on(START + 20 * NS_PER_MS, 61), note_on(START + 19 * NS_PER_MS, 62)], [], START)
        rec.observe([note_on(START - NS_PER_MS, 63)], [], START)
    assert rec.skipped == 2
    mid = mido.MidiFile(path)
    msgs = [m for m in mid.tracks[1] if not m.is_meta]
    assert [m.note for m in msgs] == [61, 62, 63]
    assert all(m.time >= 0 for m in msgs)
    assert msgs[1].time == 0 and msgs[2].time == 0


def test_file_is_valid_before_anything_is_played_and_while_recording(tmp_path: Path) -> None:
    path = tmp_path / "live.mid"
    rec = Recorder(path, START, interval=0.05)
    assert len(mido.MidiFile(path).tracks) == 3  # readable from the first moment
    rec.observe([note_on(START + NS_PER_MS, 60)], [], START)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        notes = [m for m in mido.MidiFile(path).tracks[1] if m.type == "note_on"]
        if notes:
            break
        time.sleep(0.02)
    assert [m.note for m in notes] == [60]  # flushed without close()
    rec.close()
    rec.close()  # idempotent
    assert not path.with_name("live.mid.tmp").exists()


def test_bad_tempo_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="bpm"):
        Recorder(tmp_path / "x.mid", 0, bpm=0)


CHILD = textwrap.dedent(
    """
    import sys, time
    from livecomposer.kernel.events import note_on, note_off
    from livecomposer.app.recording import Recorder
    rec = Recorder(sys.argv[1], time.monotonic_ns())
    n = 0
    while True:
        t = time.monotonic_ns()
        rec.observe([note_on(t, 36 + n % 48)], [note_off(t, 36 + n % 48)], t)
        n += 1
        print(n, time.monotonic(), flush=True)
        time.sleep(0.01)
    """
)


def test_kill_minus_9_leaves_a_file_readable_up_to_about_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "crash.mid"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        count_at: list[tuple[float, int]] = []  # (the child's clock when it queued event n, n)
        while True:
            n, t = child.stdout.readline().split()
            count_at.append((float(t), int(n)))
            if count_at[-1][0] - count_at[0][0] > 2.2:
                break
        child.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()  # the same clock (monotonic is system-wide)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    sent_a_second_before = max(n for t, n in count_at if t <= killed_at - 1.0)
    mid = mido.MidiFile(path)  # must parse: complete chunks, end-of-track present
    ins = [m for m in mid.tracks[1] if m.type == "note_on"]
    outs = [m for m in mid.tracks[2] if m.type in ("note_off", "note_on")]
    assert len(ins) >= sent_a_second_before
    assert len(outs) == len(ins)
    assert [m.note for m in ins] == [36 + i % 48 for i in range(len(ins))]
