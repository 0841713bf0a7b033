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


def midi_file_args(paths: list[Path], code: int = 1) -> list[Path]:
    """The MIDI files named on a command line: folders give every MIDI file under them, a
    path that does not exist is a :class:`CommandError` (exit ``code``) naming it."""
    from ..model.midi import midi_files

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += midi_files(path)
        elif path.exists():
            files.append(path)
        else:
            raise CommandError(f"{path}: no such file", code)
    return files
