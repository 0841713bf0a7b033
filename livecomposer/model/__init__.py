"""The music model: a streaming event RNN with constrained sampling.

``load_model("folk-melody")`` finds a shipped checkpoint in ``models/`` (or
``$LIVECOMPOSER_MODELS``); a path to a checkpoint folder works too.  The result implements
:class:`livecomposer.model.api.IncrementalModel`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .api import MACHINE_VOICE, PERFORMER_VOICE, Constraints, IncrementalModel, ModelEvent
from .checkpoint import CheckpointError

__all__ = [
    "load_model", "load_network", "model_dirs", "shipped_models", "resolve", "CheckpointError",
    "Constraints", "IncrementalModel", "ModelEvent", "PERFORMER_VOICE", "MACHINE_VOICE",
]


def model_dirs() -> list[Path]:
    """Where named models are looked up: $LIVECOMPOSER_MODELS, ./models, then the repository's models/."""
    dirs = []
    env = os.environ.get("LIVECOMPOSER_MODELS")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path("models"))
    dirs.append(Path(__file__).resolve().parents[2] / "models")
    return dirs


def resolve(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint folder for a model name or path; CheckpointError naming what was tried."""
    p = Path(name_or_path)
    if p.exists():
        return p
    tried = []
    for d in model_dirs():
        q = d / str(name_or_path)
        tried.append(str(q))
        if q.exists():
            if not q.resolve().is_relative_to(d.resolve()):  # a name like ../../x: never outside
                raise CheckpointError(f"model name {str(name_or_path)!r} leads outside the model folder {d}")
            return q
    raise CheckpointError(f"model {str(name_or_path)!r} not found (tried {', '.join(tried)})")


def shipped_models() -> list[str]:
    """Names of the checkpoints in the repository's models/ folder."""
    d = Path(__file__).resolve().parents[2] / "models"
    return sorted(p.name for p in d.iterdir() if (p / "config.json").is_file()) if d.is_dir() else []


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
