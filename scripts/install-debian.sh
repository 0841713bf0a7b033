#!/usr/bin/env bash
# System packages livecomposer uses on Debian/Ubuntu: JACK (MIDI ports and an audio device,
# even without a sound card), PortAudio (the monitor synth), FluidSynth with a General MIDI
# soundfont (the DAW stand-in of the tests, and --monitor fluidsynth), the openclipart
# images (visualizer training), Chromium (the visualizer page's tests) and tmux (the status
# screen's test).  Run as root.
set -euo pipefail
echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    jackd2 libportaudio2 fluidsynth fluid-soundfont-gm openclipart-png chromium chromium-driver tmux ffmpeg >/dev/null
echo "system packages installed"
