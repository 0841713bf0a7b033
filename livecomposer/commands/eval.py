"""``livecomposer eval``: how well a model predicts MIDI files, next to an n-gram baseline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="NLL of a model on MIDI files, side by side with a variable-order Markov baseline",
                       description="NLL per event and per note (nats) of MODEL on FILES, and of an n-gram "
                                   "(Witten-Bell backoff, orders 0..6) trained on the model's own training data. "
                                   "Each file's first part is the performer, the others machine voices.")
    p.add_argument("model", help="model name (models/NAME) or checkpoint folder")
    p.add_argument("files", nargs="+", type=Path, help="MIDI files (or folders of them)")
    p.add_argument("--json", action="store_true", help="print JSON (keys model_nll, baseline_nll, events, ...)")
    p.add_argument("--max-order", type=int, default=6, help="highest n-gram order tried (default 6)")
    p.add_argument("--copies", type=int, default=4,
                   help="augmented renderings of the training data the n-gram counts (default 4; more is stronger and slower)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from . import CommandError, midi_file_args
    from ..model import CheckpointError
    from ..model.data import DataError
    from ..model.evaluate import evaluate
    from ..model.midi import MidiFileError

    files = midi_file_args(args.files)
    try:
        r = evaluate(args.model, files, copies=args.copies, max_order=args.max_order)
    except (CheckpointError, MidiFileError, DataError) as exc:
        raise CommandError(str(exc), 2) from None
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"model {r['model']} on {len(r['files'])} files, {r['events']} events, {r['notes']} notes (NLL in nats)")
    print(f"{'file':<48} {'events':>7} {'model/ev':>9} {'n-gram/ev':>10}")
    for f in r["files"]:
        print(f"{Path(f['path']).name[:48]:<48} {f['events']:>7} {f['model_nll']:>9.3f} {f['baseline_nll']:>10.3f}")
    print(f"{'all':<48} {r['events']:>7} {r['model_nll']:>9.3f} {r['baseline_nll']:>10.3f}")
    print(f"per note: model {r['model_nll_per_note']:.3f}, n-gram {r['baseline_nll_per_note']:.3f}")
    orders = ", ".join(f"{k}: {v:.3f}" for k, v in r["baseline_nll_by_order"].items())
    print(f"n-gram by order (per event): {orders}; best order {r['baseline_order']}")
    print(f"model is {100 * r['improvement']:.1f}% below the best n-gram")
    return 0
