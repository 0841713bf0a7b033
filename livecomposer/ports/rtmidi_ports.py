"""Real MIDI ports through python-rtmidi: ALSA, JACK, CoreMIDI or Windows MM.

Entry points: :func:`open_inputs`, :func:`open_output`, :func:`list_ports`, :func:`resolve_api`,
:class:`InputWatch` (inputs that appear while running).

Timing path: an input's reader thread (realtime priority) hands arriving messages to the
sink, nothing else.  On JACK the messages come from our own client
(:mod:`livecomposer.rt.jack_midi`, a compiled process callback, stamped with each event's
frame time, the reader woken by a semaphore); elsewhere from rtmidi's queue, polled every
0.25 ms and stamped ``time.monotonic_ns()`` when taken.  rtmidi's callback is never used,
because it runs Python on the driver's thread (see ``RtMidiInput._poll``).  An output's
:meth:`RtMidiOutput.send` is one ``send_message`` call; on JACK that is our own client
(:mod:`livecomposer.rt.jack_midi_out`), which writes each message at its own frame one
period after it was sent, where rtmidi rounded it to the next period.

Liveness, off the timing path: the :class:`~.monitor.PortMonitor` thread checks every
open port about twice a second (and at once when the JACK server shuts down, which rtmidi
itself never reports) and clears ``alive``.  It also reconnects by name: an input whose
source port comes back, an output whose destination port comes back, or a virtual output
whose JACK server was restarted, is reopened automatically (and only that makes a port
alive again).  :meth:`RtMidiInput.reconnect_if_needed` does the same synchronously for a
caller that wants to drive it itself (it is cheap while the port is alive, but reopening
creates a client, milliseconds: call it from a housekeeping thread, not the engine tick).
New inputs that appear while running are opened by an :class:`InputWatch` on the same
thread (on JACK at once, woken by the compiled port-registration notice).

On JACK everything goes through the system's libjack (our compiled clients, our ctypes
watch client for listing), never python-rtmidi's bundled copy, so that PipeWire's JACK
(``pw-jack``) works as jackd does.

While an output is not alive, :meth:`RtMidiOutput.send` raises :class:`PortGone` (an
``OSError``), the same signal the in-memory port gives, so the engine can forget the notes
it held there.

Lost-output race (seen with rtmidi's JACK ports: a thru program whose ports were connected
within milliseconds of appearing sent nothing in about one start in three): outputs are
opened before inputs, and a new output
is checked end to end: a private probe input is connected to it and a harmless
non-commercial sysex (``F0 7D ...``) must arrive; if it does not, the output is reopened.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..rt import jackclient
from .backends import DEFAULT_CLIENT, NO_MIDI_SYSTEM, api_id, midi_in, midi_out, resolve_api, rtmidi
from ..rt import priority
from ..rt.jack_midi import JackMidiIn, compile_now
from ..rt.jack_midi_out import JackMidiOut
from .base import InputPort, InputSink, OutputPort, PortError
from .watch import SystemView, monitor

log = logging.getLogger(__name__)

__all__ = [
    "NO_MIDI_SYSTEM", "InputWatch", "PortError", "PortGone", "PortListing", "RtMidiInput", "RtMidiOutput",
    "list_ports", "open_inputs", "open_output", "resolve_api",
]

#: Probe message for the end-to-end output check: sysex with the non-commercial
#: manufacturer id 0x7D, which every receiver that does not know it ignores.
PROBE_PREFIX = (0xF0, 0x7D, 0x6C, 0x63)  # F0 7D 'l' 'c'




class PortGone(OSError):
    """Sending to an output whose port or MIDI server has vanished."""


# --------------------------------------------------------------------------- listing

#: Full names of the ports this process created, so "all inputs" never includes our own
#: output (a feedback loop) or a probe.
_own_ports: set[str] = set()
#: Client names of our open outputs: a hot-plug watch never takes one for a keyboard, even
#: while the output is being reopened (its port name briefly unknown).
_own_clients: set[str] = set()
_own_lock = threading.Lock()


@dataclass
class PortListing:
    backend: str
    inputs: list[str] = field(default_factory=list)  # ports we can receive from
    outputs: list[str] = field(default_factory=list)  # ports we can send to


def list_ports(api: str = "auto") -> PortListing:
    """The MIDI ports that exist now (ours excluded)."""
    backend = resolve_api(api)
    with _own_lock:
        own = set(_own_ports)
    inputs = [p for p in _existing(backend, "inputs") if p not in own]
    outputs = [p for p in _existing(backend, "outputs") if p not in own]
    return PortListing(backend, inputs, outputs)


def _existing(backend: str, kind: str) -> list[str]:
    """The ports that exist now: ``inputs`` (we can receive from) or ``outputs``.

    JACK: through the system's libjack (our watch client), never python-rtmidi's, whose
    wheel carries its own copy of libjack that cannot reach PipeWire's JACK (``pw-jack``
    selects PipeWire's libjack through LD_LIBRARY_PATH, which only the system's loader
    follows).  Elsewhere an rtmidi lister client.
    """
    if backend == "jack":
        client = jackclient.watch(jackclient.current_server(), monitor().semaphore)
        if client is None:
            raise PortError("no JACK server is running: start one (Debian package jackd2: `jackd -d dummy &`)")
        return client.ports(flags=jackclient.PORT_IS_OUTPUT if kind == "inputs" else jackclient.PORT_IS_INPUT)
    lister = (midi_in if kind == "inputs" else midi_out)(backend, f"{DEFAULT_CLIENT}-list")
    try:
        return lister.get_ports()
    finally:
        lister.delete()


def _stable(name: str) -> str:
    """A port name without the parts that change when a device or program comes back.

    ALSA appends ``client:port`` numbers; JACK renames a client ``name-01`` when its old
    name is still taken.
    """
    name = re.sub(r"\s+\d+:\d+$", "", name)
    return re.sub(r"^([^:]*?)-\d\d:", r"\1:", name)


def _find(ports: Sequence[str], name: str) -> int | None:
    """Index of ``name`` in ``ports``: exact first, then ignoring ALSA's numbers."""
    if name in ports:
        return ports.index(name)
    stable = _stable(name)
    for i, candidate in enumerate(ports):
        if _stable(candidate) == stable:
            return i
    return None


