"""A short video of the visuals: H.264 MP4 through Debian's ``ffmpeg``, or an animated WebP
through Pillow where ffmpeg is missing.

Frames are streamed to ffmpeg's stdin as raw RGB, so a long render never sits in memory;
the WebP fallback has to hold its frames, so it keeps every other one.  With ``audio``
(the session's WAV) the MP4 carries the sound, so the pictures can be judged against the music.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable

import numpy as np

VIDEO_SCALE = 2  # players show a 256 px video as a stamp; double it (bicubic), like the page does


def write_video(frames: Iterable[np.ndarray], stem: Path, fps: float, audio: Path | None = None) -> Path:
    """Writes ``stem``.mp4 (ffmpeg) or ``stem``.webp (Pillow) from uint8 RGB frames; returns the path."""
    ffmpeg = shutil.which("ffmpeg")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if ffmpeg is None:
        return _webp(frames, stem.with_suffix(".webp"), fps)
    return _mp4(ffmpeg, frames, stem.with_suffix(".mp4"), fps, audio)


def _mp4(ffmpeg: str, frames: Iterable[np.ndarray], path: Path, fps: float, audio: Path | None) -> Path:
    it = iter(frames)
    first = next(it)
    h, w = first.shape[:2]
    command = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{w}x{h}", "-r", f"{fps:g}", "-i", "-"]
    if audio is not None and Path(audio).is_file():
        command += ["-i", str(audio), "-c:a", "aac", "-b:a", "160k", "-shortest"]
    command += ["-vf", f"scale={w * VIDEO_SCALE}:{h * VIDEO_SCALE}:flags=bicubic", "-c:v", "libx264", "-preset", "veryfast",
                "-crf", "18", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(path)]
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg's messages cannot fill it and stall us
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=errors)
        assert process.stdin is not None
        try:
            process.stdin.write(np.ascontiguousarray(first).tobytes())
            for frame in it:
                process.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            pass
        finally:
            process.stdin.close()
            process.wait()
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"ffmpeg failed ({process.returncode}): {errors.read().decode(errors='replace').strip()[-400:]}")
    return path


def _webp(frames: Iterable[np.ndarray], path: Path, fps: float) -> Path:
    from PIL import Image

    kept = [Image.fromarray(f) for k, f in enumerate(frames) if k % 2 == 0]
    if not kept:
        raise ValueError("no frames to write")
    kept[0].save(path, save_all=True, append_images=kept[1:], duration=int(round(2000 / fps)), loop=0, quality=80, method=4)
    return path
