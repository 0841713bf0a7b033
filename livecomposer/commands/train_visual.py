"""``livecomposer train-visual``: train the visualizer's FastGAN (time-boxed, resumable, CPU or CUDA).

Also runnable as ``python -m livecomposer.commands.train_visual`` with the same options:
that path imports only torch, numpy, pillow, safetensors and tqdm (not the MIDI stack),
which is what a bare GPU machine has.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/visual"), help="checkpoint and sample sheets (default: runs/visual)")
    p.add_argument("--pack", type=Path, default=Path("cache/visual/clipart-256.npz"),
                   help="the prepared images (made from /usr/share/openclipart/png if missing; default: cache/visual/clipart-256.npz)")
    p.add_argument("--folders", nargs="+", default=None, metavar="FOLDER",
                   help="openclipart folders to train on, relative to /usr/share/openclipart/png, e.g. signs_and_symbols/flags "
                        "(default: computer signs_and_symbols); a pack made from other folders needs its own --pack")
    p.add_argument("--export", type=Path, default=Path("models/clipart-gan.safetensors"), help="where the generator goes")
    p.add_argument("--minutes", type=float, default=45.0, help="training budget in minutes, summed over resumed runs (default 45)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--ema", type=float, default=0.999, help="decay of the generator's moving average (default 0.999)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: CUDA when there is one)")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None, help="bf16 autocast (default: on CUDA only)")
    p.add_argument("--limit", type=int, default=None, help="prepare only this many images (quick runs)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the CPU is shared)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sheet-every", type=int, default=1, help="epochs between sample sheets and checkpoints (default 1)")
    p.add_argument("--export-every", type=float, default=0.0, help="minutes between exports during the run (default: at the end only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--export-only", action="store_true", help="ship the generator of OUT/checkpoint.pt as it is, without training")
    p.add_argument("--init-generator", type=Path, default=None,
                   help="with no OUT/checkpoint.pt: start the generator and its moving average from this shipped generator "
                        "(its step and minute counts go on), with a fresh discriminator")
    p.add_argument("--d-warmup", type=int, default=100,
                   help="steps the fresh discriminator trains alone before the --init-generator generator learns (default 100)")


def register(subparsers) -> None:
    p = subparsers.add_parser("train-visual", help="train the visualizer's GAN on the openclipart images",
                              description="Train the visualizer's FastGAN on Debian's openclipart-png images. "
                                          "Resumes from OUT/checkpoint.pt if it is there. Image quality: "
                                          "python -m livecomposer.visual.quality evaluate.")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import CommandError
    from ..visual.train import TrainOptions, train

    if args.minutes < 0 or args.batch < 2 or args.d_warmup < 0:
        raise CommandError("--minutes and --d-warmup must be >= 0 and --batch >= 2", 2)
    if args.init_generator is not None and not args.init_generator.with_suffix(".json").exists():
        raise CommandError(f"{args.init_generator}: no generator there (its .safetensors and .json)", 2)
    if args.export_only:
        if not (args.out / "checkpoint.pt").exists():
            raise CommandError(f"{args.out / 'checkpoint.pt'}: no checkpoint to export", 2)
        args.minutes = 0.0  # spends nothing: the loop is skipped, the generator is exported
    folders = {} if args.folders is None else {"categories": tuple(args.folders)}
    opts = TrainOptions(out=args.out, pack=args.pack, export=args.export, minutes=args.minutes, batch=args.batch, lr=args.lr,
                        ema=args.ema, device=args.device, amp=args.amp, limit=args.limit, threads=args.threads, seed=args.seed,
                        sheet_every=args.sheet_every, export_every=args.export_every, progress=not args.no_progress,
                        init_generator=args.init_generator, d_warmup=args.d_warmup, **folders)
    try:
        summary = train(opts)
    except (FileNotFoundError, RuntimeError) as exc:
        raise CommandError(str(exc), 2) from None
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    from . import CommandError

    parser = argparse.ArgumentParser(prog="python -m livecomposer.commands.train_visual", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except CommandError as exc:
        print(f"train-visual: {exc}", file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
