"""Turn the licensed music21 corpora into cached note arrays, once.

Parsing ABC with music21 costs CPU-minutes, so the result is cached as ``.npz`` under
``cache/`` (gitignored): per note its onset and duration in quarter notes, its MIDI pitch
and its part (0 = the top part, which plays the performer by default).  Only the
corpora whose licences allow it are read: O'Neill's 1850, Ryan's Mammoth Collection,
Aird's Airs, miscFolk (folk, ABC) and the Bach chorales (MusicXML).  Never Essen
(non-commercial permission only) or Palestrina (rights reserved).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths

log = logging.getLogger(__name__)

FOLK_DIRS = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
FORBIDDEN = ("essenFolksong", "palestrina")


@dataclass
class NoteSet:
    """Many pieces as flat arrays; piece ``i`` is ``[starts[i], starts[i+1])``.

    Times are in quarter notes (score data) or seconds (performances); ``unit`` says which.
    """

    onset: np.ndarray  # float64
    dur: np.ndarray  # float64
    pitch: np.ndarray  # int16
    part: np.ndarray  # int8
    starts: np.ndarray  # int64, len = pieces + 1
    names: list[str]
    unit: str  # "quarter" or "second"

    def __len__(self) -> int:
        return len(self.names)

    def piece(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a, b = int(self.starts[i]), int(self.starts[i + 1])
        return self.onset[a:b], self.dur[a:b], self.pitch[a:b], self.part[a:b]

    def notes(self) -> int:
        return int(self.starts[-1])

    def save(self, path: Path, **extra: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # ranks under torchrun may write at once
        np.savez_compressed(
            tmp, **extra, onset=self.onset, dur=self.dur, pitch=self.pitch, part=self.part, starts=self.starts,
            names=np.array(self.names, dtype=object).astype(str), unit=np.array(self.unit),
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "NoteSet":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["onset"], z["dur"], z["pitch"], z["part"], z["starts"], [str(n) for n in z["names"]], str(z["unit"]))

    @classmethod
    def build(cls, pieces: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], unit: str) -> "NoteSet":
        lens = [len(p[1]) for p in pieces]
        starts = np.zeros(len(pieces) + 1, dtype=np.int64)
        starts[1:] = np.cumsum(lens)
        cat = lambda k, dt: np.concatenate([np.asarray(p[k], dtype=dt) for p in pieces]) if pieces else np.zeros(0, dt)
        return cls(cat(1, np.float64), cat(2, np.float64), cat(3, np.int16), cat(4, np.int8), starts, [p[0] for p in pieces], unit)


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _split_abc(text: str) -> list[str]:
    """Split an ABC file into tunes, each prefixed with the file header (defaults like L:, M:)."""
    header: list[str] = []
    tunes: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("X:"):
            tunes.append([line])
        elif tunes:
            tunes[-1].append(line)
        else:
            header.append(line)
    head = [h for h in header if len(h) > 1 and h[1] == ":" and not h.startswith("%")]
    return ["\n".join(t[:1] + head + t[1:]) + "\n" for t in tunes]


def _score_notes(score, part_index_of=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flatten a music21 score into (onset, dur, pitch, part) in quarter notes; ties merged, graces dropped."""
    from music21 import stream

    parts = list(score.parts) if isinstance(score, stream.Score) and len(score.parts) else [score]
    rows: list[tuple[float, float, int, int]] = []
    for pi, part in enumerate(parts):
        flat = part.stripTies().flatten() if hasattr(part, "stripTies") else part.flatten()
        for n in flat.notes:
            d = float(n.duration.quarterLength)
            if d <= 0:  # grace notes have no length
                continue
            on = float(n.getOffsetInHierarchy(flat)) if False else float(n.offset)
            for p in n.pitches:
                m = int(p.midi)
                if 0 <= m <= 127:
                    rows.append((on, d, m, pi))
    rows.sort(key=lambda r: (r[0], r[3], r[2]))
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return a[:, 0], a[:, 1], a[:, 2].astype(np.int16), a[:, 3].astype(np.int8)


