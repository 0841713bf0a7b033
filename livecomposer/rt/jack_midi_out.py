"""A JACK MIDI output that places every message at its own frame: notes leave on time.

rtmidi's JACK output writes every message at frame 0 of the next cycle, so a note's
timing at the receiver is rounded to the period: up to 1.33 ms of jitter at 64 frames,
10.7 ms at 512, and MIDI clock sent through it arrived with 0.5 ms median interval error.
Here :meth:`JackMidiOut.send_message` stamps the message (JACK's microsecond clock) into
a lock-free ring, and the compiled process callback (:func:`_process`, no GIL) writes each
message at the frame exactly one period after it was sent.  The latency is constant (one
period); its jitter is a frame.

A message the callback finds due later than this cycle waits for the next; one that is
stamped far from now (the server's clock restarted) is written at once rather than held.
A cycle's start is JACK's filtered time for its first frame unless that strays from the
driver's actual wake-up (:func:`~.jack_base.choose_cycle_start`).
"""

from __future__ import annotations

import ctypes
import threading
import time
from typing import Sequence

import numpy as np
from numba import carray, cfunc, types

from . import jackclient
from .jack_base import FIRST_FREE, PORT, RATE, CompiledClient, compile_cycle_reader, libjack_for_callbacks, typed
from .ring import HEADER_SIZE, OVERFLOWS, READ, WRITE, address_to_voidptr, check_capacity, new_header, record_drop, record_peek, record_write_from

#: Ring bytes per output: about 27,000 short messages, seconds of the densest playing.
RING_BYTES = 1 << 19
#: The longest message we send (the delivery probe is 9 bytes; notes and CCs are 3).
MAX_MESSAGE = 256
#: The longest a closing port waits for JACK to take what is queued.
DRAIN_TIMEOUT_S = 0.5
#: Farther from now than this many periods, a stamp is not trusted: write it at once.
TRUST_PERIODS = 8

HEADER, DATA, DATA_SIZE, SCRATCH, WRITTEN, LATE, FULL, STATE_SIZE = range(FIRST_FREE, FIRST_FREE + 8)

_compiled = None
_compile_lock = threading.Lock()


def _realtime_functions():
    lib = libjack_for_callbacks()
    v, u32 = ctypes.c_void_p, ctypes.c_uint32
    get_buffer = typed(lib, "jack_port_get_buffer", [v, u32], v)
    clear = typed(lib, "jack_midi_clear_buffer", [v], None)
    write = typed(lib, "jack_midi_event_write", [v, u32, v, ctypes.c_size_t], ctypes.c_int)
    get_time = typed(lib, "jack_get_time", [], ctypes.c_uint64)
    return get_buffer, clear, write, get_time, compile_cycle_reader(lib)


#: ``send(state, payload, size, due_us)``: stamp and append (False: the ring is full).  The
#: stamp is ``due_us`` (JACK microseconds), or now where that is negative.  Called
#: keeping the GIL (PYFUNCTYPE): it takes microseconds, and a release mid-tick let another
#: thread hold the engine up for a switch interval (added latency p99 0.4 -> 1.2 ms).
_SEND = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64)


