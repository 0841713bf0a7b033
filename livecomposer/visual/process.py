"""The engine side of the visualizer: start the renderer process, feed it, watch it.

:func:`start_visualizer` spawns the renderer (start method ``spawn``: a fresh interpreter,
no inherited locks or threads) and returns a :class:`VisualizerHandle`.  Its
:attr:`~VisualizerHandle.observer` is the engine observer: on the engine thread it folds
the tick's notes into the feature tracker and writes the newest features into the
latest-value mailbox, a few microseconds, never waiting.  It also keeps the note table
for the overlay (the performer's and the machine's notes, and the machine's plans, which
the engine publishes as ``plan`` / ``plan.cancel`` when a plugin schedules or drops future
notes) and the stage look, which knobs and OSC change (``visual.<knob>``) and preset
switches replace (``visual.preset``, with a crossfade); each goes to its own mailbox.  At
most once a second it checks that the renderer is alive; if it died, the observer logs it
once and turns into a no-op, and the music goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..kernel.events import Event
from . import features as F
from . import look as L
from . import notes as N
from .config import VisualConfig
from .mailbox import SeqlockBox
from .renderer import (ST_CLIENTS, ST_FAILED, ST_FPS, ST_FRAME_MS, ST_FRAMES, ST_PORT, ST_READY, ST_SENT, STATUS_SIZE,
                       renderer_main, resolve_model)

log = logging.getLogger(__name__)

LIVENESS_CHECK_NS = 1_000_000_000


class VisualObserver:
    """Engine observer: features in, mailbox out.  Never blocks, never raises on a dead renderer."""

    def __init__(self, handle: "VisualizerHandle", cfg: VisualConfig) -> None:
        self.handle = handle
        self.tracker = F.FeatureTracker(cfg)
        self.board = N.NoteBoard()
        self.look = cfg.look
        self.scene = 0
        self.tempo: Any = None  # the engine's tempo, set by the session: the look pulses on its beat
        self.alive = True
        self._next_check = 0

    def observe(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None:
        if not self.alive:
            return
        engine_now = now
        # the renderer fades features on the system's monotonic clock, whatever clock the engine runs on
        now = time.monotonic_ns()
        self.tracker.update(inputs, outputs, now)
        if self.tempo is not None:
            self.tracker.beat(self.tempo, engine_now, now)
        self.handle.features.write(self.tracker.vec)
        self.board.observe(inputs, outputs, now / 1e9)
        self._write_notes()
        if now >= self._next_check:
            self._next_check = now + LIVENESS_CHECK_NS
            self._check()

    def publish(self, key: str, value: Any) -> None:
        """Things the engine, its plugins and the controls tell observers (all on the engine thread)."""
        if not self.alive:
            return
        if key == "model.hidden":
            self.tracker.hidden(value)
            self.handle.features.write(self.tracker.vec)
        elif key == "plan":
            engine_now, events = value
            self.board.planned(events, engine_now, time.monotonic_ns() / 1e9)
            self._write_notes()
        elif key == "plan.cancel":
            self.board.cancel(value[1])
            self._write_notes()
        elif key == "visual.preset":
            from .config import parse_visual

            try:
                look = parse_visual(dict(value or {})).look
            except ValueError as exc:  # checked when the preset loaded; never stop the music here
                log.error("visual: %s", exc)
                return
            self.scene += 1
            self._write_look(look)
        elif key.startswith("visual."):
            try:
                self._write_look(L.set_live(self.look, key.removeprefix("visual."), value))
            except (TypeError, ValueError) as exc:
                log.warning("%s", exc)

    def _write_look(self, look: L.LookConfig) -> None:
        self.look = look
        self.handle.look.write(np.concatenate(([float(self.scene)], look.vector())))

    def _write_notes(self) -> None:
        if self.board.changed:
            self.board.changed = False
            self.handle.notes.write(self.board.vector())

    def _check(self) -> None:
        process = self.handle.process
        if not process.is_alive():
            self.alive = False
            log.error("the visualizer process stopped (exit code %s); the music goes on without visuals", process.exitcode)

    def close(self) -> None:
        self.handle.close()


@dataclass
class VisualStatus:
    ready: bool
    failed: bool
    port: int
    frames: int
    fps: float
    frame_ms: float
    clients: int
    sent: int


class VisualizerHandle:
    """The running visualizer: ``observer`` for the engine, ``url``, ``status()``, ``close()``."""

    def __init__(self, cfg: VisualConfig) -> None:
        self.cfg = cfg
        self.features = SeqlockBox(F.SIZE)
        self.status_box = SeqlockBox(STATUS_SIZE)
        self.control = SeqlockBox(1)
        self.look = SeqlockBox(1 + L.VECTOR_SIZE)
        self.notes = SeqlockBox(N.SIZE)
        self.look.write(np.concatenate(([0.0], cfg.look.vector())))
        self.notes.write(N.NoteBoard().vector())
        ctx = multiprocessing.get_context("spawn")
        self.process = ctx.Process(
            target=renderer_main,
            args=(cfg.as_dict(), self.features.name, self.status_box.name, self.control.name, self.look.name, self.notes.name),
            name="livecomposer-visual",
            daemon=True,
        )
        initial = np.zeros(F.SIZE)
        initial[F.STAMP] = time.monotonic_ns()
        initial[F.REGISTER] = 0.5
        self.features.write(initial)
        self.process.start()
        self.observer = VisualObserver(self, cfg)
        self._closed = False

    def status(self) -> VisualStatus:
        s = self.status_box.read()
        return VisualStatus(bool(s[ST_READY]), bool(s[ST_FAILED]), int(s[ST_PORT]), int(s[ST_FRAMES]), float(s[ST_FPS]),
                            float(s[ST_FRAME_MS]), int(s[ST_CLIENTS]), int(s[ST_SENT]))

    def wait_ready(self, timeout: float = 30.0) -> str:
        """Wait (off the engine thread!) until the page is served; returns its URL."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if s.ready:
                return self.url
            if s.failed or not self.process.is_alive():
                self.process.join(2)
                raise RuntimeError(f"the visualizer process failed to start (exit code {self.process.exitcode}; "
                                   f"is {self.cfg.host}:{self.cfg.port} free?)")
            time.sleep(0.05)
        raise RuntimeError(f"the visualizer did not start within {timeout:.0f} s")

    @property
    def url(self) -> str:
        return f"http://{self.cfg.host}:{self.status().port}/"

    def close(self, timeout: float = 3.0) -> None:
        if self._closed:
            return
        self._closed = True
        self.observer.alive = False
        try:
            self.control.write(np.ones(1))
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout)
        finally:
            for box in (self.features, self.status_box, self.control, self.look, self.notes):
                box.close()

    def __enter__(self) -> "VisualizerHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_visualizer(config: VisualConfig | None = None) -> VisualizerHandle:
    """Spawn the renderer; returns at once (the page comes up a second or two later).

    Raises ``FileNotFoundError`` if the model is missing, before starting anything."""
    cfg = config or VisualConfig(enabled=True)
    resolve_model(cfg.model)
    return VisualizerHandle(cfg)
