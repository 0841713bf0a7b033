"""Which MIDI system to use, and opening rtmidi clients on it.

``auto`` picks the system's own MIDI (CoreMIDI, Windows MM, the ALSA sequencer) and, on
Linux without ``/dev/snd/seq`` (containers, machines without a sound card), JACK when a
server runs.  Every failure is a :class:`PortError` whose one line says what to do.
"""

from __future__ import annotations

import os
import sys

from ..rt import jackclient
from .base import MIDI_APIS, PortError

try:  # python-rtmidi is a hard dependency, but `livecomposer ports` should still explain itself.
    import rtmidi
except ImportError:  # pragma: no cover - exercised only on broken installs
    rtmidi = None  # type: ignore[assignment]
else:
    jackclient.quiet_rtmidi()

DEFAULT_CLIENT = "livecomposer"

_API_IDS = {
    "alsa": "API_LINUX_ALSA",
    "jack": "API_UNIX_JACK",
    "coremidi": "API_MACOSX_CORE",
    "windows": "API_WINDOWS_MM",
}

NO_MIDI_SYSTEM = (
    "no MIDI system found: the ALSA sequencer (/dev/snd/seq) is missing and no JACK server is running; "
    "start JACK (Debian package jackd2: `jackd -d dummy &`) or load the ALSA sequencer (`modprobe snd-seq`)"
)


def _compiled() -> set[str]:
    if rtmidi is None:
        return set()
    ids = set(rtmidi.get_compiled_api())
    return {name for name, attr in _API_IDS.items() if getattr(rtmidi, attr) in ids}


def _alsa_available() -> bool:
    return os.path.exists("/dev/snd/seq")


def _jack_available() -> bool:
    if jackclient.libjack() is not None:
        return jackclient.server_running()
    try:  # no system libjack: ask rtmidi (it raises rtmidi.SystemError without a server)
        probe = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="lc-probe")
    except Exception:
        return False
    probe.delete()
    return True


def resolve_api(api: str = "auto") -> str:
    """The concrete backend for ``api``; :class:`PortError` with a one-line fix if unusable.

    ``auto`` picks the system's own MIDI (CoreMIDI, Windows MM, the ALSA sequencer) and, on
    Linux without ``/dev/snd/seq`` (containers, machines without a sound card), JACK when a
    server runs.
    """
    if rtmidi is None:
        raise PortError("python-rtmidi is not installed: pip install python-rtmidi")
    api = (api or "auto").lower()
    if api not in MIDI_APIS:
        raise PortError(f"unknown MIDI API {api!r}; choose one of {', '.join(MIDI_APIS)}")
    compiled = _compiled()
    if api == "auto":
        if sys.platform == "darwin" and "coremidi" in compiled:
            return "coremidi"
        if sys.platform.startswith("win") and "windows" in compiled:
            return "windows"
        if "alsa" in compiled and _alsa_available():
            return "alsa"
        if "jack" in compiled and _jack_available():
            return "jack"
        raise PortError(NO_MIDI_SYSTEM)
    if api not in compiled:
        raise PortError(
            f"MIDI API {api!r} is not available in this python-rtmidi build on {sys.platform} "
            f"(available: {', '.join(sorted(compiled)) or 'none'})"
        )
    if api == "alsa" and not _alsa_available():
        raise PortError("the ALSA sequencer is not available (/dev/snd/seq is missing): `modprobe snd-seq`, or use --api jack")
    if api == "jack" and not _jack_available():
        raise PortError("no JACK server is running: start one (Debian package jackd2: `jackd -d dummy &`)")
    return api


def api_id(backend: str) -> int:
    return getattr(rtmidi, _API_IDS[backend])


#: rtmidi's own input queue (messages waiting for our poller); the default 1024 is
#: under 0.1 s of a 10,000 messages/s flood.
INPUT_QUEUE_SIZE = 65536


def midi_in(backend: str, client: str):
    try:
        return rtmidi.MidiIn(api_id(backend), name=client, queue_size_limit=INPUT_QUEUE_SIZE)
    except rtmidi.SystemError as exc:  # server vanished between resolve and open
        raise PortError(f"cannot open a {backend} MIDI client: {exc}") from None


def midi_out(backend: str, client: str):
    try:
        return rtmidi.MidiOut(api_id(backend), name=client)
    except rtmidi.SystemError as exc:
        raise PortError(f"cannot open a {backend} MIDI client: {exc}") from None
