"""Visualizer figures: the generator alone, frames into a real browser, and what the
visualizer costs the engine.

* ``visual.generator.256``: one 256x256 frame from the shipped generator, one torch
  thread, batch 1 (the whole painter: latent step, network, the stage look with every
  part on and the notes overlay, uint8 conversion), wall clock;
  ``.cpu``: the same frames in CPU time of the thread, which on a shared, busy machine
  says what the code costs apart from waiting for a core.
* ``visual.jpeg.256``: encoding that frame for the page.
* ``visual.browser.frame_interval``: time between frames drawn by headless Chromium on the
  page, with the renderer aiming at 60 fps (the same full stage look); the note gives
  frames per second.
* ``visual.engine.thru.off`` / ``.on``: the engine's thru latency without the visualizer
  (renderer paused) and with it rendering into a watching browser, in alternating blocks
  of one run (the note of ``.on`` gives the p99 ratio).
"""

from __future__ import annotations

import time

import numpy as np

from ..visual.look import LookConfig
from . import BenchOptions, Measurement, skipped, summarize
from .engine import thru_samples

# every part of the stage look on, the notes overlay too: the most a frame costs
STAGE = LookConfig(mirror="kaleido6", trails=0.6, overlay=True)


def generator_frames(count: int) -> list[Measurement]:
    import torch

    from ..visual import features as F
    from ..visual.config import VisualConfig
    from ..visual.renderer import FramePainter, encode_jpeg

    torch.set_num_threads(1)
    painter = FramePainter(VisualConfig(look=STAGE))
    feats = np.zeros(F.SIZE)
    feats[F.PC] = [1.0, 0, 0, 0, 0.8, 0, 0, 0.9, 0, 0, 0, 0]  # a C major chord sounding: palette and fade at work
    feats[F.ONSETS] = feats[F.HELD] = 1.0
    notes = _busy_notes(count / 60 + 2)
    for _ in range(10):
        frame = painter.paint(feats, 1 / 60, notes=notes)
    paint_ns, cpu_ns, jpeg_ns = [], [], []
    for i in range(count):
        feats[F.DENSITY] = 4.0 * (i % 50) / 50
        feats[F.PULSE] = 1.5 * (i % 30) / 30
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        frame = painter.paint(feats, 1 / 60, notes=notes)
        t1 = time.perf_counter_ns()
        c1 = time.thread_time_ns()
        encode_jpeg(frame, 85)
        t2 = time.perf_counter_ns()
        paint_ns.append(t1 - t0)
        cpu_ns.append(c1 - c0)
        jpeg_ns.append(t2 - t1)
    params = sum(p.numel() for p in painter.generator.parameters())
    return [
        summarize("visual.generator.256", paint_ns, f"wall clock: {1e9 / float(np.median(paint_ns)):.0f} fps at the median, one thread, {params / 1e6:.2f} M params"),
        summarize("visual.generator.256.cpu", cpu_ns, f"CPU time of the thread: {1e9 / float(np.median(cpu_ns)):.0f} fps at the median (what an idle core gives)"),
        summarize("visual.jpeg.256", jpeg_ns, "PIL, quality 85"),
    ]


def _busy_notes(seconds: float) -> np.ndarray:
    """A note table with four notes a second for the overlay: the performer's, the machine's
    and the machine's planned ones in turn (times on the painter's frame clock)."""
    from ..visual import notes as N

    rows = np.zeros((N.CAPACITY, N.COLUMNS))
    rows[:, N.WHO] = N.EMPTY
    for k in range(min(N.CAPACITY, int(seconds * 4))):
        rows[k] = (k * 0.25, k * 0.25 + 0.2, 48 + (k * 5) % 24, k % 3, 90)
    return rows.ravel()


