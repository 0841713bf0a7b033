"""Training the visualizer's FastGAN, on the CPU or on a CUDA GPU.

What makes a GAN learn from two thousand pictures in minutes (FastGAN's recipe):

* the discriminator must also rebuild the real image (whole, from its 8x8 features, and a
  random quarter, from its 16x16 features): a self-supervised task that keeps it from
  simply memorising the training set (:class:`.gan.FastDiscriminator`);
* DiffAugment (Zhao et al. 2020): every image the discriminator sees, real or generated,
  gets the same kinds of random colour change, translation and cutout, in a way that
  gradients flow through, so the discriminator cannot overfit the few real images and the
  generator is not taught to paint the augmentations;
* hinge loss, Adam 2e-4 (0.5, 0.999), and an exponential moving average of the generator's
  weights, which is what is shipped (much steadier than the raw weights).

The run is time-boxed and resumable: the time spent is kept in ``OUT/checkpoint.pt`` (state
dicts, read back with ``weights_only=True``), which is written after every sample sheet and
at the end, so a later run with a larger ``--minutes`` continues where the last stopped.
Where only a shipped generator is left (a GPU session that brought back no checkpoint),
``init_generator`` starts both the generator and its moving average from it, with a fresh
discriminator that first trains alone for ``d_warmup`` steps (an untrained critic's
gradients would only shake a generator that already paints), and the step, image and time
counts go on from the shipped file's, so the moving average's warm-up and ``--minutes``
carry on where that run stopped.
A sample sheet of the moving-average generator on fixed latents goes to
``OUT/samples/epoch-NNN.png`` every ``sheet_every`` epochs.  On CUDA the networks run in
bf16 autocast and channels-last memory; the images live on the GPU as uint8 and are
composited there, so no loader stands between the steps.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .dataset import CATEGORIES, CLIPART_DIR, composite, load_pack, prepare
from .gan import FastDiscriminator, FastGanConfig, FastGenerator, init_weights, parameter_count, quarter, save_generator

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    out: Path = Path("runs/visual")
    pack: Path = Path("cache/visual/clipart-256.npz")
    export: Path | None = Path("models/clipart-gan.safetensors")
    minutes: float = 45.0  # total training budget (wall clock of the steps), summed over resumed runs
    batch: int = 32
    lr: float = 2e-4
    ema: float = 0.999
    seed: int = 0
    limit: int | None = None  # prepare only this many images (quick runs, tests)
    root: Path = CLIPART_DIR  # where the PNGs are
    categories: tuple[str, ...] | None = CATEGORIES
    device: str = "auto"  # "cpu", "cuda", "cuda:1", or "auto" (CUDA when there is one)
    amp: bool | None = None  # bf16 autocast; None: on CUDA only
    threads: int = 1  # torch CPU threads
    sheet_every: int = 1  # epochs between sample sheets (and checkpoints)
    export_every: float = 0.0  # minutes between exports of the generator during the run (0: at the end only)
    calibration_batches: int = 16  # batches of 64 for the final batch-norm statistics
    log_every: float = 30.0  # seconds between log lines
    progress: bool = True
    init_generator: Path | None = None  # start from this shipped generator (fresh discriminator) when there is no checkpoint
    d_warmup: int = 100  # discriminator-only steps before a fresh discriminator meets a started generator


# -- DiffAugment (colour, translation, cutout), differentiable, per image ---------------------

def diff_augment(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, saturation and contrast; a shift of up to 1/8 of the size (zero
    padding); a zeroed square of half the size.  Images in [-1, 1], any device."""
    n, dev = x.shape[0], x.device
    x = x + (torch.rand(n, 1, 1, 1, device=dev, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=dev, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * (torch.rand(n, 1, 1, 1, device=dev, dtype=x.dtype) + 0.5) + mean
    return _cutout(_translate(x))


def _translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy = torch.arange(h, device=x.device)[None, :, None] + dy + 1  # +1: the padding
    gx = torch.arange(w, device=x.device)[None, None, :] + dx + 1
    gy, gx = gy.clamp(0, h + 1), gx.clamp(0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    idx = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, gy, gx].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() <= ch // 2) & ((xs - cx).abs() <= cw // 2)
    return x * (~inside)[:, None].to(x.dtype)


# -- helpers -----------------------------------------------------------------------------------

def sample_grid(images: torch.Tensor, path: Path, columns: int = 8) -> None:
    """Save ``(n, 3, h, w)`` images in [-1, 1] as one PNG grid with 2-pixel gutters."""
    from PIL import Image

    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    n, h, w, _ = x.shape
    rows = (n + columns - 1) // columns
    grid = np.full((rows * (h + 2) + 2, columns * (w + 2) + 2, 3), 16, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        grid[2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + c * (w + 2): 2 + c * (w + 2) + w] = x[i]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, compress_level=1)


def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """Move the moving-average weights towards the trained ones; copy the buffers."""
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1.0 - decay)
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


@torch.no_grad()
def recalibrate_batchnorm(generator: torch.nn.Module, batches: int = 16, batch: int = 64, seed: int = 1) -> None:
    """Recompute the batch-norm statistics of (moving-average) weights as an average over
    fresh batches, so the generator paints one frame at a time in eval mode."""
    device = next(generator.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    generator.train()
    for _ in range(batches):
        generator(torch.randn(batch, generator.cfg.z_dim, generator=gen, device=device))
    for m in norms:
        m.momentum = 0.1
    generator.eval()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name}: CUDA is not available here")
    return device


def export_generator(G_ema: FastGenerator, path: Path, summary: dict, batches: int) -> None:
    """Ship a recalibrated copy of the moving-average generator (safetensors + JSON)."""
    shipped = copy.deepcopy(G_ema).float()
    recalibrate_batchnorm(shipped, batches=batches)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = f"Debian openclipart-png (public domain), folders: {', '.join(summary.get('categories') or ['all'])}"
    save_generator(shipped, path, {"training": summary, "data": data})


def load_training_generator(path: Path) -> tuple[FastGenerator, dict]:
    """A shipped FastGAN generator in its training form (batch norms kept, not folded for
    painting) and the summary of the run that made it."""
    import json

    from .gan import load_generator

    generator = load_generator(path, fuse=False)
    if not isinstance(generator, FastGenerator):
        raise RuntimeError(f"{path}: not a FastGAN generator; only those can be trained on")
    meta = json.loads(Path(path).with_suffix(".json").read_text())
    return generator, meta.get("training", {})


# -- the run -------------------------------------------------------------------------------------

def train(opts: TrainOptions, cfg: FastGanConfig = FastGanConfig()) -> dict:
    """Run (or resume) training; returns a summary dict (images, steps, minutes...)."""
    torch.set_num_threads(opts.threads)
    device = resolve_device(opts.device)
    amp = (device.type == "cuda") if opts.amp is None else opts.amp
    opts.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = opts.out / "checkpoint.pt"
    start = None
    if opts.init_generator is not None:  # its network config also holds for a checkpoint that began from it
        start, start_summary = load_training_generator(opts.init_generator)
        cfg = replace(start.cfg, truncation=1.0)  # training samples the whole prior
        start.cfg = cfg
        if ckpt_path.exists():
            start = None
    prepare(opts.pack, root=opts.root, categories=opts.categories, limit=opts.limit, progress=opts.progress)
    images = torch.from_numpy(load_pack(opts.pack, cfg.out_size)).to(device)
    log.info("%d training images at %d px on %s (bf16 autocast %s)", len(images), cfg.out_size, device, "on" if amp else "off")

    torch.manual_seed(opts.seed)
    G, D = FastGenerator(cfg).to(device), FastDiscriminator(cfg).to(device)
    init_weights(G)
    init_weights(D)
    memory = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    G, D = G.to(memory_format=memory), D.to(memory_format=memory)
    state = {"epoch": 0, "step": 0, "seconds": 0.0, "images_shown": 0, "discriminator_from_step": 0}
    if start is not None:
        G.load_state_dict(start.state_dict())
        state.update(epoch=int(start_summary.get("epochs", 0)), step=int(start_summary.get("steps", 0)),
                     images_shown=int(start_summary.get("images_shown", 0)), seconds=60.0 * float(start_summary.get("minutes", 0.0)))
        state["discriminator_from_step"] = state["step"]
        log.info("generator from %s (%d steps, %.1f min), fresh discriminator", opts.init_generator, state["step"], state["seconds"] / 60)
    elif opts.init_generator is not None:
        log.info("%s exists: resuming it, --init-generator is not used", ckpt_path)
    G_ema = copy.deepcopy(G).eval()
    fused = {"fused": True} if device.type == "cuda" else {}
    opt_g = torch.optim.Adam(G.parameters(), opts.lr, betas=(0.5, 0.999), **fused)
    opt_d = torch.optim.Adam(D.parameters(), opts.lr, betas=(0.5, 0.999), **fused)
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
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

    def summary() -> dict:
        return {"images": int(len(images)), "categories": list(opts.categories or []), "steps": state["step"],
                "epochs": state["epoch"], "batch": opts.batch, "images_shown": state["images_shown"],
                "minutes": round(state["seconds"] / 60, 2), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "bf16": amp, "generator_parameters": parameter_count(G_ema), "discriminator_parameters": parameter_count(D),
                "out_size": cfg.out_size, "ema": opts.ema, "lr": opts.lr,
                "discriminator_from_step": state["discriminator_from_step"]}

    fixed_z = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(1234)).to(device)
    budget = opts.minutes * 60.0
    steps_per_epoch = max(1, len(images) // opts.batch)
    rng = torch.Generator(device=device).manual_seed(opts.seed * 100003 + state["step"])
    last_log = last_export = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=int(budget), initial=int(state["seconds"]), desc="train-visual", unit="s", disable=not opts.progress)
    if start is not None and opts.d_warmup > 0:
        t0 = time.perf_counter()
        for i in range(opts.d_warmup):
            pick = torch.randint(0, len(images), (opts.batch,), device=device, generator=rng)
            loss_d, _, rec = _step(G, D, opt_g, opt_d, images[pick], rng, cfg, device, amp, train_g=False)
        state["seconds"] += time.perf_counter() - t0
        log.info("discriminator alone for %d steps (%.1f s): loss d %.3f recon %.3f", opts.d_warmup,
                 time.perf_counter() - t0, loss_d.item(), rec.item())
    while state["seconds"] < budget:
        order = torch.randperm(len(images), device=device, generator=rng)
        for i in range(steps_per_epoch):
            t0 = time.perf_counter()
            loss_d, loss_g, rec = _step(G, D, opt_g, opt_d, images[order[i * opts.batch:(i + 1) * opts.batch]], rng, cfg, device, amp)
            update_ema(G_ema, G, min(opts.ema, (1 + state["step"]) / (10 + state["step"])))
            state["step"] += 1
            state["images_shown"] += opts.batch
            now = time.perf_counter()
            state["seconds"] += now - t0
            bar.update(int(state["seconds"]) - bar.n)
            if now - last_log >= opts.log_every:
                last_log = now
                log.info("step %d epoch %d, %.1f min: loss d %.3f g %.3f recon %.3f", state["step"], state["epoch"],
                         state["seconds"] / 60, loss_d.item(), loss_g.item(), rec.item())
                bar.set_postfix(d=f"{loss_d.item():.2f}", g=f"{loss_g.item():.2f}", rec=f"{rec.item():.2f}", step=state["step"])
            if opts.export and opts.export_every and now - last_export >= opts.export_every * 60:
                last_export = now
                export_generator(G_ema, opts.export, summary(), opts.calibration_batches)
            if state["seconds"] >= budget:
                break
        state["epoch"] += 1
        if state["epoch"] % opts.sheet_every == 0 or state["seconds"] >= budget:
            preview = copy.deepcopy(G_ema)
            recalibrate_batchnorm(preview, batches=2)
            with torch.no_grad():
                sample_grid(preview(fixed_z), opts.out / "samples" / f"epoch-{state['epoch']:03d}.png")
            save()
    bar.close()
    result = summary()
    if opts.export:
        export_generator(G_ema, opts.export, result, opts.calibration_batches)
    save()
    return result


