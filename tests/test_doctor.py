"""``livecomposer doctor``: against a real JACK server (dummy driver), and against one that does not exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from livecomposer.app.doctor import FAIL, OK, WARN, Check, can_play, jack_needed

REPO = Path(__file__).resolve().parents[1]


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livecomposer.cli", "doctor", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO), **env))


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


@pytest.mark.jack
def test_a_machine_with_jack_and_a_keyboard_is_ready(jack_server, midi_sender) -> None:
    keyboard = midi_sender()
    proc = doctor("--api", "jack", "--json")
    report = json.loads(proc.stdout)
    checks = by_name(report)
    assert proc.returncode == 0 and report["ok"] is True, proc.stdout + proc.stderr
    server = checks["audio server"]
    assert server["status"] == OK and f"server {jack_server.name!r}" in server["detail"]
    assert "48000 Hz, period 64 frames = 1.3 ms" in server["detail"]  # the fixture's server: -r 48000 -p 64
    assert checks["MIDI"]["status"] == OK and checks["MIDI"]["detail"].startswith("jack: ")
    assert keyboard.port.split(":")[0] in checks["MIDI"]["detail"]
    assert checks["models"]["status"] == OK and "folk-melody" in checks["models"]["detail"]
    assert set(checks) >= {"realtime priority", "memory locking", "CPU governor", "PortAudio", "FluidSynth", "soundfont", "browser"}
    for check in report["checks"]:
        assert check["status"] in (OK, WARN)
        assert (check["fix"] is None) == (check["status"] == OK), check  # every problem says how to fix it


def test_no_jack_server_where_jack_is_the_midi_system_fails_with_a_fix() -> None:
    env = {"JACK_DEFAULT_SERVER": "lc-doctor-no-such-server", "JACK_NO_START_SERVER": "1"}
    proc = doctor("--api", "jack", "--json", **env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    server = by_name(report)["audio server"]
    assert server["status"] == FAIL and "'lc-doctor-no-such-server'" in server["detail"]
    assert "jackd" in server["fix"] and "pw-jack" in server["fix"] and "\n" not in server["fix"]
    assert by_name(report)["MIDI"]["status"] == FAIL

    text = doctor("--api", "jack", **env)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("FAIL  audio server"))
    assert "fix: start one" in lines[failed + 1]
    assert lines[-1].startswith("not ready")


def test_jack_is_required_only_where_it_carries_the_midi() -> None:
    assert jack_needed("jack") and not jack_needed("alsa")
    assert jack_needed("auto") == (sys.platform.startswith("linux") and not os.path.exists("/dev/snd/seq"))
    assert can_play([Check("a", OK, ""), Check("b", WARN, "", "fix")])
    assert not can_play([Check("a", OK, ""), Check("b", FAIL, "", "fix")])