def parse_folk(limit_files: int | None = None, progress: bool = True) -> NoteSet:
    """Parse the four licensed folk ABC collections tune by tune (a tune that fails is skipped)."""
    from music21 import converter

    files: list[Path] = []
    root = corpus_root()
    for d in FOLK_DIRS:
        files += sorted((root / d).glob("*.abc"))
    if limit_files:
        files = files[:limit_files]
    pieces = []
    failed = 0
    t0 = time.time()
    for fi, f in enumerate(files):
        text = f.read_text(encoding="latin-1")
        for ti, tune in enumerate(_split_abc(text)):
            try:
                s = converter.parseData(tune, format="abc")
                on, du, pi, pa = _score_notes(s)
            except Exception as exc:  # music21 raises many kinds on odd ABC
                failed += 1
                log.debug("skip %s tune %d: %s", f.name, ti, exc)
                continue
            if len(pi) >= 8:
                pieces.append((f"{f.parent.name}/{f.name}#{ti}", on, du, pi, np.zeros_like(pa)))
        if progress:
            print(f"[folk] {fi + 1}/{len(files)} files, {len(pieces)} tunes, {failed} failed, {time.time() - t0:.0f}s", flush=True)
    return NoteSet.build(pieces, "quarter")


def parse_chorales(limit: int | None = None, progress: bool = True) -> NoteSet:
    """Parse the Bach chorales (four-part MusicXML) with each part numbered from the top."""
    from music21 import converter

    root = corpus_root() / "bach"
    files = sorted(p for p in root.iterdir() if p.suffix in (".mxl", ".xml"))
    if limit:
        files = files[:limit]
    pieces = []
    t0 = time.time()
    for fi, f in enumerate(files):
        try:
            s = converter.parse(str(f))
            if len(s.parts) < 3:
                continue
            on, du, pi, pa = _score_notes(s)
        except Exception as exc:
            log.warning("skip %s: %s", f.name, exc)
            continue
        if len(pi) >= 16:
            pieces.append((f"bach/{f.name}", on, du, pi, pa))
        if progress and (fi % 20 == 0 or fi + 1 == len(files)):
            print(f"[chorales] {fi + 1}/{len(files)} files, {len(pieces)} kept, {time.time() - t0:.0f}s", flush=True)
    return NoteSet.build(pieces, "quarter")


def dedupe(ns: NoteSet) -> NoteSet:
    """Drop repeated tunes (O'Neill's files overlap, and collections share tunes), keeping the first.

    Two pieces are the same when their first 48 melodic intervals and note lengths match,
    so a transposed copy counts too; this also keeps copies out of the held-out split.
    """
    seen: set = set()
    keep = []
    for i in range(len(ns)):
        on, du, pi, pa = ns.piece(i)
        top = pa == 0
        key = (tuple(np.diff(pi[top][:49].astype(np.int64)).tolist()), tuple(np.round(du[top][:48], 3).tolist()))
        if key not in seen:
            seen.add(key)
            keep.append(i)
    if len(keep) == len(ns):
        return ns
    pieces = [(ns.names[i], *ns.piece(i)) for i in keep]
    return NoteSet.build(pieces, ns.unit)


def cache_dir() -> Path:
    return Path(os.environ.get("LIVECOMPOSER_CACHE", "cache"))


def load_corpus(name: str, rebuild: bool = False) -> NoteSet:
    """The cached note arrays for ``folk`` or ``chorales``, parsing them the first time."""
    if name not in ("folk", "chorales"):
        raise ValueError(f"unknown corpus {name!r}: use folk or chorales")
    path = cache_dir() / f"{name}.npz"
    if path.exists() and not rebuild:
        return dedupe(NoteSet.load(path))
    models = paths.shipped_dir("models")
    shipped = models / "corpus" / f"{name}.npz" if models else None
    if shipped is not None and shipped.exists() and not rebuild:  # parsed here once and committed: saves 20 CPU-minutes
        return dedupe(NoteSet.load(shipped))
    log.warning("parsing the %s corpus with music21 (several CPU-minutes, once; cached in %s)", name, path)
    ns = parse_folk() if name == "folk" else parse_chorales()
    ns.save(path)
    return dedupe(ns)


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.WARNING)
    for name in sys.argv[1:]:
        t = time.time()
        ns = load_corpus(name, rebuild=True)
        print(f"{name}: {len(ns)} pieces, {ns.notes()} notes, {time.time() - t:.0f}s -> {cache_dir() / (name + '.npz')}")
