#!/usr/bin/env bash
# From a fresh clone to the demo, on Debian 12+ / Ubuntu 24.04+ (root, or a user with sudo):
#
#   bash scripts/setup.sh
#
# 1. System packages (scripts/install-debian.sh; apt's progress is shown).
# 2. A virtual environment, .venv (or $LC_VENV): Debian's own pip refuses to install into
#    the system Python ("externally-managed-environment").
# 3. torch 2.13.0, the CPU build, BEFORE the project (scripts/install-torch.sh): otherwise
#    pip resolves torch from PyPI, whose Linux build pulls several GB of CUDA libraries.
# 4. livecomposer itself (editable: presets and models are read from this checkout).
# 5. `livecomposer demo`: the bundled phrase through the duet preset, written to out/demo/.
# Safe to run again: each step skips what is already there.
set -euo pipefail

cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
log() { printf '[setup] %s\n' "$*" >&2; }
started=$SECONDS
step() { log "($((SECONDS - started)) s) $*"; }

step "1/5 system packages"
bash scripts/install-debian.sh

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    log "livecomposer needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1) (Ubuntu 22.04: use 24.04, or set PYTHON=python3.11)"
    exit 1
fi

VENV="${LC_VENV:-.venv}"
step "2/5 virtual environment $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

step "3/5 torch 2.13.0 (CPU)"
bash scripts/install-torch.sh "$VENV/bin/python"

step "4/5 livecomposer"
"$VENV/bin/python" -m pip install -e .

step "5/5 livecomposer demo"
"$VENV/bin/livecomposer" demo

step "done. Next:"
cat >&2 <<EOF
  source $VENV/bin/activate
  livecomposer doctor          # is this machine ready for a live set? (one fix line per problem)
  livecomposer presets list    # the presets 'run' takes by name
  livecomposer run duet        # play: connect your keyboard and your DAW to the 'livecomposer' ports
EOF
