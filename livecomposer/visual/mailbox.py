"""A latest-value mailbox between processes: shared memory guarded by a seqlock.

The writer (the engine's observer) never waits: it bumps a sequence number to odd, writes
the values, bumps it to even.  The reader (the renderer) copies the values and accepts the
copy only if the sequence number was even and unchanged around it; otherwise it retries a
few times and then keeps its previous copy.  Only the newest value matters, so nothing
queues up and a slow or dead reader costs the writer nothing.

One writer per box.  On x86 (total store order) plain stores suffice; numpy element
writes from Python are separated by enough interpreter work on other CPUs too.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np


class SeqlockBox:
    """``size`` float64 values plus a sequence counter in one shared-memory block."""

    def __init__(self, size: int, name: str | None = None) -> None:
        self.size = size
        nbytes = 8 * (size + 1)
        if name is None:
            self.shm = shared_memory.SharedMemory(create=True, size=nbytes)
            self.owner = True
        else:
            self.shm = shared_memory.SharedMemory(name=name)
            self.owner = False
        self._seq = np.ndarray((1,), dtype=np.uint64, buffer=self.shm.buf, offset=0)
        self._values = np.ndarray((size,), dtype=np.float64, buffer=self.shm.buf, offset=8)
        if self.owner:
            self._seq[0] = 0
            self._values[:] = 0.0
        self._last = np.zeros(size)

    @property
    def name(self) -> str:
        return self.shm.name

    def write(self, values: np.ndarray) -> None:
        """Publish new values; never blocks."""
        seq = self._seq
        seq[0] += 1  # odd: writing
        self._values[: len(values)] = values
        seq[0] += 1  # even: consistent

    def read(self, attempts: int = 8) -> np.ndarray:
        """The newest consistent values (the previous copy if the writer kept interfering)."""
        for _ in range(attempts):
            before = int(self._seq[0])
            if before & 1:
                continue
            copy = self._values.copy()
            if int(self._seq[0]) == before:
                self._last = copy
                return copy
        return self._last.copy()

    @property
    def sequence(self) -> int:
        return int(self._seq[0])

    def close(self) -> None:
        # numpy views must go before the buffer can be released
        self._seq = self._values = None  # type: ignore[assignment]
        try:
            self.shm.close()
        except BufferError:
            pass
        if self.owner:
            try:
                self.shm.unlink()
            except FileNotFoundError:
                pass
