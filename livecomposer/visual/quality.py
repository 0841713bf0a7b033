"""Measured image quality of the visualizer's generators: KID, coverage, diversity, checkerboard, sharpness, speed.

* **KID** (Kernel Inception Distance, Binkowski et al. 2018): the unbiased estimate of the
  squared maximum mean discrepancy between real and generated images, with the cubic
  polynomial kernel ``k(x, y) = (x.y / d + 1)^3`` on image features, averaged over random
  subsets.  No downloaded network exists here, so the features come from
  :class:`FeatureEncoder`, a small CNN that this project trains itself, on the same
  clipart, with a self-supervised contrastive task (SimCLR, Chen et al. 2020): two random
  views of one image (crop, flip, colour jitter, a different background) must map close
  together and far from the other images in the batch.  Its 256 pooled features then say
  what is in a picture, not which colour its ground is.  It sees images at 64 px, so KID
  measures content and layout; fine detail has its own two measures.
* **coverage** and **density** (Naeem et al. 2020), on the same features: coverage is the
  share of real images with a generated image inside the ball that reaches their k-th
  nearest real neighbour (what of the real pictures the generator can paint); density
  counts how many such balls the generated images fall into, over k (how real-looking
  they are).
* **diversity**: the Vendi score (Friedman and Dieng 2023) of the features, the effective
  number of distinct pictures in a draw (the exponential of the entropy of the cosine
  similarity matrix's eigenvalues), relative to an equally large draw of real images.
  Coverage and diversity say what KID's one number does not: how much of the real set a
  generator can paint, and how varied its pictures are.  A generator that has collapsed
  onto a few pictures can still score a KID as good as a varied one's; look at the
  sheets as well.
* **checkerboard**: the share of the spectral energy (FFT of the grayscale image, mean
  removed) on the Nyquist row and column, (N/2, *) and (*, N/2): a period-2 pattern, which
  is what uneven overlap in a 2x up-sampling layer paints.  Reported relative to real
  images; the same at periods 4 and 8 catches it from layers at 1/2 and 1/4 of the size.
* **sharpness**: the mean gradient magnitude of the grayscale image (finite differences).
  Reported relative to real images: a blurry generator scores well below 1.
* **speed**: one 256x256 frame at a time, one torch thread, channels-last, median and p99.

``python -m livecomposer.visual.quality train-encoder`` trains the feature network;
``python -m livecomposer.visual.quality evaluate GEN...`` prints the table;
``python -m livecomposer.visual.quality sheet GEN OUT.png`` draws real next to generated.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

ENCODER = Path(__file__).resolve().parents[2] / "models" / "clipart-features.safetensors"


# -- the measures ---------------------------------------------------------------------------------

def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between feature sets ``x`` (m, d) and ``y`` (n, d) under the cubic
    polynomial kernel ``(x.y / d + 1)^3``.  The diagonals are left out of the within-set
    sums, which is what makes it unbiased (it can dip below zero for equal sets)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 50, subset_size: int = 500, seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of :func:`polynomial_mmd2` over random subsets."""
    rng = np.random.default_rng(seed)
    size = min(subset_size, len(real), len(fake))
    values = [polynomial_mmd2(real[rng.choice(len(real), size, replace=False)], fake[rng.choice(len(fake), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage of ``fake`` against ``real`` features (Naeem et al. 2020).

    Each real feature gets a ball reaching its ``k``-th nearest other real feature.
    Coverage: the share of real balls holding at least one generated feature (1 for a
    generator that paints every kind of picture, small for a collapsed one).  Density:
    the mean number of real balls a generated feature lies in, over ``k`` (about 1 when
    the generated images sit where the real ones are as densely as they do)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if len(real) <= k:
        raise ValueError(f"density_coverage: {len(real)} real features, need more than k={k}")

    def sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)

    radius = np.sort(sq_dist(real, real), axis=1)[:, k]  # column 0 is the point itself
    inside = sq_dist(real, fake) <= radius[:, None]  # (real, fake)
    return float(inside.sum() / (k * len(fake))), float(inside.any(axis=1).mean())


def unit_rows(feats: np.ndarray) -> np.ndarray:
    """Each feature row scaled to length 1 (rows of zeros stay zero), as float64."""
    f = np.asarray(feats, np.float64)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def vendi_score(feats: np.ndarray) -> float:
    """The effective number of distinct items among ``feats`` (n, d): exp of the Shannon
    entropy of the eigenvalues of the cosine similarity matrix over n.  n for n unrelated
    items, 1 for n copies of one."""
    f = unit_rows(feats)
    eig = np.clip(np.linalg.eigvalsh(f @ f.T / len(f)), 0.0, None)
    eig = eig[eig > 1e-12]
    return float(np.exp(-(eig * np.log(eig)).sum()))


def grayscale(images: torch.Tensor) -> torch.Tensor:
    """``(n, 3, h, w)`` in [-1, 1] -> ``(n, h, w)`` luma in [0, 1]."""
    x = (images.float().clamp(-1, 1) + 1) / 2
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def checkerboard_energy(images: torch.Tensor, period: int = 2) -> float:
    """Mean over images of the share of spectral energy (mean removed) on the rows and
    columns of the 2D FFT at the frequency of a ``period``-pixel pattern: ``period`` 2 is
    the Nyquist frequency of the output grid, where a 2x up-sampling layer's uneven overlap
    paints its checkerboard (1.0 for a pure (-1)^(x+y) pattern, 0 for an image made by
    nearest-neighbour doubling); 4 and 8 catch the same artefact from layers working at a
    half or a quarter of the output size."""
    g = grayscale(images)
    g = g - g.mean(dim=(1, 2), keepdim=True)
    power = torch.fft.fft2(g.double()).abs() ** 2
    h, w = g.shape[-2:]
    rows = sorted({h // period, h - h // period})
    cols = sorted({w // period, w - w // period})
    on_rows, on_cols = power[:, rows, :].sum(dim=(1, 2)), power[:, :, cols].sum(dim=(1, 2))
    both = power[:, rows][:, :, cols].sum(dim=(1, 2))
    total = power.sum(dim=(1, 2)).clamp_min(1e-12)
    return float(((on_rows + on_cols - both) / total).mean())


def sharpness(images: torch.Tensor) -> float:
    """Mean gradient magnitude of the grayscale image (forward differences, luma in
    [0, 1], per pixel of the (h-1) x (w-1) grid)."""
    g = grayscale(images)
    dx = g[:, :-1, 1:] - g[:, :-1, :-1]
    dy = g[:, 1:, :-1] - g[:, :-1, :-1]
    return float(torch.sqrt(dx * dx + dy * dy).mean())


def frame_times(generator: nn.Module, frames: int = 200, warmup: int = 20) -> dict:
    """Milliseconds per 256x256 frame, batch 1, one torch thread, channels-last: wall
    clock and the thread's CPU time (what an idle core would give on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = generator.to(memory_format=torch.channels_last)
        z = torch.randn(frames + warmup, 1, generator.cfg.z_dim, generator=torch.Generator().manual_seed(0))
        wall, cpu = [], []
        with torch.inference_mode():
            for i in range(frames + warmup):
                c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
                generator(z[i])
                t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                if i >= warmup:
                    wall.append((t1 - t0) / 1e6)
                    cpu.append((c1 - c0) / 1e6)
    finally:
        torch.set_num_threads(threads)
    stats = {}
    for name, values in (("wall", wall), ("cpu", cpu)):
        stats[f"{name}_median_ms"] = round(float(np.median(values)), 2)
        stats[f"{name}_p99_ms"] = round(float(np.percentile(values, 99)), 2)
    stats["fps_median"] = round(1000 / stats["wall_median_ms"], 1)
    stats["fps_cpu_median"] = round(1000 / stats["cpu_median_ms"], 1)
    return stats


# -- the self-supervised feature network ------------------------------------------------------------

@dataclass(frozen=True)
class EncoderConfig:
    size: int = 64  # input size: images are area-resized to this
    channels: tuple[int, ...] = (32, 64, 128, 256)
    projection: int = 128

    @classmethod
    def from_json(cls, data: dict) -> "EncoderConfig":
        return cls(size=int(data["size"]), channels=tuple(int(c) for c in data["channels"]), projection=int(data["projection"]))


class FeatureEncoder(nn.Module):
    """A small CNN: image in [-1, 1] (any size) -> 256 pooled features; ``project`` is the
    SimCLR head used only in training."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        cin = 3
        for cout in cfg.channels:
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(inplace=True), nn.Linear(cin, cfg.projection))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.cfg.size:
            x = F.interpolate(x.float(), size=(self.cfg.size, self.cfg.size), mode="area")
        return self.body(x).mean(dim=(2, 3))


def simclr_views(rgba: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One random view per image of a uint8 RGBA batch: a fresh background, a crop of
    50-100 % of the side, a flip, colour jitter, grayscale one time in five; at ``size``."""
    from .dataset import composite

    x = composite(rgba, gen)
    n, dev = x.shape[0], x.device
    scale = 0.5 + 0.5 * torch.rand(n, device=dev, generator=gen)
    shift = (1 - scale)[:, None] * (2 * torch.rand(n, 2, device=dev, generator=gen) - 1)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = scale, scale, shift
    grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
    x = F.grid_sample(F.interpolate(x, size=(2 * size, 2 * size), mode="area"), grid, mode="bilinear", align_corners=False)
    x = x + 0.4 * (torch.rand(n, 1, 1, 1, device=dev, generator=gen) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (0.4 + 1.2 * torch.rand(n, 1, 1, 1, device=dev, generator=gen)) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (0.6 + 0.8 * torch.rand(n, 1, 1, 1, device=dev, generator=gen)) + mean
    gray = torch.rand(n, 1, 1, 1, device=dev, generator=gen) < 0.2
    x = torch.where(gray, x.mean(dim=1, keepdim=True).expand_as(x), x)
    return x.clamp(-1, 1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """SimCLR's contrastive loss: each view must pick its partner among all 2n-1 others."""
    z = F.normalize(torch.cat([a, b]).float(), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = a.shape[0]
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


def train_encoder(pack: Path, out: Path, minutes: float, device: str = "auto", batch: int = 256, lr: float = 1e-3,
                  seed: int = 0, cfg: EncoderConfig = EncoderConfig(), progress: bool = True) -> dict:
    """Train :class:`FeatureEncoder` with SimCLR for ``minutes``; ship it as safetensors + JSON."""
    from safetensors.torch import save_file

    from .dataset import load_pack
    from .train import resolve_device

    dev = resolve_device(device)
    torch.manual_seed(seed)
    images = torch.from_numpy(load_pack(pack, 2 * cfg.size)).to(dev)
    model = FeatureEncoder(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr, weight_decay=1e-4)
    gen = torch.Generator(device=dev).manual_seed(seed)
    amp = dev.type == "cuda"
    steps, spent, losses = 0, 0.0, []
    from tqdm import tqdm

    bar = tqdm(total=int(minutes * 60), desc="encoder", unit="s", disable=not progress)
    while spent < minutes * 60:
        t0 = time.perf_counter()
        idx = torch.randint(0, len(images), (batch,), device=dev, generator=gen)
        views = torch.cat([simclr_views(images[idx], cfg.size, gen), simclr_views(images[idx], cfg.size, gen)])
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            a, b = model.project(model(views)).chunk(2)
        loss = nt_xent(a, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        losses.append(loss.item())
        spent += time.perf_counter() - t0
        bar.update(int(spent) - bar.n)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
        if steps % 200 == 0:
            log.info("encoder step %d, %.1f min, loss %.3f", steps, spent / 60, np.mean(losses[-50:]))
    bar.close()
    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}, str(out))
    summary = {"steps": steps, "batch": batch, "minutes": round(spent / 60, 2), "final_loss": round(float(np.mean(losses[-50:])), 4),
               "images": int(len(images)), "task": "SimCLR (NT-Xent, temperature 0.2), two views per image",
               "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}
    out.with_suffix(".json").write_text(json.dumps({"config": asdict(cfg), "training": summary}, indent=2) + "\n")
    return summary


def load_encoder(path: Path = ENCODER) -> FeatureEncoder:
    from safetensors.torch import load_file

    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    model = FeatureEncoder(EncoderConfig.from_json(meta["config"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval()


# -- evaluation ----------------------------------------------------------------------------------------

def real_images(pack: Path, count: int, size: int = 256, seed: int = 0) -> torch.Tensor:
    """``count`` real training images, composited as in training, (n, 3, size, size) in [-1, 1]."""
    from .dataset import composite, load_pack

    images = torch.from_numpy(load_pack(pack, size))
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(images), (count,), generator=gen) if count > len(images) else torch.randperm(len(images), generator=gen)[:count]
    return composite(images[idx], gen)


@torch.no_grad()
def generated_images(generator: nn.Module, count: int, seed: int = 0, batch: int = 50) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(count, generator.cfg.z_dim, generator=gen)
    out = [generator(z[i:i + batch]).float() for i in range(0, count, batch)]
    x = torch.cat(out)
    if x.shape[-1] != 256:
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)
    return x


@torch.no_grad()
def features(encoder: FeatureEncoder, images: torch.Tensor, batch: int = 200) -> np.ndarray:
    return torch.cat([encoder(images[i:i + batch]) for i in range(0, len(images), batch)]).numpy()


def evaluate(generators: dict[str, Path], pack: Path, encoder: Path = ENCODER, count: int = 1000, fps_frames: int = 200) -> dict:
    """The metrics of each generator against real images; ``real`` holds real-vs-real
    (two draws of the pack, on fresh grounds: it shows each figure's noise; the draws share
    images when the pack holds fewer than ``2 * count``)."""
    from .gan import load_generator

    enc = load_encoder(encoder)
    real = real_images(pack, 2 * count, seed=0)
    real_a, real_b = real[:count], real[count:]
    fa = features(enc, real_a)
    ref_check, ref_sharp = checkerboard_energy(real_a), sharpness(real_a)
    ref_coarse = {p: checkerboard_energy(real_a, p) for p in (4, 8)}
    fb = features(enc, real_b)
    k_mean, k_std = kid(fa, fb)
    dens, cover = density_coverage(fa, fb)
    ref_vendi = vendi_score(fa)
    rows = {"real": {"kid_x1000": round(k_mean * 1000, 3), "kid_std_x1000": round(k_std * 1000, 3),
                     "coverage": round(cover, 3), "density": round(dens, 3), "vendi": round(ref_vendi, 2),
                     "diversity_rel": round(vendi_score(fb) / ref_vendi, 3), "checkerboard": ref_check,
                     "checkerboard_rel": round(checkerboard_energy(real_b) / ref_check, 3), "sharpness": ref_sharp,
                     "sharpness_rel": round(sharpness(real_b) / ref_sharp, 3),
                     **{f"checkerboard{p}_rel": round(checkerboard_energy(real_b, p) / ref, 3) for p, ref in ref_coarse.items()}}}
    for name, path in generators.items():
        g = load_generator(path)
        fake = generated_images(g, count, seed=1)
        ff = features(enc, fake)
        k_mean, k_std = kid(fa, ff)
        dens, cover = density_coverage(fa, ff)
        check, sharp = checkerboard_energy(fake), sharpness(fake)
        rows[name] = {"kid_x1000": round(k_mean * 1000, 3), "kid_std_x1000": round(k_std * 1000, 3),
                      "coverage": round(cover, 3), "density": round(dens, 3), "diversity_rel": round(vendi_score(ff) / ref_vendi, 3),
                      "checkerboard": check,
                      "checkerboard_rel": round(check / ref_check, 3), "sharpness": sharp, "sharpness_rel": round(sharp / ref_sharp, 3),
                      **{f"checkerboard{p}_rel": round(checkerboard_energy(fake, p) / ref, 3) for p, ref in ref_coarse.items()},
                      "parameters": sum(p.numel() for p in g.parameters())}
        if fps_frames:
            rows[name].update(frame_times(load_generator(path), fps_frames))
    return rows


def contact_sheet(generator: Path, pack: Path, out: Path, rows: int = 3, columns: int = 4, seed: int = 3) -> Path:
    """Real images (left block) next to generated ones (right block), at full size."""
    from PIL import Image

    from .gan import load_generator

    n = rows * columns
    real = real_images(pack, n, seed=seed)
    fake = generated_images(load_generator(generator), n, seed=seed)

    def tile(x: torch.Tensor) -> np.ndarray:
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()

    s, gap, mid = 256, 4, 24
    sheet = np.full((rows * (s + gap) + gap, 2 * columns * (s + gap) + mid + gap, 3), 16, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        y = gap + r * (s + gap)
        for block, images in enumerate((real, fake)):
            x = gap + c * (s + gap) + block * (columns * (s + gap) + mid)
            sheet[y:y + s, x:x + s] = tile(images[i])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out, optimize=True)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livecomposer.visual.quality", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("train-encoder", help="train the self-supervised feature network for KID")
    p.add_argument("--pack", type=Path, default=Path("cache/visual/clipart-256.npz"))
    p.add_argument("--out", type=Path, default=ENCODER)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("evaluate", help="KID, coverage, diversity, checkerboard, sharpness and speed of generators")
    p.add_argument("generators", nargs="+", help="NAME=PATH.safetensors (or PATH)")
    p.add_argument("--pack", type=Path, default=Path("cache/visual/clipart-256.npz"))
    p.add_argument("--encoder", type=Path, default=ENCODER)
    p.add_argument("--count", type=int, default=1000, help="images per side (default 1000)")
    p.add_argument("--fps-frames", type=int, default=200, help="frames timed per generator (0: no timing)")
    p.add_argument("--json", type=Path, help="also write the table here")
    p = sub.add_parser("sheet", help="real images next to generated ones")
    p.add_argument("generator", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--pack", type=Path, default=Path("cache/visual/clipart-256.npz"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cmd == "train-encoder":
        torch.set_num_threads(args.threads)
        print(json.dumps(train_encoder(args.pack, args.out, args.minutes, args.device, args.batch), indent=2))
    elif args.cmd == "evaluate":
        torch.set_num_threads(1)
        named = dict(g.split("=", 1) if "=" in g else (Path(g).stem, g) for g in args.generators)
        rows = evaluate({k: Path(v) for k, v in named.items()}, args.pack, args.encoder, args.count, args.fps_frames)
        print(json.dumps(rows, indent=2))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2) + "\n")
    else:
        print(contact_sheet(args.generator, args.pack, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
