"""Port naming rules and backend choice that need no MIDI system."""

from __future__ import annotations

import sys

import pytest

from livecomposer.ports.base import PortError
from livecomposer.ports.backends import resolve_api
from livecomposer.ports.names import find as _find, stable as _stable


@pytest.mark.parametrize(
    "name, stable",
    [
        ("Keystation 49:Keystation 49 MIDI 1 20:0", "Keystation 49:Keystation 49 MIDI 1"),  # ALSA numbers
        ("kbd-01:out", "kbd:out"),  # JACK renamed a client whose old name was still taken
        ("a2j:Keystation [20] (capture): Keystation MIDI 1", "a2j:Keystation [20] (capture): Keystation MIDI 1"),
        ("fluidsynth-midi:midi_00", "fluidsynth-midi:midi_00"),  # a dash that is part of the name
        ("IAC Driver Bus 1", "IAC Driver Bus 1"),
    ],
)
def test_stable_names_drop_only_what_changes_between_plug_ins(name: str, stable: str) -> None:
    assert _stable(name) == stable


def test_a_port_is_found_again_by_exact_then_stable_name() -> None:
    ports = ["Midi Through:Midi Through Port-0 14:0", "Keystation:Keystation MIDI 1 24:0", "kbd:out"]
    assert _find(ports, "Keystation:Keystation MIDI 1 24:0") == 1
    assert _find(ports, "Keystation:Keystation MIDI 1 20:0") == 1  # re-plugged: new ALSA numbers
    assert _find(ports, "kbd-02:out") == 2
    assert _find(ports, "Launchkey:Launchkey MIDI 20:0") is None


def test_unknown_api_is_refused_with_the_choices() -> None:
    with pytest.raises(PortError) as err:
        resolve_api("oss")
    assert "auto, alsa, jack, coremidi, windows" in str(err.value)


def test_a_backend_of_another_platform_says_it_is_not_available() -> None:
    foreign = "windows" if sys.platform != "win32" else "coremidi"
    with pytest.raises(PortError, match="not available"):
        resolve_api(foreign)
