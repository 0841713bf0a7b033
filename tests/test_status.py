"""The status screen, rendered from a real engine's statistics, and its keys."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from livecomposer.kernel.clock import ManualClock
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import NS_PER_MS, NS_PER_S
from livecomposer.ports.memory import MemoryInput, MemoryOutput
from livecomposer.app.status import StatusScreen
from livecomposer.kernel.tempo import Tempo


PRESETS = Path(__file__).resolve().parents[1] / "presets"


def played_session(tempo=None):
    from livecomposer.app.session import load, make_router

    preset, graph = load(PRESETS / "bank.yaml")  # a real bank of five presets
    router = make_router(preset)
    clock = ManualClock()
    out = MemoryOutput(clock.now, "livecomposer")
    engine = Engine(graph, output=out, clock=clock, tempo=tempo or Tempo(bpm=96), control_handler=router)
    msgs = []
    for k in range(10):
        t = k * 100 * NS_PER_MS
        msgs += [(t, [0x90, 60 + k, 100]), (t + 50 * NS_PER_MS, [0x80, 60 + k, 0])]
    msgs += [(2 * NS_PER_S, [0x90, 72, 90]), (2 * NS_PER_S + 1, [0xF5]), (2 * NS_PER_S + 2, [0x92])]
    engine.run_offline(msgs, 3 * NS_PER_S)
    return SimpleNamespace(
        engine=engine,
        preset=preset,
        inputs=[MemoryInput("Keystation 49")],
        output=out,
        router=router,
        observers=[],
        visualizer=SimpleNamespace(fps=lambda: 58.25),
    )


def test_screen_shows_the_session():
    session = played_session()
    text = StatusScreen(session, keys=False).render_text(width=110)
    assert "bank" in text and "(bank 1/5)" in text
    assert "Keystation 49" in text and "livecomposer" in text
    assert "96.0 BPM 4/4 internal" in text
    stats = session.engine.stats
    assert stats.notes_in == 11 and stats.bad_messages == 2
    assert "in 11" in text and "out 11" in text
    assert "bad 2" in text
    assert "median" in text and "p99" in text and "µs" in text
    assert "58.2 fps" in text or "58.3 fps" in text
    assert "q quit" in text


def test_screen_reads_the_visualizer_status():
    from livecomposer.visual.process import VisualStatus

    class Visualizer:  # the shape of livecomposer.visual's handle: status() and url
        url = "http://127.0.0.1:8765/"

        def status(self):
            return VisualStatus(ready=True, failed=False, port=8765, frames=900, fps=59.7, frame_ms=6.2, clients=1, sent=900)

    session = played_session()
    session.visualizer = Visualizer()
    text = StatusScreen(session, keys=False).render_text(width=120)
    assert "59.7 fps, 6.2 ms a frame, 1 page open" in text and "8765" in text


def test_screen_shows_a_followed_clock_and_a_missing_tempo():
    tempo = Tempo(bpm=100, source="midi")
    session = played_session(tempo)
    assert "midi (waiting for clock)" in StatusScreen(session, keys=False).render_text()
    session.engine.tempo = None
    assert "tempo" not in StatusScreen(session, keys=False).render_text().split("notes")[0].split("MIDI out")[1]


def test_keys_act_on_the_session():
    session = played_session()
    screen = StatusScreen(session, keys=False)
    screen.handle_key("n")
    assert session.router.index == 1 and session.engine.graph.find("transpose") is not None
    screen.handle_key("n")
    screen.handle_key("b")
    assert session.router.index == 1
    screen.handle_key("b")
    screen.handle_key("b")
    assert session.router.index == 4  # wraps around the bank
    before = session.engine.tempo.bpm
    screen.handle_key("+")
    assert session.engine.tempo.bpm == pytest.approx(before + 1)
    sent_before = len(session.output.sent)
    screen.handle_key("p")
    assert "panic" in screen.render_text()
    ccs = [m for _, m in session.output.sent[sent_before:] if m[0] & 0xF0 == 0xB0]
    assert {m[1] for m in ccs} == {120, 123}  # all notes off, all sound off
    assert not screen.quit_requested
    screen.handle_key("q")
    assert screen.quit_requested


def test_live_screen_runs_and_stops_without_a_terminal():
    import io

    from rich.console import Console

    session = played_session()
    buffer = io.StringIO()
    screen = StatusScreen(session, console=Console(file=buffer, width=100, force_terminal=True), refresh_hz=20)
    with screen:
        time.sleep(0.2)
    assert "bank" in buffer.getvalue()


def test_keys_from_a_real_terminal(tmp_path):
    """In a real terminal (a pseudo-terminal), the screen draws, and pressing q ends it."""
    import pty
    import select

    script = tmp_path / "screen.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from test_status import played_session\n"
        "from livecomposer.app.status import StatusScreen\n"
        "s = StatusScreen(played_session(), refresh_hz=10).start()\n"
        "t = time.time()\n"
        "while not s.quit_requested and time.time() - t < 20: time.sleep(0.05)\n"
        "s.stop()\n"
        "print('QUIT' if s.quit_requested else 'TIMEOUT', flush=True)\n"
    )
    master, slave = pty.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="30")
    proc = subprocess.Popen([sys.executable, str(script)], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, timeout: float) -> bool:
        nonlocal seen
        deadline = time.time() + timeout
        while marker not in seen and time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        return marker in seen

    try:
        assert read_until(b"q quit", 30), seen[-2000:]
        assert b"bank" in seen and b"BPM" in seen
        os.write(master, b"q")
        assert read_until(b"QUIT", 15), seen[-2000:]
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
