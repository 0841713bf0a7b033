"""The visualizer end to end: its own process, the page in a real headless Chromium.

Frame rates are measured and printed (the benchmark reports them); the assertions check
behaviour: the page loads, frames arrive, busy playing moves the picture more than
silence, and a dead renderer leaves the engine playing.
"""

from __future__ import annotations

import logging
import time
import urllib.request

import pytest

from conftest import need
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import Kind, note_off, note_on, parse
from livecomposer.kernel.plugin import Plugin
from livecomposer.ports.memory import MemoryInput, MemoryOutput
from livecomposer.visual import start_visualizer
from livecomposer.visual.browser import HeadlessChromium, find_chromium
from livecomposer.visual.config import VisualConfig

pytestmark = pytest.mark.browser
MS = 1_000_000


@pytest.fixture(scope="module")
def visualizer():
    handle = start_visualizer(VisualConfig(enabled=True, port=0, fps=60))
    try:
        handle.wait_ready(60)
        yield handle
    finally:
        handle.close()


@pytest.fixture(scope="module")
def page(visualizer):
    need(find_chromium() is not None, "chromium is not installed (apt-get install chromium)")
    with HeadlessChromium(visualizer.url + "?measure") as browser:
        browser.wait_for("window.lcStats && lcStats.drawn >= 3", timeout=30)
        yield browser


def test_page_is_local_and_self_contained(visualizer):
    html = urllib.request.urlopen(visualizer.url, timeout=5).read().decode()
    assert "<canvas" in html and "requestFullscreen" in html
    assert "http://" not in html and "https://" not in html  # nothing loaded from the internet
    assert visualizer.url.startswith("http://127.0.0.1:")


def test_frames_arrive_in_the_browser_and_their_rate_is_measured(page, visualizer):
    before = page.evaluate("lcStats.drawn")
    t0 = time.monotonic()
    time.sleep(2.0)
    drawn = page.evaluate("lcStats.drawn") - before
    rate = drawn / (time.monotonic() - t0)
    status = visualizer.status()
    print(f"\nbrowser: {rate:.1f} frames/s drawn; renderer: {status.fps:.0f} frames/s, {status.frame_ms:.1f} ms per frame")
    assert drawn >= 10
    assert page.evaluate("canvas.width") == 256
    assert status.clients >= 1


def test_a_key_press_goes_full_screen_and_frames_are_upscaled_smoothly(page):
    style = page.evaluate("(() => { const s = getComputedStyle(document.querySelector('canvas')); return [s.width, s.imageRendering]; })()")
    assert float(style[0].removesuffix("px")) > 256 and style[1] == "auto"  # bigger than the frame, bilinear
    for kind in ("keyDown", "keyUp"):
        page.command("Input.dispatchKeyEvent", type=kind, key="f", code="KeyF", text="f" if kind == "keyDown" else "", windowsVirtualKeyCode=70)
    assert page.wait_for("document.fullscreenElement !== null", timeout=5)
    for kind in ("keyDown", "keyUp"):
        page.command("Input.dispatchKeyEvent", type=kind, key="f", code="KeyF", text="f" if kind == "keyDown" else "", windowsVirtualKeyCode=70)
    assert page.wait_for("document.fullscreenElement === null", timeout=5)


def _motion_per_second(page, seconds: float, during=None) -> float:
    m0, t0 = page.evaluate("lcStats.motion"), time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        if during is not None:
            during()
        time.sleep(0.06)
    return (page.evaluate("lcStats.motion") - m0) / (time.monotonic() - t0)


def test_busy_playing_moves_the_picture_more_than_silence(page, visualizer):
    observer = visualizer.observer
    time.sleep(2.5)  # let the page settle into calm
    calm = _motion_per_second(page, 2.0)
    k = [0]

    def play():
        now = time.monotonic_ns()
        note = 48 + (k[0] * 7) % 24
        observer.observe([note_on(now, note, 70 + (k[0] * 13) % 40), note_off(now, 48 + ((k[0] - 2) * 7) % 24)], [], now)
        k[0] += 1

    busy = _motion_per_second(page, 2.0, play)
    print(f"\nmotion (mean abs pixel change per second): silence {calm:.1f}, busy {busy:.1f}")
    assert busy > 1.5 * calm


class _Thru(Plugin):
    name = "test_thru"


