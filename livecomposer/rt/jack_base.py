"""What our compiled JACK MIDI clients share: opening, the process callback, ports, clocks.

A :class:`CompiledClient` is one JACK client with one MIDI port whose process callback is
machine code (:func:`numba.cfunc`) taking one argument, the address of an int64 ``state``
array (slot 0 the client, slot 1 the port; the rest is the subclass's).  Subclasses are
:class:`~.jack_midi.JackMidiIn` and :class:`~.jack_midi_out.JackMidiOut`.
"""

from __future__ import annotations

import ctypes
import time

import numpy as np
from numba import carray, cfunc, njit, types

from . import jackclient
from .ring import address_to_voidptr

#: state slots every client has; a subclass's own slots start at FIRST_FREE.  SELF is the
#: state's own address (for libjack calls that write into it), RATE the sample rate;
#: CYCLE_* receive ``jack_get_cycle_times``; UNFILTERED counts cycles placed on the driver's
#: actual wake-up because JACK's filtered clock had strayed from it (see
#: :func:`choose_cycle_start`); XRUNS counts the server's xrun notices.
CLIENT, PORT, GONE, SELF, RATE, CYCLE_FRAMES, CYCLE_USECS, CYCLE_NEXT, CYCLE_PERIOD, UNFILTERED, XRUNS, FIRST_FREE = range(12)
PROCESS_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p)
SHUTDOWN_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
XRUN_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


@cfunc(types.void(types.voidptr), nogil=True, cache=True)
def _on_shutdown(arg):
    """JACK's shutdown notice: mark the state.  Compiled, because a Python callback here
    waited for a lock while libjack's thread held its own, and a reconnecting thread in
    ``jack_client_open`` waited for that: the process hung when jackd was killed."""
    state = carray(arg, FIRST_FREE, np.int64)
    state[GONE] = 1

@cfunc(types.int32(types.voidptr), nogil=True, cache=True)
def _on_xrun(arg):
    """JACK's xrun notice: count it (compiled, for the same reason as the shutdown notice).
    In an xrun a late client's cycle is lost: what it wrote then never reaches the others."""
    state = carray(arg, FIRST_FREE, np.int64)
    state[XRUNS] += 1
    return 0


@njit(cache=True, nogil=True)
def choose_cycle_start(filtered_us, actual_us, nframes, rate):
    """When this cycle's first frame is due, in JACK microseconds: JACK's filtered estimate
    (its delay-locked loop smooths the driver's wake-up jitter, so frames keep their
    spacing), unless it strays from the driver's actual wake-up by more than a quarter
    period.  After a late or skipped wake-up the filter needs a second or more to settle
    (seen here: 600 us off, decaying over a second); placing messages by it then put
    almost every message of a test stream at a cycle's edge (late) and held MIDI clock
    ticks up to 8 periods.  ``(start_us, 1 if the actual wake-up was used else 0)``."""
    tolerance = np.int64(nframes) * np.int64(250_000) // np.int64(rate)
    if abs(np.int64(actual_us) - np.int64(filtered_us)) > tolerance:
        return np.int64(actual_us), 1
    return np.int64(filtered_us), 0


