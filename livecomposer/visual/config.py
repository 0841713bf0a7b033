"""The preset's ``visual`` section, checked into a frozen :class:`VisualConfig`.

Unknown keys and bad values raise ``ValueError("key: reason")`` (with a close-name
suggestion for typos; ``look.key: reason`` inside the ``look:`` mapping); the presets
loader adds the file and line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .look import LookConfig, parse_look


@dataclass(frozen=True)
class VisualConfig:
    enabled: bool = False
    model: str = "clipart-gan"  # a name in models/ or a path to a .safetensors generator
    fps: int = 60  # frames per second the renderer aims for
    size: int = 256  # frame size in pixels (square); the generator's own size needs no resampling
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (tests)
    frames_dir: str | None = None  # also write every frame as PNG here
    jpeg_quality: int = 85
    # -- mapping strengths (0 switches a part off) ------------------------------------------
    motion: float = 1.0  # how much note density speeds up the latent walk
    pulse: float = 1.0  # how far an onset pushes the image (scaled by its velocity)
    harmony: float = 1.0  # how strongly pitch classes steer the walk's direction
    hidden: float = 0.6  # how much the model's hidden state ("what it is thinking") shows
    calm: float = 0.05  # walk speed in silence (latent units per second)
    accent_velocity: int = 112  # velocity from which an onset is a strong accent: the one allowed jump
    decay_s: float = 2.0  # how fast the picture settles after the playing stops
    seed: int = 0
    look: LookConfig = field(default_factory=LookConfig)  # the stage look (see look.py)

    def with_(self, **changes: Any) -> "VisualConfig":
        return replace(self, **changes)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_RANGES: dict[str, tuple[float, float]] = {
    "fps": (1, 240), "size": (32, 2048), "port": (0, 65535), "jpeg_quality": (10, 100),
    "motion": (0, 10), "pulse": (0, 10), "harmony": (0, 10), "hidden": (0, 10),
    "calm": (0, 5), "accent_velocity": (1, 128), "decay_s": (0.05, 60), "seed": (0, 2**31 - 1),
}


def parse_visual(section: dict | None) -> VisualConfig:
    """Check a ``visual:`` mapping; raises ``ValueError("key: reason")``."""
    if section is None:
        return VisualConfig()
    if not isinstance(section, dict):
        raise ValueError(f"visual: must be a mapping; got {type(section).__name__}")
    defaults = VisualConfig()
    names = [f.name for f in fields(VisualConfig)]
    values: dict[str, Any] = {}
    for key, value in section.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(names)})"
            raise ValueError(f"{key}: unknown key{hint}")
        values[key] = _check(key, value, getattr(defaults, key))
    return VisualConfig(**values)


def _check(key: str, value: Any, default: Any) -> Any:
    if key == "look":
        return parse_look(value)
    if key == "frames_dir":
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key}: must be a directory path; got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key}: must be true or false; got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key}: must be a non-empty string; got {value!r}")
        if key == "host" and value not in ("127.0.0.1", "localhost", "::1") and not _is_address(value):
            raise ValueError(f"{key}: must be an IP address or localhost; got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key}: must be a number; got {value!r}")
    if isinstance(default, int) and float(value) != int(value):
        raise ValueError(f"{key}: must be a whole number; got {value!r}")
    value = type(default)(value)
    low, high = _RANGES[key]
    if not low <= value <= high:
        raise ValueError(f"{key}: must be between {low:g} and {high:g}; got {value}")
    return value


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
