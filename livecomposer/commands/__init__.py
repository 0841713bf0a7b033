"""The verbs of the ``livecomposer`` command, one module each, and what they share.

Each module registers its verb with ``register(subparsers)`` and imports what the verb
needs only inside ``run``, so ``livecomposer --help`` loads no engine, numba or torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path


class CommandError(Exception):
    """A user-facing failure: printed as one line, no traceback, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def preset_arg(value: str) -> Path:
    """argparse type for a preset: a file (``presets/duet.yaml``) or a name (``duet``)."""
    from ..paths import find_preset

    try:
        return find_preset(value)
    except (FileNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
