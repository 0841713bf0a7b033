"""``livecomposer train-visual``: train the clipart GAN for the visualizer (time-boxed, resumable)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("train-visual", help="train the visualizer's GAN on the openclipart images",
                              description="Train the visualizer's GAN on Debian's openclipart-png images. "
                                          "Resumes from OUT/checkpoint.pt if it is there.")
    p.add_argument("--out", type=Path, default=Path("runs/visual"), help="checkpoints and sample grids (default: runs/visual)")
    p.add_argument("--cache", type=Path, default=Path("cache/visual"), help="prepared image arrays (default: cache/visual)")
    p.add_argument("--export", type=Path, default=Path("models/clipart-gan.safetensors"), help="where the finished generator goes")
    p.add_argument("--minutes", type=float, default=45.0, help="adversarial training budget in CPU minutes (default 45)")
    p.add_argument("--tail-minutes", type=float, default=6.0, help="upsampling-tail training budget (default 6)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--ema", type=float, default=0.999, help="decay of the generator's moving average (default 0.999)")
    p.add_argument("--limit", type=int, default=None, help="use only this many images (quick runs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the CPU is shared)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--export-only", action="store_true", help="ship the generator of OUT/checkpoint.pt as it is, without training")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema", help="with --export-only: the moving average or the last weights")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..cli import CommandError
    from ..visual.train import TrainOptions, export_checkpoint, train

    if args.export_only:
        if not (args.out / "checkpoint.pt").exists():
            raise CommandError(f"{args.out / 'checkpoint.pt'}: no checkpoint to export", 2)
        print(json.dumps(export_checkpoint(args.out, args.export, weights=args.weights), indent=2))
        return 0

    if args.minutes < 0 or args.tail_minutes < 0 or args.batch < 2:
        raise CommandError("--minutes and --tail-minutes must be >= 0 and --batch >= 2", 2)
    opts = TrainOptions(out=args.out, cache=args.cache, export=args.export, minutes=args.minutes, tail_minutes=args.tail_minutes,
                        batch=args.batch, ema=args.ema, limit=args.limit, threads=args.threads, seed=args.seed, progress=not args.no_progress)
    try:
        summary = train(opts)
    except FileNotFoundError as exc:
        raise CommandError(str(exc), 2) from None
    print(json.dumps(summary, indent=2))
    return 0
