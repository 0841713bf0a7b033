"""The training images: Debian's public-domain ``openclipart-png`` set, prepared once.

Decoding thousands of PNGs of all sizes takes CPU-minutes, so :func:`prepare` does it once
and keeps the result in one small ``.npz`` "pack" (git-ignored, under ``cache/``): every
image is cropped to its opaque area, fitted into a square (aspect kept, centred, small
margin), kept as RGBA so that training can composite it onto a fresh background each
time it is drawn, and stored as a 256-colour PNG (no dithering, which would add
pixel-level noise the generator would then have to learn).  A pack of 3,000 images at
256 px is about 16 MB, small enough to travel to a GPU machine with the code.

Which images: by default the ``computer`` (icons) and ``signs_and_symbols`` (mostly flags
and pictograms) folders.  They are centred, bold, flat-coloured pictures in a few
consistent styles, which a small GAN trained for minutes learns to paint recognisably.
The whole set is dominated by ``shapes``, about 1,300 near-identical grey spirograph
rings, which pulled the previous generator towards grey blobs.  Duplicate files (the
package ships some twice) are dropped by content hash; images whose opaque area is
under 64 px on its long side are dropped too (blown up 4x they would only be blur).
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CLIPART_DIR = Path("/usr/share/openclipart/png")
CATEGORIES = ("computer", "signs_and_symbols")
MIN_SOURCE_PX = 64


def list_images(root: Path = CLIPART_DIR, categories: tuple[str, ...] | None = CATEGORIES) -> list[Path]:
    """PNG files under ``root`` (only the given top-level folders; None: all), sorted,
    without byte-identical duplicates."""
    seen: set[str] = set()
    out: list[Path] = []
    folders = [root / c for c in categories] if categories else [root]
    for folder in folders:
        for path in sorted(folder.rglob("*.png")):
            digest = hashlib.md5(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                out.append(path)
    return out


def load_rgba(path: Path, size: int, margin: float = 0.06, min_source: int = 0) -> np.ndarray | None:
    """One image as ``(size, size, 4)`` uint8: fitted into the square with a small margin,
    transparent around it.  None for files PIL cannot read, that are empty, or whose
    opaque area is smaller than ``min_source`` pixels on its long side."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGBA")
            bbox = im.getchannel("A").getbbox()
            if bbox is None:
                return None
            im = im.crop(bbox)
            w, h = im.size
            if max(w, h) < min_source:
                return None
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


def encode_png(rgba: np.ndarray) -> bytes:
    """A 256-colour, undithered PNG of one RGBA image (about 5 KB at 256 px for clipart)."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return out.getvalue()


def prepare(pack: Path, size: int = 256, root: Path = CLIPART_DIR, categories: tuple[str, ...] | None = CATEGORIES,
            limit: int | None = None, progress: bool = True) -> Path:
    """Write the pack (PNG bytes, offsets, folder names) if it is not there; returns its path.

    A pack already there must have been made from the same folders: training on a pack
    of other pictures than the ones asked for would go unnoticed for hours."""
    pack = Path(pack)
    if pack.exists():
        made_from = pack_categories(pack)
        if made_from != (tuple(categories) if categories else None):
            raise RuntimeError(f"{pack}: made from the folders {made_from or 'all'}, not {categories or 'all'}; "
                               "give another --pack, or delete this one")
        return pack
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no clipart images (apt-get install openclipart-png)")
    paths = list_images(root, categories)
    if limit:
        rng = np.random.default_rng(0)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), size=min(limit, len(paths)), replace=False))]
    iterator = paths
    if progress:
        from tqdm import tqdm

        iterator = tqdm(paths, desc=f"clipart {size}px", unit="img")
    blobs: list[bytes] = []
    folders: list[str] = []
    for path in iterator:
        rgba = load_rgba(path, size, min_source=MIN_SOURCE_PX)
        if rgba is not None:
            blobs.append(encode_png(rgba))
            folders.append(path.relative_to(root).parts[0] if path.is_relative_to(root) else "")
    if not blobs:
        raise FileNotFoundError(f"{root}: no usable images in {categories}")
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    pack.parent.mkdir(parents=True, exist_ok=True)
    tmp = pack.with_suffix(".tmp.npz")
    np.savez(tmp, png=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets, folders=np.array(folders), size=np.int64(size),
             categories=np.array(list(categories) if categories else [], dtype=str))
    tmp.replace(pack)
    log.info("%s: %d images (%d files looked at), %.1f MB", pack, len(blobs), len(paths), pack.stat().st_size / 1e6)
    return pack


def pack_categories(pack: Path) -> tuple[str, ...] | None:
    """The folders a pack was made from (None: all of them).  Packs from before this was
    recorded were made from the default folders."""
    with np.load(pack) as data:
        if "categories" not in data.files:
            return CATEGORIES
        return tuple(str(c) for c in data["categories"]) or None


def load_pack(pack: Path, size: int | None = None) -> np.ndarray:
    """The pack's images as ``(n, size, size, 4)`` uint8 (resized with area averaging
    when ``size`` is smaller than the pack's)."""
    from PIL import Image

    with np.load(pack) as data:
        png, offsets = data["png"], data["offsets"]
        stored = int(data["size"])
    size = size or stored
    out = np.empty((len(offsets) - 1, size, size, 4), np.uint8)
    for i in range(len(offsets) - 1):
        im = Image.open(io.BytesIO(png[offsets[i]:offsets[i + 1]].tobytes())).convert("RGBA")
        if size != stored:
            im = im.resize((size, size), Image.BOX)
        out[i] = np.asarray(im)
    return out


def composite(rgba, generator=None):
    """Augment a batch of RGBA uint8 images ``(n, s, s, 4)`` (a torch tensor, on any
    device) into float ``(n, 3, s, s)`` in [-1, 1]: each on a random solid background
    (any hue, saturation 0.1-0.6, value 0.3-0.95: clean and varied grounds, so that the
    generator paints the object and the music can tint the ground), flipped
    horizontally half the time.  Shifts and colour changes belong to DiffAugment, which
    the discriminator sees on real and generated images alike."""
    import torch

    n = rgba.shape[0]
    dev = rgba.device
    x = rgba.permute(0, 3, 1, 2).float().div_(255.0)
    flip = torch.rand(n, device=dev, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    hue = torch.rand(n, device=dev, generator=generator)
    sat = 0.1 + 0.5 * torch.rand(n, device=dev, generator=generator)
    val = 0.3 + 0.65 * torch.rand(n, device=dev, generator=generator)
    bg = hsv_to_rgb(hue, sat, val)[:, :, None, None]
    alpha = x[:, 3:4]
    rgb = x[:, :3] * alpha + bg * (1.0 - alpha)
    return rgb.mul_(2.0).sub_(1.0)


def hsv_to_rgb(h, s, v):
    """``(n,)`` tensors in [0, 1] -> ``(n, 3)`` RGB in [0, 1]."""
    import torch

    k = torch.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], 1)
    return v[:, None] - (v * s)[:, None] * torch.clamp(torch.minimum(k, 4 - k), 0, 1)
