"""``--monitor``: hear the output through the built-in synth on the sound card (PortAudio).

:class:`Monitor` is an engine observer.  On the engine thread it only appends the sent note
and controller events to a deque (an atomic append: no lock, no wait).  A renderer thread
keeps ``ahead`` blocks rendered in a lock-free ring, placing each event at a fixed latency
after the time it was sent, so notes keep their relative timing inside a block instead of
all landing on the block's first sample.  PortAudio's audio callback is compiled code
(:mod:`livecomposer.rt.audio_out`) that copies a block from the ring: it never waits for
the GIL.  A sounddevice stream's Python callback did, and JACK then reported the monitor's
client late ("was not finished"): 1 to 36 xruns in 60 s runs on a 64-frame period.

Counted for the status screen and the stage benchmark: ``starved`` (callbacks that found
the ring short because the renderer fell behind: a gap of silence) and ``underruns``
(what PortAudio reported; on JACK that is every xrun of the server, whoever caused it).

JACK: PortAudio sees a JACK server only if it was running when PortAudio was initialised,
so :meth:`Monitor.start` re-initialises it (and names our JACK client).  Stop the monitor
before anything stops jackd: PortAudio aborts the process if the server vanishes under it.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import logging
import threading
import time
from typing import Any, Sequence

import numpy as np

from ..rt import priority
from ..kernel.events import NS_PER_S, Event, Kind
from ..rt.audio_out import RingOutputStream
from .synth import Synth

log = logging.getLogger(__name__)

_AUDIBLE = frozenset({Kind.NOTE_ON, Kind.NOTE_OFF, Kind.CONTROL})
MAX_BLOCK = 256
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
    """The very PortAudio library sounddevice loaded (on macOS and Windows its own bundled
    copy), so the devices it initialised and lists are the ones our stream opens."""
    sd = _import_sounddevice()
    return ctypes.CDLL(getattr(sd, "_libname", None) or ctypes.util.find_library("portaudio") or "libportaudio.so.2")


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
        self._final = (0, 0, 0)  # underruns, starved, blocks of the last closed stream
        self.queue: collections.deque[Event] = collections.deque()
        self.stream: RingOutputStream | None = None
        self.device_name = ""
        self.jack_ports: list[str] = []  # our JACK output ports, when on JACK
        self.rendered = 0  # blocks rendered
        self.ahead = ahead
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.events_played = 0
        self.callback_ns_max = 0
        self.callback_ns = np.zeros(8192, dtype=np.int64)  # ring of recent block render times
        self._lock = threading.Lock()  # start/close only

    @property
    def underruns(self) -> int:
        """Under-flows PortAudio reported (on JACK: every server xrun, whoever caused it)."""
        return self.stream.driver_underflows if self.stream is not None else self._final[0]

    @property
    def starved(self) -> int:
        """Callbacks that found too little audio ready (the renderer fell behind)."""
        return self.stream.short if self.stream is not None else self._final[1]

    @property
    def blocks(self) -> int:
        """Audio callbacks so far."""
        return self.stream.calls if self.stream is not None else self._final[2]

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
            try:
                latency = float(sd.query_devices(index)["default_low_output_latency"])
                self.stream = RingOutputStream(_portaudio_lib(), index, rate, 2, self.blocksize, latency)
                silence = np.zeros((self.blocksize, 2), dtype=np.float32)
                for _ in range(self.ahead):  # the first callbacks come before the renderer runs
                    self.stream.write(silence)
                self.stream.start()
                global _open_streams
                _open_streams += 1
            except Exception as exc:
                if self.stream is not None:
                    self.stream.close()
                    self.stream = None
                raise MonitorError(f"cannot open audio output {self.device_name}: {exc}") from None
            self._thread = threading.Thread(target=self._renderer, name="livecomposer-monitor", daemon=True)
            self._thread.start()
            if "JACK" in self.device_name:
                client = jack_client_name()
                if client:
                    self.jack_ports = [f"{client}:out_0", f"{client}:out_1"]
            log.info("monitor: %s, %d Hz, %d-frame blocks", self.device_name, rate, self.blocksize)
            return self

    def close(self) -> None:
        with self._lock:
            stream = self.stream
            self._stop.set()
            if stream is not None:
                stream.close()  # waits for a running callback; wakes the renderer
            if self._thread is not None:
                self._thread.join(1.0)
                self._thread = None
            if stream is not None:
                self._final = (stream.driver_underflows, stream.short, stream.calls)
                self.stream = None
                global _open_streams
                _open_streams -= 1
                # PortAudio keeps a JACK client open until terminated; if jackd stopped
                # under it the process would abort, so let go of JACK entirely.
                shutdown_audio()

    def __enter__(self) -> "Monitor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.stream is not None and self.stream.active

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
        """Keep ``ahead`` blocks in the ring; wake on each audio callback."""
        # Below JACK's client threads (rt.priority): at 8 it preempted them, and JACK
        # reported the monitor's client late hundreds of times a minute.
        priority.make_realtime(priority.AUDIO_RENDER)
        stream = self.stream
        assert stream is not None
        target = self.ahead * self.blocksize
        while not self._stop.is_set():
            while stream.buffered() < target and not self._stop.is_set():
                if not stream.write(self._render_block()):
                    break
            stream.wait(0.05)

    def recent_callback_ns(self) -> np.ndarray:
        """Durations of the most recent audio callbacks (ns), for the benchmark."""
        return self.callback_ns[: min(self.rendered, self.callback_ns.size)].copy()

    def describe(self) -> str:
        if self.stream is None:
            return "monitor off"
        return f"monitor {self.device_name} {self.sample_rate} Hz/{self.blocksize}: {self.underruns} under-runs, {self.starved} gaps"
