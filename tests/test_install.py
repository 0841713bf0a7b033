"""``pip install .`` gives a working livecomposer outside the checkout: models and presets
ship inside the package, and the demo runs from any folder.

The fresh virtual environment borrows the test environment's installed dependencies (a
``.pth`` line naming its site-packages) so the test installs only livecomposer itself and
downloads nothing; livecomposer's own files all come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mido
import pytest

REPO = Path(__file__).resolve().parents[1]
#: Everything a wheel is built from (the rest of the checkout is tests, tools and caches).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "livecomposer", "models", "presets")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv, outside the checkout, with livecomposer installed from a wheel built from it."""
    root = tmp_path_factory.mktemp("install")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    # Only the dependencies: a path line in a .pth file adds the folder, but its own .pth
    # files (the checkout's editable install) are not run, so `import livecomposer` finds the wheel.
    Path(purelib, "_lc_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    source = root / "source"  # what the build reads, copied: setuptools' build/ folder in the
    source.mkdir()             # checkout could carry files since deleted into the wheel
    for name in BUILD_INPUTS:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}))
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q", str(source)],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return venv


def clean_env() -> dict[str, str]:
    """The environment without anything that would point livecomposer back at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LIVECOMPOSER_MODELS", "LIVECOMPOSER_PRESETS", "VIRTUAL_ENV")}
    return env


@pytest.mark.slow
def test_the_wheel_carries_models_and_presets_and_the_demo_runs_anywhere(installed, tmp_path) -> None:
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import livecomposer, livecomposer.paths as p; from livecomposer.visual.renderer import resolve_model; "
         "print(livecomposer.__file__); print(p.shipped_dir('models')); print(p.find_preset('duet')); print(resolve_model('clipart-gan'))"],
        capture_output=True, text=True, timeout=60, cwd=cwd, env=clean_env())
    assert where.returncode == 0, where.stderr
    package, models, duet, visual = (Path(line) for line in where.stdout.split())
    assert package.is_relative_to(installed) and not package.is_relative_to(REPO)
    assert models == package.parent / "_models" and (models / "folk-melody" / "model.safetensors").is_file()
    assert duet == package.parent / "_presets" / "duet.yaml"
    assert visual == models / "clipart-gan.safetensors"

    # the music models from the wheel; the visuals' video is the visual tests' business (slow)
    demo = subprocess.run([str(installed / "bin" / "livecomposer"), "demo", "--out", "out", "--no-visual"],
                          capture_output=True, text=True, timeout=600, cwd=cwd, env=clean_env())
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "preset duet" in demo.stdout
    for name in ("performer.mid", "session.mid", "session.wav"):
        assert (cwd / "out" / name).stat().st_size > 0, name
    out = next(t for t in mido.MidiFile(cwd / "out" / "session.mid").tracks if t.name == "livecomposer out")
    assert any(m.type == "note_on" and m.channel == 1 for m in out), "no answer on channel 2: the wheel's folk-melody did not play"

    listed = subprocess.run([str(installed / "bin" / "livecomposer"), "presets", "list"],
                            capture_output=True, text=True, timeout=120, cwd=cwd, env=clean_env())
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert any(line.startswith("duet ") and "_presets" in line for line in listed.stdout.splitlines())
