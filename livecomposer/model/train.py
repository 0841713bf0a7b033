"""Training loop: augmented renderings each epoch, validation NLL, early stopping, resume, DDP.

Runs unchanged under ``torchrun``: with ``WORLD_SIZE > 1`` it joins a process group (NCCL
on GPUs, gloo on CPUs), each rank trains on its share of the pieces, and rank 0 writes
checkpoints.  The best model (by validation NLL per event) goes to ``OUT/``; the state to
resume from (weights, Adam moments, epoch, history) to ``OUT/train_state/``, tensors in
safetensors and the rest in JSON like every checkpoint here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from .data import SPLIT_SEED, DataError, Dataset, batches, load_dataset, render, split
from .network import EventRNN, NetConfig
from .tokens import DT_MAX, DT_MIN, N_DT, N_VEL, Augment

log = logging.getLogger(__name__)


@dataclass
class TrainOptions:
    data: str
    out: Path
    name: str | None = None
    epochs: int = 30
    hidden: int = 256
    embed: int = 128
    head: int = 128
    batch: int = 32
    seq_len: int = 256
    lr: float = 2e-3
    patience: int = 3
    max_minutes: float | None = None
    resume: bool = False
    seed: int = 0
    threads: int = 1
    min_notes: int = 2000
    max_pieces: int | None = None  # use only this many training pieces (quick runs)
    relative: bool = True  # interval input and interval-relative pitch logits
    progress: bool = True
    augment: Augment | None = None  # None: the default for the data (chorales are slower than reels)


def _dist():
    """(rank, world, device) and the process group when run under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, torch.device("cpu")
    import torch.distributed as dist

    use_cuda = torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    rank = dist.get_rank()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


@torch.no_grad()
def validate(net: EventRNN, val_batches, device) -> tuple[float, list[float]]:
    """NLL per event (nats) in the canonical field order, and per field."""
    net.eval()
    tot = [0.0, 0.0, 0.0]
    n = 0.0
    for b in val_batches:
        v, p, d, vo, m, held, last = (x.to(device) for x in b)
        order = torch.tensor([0, 1, 2], device=device).expand(*v.shape, 3)
        losses, cnt = net.loss(v, p, d, vo, m, held=held, last=last, order=order)
        for k in range(3):
            tot[k] += float(losses[k])
        n += float(cnt)
    net.train()
    per = [t / max(n, 1.0) for t in tot]
    return sum(per), per


