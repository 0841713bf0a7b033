"""A JACK MIDI input whose process callback is compiled: every event reaches us intact.

Why not rtmidi's JACK input: its process callback glues an event that starts a system
exclusive message (``F0``) but does not end it (no ``F7``) to every following event until
an ``F7`` arrives, so one truncated sysex on the wire silenced the keyboard.  Here every
JACK event stays one message; a bad one is dropped by the engine's parser and counted.

The process callback (:func:`_process`, machine code from :func:`numba.cfunc`, no GIL)
copies each event with its exact time (JACK's frame time turned into microseconds) into a
lock-free ring (:mod:`.ring`) and posts a semaphore; the reader thread waits on that
semaphore (a ctypes call, which releases the GIL) and drains the ring.  Nothing on JACK's
thread ever waits for Python.

:class:`JackMidiIn` is read with :meth:`JackMidiIn.wait` and :meth:`JackMidiIn.take`; the
JACK port backend (``livecomposer.ports.jack``) drives it for an input.
"""

from __future__ import annotations

import ctypes
import threading
import time

import numpy as np
from numba import carray, cfunc, types

NS_PER_S = 1_000_000_000
from . import jackclient
from .jack_base import FIRST_FREE, PORT, RATE, CompiledClient, compile_cycle_reader, libjack_for_callbacks, typed
from .semaphore import Semaphore, sem_post_function
from .ring import HEADER_SIZE, OVERFLOWS, RECORD_HEADER, address_to_voidptr, check_capacity, new_header, record_write, records_take

#: How far a frame-time stamp may lie before / beyond (after a period) the moment the
#: reader takes the message; outside that it is not trusted (see JackMidiIn.take).  The
#: past bound is wide: a stamp is the event's own frame time, so a reader that was starved
#: for a while (4 ms was too tight for a normal-priority reader on a loaded machine: valid
#: stamps were replaced and bunched) still has the right one.
PLAUSIBLE_PAST_NS = 1_000_000_000
PLAUSIBLE_FUTURE_NS = 1_000_000
#: Bytes of ring per input: at 16 + 3 bytes a note, about 27,000 messages, over two
#: seconds of a 10,000 messages/s flood even if the reader stalls.
RING_BYTES = 1 << 19

# state: the callback's only argument, an int64 array read by the compiled code.
HEADER, DATA, DATA_SIZE, EVENT, SEMAPHORE, CYCLES, EVENTS, NFRAMES, STATE_SIZE = range(FIRST_FREE, FIRST_FREE + 9)


def _realtime_functions():
    """The libjack and libc functions the callback calls, with prototypes numba can type."""
    lib = libjack_for_callbacks()
    v, u32 = ctypes.c_void_p, ctypes.c_uint32
    get_buffer = typed(lib, "jack_port_get_buffer", [v, u32], v)
    event_count = typed(lib, "jack_midi_get_event_count", [v], u32)
    event_get = typed(lib, "jack_midi_event_get", [v, v, u32], ctypes.c_int)
    sem_post = sem_post_function()
    if sem_post is None:
        raise OSError("no libc to load for sem_post")
    return get_buffer, event_count, event_get, compile_cycle_reader(lib), sem_post


_compiled = None
_compile_lock = threading.Lock()


