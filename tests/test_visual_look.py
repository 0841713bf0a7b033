"""The stage look, the notes overlay and the demo video, on real frames of the shipped generator
(no browser): each option validates, and each one visibly changes the frames."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from livecomposer.kernel.clock import ManualClock
from livecomposer.kernel.engine import Engine
from livecomposer.kernel.events import Kind, note_off, note_on
from livecomposer.kernel.plugin import Param, Plugin
from livecomposer.ports.memory import MemoryOutput
from livecomposer.visual import features as F
from livecomposer.visual import notes as N
from livecomposer.visual.config import VisualConfig, parse_visual
from livecomposer.visual.look import LookConfig, parse_look, set_live

S = 1_000_000_000
MS = 1_000_000
PLAIN = LookConfig(trails=0.0, feedback=0.0, palette="none", pulse=0.0, fade=False)


# -- the preset section -------------------------------------------------------------------------

def test_look_section_reads_the_documented_example():
    cfg = parse_visual({"look": {"trails": 0.6, "mirror": "kaleido4", "palette": "harmony", "pulse": True, "fade": True}})
    assert (cfg.look.trails, cfg.look.mirror, cfg.look.palette, cfg.look.pulse, cfg.look.fade) == (0.6, "kaleido4", "harmony", 1.0, True)
    assert parse_visual({}).look == LookConfig() and LookConfig().overlay is False  # no notes on stage unless asked
    assert parse_look({"pulse": False}).pulse == 0.0


@pytest.mark.parametrize("look, message", [
    ({"trials": 0.5}, "look.trials: unknown key (did you mean 'trails'?)"),
    ({"trails": 1.5}, "look.trails: must be between 0 and 0.95"),
    ({"mirror": "kaleido5"}, "look.mirror: must be one of none, horizontal"),
    ({"fade": "yes"}, "look.fade: must be true or false"),
    ({"tint": "strong"}, "look.tint: must be a number"),
])
def test_look_errors_name_the_key(look, message):
    with pytest.raises(ValueError) as err:
        parse_visual({"look": look})
    assert str(err.value).startswith(message)


def _preset(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("name: p\ngraph:\n  - plugin: thru\n" + extra)
    return path


def test_a_bad_look_in_a_preset_file_points_at_its_line(tmp_path):
    from livecomposer.app.presets import PresetError, load_preset

    path = _preset(tmp_path, "visual:\n  enabled: true\n  look:\n    trails: 0.5\n    mirror: kaleido9\n")
    with pytest.raises(PresetError) as err:
        load_preset(path)
    text = str(err.value)
    assert f"{path}:8" in text and "visual.look.mirror" in text and "kaleido4" in text


def test_knobs_map_to_the_look_and_are_checked(tmp_path):
    from livecomposer.app.presets import PresetError, load_preset

    preset = load_preset(_preset(tmp_path, "controls:\n  - {cc: 30, to: visual.trails, range: [0, 0.9]}\n  - {cc: 31, to: visual.mirror}\n"))
    trails, mirror = preset.controls
    assert trails.to == "visual.trails" and trails.scale(127) == pytest.approx(0.9)
    assert mirror.scale(127) == 1.0
    with pytest.raises(PresetError, match="no knob 'trials' .*did you mean 'trails'"):
        load_preset(_preset(tmp_path, "controls:\n  - {cc: 30, to: visual.trials}\n"))
    with pytest.raises(PresetError, match="outside the limits of visual.trails"):
        load_preset(_preset(tmp_path, "controls:\n  - {cc: 30, to: visual.trails, range: [0, 2]}\n"))


def test_live_values_sweep_choices_and_clamp_ranges():
    cfg = LookConfig()
    assert set_live(cfg, "mirror", 0.0).mirror == "none" and set_live(cfg, "mirror", 1.0).mirror == "kaleido8"
    assert set_live(cfg, "mirror", "quad").mirror == "quad"
    assert set_live(cfg, "trails", 5).trails == 0.95
    assert set_live(cfg, "overlay", 0.7).overlay is True and set_live(cfg, "fade", False).fade is False
    assert LookConfig.from_vector(set_live(cfg, "mirror", "kaleido6").vector()).mirror == "kaleido6"
    with pytest.raises(ValueError, match="not a look parameter"):
        set_live(cfg, "seed", 1)


# -- frames -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def make_painter():
    import torch

    from livecomposer.visual.renderer import FramePainter

    torch.set_num_threads(1)
    return lambda look: FramePainter(VisualConfig(look=look))


def _playing(pcs=(0, 4, 7), t: float = 1.0, velocity: int = 100) -> np.ndarray:
    tracker = F.FeatureTracker(VisualConfig())
    at = int(t * S)
    tracker.update([note_on(at, 60 + pc, velocity) for pc in pcs], [], at)
    return F.decayed(tracker.vec, at + 50 * MS, tracker.tau)


def _z(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(128).astype(np.float32)


def test_mirrors_make_the_frame_symmetric(make_painter):
    feats = _playing()
    plain = make_painter(PLAIN).compose(_z(), feats, 1 / 60, 1.0).astype(int)
    assert np.abs(plain - plain[:, ::-1]).mean() > 5  # the picture itself is not symmetric
    h = make_painter(replace(PLAIN, mirror="horizontal", pulse=1.0)).compose(_z(), feats, 1 / 60, 1.0)
    assert np.array_equal(h, h[:, ::-1])
    q = make_painter(replace(PLAIN, mirror="quad")).compose(_z(), feats, 1 / 60, 1.0)
    assert np.array_equal(q, q[::-1]) and np.array_equal(q, q[:, ::-1])
    k = make_painter(replace(PLAIN, mirror="kaleido4")).compose(_z(), feats, 1 / 60, 1.0).astype(int)
    turned = np.abs(k - np.rot90(k)).mean()
    assert turned < 2.0 < np.abs(plain - np.rot90(plain)).mean()  # four-fold: a quarter turn maps it onto itself


def test_fade_goes_black_after_the_music_stops_and_comes_back_on_the_first_note():
    from livecomposer.visual.offline import iter_frames

    look = replace(LookConfig(), fade_after_s=1.0, fade_s=1.0)
    events = [note_on(S, 60, 100), note_off(S + 300 * MS, 60), note_on(6 * S, 67, 100), note_off(6 * S + 300 * MS, 67)]
    frames = dict(iter_frames(events, VisualConfig(look=look), fps=10, start=0, end=7 * S))
    level = {t / S: float(f.mean()) for t, f in frames.items()}
    assert level[0.5] < 1.0  # nothing played yet: black
    assert level[1.5] > 20  # the first note brings the picture
    assert level[5.0] < 1.0 and frames[5 * S].max() <= 2  # silence for longer than fade_after_s + fade_s
    assert level[6.2] > 20  # back within a fraction of a second of the next note


def test_the_palette_follows_the_harmony(make_painter):
    look = replace(PLAIN, palette="harmony", tint=1.0)
    c = make_painter(look).compose(_z(), _playing((0, 4, 7)), 1 / 60, 1.0).reshape(-1, 3).mean(axis=0)
    fs = make_painter(look).compose(_z(), _playing((6, 10, 1)), 1 / 60, 1.0).reshape(-1, 3).mean(axis=0)
    untinted = make_painter(PLAIN).compose(_z(), _playing((0, 4, 7)), 1 / 60, 1.0).reshape(-1, 3).mean(axis=0)
    assert np.abs(c - fs).max() > 20  # C major and F# major (opposite on the circle of fifths) differ in colour
    assert np.abs(c - untinted).max() > 10


def test_neon_turns_the_luminance_around(make_painter):
    def lum(frame: np.ndarray) -> np.ndarray:
        return (frame.astype(float) @ [0.299, 0.587, 0.114]).ravel()

    feats = _playing()
    plain = lum(make_painter(PLAIN).compose(_z(), feats, 1 / 60, 1.0))
    harmony = lum(make_painter(replace(PLAIN, palette="harmony", tint=1.0)).compose(_z(), feats, 1 / 60, 1.0))
    neon = lum(make_painter(replace(PLAIN, palette="neon", tint=1.0)).compose(_z(), feats, 1 / 60, 1.0))
    assert np.corrcoef(plain, harmony)[0, 1] > 0.8 and np.corrcoef(plain, neon)[0, 1] < -0.5


def test_chords_and_keys_get_their_roots_colours():
    from livecomposer.visual.look import chord_of, fifths_hue

    def energy(*pcs):
        v = np.zeros(12)
        v[list(pcs)] = 1.0
        return v

    assert chord_of(energy(0, 4, 7))[:2] == (0, False) and chord_of(energy(9, 0, 4))[:2] == (9, True)
    assert chord_of(energy(7, 11, 2, 5))[:2] == (7, False) and chord_of(energy(7, 11, 2, 5))[2] == pytest.approx(0.75)
    assert abs(fifths_hue(7) - fifths_hue(0)) == pytest.approx(1 / 12)  # a fifth apart: neighbouring hues
    assert abs(fifths_hue(6) - fifths_hue(0)) == pytest.approx(0.5)  # a tritone: opposite


def test_pulse_swells_the_picture_on_an_onset(make_painter):
    quiet, struck = _playing(velocity=1), _playing(velocity=127)
    quiet[F.PULSE] = 0.0
    without = make_painter(replace(PLAIN, pulse=1.0)).compose(_z(), quiet, 1 / 60, 1.0).astype(float)
    with_ = make_painter(replace(PLAIN, pulse=1.0)).compose(_z(), struck, 1 / 60, 1.0).astype(float)
    assert with_.mean() > without.mean() + 5  # brighter
    assert np.abs(with_ - without).mean() > 8  # and zoomed, not only brighter


def test_trails_keep_the_previous_picture_and_a_preset_change_crossfades(make_painter):
    feats = _playing()
    a_plain = make_painter(PLAIN).compose(_z(1), feats, 1 / 60, 1.0).astype(float)
    b_plain = make_painter(PLAIN).compose(_z(2), feats, 1 / 60, 1.0).astype(float)
    trails = make_painter(replace(PLAIN, trails=0.8))
    trails.compose(_z(1), feats, 1 / 60, 1.0)
    b_trails = trails.compose(_z(2), feats, 1 / 60, 1.0 + 1 / 60).astype(float)
    assert np.abs(b_trails - a_plain).mean() < 0.8 * np.abs(b_plain - a_plain).mean()
    painter = make_painter(PLAIN)
    painter.compose(_z(1), feats, 1 / 60, 1.0)
    painter.look.configure(replace(PLAIN, crossfade_s=0.5), crossfade=True)
    mid = painter.compose(_z(2), feats, 0.25, 1.25).astype(float)
    d_a, d_b = np.abs(mid - a_plain).mean(), np.abs(mid - b_plain).mean()
    assert d_a < np.abs(b_plain - a_plain).mean() and d_b < np.abs(b_plain - a_plain).mean()  # between the two
    late = painter.compose(_z(2), feats, 0.25, 1.5)
    assert np.array_equal(late, b_plain.astype(np.uint8))  # the crossfade is over


# -- the notes overlay ------------------------------------------------------------------------------

class Planner(Plugin):
    """Answers each note with the fifth above, 500 ms later, as one cancellable plan."""

    name = "test_visual_planner"
    params = (Param("delay_ms", 500.0, 1.0, 5000.0),)

    def process(self, events, now):
        out = []
        for e in events:
            if e.kind is Kind.NOTE_ON:
                self.last_tag = tag = self.ctx.new_tag()
                at = e.time + int(self.delay_ms * MS)
                out += [note_on(at, e.note + 7, 90, channel=1, voice=self.voice, tag=tag), note_off(at + 400 * MS, e.note + 7, channel=1, voice=self.voice, tag=tag)]
            elif e.kind is Kind.CONTROL:
                self.ctx.cancel(self.last_tag)
        return out


def _session(messages, end_ms):
    from livecomposer.visual.notes import SessionLog

    log = SessionLog()
    clock = ManualClock()
    engine = Engine(Planner(), output=MemoryOutput(clock.now, "out"), clock=clock, observers=[log])
    engine.run_offline(messages, end_ms * MS)
    return log


def test_the_engine_publishes_plans_and_the_board_shows_them_before_they_sound():
    log = _session([(0, [0x90, 60, 100]), (100 * MS, [0x80, 60, 0])], 2000)
    assert [kind for _, kind, _ in log.plans][:1] == ["plan"]
    replay = N.BoardReplay(log.events, log.plans)
    rows = replay.until(200 * MS).rows
    planned = rows[rows[:, N.WHO] == N.PLANNED_NOTE]
    assert planned.shape[0] == 1 and planned[0, N.PITCH] == 67
    assert planned[0, N.ON] == pytest.approx(0.5) and planned[0, N.OFF] == pytest.approx(0.9)
    assert rows[rows[:, N.WHO] == N.PERFORMER_NOTE][0, N.OFF] == pytest.approx(0.1)
    rows = replay.until(600 * MS).rows  # the planned note went out: now it is the machine's
    assert (rows[:, N.WHO] == N.PLANNED_NOTE).sum() == 0 and (rows[:, N.WHO] == N.MACHINE_NOTE).sum() == 1


def test_a_cancelled_plan_leaves_the_board():
    log = _session([(0, [0x90, 60, 100]), (100 * MS, [0x80, 60, 0]), (200 * MS, [0xB0, 1, 5])], 2000)
    assert any(kind == "plan.cancel" for _, kind, _ in log.plans)
    rows = N.BoardReplay(log.events, log.plans).until(300 * MS).rows
    assert (rows[:, N.WHO] == N.PLANNED_NOTE).sum() == 0 and (rows[:, N.WHO] == N.MACHINE_NOTE).sum() == 0


def test_the_board_reuses_its_oldest_rows_and_keeps_the_newest_plans():
    board = N.NoteBoard()
    for k in range(3 * N.CAPACITY):  # far more notes than rows
        t = k * 0.1
        board.observe([note_on(0, 40 + k % 40, 90)], [], t)
        board.observe([note_off(0, 40 + k % 40)], [], t + 0.05)
        board.planned([note_on(S, 80, 90, voice=1, tag=k + 1), note_off(2 * S, 80, voice=1, tag=k + 1)], 0, t)
        if k % 2:
            board.cancel(k + 1)
    rows = board.rows
    assert (rows[:, N.WHO] == N.EMPTY).sum() == N.CAPACITY // 4  # the cancelled half of the plans among the newest rows
    assert (rows[:, N.WHO] == N.PLANNED_NOTE).sum() == N.CAPACITY // 4
    assert len(board._planned) <= N.CAPACITY  # pointers to reused rows are forgotten
    board.observe([], [note_on(0, 80, 90, voice=1, tag=3 * N.CAPACITY - 1)], 100.0)  # the newest uncancelled plan is played
    assert (rows[:, N.WHO] == N.MACHINE_NOTE).sum() == 1


def test_the_overlay_draws_played_and_planned_notes_in_their_colours():
    from livecomposer.visual.overlay import MACHINE_RGB, NOW_AT, Overlay

    board = N.NoteBoard()
    board.observe([note_on(0, 60, 100)], (), 9.5)
    board.planned([note_on(2 * S, 64, 90, voice=1, tag=7), note_off(2 * S + 500 * MS, 64, voice=1, tag=7)], S, 10.0)
    frame = np.zeros((256, 256, 3), np.uint8)
    Overlay().draw(frame, board.rows, 10.0, 4.0, 1 / 60)
    x_now = int(NOW_AT * 256)
    past, future = frame[:, : x_now - 2], frame[:, x_now + 2 :]
    warm = (past[..., 0] > 150) & (past[..., 2] < past[..., 0])
    cyan = (future[..., 2] > 150) & (future[..., 0] < 100)
    assert warm.sum() > 100  # the performer's note, up to the now line
    assert cyan.sum() > 40 and (future[..., 0] > 150).sum() == 0  # the planned note ahead, machine-coloured
    assert tuple(future[cyan][0]) == pytest.approx(tuple(MACHINE_RGB), abs=12)


# -- the demo video ---------------------------------------------------------------------------------

def _two_notes():
    return [note_on(0, 62, 100), note_off(300 * MS, 62), note_on(400 * MS, 69, 110, voice=1), note_off(700 * MS, 69, voice=1)]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")
def test_render_video_writes_an_mp4(tmp_path):
    import subprocess

    from livecomposer.visual.offline import render_video

    path = render_video(_two_notes(), tmp_path / "v", fps=10, end=S)
    assert path == tmp_path / "v.mp4"
    probe = subprocess.run(["ffmpeg", "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    assert "h264" in probe.stderr and "512x512" in probe.stderr


def test_without_ffmpeg_the_video_is_an_animated_webp(tmp_path, monkeypatch):
    from PIL import Image

    from livecomposer.visual import video
    from livecomposer.visual.offline import render_video

    monkeypatch.setattr(video.shutil, "which", lambda name: None)  # a machine without ffmpeg
    path = render_video(_two_notes(), tmp_path / "v", fps=10, end=S)
    assert path == tmp_path / "v.webp"
    image = Image.open(path)
    assert image.is_animated and image.n_frames == 6 and image.size == (256, 256)


# -- the commands -------------------------------------------------------------------------------------

def test_visual_command_renders_a_sheet_and_frames_of_a_midi_file_with_a_look(tmp_path, capsys):
    import mido
    from PIL import Image

    from livecomposer.cli import main

    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for k in range(8):
        track += [mido.Message("note_on", note=60 + k, velocity=100, time=0 if k == 0 else 120), mido.Message("note_off", note=60 + k, time=120)]
    midi.save(tmp_path / "in.mid")
    assert main(["visual", str(tmp_path / "in.mid"), "--sheet", str(tmp_path / "sheet.png"), "--set", "look={mirror: quad, trails: 0}"]) == 0
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    thumb = sheet[220:220 + 192, 204:204 + 192]  # the sixth thumbnail: 1.5 s in, while the notes play
    assert thumb.mean() > 10 and np.abs(thumb.astype(int) - thumb[:, ::-1]).mean() < 3  # mirrored, up to resizing
    assert main(["visual", str(tmp_path / "in.mid"), "--offline", "--frames", str(tmp_path / "frames")]) == 0
    assert "frames in" in capsys.readouterr().out and len(list((tmp_path / "frames").glob("frame-*.png"))) > 30


@pytest.mark.slow
def test_demo_writes_a_contact_sheet_and_a_video_of_the_visuals(tmp_path):
    from livecomposer.cli import main

    assert main(["demo", "--out", str(tmp_path), "--no-wav"]) == 0
    assert (tmp_path / "visuals.png").stat().st_size > 10_000
    video = tmp_path / ("visuals.mp4" if shutil.which("ffmpeg") else "visuals.webp")
    assert video.stat().st_size > 100_000


def test_the_look_pulses_on_the_tempos_beat_while_the_music_is_busy(make_painter):
    from livecomposer.kernel.tempo import Tempo

    tempo = Tempo(bpm=120.0)  # a beat every 0.5 s from 0
    tracker = F.FeatureTracker(VisualConfig())
    for k in range(8):  # busy playing, between the beats
        tracker.update([note_on(int((1.0 + 0.12 * k + 0.2) * S), 60, 60)], [], int((1.0 + 0.12 * k + 0.2) * S))

    def feats_at(t: float) -> np.ndarray:
        tracker.beat(tempo, int(t * S), int(t * S))
        feats = F.decayed(tracker.vec, int(t * S), tracker.tau)
        feats[F.PULSE] = 0.0  # the onsets' own pulse out of the way
        return feats

    look = replace(PLAIN, pulse=1.0)
    on_beat = make_painter(look).compose(_z(), feats_at(2.5), 1 / 60, 2.5).astype(float)
    off_beat = make_painter(look).compose(_z(), feats_at(2.75), 1 / 60, 2.75).astype(float)
    assert on_beat.mean() > off_beat.mean() + 4
    quiet = F.decayed(tracker.vec, 30 * S, tracker.tau)
    quiet[F.PULSE] = 0.0
    tracker.beat(tempo, 30 * S, 30 * S)
    still = make_painter(look).compose(_z(), quiet, 1 / 60, 30.0).astype(float)
    plain = make_painter(PLAIN).compose(_z(), quiet, 1 / 60, 30.0).astype(float)
    assert np.abs(still - plain).mean() < 1.0  # in silence the beat does not pulse
