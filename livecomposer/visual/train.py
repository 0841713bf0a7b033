"""Training the clipart GAN on the CPU: adversarial core first, then the upsampling tail.

Stage 1 trains the 64x64 generator core against the discriminator (non-saturating GAN
loss, Adam 2e-4 / 0.5, bf16 autocast, which uses the CPU's matrix units where it has them),
keeping an exponential moving average of the generator, which gives much steadier images
early in training than the raw weights.  Stage 2 trains the tiny 4x super-resolution tail
with an L1 loss on real clipart at full size.  Both stages are time-boxed (the budget is
kept in the checkpoint, so a resumed run only spends what is left), write a sample grid
per epoch, and checkpoint after every epoch and at the end, so an interrupted run resumes.

Checkpoints are state dicts saved with ``torch.save`` and read back with
``weights_only=True``; the shipped generator is safetensors + JSON (:mod:`.gan`).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .dataset import CLIPART_DIR, composite, prepare
from .gan import Discriminator, GanConfig, Generator, init_weights, parameter_count, save_generator

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    out: Path = Path("runs/visual")
    cache: Path = Path("cache/visual")
    export: Path | None = Path("models/clipart-gan.safetensors")
    minutes: float = 45.0  # adversarial stage budget (CPU wall-clock minutes)
    tail_minutes: float = 6.0
    batch: int = 32
    lr: float = 2e-4
    ema: float = 0.999
    seed: int = 0
    limit: int | None = None  # use only this many images (quick runs, tests)
    root: Path = CLIPART_DIR  # where the PNGs are
    calibration_batches: int = 32  # batches of 64 for the final batch-norm statistics
    tail_images: int = 1200  # full-size images for the tail stage
    threads: int = 1
    progress: bool = True
    amp: bool = True


def sample_grid(images: torch.Tensor, path: Path, columns: int = 8) -> None:
    """Save ``(n, 3, h, w)`` images in [-1, 1] as one PNG grid with 2-pixel gutters."""
    from PIL import Image

    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    n, h, w, _ = x.shape
    rows = (n + columns - 1) // columns
    grid = np.full((rows * (h + 2) + 2, columns * (w + 2) + 2, 3), 16, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        grid[2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + c * (w + 2): 2 + c * (w + 2) + w] = x[i]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, compress_level=1)


def _update_ema(ema: Generator, model: Generator, decay: float) -> None:
    """Move the EMA core towards the trained core.  The tail is not adversarial: the EMA
    copy holds the trained tail, so it is left alone."""
    with torch.no_grad():
        for (name, pe), pm in zip(ema.named_parameters(), model.parameters()):
            if not name.startswith("tail."):
                pe.lerp_(pm, 1.0 - decay)
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


@torch.no_grad()
def recalibrate_batchnorm(generator: Generator, z_dim: int, batches: int = 32, batch: int = 64, seed: int = 1) -> None:
    """Recompute the batch-norm running statistics of (EMA) weights, as an average over
    fresh batches, so the generator works in eval mode on one frame at a time."""
    gen = torch.Generator().manual_seed(seed)
    for m in generator.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    generator.train()
    for _ in range(batches):
        generator(torch.randn(batch, z_dim, generator=gen), tail=False)
    for m in generator.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = 0.1
    generator.eval()


def train(opts: TrainOptions, cfg: GanConfig = GanConfig()) -> dict:
    """Run (or resume) training; returns a summary dict (images, steps, minutes...)."""
    torch.set_num_threads(opts.threads)
    opts.out.mkdir(parents=True, exist_ok=True)
    suffix = f"-{opts.limit}" if opts.limit else ""
    images = prepare(opts.cache / f"clipart-{cfg.core_size}{suffix}.npz", cfg.core_size, root=opts.root, limit=opts.limit, progress=opts.progress)
    log.info("%d training images at %dpx", len(images), cfg.core_size)

    G, D = Generator(cfg), Discriminator(cfg)
    init_weights(G)
    init_weights(D)
    G_ema = copy.deepcopy(G).eval()
    opt_g = torch.optim.Adam(G.parameters(), opts.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), opts.lr, betas=(0.5, 0.999))
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "tail_seconds": 0.0, "tail_steps": 0, "done": False}
    ckpt_path = opts.out / "checkpoint.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        G.load_state_dict(ckpt["G"])
        D.load_state_dict(ckpt["D"])
        G_ema.load_state_dict(ckpt["G_ema"])
        opt_g.load_state_dict(ckpt["opt_g"])
        opt_d.load_state_dict(ckpt["opt_d"])
        state.update(ckpt["state"])
        log.info("resumed at epoch %d, step %d (%.1f min spent)", state["epoch"], state["step"], state["seconds"] / 60)

    def save() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "state": dict(state)}, tmp)
        tmp.replace(ckpt_path)

    fixed_z = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(1234))
    budget = opts.minutes * 60.0
    steps_per_epoch = max(1, len(images) // opts.batch)
    from tqdm import tqdm

    while state["seconds"] < budget:
        rng = np.random.default_rng(opts.seed * 100003 + state["epoch"])
        torch.manual_seed(opts.seed * 100003 + state["epoch"])
        order = rng.permutation(len(images))
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {state['epoch'] + 1}", unit="step", disable=not opts.progress, leave=False)
        for i in bar:
            t0 = time.perf_counter()
            real = torch.from_numpy(composite(images[order[i * opts.batch:(i + 1) * opts.batch]], rng))
            z = torch.randn(real.shape[0], cfg.z_dim)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.amp):
                fake = G(z, tail=False)
                d_real, d_fake = D(real).float(), D(fake.detach()).float()
            loss_d = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts.amp):
                g_out = D(fake).float()
            loss_g = F.softplus(-g_out).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            _update_ema(G_ema, G, min(opts.ema, (1 + state["step"]) / (10 + state["step"])))
            state["step"] += 1
            state["seconds"] += time.perf_counter() - t0
            bar.set_postfix(d=f"{loss_d.item():.2f}", g=f"{loss_g.item():.2f}", min=f"{state['seconds'] / 60:.1f}")
            if state["seconds"] >= budget:
                break
        bar.close()
        state["epoch"] += 1
        preview = copy.deepcopy(G_ema)
        recalibrate_batchnorm(preview, cfg.z_dim, batches=min(4, opts.calibration_batches))
        with torch.no_grad():
            sample_grid(preview(fixed_z, tail=False), opts.out / "samples" / f"epoch-{state['epoch']:03d}.png")
        save()
        log.info("epoch %d: step %d, %.1f min, loss d %.3f g %.3f", state["epoch"], state["step"], state["seconds"] / 60, loss_d.item(), loss_g.item())

    # -- stage 2: the super-resolution tail, on real images at full size ----------------------
    if cfg.tail_channels and state["tail_seconds"] < opts.tail_minutes * 60.0:
        train_tail(G_ema, opts, cfg, state, save)
    recalibrate_batchnorm(G_ema, cfg.z_dim, batches=opts.calibration_batches)
    with torch.no_grad():
        sample_grid(G_ema(fixed_z[:16]), opts.out / "samples" / "final-256.png", columns=4)
        sample_grid(G_ema(fixed_z, tail=False), opts.out / "samples" / "final-64.png")
    summary = {"images": int(len(images)), "steps": state["step"], "epochs": state["epoch"], "batch": opts.batch,
               "adversarial_minutes": round(state["seconds"] / 60, 1), "tail_minutes": round(state["tail_seconds"] / 60, 1),
               "tail_steps": state["tail_steps"], "generator_parameters": parameter_count(G_ema),
               "discriminator_parameters": parameter_count(D), "out_size": cfg.out_size}
    if opts.export:
        opts.export.parent.mkdir(parents=True, exist_ok=True)
        save_generator(G_ema, opts.export, {"training": summary, "data": "Debian openclipart-png (public domain)"})
    state["done"] = True
    save()
    return summary


def train_tail(G_ema: Generator, opts: TrainOptions, cfg: GanConfig, state: dict, save) -> None:
    """L1 super-resolution on (area-downsampled, full-size) pairs of composited clipart."""
    size = cfg.out_size
    suffix = f"-{opts.limit}" if opts.limit else ""
    big = prepare(opts.cache / f"clipart-{size}-{opts.tail_images}{suffix}.npz", size, root=opts.root,
                  limit=min(opts.tail_images, opts.limit or opts.tail_images), progress=opts.progress)
    tail = G_ema.tail
    tail.train()
    opt = torch.optim.Adam(tail.parameters(), 1e-3)
    rng = np.random.default_rng(opts.seed + 7)
    budget = opts.tail_minutes * 60.0
    crop, scale = 128, cfg.tail_scale
    from tqdm import tqdm

    bar = tqdm(total=int(budget), desc="tail", unit="s", disable=not opts.progress, leave=False)
    while state["tail_seconds"] < budget:
        t0 = time.perf_counter()
        idx = rng.integers(0, len(big), 16)
        ys, xs = rng.integers(0, size - crop + 1, 2)
        hi = torch.from_numpy(composite(big[idx, ys:ys + crop, xs:xs + crop], rng))
        lo = F.avg_pool2d(hi, scale)  # the core makes smooth small images; area-downsampling matches
        loss = F.l1_loss(tail(lo), hi)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["tail_steps"] += 1
        dt = time.perf_counter() - t0
        state["tail_seconds"] += dt
        bar.update(int(state["tail_seconds"]) - bar.n)
        bar.set_postfix(l1=f"{loss.item():.3f}")
        if state["tail_steps"] % 200 == 0:
            save()
    bar.close()
    tail.eval()


def export_checkpoint(out: Path, export: Path, cfg: GanConfig = GanConfig(), weights: str = "ema") -> dict:
    """Ship the generator of a (possibly unfinished) run: recalibrated batch norm,
    safetensors + JSON.  ``weights``: "ema" (the moving average) or "raw" (the last
    trained core, with the trained tail).  :func:`train` exports the EMA by itself."""
    ckpt = torch.load(Path(out) / "checkpoint.pt", weights_only=True)
    G_ema = Generator(cfg)
    G_ema.load_state_dict(ckpt["G_ema"])
    if weights == "raw":
        tail = {k: v for k, v in ckpt["G_ema"].items() if k.startswith("tail.")}
        G_ema.load_state_dict({**ckpt["G"], **tail})
    elif weights != "ema":
        raise ValueError(f"weights: must be ema or raw; got {weights!r}")
    recalibrate_batchnorm(G_ema, cfg.z_dim)
    state = ckpt["state"]
    summary = {"steps": state["step"], "epochs": state["epoch"], "adversarial_minutes": round(state["seconds"] / 60, 1),
               "tail_minutes": round(state["tail_seconds"] / 60, 1), "tail_steps": state["tail_steps"],
               "generator_parameters": parameter_count(G_ema), "out_size": cfg.out_size, "finished": bool(state.get("done")),
               "weights": weights}
    Path(export).parent.mkdir(parents=True, exist_ok=True)
    save_generator(G_ema, Path(export), {"training": summary, "data": "Debian openclipart-png (public domain)"})
    return summary
