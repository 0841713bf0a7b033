"""No thread of ours outranks JACK's client threads, on a real JACK server.

JACK runs our compiled MIDI clients' process callbacks at SCHED_FIFO (server priority
minus 5).  A Python thread of ours at or above that priority made them late on a busy
two-core machine; JACK then re-delivered or dropped MIDI (see livecomposer.rt.priority).
Here a live session (engine, input reader, inference worker, JACK clients) runs and every
thread of the process is read from /proc.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from conftest import need, unique, wait_until
from livecomposer.rt import priority
from livecomposer.app.session import LiveOptions, LiveSession, load

REPO = Path(__file__).resolve().parents[1]
SCHED_FIFO = 1


def fifo_threads() -> dict[int, int]:
    """{thread id: SCHED_FIFO priority} for every realtime thread of this process."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        rt_priority, policy = int(fields[37]), int(fields[38])  # fields 40 and 41 of proc(5)
        if policy == SCHED_FIFO:
            found[int(task.name)] = rt_priority
    return found


def test_the_table_sits_below_jack_clients() -> None:
    ours = [priority.INPUT_READER, priority.ENGINE, priority.AUDIO_RENDER, priority.INFERENCE]
    assert all(1 <= p < priority.JACK_CLIENTS for p in ours)
    assert priority.INPUT_READER > priority.ENGINE > priority.AUDIO_RENDER > priority.INFERENCE


def test_a_live_session_runs_every_python_thread_below_jacks_clients(jack_server, midi_sender) -> None:
    need(priority.make_realtime(priority.INFERENCE) or os.geteuid() == 0, "realtime priority is refused here")
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # the probe above: back to normal
    prefix = unique("prio")
    keyboard = midi_sender(f"{prefix}-kbd")
    preset, graph = load(REPO / "presets" / "thru.yaml")
    session = LiveSession(preset, graph, LiveOptions(api="jack", inputs=[prefix], output_virtual=unique("lc-prio")))
    with session.running():
        keyboard.send([0x90, 60, 100], [0x80, 60, 0])
        python_threads = {t.native_id: t.name for t in threading.enumerate()}

        def seen() -> tuple[dict[int, int], dict[str, int]]:
            fifo = fifo_threads()
            return fifo, {python_threads[tid]: p for tid, p in fifo.items() if tid in python_threads}

        # The engine, its input reader and the inference worker ask for theirs as they start.
        assert wait_until(lambda: {"livecomposer-engine", "livecomposer-inference"} <= set(seen()[1]), 5.0), seen()
        fifo, ours = seen()
        jack = {tid: p for tid, p in fifo.items() if tid not in python_threads}
    assert jack, f"no JACK client thread at SCHED_FIFO: {fifo}"
    assert any(name.startswith("midi-in") for name in ours), ours
    assert max(ours.values()) < min(jack.values()), f"ours {ours} against JACK's {sorted(jack.values())}"
