"""Where livecomposer finds its models and presets, in a checkout and in an installed wheel.

Both are looked up in the same order: the folders named by an environment variable
(``$LIVECOMPOSER_MODELS`` / ``$LIVECOMPOSER_PRESETS``, several joined by ``os.pathsep``), then
``./models`` / ``./presets`` in the working directory (your own, beside your set), then the
copy that ships with livecomposer.

The shipped copy lives at the top of the repository (``models/``, ``presets/``), so a clone
and an editable install (``pip install -e .``) read it there.  A wheel (``pip install .``,
``pipx``) has no repository: ``setup.py`` maps the two folders into the package as
``livecomposer/_models`` and ``livecomposer/_presets``, and they are read from there.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

PRESET_SUFFIXES = (".yaml", ".yml")


def shipped_dir(kind: str) -> Path | None:
    """The folder of shipped ``models`` or ``presets``: inside the installed package (a
    wheel), else at the top of the checkout this package runs from; None if neither exists."""
    for candidate in (PACKAGE / f"_{kind}", PACKAGE.parent / kind):
        if candidate.is_dir():
            return candidate
    return None


def search_dirs(kind: str) -> list[Path]:
    """Where named ``models`` or ``presets`` are looked up, first match wins (see module doc)."""
    dirs: list[Path] = []
    env = os.environ.get(f"LIVECOMPOSER_{kind.upper()}")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs.append(Path(kind))
    shipped = shipped_dir(kind)
    if shipped is not None:
        dirs.append(shipped)
    return dirs


def model_dirs() -> list[Path]:
    """Where named models are looked up: $LIVECOMPOSER_MODELS, ./models, the shipped models."""
    return search_dirs("models")


def preset_dirs() -> list[Path]:
    """Where named presets are looked up: $LIVECOMPOSER_PRESETS, ./presets, the shipped presets."""
    return search_dirs("presets")


def find_in(dirs: list[Path], relative: str) -> Path | None:
    """The first ``dir / relative`` that exists, refusing a name that climbs out of its folder
    (``../../etc``): a name picks a shipped or local file, never an arbitrary one."""
    for d in dirs:
        candidate = d / relative
        if candidate.exists():
            if not candidate.resolve().is_relative_to(d.resolve()):
                raise ValueError(f"name {relative!r} leads outside the folder {d}")
            return candidate
    return None


def find_preset(name_or_path: str | os.PathLike) -> Path:
    """A preset file from a path (``presets/duet.yaml``) or a name (``duet``, ``duet.yaml``).

    An existing path wins; otherwise the name is looked up in :func:`preset_dirs`.  Raises
    FileNotFoundError naming the folders tried, so the user sees where a preset may live.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.parent == Path("."):  # a bare name: look it up
        names = [path.name] if path.suffix in PRESET_SUFFIXES else [path.name + s for s in PRESET_SUFFIXES]
        dirs = preset_dirs()
        for d in dirs:  # folder by folder: a nearer duet.yml beats a farther duet.yaml
            for name in names:
                found = find_in([d], name)
                if found is not None and found.is_file():
                    return found
        tried = ", ".join(str(d) for d in dirs)
        raise FileNotFoundError(f"no preset {str(name_or_path)!r} (a file, or a name in: {tried}); `livecomposer presets list` shows them")
    raise FileNotFoundError(f"no preset file {str(name_or_path)!r}")


def list_presets() -> list[Path]:
    """Every preset file reachable by name, the first of each name only (as :func:`find_preset` picks)."""
    seen: set[str] = set()
    found: list[Path] = []
    for d in preset_dirs():
        if not d.is_dir():
            continue
        for path in sorted(p for s in PRESET_SUFFIXES for p in d.glob(f"*{s}")):
            if path.stem not in seen:
                seen.add(path.stem)
                found.append(path)
    return found
