"""The one error a preset can raise: where (file, line, key path) and why."""

from __future__ import annotations


class PresetError(ValueError):
    """A preset mistake.  ``str()`` is ``FILE:LINE: KEY.PATH: reason`` (parts omitted when unknown)."""

    def __init__(self, file: str, line: int | None, path: str, reason: str) -> None:
        self.file = file
        self.line = line
        self.path = path
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.reason}" if self.path else f"{where}: {self.reason}"
