#!/usr/bin/env bash
# One GPU session for the visualizer: trains the FastGAN generator and, beside it on the same
# GPU, the self-supervised feature network that KID uses; both read the prepared image pack
# (.device-data/clipart-256.npz, made here by livecomposer.visual.dataset.prepare and carried
# along, since the GPU machine has no openclipart and no network).  If another helper left
# scripts/device/music.sh, it runs in the background meanwhile and is waited for.
#
#   bash scripts/device/train_visual.sh OUTDIR
#
# OUTDIR gets gan.tar (generator and feature network, safetensors + JSON, and the training
# log), samples.png (the last sample sheet) and progress.png (sheets over the run); while
# the run is going the files lie loose in OUTDIR, so a run cut short still leaves them.
# Knobs (environment): GAN_MINUTES (7: the total, counting earlier runs of a resumed
# checkpoint), ENC_MINUTES (5; 0: no feature network), BATCH (64), DEVICE (cuda), PACK,
# SHEET_EVERY (50 epochs), MUSIC_OUT ($OUT/music), MUSIC (0: do not run music.sh), FOLDERS (the
# openclipart folders the pack was made from, e.g. signs_and_symbols/flags; checked against it).
# Resuming across GPU sessions: RETURN_CHECKPOINT=1 also writes the training checkpoint
# (both networks, moving average, optimiser state; about 55 MB) as ckpt.part-aa, -ab, ...
# (15 MB each, under the per-file limit); copy those into .device-data/ and the next run
# (RESUME=1) joins them and continues from there.  With the checkpoint coming back,
# samples.png stays behind (the files back are limited to 64 MiB together; the generator
# comes back, so its sheet can be drawn anywhere).
# Starting from a shipped generator instead (no checkpoint left): INIT_GENERATOR=PATH
# (e.g. models/clipart-gan.safetensors, which travels with the tree) starts the generator and
# its moving average from it with a fresh discriminator, which trains alone for D_WARMUP
# (100) steps first; GAN_MINUTES then counts that generator's minutes too.
set -u
out=${1:?usage: train_visual.sh OUTDIR}
device=${DEVICE:-cuda}
pack=${PACK:-.device-data/clipart-256.npz}
work=$(mktemp -d)
mkdir -p "$out"
export PYTHONUNBUFFERED=1
music_pid=
if [ -f scripts/device/music.sh ] && [ "${MUSIC:-1}" != 0 ]; then
    echo "music.sh found: running it in the background"
    bash scripts/device/music.sh "${MUSIC_OUT:-$OUT/music}" > "$work/music.log" 2>&1 &
    music_pid=$!
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, PIL, safetensors, tqdm; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'pillow', PIL.__version__)"

mkdir -p "$work/run"
if [ "${RESUME:-0}" = 1 ]; then
    cat .device-data/ckpt.part-* > "$work/run/checkpoint.pt" && echo "resuming from $(du -h "$work/run/checkpoint.pt" | cut -f1) of checkpoint"
fi
enc_pid=
if [ "${ENC_MINUTES:-5}" != 0 ]; then
    python3 -m livecomposer.visual.quality train-encoder --pack "$pack" --out "$out/clipart-features.safetensors" \
        --minutes "${ENC_MINUTES:-5}" --device "$device" --batch 512 --threads 4 > "$work/encoder.log" 2>&1 &
    enc_pid=$!
fi

python3 -m livecomposer.commands.train_visual --device "$device" --pack "$pack" --out "$work/run" \
    --export "$out/clipart-gan.safetensors" --minutes "${GAN_MINUTES:-7}" --batch "${BATCH:-64}" \
    --sheet-every "${SHEET_EVERY:-50}" --export-every 1 --no-progress --threads 4 ${FOLDERS:+--folders $FOLDERS} \
    ${INIT_GENERATOR:+--init-generator "$INIT_GENERATOR" --d-warmup "${D_WARMUP:-100}"} 2>&1 | tee "$out/train.log"
last=$(ls "$work/run/samples" | sort | tail -1)
[ "${RETURN_CHECKPOINT:-0}" = 1 ] || cp "$work/run/samples/$last" "$out/samples.png"
# a strip of the sheets over the run, first row of each, to see how it learned
python3 - "$work/run/samples" "$out/progress.png" <<'PY'
import sys
from pathlib import Path
from PIL import Image
sheets = sorted(Path(sys.argv[1]).glob("epoch-*.png"))
pick = [sheets[round(i * (len(sheets) - 1) / 7)] for i in range(8)] if len(sheets) >= 8 else sheets
rows = [Image.open(p).crop((0, 0, Image.open(p).width, 260)) for p in pick]
strip = Image.new("RGB", (rows[0].width, 260 * len(rows)))
for i, r in enumerate(rows):
    strip.paste(r, (0, 260 * i))
strip.resize((strip.width // 2, strip.height // 2), Image.BOX).save(sys.argv[2])
print("progress strip from", [p.name for p in pick])
PY

if [ -n "$enc_pid" ]; then
    wait "$enc_pid"; echo "encoder exit $?"
    tail -c 1500 "$work/encoder.log" | tr '\r' '\n' | grep -v "^encoder:" | tee -a "$out/train.log"
fi
[ "${RETURN_CHECKPOINT:-0}" = 1 ] && split -b 15M "$work/run/checkpoint.pt" "$out/ckpt.part-"
if [ -n "$music_pid" ]; then
    wait "$music_pid"; echo "music.sh exit $?"
    tail -c 3000 "$work/music.log"
fi
cd "$out" && tar -cf gan.tar clipart-gan.* $(ls clipart-features.* 2>/dev/null) train.log && rm clipart-gan.* $(ls clipart-features.* 2>/dev/null) train.log
ls -la "$out"
