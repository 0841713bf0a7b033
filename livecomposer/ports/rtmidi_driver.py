"""The python-rtmidi backend: the ALSA sequencer, CoreMIDI and Windows MM.

Inputs are read from rtmidi's queue, polled every :data:`POLL_INTERVAL_S` and stamped
``time.monotonic_ns()`` when taken.  rtmidi's callback is never used: it runs Python on
the driver's thread, which must then wait for the GIL; with another Python thread busy it
lost up to 7% of a 10,000/s stream and duplicated hundreds of messages.  An output's send
is one ``send_message`` (rtmidi sends at once: it cannot place a message in time).
"""

from __future__ import annotations

import threading
import time
from typing import Iterator, Sequence

from .backends import DEFAULT_CLIENT, api_id, midi_in, midi_out, rtmidi
from .driver import INPUTS, InputDriver, MidiSystem, OutputDriver

#: How often an input's reader looks into rtmidi's queue: the most a message waits there.
POLL_INTERVAL_S = 0.00025


class _RtMidiDriver:
    """What rtmidi inputs and outputs share: one rtmidi client, opened by index."""

    def __init__(self, midi) -> None:
        self._midi = midi
        self._listed: list[str] = []

    def ports(self) -> list[str]:
        self._listed = self._midi.get_ports()
        return list(self._listed)

    def _open(self, name: str, other: str | None) -> None:
        if other is None:
            self._midi.open_virtual_port(name)
        else:
            # rtmidi opens by index: the one of the listing the name was chosen from
            self._midi.open_port(self._listed.index(other), name)

    def close(self) -> None:
        # Dropping the last reference deletes the rtmidi object (and its client); a send
        # in flight on another thread still holds its own reference, so this never frees
        # memory under it.
        try:
            self._midi.close_port()
        except Exception:
            pass

    def release(self) -> None:
        self.close()
        self._midi.delete()


class RtMidiInputDriver(_RtMidiDriver, InputDriver):
    """One input read from rtmidi's queue."""

    def __init__(self, backend: str, client: str) -> None:
        midi = midi_in(backend, client)
        # Keep clock and start/stop (the engine follows MIDI clock); drop sysex and active sensing.
        midi.ignore_types(sysex=True, timing=False, active_sense=True)
        super().__init__(midi)

    def open(self, name: str, other: str | None) -> None:
        self._open(name, other)

    def read(self) -> Iterator[tuple[int, bytes]]:
        """Each message stamped as it is taken from rtmidi's queue."""
        get, now = self._midi.get_message, time.monotonic_ns
        message = get()
        while message is not None:
            yield now(), bytes(message[0])
            message = get()

    def wait(self) -> None:
        time.sleep(POLL_INTERVAL_S)


class RtMidiOutputDriver(_RtMidiDriver, OutputDriver):
    """One output through rtmidi; on ALSA our port's full name is learned by listing."""

    def __init__(self, backend: str, client: str) -> None:
        super().__init__(midi_out(backend, client))
        self.backend = backend
        self.client = client

    def open(self, name: str, other: str | None) -> None:
        before = _alsa_inputs() if self.backend == "alsa" else None
        self._open(name, other)
        if before is not None:
            self.own_name = _new_port(before, self.client, _alsa_inputs())

    def send(self, message: Sequence[int], due_ns: int | None = None) -> None:
        self._midi.send_message(message)

    def delivers(self, message: list[int], timeout: float) -> bool | None:
        """The delivery probe on ALSA, through an rtmidi input with a callback (the probe's
        only: nothing else is running yet); elsewhere our port cannot be listed: None."""
        if self.backend != "alsa" or self.own_name is None:
            return None
        got = threading.Event()

        def callback(arrived, _data) -> None:
            if list(arrived[0]) == message:
                got.set()

        probe = rtmidi.MidiIn(api_id(self.backend), name=f"{DEFAULT_CLIENT}-probe")
        try:
            probe.ignore_types(sysex=False, timing=True, active_sense=True)
            ports = probe.get_ports()
            if self.own_name not in ports:
                return False  # our port is not even there
            probe.set_callback(callback)
            probe.open_port(ports.index(self.own_name), "probe")
            # Twice at most: every connection (a DAW that connected at once, too) receives
            # the probe, and receivers ignore sysex of the non-commercial id 0x7D.
            for _ in range(2):
                self._midi.send_message(message)
                if got.wait(timeout / 2):
                    return True
            return False
        finally:
            probe.close_port()
            probe.delete()


def _alsa_inputs() -> set[str]:
    """All ALSA ports we could read from, to learn our own output port's full name."""
    midi = rtmidi.MidiIn(rtmidi.API_LINUX_ALSA, name=f"{DEFAULT_CLIENT}-list")
    try:
        return set(midi.get_ports())
    finally:
        midi.delete()


def _new_port(before: set[str], hint: str, after: set[str]) -> str | None:
    """The port that appeared between two listings (ours), preferring our client's name."""
    new = sorted(after - before)
    preferred = [p for p in new if p.lower().startswith(hint.lower())]
    return (preferred or new or [None])[0]


class RtMidiSystem(MidiSystem):
    """ALSA, CoreMIDI or Windows MM through python-rtmidi."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    def ports(self, kind: str) -> list[str]:
        lister = (midi_in if kind == INPUTS else midi_out)(self.backend, f"{DEFAULT_CLIENT}-list")
        try:
            return lister.get_ports()
        finally:
            lister.delete()

    def input(self, client: str) -> RtMidiInputDriver:
        return RtMidiInputDriver(self.backend, client)

    def output(self, client: str) -> RtMidiOutputDriver:
        return RtMidiOutputDriver(self.backend, client)
