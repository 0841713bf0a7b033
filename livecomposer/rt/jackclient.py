"""A tiny JACK client through ctypes: watch the server and its ports, off the timing path.

rtmidi hides its JACK client, and when jackd dies under it nothing is raised:
``send_message`` keeps returning while every note goes nowhere.  This module opens one
extra, passive JACK client per process (no process callback, so it never runs in JACK's
realtime cycle) that

* learns at once when the server shuts down (``jack_on_shutdown``) and when any port is
  registered or unregistered (``jack_set_port_registration_callback``: a keyboard plugged
  in, a program started or quit), posting the port watcher's semaphore for both,
* lists ports and checks that a port still exists, and
* connects ports (used to re-attach an input whose source came back, and by tests).

Everything here runs on ordinary threads; nothing is called from MIDI callbacks.  What
libjack itself calls back on its own threads (the shutdown and port-registration notices,
its error and info messages) is compiled code that never waits for the GIL.  When ``libjack`` is missing the
functions report that JACK is unavailable rather than raising.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import logging
import os
import threading
from typing import TYPE_CHECKING

import numpy as np
from numba import carray, cfunc, types

if TYPE_CHECKING:
    from .semaphore import Semaphore

log = logging.getLogger(__name__)

JACK_NO_START_SERVER = 0x01
JACK_USE_EXACT_NAME = 0x02
JACK_SERVER_NAME = 0x04
PORT_IS_INPUT = 0x1
PORT_IS_OUTPUT = 0x2
MIDI_TYPE = "8 bit raw midi"
AUDIO_TYPE = "32 bit float mono audio"

_SHUTDOWN_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_REGISTRATION_CB = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p)
_MESSAGE_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_XRUN_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

_lib: ctypes.CDLL | None = None
_lib_checked = False
_lib_lock = threading.Lock()


def libjack() -> ctypes.CDLL | None:
    """The loaded ``libjack`` (with prototypes set), or None when it is not installed."""
    global _lib, _lib_checked
    with _lib_lock:
        if _lib_checked:
            return _lib
        _lib_checked = True
        for name in ("libjack.so.0", ctypes.util.find_library("jack"), "libjack.dylib", "libjack64.dll", "libjack.dll"):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            _prototypes(lib)
            # libjack prints "Cannot connect to server socket..." on stderr for every failed
            # probe (ours and rtmidi's, which shares the library): silence it.
            lib.jack_set_error_function(_silent)
            lib.jack_set_info_function(_silent)
            _lib = lib
            break
        return _lib


@cfunc(types.void(types.voidptr), nogil=True, cache=True)
def _drop_message(_message):
    """libjack's error and info messages go nowhere.  Not to Python logging: libjack calls
    this from its own threads, holding its own locks, and a Python callback there (needing
    the GIL) deadlocked a process whose JACK server was killed while another thread was
    reopening a client."""


_silent = _MESSAGE_CB(_drop_message.address)


def _prototypes(lib: ctypes.CDLL) -> None:
    p, c, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.jack_client_open.restype = p
    lib.jack_client_open.argtypes = [c, i, ctypes.POINTER(i)]  # variadic tail unused
    # The same variadic function with the server name as its one extra argument
    # (indexing, unlike attribute access, gives a fresh function object).
    open_named = lib["jack_client_open"]
    open_named.restype = p
    open_named.argtypes = [c, i, ctypes.POINTER(i), c]
    lib.open_named = open_named
    lib.jack_client_close.argtypes = [p]
    lib.jack_client_close.restype = i
    lib.jack_activate.argtypes = [p]
    lib.jack_activate.restype = i
    lib.jack_on_shutdown.argtypes = [p, _SHUTDOWN_CB, p]
    lib.jack_on_shutdown.restype = None
    lib.jack_get_ports.argtypes = [p, c, c, ctypes.c_ulong]
    lib.jack_get_ports.restype = ctypes.POINTER(c)
    lib.jack_free.argtypes = [p]
    lib.jack_free.restype = None
    lib.jack_port_by_name.argtypes = [p, c]
    lib.jack_port_by_name.restype = p
    lib.jack_port_by_id.argtypes = [p, ctypes.c_uint32]
    lib.jack_port_by_id.restype = p
    lib.jack_port_name.argtypes = [p]
    lib.jack_port_name.restype = c
    lib.jack_port_get_all_connections.argtypes = [p, p]
    lib.jack_port_get_all_connections.restype = ctypes.POINTER(c)
    lib.jack_connect.argtypes = [p, c, c]
    lib.jack_connect.restype = i
    lib.jack_disconnect.argtypes = [p, c, c]
    lib.jack_disconnect.restype = i
    lib.jack_set_port_registration_callback.argtypes = [p, _REGISTRATION_CB, p]
    lib.jack_set_port_registration_callback.restype = i
    lib.jack_set_xrun_callback.argtypes = [p, _XRUN_CB, p]
    lib.jack_set_xrun_callback.restype = i
    lib.jack_get_client_name.argtypes = [p]
    lib.jack_get_client_name.restype = c
    lib.jack_set_error_function.argtypes = [_MESSAGE_CB]
    lib.jack_set_error_function.restype = None
    lib.jack_set_info_function.argtypes = [_MESSAGE_CB]
    lib.jack_set_info_function.restype = None


def port_names(lib: ctypes.CDLL, array) -> list[str]:
    """Copy a NULL-terminated ``const char **`` from libjack into Python and free it."""
    out: list[str] = []
    if not array:
        return out
    k = 0
    while array[k]:
        out.append(array[k].decode("utf-8", "replace"))
        k += 1
    lib.jack_free(ctypes.cast(array, ctypes.c_void_p))
    return out


#: The watch client's state, an int64 array libjack's notices write: the server shut down,
#: the semaphore to post (its address, 0: none), port (un)registrations seen.
DEAD, WAKE, REGISTRATIONS, STATE_SIZE = range(4)

_notices: tuple | None = None
_notices_lock = threading.Lock()


def _compiled_notices():
    """``(shutdown, registration)``: libjack's notices as compiled callbacks (ctypes
    function pointers) that mark the state and post the semaphore at ``state[WAKE]``.

    Compiled, not Python: libjack calls them on its own thread holding its own locks, and a
    Python callback there (waiting for the GIL or a lock) deadlocked a process whose server
    was killed.  They embed libc's ``sem_post`` address, so they are compiled once per process.
    """
    global _notices
    with _notices_lock:
        if _notices is None:
            from .ring import address_to_voidptr
            from .semaphore import sem_post_function

            sem_post = sem_post_function()
            if sem_post is None:

                @cfunc(types.void(types.voidptr), nogil=True)
                def shutdown(arg):
                    carray(arg, STATE_SIZE, np.int64)[DEAD] = 1

                @cfunc(types.void(types.uint32, types.int32, types.voidptr), nogil=True)
                def registration(_port, _registered, arg):
                    carray(arg, STATE_SIZE, np.int64)[REGISTRATIONS] += 1

            else:

                @cfunc(types.void(types.voidptr), nogil=True)
                def shutdown(arg):
                    state = carray(arg, STATE_SIZE, np.int64)
                    state[DEAD] = 1
                    if state[WAKE] != 0:
                        sem_post(address_to_voidptr(state[WAKE]))

                @cfunc(types.void(types.uint32, types.int32, types.voidptr), nogil=True)
                def registration(_port, _registered, arg):
                    state = carray(arg, STATE_SIZE, np.int64)
                    state[REGISTRATIONS] += 1
                    if state[WAKE] != 0:
                        sem_post(address_to_voidptr(state[WAKE]))

            _notices = (_SHUTDOWN_CB(shutdown.address), _REGISTRATION_CB(registration.address))
        return _notices


class JackClient:
    """A passive JACK client: knows whether the server lives, lists and connects ports.

    ``wake`` (optional, a :class:`~livecomposer.rt.semaphore.Semaphore`) is posted the
    moment the server shuts down and whenever a port is registered or unregistered.
    """

    def __init__(
        self,
        name: str = "lc-watch",
        wake: "Semaphore | None" = None,
        server: str | None = None,
        count_xruns: bool = False,
    ) -> None:
        lib = libjack()
        if lib is None:
            raise OSError("libjack is not installed")
        self._lib = lib
        status = ctypes.c_int(0)
        self.server = server or current_server()
        handle = lib.open_named(name.encode(), JACK_NO_START_SERVER | JACK_SERVER_NAME, ctypes.byref(status), self.server.encode())
        if not handle:
            raise OSError(f"JACK server {self.server!r} is not running (jack_client_open status 0x{status.value:x})")
        self._handle: int | None = handle
        self._lock = threading.Lock()
        self._state = np.zeros(STATE_SIZE, dtype=np.int64)
        self._wake = wake  # referenced while JACK may post it
        self._state[WAKE] = wake.address if wake is not None else 0
        shutdown, registration = _compiled_notices()
        state = ctypes.c_void_p(self._state.ctypes.data)
        lib.jack_on_shutdown(handle, shutdown, state)
        lib.jack_set_port_registration_callback(handle, registration, state)
        # Server-wide xruns, counted from JACK's notification thread (not its process
        # cycle); only for the benchmarks, which ask for it (count_xruns).
        self.xruns = 0
        self._xrun_cb = _XRUN_CB(self._xrun)
        if count_xruns:
            lib.jack_set_xrun_callback(handle, self._xrun_cb, None)
        if lib.jack_activate(handle) != 0:
            lib.jack_client_close(handle)
            self._handle = None
            raise OSError("could not activate the JACK watch client")
        self.name = lib.jack_get_client_name(handle).decode()

    def _xrun(self, _arg) -> int:
        self.xruns += 1
        return 0

    @property
    def _dead(self) -> bool:
        return bool(self._state[DEAD])

    @property
    def registrations(self) -> int:
        """Ports registered or unregistered on the server since this client started."""
        return int(self._state[REGISTRATIONS])

    @property
    def alive(self) -> bool:
        """False once the server has shut down (set by JACK's shutdown notice)."""
        return self._handle is not None and not self._dead

    def ports(self, pattern: str = "", type_pattern: str = MIDI_TYPE, flags: int = 0) -> list[str]:
        """Full port names (``client:port``) matching a regex, a type and flags."""
        with self._lock:
            if not self.alive:
                return []
            array = self._lib.jack_get_ports(self._handle, pattern.encode() or None, type_pattern.encode() or None, flags)
            return port_names(self._lib, array)

    def exists(self, port_name: str) -> bool:
        with self._lock:
            return self.alive and bool(self._lib.jack_port_by_name(self._handle, port_name.encode()))

    def connections(self, port_name: str) -> list[str]:
        with self._lock:
            if not self.alive:
                return []
            port = self._lib.jack_port_by_name(self._handle, port_name.encode())
            if not port:
                return []
            return port_names(self._lib, self._lib.jack_port_get_all_connections(self._handle, port))

    def connect(self, source: str, destination: str) -> bool:
        """Connect two ports; True if connected (or already connected)."""
        with self._lock:
            if not self.alive:
                return False
            rc = self._lib.jack_connect(self._handle, source.encode(), destination.encode())
            return rc == 0 or rc == 17  # EEXIST: already connected

    def disconnect(self, source: str, destination: str) -> bool:
        with self._lock:
            return self.alive and self._lib.jack_disconnect(self._handle, source.encode(), destination.encode()) == 0

    def close(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
            if handle is not None and not self._dead:
                self._lib.jack_client_close(handle)
            # After a server shutdown the handle is a zombie: closing it can hang, leak it.


def current_server() -> str:
    """The server rtmidi (and every JACK client) would use now: ``$JACK_DEFAULT_SERVER``."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def server_running(server: str | None = None) -> bool:
    """True if the JACK server (by default ``$JACK_DEFAULT_SERVER``) answers now."""
    try:
        client = JackClient("lc-probe", server=server)
    except OSError:
        return False
    client.close()
    return True


_watches: dict[str, JackClient] = {}
_watch_lock = threading.Lock()


def watch(server: str | None = None, wake: "Semaphore | None" = None) -> JackClient | None:
    """The process-wide watch client of a server, reopened if the server died and came back.

    None while the server is not running.  ``wake`` is used only when a new client has to
    be opened.
    """
    server = server or current_server()
    with _watch_lock:
        client = _watches.get(server)
        if client is not None and client.alive:
            return client
        if client is not None:
            client.close()
            del _watches[server]
        try:
            client = _watches[server] = JackClient("lc-watch", wake=wake, server=server)
        except OSError:
            return None
        return client


@atexit.register
def close_watches() -> None:
    """Leave the JACK graph cleanly at exit (jackd logs errors for clients that just vanish)."""
    with _watch_lock:
        for client in _watches.values():
            client.close()
        _watches.clear()


def quiet_rtmidi() -> None:
    """Silence the messages of python-rtmidi's own bundled libjack as well.

    Wheels of python-rtmidi carry a private copy of libjack; without this it prints
    "Cannot connect to server socket" and the like to stderr, e.g. under ``livecomposer ports``.
    """
    global _rtmidi_quiet
    if _rtmidi_quiet:
        return
    _rtmidi_quiet = True
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libjack" in line and "/" in line}
    except OSError:
        return
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            lib.jack_set_error_function.argtypes = [_MESSAGE_CB]
            lib.jack_set_info_function.argtypes = [_MESSAGE_CB]
            lib.jack_set_error_function(_silent)
            lib.jack_set_info_function(_silent)
        except (OSError, AttributeError):
            continue


_rtmidi_quiet = False
