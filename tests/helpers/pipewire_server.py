"""A headless PipeWire for tests and CI: its JACK implementation with a null audio sink.

Debian's ``/usr/share/pipewire/minimal.conf`` (PipeWire without a session manager) drives
ALSA's ``hw:0``; a machine without a sound card has none.  :func:`config` copies it with
its ALSA adapters (``api.alsa.pcm.*``) replaced by one ``support.null-audio-sink`` adapter
(stereo, ``Audio/Sink``) and the clock at 64 frames like the tests' jackd, and :func:`start` runs ``pipewire -c`` with it, with
``XDG_RUNTIME_DIR`` a private 0700 folder so it never meets a desktop's PipeWire.  JACK
clients reach it through PipeWire's libjack (``pw-jack`` puts it first on
``LD_LIBRARY_PATH``; :func:`jack_env` gives the same environment).

From a shell (``.ci/run``, which starts and stops ``pipewire`` itself):
``python tests/helpers/pipewire_server.py config`` prints the configuration,
``python tests/helpers/pipewire_server.py jack-lib-dir`` the folder of PipeWire's libjack.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

MINIMAL = Path("/usr/share/pipewire/minimal.conf")
#: Where Debian's pipewire-jack puts PipeWire's libjack (what pw-jack selects).
JACK_LIB_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu/pipewire-0.3/jack"),
    Path("/usr/lib/aarch64-linux-gnu/pipewire-0.3/jack"),
    Path("/usr/lib64/pipewire-0.3/jack"),
    Path("/usr/lib/pipewire-0.3/jack"),
)

NULL_SINK = """
    { factory = adapter
        args = {
            factory.name     = support.null-audio-sink
            node.name        = "system"
            node.description = "null sink"
            media.class      = "Audio/Sink"
            audio.position   = [ FL FR ]
            # DSP ports, as the ALSA adapters had: JACK clients see null sink:playback_FL/FR
            # (physical playback ports, which PortAudio's JACK output needs for the monitor)
            adapter.auto-port-config = { mode = dsp monitor = false control = false position = preserve }
        }
    }
"""
#: The graph's clock as the tests' jackd runs it: 48 kHz, 64 frames a cycle (PipeWire's
#: default of 1024 put a JACK output's one-period latency at 21 ms).
CLOCK = """
    default.clock.rate        = 48000
    default.clock.quantum     = 64
    default.clock.min-quantum = 64
    default.clock.max-quantum = 64
"""


def jack_lib_dir() -> Path | None:
    """The folder of PipeWire's libjack.so.0, or None when pipewire-jack is not installed."""
    return next((d for d in JACK_LIB_DIRS if (d / "libjack.so.0").exists()), None)


def available() -> str | None:
    """None when a headless PipeWire can run here, else what is missing (one line)."""
    if shutil.which("pipewire") is None or not MINIMAL.exists():
        return "pipewire is not installed (Debian: apt-get install pipewire pipewire-jack)"
    if jack_lib_dir() is None:
        return "PipeWire's JACK library is not installed (Debian: apt-get install pipewire-jack)"
    return None


def _blocks(text: str, start: int) -> list[tuple[int, int]]:
    """Spans of the top-level ``{ ... }`` objects of the list that opens at ``start``."""
    spans, depth, i, begin = [], 0, start, 0
    comment = False
    while i < len(text):
        c = text[i]
        if comment:
            comment = c != "\n"
        elif c == "#":
            comment = True
        elif c == "{":
            if depth == 0:
                begin = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                spans.append((begin, i + 1))
        elif c == "]" and depth == 0:
            break
        i += 1
    return spans


def config(text: str | None = None) -> str:
    """minimal.conf with its ALSA PCM adapters replaced by one null audio sink, the clock
    at 48 kHz and 64 frames (:data:`CLOCK`)."""
    text = MINIMAL.read_text() if text is None else text
    properties = text.index("{", text.index("context.properties")) + 1
    text = text[:properties] + CLOCK + text[properties:]
    spans = _blocks(text, text.index("[", text.index("context.objects")) + 1)
    alsa = [span for span in spans if "api.alsa.pcm." in text[span[0] : span[1]]]
    kept = [span for span in spans if span not in alsa]
    insert_at = kept[-1][1] if kept else spans[0][0]
    out, last = [], 0
    for begin, end in sorted(alsa + [(insert_at, insert_at)]):
        if begin >= last:
            out.append(text[last:begin])
            last = end
        if begin == insert_at:
            out.append(NULL_SINK)
    out.append(text[last:])
    return "".join(out)


def jack_env(runtime_dir: Path) -> dict[str, str]:
    """Environment for JACK clients of this PipeWire (what pw-jack sets, plus its runtime dir)."""
    lib = jack_lib_dir()
    assert lib is not None
    old = os.environ.get("LD_LIBRARY_PATH", "")
    return {
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "PIPEWIRE_RUNTIME_DIR": str(runtime_dir),
        "LD_LIBRARY_PATH": str(lib) + (os.pathsep + old if old else ""),
        "LC_AUDIO_SERVER": "pipewire",
    }


def start(runtime_dir: Path, timeout: float = 15.0) -> subprocess.Popen:
    """Start a headless PipeWire in ``runtime_dir`` (made 0700) and wait until JACK clients
    can connect (``jack_lsp`` through its libjack answers)."""
    runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(runtime_dir, 0o700)
    conf = runtime_dir / "lc-pipewire.conf"
    conf.write_text(config())
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), PIPEWIRE_RUNTIME_DIR=str(runtime_dir))
    env.pop("PIPEWIRE_REMOTE", None)
    process = subprocess.Popen(
        ["pipewire", "-c", str(conf)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client_env = dict(os.environ, **jack_env(runtime_dir))
    client_env.pop("JACK_DEFAULT_SERVER", None)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pipewire -c {conf} exited at once (exit code {process.returncode})")
        try:
            ok = subprocess.run(["jack_lsp"], env=client_env, capture_output=True, timeout=5).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return process
        if time.monotonic() > deadline:
            stop(process)
            raise RuntimeError("headless PipeWire did not answer JACK clients within %.0f s" % timeout)
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str]) -> int:
    if argv == ["config"]:
        print(config(), end="")
        return 0
    if argv == ["jack-lib-dir"]:
        lib = jack_lib_dir()
        if lib is None:
            print(available(), file=sys.stderr)
            return 1
        print(lib)
        return 0
    print("usage: pipewire_server.py config | jack-lib-dir", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