def _describe(ports: Iterable[str]) -> str:
    ports = list(ports)
    return ", ".join(repr(p) for p in ports) if ports else "none"


# --------------------------------------------------------------------------- inputs


#: How often an input's poller looks into rtmidi's queue: the most a message waits there.
POLL_INTERVAL_S = 0.00025
#: JACK inputs wake on a semaphore as events arrive; this bounds a wait when none do.
JACK_WAIT_S = 0.05


#: How long after opening a port a missing connection (or, for our virtual port, its not
#: being listed) is not taken for the port's death; see ``_Reopenable._settling``.
CONNECT_GRACE_S = 1.0


class _Reopenable:
    """What inputs and outputs share: reopening a dead port under its name, and forgetting
    our own port's name (so listings never offer it as a source)."""

    def _reopen(self, what: str) -> bool:
        with self._lock:
            if self._closed or self._alive:  # closed, or repaired meanwhile by another thread
                return False
            old, self._midi = self._midi, None
            self._forget_own()
            _close_quietly(old, self.backend)
            try:
                self._midi = self._open()
            except PortError as exc:
                log.debug("reconnect of %s %r failed: %s", what, self.name, exc)
                return False
            self._alive = True
            self.reconnects += 1
        log.warning("MIDI %s %r is back", what, self.name)
        return True

    def _own(self, name: str | None) -> None:
        """Our port's full name: on JACK our client's own (exact, at once: under PipeWire
        another client's listing shows a new port only a moment later), on ALSA the port
        that appeared while we opened it."""
        self.own_name = name
        if name:
            with _own_lock:
                _own_ports.add(name)

    def _forget_own(self) -> None:
        if self.own_name:
            with _own_lock:
                _own_ports.discard(self.own_name)

    def _settling(self) -> bool:
        """Within CONNECT_GRACE_S of (re)opening: PipeWire shows a new port's connections
        to other clients a moment after jack_connect returned, so a missing one is no
        sign of death yet (a port that is gone is, at once)."""
        return time.monotonic() - self._opened_at < CONNECT_GRACE_S


