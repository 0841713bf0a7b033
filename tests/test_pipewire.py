"""livecomposer on PipeWire's JACK: a headless PipeWire of our own, everything through it.

Most Linux desktops run PipeWire, whose JACK is a different libjack (``pw-jack`` puts it
first on LD_LIBRARY_PATH).  python-rtmidi's wheel carries its own libjack that never
reaches it, so livecomposer talks JACK only through the system's libjack (ctypes and its
compiled clients).  This module starts PipeWire headless (tests/helpers/pipewire_server.py:
minimal.conf with a null audio sink instead of ALSA, a private XDG_RUNTIME_DIR) and runs,
in processes with PipeWire's JACK environment: port listing, ``run`` with thru (which
checks delivery with its probe first), and keyboards appearing and vanishing mid-run.

Without a session manager PipeWire may connect ports on its own: only the notes the test
played (by their numbers) are counted.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO, MidiReceiver, MidiSender, _Lines, need, unique

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))
import pipewire_server  # noqa: E402

pytestmark = pytest.mark.jack

NOTE_ON, NOTE_OFF = 0x90, 0x80


class PipeWire:
    """A running headless PipeWire and the environment of its JACK clients."""

    def __init__(self, process: subprocess.Popen, env: dict[str, str]) -> None:
        self.process = process
        self.env = env
        self.made: list = []

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)

    def connections(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        current = ""
        for line in self.run("jack_lsp", "-c").stdout.splitlines():
            if line.startswith((" ", "\t")):
                result[current].append(line.strip())
            elif line:
                current = line
                result[current] = []
        return result

    def keyboard(self, client: str) -> MidiSender:
        sender = MidiSender(client, env=self.env)
        self.made.append(sender)
        return sender

    def daw(self, source: str | None = None) -> MidiReceiver:
        receiver = MidiReceiver(unique("daw"), source, env=self.env)
        self.made.append(receiver)
        return receiver

    def cli(self, *args: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "livecomposer.cli", *args], cwd=REPO, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.made.append(process)
        return process

    def close_clients(self) -> None:
        for thing in reversed(self.made):
            if isinstance(thing, subprocess.Popen):
                if thing.poll() is None:
                    thing.terminate()
                    try:
                        thing.wait(10)
                    except subprocess.TimeoutExpired:
                        thing.kill()
                        thing.wait()
            else:
                thing.close()
        self.made.clear()


@pytest.fixture(scope="module")
def pipewire(tmp_path_factory) -> Iterator[PipeWire]:
    missing = pipewire_server.available()
    need(missing is None, missing or "")
    runtime = tmp_path_factory.mktemp("pw")
    process = pipewire_server.start(runtime)
    env = dict(os.environ, **pipewire_server.jack_env(runtime))
    env.pop("JACK_DEFAULT_SERVER", None)  # PipeWire's libjack takes a server name as its remote's
    env["JACK_NO_START_SERVER"] = "1"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    server = PipeWire(process, env)
    try:
        yield server
    finally:
        server.close_clients()
        pipewire_server.stop(process)


@pytest.fixture
def pw(pipewire) -> Iterator[PipeWire]:
    yield pipewire
    pipewire.close_clients()


def notes(messages) -> list[tuple[int, int]]:
    out = []
    for _, m in messages:
        if len(m) == 3 and m[0] & 0xF0 in (NOTE_ON, NOTE_OFF):
            out.append((NOTE_OFF if m[0] & 0xF0 == NOTE_OFF or m[2] == 0 else NOTE_ON, m[1]))
    return out


def test_pipewire_answers_and_our_loader_takes_its_libjack(pw) -> None:
    assert pw.run("jack_samplerate").stdout.strip() == "48000"
    probe = (
        "from livecomposer.rt import jackclient\n"
        "assert jackclient.server_running()\n"
        "print([l.split()[-1] for l in open('/proc/self/maps') if 'libjack.so' in l][0])\n"
    )
    done = pw.run(sys.executable, "-c", probe, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pipewire" in done.stdout, f"loaded {done.stdout.strip()}, not PipeWire's libjack"


def test_ports_lists_through_pipewire(pw) -> None:
    keyboard = pw.keyboard(unique("kbd"))
    daw = pw.daw()  # a port others connect to
    done = pw.run(sys.executable, "-m", "livecomposer.cli", "ports", "--api", "jack", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert keyboard.port in listing["inputs"]
    assert daw.port in listing["outputs"]


def test_run_plays_thru_and_takes_keyboards_as_they_come_and_go(pw) -> None:
    prefix = unique("pwkbd")
    first = pw.keyboard(f"{prefix}-a")
    name = unique("lc-pw")
    proc = pw.cli("run", "presets/thru.yaml", "--api", "jack", "--input", prefix, "--output", name)
    lines = _Lines(proc)
    # The run checks its output with the delivery probe before it prints this line.
    lines.wait_for(lambda ls: any(l.startswith("preset ") for l in ls), 60)
    if proc.poll() is not None or not any(l.startswith("preset ") for l in lines.lines):
        proc.kill()
        raise AssertionError(f"run did not start under PipeWire: {lines.lines} {proc.stderr.read()}")
    daw = pw.daw(f"{name}:{name}")

    first.send([0x90, 60, 100], [0x80, 60, 0], gap_ms=20)
    got = daw.wait_for(lambda m: (NOTE_OFF, 60) in notes(m), 10)
    assert [n for n in notes(got) if n[1] == 60] == [(NOTE_ON, 60), (NOTE_OFF, 60)]

    second = pw.keyboard(f"{prefix}-b")  # switched on while running
    appeared = time.monotonic()
    deadline = appeared + 5
    while not any("livecomposer-in" in d for d in pw.connections().get(second.port, [])):
        assert time.monotonic() < deadline, f"{second.port} never connected: {pw.connections()}"
        time.sleep(0.02)
    took = time.monotonic() - appeared
    assert took < 1.0, f"connected after {took:.2f} s"
    second.send([0x90, 62, 100])  # held when it vanishes
    daw.wait_for(lambda m: (NOTE_ON, 62) in notes(m), 10)
    second.close()
    got = daw.wait_for(lambda m: (NOTE_OFF, 62) in notes(m), 5)
    assert (NOTE_OFF, 62) in notes(got), "the note held on the vanished keyboard was not released"

    back = pw.keyboard(f"{prefix}-b")  # and back, same name
    deadline = time.monotonic() + 5
    while not any("livecomposer-in" in d for d in pw.connections().get(back.port, [])):
        assert time.monotonic() < deadline, f"{back.port} never reconnected: {pw.connections()}"
        time.sleep(0.02)
    back.send([0x90, 64, 100], [0x80, 64, 0], gap_ms=20)
    got = daw.wait_for(lambda m: (NOTE_OFF, 64) in notes(m), 10)
    assert [n for n in notes(got) if n[1] == 64] == [(NOTE_ON, 64), (NOTE_OFF, 64)]

    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    err = proc.stderr.read()
    assert proc.returncode in (0, 130) and "Traceback" not in err, err
    assert re.search(r"new MIDI input '.*-b:out' connected", err), err
    assert "vanished" in err and "is back" in err, err
    print(f"PipeWire: second keyboard connected {took * 1000:.0f} ms after it appeared")
