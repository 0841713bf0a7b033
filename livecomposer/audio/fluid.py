"""``--monitor fluidsynth``: hear the output through FluidSynth and a General MIDI soundfont.

FluidSynth runs as a child process with its command shell on a pipe; the observer only puts
events on a queue, and a feeder thread writes them as shell commands (``noteon 0 60 100``),
so the engine never waits on the pipe.  Offline, :func:`render_wav_fluidsynth` writes the
events to a MIDI file and lets ``fluidsynth -F`` render it faster than real time.
"""

from __future__ import annotations

import glob
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

import mido

from ..kernel.events import NS_PER_S, Event, Kind, sorted_events, to_bytes
from .monitor import MonitorError

SOUNDFONT_ENV = "LIVECOMPOSER_SOUNDFONT"
SOUNDFONT_PLACES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/*.sf2",
    "/opt/homebrew/share/soundfonts/*.sf2",
    "/opt/homebrew/share/fluid-synth/*.sf2",
)
JACK_ID = "livecomposer-fluidsynth"


def find_fluidsynth() -> str:
    path = shutil.which("fluidsynth")
    if path is None:
        raise MonitorError("fluidsynth is not installed: apt-get install fluidsynth (Debian/Ubuntu), brew install fluid-synth (macOS)")
    return path


def find_soundfont(explicit: str | os.PathLike | None = None) -> Path:
    """The soundfont to use: ``explicit``, else $LIVECOMPOSER_SOUNDFONT, else a GM soundfont
    in the usual places."""
    candidates = [explicit] if explicit else []
    if os.environ.get(SOUNDFONT_ENV):
        candidates.append(os.environ[SOUNDFONT_ENV])
    for place in candidates:
        if not Path(place).is_file():
            raise MonitorError(f"soundfont {place} does not exist")
        return Path(place)
    for pattern in SOUNDFONT_PLACES:
        for found in sorted(glob.glob(pattern)):
            return Path(found)
    raise MonitorError(
        "no General MIDI soundfont found: install fluid-soundfont-gm (Debian/Ubuntu) or set "
        f"{SOUNDFONT_ENV}=/path/to/soundfont.sf2"
    )


def jack_running() -> bool:
    if shutil.which("jack_lsp") is None:
        return False
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    return subprocess.run(["jack_lsp"], capture_output=True, env=env).returncode == 0


def shell_command(event: Event) -> str | None:
    """The FluidSynth shell command that plays ``event`` (None: nothing to play)."""
    k, ch = event.kind, event.channel
    if k is Kind.NOTE_ON:
        return f"noteon {ch} {event.note} {max(1, min(127, event.velocity))}"
    if k is Kind.NOTE_OFF:
        return f"noteoff {ch} {event.note}"
    if k is Kind.CONTROL:
        return f"cc {ch} {event.control} {max(0, min(127, event.value))}"
    if k is Kind.PROGRAM:
        return f"prog {ch} {event.value & 0x7F}"
    if k is Kind.PITCHBEND:
        return f"pitch_bend {ch} {max(0, min(16383, event.value + 8192))}"
    return None


class FluidSynthMonitor:
    """Engine observer that plays what is sent through a FluidSynth child process.

    ``FluidSynthMonitor(soundfont=None, audio_driver=None, gain=0.6)``: the driver defaults
    to ``jack`` when a JACK server runs, else FluidSynth's own default for this system.
    """

    def __init__(self, soundfont: str | os.PathLike | None = None, audio_driver: str | None = None, gain: float = 0.6) -> None:
        self.soundfont = soundfont
        self.audio_driver = audio_driver
        self.gain = gain
        self.process: subprocess.Popen | None = None
        self.queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.sent = 0
        self._feeder: threading.Thread | None = None
        self.device_name = ""

    def start(self) -> "FluidSynthMonitor":
        exe = find_fluidsynth()
        sf2 = find_soundfont(self.soundfont)
        driver = self.audio_driver or ("jack" if jack_running() else None)
        cmd = [exe, "-n", "-g", str(self.gain), "-o", "shell.prompt="]
        if driver:
            cmd += ["-a", driver]
        if driver == "jack":
            cmd += ["-o", f"audio.jack.id={JACK_ID}", "-o", "audio.jack.autoconnect=1"]
        cmd.append(str(sf2))
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # FluidSynth exits at once if its audio driver fails
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else "").strip().splitlines()
                raise MonitorError(f"fluidsynth stopped at start ({driver or 'default'} audio): {err[-1] if err else 'no message'}")
            time.sleep(0.05)
        self.device_name = f"fluidsynth ({driver or 'default'} audio, {sf2.name})"
        self._feeder = threading.Thread(target=self._feed, name="livecomposer-fluidsynth", daemon=True)
        self._feeder.start()
        return self

    def observe(self, inputs: Sequence[Event], outputs: Sequence[Event], now: int) -> None:
        for event in outputs:
            line = shell_command(event)
            if line is not None:
                self.queue.put(line)

    def _feed(self) -> None:
        proc = self.process
        assert proc is not None and proc.stdin is not None
        while True:
            line = self.queue.get()
            if line is None:
                return
            try:
                proc.stdin.write(line + "\n")
                proc.stdin.flush()
                self.sent += 1
            except (BrokenPipeError, OSError, ValueError):
                return

    def close(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        self.queue.put(None)
        if self._feeder is not None:
            self._feeder.join(2)
        try:
            if proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            proc.wait(3)
        except (BrokenPipeError, OSError, ValueError, subprocess.TimeoutExpired):
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def describe(self) -> str:
        return self.device_name if self.running else "monitor off"

    def __enter__(self) -> "FluidSynthMonitor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_midi(events: Iterable[Event], path: str | os.PathLike, start_ns: int | None = None, ticks_per_beat: int = 960) -> Path:
    """A type-0 MIDI file of the channel events (at 120 BPM: 1 tick = 1/1920 s)."""
    timed = [e for e in sorted_events(events) if e.kind in (Kind.NOTE_ON, Kind.NOTE_OFF, Kind.CONTROL, Kind.PROGRAM, Kind.PITCHBEND)]
    start = (timed[0].time if timed else 0) if start_ns is None else start_ns
    mid = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    ticks_per_ns = ticks_per_beat * 2 / NS_PER_S
    last = 0
    for e in timed:
        tick = max(0, int(round((e.time - start) * ticks_per_ns)))
        track.append(mido.Message.from_bytes(to_bytes(e), time=max(0, tick - last)))
        last = max(last, tick)
    track.append(mido.MetaMessage("end_of_track", time=ticks_per_beat))
    mid.save(str(path))
    return Path(path)


def render_wav_fluidsynth(
    events: Iterable[Event],
    path: str | os.PathLike,
    sample_rate: int = 48000,
    soundfont: str | os.PathLike | None = None,
    start_ns: int | None = None,
    gain: float = 0.6,
) -> Path:
    """Render the events with FluidSynth (faster than real time) to a 16-bit WAV."""
    exe = find_fluidsynth()
    sf2 = find_soundfont(soundfont)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        midi = write_midi(events, Path(tmp) / "session.mid", start_ns)
        result = subprocess.run(
            [exe, "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-T", "wav", "-O", "s16", "-F", str(path), str(sf2), str(midi)],
            capture_output=True, text=True, timeout=600,
        )
    if result.returncode != 0 or not path.exists():
        raise MonitorError(f"fluidsynth could not render {path}: {(result.stderr or result.stdout).strip()[-300:]}")
    return path


if __name__ == "__main__":  # pragma: no cover - manual check: play a C major arpeggio
    from ..kernel.events import note_off, note_on

    with FluidSynthMonitor() as m:
        t = time.monotonic_ns()
        for i, n in enumerate((60, 64, 67, 72)):
            m.observe((), [note_on(t, n)], t)
            time.sleep(0.3)
            m.observe((), [note_off(t, n)], t)
        time.sleep(0.5)
    sys.exit(0)
