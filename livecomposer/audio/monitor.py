"""``--monitor``: hear the output through the built-in synth on the sound card (sounddevice).

:class:`Monitor` is an engine observer.  On the engine thread it only appends the sent note
and controller events to a deque (an atomic append: no lock, no wait).  A renderer thread
keeps ``ahead`` blocks rendered, placing each event at a fixed latency after the time it was
sent, so notes keep their relative timing inside a block instead of all landing on the
block's first sample.  PortAudio's audio callback (on JACK's realtime thread, needing the
GIL) only copies a ready block: it holds the GIL for microseconds, where rendering in the
callback held it for up to a JACK period and caused under-runs.  Under-runs reported by
PortAudio and gaps (the renderer fell behind) are counted for the status screen and the
stage benchmark.

JACK: PortAudio sees a JACK server only if it was running when PortAudio was initialised,
so :meth:`Monitor.start` re-initialises it (and names our JACK client).  Stop the monitor
before anything stops jackd: PortAudio aborts the process if the server vanishes under it.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import logging
import sys
import threading
import time
from typing import Any, Sequence

import numpy as np

from ..clock import make_realtime
from ..events import NS_PER_S, Event, Kind
from .synth import Synth

log = logging.getLogger(__name__)

_AUDIBLE = frozenset({Kind.NOTE_ON, Kind.NOTE_OFF, Kind.CONTROL})
MAX_BLOCK = 256
GIL_SWITCH_S = 0.0001
JACK_CLIENT_NAME = "livecomposer-monitor"


class MonitorError(RuntimeError):
    """No usable audio output; the message says what to install or start."""


def _import_sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise MonitorError(f"PortAudio is not installed ({exc}); install libportaudio2 (Debian/Ubuntu) or portaudio (Homebrew)") from None
    return sounddevice


_client_name_buffer: Any = None  # PortAudio keeps the pointer: the buffer must outlive it


def _portaudio_lib() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("portaudio") or "libportaudio.so.2")


def jack_client_name() -> str | None:
    """The JACK client name PortAudio actually got (JACK renames a second
    'livecomposer-monitor' to 'livecomposer-monitor-01'), or None off JACK."""
    try:
        getter = getattr(_portaudio_lib(), "PaJack_GetClientName", None)
        if getter is None:
            return None
        name = ctypes.c_char_p()
        if getter(ctypes.byref(name)) != 0 or not name.value:
            return None
        return name.value.decode()
    except OSError:
        return None


_open_streams = 0  # monitors with a running stream in this process (PortAudio is per process)


def rescan_audio(jack_client_name: str | None = JACK_CLIENT_NAME) -> None:
    """Re-initialise PortAudio so it sees a JACK server started after import, under our name.
    Does nothing while one of our streams runs (re-initialising would kill it)."""
    global _client_name_buffer
    sd = _import_sounddevice()
    if _open_streams > 0:
        return
    if jack_client_name:
        try:
            lib = _portaudio_lib()
            setter = getattr(lib, "PaJack_SetClientName", None)
            if setter is not None:
                _client_name_buffer = ctypes.create_string_buffer(jack_client_name.encode())
                setter(_client_name_buffer)
        except OSError:
            pass
    shutdown_audio()
    sd._initialize()


def shutdown_audio() -> None:
    """Terminate PortAudio completely, closing its JACK client: do this before jackd stops.
    Does nothing while one of our streams still runs."""
    sd = _import_sounddevice()
    if _open_streams > 0:
        return
    while sd._initialized > 0:
        sd._terminate()


def pick_output_device(prefer: str | None = None) -> tuple[int, str]:
    """(device index, description): ``prefer`` (a name substring or index) if given, else
    JACK's default output when a JACK server runs, else the system default output."""
    sd = _import_sounddevice()
    devices = sd.query_devices()
    apis = sd.query_hostapis()
    outputs = [i for i, d in enumerate(devices) if d["max_output_channels"] > 0]
    if not outputs:
        raise MonitorError(
            "no audio output device found: plug in a sound card, or start JACK (e.g. "
            "'jackd -d dummy' or 'jackd -d alsa') before livecomposer"
        )
    if prefer is not None:
        if str(prefer).isdigit() and int(prefer) in outputs:
            i = int(prefer)
            return i, f"{devices[i]['name']} ({apis[devices[i]['hostapi']]['name']})"
        for i in outputs:
            if str(prefer).lower() in devices[i]["name"].lower():
                return i, f"{devices[i]['name']} ({apis[devices[i]['hostapi']]['name']})"
        names = ", ".join(devices[i]["name"] for i in outputs)
        raise MonitorError(f"no audio output matches {prefer!r}; outputs: {names}")
    for api in apis:
        if "JACK" in api["name"] and api["default_output_device"] >= 0:
            i = api["default_output_device"]
            return i, f"{devices[i]['name']} ({api['name']})"
    default = sd.default.device[1]
    i = default if isinstance(default, int) and default in outputs else outputs[0]
    return i, f"{devices[i]['name']} ({apis[devices[i]['hostapi']]['name']})"


