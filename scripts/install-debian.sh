#!/usr/bin/env bash
# System packages livecomposer uses on Debian 12+ / Ubuntu 24.04+, installed only when missing.
#
#   bash scripts/install-debian.sh            # what a live set and the demo use
#   bash scripts/install-debian.sh --tests    # also what the test suite drives
#
# Live set: Python 3.11+ with venv, JACK (MIDI ports and an audio device, even without a
# sound card), PortAudio (the monitor synth), FluidSynth with a General MIDI soundfont
# (--monitor fluidsynth), ffmpeg (the demo's visuals video), Chromium (shows the visuals
# page).  Tests add Chromium's WebDriver, tmux (the status-screen test), procps (ps, used
# by .ci/run), the openclipart images (visualizer training) and PipeWire with its JACK
# (tests/test_pipewire.py runs livecomposer through a headless PipeWire).
#
# Runs as root, or through sudo when not root (Debian's root has no sudo).  apt's own
# output is shown: it can take minutes, and a failure must say why.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
log() { printf '[install-debian] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo DEBIAN_FRONTEND=noninteractive "$@"
    else
        log "not root and no sudo: run this as root (su -c 'bash $0')"
        exit 1
    fi
}

# Alternatives are written a|b: the first one apt can install wins (Ubuntu names Chromium
# differently from Debian).
packages=(python3 python3-venv python3-pip jackd2 libportaudio2 fluidsynth fluid-soundfont-gm ffmpeg "chromium|chromium-browser")
if [ "${1:-}" = "--tests" ]; then
    packages+=("chromium-driver|chromium-chromedriver" tmux procps openclipart-png pipewire pipewire-jack)
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

missing=()
for entry in "${packages[@]}"; do
    found=""
    IFS='|' read -r -a names <<<"$entry"
    for name in "${names[@]}"; do
        if installed "$name"; then found="$name"; break; fi
    done
    [ -n "$found" ] || missing+=("$entry")
done
if [ "${#missing[@]}" -eq 0 ]; then
    log "system packages already installed"
    exit 0
fi

log "updating the package lists"
as_root apt-get update
chosen=()
for entry in "${missing[@]}"; do
    IFS='|' read -r -a names <<<"$entry"
    pick=""
    for name in "${names[@]}"; do
        if candidate "$name"; then pick="$name"; break; fi
    done
    if [ -n "$pick" ]; then
        chosen+=("$pick")
    else
        log "no package $entry on this system: skipped"
    fi
done
if [ "${#chosen[@]}" -eq 0 ]; then
    log "nothing this system's package lists offer is missing"
    exit 0
fi
# jackd2 asks whether members of the audio group may use realtime priority: yes (a live
# set wants it; `livecomposer doctor` checks it).  Non-interactive, so it never stops here.
echo "jackd2 jackd/tweak_rt_limits boolean true" | as_root debconf-set-selections
log "installing: ${chosen[*]}"
as_root apt-get install -y --no-install-recommends "${chosen[@]}"
log "system packages installed"
if [ "$(id -u)" -ne 0 ] && ! id -nG | grep -qw audio; then
    log "for realtime priority: sudo usermod -aG audio $USER, then log in again"
fi
