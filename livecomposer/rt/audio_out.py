"""A PortAudio output stream whose callback is compiled: the audio thread never needs the GIL.

sounddevice's streams call a Python function from PortAudio's thread (on JACK, JACK's
realtime thread).  That function must first take the GIL; while the engine or the model
worker holds it the whole JACK cycle waits, and JACK reports an xrun ("client =
livecomposer-monitor was not finished").  Here PortAudio calls :func:`_callback`, machine
code from :func:`numba.cfunc`, which copies frames from a lock-free ring (:mod:`.ring`)
into PortAudio's buffer, counts a shortfall, and posts a semaphore; the writer (a Python
thread) renders ahead and fills the ring.

The stream is opened through the PortAudio library that sounddevice loaded (the same
library instance, so the devices sounddevice lists and initialises are the ones used).
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np
from numba import carray, cfunc, njit, types

from .semaphore import Semaphore, sem_post_function
from .ring import HEADER_SIZE, READ, WRITE, address_to_voidptr, check_capacity, frames_read, frames_write, new_header

PA_FLOAT32 = 0x00000001
PA_CLIP_OFF = 0x00000001
PA_OUTPUT_UNDERFLOW = 0x00000004

# state: the callback's user data, an int64 array read and written by the compiled code.
HEADER, DATA, CAPACITY, CHANNELS, SEMAPHORE, CALLS, SHORT, DRIVER_UNDERFLOWS, LAST_FRAMES, STATE_SIZE = range(10)


class _StreamParameters(ctypes.Structure):
    _fields_ = [
        ("device", ctypes.c_int),
        ("channelCount", ctypes.c_int),
        ("sampleFormat", ctypes.c_ulong),
        ("suggestedLatency", ctypes.c_double),
        ("hostApiSpecificStreamInfo", ctypes.c_void_p),
    ]


class _StreamInfo(ctypes.Structure):
    _fields_ = [
        ("structVersion", ctypes.c_int),
        ("inputLatency", ctypes.c_double),
        ("outputLatency", ctypes.c_double),
        ("sampleRate", ctypes.c_double),
    ]


_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p)
_compiled = None
_compile_lock = threading.Lock()


@njit(cache=True)
def _fill(output, frames, flags, user):
    """The callback's work: copy from the ring, count; returns the semaphore's address."""
    state = carray(user, STATE_SIZE, np.int64)
    channels = state[CHANNELS]
    header = carray(address_to_voidptr(state[HEADER]), HEADER_SIZE, np.int64)
    data = carray(address_to_voidptr(state[DATA]), (state[CAPACITY], channels), np.float32)
    out = carray(output, (frames, channels), np.float32)
    have = frames_read(header, data, out)
    state[CALLS] += 1
    state[LAST_FRAMES] = frames
    if have < frames:
        state[SHORT] += 1
    if flags & PA_OUTPUT_UNDERFLOW:
        state[DRIVER_UNDERFLOWS] += 1
    return state[SEMAPHORE]


def _stream_callback():
    """Compile the PortAudio callback once per process (it embeds this process's address
    of ``sem_post``, so it is not cached on disk)."""
    global _compiled
    with _compile_lock:
        if _compiled is not None:
            return _compiled
        signature = types.int32(types.voidptr, types.voidptr, types.uint64, types.voidptr, types.uint64, types.voidptr)
        sem_post = sem_post_function()
        if sem_post is None:  # no POSIX semaphores (Windows): the writer polls

            @cfunc(signature, nogil=True)
            def callback(_input, output, frames, _time_info, flags, user):
                _fill(output, frames, flags, user)
                return 0  # paContinue

        else:

            @cfunc(signature, nogil=True)
            def callback(_input, output, frames, _time_info, flags, user):
                semaphore = _fill(output, frames, flags, user)
                if semaphore != 0:
                    sem_post(address_to_voidptr(semaphore))
                return 0  # paContinue

        _compiled = callback
        return callback


class RingOutputStream:
    """``RingOutputStream(portaudio, device, rate, channels, blocksize, latency, capacity)``.

    ``portaudio``: the ctypes handle of the (initialised) PortAudio library.  Write frames
    with :meth:`write` (False when the ring has no room), wait for the callback with
    :meth:`wait`.  Counters: :attr:`calls`, :attr:`short` (callbacks that found too few
    frames: the writer fell behind, a gap of silence), :attr:`driver_underflows` (what
    PortAudio reported: on JACK every xrun of the server, whoever caused it).
    """

    def __init__(self, portaudio: ctypes.CDLL, device: int, rate: int, channels: int, blocksize: int, latency: float, capacity: int = 4096) -> None:
        self._pa = portaudio
        self._callback_code = _stream_callback()
        self.rate, self.channels, self.blocksize = rate, channels, blocksize
        self.header = new_header()
        self.data = np.zeros((check_capacity(capacity), channels), dtype=np.float32)
        self._semaphore = Semaphore()
        self.state = np.zeros(STATE_SIZE, dtype=np.int64)
        self.state[HEADER] = self.header.ctypes.data
        self.state[DATA] = self.data.ctypes.data
        self.state[CAPACITY] = capacity
        self.state[CHANNELS] = channels
        self.state[SEMAPHORE] = self._semaphore.address
        self._callback = _CALLBACK_TYPE(self._callback_code.address)
        params = _StreamParameters(device, channels, PA_FLOAT32, latency, None)
        stream = ctypes.c_void_p()
        pa = self._pa
        pa.Pa_OpenStream.argtypes = [
            ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.POINTER(_StreamParameters), ctypes.c_double,
            ctypes.c_ulong, ctypes.c_ulong, _CALLBACK_TYPE, ctypes.c_void_p,
        ]
        pa.Pa_GetErrorText.restype = ctypes.c_char_p
        pa.Pa_GetStreamInfo.restype = ctypes.POINTER(_StreamInfo)
        pa.Pa_GetStreamInfo.argtypes = [ctypes.c_void_p]
        for name in ("Pa_StartStream", "Pa_StopStream", "Pa_CloseStream", "Pa_IsStreamActive"):
            getattr(pa, name).argtypes = [ctypes.c_void_p]
        err = pa.Pa_OpenStream(
            ctypes.byref(stream), None, ctypes.byref(params), float(rate), blocksize, PA_CLIP_OFF,
            self._callback, ctypes.c_void_p(self.state.ctypes.data),
        )
        if err != 0:
            raise OSError(f"Pa_OpenStream: {pa.Pa_GetErrorText(err).decode()}")
        self._stream: int | None = stream.value
        info = pa.Pa_GetStreamInfo(self._stream)
        self.output_latency = info.contents.outputLatency if info else latency

    def start(self) -> None:
        err = self._pa.Pa_StartStream(self._stream)
        if err != 0:
            raise OSError(f"Pa_StartStream: {self._pa.Pa_GetErrorText(err).decode()}")

    @property
    def active(self) -> bool:
        return self._stream is not None and self._pa.Pa_IsStreamActive(self._stream) == 1

    def close(self) -> None:
        """Stop (PortAudio waits for the running callback) and close; idempotent."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                self._pa.Pa_StopStream(stream)
            finally:
                self._pa.Pa_CloseStream(stream)
        self._semaphore.post()

    # -- writer side -------------------------------------------------------------------------
    def buffered(self) -> int:
        """Frames written and not yet played."""
        return int(self.header[WRITE] - self.header[READ])

    def write(self, block: np.ndarray) -> bool:
        """Append a (frames x channels) float32 block if it fits whole."""
        return bool(frames_write(self.header, self.data, block))

    def wait(self, timeout: float) -> None:
        """Block without the GIL until the next callback (or ``timeout`` seconds)."""
        self._semaphore.wait(timeout)

    @property
    def calls(self) -> int:
        return int(self.state[CALLS])

    @property
    def short(self) -> int:
        return int(self.state[SHORT])

    @property
    def driver_underflows(self) -> int:
        return int(self.state[DRIVER_UNDERFLOWS])