class Adam:
    """Plain Adam.  Not torch.optim: its import pulls in torch._dynamo, seconds at every start,
    and its state dict is a pickle-shaped tree; this one's state is a few named tensors."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.b1, self.b2), self.eps, self.t = lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            p.addcdiv_(m, (v / bc2).sqrt_().add_(self.eps), value=-self.lr / bc1)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"m.{i}": m for i, m in enumerate(self.m)}
        out.update({f"v.{i}": v for i, v in enumerate(self.v)})
        return {k: t.detach().cpu().contiguous() for k, t in out.items()}

    def load_tensors(self, d: dict[str, torch.Tensor]) -> None:
        for i in range(len(self.params)):
            self.m[i].copy_(d[f"m.{i}"])
            self.v[i].copy_(d[f"v.{i}"])


def _save_state(folder: Path, net: EventRNN, opt: Adam, meta: dict, config: dict) -> None:
    from safetensors.torch import save_file

    meta = {**meta, "adam_t": opt.t, "lr": opt.lr}
    checkpoint.save(folder, net.state_dict(), {**config, "train_state": meta})
    save_file(opt.tensors(), str(folder / "optimizer.safetensors.tmp"))
    os.replace(folder / "optimizer.safetensors.tmp", folder / "optimizer.safetensors")


def _load_state(folder: Path, net: EventRNN, opt: Adam) -> dict:
    from safetensors.torch import load_file

    state, cfg = checkpoint.load(folder)
    net.load_state_dict(state)
    opt.load_tensors(load_file(str(folder / "optimizer.safetensors")))
    meta = cfg["train_state"]
    opt.t, opt.lr = int(meta.pop("adam_t")), float(meta.pop("lr"))
    return meta


def train(o: TrainOptions) -> dict:
    """Train a model; returns a summary (also written into the checkpoint's config)."""
    torch.set_num_threads(o.threads)
    rank, world, device = _dist()
    ds = load_dataset(o.data)
    tr, va, te = split(len(ds.notes))
    if o.max_pieces:
        tr = tr[: o.max_pieces]
    train_notes = int(sum(ds.notes.starts[i + 1] - ds.notes.starts[i] for i in tr))
    if len(ds.notes) < 2 or train_notes < o.min_notes:
        raise DataError(
            f"too little data in {o.data}: {len(ds.notes)} usable pieces, {train_notes} training notes "
            f"(need at least 2 pieces and {o.min_notes} notes for a model worth playing with)"
        )
    net_cfg = NetConfig(hidden=o.hidden, embed=o.embed, head=o.head, relative=o.relative)
    torch.manual_seed(o.seed)
    net = EventRNN(net_cfg).to(device)
    opt = Adam(net.parameters(), lr=o.lr)
    out = Path(o.out)
    state_dir = out / "train_state"
    name = o.name or out.name
    aug = o.augment or default_augment(o.data)
    config = {
        "name": name,
        "net": net_cfg.as_dict(),
        "tokens": {"n_dt": N_DT, "dt_min": DT_MIN, "dt_max": DT_MAX, "n_vel": N_VEL},
        "data": {"source": ds.source, "pieces": len(ds.notes), "notes": ds.notes.notes(), "train_pieces": int(len(tr)),
                 "val_pieces": int(len(va)), "test_pieces": int(len(te)), "split_seed": SPLIT_SEED,
                 "max_pieces": o.max_pieces, "unit": ds.notes.unit},
        "augment": asdict(aug),
    }
    meta = {"epoch": 0, "best_val_nll": math.inf, "bad_epochs": 0, "history": [], "events_seen": 0, "wall_s": 0.0}
    if o.resume:
        if (state_dir / "optimizer.safetensors").exists():
            meta = _load_state(state_dir, net, opt)
            if rank == 0:
                print(f"resuming {out} at epoch {meta['epoch']} (best validation NLL {meta['best_val_nll']:.4f})", file=sys.stderr)
        elif rank == 0:
            print(f"--resume: no training state in {state_dir}, starting fresh", file=sys.stderr)
    model = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # head_known[k][k] (a field's embedding in its own head) is never used: tell DDP so.
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                        find_unused_parameters=True)
    val_streams = render(ds, va, np.random.default_rng(SPLIT_SEED + 1), aug)
    val_batches = list(batches(val_streams, 512, 64, None))
    t_start = time.monotonic()
    deadline = t_start + o.max_minutes * 60 if o.max_minutes else None
    stop_reason = "epochs"
    from tqdm import tqdm

    while meta["epoch"] < o.epochs:
        epoch = meta["epoch"]
        rng = np.random.default_rng(o.seed * 100_003 + epoch * 1009 + rank)
        streams = render(ds, tr[rank::world], rng, aug)
        blist = list(batches(streams, o.seq_len, o.batch, rng))
        bar = tqdm(blist, desc=f"epoch {epoch + 1}/{o.epochs}", disable=rank != 0 or not o.progress, mininterval=2.0,
                   unit="batch", file=sys.stderr)
        tot, cnt, t_ep = 0.0, 0.0, time.monotonic()
        timed_out = False
        net.train()
        join = model.join() if world > 1 else _null()
        with join:
            for b in bar:
                v, p, d, vo, m, held, last = (x.to(device) for x in b)
                losses, n = model(v, p, d, vo, m, held, last)
                loss = (losses[0] + losses[1] + losses[2]) / n
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                tot += float(loss.detach()) * float(n)
                cnt += float(n)
                if cnt:
                    bar.set_postfix(nll=f"{tot / cnt:.3f}", refresh=False)
                if deadline and time.monotonic() > deadline:
                    timed_out = True
                    break
        if world > 1 and deadline:
            import torch.distributed as dist

            flag = torch.tensor([1.0 if timed_out else 0.0], device=device)
            dist.all_reduce(flag)
            timed_out = bool(flag.item())
        val, per = validate(net, val_batches, device)
        ep_s = time.monotonic() - t_ep
        meta["events_seen"] += int(cnt) * world
        meta["wall_s"] += ep_s
        meta["epoch"] = epoch + 1
        meta["history"].append({"epoch": epoch + 1, "train_nll": round(tot / max(cnt, 1), 4), "val_nll": round(val, 4),
                                "val_fields": [round(x, 4) for x in per], "events": int(cnt) * world,
                                "seconds": round(ep_s, 1), "partial": timed_out})
        improved = val < meta["best_val_nll"] - 1e-4
        if improved:
            meta["best_val_nll"] = val
            meta["bad_epochs"] = 0
        else:
            meta["bad_epochs"] += 1
            opt.lr *= 0.5
        if rank == 0:
            print(f"epoch {epoch + 1}: train NLL {tot / max(cnt, 1):.4f}  validation NLL {val:.4f} nats/event "
                  f"(v {per[0]:.3f}, pitch {per[1]:.3f}, dt {per[2]:.3f}){'  *best*' if improved else ''}  "
                  f"{cnt / max(ep_s, 1e-9):.0f} events/s", file=sys.stderr, flush=True)
            summary = {"best_val_nll": round(meta["best_val_nll"], 4), "epochs": meta["epoch"],
                       "events_seen": meta["events_seen"], "wall_s": round(meta["wall_s"], 1), "history": meta["history"]}
            if improved:
                checkpoint.save(out, net.state_dict(), {**config, "train": summary})
            else:
                _update_train_summary(out, summary)
            _save_state(state_dir, net, opt, meta, config)
        if timed_out:
            stop_reason = "time limit"
            break
        if meta["bad_epochs"] >= o.patience:
            stop_reason = "early stopping"
            break
    if rank == 0:
        print(f"stopped ({stop_reason}) after {meta['epoch']} epochs; best validation NLL {meta['best_val_nll']:.4f} nats/event -> {out}",
              file=sys.stderr)
    return {"best_val_nll": meta["best_val_nll"], "epochs": meta["epoch"], "stop": stop_reason, "out": str(out)}


def default_augment(data: str) -> Augment:
    """Chorales are sung slowly; reels and jigs are quick; a player's files keep their own tempo."""
    if data == "chorales":
        return Augment(bpm=(50.0, 110.0))
    return Augment()


def _update_train_summary(out: Path, summary: dict) -> None:
    p = out / checkpoint.CONFIG
    if p.exists():
        cfg = json.loads(p.read_text())
        cfg["train"] = {**summary, "best_val_nll": cfg.get("train", {}).get("best_val_nll", summary["best_val_nll"])}
        p.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
