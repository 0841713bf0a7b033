"""Offline renders: the same painter, driven by a list of events on a fixed frame clock.

Deterministic (seeded mapper, one torch thread, fixed frame times), so a demo's contact
sheet is reproducible and tests can compare renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..kernel.events import PERFORMER, Event, sorted_events
from . import features as F
from .config import VisualConfig

NS = 1_000_000_000


def span(events: Sequence[Event], tail_s: float = 2.0) -> tuple[int, int]:
    """Default render window: half a second before the first event to ``tail_s`` after the last."""
    times = [e.time for e in events]
    start = (min(times) if times else 0) - NS // 2
    return start, (max(times) if times else start) + int(tail_s * NS)


def iter_frames(events: Sequence[Event], cfg: VisualConfig | None = None, fps: float = 30.0,
                start: int | None = None, end: int | None = None, tail_s: float = 2.0,
                only: set[int] | None = None, plans: Sequence[tuple[int, str, object]] = (),
                tempo: object = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(time_ns, frame)`` for each frame from ``start`` to ``end`` (default: :func:`span`).

    With ``only``, the latent still walks through every frame (so the result is the same)
    but only the look's state advances there: only those frame numbers are painted and
    yielded (the look's trails then start afresh in each).  ``plans``: the engine's plan
    log of the session (:class:`~.notes.SessionLog`), for the overlay's planned notes;
    ``tempo``: the session's tempo (on the events' clock), for the look's beat pulse."""
    import torch

    from .notes import BoardReplay
    from .renderer import FramePainter

    torch.set_num_threads(1)
    cfg = cfg or VisualConfig()
    events = sorted_events(events)
    default_start, default_end = span(events, tail_s)
    start = default_start if start is None else start
    end = default_end if end is None else end
    painter = FramePainter(cfg)
    tracker = F.FeatureTracker(cfg)
    tracker.vec[F.STAMP] = start
    board = BoardReplay(events, plans)
    step = NS / fps
    i = 0
    n = 0
    while True:
        t = int(start + n * step)
        if t > end:
            break
        batch = []
        while i < len(events) and events[i].time <= t:
            batch.append(events[i])
            i += 1
        if batch:
            tracker.update([e for e in batch if e.voice == PERFORMER], [e for e in batch if e.voice != PERFORMER], batch[-1].time)
        if tempo is not None:
            tracker.beat(tempo, t, t)
        feats = F.decayed(tracker.vec, t, tracker.tau)
        z = painter.mapper.step(feats, 1.0 / fps)
        notes = board.until(t).vector()
        if only is None or n in only:
            yield t, painter.compose(z, feats, 1.0 / fps, t / NS, notes)
        elif only is not None:
            painter.look.follow(feats, 1.0 / fps, t / NS)
        n += 1


def render_frames(events: Sequence[Event], frames_dir: Path, cfg: VisualConfig | None = None, fps: float = 30.0) -> list[Path]:
    """Write every frame as ``frame-000000.png`` in ``frames_dir``."""
    from PIL import Image

    frames_dir = Path(frames_dir)
    frames_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, (_, frame) in enumerate(iter_frames(events, cfg, fps)):
        path = frames_dir / f"frame-{n:06d}.png"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def render_contact_sheet(events: Sequence[Event], path: Path, cfg: VisualConfig | None = None, count: int = 16,
                         columns: int = 4, fps: float = 30.0, thumb: int = 192, tempo: object = None) -> Path:
    """A PNG grid of ``count`` frames spread evenly over the performance, with their times.

    Raises ``FileNotFoundError`` if the visual model is not installed."""
    from PIL import Image, ImageDraw

    start, end = span(events)
    total = int((end - start) // (NS / fps)) + 1
    picks = sorted(set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist()))
    frames = list(iter_frames(events, cfg, fps, start=start, end=end, only=set(picks), tempo=tempo))
    rows = (len(frames) + columns - 1) // columns
    gap, label = 6, 16
    sheet = Image.new("RGB", (columns * (thumb + gap) + gap, rows * (thumb + gap + label) + gap), (12, 12, 12))
    draw = ImageDraw.Draw(sheet)
    for k, (t, frame) in enumerate(frames):
        r, c = divmod(k, columns)
        x, y = gap + c * (thumb + gap), gap + r * (thumb + gap + label)
        sheet.paste(Image.fromarray(frame).resize((thumb, thumb), Image.BILINEAR), (x, y))
        draw.text((x + 2, y + thumb + 2), f"{(t - start) / NS:5.2f} s", fill=(180, 180, 180))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def motion(frames: Sequence[np.ndarray]) -> float:
    """Mean absolute difference between consecutive frames (0..255): how much the picture moves."""
    if len(frames) < 2:
        return 0.0
    a = np.stack([f.astype(np.float32) for f in frames])
    return float(np.abs(np.diff(a, axis=0)).mean())


def variety(events: Sequence[Event], cfg: VisualConfig | None = None, every_s: float = 0.5, apart_s: float = 4.0,
            fps: float = 30.0) -> dict:
    """How varied the pictures over a performance are: a frame every ``every_s`` (the walk
    still steps at ``fps``), painted without the stage look (its palette, mirror, trails and
    fades would dress up one picture as many), described by the project's feature network.
    ``vendi``: the effective number of distinct pictures among them
    (:func:`.quality.vendi_score`; a run of random latents of the shipped generator gives
    about 6 for 80 frames); ``move``: the mean cosine distance between the features of frames
    ``apart_s`` apart (0: the same picture)."""
    import torch

    from .look import LookConfig
    from .quality import features, load_encoder, unit_rows, vendi_score

    cfg = (cfg or VisualConfig()).with_(look=LookConfig(palette="none", mirror="none", trails=0.0, pulse=0.0, fade=False))
    start, end = span(events)
    total = int((end - start) // (NS / fps)) + 1
    step = max(1, round(every_s * fps))
    frames = [frame for _, frame in iter_frames(events, cfg, fps, start=start, end=end, only=set(range(0, total, step)))]
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    f = features(load_encoder(), x)
    unit = unit_rows(f)
    lag = max(1, round(apart_s / every_s))
    move = float((1.0 - (unit[lag:] * unit[:-lag]).sum(1)).mean()) if len(unit) > lag else 0.0
    return {"frames": len(frames), "vendi": round(vendi_score(f), 2), "move": round(move, 3)}


def render_video(events: Sequence[Event], stem: Path, cfg: VisualConfig | None = None, fps: float = 30.0,
                 plans: Sequence[tuple[int, str, object]] = (), audio: Path | None = None, start: int = 0,
                 end: int | None = None, tempo: object = None) -> Path:
    """A video of the frames from ``start`` (default 0, where a session's WAV starts, so the
    sound lines up) to ``end`` (default two seconds after the last event): ``stem``.mp4
    through ffmpeg, else ``stem``.webp (see :mod:`.video`)."""
    from .video import write_video

    frames = (frame for _, frame in iter_frames(events, cfg, fps, start=start, end=end, plans=plans, tempo=tempo))
    return write_video(frames, stem, fps, audio)
