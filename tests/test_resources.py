"""Models and presets are found by name, in order: $LIVECOMPOSER_*, ./models or ./presets, the shipped copy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from livecomposer.cli import build_parser
from livecomposer.model import CheckpointError, resolve
from livecomposer.paths import find_preset, list_presets, shipped_dir

REPO = Path(__file__).resolve().parents[1]
THRU = "name: thru\ngraph: [thru]\n"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """A working directory with no models/ or presets/ and no livecomposer variables set."""
    monkeypatch.delenv("LIVECOMPOSER_MODELS", raising=False)
    monkeypatch.delenv("LIVECOMPOSER_PRESETS", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_shipped_folders_are_the_checkout_ones_here() -> None:
    assert shipped_dir("models") == REPO / "models"
    assert shipped_dir("presets") == REPO / "presets"


def test_a_preset_name_finds_the_shipped_preset_from_any_folder(elsewhere) -> None:
    for name in ("duet", "duet.yaml"):
        assert find_preset(name) == REPO / "presets" / "duet.yaml"
    assert find_preset(str(REPO / "presets" / "thru.yaml")) == REPO / "presets" / "thru.yaml"
    with pytest.raises(FileNotFoundError, match=r"no preset 'nope'.*presets list"):
        find_preset("nope")
    with pytest.raises(FileNotFoundError, match="no preset file"):
        find_preset("sub/duet.yaml")  # a path that is not there is not looked up by name


def test_local_and_environment_presets_come_before_the_shipped_ones(elsewhere, tmp_path, monkeypatch) -> None:
    (elsewhere / "presets").mkdir()
    (elsewhere / "presets" / "duet.yaml").write_text(THRU)
    assert find_preset("duet") == Path("presets") / "duet.yaml"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "duet.yml").write_text(THRU)
    monkeypatch.setenv("LIVECOMPOSER_PRESETS", str(mine))
    assert find_preset("duet") == mine / "duet.yml"
    listed = list_presets()
    assert [p for p in listed if p.stem == "duet"] == [mine / "duet.yml"]  # each name once, the one `run` would pick
    assert REPO / "presets" / "harmonizer.yaml" in listed


def test_model_names_follow_the_same_order(elsewhere, tmp_path, monkeypatch) -> None:
    assert resolve("folk-melody") == REPO / "models" / "folk-melody"
    (elsewhere / "models" / "folk-melody").mkdir(parents=True)
    assert resolve("folk-melody") == Path("models") / "folk-melody"
    (tmp_path / "env" / "folk-melody").mkdir(parents=True)
    monkeypatch.setenv("LIVECOMPOSER_MODELS", str(tmp_path / "env"))
    assert resolve("folk-melody") == tmp_path / "env" / "folk-melody"
    with pytest.raises(CheckpointError, match="not found"):
        resolve("no-such-model")


def test_run_and_demo_take_a_preset_name(elsewhere) -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "duet"]).preset == REPO / "presets" / "duet.yaml"
    assert parser.parse_args(["demo", "--preset", "thru"]).preset == REPO / "presets" / "thru.yaml"


def test_run_with_an_unknown_preset_name_says_where_it_looked(elsewhere) -> None:
    proc = subprocess.run([sys.executable, "-m", "livecomposer.cli", "run", "nope"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 2
    assert "no preset 'nope'" in proc.stderr and str(REPO / "presets") in proc.stderr


def test_presets_list_shows_the_shipped_presets_by_name(elsewhere) -> None:
    proc = subprocess.run([sys.executable, "-m", "livecomposer.cli", "presets", "list"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    names = [line.split()[0] for line in proc.stdout.splitlines()]
    assert {"duet", "thru", "harmonizer", "accompanist"} <= set(names), proc.stdout + proc.stderr
    thru = next(line for line in proc.stdout.splitlines() if line.startswith("thru "))
    assert "straight through" in thru and str(REPO / "presets" / "thru.yaml") in thru


def test_the_readme_preset_example_is_the_shipped_duet() -> None:
    import yaml

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Presets"):]
    example = section[section.index("```yaml\n") + 8:section.index("\n```", section.index("```yaml"))]
    assert yaml.safe_load(example) == yaml.safe_load((REPO / "presets" / "duet.yaml").read_text()), \
        "README's preset example differs from presets/duet.yaml: copy the file's body into it"
