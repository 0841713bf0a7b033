"""A POSIX semaphore a compiled realtime callback can post and a Python thread can wait on.

``sem_post`` is async-signal-safe and never blocks, so it is allowed on JACK's and
PortAudio's realtime threads; the waiting side is a ctypes call, which releases the GIL.
Where unnamed semaphores do not exist (macOS) :meth:`Semaphore.wait` polls every 0.25 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

import numpy as np


class Semaphore:
    """A POSIX semaphore in our own memory: posted from the callback, waited on here."""

    def __init__(self) -> None:
        self.memory = np.zeros(8, dtype=np.int64)  # sem_t is 32 bytes on Linux
        self.address = 0
        try:
            self._libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        except OSError:
            return
        if self._libc.sem_init(ctypes.c_void_p(self.memory.ctypes.data), 0, 0) == 0:
            self.address = self.memory.ctypes.data
        self._timespec = (ctypes.c_long * 2)()

    def wait(self, timeout: float) -> bool:
        """Until posted or ``timeout`` seconds; True if it was posted."""
        if not self.address:
            time.sleep(min(timeout, 0.00025))  # no unnamed semaphores here (macOS): poll
            return False
        deadline = time.time() + timeout
        self._timespec[0] = int(deadline)
        self._timespec[1] = int((deadline % 1.0) * 1e9)
        return self._libc.sem_timedwait(ctypes.c_void_p(self.address), self._timespec) == 0

    def post(self) -> None:
        if self.address:
            self._libc.sem_post(ctypes.c_void_p(self.address))


def sem_post_function():
    """libc's ``sem_post`` with its prototype, for compiled callbacks to call; None where
    there is no libc to load (Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        sem_post = libc.sem_post
    except (OSError, AttributeError):
        return None
    sem_post.argtypes, sem_post.restype = [ctypes.c_void_p], ctypes.c_int
    return sem_post
