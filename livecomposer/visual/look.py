"""The stage look: what turns the generator's raw frame into something to project.

Composed in the renderer (not on the page), so the live page, ``--frames``, contact sheets
and the demo video all show the same picture, and tests can check it on plain arrays.
Each part can be switched in the preset (``visual: {look: {...}}``) and from a knob
(``to: visual.trails``) or OSC (``/livecomposer/visual/trails``):

* **palette** ``harmony``: a gradient map from black through the key's colour (middle
  tones) to the chord's (lights).  Pitch classes sit on the circle of fifths around the
  hue wheel, so related keys and chords get related colours: the key's tonic (estimated
  from a slow average of what was played) sets one hue, the root of the triad sounding now
  the other.
  ``neon`` runs the same map on the inverted luminance: clip art's light grounds go
  black and its lines glow in the chord's colour (a dark stage projects best).
* **mirror**: ``horizontal``, ``vertical``, ``quad`` reflections, or ``kaleido4/6/8``
  (N-fold rotation with a reflection in each wedge).
* **pulse**: each onset swells the picture (a short zoom and brightness bump), and so
  does each beat of the session's tempo while the music is busy.
* **trails**: each frame keeps a share of the previous output (motion trails), drifting
  outwards with ``feedback`` (video feedback's tunnel).
* **fade**: to black once nothing has been played for ``fade_after_s`` and no note is
  held, and back within a tenth of a second on the first note.
* **crossfade**: a preset change (or a mirror switch) blends from the last picture over
  ``crossfade_s`` instead of cutting.
* **overlay**: the notes, drawn by :mod:`.overlay` (off by default).

Everything runs on torch tensors (3, H, W) in [0, 1], one thread: about 2 ms a frame at
256x256 with every part on, so the 60 fps budget holds.
"""

from __future__ import annotations

import colorsys
import difflib
import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from . import features as F

MIRRORS = ("none", "horizontal", "vertical", "quad", "kaleido4", "kaleido6", "kaleido8")
PALETTES = ("none", "harmony", "neon")
FIFTHS = [(7 * pc) % 12 for pc in range(12)]  # place of each pitch class on the circle of fifths
KEY_TAU_S = 6.0  # how slowly the key colour follows the playing
KEY_EVERY_S = 0.25  # how often the key is estimated again (it moves slowly)
FADE_IN_S = 0.1
BEAT_PULSE = 0.6  # the beat's swell at full activity, in onset-pulse units
BEAT_DECAY_S = 0.09
LUT_LEVELS = np.linspace(0.0, 1.0, 256)
TRAIL_HALF_LIFE_S = 0.25  # trails 0.5: a quarter of a second; 0.8: one second; 0.95: ~5 s


