"""Training loop: augmented renderings each epoch, validation NLL, early stopping, resume, DDP.

Runs on the CPU (one thread by default: the machine is shared) or on a GPU (``device``
``cuda``/``auto``: bf16 autocast, TF32, epochs rendered ahead in worker processes because
the Python-bound augmentation would otherwise set the pace).  Runs unchanged under
``torchrun``: with ``WORLD_SIZE > 1`` it joins a process group (NCCL on GPUs, gloo on
CPUs), each rank trains on its share of the pieces, and rank 0 writes checkpoints.

The best model (by validation NLL per event) goes to ``OUT/``; the state to resume from
(weights, Adam moments, torch RNG states, epoch, learning-rate schedule, history) to
``OUT/train_state/`` (git-ignored), tensors in safetensors and the rest in JSON like every
checkpoint here.  Each epoch's augmentation comes from a generator seeded by (seed, epoch,
rank), so a resumed run sees the same data the uninterrupted run would have.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass
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
    batch: int | None = None  # None: 32 on the CPU, 128 on a GPU
    seq_len: int = 256
    lr: float | None = None  # None: 2e-3 (batch 32), 3e-3 on a GPU's larger batches
    schedule: str = "plateau"  # "plateau": halve after an epoch without improvement; "cosine": see _lr_at
    warmup: int = 200  # cosine: optimizer steps of linear warm-up
    schedule_minutes: float | None = None  # cosine horizon in training minutes (default: the first run's max_minutes)
    schedule_epochs: int | None = None  # cosine horizon in epochs (default: the first run's epochs, without a time limit)
    dropout: float = 0.0
    patience: int = 3
    max_minutes: float | None = None
    resume: bool = False
    seed: int = 0
    threads: int = 1
    device: str = "cpu"  # cpu, cuda or auto (cuda when there is one)
    amp: str = "auto"  # bf16 autocast: auto = on CUDA only; on; off
    workers: int | None = None  # processes rendering epochs ahead; None: 0 on the CPU, 3 on a GPU
    copies: int | None = None  # renderings of each piece per epoch; None: 1 on the CPU, ~1 M events per epoch on a GPU
    min_notes: int = 2000
    max_pieces: int | None = None  # use only this many training pieces (quick runs)
    relative: bool = True  # interval input and interval-relative pitch logits
    progress: bool = True
    augment: Augment | None = None  # None: the default for the data (chorales are slower than reels)


def _dist(want: str = "cpu"):
    """(rank, world, device), joining the process group when run under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        if want not in ("cpu", "cuda", "auto"):
            raise DataError(f"--device {want!r}: expected cpu, cuda or auto")
        if want == "cuda" and not torch.cuda.is_available():
            raise DataError("--device cuda: torch sees no CUDA device")
        use = want == "cuda" or (want == "auto" and torch.cuda.is_available())
        return 0, 1, torch.device("cuda", 0) if use else torch.device("cpu")
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
    """NLL per event (nats) in the canonical field order, and per field (float32 even when
    training uses bf16, so that epochs and runs compare on one scale)."""
    net.eval()
    tot = torch.zeros(3, dtype=torch.float64, device=device)
    n = torch.zeros((), dtype=torch.float64, device=device)
    for b in val_batches:
        v, p, d, vo, m, held, last = (x.to(device) for x in b)
        order = torch.tensor([0, 1, 2], device=device).expand(*v.shape, 3)
        losses, cnt = net.loss(v, p, d, vo, m, held=held, last=last, order=order)
        tot += torch.stack([x.float() for x in losses]).double()
        n += cnt
    tot, n = tot.tolist(), float(n)
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
        """One update of every parameter with a gradient, as a few multi-tensor kernels (on a
        GPU, one small kernel per tensor and operation would cost more than the arithmetic)."""
        self.t += 1
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        ps = [self.params[i] for i in live]
        gs = [p.grad for p in ps]
        ms = [self.m[i] for i in live]
        vs = [self.v[i] for i in live]
        torch._foreach_mul_(ms, self.b1)
        torch._foreach_add_(ms, gs, alpha=1 - self.b1)
        torch._foreach_mul_(vs, self.b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - self.b2)
        den = torch._foreach_div(vs, bc2)
        torch._foreach_sqrt_(den)
        torch._foreach_add_(den, self.eps)
        torch._foreach_addcdiv_(ps, ms, den, value=-self.lr / bc1)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {f"m.{i}": m for i, m in enumerate(self.m)}
        out.update({f"v.{i}": v for i, v in enumerate(self.v)})
        return {k: t.detach().cpu().contiguous() for k, t in out.items()}

    def load_tensors(self, d: dict[str, torch.Tensor]) -> None:
        for i in range(len(self.params)):
            self.m[i].copy_(d[f"m.{i}"])
            self.v[i].copy_(d[f"v.{i}"])


