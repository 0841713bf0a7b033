"""Security: no code from checkpoints, loopback-only listeners by default, paths that stay
where they are allowed to point, and no shell ever run."""

from __future__ import annotations

import ast
import json
import pickle
import socket
from pathlib import Path

import pytest

from livecomposer.cli import build_parser
from livecomposer.model import CheckpointError, load_model, resolve
from livecomposer.bench.robustness.faults import tiny_checkpoint

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "livecomposer"


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickles(marker: Path) -> dict[str, bytes]:
    payload = _Payload(marker)
    return {f"protocol {p}": pickle.dumps(payload, protocol=p) for p in (0, 2, 4, 5)}


@pytest.mark.parametrize("protocol", ["protocol 0", "protocol 2", "protocol 4", "protocol 5"])
def test_a_crafted_pickle_checkpoint_is_refused_and_never_runs(protocol, tmp_path) -> None:
    marker = tmp_path / "pwned"
    folder = tiny_checkpoint(tmp_path)
    (folder / "model.safetensors").write_bytes(_pickles(marker)[protocol])
    with pytest.raises(CheckpointError, match="refused|not a safetensors|pickle"):
        load_model(folder)
    with pytest.raises(CheckpointError):
        load_model(folder / "model.safetensors")
    assert not marker.exists(), "the pickle ran"


def test_a_torch_save_file_is_refused(tmp_path) -> None:
    import torch

    marker = tmp_path / "pwned"
    folder = tiny_checkpoint(tmp_path)
    torch.save({"x": _Payload(marker)}, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="zip|torch.save"):
        load_model(folder)
    assert not marker.exists()


def test_a_pickle_in_place_of_the_visual_generator_is_refused(tmp_path) -> None:
    from livecomposer.visual.gan import load_generator

    marker = tmp_path / "pwned"
    shipped = REPO / "models" / "clipart-gan.json"
    weights = tmp_path / "evil.safetensors"
    weights.write_bytes(_pickles(marker)["protocol 4"])
    weights.with_suffix(".json").write_text(shipped.read_text() if shipped.exists() else json.dumps({"config": {}}))
    with pytest.raises(Exception):
        load_generator(weights)
    assert not marker.exists()


# --------------------------------------------------------------------------- listeners


def _listening(port: int, proto: str) -> set[str]:
    """Local addresses this machine listens on for ``port`` (from /proc/net/{tcp,udp}[6])."""
    found = set()
    for table in (proto, proto + "6"):
        path = Path("/proc/net") / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, hexport = fields[1].split(":")
            if int(hexport, 16) != port or (proto == "tcp" and fields[3] != "0A"):  # 0A: LISTEN
                continue
            if len(address) == 8:
                found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
            else:
                raw = bytes.fromhex(address)
                found.add(socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
    return found


def test_osc_listens_on_loopback_by_default() -> None:
    from livecomposer.app.osc import OscServer

    server = OscServer(engine=None, port=0).start()
    try:
        assert _listening(server.port, "udp") == {"127.0.0.1"}
    finally:
        server.close()
    args = build_parser().parse_args(["run", "presets/thru.yaml", "--osc"])
    assert args.osc_host == "127.0.0.1"


def test_the_visual_page_listens_on_loopback_by_default() -> None:
    from livecomposer.visual.config import VisualConfig, parse_visual
    from livecomposer.visual.server import FrameServer

    assert VisualConfig().host == "127.0.0.1" and parse_visual({"enabled": True}).host == "127.0.0.1"
    server = FrameServer(VisualConfig().host, 0)
    port = server.start()
    try:
        assert _listening(port, "tcp") == {"127.0.0.1"}
    finally:
        server.stop()


# --------------------------------------------------------------------------- paths


def test_a_bank_entry_cannot_leave_the_presets_folder(tmp_path) -> None:
    from livecomposer.app.presets import PresetError, load_preset

    (tmp_path / "outside.yaml").write_text("name: outside\ngraph: [thru]\n")
    folder = tmp_path / "presets"
    folder.mkdir()
    preset = folder / "set.yaml"
    for entry in ("../outside.yaml", str(tmp_path / "outside.yaml"), "sub/../../outside.yaml"):
        preset.write_text(f"name: set\ngraph: [thru]\nbank: [{json.dumps(entry)}]\n")
        with pytest.raises(PresetError, match="outside this preset's folder"):
            load_preset(preset)
    link = folder / "link.yaml"
    link.symlink_to(tmp_path / "outside.yaml")
    preset.write_text("name: set\ngraph: [thru]\nbank: [link.yaml]\n")
    with pytest.raises(PresetError, match="outside"):
        load_preset(preset)


def test_model_names_cannot_escape_the_model_folders(tmp_path, monkeypatch) -> None:
    with pytest.raises(CheckpointError):
        load_model("../../etc/passwd")
    with pytest.raises(CheckpointError):
        load_model("../../../../../../../../etc")
    models = tmp_path / "lib" / "models"
    models.mkdir(parents=True)
    tiny_checkpoint(models, "inside")
    tiny_checkpoint(tmp_path / "lib", "outside")  # a real checkpoint, beside the models folder
    monkeypatch.setenv("LIVECOMPOSER_MODELS", str(models))
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # where "../outside" is nothing
    assert resolve("inside") == models / "inside"
    with pytest.raises(CheckpointError, match="outside"):
        resolve("../outside")  # a *name* looked up in the models folder may not leave it


def test_visual_model_names_cannot_escape_the_models_folder(tmp_path, monkeypatch) -> None:
    from livecomposer.visual import renderer

    models = tmp_path / "lib" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("LIVECOMPOSER_MODELS", str(models))
    (tmp_path / "lib" / "evil.safetensors").write_bytes(b"x")
    (tmp_path / "lib" / "evil.json").write_text("{}")
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    with pytest.raises(FileNotFoundError):
        renderer.resolve_model("../evil")


# --------------------------------------------------------------------------- no shell


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.AST) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    if isinstance(func, ast.Name):
        return func.id
    return "?"


def test_no_shell_is_ever_run() -> None:
    """No os.system/os.popen/create_subprocess_shell; every subprocess call takes an argument
    list (never a string) and never shell=True."""
    problems = []
    files = sorted(PACKAGE.rglob("*.py")) + sorted((REPO / "tests" / "helpers").glob("*.py"))
    assert len(files) > 40
    for path in files:
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree):
            name = _name(call.func)
            where = f"{path.relative_to(REPO)}:{call.lineno} {name}"
            if name.split(".")[-1] in ("system", "popen", "create_subprocess_shell", "getoutput", "getstatusoutput") and \
                    name.split(".")[0] in ("os", "asyncio", "subprocess", "commands"):
                problems.append(f"{where}: runs a shell")
            for kw in call.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    problems.append(f"{where}: shell={ast.unparse(kw.value)}")
            if name.startswith("subprocess.") and call.args and isinstance(call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                problems.append(f"{where}: command given as a string")
    assert not problems, "\n".join(problems)
