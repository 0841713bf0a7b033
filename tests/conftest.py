"""Shared fixtures: a real JACK server, a real FluidSynth "DAW", MIDI from other processes, the CLI.

Hardware-ish tests use real parts: a JACK server with its dummy driver (the one `.ci/run`
starts, named by ``JACK_DEFAULT_SERVER``, or one started here), FluidSynth as the DAW, and
keyboard/DAW stand-ins that run as separate processes (``tests/helpers/``) so MIDI really
crosses process boundaries through JACK.

With ``CI=true`` nothing may skip: a missing jackd fails instead of skipping, and a hook
below turns every skipped test into a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

import leftovers

REPO = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).resolve().parent / "helpers"
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def need(condition: bool, reason: str) -> None:
    """Skip when a real part is missing, but fail in CI, where it must be present."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: hardware tests may not skip)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- CI: skips fail


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped with CI=true, which counts as a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"module skipped with CI=true, which counts as a failure: {reason}"


# --------------------------------------------------------------------------- JACK server


def jack_answers(server: str, timeout: float = 2.0) -> bool:
    env = dict(os.environ, JACK_DEFAULT_SERVER=server, JACK_NO_START_SERVER="1")
    try:
        return subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class JackServer:
    name: str
    process: subprocess.Popen | None  # None when we use a server someone else started

    def ports(self, *flags: str) -> list[str]:
        out = subprocess.run(["jack_lsp", *flags], capture_output=True, text=True, timeout=5).stdout
        return [line for line in out.splitlines() if line and not line.startswith((" ", "\t"))]

    def connections(self) -> dict[str, list[str]]:
        out = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True, timeout=5).stdout
        result: dict[str, list[str]] = {}
        current = ""
        for line in out.splitlines():
            if line.startswith((" ", "\t")):
                result[current].append(line.strip())
            elif line:
                current = line
                result[current] = []
        return result

    def wait_for_port(self, substring: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            found = [p for p in self.ports() if substring in p]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no JACK port containing {substring!r} appeared; ports: {self.ports()}")
            time.sleep(0.02)

    def connect(self, source: str, destination: str) -> None:
        subprocess.run(["jack_connect", source, destination], check=True, timeout=5)


JACK_REGISTRY = Path("/dev/shm/jack-shm-registry")


def reclaim_dead_jack_servers() -> list[str]:
    """Free the JACK server-registry slots of servers whose process is gone.

    jackd registers each server name in a table of 8 slots in shared memory and frees its
    slot on a clean exit.  A server killed with SIGKILL (as the crash test does) keeps its
    slot; jackd reclaims a dead slot only for the same name, so after 8 such names no
    server can start on the machine ("Too many servers already active").  This applies
    jackd's own rule (the pid is dead: free it) to every slot.  Returns the names freed.
    """
    import mmap
    import struct

    try:
        fd = os.open(JACK_REGISTRY, os.O_RDWR)
    except OSError:
        return []
    freed = []
    try:
        with mmap.mmap(fd, 0) as shm:
            # Layout (jack2 shm.h): magic "KCAJ", protocol, type, size, hdr_len, entry_len,
            # then 8 x {pid_t pid; char name[260]}.  Refuse anything else.
            hdr_len = struct.unpack_from("<I", shm, 16)[0]
            if shm[:4] != b"KCAJ" or hdr_len != 24 + 8 * 264:
                return []
            for slot in range(8):
                offset = 24 + slot * 264
                pid = struct.unpack_from("<i", shm, offset)[0]
                if pid <= 0:
                    continue
                try:
                    os.kill(pid, 0)
                    continue
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue
                freed.append(bytes(shm[offset + 4 : offset + 264]).split(b"\0")[0].decode(errors="replace"))
                shm[offset : offset + 264] = bytes(264)
    finally:
        os.close(fd)
    return freed


#: Every JACK server this session used: their files in /dev/shm must be gone at the end.
OUR_SERVERS: set[str] = set()


def close_our_jack_clients() -> None:
    """Close this process's JACK watch clients before their server stops: a server that
    stops with a client still open leaves that client's semaphore file in /dev/shm."""
    jackclient = sys.modules.get("livecomposer.rt.jackclient")
    if jackclient is not None:
        jackclient.close_watches()


@pytest.fixture(scope="session", autouse=True)
def nothing_left_in_dev_shm() -> Iterator[None]:
    """Fail the run if it leaves files in /dev/shm (see tests/leftovers.py for what counts)."""
    before, jackd_before = leftovers.entries(), leftovers.jackd_pids()
    yield
    close_our_jack_clients()
    if os.environ.get("JACK_DEFAULT_SERVER"):
        OUR_SERVERS.add(os.environ["JACK_DEFAULT_SERVER"])
    deadline = time.monotonic() + 3  # servers remove a closed client's files on their own thread
    while (left := leftovers.left_behind(before, jackd_before, OUR_SERVERS)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        pytest.fail(f"this run left {len(left)} file(s) in /dev/shm: {', '.join(left)}", pytrace=False)


def start_jackd(name: str) -> subprocess.Popen:
    """Start a headless JACK server (dummy driver) and wait until it answers."""
    OUR_SERVERS.add(name)
    reclaim_dead_jack_servers()
    if jack_answers(name):
        raise RuntimeError(f"a JACK server named {name!r} is already running")
    process = subprocess.Popen(
        # -S: synchronous, as .ci/run starts it (a late client delays the cycle instead of
        # handing the next client a stale buffer: see .ci/run)
        ["jackd", "-n", name, "-S", "--port-max", "256", "-d", "dummy", "-r", "48000", "-p", "64"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not jack_answers(name, timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"jackd -n {name} did not start (exit code {process.poll()})")
        time.sleep(0.05)
    time.sleep(0.05)
    if process.poll() is not None:
        raise RuntimeError(f"jackd -n {name} exited at once (exit code {process.returncode})")
    return process


def stop_jackd(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    reclaim_dead_jack_servers()  # in case it had to be killed


@pytest.fixture(scope="session")
def jack_server() -> Iterator[JackServer]:
    """A running JACK server; ``JACK_DEFAULT_SERVER`` and ``JACK_NO_START_SERVER`` point at it."""
    named = os.environ.get("JACK_DEFAULT_SERVER")
    if named and jack_answers(named):
        os.environ["JACK_NO_START_SERVER"] = "1"
        OUR_SERVERS.add(named)
        yield JackServer(named, None)
        return
    need(shutil.which("jackd") is not None, "jackd is not installed (Debian package jackd2)")
    name = f"lc-test-{os.getpid()}"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    process = start_jackd(name)
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    try:
        yield JackServer(name, process)
    finally:
        close_our_jack_clients()
        stop_jackd(process)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def wait_until(predicate, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` every 5 ms until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


def unique(prefix: str) -> str:
    """A JACK client name no other test (or parallel run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# --------------------------------------------------------------------------- other processes


class _Lines:
    """Reads a child's stdout on a thread so tests can wait for lines with a timeout."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._thread.is_alive()):
                    break
                self._cond.wait(min(left, 0.1))
            return list(self.lines)


def _stop_child(process: subprocess.Popen, farewell: str = "") -> None:
    """End a helper process: ``farewell`` and EOF on its stdin, then kill it after 5 s."""
    if process.poll() is not None:
        return
    try:
        if farewell:
            process.stdin.write(farewell)
        process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class MidiSender:
    """A keyboard stand-in in another process, with a JACK virtual output port."""

    def __init__(self, client: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HELPERS / "midi_send.py"), client],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,  # None: ours (another server's, e.g. PipeWire's: tests/test_pipewire.py)
        )
        self._out = _Lines(self.process)
        lines = self._out.wait_for(lambda ls: any(l.startswith("ready") for l in ls), 20)
        ready = [l for l in lines if l.startswith("ready")]
        if not ready:
            raise AssertionError(f"MIDI sender did not start: {lines}")
        self.port = ready[0].split(" ", 1)[1]

    def send(self, *messages: list[int] | bytes, gap_ms: float = 0) -> list[int]:
        """Send messages (each a list of bytes); returns the monotonic_ns just before each send."""
        start = len([l for l in self._out.lines if l.startswith("sent")])
        for message in messages:
            self.process.stdin.write("send " + " ".join(f"{b:02x}" for b in message) + "\n")
            if gap_ms:
                self.process.stdin.write(f"wait {gap_ms}\n")
        self.process.stdin.flush()
        want = start + len(messages)
        lines = self._out.wait_for(lambda ls: len([l for l in ls if l.startswith("sent")]) >= want, 20)
        return [int(l.split()[1]) for l in lines if l.startswith("sent")][start:want]

    def close(self) -> None:
        _stop_child(self.process, "quit\n")


class MidiReceiver:
    """A DAW stand-in in another process: a JACK MIDI input that reports each message with its time."""

    def __init__(self, client: str, source: str | None = None, env: dict[str, str] | None = None) -> None:
        args = [sys.executable, str(HELPERS / "midi_receive.py"), client]
        if source:
            args += ["--source", source]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self._out = _Lines(self.process)
        lines = self._out.wait_for(lambda ls: any(l.startswith(("ready", "error")) for l in ls), 20)
        ready = [l for l in lines if l.startswith("ready")]
        if not ready:
            raise AssertionError(f"MIDI receiver did not start: {lines}")
        self.port = f"{client}:in" if source is None else ready[0].split(" ", 1)[1]

    def messages(self) -> list[tuple[int, list[int]]]:
        out = []
        for line in self._out.lines:
            if line.startswith(("ready", "error")):
                continue
            words = line.split()
            out.append((int(words[0]), [int(w, 16) for w in words[1:]]))
        return out

    def wait_for(self, predicate: Callable[[list[tuple[int, list[int]]]], bool], timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.messages()
            if predicate(got) or time.monotonic() > deadline:
                return got
            self._out.wait_for(lambda ls, n=len(self._out.lines): len(ls) > n, min(0.1, deadline - time.monotonic()))

    def wait_count(self, n: int, timeout: float = 5.0) -> list[tuple[int, list[int]]]:
        return self.wait_for(lambda got: len(got) >= n, timeout)

    def close(self) -> None:
        _stop_child(self.process)


@pytest.fixture
def midi_sender(jack_server) -> Iterator[Callable[..., MidiSender]]:
    """Factory: ``midi_sender(client=None)`` starts a keyboard stand-in process."""
    made: list[MidiSender] = []

    def make(client: str | None = None) -> MidiSender:
        sender = MidiSender(client or unique("kbd"))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.close()


@pytest.fixture
def midi_receiver(jack_server) -> Iterator[Callable[..., MidiReceiver]]:
    """Factory: ``midi_receiver(client=None, source=None)`` starts a DAW stand-in process.

    Without ``source`` it owns a virtual input that others connect to; with it, it connects
    itself to the first output port containing ``source`` (waiting for it to appear).
    """
    made: list[MidiReceiver] = []

    def make(client: str | None = None, source: str | None = None) -> MidiReceiver:
        receiver = MidiReceiver(client or unique("daw"), source)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


# --------------------------------------------------------------------------- FluidSynth DAW


@dataclass
class FluidSynthDaw:
    """FluidSynth on JACK (MIDI in, audio out): the DAW stand-in of the integration tests."""

    client: str
    process: subprocess.Popen
    midi_port: str
    audio_ports: list[str]
    _log: list[str] = field(default_factory=list)

    def command(self, line: str) -> None:
        """Type a line into FluidSynth's shell (it reads its standard input, a pipe we hold open)."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def record(self, path: Path, seconds: float) -> subprocess.Popen:
        """Start ``jack_rec`` on the synth's audio outputs; wait() on the result for the WAV."""
        return subprocess.Popen(
            ["jack_rec", "-f", str(path), "-d", str(seconds), "-b", "16", *self.audio_ports],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.command("quit")
                self.process.stdin.close()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


@pytest.fixture
def fluidsynth_daw(jack_server: JackServer) -> Iterator[FluidSynthDaw]:
    """A real FluidSynth with FluidR3_GM on JACK MIDI and audio, fed through its shell's stdin.

    FluidSynth's shell quits at end-of-file on its standard input (fed from a FIFO it never does); an open
    pipe from this process does the same and lets the test type commands (``quit`` ends it).
    """
    need(shutil.which("fluidsynth") is not None, "fluidsynth is not installed (Debian package fluidsynth)")
    need(SOUNDFONT.exists(), f"{SOUNDFONT} is missing (Debian package fluid-soundfont-gm)")
    client = unique("fsynth")
    process = subprocess.Popen(
        [
            "fluidsynth", "-a", "jack", "-m", "jack",
            "-o", f"midi.jack.id={client}", "-o", f"audio.jack.id={client}",
            "-o", "audio.jack.autoconnect=0", "-o", "synth.reverb.active=0", "-o", "synth.chorus.active=0",
            "-g", "0.8", str(SOUNDFONT),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    daw = FluidSynthDaw(client, process, "", [])
    try:
        daw.midi_port = jack_server.wait_for_port(f"{client}:midi", timeout=30)
        daw.audio_ports = [jack_server.wait_for_port(f"{client}:left"), jack_server.wait_for_port(f"{client}:right")]
        yield daw
    finally:
        daw.close()


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def run_cli() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``python -m livecomposer.cli ARGS...`` as a subprocess (stdout/stderr piped, text).

    Processes still running at the end of the test are stopped (SIGTERM, then SIGKILL).
    """
    started: list[subprocess.Popen] = []

    def run(*args: str, **kwargs) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.update(kwargs.pop("env", {}))
        process = subprocess.Popen(
            [sys.executable, "-m", "livecomposer.cli", *args],
            cwd=kwargs.pop("cwd", REPO),
            env=env,
            stdout=kwargs.pop("stdout", subprocess.PIPE),
            stderr=kwargs.pop("stderr", subprocess.PIPE),
            text=True,
            **kwargs,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- clipart


def copy_small_clipart(root: Path, count: int) -> Path:
    """``root``, a new folder holding ``count`` real, small openclipart images (quick to decode)."""
    from livecomposer.visual.dataset import CLIPART_DIR

    root.mkdir()
    small = sorted(p for p in (CLIPART_DIR / "shapes").rglob("*.png") if p.stat().st_size < 20_000)[:count]
    assert len(small) >= 8, "openclipart-png is not installed"
    for i, p in enumerate(small):
        shutil.copy(p, root / f"{i:02d}.png")
    return root


@pytest.fixture()
def small_pack(tmp_path):
    """A pack of a few real clipart images (quick to decode)."""
    from livecomposer.visual.dataset import prepare

    root = copy_small_clipart(tmp_path / "clipart", 8)
    return prepare(tmp_path / "pack.npz", size=64, root=root, categories=None, progress=False)