def _save_state(folder: Path, net: EventRNN, opt: Adam, meta: dict, config: dict, device: torch.device) -> None:
    """Optimizer moments and RNG states, then weights and the JSON (epoch, schedule, history)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "adam_t": opt.t, "lr": opt.lr}
    tensors = opt.tensors()
    tensors["rng.torch"] = torch.get_rng_state()
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    save_file(tensors, str(folder / "optimizer.safetensors.tmp"))
    os.replace(folder / "optimizer.safetensors.tmp", folder / "optimizer.safetensors")
    checkpoint.save(folder, net.state_dict(), {**config, "train_state": meta})


def _load_state(folder: Path, net: EventRNN, opt: Adam, device: torch.device) -> dict:
    from safetensors.torch import load_file

    state, cfg = checkpoint.load(folder)
    net.load_state_dict(state)
    tensors = load_file(str(folder / "optimizer.safetensors"))
    opt.load_tensors(tensors)
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    meta = cfg["train_state"]
    opt.t, opt.lr = int(meta.pop("adam_t")), float(meta.pop("lr"))
    return meta


def _step(model, net: EventRNN, opt: Adam, x: list[torch.Tensor], amp: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch; (mean loss, events), left on the device (no sync)."""
    v, p, d, vo, m, held, last = x
    with torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext():
        losses, n = model(v, p, d, vo, m, held, last)
        loss = (losses[0].float() + losses[1].float() + losses[2].float()) / n
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return loss.detach(), n


def _lr_at(sched: dict, step: int, train_s: float, epoch_pos: float) -> float:
    """Cosine learning rate: linear warm-up, then from lr0 down to lr0/20 as training progresses.

    Progress is the share of the horizon (seconds of training, or epochs) kept in the training
    state, so a resumed run carries on down the same curve; past the horizon the rate stays
    at its floor.  A run that names a new horizon (``schedule_minutes``/``schedule_epochs``)
    stretches the curve from where training stands.
    """
    lr0, floor = sched["lr0"], sched["lr0"] / 20
    if step < sched["warmup"]:
        return lr0 * (step + 1) / sched["warmup"]
    prog = train_s / sched["horizon_s"] if sched.get("horizon_s") else epoch_pos / sched["horizon_epochs"]
    prog = min(max(prog, 0.0), 1.0)
    return floor + 0.5 * (lr0 - floor) * (1 + math.cos(math.pi * prog))


def _epoch_batches(data: str, pieces: np.ndarray, seed: int, epoch: int, rank: int, aug: Augment, seq_len: int,
                   batch: int, ds: Dataset | None = None) -> list[tuple[np.ndarray, ...]]:
    """One epoch's shuffled training batches (numpy), decided by (seed, epoch, rank) alone."""
    ds = ds if ds is not None else _worker_dataset(data)
    rng = np.random.default_rng(seed * 100_003 + epoch * 1009 + rank)
    streams = render(ds, pieces, rng, aug)
    return [tuple(t.numpy() for t in b) for b in batches(streams, seq_len, batch, rng)]


_WORKER_DS: dict[str, Dataset] = {}


def _worker_dataset(data: str) -> Dataset:
    if data not in _WORKER_DS:
        _WORKER_DS[data] = load_dataset(data)
    return _WORKER_DS[data]


