"""The music model: a streaming event RNN with constrained sampling.

``load_model("folk-melody")`` finds a checkpoint by name in ``$LIVECOMPOSER_MODELS``,
``./models`` or the shipped models (:mod:`livecomposer.paths`); a path to a checkpoint
folder works too.  The result implements :class:`livecomposer.model.api.IncrementalModel`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import paths
from .api import MACHINE_VOICE, PERFORMER_VOICE, Constraints, IncrementalModel, ModelEvent
from .checkpoint import CheckpointError

__all__ = [
    "load_model", "load_network", "model_dirs", "shipped_models", "resolve", "CheckpointError",
    "Constraints", "IncrementalModel", "ModelEvent", "PERFORMER_VOICE", "MACHINE_VOICE",
]


def model_dirs() -> list[Path]:
    """Where named models are looked up: $LIVECOMPOSER_MODELS, ./models, then the shipped models."""
    return paths.model_dirs()


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint folder for a model name or path; CheckpointError naming what was tried."""
    p = Path(name_or_path)
    if p.exists():
        return p
    dirs = model_dirs()
    try:
        found = paths.find_in(dirs, str(name_or_path))
    except ValueError:  # a name like ../../x: never outside
        raise CheckpointError(f"model name {str(name_or_path)!r} leads outside the model folders") from None
    if found is None:
        tried = ", ".join(str(d / str(name_or_path)) for d in dirs)
        raise CheckpointError(f"model {str(name_or_path)!r} not found (tried {tried})")
    return found


def shipped_models() -> list[str]:
    """Names of the checkpoints that ship with livecomposer."""
    d = paths.shipped_dir("models")
    return sorted(p.name for p in d.iterdir() if (p / "config.json").is_file()) if d else []


def load_network(name_or_path: str | os.PathLike):
    """(EventRNN in eval mode, config, folder) from a checkpoint; for training-side tools."""
    from . import checkpoint
    from .network import EventRNN, NetConfig

    path = resolve(name_or_path)
    state, cfg = checkpoint.load(path)
    try:
        net = EventRNN(NetConfig(**cfg["net"]))
        net.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not match the network ({str(exc).splitlines()[0]})") from None
    net.eval()
    return net, cfg, Path(path)


def load_model(name_or_path: str | os.PathLike) -> IncrementalModel:
    """Load a checkpoint (safetensors + JSON config; never a pickle) as a streaming model."""
    from .network import StreamingModel

    net, cfg, path = load_network(name_or_path)
    return StreamingModel(net, name=str(cfg.get("name") or path.name), config=cfg)