class RtMidiInput(_Reopenable, InputPort):
    """One rtmidi input connected to one source port (found again by name if it returns)."""

    def __init__(self, backend: str, source: str, client: str = f"{DEFAULT_CLIENT}-in") -> None:
        self.name = source
        self.backend = backend
        self.server = jackclient.current_server() if backend == "jack" else ""
        self._client = client
        # The poller hands messages to the sink in this one-slot box, swapped by start();
        # until then messages are dropped and counted.
        self._sink_box: list = [self._before_start]
        self.dropped_before_start = 0
        self._lock = threading.Lock()
        self._alive = True
        self._closed = False
        self.reconnects = 0
        self.own_name: str | None = None  # our own port's full name, where we can learn it
        self._midi = self._open()
        self._poller = threading.Thread(target=self._poll, name=f"midi-in {source}", daemon=True)
        self._poller.start()
        monitor().add(self)

    def _open(self):
        # JACK: our own client, as rtmidi's JACK input swallows everything after a sysex
        # that never ends (see livecomposer.rt.jack_midi).
        midi = _client(self.backend, self._client, self.server, JackMidiIn, midi_in)
        # Keep clock and start/stop (the engine follows MIDI clock); drop sysex and active sensing.
        midi.ignore_types(sysex=True, timing=False, active_sense=True)
        ports = midi.get_ports()
        index = _find(ports, self.name)
        if index is None:
            midi.delete()
            raise PortError(f"MIDI input {self.name!r} is gone; existing inputs: {_describe(ports)}")
        self.name = ports[index]
        midi.open_port(index, "in")
        self._opened_at = time.monotonic()
        if isinstance(midi, JackMidiIn):
            self._own(midi.port_name)
        return midi

    def _poll(self) -> None:
        """Move arriving messages to the sink, and nothing else.

        JACK: our own client's compiled process callback stamps each event with its frame
        time and posts a semaphore; this thread wakes on it and hands the messages over.
        Other backends: messages are taken from rtmidi's queue and stamped as they are
        taken, at most POLL_INTERVAL_S after they arrived.  rtmidi's callback is not used
        because it runs Python on the driver's thread, which must then wait for the GIL;
        with another Python thread busy it lost up to 7% of a 10,000/s stream and
        duplicated hundreds of messages.
        """
        priority.make_realtime(priority.INPUT_READER)
        now = time.monotonic_ns
        sleep = time.sleep
        box = self._sink_box
        lock = self._lock
        while not self._closed:
            with lock:
                midi = self._midi
                if isinstance(midi, JackMidiIn):
                    for stamp, message in midi.take():
                        box[0](stamp, message)
                elif midi is not None:
                    message = midi.get_message()
                    while message is not None:
                        box[0](now(), bytes(message[0]))
                        message = midi.get_message()
            if isinstance(midi, JackMidiIn):
                midi.wait(JACK_WAIT_S)
            else:
                sleep(POLL_INTERVAL_S)

    def _before_start(self, _time_ns: int, _message: bytes) -> None:
        self.dropped_before_start += 1

    def start(self, sink: InputSink) -> None:
        self._sink_box[0] = sink

    @property
    def alive(self) -> bool:
        return self._alive and not self._closed

    def check(self, view: "SystemView") -> None:
        """Update ``alive`` from a fresh look at the system (monitor thread)."""
        if self._closed:
            return
        ok = view.up and _find(view.inputs, self.name) is not None
        if ok and self.backend == "jack" and self.own_name and view.jack is not None and not self._settling():
            ok = self.own_name in view.jack.connections(self.name)
        if self._alive and not ok:
            log.warning("MIDI input %r vanished", self.name)
            # Only a reconnect makes it alive again: a source that returns under the same
            # name is a new port, and nothing connects us to it by itself.
            self._alive = False

    def reconnect_if_needed(self, view: "SystemView | None" = None) -> bool:
        """Reopen the port if it is dead and its source exists again; True if reopened.

        Safe from any thread.  Cheap while alive; reopening takes milliseconds.
        """
        if self._closed:
            return False
        if view is None:
            view = SystemView.take(self.backend, self.server)
            self.check(view)
        if self._alive or not view.up or _find(view.inputs, self.name) is None:
            return False
        return self._reopen("input")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            old, self._midi = self._midi, None
            self._forget_own()
            _close_quietly(old, self.backend)
        monitor().remove(self)


