"""Model work off the engine thread: the inference worker, and the context plugins get.

Threads: :class:`InferenceWorker` owns one thread (``livecomposer-inference``, realtime
priority below the engine's) that runs submitted jobs in order and posts each result back
to the engine thread, where the plugin's ``done`` runs.  :class:`EngineContext` is created
and used on the engine thread; on the manual clock (renders, tests) it runs jobs inline so
that a render is deterministic.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
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


class EngineContext(PluginContext):
    """The context plugins get from a running engine."""

    def __init__(self, engine: EngineSide, seed: int) -> None:
        super().__init__(now=engine.clock.now, seed=seed)
        self._engine = engine
        self.tempo = engine.tempo
        self._models: dict[str, Any] = {}

    def cancel(self, tag: int) -> None:
        self._engine._cancel_tag(tag)

    def submit(self, work: Callable[[], Any], done: Callable[[Any], None]) -> None:
        worker = self._engine._worker
        if worker is None:  # manual clock: synchronous, so renders are deterministic
            try:
                result = work()
            except Exception as exc:
                log.exception("model work failed")
                result = exc
            done(result)
        else:
            worker.submit(work, done)

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