def _compile():
    """Compile the process callback and the sender once per process (they embed libjack's
    addresses, so they are not cached on disk): ``(process, send)``."""
    global _compiled
    with _compile_lock:
        if _compiled is not None:
            return _compiled
        get_buffer, clear, write, get_time, read_cycle = _realtime_functions()

        @cfunc(types.int32(types.voidptr, types.voidptr, types.int64, types.int64), nogil=True)
        def send(arg, payload, size, due_us):
            # One ctypes call per message: a numba dispatch from Python cost 5 us, p99 56.
            state = carray(arg, STATE_SIZE, np.int64)
            header = carray(address_to_voidptr(state[HEADER]), HEADER_SIZE, np.int64)
            data = carray(address_to_voidptr(state[DATA]), state[DATA_SIZE], np.uint8)
            stamp = due_us if due_us >= 0 else np.int64(get_time())
            return 1 if record_write_from(header, data, stamp, payload, size) else 0

        @cfunc(types.int32(types.uint32, types.voidptr), nogil=True)
        def process(nframes, arg):
            state = carray(arg, STATE_SIZE, np.int64)
            header = carray(address_to_voidptr(state[HEADER]), HEADER_SIZE, np.int64)
            data = carray(address_to_voidptr(state[DATA]), state[DATA_SIZE], np.uint8)
            scratch = carray(address_to_voidptr(state[SCRATCH]), MAX_MESSAGE, np.uint8)
            buffer = get_buffer(address_to_voidptr(state[PORT]), nframes)
            clear(buffer)
            _, start = read_cycle(state, nframes)
            rate = state[RATE]
            n = np.int64(nframes)
            floor = np.int64(0)  # frames must not go backwards within a cycle
            while True:
                stamp, size = record_peek(header, data, scratch)
                if size < 0:
                    break
                # the frame one period after the stamp, relative to this cycle's start
                frame = ((stamp - start) * rate + np.int64(500_000)) // np.int64(1_000_000) + n
                if frame >= n and frame < TRUST_PERIODS * n:
                    break  # due in a later cycle
                if frame < 0 or frame >= n:
                    frame = floor if frame < 0 else n - 1
                    state[LATE] += 1
                if frame < floor:
                    frame = floor
                if write(buffer, np.uint32(frame), scratch.ctypes.data, size) != 0:
                    state[FULL] += 1  # the port buffer is full: the rest waits a cycle
                    break
                floor = frame
                record_drop(header, size)
                state[WRITTEN] += 1
            return 0

        _compiled = (process, send)
        return _compiled


class JackMidiOut(CompiledClient):
    """One JACK client with one MIDI output port and frame-accurate delivery.

    :meth:`send_message` may be called from any thread (a lock keeps the ring
    single-producer).  The JACK port backend (``livecomposer.ports.jack``) drives it for an
    output.
    """

    PORT_FLAGS = jackclient.PORT_IS_OUTPUT

    def __init__(self, client_name: str, server: str | None = None) -> None:
        process, send = _compile()
        super().__init__(client_name, server, process, STATE_SIZE)
        self._send = _SEND(send.address)
        self.header = new_header()
        self.data = np.zeros(check_capacity(RING_BYTES), dtype=np.uint8)
        self._scratch = np.zeros(MAX_MESSAGE, dtype=np.uint8)
        self.state[HEADER] = self.header.ctypes.data
        self.state[DATA] = self.data.ctypes.data
        self.state[DATA_SIZE] = self.data.size
        self.state[SCRATCH] = self._scratch.ctypes.data
        self._lock = threading.Lock()
        self._state_address = ctypes.c_void_p(self.state.ctypes.data)

    def close_port(self) -> None:
        """Close once JACK has taken every queued message (the last note-offs and CC 123 of
        a stop wait a period; at 2048 frames that is 43 ms), or after DRAIN_TIMEOUT_S."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (
            self._port is not None and not self.server_gone and self.header[WRITE] != self.header[READ]
            and time.monotonic() < deadline
        ):
            time.sleep(0.001)
        super().close_port()

    def send_message(self, message: Sequence[int], due_ns: int | None = None) -> None:
        """Queue one complete message; it leaves one JACK period after ``due_ns``
        (``time.monotonic_ns`` base), or one period after now when that is None.

        Stamping a message with the time it was due, not the time the sender got round to
        it, keeps a sender's wake-up lateness (a busy machine, a Python thread waiting for
        the GIL) out of the music: a message sent late still lands on its frame while that
        frame is still to come, else at the start of the next cycle (counted in ``late``).
        A sender that queues ahead (up to 8 periods) gets every message on its frame."""
        payload = bytes(message)
        size = len(payload)
        if not 0 < size <= MAX_MESSAGE:
            raise ValueError(f"MIDI message of {size} bytes: 1..{MAX_MESSAGE} can be sent")
        due_us = -1 if due_ns is None else max(0, (due_ns - self.offset_ns()) // 1000)
        with self._lock:
            if not self._send(self._state_address, payload, size, due_us):
                raise OSError("JACK MIDI output ring is full (the server stopped taking messages)")

    @property
    def written(self) -> int:
        """Messages handed to JACK."""
        return int(self.state[WRITTEN])

    @property
    def late(self) -> int:
        """Messages written at a cycle's edge because their frame had passed (or was unknown)."""
        return int(self.state[LATE])

    @property
    def overflows(self) -> int:
        return int(self.header[OVERFLOWS])
