"""Painting frames: the generator driven by the latent mapper, live (in its own process) or offline.

:class:`FramePainter` turns (faded) features into one RGB frame: the generator's picture,
the stage look over it (:mod:`.look`), and the notes overlay when it is on
(:mod:`.overlay`).  It is the same code for the live renderer and for offline renders,
which makes offline renders a faithful preview.  :func:`renderer_main` is the entry point
of the visualizer process (started with ``spawn``): one torch thread, a frame loop at the
configured rate that reads only the newest features, look and notes from their
mailboxes, and the web server thread that pushes JPEG frames.
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path

import numpy as np

from .. import paths
from . import features as F
from . import notes as N
from .config import VisualConfig
from .look import VECTOR_SIZE as LOOK_SIZE
from .look import LookConfig
from .mailbox import SeqlockBox

log = logging.getLogger(__name__)

# -- status box layout (written by the renderer, read by the engine side) -------------------
ST_READY, ST_PORT, ST_FRAMES, ST_FPS, ST_FRAME_MS, ST_PID, ST_LAST_NS, ST_CLIENTS, ST_SENT, ST_FAILED = range(10)
STATUS_SIZE = 10
RENDERER_NICE = 5
#: Frames the renderer may fall behind its schedule and still make up (painting the next at
#: once): the page holds two decoded frames and shows one per display refresh, so a frame
#: late by up to two periods still reaches the screen in its turn; further behind, the
#: schedule starts again from now (no burst).
CATCH_UP = 2


def resolve_model(name: str) -> Path:
    """A model name (``clipart-gan``: ``clipart-gan.safetensors`` in $LIVECOMPOSER_MODELS,
    ./models or the shipped models) or a path; the generator needs its JSON beside it."""
    path = Path(name)
    candidates = [path, path.with_suffix(".safetensors")] if path.suffix != ".safetensors" else [path]
    file = name if name.endswith(".safetensors") else f"{name}.safetensors"
    try:
        named = paths.find_in(paths.model_dirs(), file)
    except ValueError:  # a name may not climb out of its models folder
        named = None
    if named is not None:
        candidates.append(named)
    for candidate in candidates:
        if candidate.suffix == ".safetensors" and candidate.is_file() and candidate.with_suffix(".json").is_file():
            return candidate
    tried = ", ".join(str(d) for d in paths.model_dirs())
    raise FileNotFoundError(f"visual model {name!r} not found (looked for {file} in {tried}; train one with `livecomposer train-visual`)")


class FramePainter:
    """Features in, RGB uint8 frame (size x size x 3) out."""

    def __init__(self, cfg: VisualConfig) -> None:
        import torch

        from .gan import load_generator
        from .look import Look
        from .mapping import LatentMapper
        from .overlay import Overlay

        self.torch = torch
        self.cfg = cfg
        self.generator = load_generator(resolve_model(cfg.model)).to(memory_format=torch.channels_last)
        self.mapper = LatentMapper(cfg, self.generator.cfg.z_dim)
        self.tau = F.time_constants(cfg)
        self.look = Look(cfg.look, cfg.size)
        self.overlay = Overlay()
        self.clock_s = 0.0  # frame clock when the caller gives no time

    def paint(self, feats: np.ndarray, dt: float, now_s: float | None = None, notes: np.ndarray | None = None) -> np.ndarray:
        """The next frame: ``feats`` faded to ``now_s`` (seconds, monotonic; default: a frame
        clock advanced by ``dt``), ``notes`` the note table for the overlay."""
        return self.compose(self.mapper.step(feats, dt), feats, dt, now_s, notes)

    def compose(self, z: np.ndarray, feats: np.ndarray, dt: float, now_s: float | None = None, notes: np.ndarray | None = None) -> np.ndarray:
        """The frame for latent ``z``: generator, brightness, stage look, overlay."""
        torch = self.torch
        if now_s is None:
            self.clock_s += dt
            now_s = self.clock_s
        with torch.inference_mode():
            x = self.generator(torch.from_numpy(z)[None])
            if x.shape[-1] != self.cfg.size:
                x = torch.nn.functional.interpolate(x, size=(self.cfg.size, self.cfg.size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > self.cfg.size)
            x = ((x[0] + 1.0) * (0.5 * self.mapper.brightness)).clamp_(0, 1)
            x = self.look.apply(x, feats, dt, now_s)
            frame = (x * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        look = self.look.cfg
        if look.overlay and notes is not None:
            self.overlay.draw(frame, notes.reshape(N.CAPACITY, N.COLUMNS), now_s, look.overlay_s, dt)
        return frame


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(frame).save(out, "JPEG", quality=quality)
    return out.getvalue()


def renderer_main(config: dict, features_name: str, status_name: str, control_name: str, look_name: str, notes_name: str) -> None:
    """The visualizer process: paint at ``fps`` until told to stop (or orphaned)."""
    import signal

    import torch

    # Ctrl-C in the terminal reaches the whole process group: the engine side decides when
    # the visuals stop (the control flag), so a keyboard interrupt must not kill a frame midway.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    try:
        os.nice(RENDERER_NICE)  # the music comes first: on a busy CPU, frames give way to MIDI timing
    except OSError:
        pass
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s visual: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    cfg = VisualConfig(**config)
    features_box = SeqlockBox(F.SIZE, features_name)
    status_box = SeqlockBox(STATUS_SIZE, status_name)
    control = SeqlockBox(1, control_name)
    look_box = SeqlockBox(1 + LOOK_SIZE, look_name)  # [scene, look...]: knobs, OSC, preset changes
    notes_box = SeqlockBox(N.SIZE, notes_name)
    status = np.zeros(STATUS_SIZE)
    status[ST_PID] = os.getpid()
    parent = os.getppid()
    try:
        painter = FramePainter(cfg)
        from .server import FrameServer

        server = FrameServer(cfg.host, cfg.port)
        status[ST_PORT] = server.start()
    except OSError as exc:  # the port is taken, the host is not ours, the model is unreadable
        log.error("visuals cannot start: %s", exc)
        status[ST_FAILED] = 1
        status_box.write(status)
        raise SystemExit(2) from None
    except Exception:
        status[ST_FAILED] = 1
        status_box.write(status)
        raise
    status[ST_READY] = 1
    status_box.write(status)
    print(f"visuals: http://{cfg.host}:{int(status[ST_PORT])}/", flush=True)
    frames_dir = Path(cfg.frames_dir) if cfg.frames_dir else None
    if frames_dir:
        frames_dir.mkdir(parents=True, exist_ok=True)
    period = 1e9 / cfg.fps
    next_ns = time.monotonic_ns()
    last_ns = next_ns
    frame_ms: list[float] = []
    stamps: list[int] = []
    n = 0
    look_seq = look_box.sequence
    scene = 0.0
    try:
        while control.read()[0] == 0:
            now = time.monotonic_ns()
            feats = F.decayed(features_box.read(), now, painter.tau)
            t0 = time.perf_counter()
            if look_box.sequence != look_seq:
                look_seq = look_box.sequence
                values = look_box.read()
                painter.look.configure(LookConfig.from_vector(values[1:]), crossfade=values[0] != scene)
                scene = values[0]
            frame = painter.paint(feats, (now - last_ns) / 1e9, now / 1e9, notes_box.read() if painter.look.cfg.overlay else None)
            server.publish(encode_jpeg(frame, cfg.jpeg_quality))
            frame_ms.append((time.perf_counter() - t0) * 1000)
            last_ns = now
            if frames_dir:
                from PIL import Image

                Image.fromarray(frame).save(frames_dir / f"frame-{n:06d}.png", compress_level=1)
            n += 1
            stamps.append(now)
            while stamps and now - stamps[0] > 1_000_000_000:
                stamps.pop(0)
            if len(frame_ms) > 120:
                del frame_ms[:60]
            status[ST_FRAMES] = n
            status[ST_FPS] = len(stamps)
            status[ST_FRAME_MS] = float(np.median(frame_ms))
            status[ST_LAST_NS] = now
            status[ST_CLIENTS] = server.clients
            status[ST_SENT] = server.sent
            status_box.write(status)
            server.stats_extra = {"rendered": n, "fps": len(stamps), "frame_ms": round(status[ST_FRAME_MS], 2)}
            if n % 64 == 0 and os.getppid() != parent:
                break  # the engine's process is gone: do not linger
            next_ns += period
            wait = next_ns - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            elif wait < -CATCH_UP * period:
                next_ns = time.monotonic_ns()  # far behind: start again from now, no burst
    finally:
        server.stop()
