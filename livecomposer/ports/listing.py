"""Which MIDI system a port runs on, and the ports that exist now (ours left out)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .backends import resolve_api
from .driver import INPUTS, OUTPUTS, MidiSystem
from .names import OWN, is_own_client


def system(backend: str) -> MidiSystem:
    """The driver system of a resolved ``backend`` (:func:`~.backends.resolve_api`): JACK
    through our compiled clients, anything else through python-rtmidi."""
    if backend == "jack":
        from .jack import JackSystem

        return JackSystem()
    from .rtmidi_driver import RtMidiSystem

    return RtMidiSystem(backend)


@dataclass
class PortListing:
    backend: str
    inputs: list[str] = field(default_factory=list)  # ports we can receive from
    outputs: list[str] = field(default_factory=list)  # ports we can send to


def list_ports(api: str = "auto") -> PortListing:
    """The MIDI ports that exist now (ours excluded)."""
    midi = system(resolve_api(api))
    own = OWN.ports()
    inputs = [p for p in midi.ports(INPUTS) if p not in own]
    outputs = [p for p in midi.ports(OUTPUTS) if p not in own]
    return PortListing(midi.backend, inputs, outputs)


def available(midi: MidiSystem, kind: str) -> list[str]:
    """The ports of ``kind`` a port of ours may be opened on: neither ours nor our probe's
    or lister's."""
    own = OWN.ports()
    return [p for p in midi.ports(kind) if p not in own and not is_own_client(p)]
