"""The training images: Debian's public-domain ``openclipart-png`` set, prepared once.

Decoding thousands of PNGs of all sizes takes CPU-minutes, so :func:`prepare` does it once
and caches the result as a small ``.npz`` under ``cache/`` (git-ignored): every image is
fitted into a square (aspect kept, centred), kept as RGBA so that training can composite
it onto a fresh random background each time it is drawn (augmentation), and duplicate
files (the package ships some twice) are dropped by content hash.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CLIPART_DIR = Path("/usr/share/openclipart/png")


def list_images(root: Path = CLIPART_DIR) -> list[Path]:
    """All PNG files under ``root``, sorted, without byte-identical duplicates."""
    seen: set[str] = set()
    out: list[Path] = []
    for path in sorted(root.rglob("*.png")):
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(path)
    return out


def load_rgba(path: Path, size: int, margin: float = 0.06) -> np.ndarray | None:
    """One image as ``(size, size, 4)`` uint8: fitted into the square with a small margin,
    transparent around it.  None for files PIL cannot read or that are empty."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGBA")
            bbox = im.getchannel("A").getbbox()
            if bbox is None:
                return None
            im = im.crop(bbox)
            w, h = im.size
            inner = max(1, int(round(size * (1.0 - 2 * margin))))
            scale = inner / max(w, h)
            nw, nh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
            im = im.resize((nw, nh), Image.LANCZOS, reducing_gap=3.0)
            canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
            canvas.paste(im, ((size - nw) // 2, (size - nh) // 2))
            return np.asarray(canvas, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # odd files: skip, say so
        log.warning("skipping %s: %s", path, exc)
        return None


def prepare(cache: Path, size: int = 64, root: Path = CLIPART_DIR, limit: int | None = None, progress: bool = True) -> np.ndarray:
    """The RGBA image array ``(n, size, size, 4)``, from ``cache`` if it is there."""
    cache = Path(cache)
    if cache.exists():
        with np.load(cache) as data:
            return data["images"]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no clipart images (apt-get install openclipart-png)")
    paths = list_images(root)
    if limit:
        rng = np.random.default_rng(0)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), size=min(limit, len(paths)), replace=False))]
    iterator = paths
    if progress:
        from tqdm import tqdm

        iterator = tqdm(paths, desc=f"clipart {size}px", unit="img")
    images = [a for a in (load_rgba(p, size) for p in iterator) if a is not None]
    array = np.stack(images)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, images=array)
    tmp.replace(cache)
    return array


def composite(rgba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Augment a batch ``(n, s, s, 4)`` uint8 into float ``(n, 3, s, s)`` in [-1, 1]:
    random background colour, horizontal flip, small shift."""
    n, s = rgba.shape[0], rgba.shape[1]
    x = rgba.astype(np.float32) / 255.0
    flip = rng.random(n) < 0.5
    x[flip] = x[flip, :, ::-1]
    # a random background colour per image, from a wide range of hues and brightness
    hue = rng.random(n)
    sat = rng.uniform(0.15, 0.75, n)
    val = rng.uniform(0.12, 0.95, n)
    bg = _hsv_to_rgb(hue, sat, val).astype(np.float32)[:, None, None, :]
    alpha = x[..., 3:4]
    rgb = x[..., :3] * alpha + bg * (1.0 - alpha)
    shift = rng.integers(-s // 16, s // 16 + 1, size=(n, 2))
    for i in range(n):
        rgb[i] = np.roll(rgb[i], tuple(shift[i]), axis=(0, 1))
    return np.ascontiguousarray(rgb.transpose(0, 3, 1, 2) * 2.0 - 1.0)


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6.0).astype(int) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack([
        np.stack([v, t, p], 1), np.stack([q, v, p], 1), np.stack([p, v, t], 1),
        np.stack([p, q, v], 1), np.stack([t, p, v], 1), np.stack([v, p, q], 1),
    ], 0)
    return table[i, np.arange(len(h))]
