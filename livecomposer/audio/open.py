"""Open the monitor a preset asks for: the built-in synth or FluidSynth.

Its own module because the FluidSynth monitor reports its failures as the built-in
monitor's :class:`~.monitor.MonitorError`: the choice between them sits above both.
"""

from __future__ import annotations

from typing import Any

from .fluid import FluidSynthMonitor
from .monitor import MAX_BLOCK, Monitor, MonitorError


def open_monitor(kind: str = "builtin", spec: Any = None) -> Any:
    """A started monitor observer: ``builtin`` (this module's synth on sounddevice) or
    ``fluidsynth``.  ``spec``: the preset's ``monitor`` section (``soundfont``, ``device``,
    ``gain``, ``blocksize``), a mapping or an object; missing fields take the defaults.
    Raises :class:`MonitorError` with advice when no audio output can be opened."""

    def get(key: str, default: Any) -> Any:
        if spec is None:
            return default
        value = spec.get(key, default) if isinstance(spec, dict) else getattr(spec, key, default)
        return default if value is None else value

    if kind == "fluidsynth":
        return FluidSynthMonitor(soundfont=get("soundfont", None), gain=float(get("gain", 0.6))).start()
    if kind != "builtin":
        raise MonitorError(f"unknown monitor {kind!r}: use builtin or fluidsynth")
    return Monitor(blocksize=int(get("blocksize", MAX_BLOCK)), device=get("device", None), gain=float(get("gain", 0.3))).start()
