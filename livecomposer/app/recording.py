"""Record a performance to a Standard MIDI File that survives a crash.

:class:`Recorder` is an engine observer.  On the engine thread :meth:`Recorder.observe`
only puts the tick's events on a queue; a writer thread encodes them and, four times a
second (a file of a few hundred kB at most: cheap), rewrites the whole file through a temporary file and ``os.replace``.  A reader
therefore always finds either the previous complete file or the new complete file, so
after ``kill -9`` the recording is readable up to the last flush, about
:attr:`Recorder.interval` seconds before the end.  Flushes do not ``fsync`` (under heavy
disk load that stalled the writer for longer than the interval); :meth:`Recorder.close`
does, so a finished recording is on the disk.

The file is SMF format 1: track 0 holds the tempo (and time signature), track 1 what the
performer played (``livecomposer in``), track 2 what we sent (``livecomposer out``).
Encoding is incremental (each event is turned into bytes once), so a flush costs one
write of a file that grows by a few bytes per note: an hour of dense playing is well
under a megabyte.

MIDI clock and start/stop messages are not stored: SMF tracks cannot hold realtime
status bytes.  They are counted in :attr:`Recorder.skipped`.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Sequence

from ..kernel.events import REALTIME_KINDS, Event, Kind, to_bytes

NS_PER_MINUTE = 60_000_000_000


def _vlq(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    value = max(0, value)
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _meta(kind: int, data: bytes) -> bytes:
    return bytes([0xFF, kind]) + _vlq(len(data)) + data


def _chunk(tag: bytes, data: bytes | bytearray) -> bytes:
    return tag + len(data).to_bytes(4, "big") + bytes(data)


_END_OF_TRACK = b"\x00" + _meta(0x2F, b"")


class _Track:
    """One track's encoded events, with the absolute tick of the last one."""

    def __init__(self, name: str) -> None:
        self.data = bytearray(b"\x00" + _meta(0x03, name.encode()))
        self.last_tick = 0

    def add(self, tick: int, message: Sequence[int]) -> None:
        tick = max(tick, self.last_tick)  # stamps from different threads may cross slightly
        self.data += _vlq(tick - self.last_tick)
        self.data += bytes(message)
        self.last_tick = tick


class Recorder:
    """Engine observer writing inputs and outputs to ``path`` as a crash-safe MIDI file.

    ``clock_start_ns`` is tick 0 on the engine's clock; ``bpm`` sets the file's tempo (so a
    DAW shows the preset's bars), ``ppq`` its resolution (960 at 120 bpm: 0.52 ms a tick).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        clock_start_ns: int,
        bpm: float = 120.0,
        ppq: int = 960,
        interval: float = 0.25,
    ) -> None:
        if bpm <= 0:
            raise ValueError(f"bpm must be positive, not {bpm}")
        self.path = Path(path)
        self.start = clock_start_ns
        self.bpm = float(bpm)
        self.ppq = int(ppq)
        self.interval = interval
        self.skipped = 0
        self.events_written = 0
        self._ticks_per_ns = self.bpm * self.ppq / NS_PER_MINUTE
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._inputs = _Track("livecomposer in")
        self._outputs = _Track("livecomposer out")
        self._dirty = True
        self._closed = threading.Event()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()  # an empty but valid file from the start
        self._thread = threading.Thread(target=self._run, name="midi-recorder", daemon=True)
        self._thread.start()

    # -- engine thread ---------------------------------------------------------------
    def observe(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None:
        """Queue this tick's events (engine thread: never blocks, never touches the disk)."""
        if inputs or outputs:
            self._queue.put((tuple(inputs), tuple(outputs)))

    # -- writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed.wait(self.interval):
            self._drain()
            if self._dirty:
                self._write()
        self._drain()
        self._write(sync=True)

    def _drain(self) -> None:
        while True:
            try:
                inputs, outputs = self._queue.get_nowait()
            except queue.Empty:
                return
            for track, events in ((self._inputs, inputs), (self._outputs, outputs)):
                for event in events:
                    self._add(track, event)

    def _add(self, track: _Track, event: Event) -> None:
        if event.kind in REALTIME_KINDS or event.kind is Kind.SONG_POSITION:
            self.skipped += 1
            return
        tick = round((event.time - self.start) * self._ticks_per_ns)
        track.add(tick, to_bytes(event))
        self.events_written += 1
        self._dirty = True

    def _header(self) -> bytes:
        tempo_us = round(60_000_000 / self.bpm)
        tempo = bytearray(b"\x00" + _meta(0x03, b"livecomposer"))
        tempo += b"\x00" + _meta(0x51, tempo_us.to_bytes(3, "big"))
        tempo += b"\x00" + _meta(0x58, bytes([4, 2, 24, 8]))
        tempo += _END_OF_TRACK
        head = _chunk(b"MThd", (1).to_bytes(2, "big") + (3).to_bytes(2, "big") + self.ppq.to_bytes(2, "big"))
        return head + _chunk(b"MTrk", tempo)

    def _write(self, sync: bool = False) -> None:
        data = (
            self._header()
            + _chunk(b"MTrk", self._inputs.data + _END_OF_TRACK)
            + _chunk(b"MTrk", self._outputs.data + _END_OF_TRACK)
        )
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._dirty = False

    # -- shutdown --------------------------------------------------------------------
    def close(self) -> None:
        """Write everything still queued and finish the file (idempotent)."""
        if not self._closed.is_set():
            self._closed.set()
            self._thread.join()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