@dataclass(frozen=True)
class LookConfig:
    trails: float = 0.5  # how long the trails last: half-life 0.25 s * trails / (1 - trails); 0: none
    feedback: float = 0.012  # how much the trails grow outwards each frame (0: they stand still)
    mirror: str = "none"
    palette: str = "harmony"
    tint: float = 0.75  # how strongly the palette recolours (0..1)
    pulse: float = 1.0  # strength of the swell on each onset and beat (0: off)
    fade: bool = True
    fade_after_s: float = 3.0  # silence before the fade starts
    fade_s: float = 2.0  # time to fade out
    crossfade_s: float = 1.0
    overlay: bool = False  # draw the notes (performer's, machine's, machine's planned)
    overlay_s: float = 6.0  # seconds of music the overlay shows (past and planned together)

    def vector(self) -> np.ndarray:
        """The look as numbers, for the mailbox (choices by index, switches as 0/1)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "mirror":
                value = MIRRORS.index(value)
            elif f.name == "palette":
                value = PALETTES.index(value)
            out.append(float(value))
        return np.asarray(out)

    @classmethod
    def from_vector(cls, v: np.ndarray) -> "LookConfig":
        values: dict[str, Any] = {}
        for f, x in zip(fields(cls), v):
            if f.name == "mirror":
                values[f.name] = MIRRORS[int(round(x)) % len(MIRRORS)]
            elif f.name == "palette":
                values[f.name] = PALETTES[int(round(x)) % len(PALETTES)]
            elif f.type in ("bool", bool):
                values[f.name] = bool(x >= 0.5)
            else:
                values[f.name] = float(x)
        return cls(**values)


VECTOR_SIZE = len(fields(LookConfig))
RANGES: dict[str, tuple[float, float]] = {
    "trails": (0.0, 0.95), "feedback": (0.0, 0.05), "tint": (0.0, 1.0), "pulse": (0.0, 3.0),
    "fade_after_s": (0.1, 600.0), "fade_s": (0.05, 60.0), "crossfade_s": (0.0, 10.0), "overlay_s": (1.0, 30.0),
}
CHOICES: dict[str, tuple[str, ...]] = {"mirror": MIRRORS, "palette": PALETTES}
SWITCHES = ("fade", "overlay")
KNOBS = (*RANGES, *CHOICES, *SWITCHES)  # everything can be set live


def parse_look(section: Any) -> LookConfig:
    """Check a ``look:`` mapping; raises ``ValueError("look.key: reason")``."""
    if section is None:
        return LookConfig()
    if not isinstance(section, dict):
        raise ValueError(f"look: must be a mapping like {{trails: 0.6, mirror: kaleido4}}; got {section!r}")
    cfg = LookConfig()
    for key, value in section.items():
        if key not in KNOBS:
            close = difflib.get_close_matches(str(key), KNOBS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(KNOBS)})"
            raise ValueError(f"look.{key}: unknown key{hint}")
        cfg = replace(cfg, **{key: check(key, value)})
    return cfg


def check(key: str, value: Any) -> Any:
    """One look value as written in a preset (``pulse: true`` means 1, ``false`` 0)."""
    if key in CHOICES:
        if value not in CHOICES[key]:
            close = difflib.get_close_matches(str(value), CHOICES[key], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"look.{key}: must be one of {', '.join(CHOICES[key])}; got {value!r}{hint}")
        return value
    if key in SWITCHES:
        if not isinstance(value, bool):
            raise ValueError(f"look.{key}: must be true or false; got {value!r}")
        return value
    if isinstance(value, bool) and key in ("pulse", "trails", "tint"):
        return {"pulse": 1.0, "trails": LookConfig.trails, "tint": LookConfig.tint}[key] if value else 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"look.{key}: must be a number; got {value!r}")
    low, high = RANGES[key]
    if not low <= value <= high:
        raise ValueError(f"look.{key}: must be between {low:g} and {high:g}; got {value}")
    return float(value)


def set_live(cfg: LookConfig, key: str, value: Any) -> LookConfig:
    """A knob or OSC value: a number for a range (clamped), a fraction of the sweep (0..1) or a
    name for a choice, a number (>= 0.5 is on) or a bool for a switch.  Raises ValueError."""
    if key not in KNOBS:
        raise ValueError(f"visual.{key}: not a look parameter (known: {', '.join(KNOBS)})")
    if key in CHOICES:
        options = CHOICES[key]
        if isinstance(value, str):
            return replace(cfg, **{key: check(key, value)})
        index = int(round(min(1.0, max(0.0, float(value))) * (len(options) - 1)))
        return replace(cfg, **{key: options[index]})
    if key in SWITCHES:
        return replace(cfg, **{key: bool(value) if isinstance(value, bool) else float(value) >= 0.5})
    low, high = RANGES[key]
    return replace(cfg, **{key: min(high, max(low, float(value)))})


# -- colour -------------------------------------------------------------------------------------

# chord templates: 12 major then 12 minor triads, as pitch-class masks
_TRIADS = np.array([[1.0 if (pc - root) % 12 in ((0, 4, 7) if minor == 0 else (0, 3, 7)) else 0.0 for pc in range(12)]
                    for minor in (0, 1) for root in range(12)])


def fifths_hue(pc: int) -> float:
    """A pitch class's hue: its place on the circle of fifths around the colour wheel, so
    related keys and chords (a fifth apart) get neighbouring colours."""
    return FIFTHS[pc % 12] / 12.0


def chord_of(pcs: np.ndarray) -> tuple[int, bool, float]:
    """(root, minor, how much of the sounding energy the triad holds 0..1) of the best-fitting
    major or minor triad; the root's own energy breaks ties (C-E-G over A-C-E for C, E, G)."""
    total = float(pcs.sum())
    scores = _TRIADS @ pcs + 0.25 * np.concatenate([pcs, pcs])
    best = int(np.argmax(scores))
    return best % 12, best >= 12, float((_TRIADS[best] @ pcs) / total) if total > 0 else 0.0