class EpochFeed:
    """Epochs rendered ahead by worker processes (or here, with no workers).

    Humanizing thousands of tunes is Python-bound (about a second per folk epoch): on a GPU
    that would leave the network idle most of the time.  Workers are spawned, not forked, so
    they never inherit a CUDA context.
    """

    def __init__(self, ds: Dataset, data: str, pieces: np.ndarray, seed: int, rank: int, aug: Augment,
                 seq_len: int, batch: int, workers: int) -> None:
        self.ds, self.args = ds, (data, pieces, seed, rank, aug, seq_len, batch)
        self.pending: dict[int, Future] = {}
        self.pool = None
        if workers > 0:
            import multiprocessing

            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self.ahead = workers

    def get(self, epoch: int, last: int) -> list[tuple[np.ndarray, ...]]:
        data, pieces, seed, rank, aug, seq_len, batch = self.args
        if self.pool is None:
            return _epoch_batches(data, pieces, seed, epoch, rank, aug, seq_len, batch, ds=self.ds)
        for e in range(epoch, min(last, epoch + self.ahead + 1)):
            if e not in self.pending:
                self.pending[e] = self.pool.submit(_epoch_batches, data, pieces, seed, e, rank, aug, seq_len, batch)
        return self.pending.pop(epoch).result()

    def close(self) -> None:
        """Drop the epochs not started; wait for the ones being rendered (a second or so)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pending.clear()


def train(o: TrainOptions) -> dict:
    """Train a model; returns a summary (also written into the checkpoint's config)."""
    torch.set_num_threads(o.threads)
    rank, world, device = _dist(o.device)
    gpu = device.type == "cuda"
    batch = o.batch or (128 if gpu else 32)
    lr = o.lr or (3e-3 if gpu else 2e-3)
    workers = o.workers if o.workers is not None else (3 if gpu else 0)
    state_every_s = 30.0 if gpu else 0.0  # seconds between training-state saves (and at the end)
    amp = o.amp == "on" or (o.amp == "auto" and gpu)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
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
    # A GPU gets through a chorale epoch in a fraction of a second: several renderings per
    # epoch keep validation and checkpoint writes a small share of the time.
    copies = o.copies or (max(1, round(1_000_000 / (2 * train_notes))) if gpu else 1)
    net_cfg = NetConfig(hidden=o.hidden, embed=o.embed, head=o.head, relative=o.relative, dropout=o.dropout)
    torch.manual_seed(o.seed)
    out = Path(o.out)
    state_dir = out / "train_state"
    name = o.name or out.name
    aug = o.augment or default_augment(o.data)
    meta = {"epoch": 0, "best_val_nll": math.inf, "bad_epochs": 0, "history": [], "events_seen": 0, "wall_s": 0.0}
    resumed = o.resume and (state_dir / "optimizer.safetensors").exists()
    if resumed:
        # The network's shape comes from the state being resumed, not from this run's options.
        net_cfg = NetConfig(**checkpoint.read_config(state_dir)["net"])
    net = EventRNN(net_cfg).to(device)
    opt = Adam(net.parameters(), lr=lr)
    config = {
        "name": name,
        "net": net_cfg.as_dict(),
        "tokens": {"n_dt": N_DT, "dt_min": DT_MIN, "dt_max": DT_MAX, "n_vel": N_VEL},
        "data": {"source": ds.source, "pieces": len(ds.notes), "notes": ds.notes.notes(), "train_pieces": int(len(tr)),
                 "val_pieces": int(len(va)), "test_pieces": int(len(te)), "split_seed": SPLIT_SEED,
                 "max_pieces": o.max_pieces, "unit": ds.notes.unit},
        "augment": asdict(aug),
    }
    if resumed:
        meta = _load_state(state_dir, net, opt, device)
        if rank == 0:
            print(f"resuming {out} at epoch {meta['epoch']} (best validation NLL {meta['best_val_nll']:.4f})", file=sys.stderr)
    elif o.resume and rank == 0:
        print(f"--resume: no training state in {state_dir}, starting fresh", file=sys.stderr)
    sched = meta.setdefault("schedule", {"kind": o.schedule, "lr0": lr, "warmup": o.warmup,
                                          "horizon_s": None, "horizon_epochs": None})
    # The horizon is fixed by the first run (its time limit, else its epochs) unless a run names one.
    if o.schedule_minutes or o.schedule_epochs:
        sched["horizon_s"] = o.schedule_minutes * 60 if o.schedule_minutes else None
        sched["horizon_epochs"] = o.schedule_epochs
    elif not (sched["horizon_s"] or sched["horizon_epochs"]):
        sched["horizon_s"] = o.max_minutes * 60 if o.max_minutes else None
        sched["horizon_epochs"] = None if o.max_minutes else o.epochs
    if sched["kind"] not in ("plateau", "cosine"):
        raise DataError(f"--schedule {sched['kind']!r}: expected plateau or cosine")
    runs = meta.setdefault("runs", [])
    runs.append({"device": torch.cuda.get_device_name(device) if gpu else "cpu", "batch": batch, "amp": amp,
                 "threads": o.threads, "workers": workers, "copies": copies, "world": world, "max_minutes": o.max_minutes,
                 "from_epoch": meta["epoch"], "torch": torch.__version__})
    steps0 = opt.t  # the first step of this run may fall back from bf16
    model = net
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # head_known[k][k] (a field's embedding in its own head) is never used: tell DDP so.
        model = DistributedDataParallel(net, device_ids=[device.index] if gpu else None,
                                        find_unused_parameters=True)
    val_streams = render(ds, va, np.random.default_rng(SPLIT_SEED + 1), aug)
    val_batches = list(batches(val_streams, 512, 64, None))
    feed = EpochFeed(ds, o.data, np.tile(tr[rank::world], copies), o.seed, rank, aug, o.seq_len, batch, workers)
    last_state_save = -math.inf
    t_start = time.monotonic()
    deadline = t_start + o.max_minutes * 60 if o.max_minutes else None
    stop_reason = "epochs"
    show = o.progress and rank == 0
    if show:
        from tqdm import tqdm
    else:
        def tqdm(it, **_kw):
            return it
    try:
        while meta["epoch"] < o.epochs:
            epoch = meta["epoch"]
            blist = feed.get(epoch, o.epochs)
            bar = tqdm(blist, desc=f"epoch {epoch + 1}/{o.epochs}", mininterval=2.0, unit="batch", file=sys.stderr)
            tot = torch.zeros((), device=device, dtype=torch.float64)
            cnt = torch.zeros((), device=device, dtype=torch.float64)
            t_ep = time.monotonic()
            timed_out = False
            net.train()
            join = model.join() if world > 1 else nullcontext()
            with join:
                for i, b in enumerate(bar):
                    if sched["kind"] == "cosine":
                        opt.lr = _lr_at(sched, opt.t, meta["wall_s"] + time.monotonic() - t_ep, epoch + i / len(blist))
                    x = [torch.from_numpy(a).to(device, non_blocking=True) for a in b]
                    try:
                        loss, n = _step(model, net, opt, x, amp)
                    except RuntimeError as exc:
                        if not amp or opt.t > steps0:
                            raise
                        # A first step that fails under autocast (an op without a bf16 kernel) falls back to float32.
                        print(f"bf16 autocast failed ({str(exc).splitlines()[0]}); training in float32", file=sys.stderr)
                        amp = runs[-1]["amp"] = False
                        loss, n = _step(model, net, opt, x, amp)
                    tot += loss * n
                    cnt += n
                    if show and not gpu and i % 20 == 0:  # a GPU step would wait for the loss
                        bar.set_postfix(nll=f"{float(tot / cnt):.3f}", refresh=False)
                    if deadline and time.monotonic() > deadline:
                        timed_out = True
                        break
            if world > 1 and deadline:
                import torch.distributed as dist

                flag = torch.tensor([1.0 if timed_out else 0.0], device=device)
                dist.all_reduce(flag)
                timed_out = bool(flag.item())
            tot_f, cnt_f = float(tot), float(cnt)
            val, per = validate(net, val_batches, device)
            ep_s = time.monotonic() - t_ep
            meta["events_seen"] += int(cnt_f) * world
            meta["wall_s"] += ep_s
            meta["epoch"] = epoch + 1
            meta["history"].append({"epoch": epoch + 1, "train_nll": round(tot_f / max(cnt_f, 1), 4), "val_nll": round(val, 4),
                                    "val_fields": [round(x, 4) for x in per], "events": int(cnt_f) * world,
                                    "seconds": round(ep_s, 1), "lr": float(f"{opt.lr:.3g}"), "partial": timed_out})
            if not math.isfinite(val):
                stop_reason = "non-finite validation NLL"
                break
            improved = val < meta["best_val_nll"] - 1e-4
            if improved:
                meta["best_val_nll"] = val
                meta["bad_epochs"] = 0
            else:
                meta["bad_epochs"] += 1
                if sched["kind"] == "plateau":
                    opt.lr *= 0.5
            if rank == 0:
                print(f"epoch {epoch + 1}: train NLL {tot_f / max(cnt_f, 1):.4f}  validation NLL {val:.4f} nats/event "
                      f"(v {per[0]:.3f}, pitch {per[1]:.3f}, dt {per[2]:.3f}){'  *best*' if improved else ''}  "
                      f"{cnt_f / max(ep_s, 1e-9):.0f} events/s  lr {opt.lr:.2e}", file=sys.stderr, flush=True)
                summary = {"best_val_nll": round(meta["best_val_nll"], 4), "epochs": meta["epoch"],
                           "events_seen": meta["events_seen"], "wall_s": round(meta["wall_s"], 1),
                           "schedule": sched, "runs": runs, "history": meta["history"]}
                if improved:
                    checkpoint.save(out, net.state_dict(), {**config, "train": summary})
                else:
                    _update_train_summary(out, summary)
                stopping = timed_out or meta["bad_epochs"] >= o.patience or meta["epoch"] >= o.epochs
                if stopping or time.monotonic() - last_state_save >= state_every_s:
                    _save_state(state_dir, net, opt, meta, config, device)
                    last_state_save = time.monotonic()
            if timed_out:
                stop_reason = "time limit"
                break
            if meta["bad_epochs"] >= o.patience:
                stop_reason = "early stopping"
                break
    finally:
        feed.close()
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