class Monitor:
    """Engine observer that plays what is sent through the built-in synth.

    ``Monitor(blocksize=256, device=None, sample_rate=None, voices=16)``; :meth:`start`
    opens the stream (raises :class:`MonitorError` with advice if there is no output);
    :meth:`close` (also called by the engine at shutdown) stops it.
    """

    def __init__(
        self,
        blocksize: int = MAX_BLOCK,
        device: str | int | None = None,
        sample_rate: int | None = None,
        voices: int = 16,
        gain: float = 0.3,
        ahead: int = 2,
    ) -> None:
        if not 1 <= ahead <= 8:
            raise ValueError(f"ahead must be 1..8 blocks; got {ahead}")
        if not 16 <= blocksize <= MAX_BLOCK:
            raise ValueError(f"monitor block must be 16..{MAX_BLOCK} frames; got {blocksize}")
        self.blocksize = blocksize
        self.device = device
        self.sample_rate = sample_rate
        self.voices = voices
        self.gain = gain
        self.synth: Synth | None = None
        self.queue: collections.deque[Event] = collections.deque()
        self.stream: Any = None
        self.device_name = ""
        self.jack_ports: list[str] = []  # our JACK output ports, when on JACK
        self.underruns = 0  # blocks PortAudio reported as output under-flows
        self.starved = 0  # blocks played as silence because the renderer fell behind
        self.blocks = 0  # blocks played
        self.rendered = 0  # blocks rendered
        self.ahead = ahead
        self._ready: collections.deque[np.ndarray] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events_played = 0
        self.callback_ns_max = 0
        self.callback_ns = np.zeros(8192, dtype=np.int64)  # ring of recent callback durations
        self._lock = threading.Lock()  # start/close only; never taken in the callback

    # -- engine side ------------------------------------------------------------------------
    def observe(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None:
        append = self.queue.append
        for event in outputs:
            if event.kind in _AUDIBLE:
                append(event)

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> "Monitor":
        with self._lock:
            if self.stream is not None:
                return self
            sd = _import_sounddevice()
            rescan_audio()
            index, self.device_name = pick_output_device(self.device)
            rate = int(self.sample_rate or sd.query_devices(index)["default_samplerate"] or 48000)
            self.sample_rate = rate
            self.synth = Synth(rate, voices=self.voices, gain=self.gain)
            self._block_ns = self.blocksize * NS_PER_S // rate
            self._stop.clear()
            self._ready.clear()
            self._ready.append(np.zeros((self.blocksize, 2), dtype=np.float32))
            self._thread = threading.Thread(target=self._renderer, name="livecomposer-monitor", daemon=True)
            self._thread.start()
            try:
                self.stream = sd.OutputStream(
                    samplerate=rate,
                    blocksize=self.blocksize,
                    device=index,
                    channels=2,
                    dtype="float32",
                    latency="low",
                    callback=self._callback,
                )
                self.stream.start()
                global _open_streams
                _open_streams += 1
            except Exception as exc:
                self.stream = None
                self._stop.set()
                self._wake.set()
                raise MonitorError(f"cannot open audio output {self.device_name}: {exc}") from None
            if "JACK" in self.device_name:
                client = jack_client_name()
                if client:
                    self.jack_ports = [f"{client}:out_0", f"{client}:out_1"]
            log.info("monitor: %s, %d Hz, %d-frame blocks", self.device_name, rate, self.blocksize)
            return self

    def close(self) -> None:
        with self._lock:
            stream, self.stream = self.stream, None
            self._stop.set()
            self._wake.set()
            if self._thread is not None:
                self._thread.join(1.0)
                self._thread = None
            if stream is not None:
                global _open_streams
                _open_streams -= 1
                try:
                    stream.stop()
                finally:
                    stream.close()
                    # PortAudio keeps a JACK client open until terminated; if jackd stopped
                    # under it the process would abort, so let go of JACK entirely.
                    shutdown_audio()

    def __enter__(self) -> "Monitor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.stream is not None and bool(self.stream.active)

    # -- audio thread -----------------------------------------------------------------------
    def _render_block(self) -> np.ndarray:
        """Render the next block now, placing each queued event at its offset (renderer thread)."""
        now = time.monotonic_ns()
        synth = self.synth
        assert synth is not None
        frames = self.blocksize
        queue = self.queue
        timed: list[tuple[int, Event]] = []
        if queue:
            # Each event sounds a fixed latency after it was sent, so spacing is exact.
            base = now - self._block_ns
            rate = self.sample_rate or 48000
            while queue and queue[0].time <= now:
                event = queue.popleft()
                offset = (event.time - base) * rate // NS_PER_S
                timed.append((int(min(max(offset, 0), frames - 1)), event))
            # an event stamped in the future (clock skew) must not stall the queue forever
            if queue and queue[0].time > now + NS_PER_S:
                timed.append((0, queue.popleft()))
            timed.sort(key=lambda x: x[0])
            self.events_played += len(timed)
        block = synth.render_with(timed, frames) if timed else synth.render(frames)
        spent = time.monotonic_ns() - now
        self.callback_ns[self.rendered % self.callback_ns.size] = spent
        self.rendered += 1
        if spent > self.callback_ns_max:
            self.callback_ns_max = spent
        return block

    def _renderer(self) -> None:
        """Keep ``ahead`` blocks ready, so the audio callback only copies (it needs the GIL
        for microseconds, not for a whole synth block)."""
        make_realtime(8)  # as the JACK clients' threads are, where the system allows it
        ready, wake = self._ready, self._wake
        while not self._stop.is_set():
            # The audio callback waits for the GIL at most one switch interval: keep it at
            # 0.1 ms (measured: 60 s on a 64-frame JACK period, 4 under-runs at 0.5 ms, 1 at
            # 0.1 ms).  Checked here because the engine sets its own value when it starts.
            if sys.getswitchinterval() > GIL_SWITCH_S:
                sys.setswitchinterval(GIL_SWITCH_S)
            while len(ready) < self.ahead and not self._stop.is_set():
                ready.append(self._render_block())
            wake.wait(0.05)
            wake.clear()

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.output_underflow:
            self.underruns += 1
        ready = self._ready
        if ready and frames == self.blocksize:
            outdata[:] = ready.popleft()
        else:
            outdata.fill(0.0)
            self.starved += 1  # the renderer fell behind: a gap of silence
        self.blocks += 1
        self._wake.set()

    def recent_callback_ns(self) -> np.ndarray:
        """Durations of the most recent audio callbacks (ns), for the benchmark."""
        return self.callback_ns[: min(self.rendered, self.callback_ns.size)].copy()

    def describe(self) -> str:
        if self.stream is None:
            return "monitor off"
        return f"monitor {self.device_name} {self.sample_rate} Hz/{self.blocksize}: {self.underruns} under-runs, {self.starved} gaps"


def open_monitor(kind: str = "builtin", spec: Any = None) -> Any:
    """A started monitor observer: ``builtin`` (this module's synth on sounddevice) or
    ``fluidsynth``.  ``spec``: the preset's ``monitor`` section (``soundfont``, ``device``,
    ``gain``, ``blocksize``), a mapping or an object; missing fields take the defaults.
    Raises :class:`MonitorError` with advice when no audio output can be opened."""

    def get(key: str, default: Any) -> Any:
        if spec is None:
            return default
        value = spec.get(key, default) if isinstance(spec, dict) else getattr(spec, key, default)
        return default if value is None else value

    if kind == "fluidsynth":
        from .fluid import FluidSynthMonitor

        return FluidSynthMonitor(soundfont=get("soundfont", None), gain=float(get("gain", 0.6))).start()
    if kind != "builtin":
        raise MonitorError(f"unknown monitor {kind!r}: use builtin or fluidsynth")
    return Monitor(blocksize=int(get("blocksize", MAX_BLOCK)), device=get("device", None), gain=float(get("gain", 0.3))).start()