def open_inputs(
    api: str = "auto", names: str | Sequence[str] | None = None, client: str = f"{DEFAULT_CLIENT}-in",
    strict: bool = True,
) -> list[RtMidiInput]:
    """Open inputs whose names contain ``names`` (a substring, a list of them, or None: all).

    Matching ignores case.  Every substring must match at least one port, otherwise
    :class:`PortError` lists the inputs that exist; with ``strict=False`` (a live run whose
    :class:`InputWatch` connects the keyboard when it is switched on) that is only logged.
    Our own ports are never included.
    """
    backend = resolve_api(api)
    with _own_lock:
        own = set(_own_ports)
    available = [p for p in _existing(backend, "inputs") if p not in own and not _is_own_client(p)]
    if names is None:
        chosen = available
    else:
        wanted = [names] if isinstance(names, str) else list(names)
        chosen = []
        for substring in wanted:
            matches = [p for p in available if substring.lower() in p.lower()]
            if not matches:
                message = f"no MIDI input matches {substring!r}; existing inputs: {_describe(available)}"
                if strict:
                    raise PortError(message)
                log.warning("%s; it is connected when it appears", message)
            chosen += [m for m in matches if m not in chosen]
    opened: list[RtMidiInput] = []
    try:
        for source in chosen:
            opened.append(RtMidiInput(backend, source, client))
    except Exception:
        for port in opened:
            port.close()
        raise
    return opened


class InputWatch:
    """Opens inputs that appear while running: a keyboard switched on after the program, a
    program started later.  Runs on the port monitor's thread (off the timing path), right
    after each round's checks: at once on JACK's port-registration notice, else about twice
    a second (the ALSA sequencer has no notice we use: it is polled).

    A port matching ``names`` (None: every input; else any of the substrings, ignoring
    case) that is neither ours nor one we already have (an input that vanished reconnects
    itself when its port returns under the same name) becomes an :class:`RtMidiInput`,
    handed to ``appeared(port)`` from :meth:`start` on.  After :meth:`close` returns, none
    is opened any more.  Make it before the engine starts: on JACK it compiles the input
    callback (half a second holding the GIL) unless an input already did.
    """

    def __init__(
        self, api: str, names: str | Sequence[str] | None, appeared, known: Iterable[RtMidiInput] = (),
        client: str = f"{DEFAULT_CLIENT}-in",
    ) -> None:
        self.backend = resolve_api(api)
        self.server = jackclient.current_server() if self.backend == "jack" else ""
        self._wanted = None if names is None else [n.lower() for n in ([names] if isinstance(names, str) else names)]
        self._appeared = appeared
        self._client = client
        self.ports: list[RtMidiInput] = list(known)
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0
        if self.backend == "jack":
            compile_now()  # here, not when the keyboard appears

    def start(self) -> "InputWatch":
        """Watch from now on (the port monitor's thread scans at once)."""
        monitor().add_watch(self)
        return self

    def wants(self, name: str) -> bool:
        """Whether ``name`` is an input this watch should open (not counting ones it has)."""
        with _own_lock:
            own = name in _own_ports or any(_stable(name).split(":")[0] == client for client in _own_clients)
        if own or _is_own_client(name):
            return False
        return self._wanted is None or any(w in name.lower() for w in self._wanted)

    def scan(self, view: SystemView) -> None:
        """Open the wanted inputs of ``view`` that we do not have (the monitor calls this)."""
        with self._lock:
            if self._closed or not view.up:
                return
            have = {_stable(p.name) for p in self.ports}
            for name in view.inputs:
                if _stable(name) in have or not self.wants(name):
                    continue
                try:
                    port = RtMidiInput(self.backend, name, self._client)
                except PortError as exc:  # gone again already, or the server went away
                    log.debug("new MIDI input %r could not be opened: %s", name, exc)
                    continue
                self.ports.append(port)
                have.add(_stable(port.name))
                self.opened += 1
                log.warning("new MIDI input %r connected", port.name)
                try:
                    self._appeared(port)
                except Exception:
                    log.exception("handing over the new MIDI input %r failed", port.name)

    def close(self) -> None:
        """Stop opening inputs (those opened stay open: their owner closes them)."""
        with self._lock:
            self._closed = True
        monitor().remove_watch(self)


