"""Music -> latent: where in the GAN's latent space the next frame is painted.

The latent point walks on the sphere of radius sqrt(z_dim) (where the generator's
training noise lives, so every frame stays a plausible image):

* **motion**: the walk's speed follows the note density; silence slows it to ``calm``.
* **harmony**: the 12 pitch classes own 12 directions, laid out on the circle of fifths
  (related keys point to nearby directions); their energies steer the walk's heading back
  once it strays further than ``TETHER_FREE`` from where the harmony points.  A tether,
  not an attractor: steering always towards the harmony parked the picture on one image
  for as long as a tune stayed in its key (about three distinct pictures over a chorale),
  where within the tether's reach it keeps roaming and a change of key pulls it to
  another region.
* **pulse**: each onset pushes the point outwards along the harmony's direction, scaled by
  velocity, with a short attack and a smooth release: a swell, not a cut.
* **hidden**: the model's hidden state, projected, adds a slowly gliding offset, stronger
  while the machine is playing.
* **register**: low or high playing leans the picture to one side or the other of an axis.
* **accents**: only a strong accent (velocity >= ``accent_velocity``) jumps to a new place.
* **loudness**: lifts the brightness a little (applied to the frame, not the latent).

Everything is smoothed against the frame time step, so any frame rate gives the same
motion, and it is deterministic given the seed and the feature stream.
"""

from __future__ import annotations

import math

import numpy as np

from . import features as F
from .config import VisualConfig

FIFTHS = [(7 * pc) % 12 for pc in range(12)]  # position of each pitch class on the circle of fifths
TETHER_FREE = math.radians(55)  # the walk roams freely this far from the harmony's direction...
TETHER_FULL = math.radians(75)  # ...and is steered back with full strength from this far


class LatentMapper:
    def __init__(self, cfg: VisualConfig, z_dim: int) -> None:
        self.cfg = cfg
        self.z_dim = z_dim
        self.radius = math.sqrt(z_dim)
        self.rng = np.random.default_rng(cfg.seed)
        self.u = self._unit(self.rng.standard_normal(z_dim))
        self.heading = self._tangent(self._unit(self.rng.standard_normal(z_dim)))
        self.wander = self._tangent(self._unit(self.rng.standard_normal(z_dim)))
        a, b = (self._unit(self.rng.standard_normal(z_dim)) for _ in range(2))
        self.harmony_dirs = np.stack([
            self._unit(math.cos(2 * math.pi * FIFTHS[pc] / 12) * a + math.sin(2 * math.pi * FIFTHS[pc] / 12) * b
                       + 0.7 * self._unit(self.rng.standard_normal(z_dim)))
            for pc in range(12)
        ])
        self.hidden_dirs = self.rng.standard_normal((F.HIDDEN_DIMS, z_dim)) / math.sqrt(F.HIDDEN_DIMS)
        self.pulse_dir = self._unit(self.rng.standard_normal(z_dim))
        self.register_dir = self._unit(self.rng.standard_normal(z_dim))
        self.register_offset = 0.0
        self.pulse_env = 0.0
        self.hidden_offset = np.zeros(z_dim)
        self.brightness = 0.8
        self.accents_seen: float | None = None
        self.speed = cfg.calm

    # -- geometry ----------------------------------------------------------------------------
    @staticmethod
    def _unit(v: np.ndarray) -> np.ndarray:
        n = float(np.linalg.norm(v))
        return v / n if n > 1e-12 else v

    def _tangent(self, v: np.ndarray) -> np.ndarray:
        return v - float(v @ self.u) * self.u

    # -- one frame ---------------------------------------------------------------------------
    def step(self, feats: np.ndarray, dt: float) -> np.ndarray:
        """Advance by ``dt`` seconds with the (already faded) features; returns z (float32)."""
        cfg = self.cfg
        dt = min(max(dt, 0.0), 0.25)
        pcs = np.maximum(feats[F.PC], 0.0)
        total = float(pcs.sum())
        # heading: a slow random wander, pulled towards the harmony's direction
        self.wander = self._unit(self._tangent(self.wander + math.sqrt(dt) * 0.8 * self.rng.standard_normal(self.z_dim) / math.sqrt(self.z_dim) * 4))
        desired = self.wander
        harmony_vec = None
        if total > 1e-6 and cfg.harmony > 0:
            harmony_vec = self._unit((pcs / total) @ self.harmony_dirs)
            strayed = math.acos(min(1.0, max(-1.0, float(self.u @ harmony_vec))))
            reach = min(1.0, max(0.0, (strayed - TETHER_FREE) / (TETHER_FULL - TETHER_FREE)))
            weight = cfg.harmony * 1.2 * min(1.0, total / 1.5) * reach * reach * (3.0 - 2.0 * reach)
            desired = self._unit(desired + weight * self._unit(self._tangent(harmony_vec)))
        self.heading = self._unit(self._tangent(self.heading + (desired - self.heading) * min(1.0, dt / 0.4)))
        # speed follows density (onsets per second), smoothly
        target_speed = cfg.calm + cfg.motion * 0.9 * math.tanh(max(feats[F.DENSITY], 0.0) / 5.0)
        self.speed += (target_speed - self.speed) * min(1.0, dt / 0.3)
        angle = self.speed * dt
        u, h = self.u, self.heading
        self.u = self._unit(math.cos(angle) * u + math.sin(angle) * h)
        self.heading = self._unit(-math.sin(angle) * u + math.cos(angle) * h)
        # the one allowed jump: a strong accent
        accents = float(feats[F.ACCENTS])
        if self.accents_seen is None:
            self.accents_seen = accents
        elif accents > self.accents_seen:
            self.accents_seen = accents
            self.u = self._unit(0.35 * self.u + 0.94 * self._unit(self.rng.standard_normal(self.z_dim)))
            self.heading = self._tangent(self.heading)
            self.heading = self._unit(self.heading)
        # pulse: fast attack, the features' own decay as release
        target = cfg.pulse * min(1.5, max(float(feats[F.PULSE]), 0.0))
        rate = 0.03 if target > self.pulse_env else 0.12
        self.pulse_env += (target - self.pulse_env) * min(1.0, dt / rate)
        # hidden state offset glides; it shows more while the machine itself is playing
        machine = 0.5 + 0.5 * math.tanh(max(float(feats[F.MACHINE]), 0.0) / 2.0)
        hidden_target = cfg.hidden * machine * (feats[F.HIDDEN] @ self.hidden_dirs)
        self.hidden_offset += (hidden_target - self.hidden_offset) * min(1.0, dt / 0.35)
        # register: low and high playing lean to opposite sides of one axis
        register_target = 2.0 * float(feats[F.REGISTER]) - 1.0
        self.register_offset += (register_target - self.register_offset) * min(1.0, dt / 0.5)
        # brightness from loudness
        loud = min(1.0, max(float(feats[F.LOUDNESS]), 0.0))
        self.brightness += ((0.8 + 0.3 * loud) - self.brightness) * min(1.0, dt / 0.2)
        pulse_dir = harmony_vec if harmony_vec is not None else self.pulse_dir
        # back onto the sphere: offsets turn the point (a swell towards the harmony's image)
        # instead of pushing it out of the region the generator was trained on
        z = self.radius * self._unit(self.u + 0.6 * self.pulse_env * pulse_dir + 0.35 * self.hidden_offset
                                     + 0.3 * self.register_offset * self.register_dir)
        return z.astype(np.float32)
