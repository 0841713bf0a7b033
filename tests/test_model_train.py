"""Training, resuming, evaluation and MIDI folders, on tiny synthetic data (seconds)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mido
import numpy as np
import pytest

from livecomposer.cli import main
from livecomposer.model import load_model
from livecomposer.model.data import DataError
from livecomposer.model.midi import MidiFileError, load_folder, read_notes
from livecomposer.model.train import TrainOptions, train

SCALE = [0, 2, 4, 5, 7, 9, 11]


def write_tune(path: Path, seed: int, notes: int = 120) -> None:
    """A two-track file: a stepwise melody (the performer) over a slow bass (a machine voice)."""
    rng = np.random.default_rng(seed)
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    mel, bass = mido.MidiTrack(), mido.MidiTrack()
    deg = 7
    for i in range(notes):
        deg = int(np.clip(deg + rng.choice([-2, -1, 1, 2]), 0, 13))
        p = 60 + 12 * (deg // 7) + SCALE[deg % 7]
        mel.append(mido.Message("note_on", note=p, velocity=int(rng.integers(60, 100)), time=0))
        mel.append(mido.Message("note_off", note=p, velocity=0, time=240))
        if i % 4 == 0:
            b = 48 + SCALE[int(rng.integers(7))]
            bass.append(mido.Message("note_on", note=b, velocity=70, channel=1, time=0 if i == 0 else 0))
            bass.append(mido.Message("note_off", note=b, velocity=0, channel=1, time=960))
    mf.tracks += [mel, bass]
    mf.save(str(path))


@pytest.fixture(scope="module")
def midi_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("midi")
    for i in range(12):
        write_tune(d / f"tune{i:02d}.mid", i)
    (d / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage-not-midi")
    (d / "empty.mid").write_bytes(b"")
    return d


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIVECOMPOSER_CACHE", str(tmp_path / "cache"))


def test_read_notes_parts_and_bad_files(midi_dir):
    on, du, pi, pa, ve = read_notes(midi_dir / "tune00.mid")
    assert len(pi) == 150 and set(pa.tolist()) == {0, 1}
    assert np.all(np.diff(on) >= 0) and abs(du[pa == 0][0] - 0.25) < 1e-6
    with pytest.raises(MidiFileError, match="corrupt.mid"):
        read_notes(midi_dir / "corrupt.mid")
    with pytest.raises(MidiFileError, match="empty.mid"):
        read_notes(midi_dir / "empty.mid")


def test_corrupt_and_empty_files_are_skipped_with_a_warning(midi_dir, caplog):
    with caplog.at_level(logging.WARNING):
        ns, vel, skipped = load_folder(midi_dir)
    assert len(ns) == 12 and len(vel) == ns.notes()
    assert sorted(Path(s).name for s in skipped) == ["corrupt.mid", "empty.mid"]
    assert "corrupt.mid" in caplog.text and "empty.mid" in caplog.text


def opts(midi_dir: Path, out: Path, **kw) -> TrainOptions:
    base = dict(data=str(midi_dir), out=out, epochs=1, hidden=32, embed=16, head=16, batch=8, seq_len=64,
                min_notes=500, progress=False)
    base.update(kw)
    return TrainOptions(**base)


def test_train_resume_and_eval(midi_dir, tmp_path, capsys):
    out = tmp_path / "mine"
    r = train(opts(midi_dir, out))
    assert r["epochs"] == 1 and np.isfinite(r["best_val_nll"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["format"] == "livecomposer-model" and cfg["net"]["hidden"] == 32
    assert not any(p.suffix in (".pt", ".pkl", ".pth") for p in out.rglob("*"))
    r2 = train(opts(midi_dir, out, epochs=2, resume=True))
    assert r2["epochs"] == 2
    state = json.loads((out / "train_state" / "config.json").read_text())["train_state"]
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    m = load_model(out)
    assert m.hidden_features().shape == (32,)

    files = [str(midi_dir / "tune00.mid"), str(midi_dir / "tune01.mid")]
    assert main(["eval", str(out), *files, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    for key in ("model_nll", "baseline_nll", "events", "baseline_nll_by_order", "model_nll_per_note", "files"):
        assert key in res
    assert res["events"] == 600 and res["model_nll"] > 0 and res["baseline_nll"] > 0
    assert main(["eval", str(out), *files]) == 0
    assert "n-gram" in capsys.readouterr().out


def test_too_little_data_says_so(midi_dir, tmp_path):
    with pytest.raises(DataError, match="too little data"):
        train(opts(midi_dir, tmp_path / "x", min_notes=100_000))
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "y"), "--no-progress"]) == 2


def _weights(folder: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(folder / "model.safetensors"))


def test_a_resumed_run_continues_exactly_where_it_stopped(midi_dir, tmp_path):
    """Weights, Adam moments, torch RNG (dropout, field orders), epoch data and the cosine
    schedule all carry over: two runs of 1 + 2 epochs end where one run of 3 does."""
    kw = dict(epochs=3, schedule="cosine", warmup=2, dropout=0.2, seed=5)
    whole = tmp_path / "whole"
    train(opts(midi_dir, whole, **kw))
    parts = tmp_path / "parts"
    train(opts(midi_dir, parts, **{**kw, "epochs": 1, "schedule_epochs": 3}))
    first = json.loads((parts / "train_state" / "config.json").read_text())["train_state"]
    assert first["epoch"] == 1 and first["schedule"]["horizon_epochs"] == 3
    r = train(opts(midi_dir, parts, **{**kw, "resume": True}))
    assert r["epochs"] == 3
    a, b = _weights(whole / "train_state"), _weights(parts / "train_state")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    sa = json.loads((whole / "train_state" / "config.json").read_text())["train_state"]
    sb = json.loads((parts / "train_state" / "config.json").read_text())["train_state"]
    for key in ("best_val_nll", "epoch", "bad_epochs", "events_seen", "adam_t", "lr"):
        assert sa[key] == sb[key], key
    assert [h["val_nll"] for h in sa["history"]] == [h["val_nll"] for h in sb["history"]]
    assert [h["lr"] for h in sb["history"]][-1] < kw.get("lr", 2e-3)  # annealed
    assert len(sb["runs"]) == 2 and sb["runs"][1]["from_epoch"] == 1
    # The best checkpoint is the best epoch's, whichever run wrote it.
    best = json.loads((parts / "config.json").read_text())["train"]
    assert best["best_val_nll"] == round(min(h["val_nll"] for h in sb["history"]), 4)


def test_cosine_schedule_warms_up_anneals_and_keeps_its_floor():
    from livecomposer.model.train import _lr_at

    s = {"lr0": 1e-3, "warmup": 10, "horizon_s": 100.0, "horizon_epochs": None}
    assert _lr_at(s, 0, 0.0, 0.0) == pytest.approx(1e-4)
    assert _lr_at(s, 50, 0.0, 0.0) == pytest.approx(1e-3)
    assert _lr_at(s, 50, 50.0, 0.0) == pytest.approx((1e-3 + 5e-5) / 2)
    assert _lr_at(s, 50, 500.0, 0.0) == pytest.approx(5e-5)
    e = {"lr0": 1e-3, "warmup": 0, "horizon_s": None, "horizon_epochs": 4}
    assert _lr_at(e, 9, 0.0, 4.0) == pytest.approx(5e-5) and _lr_at(e, 9, 0.0, 2.0) == pytest.approx((1e-3 + 5e-5) / 2)


def test_worker_processes_render_the_same_epochs(midi_dir):
    """Epochs rendered ahead in spawned workers are the ones rendered here: a GPU run and a
    CPU run (or a resumed one) see the same data."""
    from livecomposer.model.data import load_dataset, split
    from livecomposer.model.train import EpochFeed, default_augment

    ds = load_dataset(str(midi_dir))
    tr, _va, _te = split(len(ds.notes))
    args = (ds, str(midi_dir), np.tile(tr, 2), 3, 0, default_augment(str(midi_dir)), 64, 8)
    here, there = EpochFeed(*args, workers=0), EpochFeed(*args, workers=1)
    try:
        for epoch in (0, 1):
            a, b = here.get(epoch, 2), there.get(epoch, 2)
            assert len(a) == len(b) > 0
            assert all(np.array_equal(x, y) for ba, bb in zip(a, b) for x, y in zip(ba, bb))
        assert not np.array_equal(here.get(0, 2)[0][1], here.get(1, 2)[0][1])
    finally:
        there.close()


def test_device_choice_is_checked(midi_dir, tmp_path):
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(DataError, match="no CUDA"):
            train(opts(midi_dir, tmp_path / "g", device="cuda"))
    r = train(opts(midi_dir, tmp_path / "auto", device="auto"))
    cfg = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert cfg["train"]["runs"][0]["device"] == ("cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name(0))
    assert r["epochs"] == 1