def browser_frames(seconds: float) -> list[Measurement]:
    from ..visual import start_visualizer
    from ..visual.browser import HeadlessChromium, find_chromium
    from ..visual.config import VisualConfig

    if find_chromium() is None:
        return [skipped("visual.browser.frame_interval", "Chromium is not installed (Debian: chromium)")]
    with start_visualizer(VisualConfig(enabled=True, port=0, fps=60, look=STAGE)) as handle:
        url = handle.wait_ready(60)
        with HeadlessChromium(url + "?log") as page:
            page.wait_for("window.lcStats && lcStats.drawn >= 5", timeout=30)
            d0, t0 = page.evaluate("lcStats.log = []; lcStats.drawn"), time.monotonic()
            time.sleep(seconds)
            d1, t1 = page.evaluate("lcStats.drawn"), time.monotonic()
            status = handle.status()
            stamps = page.evaluate("lcStats.log")
    fps = (d1 - d0) / (t1 - t0)
    intervals = (np.diff(np.asarray(stamps, dtype=np.float64)) * 1e6).astype(np.int64)  # ms -> ns
    return [summarize("visual.browser.frame_interval", intervals,
                      f"{fps:.1f} fps drawn in Chromium (renderer {status.fps:.0f} fps, {status.frame_ms:.1f} ms/frame)")]


def thru_latency(count: int, observers=()) -> list[int]:
    """Engine thru latency (ns), the notes fed from a realtime thread (see thru_samples)."""
    return thru_samples(count, observers, realtime_feeder=True)[0]


class _Keep:
    """Wraps the visual observer so the engine does not close the visualizer itself."""

    def __init__(self, observer) -> None:
        self.inner = observer

    def observe(self, inputs, outputs, now) -> None:
        self.inner.observe(inputs, outputs, now)

    def publish(self, key, value) -> None:
        self.inner.publish(key, value)


def engine_with_and_without(count: int, blocks: int = 4) -> list[Measurement]:
    """Alternate blocks without and with the visualizer in one run (the machine's load
    drifts; alternating spreads the drift over both).  "Without": the renderer process is
    paused (SIGSTOP, so it uses no CPU and the page gets no frames) and the observer is not
    attached; "with": it renders at 60 fps into a watching Chromium, observer attached."""
    import os
    import signal

    from ..visual import start_visualizer
    from ..visual.browser import HeadlessChromium, find_chromium
    from ..visual.config import VisualConfig

    off: list[int] = []
    on: list[int] = []
    fps: list[float] = []
    per_block = max(100, count // blocks)
    with start_visualizer(VisualConfig(enabled=True, port=0, fps=60, look=STAGE)) as handle:
        url = handle.wait_ready(60)
        browser = HeadlessChromium(url) if find_chromium() else None
        pid = handle.process.pid
        try:
            if browser is not None:
                browser.__enter__()
                browser.wait_for("window.lcStats && lcStats.drawn >= 5", timeout=30)
            for _ in range(blocks):
                os.kill(pid, signal.SIGSTOP)
                time.sleep(0.3)
                off += thru_latency(per_block)
                os.kill(pid, signal.SIGCONT)
                time.sleep(0.5)
                on += thru_latency(per_block, [_Keep(handle.observer)])
                fps.append(handle.status().fps)
        finally:
            os.kill(pid, signal.SIGCONT)
            if browser is not None:
                browser.close()
    ratio = np.percentile(on, 99) / max(1.0, np.percentile(off, 99))
    watching = " into a watching Chromium" if browser is not None else ""
    return [
        summarize("visual.engine.thru.off", off, f"renderer paused, no observer ({blocks} blocks alternating with .on)"),
        summarize("visual.engine.thru.on", on, f"renderer at {np.mean(fps):.0f} fps{watching}, observer attached; p99 on/off = {ratio:.2f}"),
    ]


def measure(options: BenchOptions) -> list[Measurement]:
    frames = 120 if options.quick else 600
    count = 500 if options.quick else options.events
    return [*generator_frames(frames), *browser_frames(2.0 if options.quick else 5.0), *engine_with_and_without(count)]
