"""A private JACK server for the benchmarks and the JACK tests: start, wait, stop.

``jackd -d dummy`` under a unique name, pointed at through ``JACK_DEFAULT_SERVER`` for this
process and its children, stopped by PID on the way out; or the server CI already runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from contextlib import contextmanager
from typing import Iterator


class JackUnavailable(RuntimeError):
    """No JACK server could be started or reached: the figure is reported as skipped."""


def jack_available() -> bool:
    return shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None


def jack_answers(server: str | None = None) -> bool:
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    if server:
        env["JACK_DEFAULT_SERVER"] = server
    try:
        return subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=3).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def jack_server(period: int = 128, rate: int = 48000, name: str | None = None, reuse: bool = False) -> Iterator[str]:
    """Start ``jackd -d dummy`` under a unique name and point this process (and children) at
    it through JACK_DEFAULT_SERVER; stop it by PID on the way out.  ``reuse``: use the server
    JACK_DEFAULT_SERVER names if it answers (CI starts one)."""
    current = os.environ.get("JACK_DEFAULT_SERVER")
    if reuse and current and jack_answers(current):
        os.environ["JACK_NO_START_SERVER"] = "1"
        yield current
        return
    if not jack_available():
        raise JackUnavailable("jackd is not installed (Debian: apt-get install jackd2)")
    name = name or f"lcstage-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        ["jackd", "-n", name, "--port-max", "256", "-d", "dummy", "-r", str(rate), "-p", str(period)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["jack_lsp"], capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise JackUnavailable(f"jackd {name} did not start")
            time.sleep(0.03)
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def wait_for_ports(substring: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        listing = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout.splitlines()
        ports = [p.strip() for p in listing if substring in p]
        if len(ports) >= count:
            return ports
        if time.monotonic() > deadline:
            raise JackUnavailable(f"JACK ports containing {substring!r} did not appear")
        time.sleep(0.02)


def jack_period() -> int:
    """The running server's period in frames (0 if unknown)."""
    try:
        out = subprocess.run(["jack_bufsize"], capture_output=True, text=True, timeout=3).stdout
        return int(out.split()[-1])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return 0


@contextmanager
def private_server(period: int) -> Iterator[str]:
    """A private server: JACK counts xruns server-wide, so other clients would show up as
    our monitor's under-runs.  Falls back to the running one if no new server can start."""
    try:
        server = jack_server(period=period)
        name = server.__enter__()
    except JackUnavailable:
        server = jack_server(period=period, reuse=True)
        name = server.__enter__()
    try:
        yield name
    finally:
        server.__exit__(None, None, None)
