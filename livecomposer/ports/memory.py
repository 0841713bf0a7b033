"""In-memory ports for tests, offline renders and benchmarks."""

from __future__ import annotations

from typing import Callable, Sequence

from .base import InputPort, InputSink, OutputPort


class MemoryInput(InputPort):
    """An input that the test (or renderer) feeds by hand with :meth:`feed`."""

    def __init__(self, name: str = "memory-in") -> None:
        self.name = name
        self._sink: InputSink | None = None
        self.closed = False

    def start(self, sink: InputSink) -> None:
        self._sink = sink

    def feed(self, message: Sequence[int], time_ns: int) -> None:
        if self._sink is not None and not self.closed:
            self._sink(time_ns, bytes(message))

    def close(self) -> None:
        self.closed = True


class MemoryOutput(OutputPort):
    """Records every message sent, stamped with ``clock()`` at the moment of sending, and the
    time it was due (``due``, in the same order; None: at once), which a JACK output places
    it by."""

    def __init__(self, clock: Callable[[], int], name: str = "memory-out") -> None:
        self.name = name
        self._clock = clock
        self.sent: list[tuple[int, list[int]]] = []
        self.due: list[int | None] = []
        self.closed = False
        self.fail = False  # set by tests to simulate a port that vanished

    def send(self, message: Sequence[int], due_ns: int | None = None) -> None:
        if self.fail:
            raise OSError(f"output port {self.name!r} is gone")
        self.sent.append((self._clock(), list(message)))
        self.due.append(due_ns)

    def close(self) -> None:
        self.closed = True

    @property
    def alive(self) -> bool:
        return not self.fail
