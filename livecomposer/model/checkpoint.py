"""Checkpoints are a folder: ``config.json`` (readable) and ``model.safetensors`` (tensors only).

Nothing here ever unpickles: a pickle can run code when loaded, so a file that looks like
one (or like a ``torch.save`` zip) is refused with a clear error instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

FORMAT = "livecomposer-model"
VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"


class CheckpointError(Exception):
    """The path is not a livecomposer checkpoint (or not a safe one)."""


def _sniff(path: Path) -> str:
    """'' for something shaped like safetensors (8-byte header length, then JSON), else why not."""
    with open(path, "rb") as f:
        head = f.read(16)
    if len(head) >= 9 and 2 <= int.from_bytes(head[:8], "little") <= 100_000_000 and head[8:9] == b"{":
        return ""
    if head[:1] == b"\x80" or head[:1] in (b"(", b"]", b"}", b"c"):
        return "a Python pickle (pickles can carry code and are never loaded)"
    if head[:2] == b"PK":
        return "a zip archive (a torch.save file, which holds pickles; never loaded)"
    return "not a safetensors file"


def save(folder: Path, state: dict[str, torch.Tensor], config: dict) -> None:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"format": FORMAT, "version": VERSION, **config}
    tmp = folder / (WEIGHTS + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp))
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / WEIGHTS)
    tmpc = folder / (CONFIG + ".tmp")
    tmpc.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    os.replace(tmpc, folder / CONFIG)


def read_config(folder: Path) -> dict:
    path = Path(folder) / CONFIG
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: not a livecomposer checkpoint (no {CONFIG})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a livecomposer config ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a livecomposer checkpoint (format is {cfg.get('format') if isinstance(cfg, dict) else None!r}, expected {FORMAT!r})")
    if cfg.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {cfg.get('version')!r} is not supported (expected {VERSION})")
    return cfg


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, config) from a checkpoint folder, or from its ``model.safetensors`` file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.is_file():
        why = _sniff(path)
        if why or path.name != WEIGHTS:
            raise CheckpointError(f"{path}: not a livecomposer checkpoint ({why or 'expected a folder with ' + CONFIG + ' and ' + WEIGHTS})")
        path = path.parent
    cfg = read_config(path)
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{path}: not a livecomposer checkpoint (no {WEIGHTS})")
    why = _sniff(weights)
    if why:
        raise CheckpointError(f"{weights}: refused: {why}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: unreadable safetensors file ({exc})") from None
    return state, cfg