def compile_cycle_reader(lib: ctypes.CDLL):
    """``read_cycle(state, nframes) -> (first_frame, start_us)`` for a process callback: this
    cycle's first frame and the JACK time it is due (:func:`choose_cycle_start`).

    ``jack_get_cycle_times`` is one consistent snapshot of JACK's frame timer; it is read
    before and after ``jack_frames_since_cycle_start`` and the reading is kept only if the
    cycle did not change in between (otherwise the filtered start is used)."""
    v = ctypes.c_void_p
    cycle_times = typed(lib, "jack_get_cycle_times", [v, v, v, v, v], ctypes.c_int)
    since_start = typed(lib, "jack_frames_since_cycle_start", [v], ctypes.c_uint32)
    get_time = typed(lib, "jack_get_time", [], ctypes.c_uint64)

    @njit(nogil=True)
    def read_cycle(state, nframes):
        client = address_to_voidptr(state[CLIENT])
        base = state[SELF]
        state[CYCLE_FRAMES] = 0
        state[CYCLE_PERIOD] = 0
        cycle_times(client, address_to_voidptr(base + 8 * CYCLE_FRAMES), address_to_voidptr(base + 8 * CYCLE_USECS),
                    address_to_voidptr(base + 8 * CYCLE_NEXT), address_to_voidptr(base + 8 * CYCLE_PERIOD))
        first = state[CYCLE_FRAMES] & np.int64(0xFFFFFFFF)
        filtered = state[CYCLE_USECS]
        since = np.int64(since_start(client))
        now = np.int64(get_time())
        state[CYCLE_FRAMES] = 0
        cycle_times(client, address_to_voidptr(base + 8 * CYCLE_FRAMES), address_to_voidptr(base + 8 * CYCLE_USECS),
                    address_to_voidptr(base + 8 * CYCLE_NEXT), address_to_voidptr(base + 8 * CYCLE_PERIOD))
        if (state[CYCLE_FRAMES] & np.int64(0xFFFFFFFF)) != first or state[RATE] <= 0:
            return first, filtered  # the timer moved on while we read: keep its own estimate
        actual = now - since * np.int64(1_000_000) // state[RATE]
        start, unfiltered = choose_cycle_start(filtered, actual, nframes, state[RATE])
        state[UNFILTERED] += unfiltered
        return first, start

    return read_cycle


_zombies: list["CompiledClient"] = []  # clients of a server that died (see close_port)


def libjack_for_callbacks() -> ctypes.CDLL:
    """libjack with the prototypes the clients need; OSError where it cannot serve them."""
    lib = jackclient.libjack()
    if lib is None:
        raise OSError("libjack is not installed")
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        # the callbacks read jack_midi_event_t as three 64-bit words
        raise OSError("livecomposer's JACK MIDI ports need a 64-bit system")
    p, c, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.jack_port_register.argtypes = [p, c, c, ctypes.c_ulong, ctypes.c_ulong]
    lib.jack_port_register.restype = p
    lib.jack_set_process_callback.argtypes = [p, PROCESS_CB, p]
    lib.jack_set_process_callback.restype = i
    # a private function object: the port layer's xrun counter sets its own prototype
    lib.set_xrun_notice = lib["jack_set_xrun_callback"]
    lib.set_xrun_notice.argtypes = [p, XRUN_CB, p]
    lib.set_xrun_notice.restype = i
    lib.jack_deactivate.argtypes = [p]
    lib.jack_deactivate.restype = i
    lib.jack_get_sample_rate.argtypes = [p]
    lib.jack_get_sample_rate.restype = ctypes.c_uint32
    lib.jack_get_time.argtypes = []
    lib.jack_get_time.restype = ctypes.c_uint64
    return lib


def typed(lib: ctypes.CDLL, name: str, argtypes: list, restype):
    """A libjack function with its prototype set (for calls from compiled code)."""
    function = getattr(lib, name)
    function.argtypes, function.restype = argtypes, restype
    return function


def clock_offset_ns(lib: ctypes.CDLL) -> int:
    """``time.monotonic_ns() - jack_get_time() * 1000``, the tightest of a few readings.

    JACK 2 keeps its own microsecond clock (64 ms apart from CLOCK_MONOTONIC here); the
    clients measure the offset again every second in case the two drift.
    """
    best: tuple[int, int] | None = None
    for _ in range(5):
        before = time.monotonic_ns()
        jack_us = lib.jack_get_time()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) // 2 - jack_us * 1000)
    assert best is not None
    return best[1]