def _rgb(hue: float, saturation: float, value: float) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(hue, saturation, value), dtype=np.float32)


# -- geometry -----------------------------------------------------------------------------------

def mirror_grid(mirror: str, size: int) -> np.ndarray | None:
    """Sampling coordinates (size, size, 2) in [-1, 1] (x, y) for ``grid_sample``; None for
    ``none``.  Built for the left/top half and reflected, so the symmetry is exact."""
    if mirror == "none":
        return None
    c = (2 * np.arange(size, dtype=np.float64) + 1) / size - 1
    x, y = np.meshgrid(c, c)
    if mirror in ("horizontal", "quad"):
        x = -np.abs(x)
    if mirror in ("vertical", "quad"):
        y = -np.abs(y)
    if mirror.startswith("kaleido"):
        n = int(mirror.removeprefix("kaleido"))
        wedge = math.pi / n
        r = np.hypot(x, y) * 0.72  # the corners' radius still samples inside the frame
        theta = np.mod(np.arctan2(y, x), 2 * wedge)
        theta = np.where(theta > wedge, 2 * wedge - theta, theta) - math.pi / 2 - wedge / 2  # the wedge looks up
        x, y = r * np.cos(theta), r * np.sin(theta)
    grid = np.stack([x, y], axis=-1).astype(np.float32)
    half = size // 2
    if mirror in ("horizontal", "quad"):
        grid[:, size - half:] = grid[:, :half][:, ::-1]
    if mirror in ("vertical", "quad"):
        grid[size - half:] = grid[:half][::-1]
    return grid


def zoom_grid(size: int, zoom: float, turn: float = 0.0) -> np.ndarray:
    """Coordinates that enlarge the picture by ``zoom`` around its centre, turned by ``turn`` radians."""
    c = (2 * np.arange(size, dtype=np.float64) + 1) / size - 1
    x, y = np.meshgrid(c, c)
    cos, sin = math.cos(turn), math.sin(turn)
    return (np.stack([cos * x - sin * y, sin * x + cos * y], axis=-1) / zoom).astype(np.float32)