def _is_own_client(port: str) -> bool:
    """JACK: ports of our probe/listing clients (named ``livecomposer-...``) are never inputs."""
    return bool(re.match(rf"{DEFAULT_CLIENT}-(probe|list)(-\d+)?:", port))


# --------------------------------------------------------------------------- output


class RtMidiOutput(_Reopenable, OutputPort):
    """A virtual output port (other programs connect to it) or a connection to an existing port."""

    def __init__(self, backend: str, virtual: str | None, target: str | None, client: str) -> None:
        self.backend = backend
        self.server = jackclient.current_server() if backend == "jack" else ""
        self.virtual = virtual
        self.target = target
        self.name = virtual or target or "?"
        self._client = client
        self._alive = True
        self._closed = False
        self._lock = threading.Lock()
        self.own_name: str | None = None
        self.reconnects = 0
        with _own_lock:
            _own_clients.add(client)
        try:
            self._midi = self._open()
        except BaseException:
            self._forget_client()
            raise
        monitor().add(self)

    def _forget_client(self) -> None:
        with _own_lock:
            _own_clients.discard(self._client)

    def _open(self):
        # JACK: our own client, each message at its own frame one period after send, as
        # rtmidi rounds every message to the next period (see livecomposer.rt.jack_midi_out).
        midi = _client(self.backend, self._client, self.server, JackMidiOut, midi_out)
        before = _list_for_probe(self.backend, self.server) if self.backend == "alsa" else None
        try:
            if self.virtual is not None:
                midi.open_virtual_port(self.virtual)
            else:
                ports = midi.get_ports()
                index = _find(ports, self.target or "")
                if index is None:
                    raise PortError(f"MIDI output {self.target!r} is gone; existing outputs: {_describe(ports)}")
                self.target = ports[index]
                midi.open_port(index, "out")
        except Exception:
            midi.delete()
            raise
        self._opened_at = time.monotonic()
        if isinstance(midi, JackMidiOut):
            self._own(midi.port_name)
        elif before is not None:
            self._own(_new_port(before, self._client, _list_for_probe(self.backend, self.server) or set()))
        return midi

    def send(self, message: Sequence[int], due_ns: int | None = None) -> None:
        midi = self._midi
        if midi is None or not self._alive:
            raise PortGone(f"MIDI output {self.name!r} is gone")
        if due_ns is not None and isinstance(midi, JackMidiOut):
            midi.send_message(message, due_ns)
        else:
            midi.send_message(message)

    @property
    def alive(self) -> bool:
        return self._alive and not self._closed

    def verify(self, attempts: int = 3, timeout: float = 0.5) -> bool:
        """Check end to end that what we send arrives; reopen the port if it does not.

        Works where our port can be listed (ALSA, JACK); elsewhere it returns True.  Call it
        before the engine starts sending (``open_output`` does): it replaces the rtmidi object.
        """
        for attempt in range(attempts):
            result = _probe_delivery(self, timeout)
            if result is None or result:
                return True
            log.warning("MIDI output %r delivered nothing (attempt %d); reopening it", self.name, attempt + 1)
            with self._lock:
                old, self._midi = self._midi, None
                self._forget_own()
                _close_quietly(old, self.backend)
                # Delete the old client now, so the new one gets the same JACK name (a DAW
                # reconnects by name).  Safe here: verify() runs before anyone sends.
                old.delete()
                self._midi = self._open()
                self._alive = True
                self.reconnects += 1
        return False

    def check(self, view: "SystemView") -> None:
        if self._closed:
            return
        jack_own = view.jack is not None and self.own_name is not None and not self._settling()
        if not view.up:
            ok = False
        elif self.virtual is not None:
            ok = view.jack.exists(self.own_name) if jack_own else True
        else:
            ok = _find(view.outputs, self.target or "") is not None
            if ok and jack_own:
                ok = (self.target or "") in view.jack.connections(self.own_name)
        if self._alive and not ok:
            log.warning("MIDI output %r vanished", self.name)
            self._alive = False  # alive again only through a reconnect (see RtMidiInput.check)

    def reconnect_if_needed(self, view: "SystemView | None" = None) -> bool:
        """Reopen a dead output once its server (virtual) or its target port is back."""
        if self._closed:
            return False
        if view is None:
            view = SystemView.take(self.backend, self.server)
            self.check(view)
        if self._alive or not view.up:
            return False
        if self.virtual is None and _find(view.outputs, self.target or "") is None:
            return False
        return self._reopen("output")

    def close(self) -> None:
        """Close; on JACK our client first lets the server take what is still queued (the
        final note-offs and CC 123 of a stop), see ``JackMidiOut.close_port``."""
        with self._lock:
            self._closed = True
            old, self._midi = self._midi, None
            self._forget_own()
            self._forget_client()
            _close_quietly(old, self.backend)
        monitor().remove(self)