class CompiledClient:
    """One JACK client, one MIDI port, a compiled process callback (see the module notes)."""

    #: JackPortIsInput or JackPortIsOutput: the direction of our own port.
    PORT_FLAGS = 0

    def __init__(self, client_name: str, server: str | None, process, state_size: int) -> None:
        lib = libjack_for_callbacks()
        self._lib = lib
        status = ctypes.c_int(0)
        self.server = server or jackclient.current_server()
        flags = jackclient.JACK_NO_START_SERVER | jackclient.JACK_SERVER_NAME
        handle = lib.open_named(client_name.encode(), flags, ctypes.byref(status), self.server.encode())
        if not handle:
            raise OSError(f"JACK server {self.server!r} is not running (jack_client_open status 0x{status.value:x})")
        self._client: int | None = handle
        self.client_name = lib.jack_get_client_name(handle).decode()
        self._port: int | None = None
        self.port_name: str | None = None
        self.state = np.zeros(state_size, dtype=np.int64)
        self.state[CLIENT] = handle
        self.state[SELF] = self.state.ctypes.data
        self.state[RATE] = lib.jack_get_sample_rate(handle)
        self._callback = PROCESS_CB(process.address)  # referenced while JACK may call it
        # After the server dies the client is a zombie: closing it may hang, so it is left.
        self._shutdown_callback = SHUTDOWN_CB(_on_shutdown.address)
        lib.jack_on_shutdown(handle, self._shutdown_callback, ctypes.c_void_p(self.state.ctypes.data))
        self._xrun_callback = XRUN_CB(_on_xrun.address)
        lib.set_xrun_notice(handle, self._xrun_callback, ctypes.c_void_p(self.state.ctypes.data))
        self._offset_ns = clock_offset_ns(lib)
        self._offset_checked = time.monotonic()

    @property
    def unfiltered_cycles(self) -> int:
        """Cycles timed by the driver's actual wake-up because JACK's filtered clock strayed."""
        return int(self.state[UNFILTERED])

    @property
    def xruns(self) -> int:
        """Xruns the server reported while this client was open."""
        return int(self.state[XRUNS])

    @property
    def server_gone(self) -> bool:
        """True once JACK has told us the server shut down."""
        return bool(self.state[GONE])

    def offset_ns(self) -> int:
        """JACK's clock to ours (ns to add to JACK microseconds x 1000), fresh each second."""
        if time.monotonic() - self._offset_checked > 1.0 and self._client is not None:
            self._offset_ns = clock_offset_ns(self._lib)
            self._offset_checked = time.monotonic()
        return self._offset_ns

    def get_ports(self) -> list[str]:
        """Other clients' MIDI ports ours can connect to, full names."""
        if self._client is None:
            return []
        other = jackclient.PORT_IS_OUTPUT if self.PORT_FLAGS == jackclient.PORT_IS_INPUT else jackclient.PORT_IS_INPUT
        array = self._lib.jack_get_ports(self._client, None, jackclient.MIDI_TYPE.encode(), other)
        return jackclient.port_names(self._lib, array)

    def open_virtual_port(self, name: str) -> None:
        """Our port alone, for other clients to connect to."""
        self.register(name)

    def open_port(self, index: int | None, name: str) -> None:
        """:meth:`register` our port ``name`` connected with port ``index`` of
        :meth:`get_ports` (None: no connection)."""
        self.register(name, self.get_ports()[index] if index is not None else None)

    def register(self, name: str, other: str | None = None) -> None:
        """Register our port ``name``, start, and connect it with the port named ``other``
        (None: no connection)."""
        if self._client is None or self._port is not None:
            raise OSError("JACK MIDI port is closed or already open")
        lib = self._lib
        port = lib.jack_port_register(self._client, name.encode(), jackclient.MIDI_TYPE.encode(), self.PORT_FLAGS, 0)
        if not port:
            raise OSError(f"cannot register JACK MIDI port {name!r}")
        self._port = port
        self.state[PORT] = port
        self.port_name = lib.jack_port_name(port).decode()
        if lib.jack_set_process_callback(self._client, self._callback, ctypes.c_void_p(self.state.ctypes.data)) != 0:
            raise OSError("cannot set the JACK process callback")
        if lib.jack_activate(self._client) != 0:
            raise OSError("cannot activate the JACK MIDI client")
        if other is None:
            return
        source, destination = (other, self.port_name) if self.PORT_FLAGS == jackclient.PORT_IS_INPUT else (self.port_name, other)
        rc = lib.jack_connect(self._client, source.encode(), destination.encode())
        if rc not in (0, 17):
            raise OSError(f"cannot connect {source!r} to {destination!r} (error {rc})")

    def close_port(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            if self.server_gone:
                _zombies.append(self)  # never called again, but keep its memory anyway
            else:
                # Deactivating waits for the running cycle to end: after it, JACK never
                # calls the callback again and the ring may be freed.
                self._lib.jack_deactivate(client)
                self._lib.jack_client_close(client)
