"""The JACK backend: our own compiled clients, through the system's libjack.

An input is a :class:`~livecomposer.rt.jack_midi.JackMidiIn`: its compiled process
callback stamps each event with its own frame time and posts a semaphore, which wakes the
input's reader.  rtmidi's JACK input is not used: it swallowed everything after a sysex
that never ends.  An output is a :class:`~livecomposer.rt.jack_midi_out.JackMidiOut`, which
writes each message at its own frame one period after it was due, where rtmidi rounded it
to the next period.

Everything here goes through the system's libjack (the compiled clients; the watch client
of :mod:`livecomposer.rt.jackclient` for listing), never python-rtmidi's: its wheel carries
its own copy of libjack, which cannot reach PipeWire's JACK (``pw-jack`` selects PipeWire's
libjack through LD_LIBRARY_PATH, which only the system's loader follows).  So PipeWire's
JACK works as jackd does.
"""

from __future__ import annotations

import time
from typing import Sequence

from ..rt import jackclient
from ..rt.jack_midi import JackMidiIn, compile_now
from ..rt.jack_midi_out import JackMidiOut
from .backends import DEFAULT_CLIENT
from .base import PortError
from .driver import INPUTS, InputDriver, MidiSystem, OutputDriver
from .watch import watcher

#: An input's reader wakes on the semaphore as events arrive; this bounds a wait when none do.
WAIT_S = 0.05


def _client(kind, client: str, server: str):
    """One of our compiled clients (``kind``: JackMidiIn or JackMidiOut) on ``server``."""
    try:
        return kind(client, server)
    except OSError as exc:
        raise PortError(f"cannot open a jack MIDI client: {exc}") from None


def _close(midi: JackMidiIn | JackMidiOut) -> None:
    try:
        midi.close_port()
    except Exception:
        pass


class _JackPort:
    """What our input and output drivers share: one compiled client, one port of ours."""

    _midi: JackMidiIn | JackMidiOut
    own_name: str | None

    def _describe(self, name: str, other: str | None) -> str:
        """The port an open failure names: ours by default."""
        return f"output {name!r}"

    def ports(self) -> list[str]:
        return self._midi.get_ports()

    def open(self, name: str, other: str | None) -> None:
        try:
            self._midi.register(name, other)
        except OSError as exc:
            raise PortError(f"cannot open JACK MIDI {self._describe(name, other)}: {exc}") from None
        self.own_name = self._midi.port_name

    def close(self) -> None:
        """An output closes once JACK has taken what is still queued (the final note-offs
        and CC 123 of a stop): see ``JackMidiOut.close_port``."""
        _close(self._midi)


class JackInputDriver(_JackPort, InputDriver):
    """One input through our compiled JACK reader."""

    def __init__(self, client: str, server: str) -> None:
        self._midi: JackMidiIn = _client(JackMidiIn, client, server)

    def _describe(self, name: str, other: str | None) -> str:
        return f"input {other!r}"  # the source we connect to is what the player knows

    def read(self) -> list[tuple[int, bytes]]:
        return self._midi.take()

    def wait(self) -> None:
        self._midi.wait(WAIT_S)


class JackOutputDriver(_JackPort, OutputDriver):
    """One output through our compiled JACK writer: each message on its own frame."""

    def __init__(self, client: str, server: str) -> None:
        self._midi: JackMidiOut = _client(JackMidiOut, client, server)
        self.server = server

    def send(self, message: Sequence[int], due_ns: int | None = None) -> None:
        self._midi.send_message(message, due_ns)

    def delivers(self, message: list[int], timeout: float) -> bool | None:
        """The delivery probe through our own input client (the system's libjack, so it
        works under PipeWire's JACK too)."""
        if self.own_name is None:
            return None
        try:
            probe = JackMidiIn(f"{DEFAULT_CLIENT}-probe", self.server)
        except OSError:
            return False
        probe.raw = True  # the probe is a sysex
        try:
            # Under PipeWire another client sees our new port a moment after it was made.
            deadline = time.monotonic() + timeout / 2
            while self.own_name not in (ports := probe.get_ports()) and time.monotonic() < deadline:
                time.sleep(0.005)
            if self.own_name not in ports:
                return False  # our port is not even there
            probe.register("probe", self.own_name)
            wanted = bytes(message)
            # Twice at most: every connection (a DAW that connected at once, too) receives
            # the probe, and receivers ignore sysex of the non-commercial id 0x7D.
            for _ in range(2):
                self._midi.send_message(message)
                deadline = time.monotonic() + timeout / 2
                while time.monotonic() < deadline:
                    probe.wait(0.01)
                    if any(got == wanted for _, got in probe.take()):
                        return True
            return False
        finally:
            probe.close_port()


class JackSystem(MidiSystem):
    """The JACK server this process talks to (``JACK_DEFAULT_SERVER``, else the default)."""

    backend = "jack"

    def __init__(self) -> None:
        self.server = jackclient.current_server()

    def ports(self, kind: str) -> list[str]:
        client = jackclient.watch(self.server, watcher().semaphore)
        if client is None:
            raise PortError("no JACK server is running: start one (Debian package jackd2: `jackd -d dummy &`)")
        return client.ports(flags=jackclient.PORT_IS_OUTPUT if kind == INPUTS else jackclient.PORT_IS_INPUT)

    def input(self, client: str) -> JackInputDriver:
        return JackInputDriver(client, self.server)

    def output(self, client: str) -> JackOutputDriver:
        return JackOutputDriver(client, self.server)

    def prepare_input(self) -> None:
        """Compile the input callback now (about half a second holding the GIL)."""
        compile_now()