def open_output(
    api: str = "auto",
    virtual: str | None = None,
    port: str | None = None,
    client: str | None = None,
    verify: bool = True,
) -> RtMidiOutput:
    """Open a virtual output named ``virtual`` or connect to the existing port containing ``port``.

    Open the output before the inputs (see the module notes).  ``verify`` checks delivery
    end to end and reopens the port if nothing arrives.
    """
    if (virtual is None) == (port is None):
        raise PortError("give exactly one of virtual=NAME or port=SUBSTRING for the MIDI output")
    backend = resolve_api(api)
    target = None
    if virtual is not None:
        if backend == "windows":
            raise PortError(
                "Windows has no virtual MIDI ports: install loopMIDI (or use Windows MIDI Services), "
                "create a port there and use output: {port: NAME}"
            )
    else:
        with _own_lock:
            own = set(_own_ports)
        available = [p for p in _existing(backend, "outputs") if p not in own and not _is_own_client(p)]
        matches = [p for p in available if port.lower() in p.lower()]
        if not matches:
            raise PortError(f"no MIDI output matches {port!r}; existing outputs: {_describe(available)}")
        if len(matches) > 1:
            log.info("output %r matches %s; using %r", port, matches, matches[0])
        target = matches[0]
    out = RtMidiOutput(backend, virtual, target, client or virtual or DEFAULT_CLIENT)
    if verify and not out.verify():
        out.close()
        raise PortError(f"MIDI output {out.name!r} delivered nothing even after reopening it")
    return out


# --------------------------------------------------------------------------- helpers


