#!/usr/bin/env bash
# torch 2.13.0, the CPU build, into a Python (a virtual environment's), BEFORE livecomposer:
# PyPI's Linux torch is the CUDA build and pulls several GB of NVIDIA libraries, and once
# torch is there the project's dependency range leaves it alone.
#
#   bash scripts/install-torch.sh .venv/bin/python [PIP OPTIONS...]
#
# Where from: a CPU wheel pip already finds without an index (a wheel folder in pip's own
# configuration, as on an offline build machine), else PyTorch's CPU index.
# TORCH_PIP_ARGS, when set, replaces that choice (TORCH_PIP_ARGS="" installs from PyPI).
set -euo pipefail

python="$1"
shift
if [ -n "${TORCH_PIP_ARGS+set}" ]; then
    read -r -a source <<<"$TORCH_PIP_ARGS"
elif [[ "$("$python" -m pip install --dry-run --no-index --no-deps torch==2.13.0 2>/dev/null || true)" == *"torch-2.13.0+cpu"* ]]; then
    source=()
else
    source=(--index-url https://download.pytorch.org/whl/cpu)
fi
"$python" -m pip install "$@" torch==2.13.0 "${source[@]}"
