#!/usr/bin/env bash
# Train the shipped music models on one GPU within a hard wall-time limit.
#
#   scripts/device/music.sh OUTDIR
#
# Three trainings share the GPU at once: folk-melody with two dropout rates (hundreds of
# passes over the same 3,901 tunes can overfit; the better one by validation NLL is kept)
# and chorale-harmony.  Each stops itself after MUSIC_MAX_MINUTES of training (the cosine
# schedule is laid over that time) and is killed 1 minute later if it has not.  OUTDIR gets
# at most four files: folk-melody/{config.json,model.safetensors} and the same for
# chorale-harmony; a job that produced no checkpoint leaves NAME.log (its last lines)
# instead.  Needs only torch, numpy, safetensors and tqdm: the training path imports no MIDI
# or music21 module.  Works on a CPU too (MUSIC_DEVICE=cpu, for a smoke test).
#
# Training on across device calls: MUSIC_STATE=1 also writes NAME.state.tar (the kept run's
# train_state/: optimizer, RNG, schedule; about 11 MB at hidden 384), six files in all.  A later
# call with MUSIC_RESUME=DIR (DIR holding NAME/ and NAME.state.tar from such a run, carried
# along as an ignored folder) resumes each model found there for MUSIC_MAX_MINUTES more, its
# cosine stretched over the old and the new minutes, and trains no folk twin.
#
# Environment: MUSIC_MAX_MINUTES (default 6), MUSIC_HIDDEN (384: the widest whose
# feed + sample p99 stays well inside 0.5 ms on one CPU thread), MUSIC_DEVICE (auto),
# MUSIC_MAX_PIECES (unset: all), MUSIC_WORKERS (render processes per folk job, default 4),
# MUSIC_STATE, MUSIC_RESUME.
set -u
OUTDIR=${1:?usage: scripts/device/music.sh OUTDIR}
MIN=${MUSIC_MAX_MINUTES:-6}
HIDDEN=${MUSIC_HIDDEN:-384}
DEVICE=${MUSIC_DEVICE:-auto}
WORKERS=${MUSIC_WORKERS:-4}
STATE=${MUSIC_STATE:-0}
RESUME=${MUSIC_RESUME:-}
[ -n "$RESUME" ] && { RESUME=$(cd "$RESUME" && pwd) || exit 1; }
PY=${PYTHON:-python3}
mkdir -p "$OUTDIR" && OUTDIR=$(cd "$OUTDIR" && pwd) || exit 1
cd "$(dirname "$0")/../.." || exit 1
WORK=$(mktemp -d /tmp/music.XXXXXX)
export PYTHONUNBUFFERED=1 LIVECOMPOSER_CACHE="$WORK/cache" OMP_NUM_THREADS=1
EXTRA=()
[ -n "${MUSIC_MAX_PIECES:-}" ] && EXTRA+=(--max-pieces "$MUSIC_MAX_PIECES" --min-notes 100)
KILL_AFTER=$("$PY" -c "print(int(float('$MIN') * 60 + 60))")

# Only livecomposer.commands.train and the model package are imported (not every command).
train() {  # train NAME DATA OUT ARGS...
    local name=$1 data=$2 out=$3
    shift 3
    timeout -k 10 "$KILL_AFTER" "$PY" -c '
import argparse, sys
from livecomposer.commands import train
p = argparse.ArgumentParser(prog="livecomposer")
train.register(p.add_subparsers())
a = p.parse_args(sys.argv[1:])
sys.exit(a.func(a))' train --data "$data" --out "$out" --device "$DEVICE" --hidden "$HIDDEN" \
        --schedule cosine --max-minutes "$MIN" --epochs 100000 --patience 100000 --no-progress \
        "${EXTRA[@]}" "$@" >"$WORK/$name.log" 2>&1
    echo "$name: exit $?"
}

# start_or_resume LOG NAME DATA RUN DROPOUT WORKERS: a fresh run, or the one in $RESUME continued.
start_or_resume() {
    local log=$1 name=$2 data=$3 out="$WORK/$4/$2" dropout=$5 workers=$6 total
    if [ -n "$RESUME" ] && [ -f "$RESUME/$name.state.tar" ]; then
        mkdir -p "$out" && cp "$RESUME/$name/config.json" "$RESUME/$name/model.safetensors" "$out/" &&
            tar -xf "$RESUME/$name.state.tar" -C "$out" || { echo "$name: cannot unpack $RESUME"; return 1; }
        total=$("$PY" -c "import json, sys; s = json.load(open(sys.argv[1]))['train_state']
print(s['wall_s'] / 60 + float(sys.argv[2]))" "$out/train_state/config.json" "$MIN")
        train "$log" "$data" "$out" --resume --schedule-minutes "$total" --workers "$workers"
    else
        train "$log" "$data" "$out" --dropout "$dropout" --workers "$workers"
    fi
}

START=$(date +%s)
start_or_resume folk-a folk-melody folk a 0.1 "$WORKERS" &
if [ -z "$RESUME" ] || [ ! -f "$RESUME/folk-melody.state.tar" ]; then
    start_or_resume folk-b folk-melody folk b 0.2 "$WORKERS" &
fi
start_or_resume chorales chorale-harmony chorales c 0.2 2 &
wait
echo "trainings done after $(( $(date +%s) - START )) s"

# Keep the better folk run; copy each model's checkpoint (or, failing that, its log's tail).
"$PY" - "$WORK" "$OUTDIR" "$STATE" <<'EOF'
import json, shutil, sys, tarfile
from pathlib import Path

work, outdir, keep_state = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"


def best(folder: Path) -> float:
    try:
        return float(json.loads((folder / "config.json").read_text())["train"]["best_val_nll"])
    except (OSError, ValueError, KeyError):
        return float("inf")


for name, runs, logs in (("folk-melody", ["a", "b"], ["folk-a", "folk-b"]), ("chorale-harmony", ["c"], ["chorales"])):
    cands = sorted((best(work / r / name), r) for r in runs)
    for nll, r in cands:
        print(f"{name} run {r}: best validation NLL {nll:.4f}")
    nll, r = cands[0]
    src = work / r / name
    if nll < float("inf") and (src / "model.safetensors").is_file():
        (outdir / name).mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "model.safetensors"):
            shutil.copy(src / f, outdir / name / f)
        hist = json.loads((src / "config.json").read_text())["train"]
        print(f"{name}: kept run {r}, {hist['epochs']} epochs, {hist['events_seen']:,} events, {hist['wall_s']} s")
        if keep_state and (src / "train_state" / "optimizer.safetensors").is_file():
            with tarfile.open(outdir / f"{name}.state.tar", "w") as tar:
                tar.add(src / "train_state", arcname="train_state")
    else:
        tail = "\n".join("\n".join((work / f"{lg}.log").read_text(errors="replace").splitlines()[-40:]) for lg in logs
                         if (work / f"{lg}.log").exists())
        (outdir / f"{name}.log").write_text(tail + "\n")
        print(f"{name}: no checkpoint; log tail in {outdir / (name + '.log')}")
EOF
for f in "$WORK"/*.log; do echo "== $f"; tail -n 4 "$f"; done
echo "music.sh done after $(( $(date +%s) - START )) s"