def _client(backend: str, client: str, server: str, jack_kind, rtmidi_kind):
    """A MIDI client for a port: on JACK one of our compiled clients (``jack_kind``:
    JackMidiIn or JackMidiOut), elsewhere rtmidi's (``rtmidi_kind``: midi_in or midi_out)."""
    if backend != "jack":
        return rtmidi_kind(backend, client)
    try:
        return jack_kind(client, server)
    except OSError as exc:
        raise PortError(f"cannot open a jack MIDI client: {exc}") from None


def _close_quietly(midi, backend: str) -> None:
    if midi is None:
        return
    try:
        if isinstance(midi, rtmidi.MidiIn):
            midi.cancel_callback()
        midi.close_port()
    except Exception:
        pass
    # Dropping the last reference deletes the rtmidi object (and its JACK client); a send
    # in flight on another thread still holds its own reference, so this never frees
    # memory under it.


def _list_for_probe(backend: str, server: str) -> set[str] | None:
    """All MIDI ports we could read from, used to learn our own port's full name on ALSA
    (on JACK our client knows it)."""
    if backend == "alsa":
        midi = rtmidi.MidiIn(rtmidi.API_LINUX_ALSA, name=f"{DEFAULT_CLIENT}-list")
        try:
            return set(midi.get_ports())
        finally:
            midi.delete()
    return None


def _new_port(before: set[str], hint: str, after: set[str]) -> str | None:
    """The port that appeared between two listings (ours), preferring our client's name."""
    new = sorted(after - before)
    preferred = [p for p in new if p.lower().startswith(hint.lower())]
    return (preferred or new or [None])[0]


def _probe_delivery(out: RtMidiOutput, timeout: float) -> bool | None:
    """Send a private sysex through ``out`` to a probe input; None when we cannot probe."""
    if out.own_name is None or out.backend not in ("jack", "alsa"):
        return None
    nonce = [b & 0x7F for b in os.urandom(4)]
    probe_message = list(PROBE_PREFIX) + nonce + [0xF7]
    if out.backend == "jack":
        return _probe_jack(out, probe_message, timeout)
    got = threading.Event()

    def callback(message, _data) -> None:
        if list(message[0]) == probe_message:
            got.set()

    probe = rtmidi.MidiIn(api_id(out.backend), name=f"{DEFAULT_CLIENT}-probe")
    try:
        probe.ignore_types(sysex=False, timing=True, active_sense=True)
        ports = probe.get_ports()
        if out.own_name not in ports:
            return False  # our port is not even there
        probe.set_callback(callback)
        probe.open_port(ports.index(out.own_name), "probe")
        # Twice at most: every connection (a DAW that connected at once, too) receives the
        # probe, and receivers ignore sysex of the non-commercial id 0x7D.
        for _ in range(2):
            out._midi.send_message(probe_message)
            if got.wait(timeout / 2):
                return True
        return False
    finally:
        probe.close_port()
        probe.delete()


def _probe_jack(out: RtMidiOutput, probe_message: list[int], timeout: float) -> bool:
    """The delivery probe on JACK, through our own input client (the system's libjack, so
    it works under PipeWire's JACK too)."""
    try:
        probe = JackMidiIn(f"{DEFAULT_CLIENT}-probe", out.server)
    except OSError:
        return False
    probe.raw = True  # the probe is a sysex
    try:
        # Under PipeWire another client sees our new port a moment after it was made.
        deadline = time.monotonic() + timeout / 2
        while out.own_name not in (ports := probe.get_ports()) and time.monotonic() < deadline:
            time.sleep(0.005)
        if out.own_name not in ports:
            return False  # our port is not even there
        probe.open_port(ports.index(out.own_name), "probe")
        wanted = bytes(probe_message)
        for _ in range(2):  # see the ALSA probe below: twice at most
            out._midi.send_message(probe_message)
            deadline = time.monotonic() + timeout / 2
            while time.monotonic() < deadline:
                probe.wait(0.01)
                if any(message == wanted for _, message in probe.take()):
                    return True
        return False
    finally:
        probe.close_port()