def test_killing_the_renderer_leaves_the_engine_playing(caplog):
    handle = start_visualizer(VisualConfig(enabled=True, port=0, fps=30))
    try:
        handle.wait_ready(60)
        inp = MemoryInput()
        out = MemoryOutput(time.monotonic_ns)
        with caplog.at_level(logging.ERROR, logger="livecomposer.visual.process"):
            with Engine(_Thru(), inputs=[inp], output=out, observers=[handle.observer], realtime=False):
                for i in range(10):
                    inp.feed([0x90, 60 + i, 100], time.monotonic_ns())
                    time.sleep(0.02)
                    inp.feed([0x80, 60 + i, 0], time.monotonic_ns())
                handle.process.kill()
                handle.process.join(5)
                for i in range(40):  # > 1 s: the observer notices within a second
                    inp.feed([0x90, 70 + i % 10, 100], time.monotonic_ns())
                    time.sleep(0.03)
                    inp.feed([0x80, 70 + i % 10, 0], time.monotonic_ns())
                time.sleep(0.05)
        ons = [e for e in (parse(m, t) for t, m in out.sent) if e is not None and e.kind is Kind.NOTE_ON]
        assert len(ons) == 50
        assert not handle.observer.alive
        assert "visualizer process stopped" in caplog.text
    finally:
        handle.close()


def test_a_taken_port_is_a_clear_error():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        handle = start_visualizer(VisualConfig(enabled=True, port=port))
        try:
            with pytest.raises(RuntimeError, match=f"127.0.0.1:{port} free"):
                handle.wait_ready(60)
        finally:
            handle.close()


def test_the_models_hidden_state_reaches_the_renderers_mailbox(visualizer):
    import numpy as np

    from livecomposer.visual import features as F

    hidden = np.random.default_rng(0).standard_normal(256)
    visualizer.observer.publish("model.hidden", hidden)
    visualizer.observer.publish("status.other", 1.0)  # other keys are ignored, never raise
    seen = visualizer.features.read()[F.HIDDEN]
    assert np.abs(seen).max() > 0.05
    assert np.array_equal(seen, visualizer.observer.tracker.vec[F.HIDDEN])