def _step(G, D, opt_g, opt_d, batch: torch.Tensor, rng: torch.Generator, cfg: FastGanConfig, device: torch.device, amp: bool,
          train_g: bool = True):
    """One discriminator and (unless ``train_g`` is false) one generator update (hinge loss,
    reconstruction, DiffAugment)."""
    memory = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    real = composite(batch, rng).contiguous(memory_format=memory)
    z = torch.randn(real.shape[0], cfg.z_dim, device=device)
    part = int(torch.randint(0, 4, (1,)).item())
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        with torch.set_grad_enabled(train_g):
            fake = G(z)
        real_aug = diff_augment(real)
        logits_real, rec_all, rec_part = D(real_aug, reconstruct=True, part=part)
        logits_fake = D(diff_augment(fake.detach()))
    target_all = F.interpolate(real_aug, size=rec_all.shape[-2:], mode="area")
    target_part = F.interpolate(quarter(real_aug, part), size=rec_part.shape[-2:], mode="area")
    rec = F.l1_loss(rec_all.float(), target_all.float()) + F.l1_loss(rec_part.float(), target_part.float())
    loss_d = F.relu(1 - logits_real.float()).mean() + F.relu(1 + logits_fake.float()).mean() + rec
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    if not train_g:
        return loss_d.detach(), None, rec.detach()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        loss_g = -D(diff_augment(fake)).float().mean()
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return loss_d.detach(), loss_g.detach(), rec.detach()