class Look:
    """Stateful compositor: ``apply(frame, feats, dt, now)`` once per frame, in order."""

    def __init__(self, cfg: LookConfig, size: int) -> None:
        import torch

        self.torch = torch
        self.size = size
        self.cfg = cfg
        self._grid = self._mirror_tensor(cfg.mirror)
        self._identity = torch.from_numpy(zoom_grid(size, 1.0))[None]
        self._feedback_index: Any = None
        self._lum_weights = torch.tensor([0.299, 0.587, 0.114])
        self._feedback_for = -1.0
        self.key_pcs = np.zeros(12)
        self.key: Any = None  # theory.Key of what was played lately (None: nothing yet)
        self._key_age = KEY_EVERY_S
        self.trail: Any = None  # the previous output
        self.level = 0.0  # fade: 0 black .. 1 full
        self.onsets_seen: float | None = None
        self.last_onset_s: float | None = None
        self.crossfade_from: Any = None
        self.crossfade_left = 0.0
        self.shown: Any = None  # the last output, the crossfade's start

    def _mirror_tensor(self, mirror: str) -> Any:
        grid = mirror_grid(mirror, self.size)
        return None if grid is None else self.torch.from_numpy(grid)[None]

    def configure(self, cfg: LookConfig, crossfade: bool = False) -> None:
        """A new look (knob, OSC or preset); ``crossfade`` blends from the current picture."""
        if cfg.mirror != self.cfg.mirror:
            self._grid = self._mirror_tensor(cfg.mirror)
            crossfade = True
        if crossfade and self.shown is not None and cfg.crossfade_s > 0:
            self.crossfade_from = self.shown.clone()
            self.crossfade_left = 1.0
        self.cfg = cfg

    # -- one frame ----------------------------------------------------------------------------
    def apply(self, x: Any, feats: np.ndarray, dt: float, now_s: float) -> Any:
        """``x``: the generator's frame (3, H, W) in [0, 1]; returns the stage picture, same shape."""
        torch = self.torch
        cfg = self.cfg
        dt = min(max(dt, 0.0), 0.25)
        self._advance(feats, dt, now_s)
        if cfg.palette != "none" and cfg.tint > 0:
            x = self._palette(x, feats)
        pulse = cfg.pulse * min(1.5, max(0.0, float(feats[F.PULSE])) + self._beat(feats, now_s))
        grid = self._grid
        if pulse > 1e-3:
            zoom = 1.0 + 0.045 * pulse
            grid = (grid if grid is not None else self._identity) / zoom
        if grid is not None:
            x = torch.nn.functional.grid_sample(x[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0]
        if pulse > 1e-3:
            x = x * (1.0 + 0.22 * pulse)
        if cfg.trails > 0 and self.trail is not None:
            # bright things leave glowing trails (max), everything a fainter ghost (lerp),
            # so trails show on dark and on light grounds while the new frame stays in front
            keep = 0.5 ** (dt / (TRAIL_HALF_LIFE_S * cfg.trails / (1.0 - cfg.trails)))
            previous = self._drift(self.trail, cfg.feedback) if cfg.feedback > 0 else self.trail
            x = torch.lerp(torch.maximum(x, previous * keep), previous, 0.5 * keep)
        x = x.clamp(0.0, 1.0)
        self.trail = x
        if self.crossfade_from is not None:
            x = torch.lerp(x, self.crossfade_from, self.crossfade_left)
        self.shown = x
        if self.level >= 1.0:
            return x
        return x * (self.level * self.level)  # squared: a smoother fade to the eye than linear

    @staticmethod
    def _beat(feats: np.ndarray, now_s: float) -> float:
        """A short swell on each beat of the session's tempo while the music is busy (the
        onsets' own pulse comes on top); nothing without a tempo or in silence."""
        beat_ns = float(feats[F.BEAT_NS])
        if beat_ns <= 0:
            return 0.0
        since_s = ((now_s * 1e9 - float(feats[F.BEAT_AT])) % beat_ns) / 1e9
        busy = min(1.0, max(0.0, float(feats[F.DENSITY])) / 3.0)
        return BEAT_PULSE * busy * math.exp(-since_s / BEAT_DECAY_S)

    def _drift(self, trail: Any, feedback: float) -> Any:
        """The trail enlarged a little about the centre: each pixel takes its nearest source
        pixel through a precomputed index (a quarter of a bilinear resample's cost; the
        trail is a fading ghost, where nearest sampling does not show)."""
        if feedback != self._feedback_for:
            self._feedback_for = feedback
            grid = zoom_grid(self.size, 1.0 + feedback, 0.12 * feedback)
            pixel = np.clip(np.rint((grid + 1.0) * self.size / 2 - 0.5), 0, self.size - 1).astype(np.int64)
            self._feedback_index = self.torch.from_numpy((pixel[..., 1] * self.size + pixel[..., 0]).ravel())
        return trail.reshape(3, -1).index_select(1, self._feedback_index).reshape(trail.shape)

    def follow(self, feats: np.ndarray, dt: float, now_s: float) -> None:
        """Advance the look's state by one frame without painting it (contact sheets paint a
        few frames of many): key colour, fade and crossfade move on; the trails, which
        need every frame, start afresh at the next painted one."""
        self._advance(feats, min(max(dt, 0.0), 0.25), now_s)
        self.trail = None

    def _advance(self, feats: np.ndarray, dt: float, now_s: float) -> None:
        self._follow_key(feats, dt)
        self._follow_fade(feats, dt, now_s)
        if self.crossfade_from is not None:
            self.crossfade_left -= dt / max(self.cfg.crossfade_s, 1e-3)
            if self.crossfade_left <= 0:
                self.crossfade_from = None

    def _follow_key(self, feats: np.ndarray, dt: float) -> None:
        from ..kernel.theory import estimate_key

        pcs = np.maximum(feats[F.PC], 0.0)
        self.key_pcs += (pcs - self.key_pcs) * min(1.0, dt / KEY_TAU_S)
        self._key_age += dt
        if self._key_age >= KEY_EVERY_S and float(self.key_pcs.sum()) > 1e-4:
            self._key_age = 0.0
            self.key = estimate_key(range(12), self.key_pcs.tolist())

    def _palette(self, x: Any, feats: np.ndarray) -> Any:
        torch = self.torch
        pcs = np.maximum(feats[F.PC], 0.0)
        if self.key is None:
            return x  # nothing played yet: the images' own colours
        # a three-stop gradient map: black shadows (a dark stage projects well), the key's
        # colour in the middle tones (its tonic's hue; minor keys paler), the colour of the
        # chord sounding now in the lights (its root's hue, saturated as far as the notes
        # sounding make that triad)
        minor_key = self.key.scale == "minor"
        middle_rgb = _rgb(fifths_hue(self.key.tonic), 0.65 if minor_key else 0.9, 0.7)
        if float(pcs.sum()) > 0.05:
            root, minor, focus = chord_of(pcs)
            light_rgb = _rgb(fifths_hue(root), (0.3 if minor else 0.45) + 0.4 * focus, 1.0)
        else:  # nothing sounding: the key's tonic, pale
            light_rgb = _rgb(fifths_hue(self.key.tonic), 0.3, 1.0)
        # the map is a function of luminance alone: a 256-entry table, then one lookup per pixel
        levels = LUT_LEVELS[::-1] if self.cfg.palette == "neon" else LUT_LEVELS  # neon: light grounds go dark, lines glow
        level = levels * levels * (3.0 - 2.0 * levels)  # smoothstep: deeper shadows, brighter lights
        low, high = np.minimum(2.0 * level, 1.0), np.maximum(2.0 * level - 1.0, 0.0)
        table = torch.from_numpy((middle_rgb[:, None] * low + (light_rgb - middle_rgb)[:, None] * high).astype(np.float32))
        lum = torch.tensordot(self._lum_weights, x, dims=1).mul_(255.0).add_(0.5).clamp_(0, 255).to(torch.int64)
        mapped = table.index_select(1, lum.view(-1)).view_as(x)
        strength = self.cfg.tint * min(1.0, (float(self.key_pcs.sum()) + float(pcs.sum())) / 0.6)
        return torch.lerp(x, mapped, strength)

    def _follow_fade(self, feats: np.ndarray, dt: float, now_s: float) -> None:
        onsets = float(feats[F.ONSETS])
        if self.onsets_seen is None or onsets > self.onsets_seen:
            if onsets > 0:
                self.last_onset_s = now_s
            self.onsets_seen = onsets
        cfg = self.cfg
        if not cfg.fade:
            self.level = 1.0
            return
        silent = self.last_onset_s is None or (now_s - self.last_onset_s > cfg.fade_after_s and float(feats[F.HELD]) < 0.5)
        if silent:
            self.level = max(0.0, self.level - dt / cfg.fade_s)
        else:
            self.level = min(1.0, self.level + dt / FADE_IN_S)
