"""Writing the judge's held-out tunes: test-split pieces at a steady, stated tempo.

The judge needs the beat: phrases are cut in beats and rhythms compared on the eighth-note
grid.  The model's held-out files are played at a random tempo with the file saying 120,
so the beat cannot be read from them; these are test-split pieces (never trained on: the
split is fixed by its seed) with the tempo and time signature written in the file, an
upbeat placed before the first bar line, light timing jitter, articulation and
synthesized velocities, so they still sound played.

    python -m livecomposer.judge.heldout folk models/heldout/folk-timed --bpm 100
    python -m livecomposer.judge.heldout chorales models/heldout/chorales-timed --count 8 --bpm 80
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np


def export_timed(data: str, folder: Path, count: int, bpm: float, seed: int = 11) -> list[Path]:
    """Write ``count`` test-split pieces of ``data`` (folk or four-part chorales) as MIDI at
    ``bpm``: the first track is the performer (the tune, or the soprano), the second the other
    parts.  Returns the paths, named after the pieces."""
    from ..model.data import load_dataset, split
    from ..model.midi import write_events
    from ..model.tokens import humanize
    from ..model.train import default_augment

    ds = load_dataset(data)
    _train, _val, test = split(len(ds.notes))
    if data == "chorales":
        # Four-part settings only: some files add instrumental parts that start late or
        # double the voices, and the judge wants a soprano to play and a choir to compare with.
        test = np.array([i for i in test if len(np.unique(ds.piece(int(i))[3])) == 4], dtype=test.dtype)
    # Spread across the split, as the model's held-out files are (across the collections).
    pick = test[np.linspace(0, len(test) - 1, min(count, len(test))).astype(int)]
    aug = replace(default_augment(data), transpose=0, bpm=(bpm, bpm), jitter_s=0.008, articulation=(0.75, 1.0),
                  call_response_p=0.0)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in pick:
        source = ds.notes.names[int(i)]
        numerator, denominator, pickup_rest = metre(source)
        on, du, pi, pa, ve = ds.piece(int(i))
        ev = humanize(on, du, pi, pa, ve, ds.notes.unit, rng, aug, performer_part=0)
        name = source.replace("/", "_").replace("#", "_").replace(".abc", "").replace(".mxl", "")
        path = folder / f"{name}.mid"
        write_events(path, ev, tempo_bpm=bpm)  # starts at the first note
        mf = mido.MidiFile(str(path))
        for track in mf.tracks:  # the rest before an upbeat, in every track
            first = next(k for k, msg in enumerate(track) if not msg.is_meta)
            track[first] = track[first].copy(time=track[first].time + round(pickup_rest * mf.ticks_per_beat))
        mf.tracks[0].insert(0, mido.MetaMessage("time_signature", numerator=numerator, denominator=denominator, time=0))
        mf.save(str(path))
        out.append(path)
    return out


def metre(name: str) -> tuple[int, int, float]:
    """(numerator, denominator, rest before the first note in quarter notes) of a corpus piece,
    read from its score: the corpus arrays start at the first note, so a tune that begins
    with an upbeat must be moved by the rest of its first bar to put its bar lines back on
    the beat grid."""
    from music21 import converter, corpus, meter

    from ..model.corpus import _split_abc, corpus_root

    if "#" in name:  # one tune of an ABC collection
        file, index = name.split("#")
        score = converter.parseData(_split_abc((corpus_root() / file).read_text(encoding="latin-1"))[int(index)], format="abc")
    else:
        score = corpus.parse(name)
    part = score.parts[0] if getattr(score, "parts", None) else score
    ts = part.recurse().getElementsByClass(meter.TimeSignature).first()
    if ts is None:
        return 4, 4, 0.0
    first = part.getElementsByClass("Measure").first()
    bar = float(ts.barDuration.quarterLength)
    length = float(first.duration.quarterLength) if first is not None else bar
    return int(ts.numerator), int(ts.denominator), bar - length if 0 < length < bar else 0.0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", choices=("folk", "chorales"))
    p.add_argument("folder", type=Path)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--bpm", type=float, default=100.0)
    args = p.parse_args(argv)
    for path in export_timed(args.data, args.folder, args.count, args.bpm):
        print(path)


if __name__ == "__main__":
    main()
