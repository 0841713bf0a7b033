"""The visualizer's parts without a browser: preset section, features, mapping, mailbox,
the GAN files, offline renders and a (very short) real training run.  The FastGAN's parts
and the quality measures: tests/test_visual_gan.py."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import copy_small_clipart
from livecomposer.kernel.events import Event, control, note_off, note_on
from livecomposer.visual import features as F
from livecomposer.visual.config import VisualConfig, parse_visual
from livecomposer.visual.gan import GanConfig, Generator, load_generator, save_generator
from livecomposer.visual.mailbox import SeqlockBox
from livecomposer.visual.mapping import LatentMapper
from livecomposer.paths import shipped_dir
from livecomposer.visual.renderer import resolve_model

S = 1_000_000_000
MODEL = shipped_dir("models") / "clipart-gan.safetensors"


# -- preset section -----------------------------------------------------------------------------

def test_visual_section_defaults_and_values():
    assert parse_visual({}) == VisualConfig()
    cfg = parse_visual({"enabled": True, "fps": 30, "size": 512, "pulse": 0.5, "port": 0, "frames_dir": "out/frames"})
    assert (cfg.enabled, cfg.fps, cfg.size, cfg.pulse, cfg.port, cfg.frames_dir) == (True, 30, 512, 0.5, 0, "out/frames")


@pytest.mark.parametrize("section, message", [
    ({"fsp": 30}, "fsp: unknown key (did you mean 'fps'?)"),
    ({"fps": 0}, "fps: must be between 1 and 240"),
    ({"size": 256.5}, "size: must be a whole number"),
    ({"enabled": "yes"}, "enabled: must be true or false"),
    ({"host": "example.com"}, "host: must be an IP address or localhost"),
    ({"pulse": "big"}, "pulse: must be a number"),
])
def test_visual_section_errors_name_the_key(section, message):
    with pytest.raises(ValueError) as err:
        parse_visual(section)
    assert str(err.value).startswith(message)


# -- features ------------------------------------------------------------------------------------

def test_onsets_raise_pulse_density_and_pitch_classes_then_fade():
    tracker = F.FeatureTracker(VisualConfig())
    chord = [note_on(1 * S, 60, 100), note_on(1 * S, 64, 100), note_on(1 * S, 67, 100)]
    tracker.update(chord, chord, 1 * S)  # thru'd performer notes in outputs are not counted twice
    v = tracker.snapshot()
    assert v[F.ONSETS] == 3 and v[F.HELD] == 3
    assert v[F.PULSE] > 2.0 and v[F.DENSITY] > 1.0
    pcs = v[F.PC]
    assert pcs[0] > 0 and pcs[4] > 0 and pcs[7] > 0 and pcs[[1, 2, 3, 5, 6, 8, 9, 10, 11]].sum() == 0
    later = F.decayed(v, 4 * S, tracker.tau)
    assert later[F.PULSE] < 0.01 * v[F.PULSE]
    assert later[F.DENSITY] < v[F.DENSITY] and later[F.ONSETS] == 3
    tracker.update([note_off(4 * S, 60), note_off(4 * S, 64)], [], 4 * S)
    assert tracker.vec[F.HELD] == 1
    tracker.update([control(4 * S, 123, 0)], [], 4 * S)
    assert tracker.vec[F.HELD] == 0


def test_machine_notes_and_accents_are_counted():
    tracker = F.FeatureTracker(VisualConfig(accent_velocity=110))
    tracker.update([note_on(S, 40, 120)], [note_on(S, 72, 60, voice=1)], S)
    assert tracker.vec[F.ACCENTS] == 1 and tracker.vec[F.ONSETS] == 2 and tracker.vec[F.MACHINE] > 0


def test_hidden_state_projection_is_fixed_and_bounded():
    a, b = F.FeatureTracker(VisualConfig()), F.FeatureTracker(VisualConfig())
    h = np.random.default_rng(3).standard_normal(256)
    a.hidden(h)
    b.hidden(h)
    assert np.array_equal(a.vec[F.HIDDEN], b.vec[F.HIDDEN])
    assert np.abs(a.vec[F.HIDDEN]).max() <= 1.0 and np.abs(a.vec[F.HIDDEN]).max() > 0.05


# -- mailbox ---------------------------------------------------------------------------------------

def test_mailbox_reader_sees_only_whole_snapshots_while_another_process_writes():
    box = SeqlockBox(64)
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, numpy as np\n"
        "from livecomposer.visual.mailbox import SeqlockBox\n"
        f"box = SeqlockBox(64, {box.name!r})\n"
        "i = 0.0\n"
        "while True:\n"
        "    i += 1\n"
        "    box.write(np.full(64, i))\n")], cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 10
        while box.sequence < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = set()
        reads = 0
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            v = box.read()
            assert np.all(v == v[0]), "torn read"
            seen.add(v[0])
            reads += 1
        assert reads > 1000 and len(seen) > 10  # many reads, of many different snapshots
    finally:
        writer.kill()
        writer.wait()
        box.close()


# -- mapping ----------------------------------------------------------------------------------------

def _walk(mapper: LatentMapper, feats_at, seconds: float, fps: int = 30) -> np.ndarray:
    return np.stack([mapper.step(feats_at(k / fps), 1 / fps) for k in range(int(seconds * fps))])


def _busy_features(cfg: VisualConfig, accent: bool = False):
    tracker = F.FeatureTracker(cfg)
    tracker.vec[F.STAMP] = 0
    events = [note_on(int(k * 0.125 * S), 48 + (k * 7) % 24, 127 if accent and k == 8 else 90) for k in range(16)]

    def at(t: float) -> np.ndarray:
        due = [e for e in events if e.time <= t * S and e.time > tracker.vec[F.STAMP] - 1 or (e.time == 0 and tracker.vec[F.ONSETS] == 0 and t == 0)]
        if due:
            tracker.update(due, [], max(e.time for e in due))
        return F.decayed(tracker.vec, int(t * S), tracker.tau)

    return at


def test_busy_playing_moves_the_latent_more_than_silence_and_smoothly():
    cfg = VisualConfig()
    silent = F.FeatureTracker(cfg)
    calm = _walk(LatentMapper(cfg, 128), lambda t: F.decayed(silent.vec, int(t * S), silent.tau), 2.0)
    busy = _walk(LatentMapper(cfg, 128), _busy_features(cfg), 2.0)
    calm_steps = np.linalg.norm(np.diff(calm, axis=0), axis=1)
    busy_steps = np.linalg.norm(np.diff(busy, axis=0), axis=1)
    assert busy_steps.mean() > 4 * calm_steps.mean()
    # no jumps without a strong accent: no step is far above the typical step
    assert busy_steps.max() < 0.25 * np.sqrt(128)


def test_only_a_strong_accent_jumps():
    cfg = VisualConfig(accent_velocity=120)
    plain = np.linalg.norm(np.diff(_walk(LatentMapper(cfg, 128), _busy_features(cfg), 2.0), axis=0), axis=1)
    accented = np.linalg.norm(np.diff(_walk(LatentMapper(cfg, 128), _busy_features(cfg, accent=True), 2.0), axis=0), axis=1)
    assert accented.max() > 0.5 * np.sqrt(128) > plain.max()


def _steady_key(pitch_classes: list[int]) -> np.ndarray:
    """Features of busy playing (4 onsets a second) that keeps to these pitch classes."""
    v = np.zeros(F.SIZE)
    v[F.DENSITY], v[F.REGISTER], v[F.LOUDNESS] = 4.0, 0.5, 0.6
    v[[1 + pc for pc in pitch_classes]] = 1.0
    return v


def _degrees(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_tune_in_one_key_keeps_the_picture_roaming_near_its_harmony_and_a_new_key_pulls_it_away(seed):
    mapper = LatentMapper(VisualConfig(seed=seed), 128)
    c_major, f_sharp_major = _steady_key([0, 4, 7]), _steady_key([6, 10, 1])
    towards = {name: (v[F.PC] / v[F.PC].sum()) @ mapper.harmony_dirs for name, v in (("C", c_major), ("F#", f_sharp_major))}
    walk = []
    for _ in range(40 * 30):
        mapper.step(c_major, 1 / 30)
        walk.append(mapper.u.copy())
    settled = walk[10 * 30::30]  # once a second, after 10 s
    assert max(_degrees(u, towards["C"]) for u in settled) < 70  # held near the key's pictures...
    assert max(_degrees(a, b) for a in settled for b in settled) > 70  # ...but not parked on one (an attractor: about 30)
    assert _degrees(mapper.u, towards["F#"]) > 100
    for _ in range(10 * 30):
        mapper.step(f_sharp_major, 1 / 30)
    assert _degrees(mapper.u, towards["F#"]) < 70


def test_busy_playing_paints_more_distinct_pictures_than_two_lone_notes():
    from livecomposer.visual.offline import variety

    busy = []
    for k in range(80):  # 20 s of arpeggios, four notes a second
        t, pitch = int(k * S / 4), 60 + (0, 4, 7, 12, 7, 4)[k % 6]
        busy += [note_on(t, pitch, 90), note_off(t + S // 5, pitch)]
    lone = [note_on(0, 60, 60), note_off(S // 5, 60), note_on(20 * S, 60, 60), note_off(20 * S + S // 5, 60)]
    played, quiet = variety(busy), variety(lone)
    assert played["frames"] >= 40 and quiet["frames"] >= 40  # a frame every half second over 20 s and more
    assert played["vendi"] > 1.5 * quiet["vendi"] and played["move"] > 2 * quiet["move"]


def test_mapping_is_deterministic():
    cfg = VisualConfig(seed=5)
    a = _walk(LatentMapper(cfg, 128), _busy_features(cfg), 1.0)
    b = _walk(LatentMapper(cfg, 128), _busy_features(cfg), 1.0)
    assert np.array_equal(a, b)


# -- the GAN files --------------------------------------------------------------------------------

def test_generator_round_trips_through_safetensors_and_json(tmp_path):
    cfg = GanConfig(channels=(64, 32, 16), d_channels=(16, 32), tail_channels=8)
    g = Generator(cfg).eval()
    save_generator(g, tmp_path / "g.safetensors", {"note": "test"})
    meta = json.loads((tmp_path / "g.json").read_text())
    assert meta["config"]["channels"] == [64, 32, 16] and meta["note"] == "test"
    h = load_generator(tmp_path / "g.safetensors")
    z = torch.randn(2, cfg.z_dim)
    with torch.inference_mode():
        assert torch.equal(g(z), h(z))
        assert h(z).shape == (2, 3, cfg.out_size, cfg.out_size) == (2, 3, 64, 64)


def test_shipped_generator_paints_256px_frames():
    path = resolve_model("clipart-gan")
    assert path.resolve() == MODEL.resolve()
    g = load_generator(path)
    with torch.inference_mode():
        x = g(torch.randn(2, g.cfg.z_dim))
    assert x.shape == (2, 3, 256, 256) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert float(x.std()) > 0.05  # not a flat colour


def test_missing_model_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        resolve_model("no-such-model")


# -- offline renders ---------------------------------------------------------------------------------

def _phrase(start: int, n: int, spacing: float = 0.12, velocity: int = 96) -> list[Event]:
    out = []
    for k in range(n):
        t = start + int(k * spacing * S)
        out += [note_on(t, 48 + (k * 5) % 24, velocity), note_off(t + int(0.1 * S), 48 + (k * 5) % 24)]
    return out


def test_contact_sheet_is_deterministic_and_busy_moves_more_than_silence(tmp_path):
    from PIL import Image

    from livecomposer.visual.offline import iter_frames, motion, render_contact_sheet

    events = _phrase(S, 16)
    a = render_contact_sheet(events, tmp_path / "a.png", count=8, columns=4, fps=15, thumb=64)
    b = render_contact_sheet(events, tmp_path / "b.png", count=8, columns=4, fps=15, thumb=64)
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    assert Image.open(a).size == (4 * 70 + 6, 2 * 86 + 6)
    cfg = VisualConfig()
    busy = [f for _, f in iter_frames(events, cfg, fps=15, start=S, end=3 * S)]
    calm = [f for _, f in iter_frames([], cfg, fps=15, start=S, end=3 * S)]
    assert motion(busy) > 2 * motion(calm)


# -- training ------------------------------------------------------------------------------------------

@pytest.fixture()
def small_clipart(tmp_path) -> Path:
    """A dozen real, small openclipart images (quick to decode)."""
    return copy_small_clipart(tmp_path / "clipart", 12)


def test_training_writes_grids_checkpoints_and_resumes(tmp_path, small_clipart):
    from livecomposer.visual.gan import FastGanConfig
    from livecomposer.visual.train import TrainOptions, train

    cfg = FastGanConfig(channels=(32, 16, 8), single_conv_from=16, d_channels=(8, 16, 16), decoder_channels=(8, 8))
    opts = TrainOptions(out=tmp_path / "run", pack=tmp_path / "cache" / "pack.npz", export=tmp_path / "g.safetensors", minutes=0.01,
                        batch=4, root=small_clipart, categories=None, device="cpu", progress=False, calibration_batches=1)
    first = train(opts, cfg)
    assert first["images"] >= 8 and first["steps"] > 0
    assert (tmp_path / "run" / "samples" / "epoch-001.png").exists()
    g = load_generator(tmp_path / "g.safetensors")
    assert g.cfg == cfg and g(torch.randn(1, cfg.z_dim)).shape == (1, 3, 32, 32)
    second = train(TrainOptions(**{**opts.__dict__, "minutes": 0.02}), cfg)  # resumes with a bigger budget
    assert second["steps"] > first["steps"] and second["epochs"] > first["epochs"]


def test_train_visual_export_only_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    from livecomposer.cli import main

    assert main(["train-visual", "--export-only", "--out", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_visual_command_rejects_a_bad_key_with_a_suggestion(capsys):
    from livecomposer.cli import main

    assert main(["visual", "--sheet", "unused.png", "--set", "puls=2"]) == 2
    assert "puls: unknown key (did you mean 'pulse'?)" in capsys.readouterr().err


def test_register_alone_moves_the_picture():
    """The same pitch classes three octaves apart: only the register differs."""
    cfg = VisualConfig()

    def final_z(octave: int) -> np.ndarray:
        tracker = F.FeatureTracker(cfg)
        mapper = LatentMapper(cfg, 128)
        z = None
        for k in range(30):
            t = int(k * S / 10)
            tracker.update([note_on(t, 12 * octave + (0, 4, 7)[k % 3], 80)], [], t)
            z = mapper.step(F.decayed(tracker.vec, t, tracker.tau), 0.1)
        return z

    low, high = final_z(2), final_z(7)
    assert np.linalg.norm(low - high) > 0.1 * np.sqrt(128)


def test_bench_measures_the_generator():
    from livecomposer.bench.visual import generator_frames

    found = {m.name: m for m in generator_frames(5)}
    assert set(found) == {"visual.generator.256", "visual.generator.256.cpu", "visual.jpeg.256"}
    assert all(m.n == 5 and m.median_us > 0 for m in found.values())
    assert "fps" in found["visual.generator.256"].note
