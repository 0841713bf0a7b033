"""``livecomposer train``: teach the model a corpus or a folder of your own MIDI files."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a music model on the folk/chorale corpus or a folder of MIDI files",
                       description="Train the streaming event RNN. Checkpoints are safetensors + JSON; "
                                   "--resume continues from OUT/train_state. Runs unchanged under torchrun.")
    p.add_argument("--data", required=True, help="folk, chorales, or a folder of MIDI files")
    p.add_argument("--out", required=True, type=Path, help="checkpoint folder to write, e.g. models/my-style")
    p.add_argument("--epochs", type=int, default=30, help="at most this many epochs (default 30)")
    p.add_argument("--hidden", type=int, default=256, help="GRU state size (default 256)")
    p.add_argument("--embed", type=int, default=128, help="input embedding size (default 128)")
    p.add_argument("--head", type=int, default=128, help="output head width (default 128)")
    p.add_argument("--batch", type=int, default=None, help="windows per batch (default 32 on the CPU, 128 on a GPU)")
    p.add_argument("--seq-len", type=int, default=256, help="events per training window")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-3 on the CPU, 3e-3 on a GPU)")
    p.add_argument("--schedule", choices=("plateau", "cosine"), default="plateau",
                   help="plateau: halve the rate after an epoch without improvement; cosine: warm up, then decay "
                        "over --max-minutes (or --epochs) down to 1/20 (kept across --resume)")
    p.add_argument("--schedule-minutes", type=float, default=None,
                   help="cosine: anneal over this many minutes of training in all (default: the first run's --max-minutes)")
    p.add_argument("--schedule-epochs", type=int, default=None,
                   help="cosine: anneal over this many epochs in all (default: the first run's --epochs)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout on the GRU's input and output while training")
    p.add_argument("--patience", type=int, default=3, help="stop after this many epochs without improvement")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this much wall time")
    p.add_argument("--max-pieces", type=int, default=None, help="train on only this many pieces (quick runs)")
    p.add_argument("--min-notes", type=int, default=2000, help="refuse to train on fewer notes than this")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the CPU is shared)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="auto: CUDA when torch sees a GPU")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="bf16 autocast (auto: on CUDA only)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes rendering epochs ahead (default 0 on the CPU, 3 on a GPU)")
    p.add_argument("--copies", type=int, default=None,
                   help="augmented renderings of each piece per epoch (default 1 on the CPU, about 1 M events on a GPU)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/train_state (weights, optimizer, RNG, epoch, schedule, best so far)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import CommandError
    from ..model.data import DataError
    from ..model.train import TrainOptions, train

    opts = TrainOptions(data=args.data, out=args.out, epochs=args.epochs, hidden=args.hidden, embed=args.embed,
                        head=args.head, batch=args.batch, seq_len=args.seq_len, lr=args.lr, patience=args.patience,
                        max_minutes=args.max_minutes, max_pieces=args.max_pieces, min_notes=args.min_notes,
                        threads=args.threads, seed=args.seed, resume=args.resume, progress=not args.no_progress,
                        schedule=args.schedule, schedule_minutes=args.schedule_minutes,
                        schedule_epochs=args.schedule_epochs, dropout=args.dropout, device=args.device, amp=args.amp,
                        workers=args.workers, copies=args.copies)
    try:
        train(opts)
    except DataError as exc:
        raise CommandError(str(exc), 2) from None
    return 0