def test_visual_command_writes_frames_while_playing_the_demo(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    frames = tmp_path / "frames"
    result = subprocess.run([sys.executable, "-m", "livecomposer.cli", "visual", "--port", "0", "--fps", "20", "--seconds", "2",
                             "--frames", str(frames)], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert "visuals: http://127.0.0.1:" in result.stdout
    written = sorted(frames.glob("frame-*.png"))
    assert len(written) >= 10
    assert Image.open(written[-1]).size == (256, 256)


def test_knobs_and_preset_changes_reach_the_renderers_look(visualizer):
    from livecomposer.visual.look import LookConfig

    observer = visualizer.observer
    scene = visualizer.look.read()[0]
    observer.publish("visual.mirror", 1.0)  # a knob at the top of its sweep
    observer.publish("visual.trails", 0.8)
    look = LookConfig.from_vector(visualizer.look.read()[1:])
    assert (look.mirror, look.trails) == ("kaleido8", 0.8)
    observer.publish("visual.preset", {"look": {"mirror": "quad", "overlay": True}})  # a preset switch: crossfade
    values = visualizer.look.read()
    assert values[0] == scene + 1 and LookConfig.from_vector(values[1:]) == LookConfig(mirror="quad", overlay=True)
    observer.publish("visual.nonsense", 1.0)  # logged, never raised on the engine thread
    observer.publish("visual.preset", {})
    assert LookConfig.from_vector(visualizer.look.read()[1:]) == LookConfig()


def test_the_machines_planned_notes_reach_the_page(visualizer):
    """A real engine plans a note a second ahead; the note table reaches the renderer's
    mailbox, and with the overlay on the page's frame shows it right of the now line."""
    import io

    import numpy as np
    from PIL import Image

    from livecomposer.kernel.clock import ManualClock
    from livecomposer.visual import notes as N
    from livecomposer.visual.features import FeatureTracker
    from test_visual_look import Planner

    def cyan_ahead() -> int:
        jpeg = urllib.request.urlopen(visualizer.url + "frame.jpg", timeout=5).read()
        frame = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(int)
        ahead = frame[:, frame.shape[1] // 2 + 3 :]  # right of the now line
        return int(((ahead[..., 2] - ahead[..., 0] > 60) & (ahead[..., 1] - ahead[..., 0] > 40)).sum())

    observer = visualizer.observer
    # The picture fades to black once the key is up, so only the overlay can put cyan in the
    # frame (the generator's own colours once put 792 cyan pixels there, more than a note).
    # The plan lies 4 s ahead and the overlay shows 5 s each way, so a slow fade on a busy
    # machine cannot let the planned note slip past the now line before it is counted.  The
    # features start afresh: notes earlier tests left held would keep the picture from fading.
    observer.tracker = FeatureTracker(observer.tracker.cfg)
    observer.publish("visual.preset", {"look": {"overlay": False, "fade": True, "fade_after_s": 0.1, "fade_s": 0.05,
                                                "crossfade_s": 0.0, "palette": "none", "overlay_s": 10.0}})
    clock = ManualClock()
    engine = Engine(Planner(delay_ms=4000), output=MemoryOutput(clock.now, "out"), clock=clock, observers=[observer])
    # one tick, a key struck and let go: the plan is made, not yet played
    engine.tick(0, [(0, bytes([0x90, 60, 100])), (0, bytes([0x80, 60, 0]))])
    rows = visualizer.notes.read().reshape(N.CAPACITY, N.COLUMNS)
    planned = rows[rows[:, N.WHO] == N.PLANNED_NOTE]
    assert len(planned) >= 1 and planned[-1, N.PITCH] == 67
    due = planned[-1, N.ON]
    assert 3.7 < due - time.monotonic() < 4.1  # on the renderer's clock, about 4 s ahead
    deadline = time.monotonic() + 20
    while visualizer.status().frames < 5 and time.monotonic() < deadline:  # the first frames of a fresh renderer
        time.sleep(0.05)
    while cyan_ahead() > 0 and time.monotonic() < due - 1.5:  # faded to black
        time.sleep(0.05)
    without = cyan_ahead()
    observer.publish("visual.overlay", True)
    time.sleep(0.3)
    with_ = cyan_ahead()
    assert time.monotonic() < due, "counted while the note was still planned"
    print(f"\ncyan pixels ahead of the now line: overlay off {without}, on {with_}")
    assert with_ > without + 20  # a 0.4 s note is about 10 px long and a lane high here
    observer.publish("visual.preset", {})



def test_a_knob_osc_and_a_preset_switch_drive_the_look_through_the_engine(visualizer, tmp_path):
    """CC 29 mapped to visual.trails, OSC /livecomposer/visual/mirror, and program change 1
    (a bank preset with its own look) all reach the renderer's look mailbox from a real engine."""
    from livecomposer.kernel.clock import ManualClock
    from livecomposer.app.osc import OscServer
    from livecomposer.app.session import load, make_router
    from livecomposer.visual.look import LookConfig

    def look() -> tuple[float, LookConfig]:
        values = visualizer.look.read()
        return values[0], LookConfig.from_vector(values[1:])

    for name, mirror in (("a", "none"), ("b", "kaleido4")):
        (tmp_path / f"{name}.yaml").write_text(
            "name: " + name + "\ngraph:\n  - plugin: thru\ncontrols:\n  - {cc: 29, to: visual.trails, range: [0, 0.9]}\n"
            "  - {program_change: bank}\nbank: [a.yaml, b.yaml]\nvisual:\n  look: {mirror: " + mirror + "}\n")
    preset, graph = load(tmp_path / "a.yaml")
    clock = ManualClock()
    engine = Engine(graph, output=MemoryOutput(clock.now, "out"), clock=clock, observers=[visualizer.observer], control_handler=make_router(preset))
    engine.tick(0, [(0, bytes([0xB0, 29, 127]))])
    assert look()[1].trails == pytest.approx(0.9)
    OscServer(engine).dispatch("/livecomposer/visual/mirror", ["quad"])
    engine.tick(1 * MS, [])  # OSC changes apply between ticks
    assert look()[1].mirror == "quad"
    scene = look()[0]
    engine.tick(2 * MS, [(2 * MS, bytes([0xC0, 1]))])  # program 1: preset b, loaded in place on the manual clock
    engine.tick(3 * MS, [])
    assert look() == (scene + 1, LookConfig(mirror="kaleido4"))  # the new preset's look, with a crossfade
    visualizer.observer.publish("visual.preset", {})