def _process_callback():
    """Compile the process callback once per process (about half a second: it embeds this
    process's libjack addresses, so unlike the ring functions it calls it cannot be cached)."""
    global _compiled
    with _compile_lock:
        if _compiled is not None:
            return _compiled
        get_buffer, event_count, event_get, read_cycle, sem_post = _realtime_functions()

        @cfunc(types.int32(types.uint32, types.voidptr), nogil=True)
        def process(nframes, arg):
            state = carray(arg, STATE_SIZE, np.int64)
            state[CYCLES] += 1
            state[NFRAMES] = nframes
            header = carray(address_to_voidptr(state[HEADER]), HEADER_SIZE, np.int64)
            data = carray(address_to_voidptr(state[DATA]), state[DATA_SIZE], np.uint8)
            buffer = get_buffer(address_to_voidptr(state[PORT]), nframes)
            count = event_count(buffer)
            event = carray(address_to_voidptr(state[EVENT]), 3, np.uint64)
            if count > 0:
                _, start = read_cycle(state, nframes)
            else:
                start = np.int64(0)
            rate = state[RATE]
            for i in range(count):
                if event_get(address_to_voidptr(state[EVENT]), buffer, i) != 0:
                    continue
                offset = np.int64(event[0] & np.uint64(0xFFFFFFFF))
                record_write(header, data, start + offset * np.int64(1_000_000) // rate, event[2], np.int64(event[1]))
                state[EVENTS] += 1
            if count > 0 and state[SEMAPHORE] != 0:
                sem_post(address_to_voidptr(state[SEMAPHORE]))
            return 0

        _compiled = process
        return process


def compile_now() -> None:
    """Compile the process callback now (OSError without libjack), so that an input opened
    later, e.g. for a keyboard plugged in while running, is connected in milliseconds."""
    _process_callback()


class JackMidiIn(CompiledClient):
    """One JACK client with one MIDI input port, read through a compiled process callback.

    ``JackMidiIn(client_name)`` opens the client (raises ``OSError`` if the server is not
    running); :meth:`open_port` registers our port, activates the client and connects the
    source to it.  :meth:`take` returns ``(time_ns, bytes)`` for everything that arrived,
    stamped on ``time.monotonic_ns``'s base with the event's own frame time.
    """

    PORT_FLAGS = jackclient.PORT_IS_INPUT

    def __init__(self, client_name: str, server: str | None = None) -> None:
        super().__init__(client_name, server, _process_callback(), STATE_SIZE)
        self.header = new_header()
        self.data = np.zeros(check_capacity(RING_BYTES), dtype=np.uint8)
        self._out = np.zeros(RING_BYTES, dtype=np.uint8)
        self._event = np.zeros(3, dtype=np.uint64)
        self._semaphore = Semaphore()
        self.state[HEADER] = self.header.ctypes.data
        self.state[DATA] = self.data.ctypes.data
        self.state[DATA_SIZE] = self.data.size
        self.state[EVENT] = self._event.ctypes.data
        self.state[SEMAPHORE] = self._semaphore.address
        self._last_stamp = 0
        self._rate = int(self._lib.jack_get_sample_rate(self._client))
        self.restamped = 0  # frame times found implausible, replaced by the time taken
        # Sysex and active sensing are dropped (clock and start/stop are kept: the engine
        # follows MIDI clock), and counted here.
        self.ignored = 0
        self.raw = False  # True: keep sysex and active sensing too (the delivery probe, tests)

    def close_port(self) -> None:
        super().close_port()
        self._semaphore.post()

    # -- reading -----------------------------------------------------------------------------
    @property
    def overflows(self) -> int:
        """Events the ring had no room for (the reader stalled for seconds)."""
        return int(self.header[OVERFLOWS])

    def wait(self, timeout: float) -> None:
        """Block (without the GIL) until events may have arrived, or ``timeout`` seconds."""
        self._semaphore.wait(timeout)

    def take(self) -> list[tuple[int, bytes]]:
        """Everything that arrived since the last call: ``(time_ns, message)`` in order."""
        n = records_take(self.header, self.data, self._out)
        if n == 0:
            return []
        raw = self._out[:n].tobytes()
        messages: list[tuple[int, bytes]] = []
        offset_ns = self.offset_ns()
        # A cycle's start comes from JACK's clock filter, checked against the driver's
        # actual wake-up (read_cycle); as a last guard, a plausible stamp lies between a
        # second before now (the reader may have been starved) and a period ahead.
        now = time.monotonic_ns()
        period_ns = int(self.state[NFRAMES]) * NS_PER_S // max(1, self._rate)
        earliest, latest = now - PLAUSIBLE_PAST_NS, now + period_ns + PLAUSIBLE_FUTURE_NS
        k = 0
        while k < n:
            time_us = int.from_bytes(raw[k : k + 8], "little")
            size = int.from_bytes(raw[k + 8 : k + 16], "little")
            message = raw[k + RECORD_HEADER : k + RECORD_HEADER + size]
            k += RECORD_HEADER + size
            if not message or (message[0] in (0xF0, 0xFE) and not self.raw):
                self.ignored += 1
                continue
            # Events of one JACK cycle often share a frame (a sender writes them all at
            # frame 0): keep stamps strictly increasing, or a time-ordered scheduler that
            # puts note-offs first at equal times would play a note's off before its on.
            stamp = time_us * 1000 + offset_ns
            if not earliest <= stamp <= latest:
                stamp = now
                self.restamped += 1
            stamp = max(stamp, self._last_stamp + 1)
            self._last_stamp = stamp
            messages.append((stamp, message))
        return messages
