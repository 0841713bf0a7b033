"""Things that fail on purpose, wrapped around the real components.

- :class:`FaultyModel`: a real :class:`~livecomposer.model.api.IncrementalModel` that raises
  on every step, or takes ``delay`` seconds per step (a slow CPU, a huge model).  The real
  model still does the work in the slow case; only time is added.
- :func:`tiny_checkpoint`: a small, untrained but real EventRNN checkpoint (safetensors +
  JSON) for the playing partners to load, so the fault runs need no shipped model.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator



class InjectedFault(RuntimeError):
    """Raised by the fault injectors, so logs say plainly that it was on purpose."""


class FaultyModel:
    """Delegates to a real model; ``mode="raise"`` raises on feed/sample, ``mode="slow"``
    sleeps ``delay`` seconds before each feed and sample (off the engine thread, where the
    inference worker calls it)."""

    def __init__(self, model: Any, mode: str, delay: float = 0.1) -> None:
        if mode not in ("raise", "slow"):
            raise ValueError(f"mode must be 'raise' or 'slow', not {mode!r}")
        self._model = model
        self.mode = mode
        self.delay = delay
        self.steps = 0

    def _step(self) -> None:
        self.steps += 1
        if self.mode == "raise":
            raise InjectedFault(f"model step {self.steps}")
        time.sleep(self.delay)

    def feed(self, event: Any) -> None:
        self._step()
        self._model.feed(event)

    def sample(self, constraints: Any, rng: Any) -> Any:
        self._step()
        return self._model.sample(constraints, rng)

    def __getattr__(self, name: str) -> Any:  # reset, get_state, set_state, held_pitches...
        return getattr(self._model, name)


def tiny_checkpoint(folder: Path, name: str = "stage-tiny") -> Path:
    """Write a small random-weight EventRNN checkpoint; returns its folder."""
    import torch

    from ...model import checkpoint
    from ...model.network import EventRNN, NetConfig

    torch.manual_seed(0)
    net = EventRNN(NetConfig(hidden=48, embed=24, head=32))
    target = Path(folder) / name
    checkpoint.save(target, net.state_dict(), {"name": name, "net": net.cfg.as_dict()})
    return target


@contextmanager
def faulty_models(mode: str, delay: float = 0.1) -> Iterator[list[FaultyModel]]:
    """While active, every model a plugin loads (``PluginContext.load_model``, called from
    ``prepare`` when an engine is built) comes wrapped in a :class:`FaultyModel`; yields the
    list of those made.  Build the engine inside the block."""
    from ...kernel.plugin import PluginContext

    real = PluginContext.load_model
    made: list[FaultyModel] = []

    def load(self, name):
        made.append(FaultyModel(real(self, name), mode, delay))
        return made[-1]

    PluginContext.load_model = load  # type: ignore[method-assign]
    try:
        yield made
    finally:
        PluginContext.load_model = real  # type: ignore[method-assign]
