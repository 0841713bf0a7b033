"""Inline model work on the live engine (kernel/inference.py): a small latency-path job runs
on the engine thread after the tick's sends while its measured cost fits its budget and the
worker is idle; otherwise it goes to the worker, in order.  Costs here come from an
injected step clock, never from wall time."""

from __future__ import annotations

import threading
import time

from conftest import wait_until
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import Kind, note_on
from livecomposer.kernel.inference import StepCost
from livecomposer.kernel.plugin import Parallel, Plugin
from livecomposer.ports.memory import MemoryInput, MemoryOutput


class Thru(Plugin):
    name = "test_thru"


class Answer(Plugin):
    """Answers each note-on with a note on channel 2, from a job submitted inline; records
    which thread ran each job."""

    name = "test_answer"

    def __init__(self, cost: StepCost) -> None:
        super().__init__()
        self.cost = cost
        self.ran: list[str] = []  # thread name per job, in the order they ran
        self.answers: list[int] = []

    def process(self, events, now):
        for e in events:
            if e.kind is Kind.NOTE_ON:
                self.ctx.submit_inline(lambda: self.ran.append(threading.current_thread().name),  # type: ignore[attr-defined]
                                       lambda _, note=e.note: self.answers.append(note), self.cost)
        out = [note_on(now, n, 90, channel=1, voice=self.voice) for n in self.answers]
        self.answers.clear()
        return out

    def next_wakeup(self):
        return 0 if self.answers else None


class StepClock:
    """Each job's two readings (before and after it) differ by ``cost`` ns."""

    def __init__(self) -> None:
        self.t = 0
        self.cost = 0
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            self.t += self.cost
            return self.t


def play(inp: MemoryInput, out: MemoryOutput, answer: Answer, notes: int) -> list[str]:
    before = len(answer.ran)
    for _ in range(notes):
        count = len(answer.ran)
        inp.feed([0x90, 60, 90], time.monotonic_ns())
        assert wait_until(lambda: len(answer.ran) == count + 1 and any(m[0] == 0x91 for _, m in out.sent[-2:]))
        inp.feed([0x80, 60, 0], time.monotonic_ns())
    return ["worker" if name == "livecomposer-inference" else "engine" if name == "livecomposer-engine" else name for name in answer.ran[before:]]


def test_an_inline_job_leaves_after_the_thru_copy_and_falls_back_to_the_worker_while_too_slow() -> None:
    cost = StepCost(budget_ns=300_000, window=10, share=0.1, first=2)  # fits after 2 costs, while at most 1 of the last 10 is over
    answer = Answer(cost)
    inp, out = MemoryInput(), MemoryOutput(time.monotonic_ns)
    clock = StepClock()
    with Engine(Parallel([Thru(), answer]), inputs=[inp], output=out, realtime=False) as engine:
        engine.ctx.step_clock = clock
        assert play(inp, out, answer, 5) == ["worker"] * 2 + ["engine"] * 3  # measured first, on the worker
        # an inline answer leaves in the tick after the thru copy, which went out first
        statuses = [m[0] for _, m in out.sent if m[0] in (0x90, 0x91)]
        assert statuses[-2:] == [0x90, 0x91]
        clock.cost = 1_000_000  # each step now costs 1 ms: two over budget, then the worker
        assert play(inp, out, answer, 4) == ["engine", "engine", "worker", "worker"]
        clock.cost = 0  # cheap again: back on the engine thread once the window forgets the slow ones
        assert play(inp, out, answer, 12) == ["worker"] * 9 + ["engine"] * 3
    assert cost.inline + cost.offloaded == 21


def test_an_inline_job_waits_for_the_worker_and_keeps_the_order() -> None:
    cost = StepCost(first=0)
    answer = Answer(cost)
    inp, out = MemoryInput(), MemoryOutput(time.monotonic_ns)
    release = threading.Event()
    order: list[str] = []
    with Engine(Parallel([Thru(), answer]), inputs=[inp], output=out, realtime=False) as engine:
        engine.ctx.step_clock = StepClock()
        engine.call_soon(lambda: engine.ctx.submit(lambda: (release.wait(2.0), order.append("slow")), lambda _: None))
        inp.feed([0x90, 60, 90], time.monotonic_ns())
        assert wait_until(lambda: cost.offloaded == 1)  # the worker was busy: the job queued behind it
        release.set()
        assert wait_until(lambda: answer.ran == ["livecomposer-inference"])
        assert order == ["slow"]
        # a worker job submitted behind an inline one runs after it
        def both() -> None:
            answer.ctx.submit_inline(lambda: order.append("inline"), lambda _: None, cost)  # type: ignore[attr-defined]
            answer.ctx.submit(lambda: order.append("worker"), lambda _: None)

        engine.call_soon(both)
        assert wait_until(lambda: len(order) == 3)
        assert order == ["slow", "inline", "worker"]


def test_a_job_submitted_after_send_reaches_the_worker_after_the_output_and_before_later_jobs() -> None:
    ran: list[tuple[str, int]] = []

    class Follow(Plugin):
        name = "test_follow"

        def process(self, events, now):
            for e in events:
                if e.kind is Kind.NOTE_ON:
                    self.ctx.submit_after_send(lambda: ran.append(("after", time.monotonic_ns())), lambda _: None)  # type: ignore[attr-defined]
                    # an inline job behind it waits for it: on the worker, in order
                    self.ctx.submit_inline(lambda: ran.append((threading.current_thread().name, 0)), lambda _: None, StepCost(first=0))  # type: ignore[attr-defined]
            return []

    inp, out = MemoryInput(), MemoryOutput(time.monotonic_ns)
    with Engine(Parallel([Thru(), Follow()]), inputs=[inp], output=out, realtime=False):
        inp.feed([0x90, 60, 90], time.monotonic_ns())
        assert wait_until(lambda: len(ran) == 2)
    assert ran[0][0] == "after" and ran[0][1] > out.sent[0][0]  # the thru copy had been sent
    assert ran[1][0] == "livecomposer-inference"
