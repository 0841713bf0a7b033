"""Model work off the engine thread: the inference worker, and the context plugins get.

Threads: :class:`InferenceWorker` owns one thread (``livecomposer-inference``, realtime
priority below the engine's) that runs submitted jobs in order and posts each result back
to the engine thread, where the plugin's ``done`` runs.  :class:`EngineContext` is created
and used on the engine thread; on the manual clock (renders, tests) it runs jobs inline so
that a render is deterministic.

A small job on the latency path (the harmonizer's answer to a note) may instead run on the
engine thread itself (:meth:`EngineContext.submit_inline`): right after the tick that
asked for it has sent its output (the performer's thru copy never waits behind the model),
in the same tick, which then processes and sends what the job's result woke at once
(:meth:`EngineContext.run_after_sends`; a round through the engine loop cost tens of
microseconds more).  That saves the two thread wake-ups of a hand-off, and is only taken
while the job's own recent cost (:class:`StepCost`) stays within a budget and the worker
has nothing of ours: the worker and the engine thread never run model work at the same
time, and jobs keep the order they were submitted in.
A job that follows an answer (:meth:`EngineContext.submit_after_send`) reaches the worker
only once that tick's output is out.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol, Sequence

from ..rt import priority
from .plugin import PluginContext



class EngineSide(Protocol):
    """What the context uses of the engine that made it (:class:`.engine.Engine`)."""

    clock: Any
    tempo: Any
    observers: Sequence[Any]
    _worker: "InferenceWorker | None"

    def _cancel_tag(self, tag: int) -> None: ...

    def call_soon(self, fn: Callable[[], None]) -> None: ...

log = logging.getLogger(__name__)


class InferenceWorker:
    """One thread that runs model work off the engine thread, in order, and posts results back."""

    def __init__(self, post: Callable[[Callable[[], None]], None], realtime: bool = True) -> None:
        self._post = post
        self._realtime = realtime
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="livecomposer-inference", daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._jobs.put((work, done))

    def _run(self) -> None:
        if self._realtime:
            # SCHED_FIFO, below the engine: with the cores busy, harmonizer added latency
            # p99 was 4.6 ms at normal priority and 1.1 ms at realtime priority.
            priority.make_realtime(priority.INFERENCE)
        torch = sys.modules.get("torch")  # imported by whoever loaded a model; importing it
        if torch is not None:  # here would hold the GIL for a second while the engine runs
            torch.set_num_threads(1)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            work, done = job
            try:
                result = work()
            except Exception as exc:  # reported to the plugin's done() as the result
                log.exception("model work failed")
                result = exc
            self._post(lambda done=done, result=result: done(result))

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=2.0)


class StepCost:
    """How long one kind of job took lately, and whether it may run on the engine thread.

    It fits once ``first`` costs are known (the first jobs go to the worker: nothing says
    yet what one costs) and while at most ``share`` of the last ``window`` costs exceeded
    ``budget_ns`` (so the p99 of its recent costs is within the budget, with the defaults).
    Costs are
    the job's wall time (:attr:`EngineContext.step_clock`), added on the engine thread only,
    wherever the job ran: on the worker that also counts its waits for the GIL, which errs
    on the safe side, and a model that blocks (I/O, a stall) is never taken for a cheap one,
    as its CPU time would be.  The default budget, 1 ms: the harmonizer's answer costs
    0.3-0.4 ms median and 0.5-0.8 ms p99 on a busy two-core VM, where the model's weights
    leave the cache between two notes, and run inline it still arrived 60-140 us sooner
    (median and p99) than through the worker; a worker job running Python holds the engine
    thread off the GIL for up to the switch interval (0.5 ms) anyway.  A job slower than
    that (a bigger model, a slow machine) goes back to the worker.
    """

    def __init__(self, budget_ns: int = 1_000_000, window: int = 200, share: float = 0.01, first: int = 10) -> None:
        self.budget_ns = budget_ns
        self.first = first
        self.allowed = int(window * share)
        self._over: deque[bool] = deque(maxlen=window)
        self._count = 0  # True entries in _over
        self.inline = 0  # jobs run on the engine thread (for tests and the status line)
        self.offloaded = 0  # jobs that went to the worker instead

    def add(self, cost_ns: int) -> None:
        over = self._over
        if len(over) == over.maxlen and over[0]:
            self._count -= 1
        late = cost_ns > self.budget_ns
        over.append(late)
        self._count += late

    def fits(self) -> bool:
        return len(self._over) >= self.first and self._count <= self.allowed


class EngineContext(PluginContext):
    """The context plugins get from a running engine.  Every method runs on the engine thread."""

    def __init__(self, engine: EngineSide, seed: int) -> None:
        super().__init__(now=engine.clock.now, seed=seed)
        self._engine = engine
        self.tempo = engine.tempo
        self._models: dict[str, Any] = {}
        self.step_clock: Callable[[], int] = time.perf_counter_ns  # a job's cost: wall time (a job that blocks counts)
        self._in_flight = 0  # jobs handed to the worker whose result has not come back
        self._inline: list[tuple[Callable[[], Any], Callable[[Any], None], StepCost]] = []  # after this tick's sends
        self._held: list[tuple[Callable[[], Any], Callable[[Any], None]]] = []  # worker jobs, after this tick's sends
        self._scheduled = False  # run_after_sends has work: the engine calls it after this tick's sends

    def cancel(self, tag: int) -> None:
        self._engine._cancel_tag(tag)

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        worker = self._engine._worker
        if worker is None:  # manual clock: synchronous, so renders are deterministic
            done(self._run(work))
        elif self._scheduled:
            self._held.append((work, done))  # after the jobs submitted before it
        else:
            self._to_worker(worker, work, done)

    def submit_after_send(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        """As :meth:`submit`, but handed to the worker only once this tick's output has been
        sent: for a job that follows an answer and must not delay it (waking the worker
        costs the engine thread tens of microseconds)."""
        if self._engine._worker is None:
            done(self._run(work))
            return
        self._held.append((work, done))
        self._schedule()

    def submit_inline(self, work: Callable[[], Any], done: Callable[[Any], None], cost: StepCost) -> None:
        """As :meth:`submit`, but on the engine thread, right after this tick's output has
        been sent, when ``cost`` fits and the worker has nothing of ours (else on the
        worker, in order).  ``work``'s cost is added to ``cost`` wherever it runs."""
        worker = self._engine._worker
        if worker is None:
            done(self._run(work))
            return
        timed = self._timed(work)
        if not self._held and (self._inline or (self._in_flight == 0 and cost.fits())):
            self._inline.append((timed, done, cost))
            cost.inline += 1
            self._schedule()
        else:
            cost.offloaded += 1
            self.submit(timed, self._costed(done, cost))

    def _timed(self, work: Callable[[], Any]) -> Callable[[], tuple[Any, int]]:
        clock = self.step_clock

        def timed() -> tuple[Any, int]:
            start = clock()
            result = work()
            return result, clock() - start

        return timed

    @staticmethod
    def _costed(done: Callable[[Any], None], cost: StepCost) -> Callable[[Any], None]:
        def costed(outcome: Any) -> None:
            if isinstance(outcome, BaseException):
                done(outcome)
                return
            result, ns = outcome
            cost.add(ns)
            done(result)

        return costed

    def _schedule(self) -> None:
        self._scheduled = True

    @property
    def after_sends(self) -> bool:
        """Whether :meth:`run_after_sends` has work (the engine asks after each tick's sends)."""
        return self._scheduled

    def run_after_sends(self) -> None:
        """(Engine thread, right after the sends of the tick that submitted them) the inline
        jobs, then the worker jobs held behind them, in order; again for any their own
        ``done()`` submitted."""
        worker = self._engine._worker
        assert worker is not None, "scheduled only while the engine runs with its worker"
        while self._inline or self._held:  # (still scheduled meanwhile: what done() submits waits its turn here)
            jobs, self._inline = self._inline, []
            for timed, done, cost in jobs:
                self._costed(done, cost)(self._run(timed))
            held, self._held = self._held, []
            for work, done in held:
                self._to_worker(worker, work, done)
        self._scheduled = False

    @staticmethod
    def _run(work: Callable[[], Any]) -> Any:
        try:
            return work()
        except Exception as exc:
            log.exception("model work failed")
            return exc

    def _to_worker(self, worker: InferenceWorker, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        self._in_flight += 1

        def back(result: Any) -> None:
            self._in_flight -= 1
            done(result)

        worker.submit(work, back)

    def load_model(self, name: str):
        if name not in self._models:
            self._models[name] = super().load_model(name)
        return self._models[name]

    def publish(self, key: str, value: Any) -> None:
        for observer in self._engine.observers:
            publish = getattr(observer, "publish", None)
            if publish is not None:
                try:
                    publish(key, value)
                except Exception:
                    log.exception("observer %r failed in publish", observer)
