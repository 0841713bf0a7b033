"""What a live set needs from this machine, checked one item at a time, each with a one-line fix.

Each check returns a :class:`Check`: ``ok``, ``warn`` (a set runs, but something will
sound late, glitch, or a feature is missing) or ``fail`` (no set can run: no MIDI system,
no JACK server where JACK is the MIDI system, a model that does not load).  Nothing here
changes the machine; the JACK server is asked through the system's libjack (the library
PipeWire replaces with its own), with a client that never activates.
"""

from __future__ import annotations

import ctypes
import glob
import os
import resource
import shutil
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

OK, WARN, FAIL = "ok", "warn", "fail"

#: A JACK period longer than this (ms) makes answers audibly late for a player.
LONG_PERIOD_MS = 11.0
#: Below this, the kernel may page out what JACK and our realtime threads touch.
MEMLOCK_MIN = 256 * 2**20
LIMITS_HELP = "add yourself to the audio group (`sudo usermod -aG audio $USER`, then log in again); Debian's jackd2 writes /etc/security/limits.d/audio.conf (`sudo dpkg-reconfigure -p high jackd2`)"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def run_checks(api: str = "auto") -> list[Check]:
    """Every check, in the order a player meets them; ``api`` is the MIDI system `run` would use."""
    checks: list[Callable[[], Check]] = [
        lambda: audio_server(api),
        lambda: midi(api),
        realtime,
        memory_locking,
        cpu_governor,
        portaudio,
        fluidsynth,
        soundfont,
        models,
        browser,
    ]
    return [check() for check in checks]


def can_play(checks: list[Check]) -> bool:
    return all(c.status != FAIL for c in checks)


# --------------------------------------------------------------------------- audio server


def jack_needed(api: str) -> bool:
    """Whether `run --api API` would use JACK for MIDI (Linux without the ALSA sequencer)."""
    return api == "jack" or (api == "auto" and sys.platform.startswith("linux") and not os.path.exists("/dev/snd/seq"))


def _loaded_libjack() -> str:
    """The file of the libjack this process loaded (PipeWire's lives under .../pipewire-0.3/jack/)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1]
                if "libjack" in path and path.startswith("/"):
                    return path
    except OSError:
        pass
    return "libjack"


def audio_server(api: str) -> Check:
    """The JACK (or PipeWire-JACK) server: reachable, its sample rate and period."""
    from ..rt import jackclient

    name = "audio server"
    needed = jack_needed(api)
    missing = FAIL if needed else WARN
    why = "" if needed else " (needed for --api jack, JACK-only synths and the monitor on JACK)"
    lib = jackclient.libjack()
    if lib is None:
        return Check(name, missing, f"the JACK library is not installed{why}",
                     "install JACK (Debian: `apt-get install jackd2`) or PipeWire's JACK (`apt-get install pipewire-jack`)")
    server = jackclient.current_server()
    status = ctypes.c_int(0)
    handle = lib.open_named(b"lc-doctor", jackclient.JACK_NO_START_SERVER | jackclient.JACK_SERVER_NAME,
                            ctypes.byref(status), server.encode())
    if not handle:
        return Check(name, missing, f"no JACK server {server!r} answers (status 0x{status.value:x}){why}",
                     "start one: `jackd -d alsa -r 48000 -p 128 &` (no sound card: `jackd -d dummy &`); on a PipeWire desktop run livecomposer under `pw-jack`")
    try:
        rate = _uint_call(lib, "jack_get_sample_rate", handle)
        period = _uint_call(lib, "jack_get_buffer_size", handle)
    finally:
        lib.jack_client_close(handle)
    kind = "PipeWire's JACK" if "pipewire" in _loaded_libjack().lower() else "JACK"
    ms = 1000.0 * period / rate if rate else float("nan")
    detail = (f"{kind} server {server!r}: {rate} Hz, period {period} frames = {ms:.1f} ms "
              f"(MIDI out lands one period late: {ms:.1f} ms; audio in to out at least {2 * ms:.1f} ms)")
    if ms > LONG_PERIOD_MS:
        return Check(name, WARN, detail, "a shorter period plays tighter: `jackd -d alsa -p 128` (PipeWire: `PIPEWIRE_QUANTUM=128/48000 pw-jack ...`)")
    return Check(name, OK, detail)


def _uint_call(lib: ctypes.CDLL, function: str, handle: int) -> int:
    """Call a ``jack_nframes_t f(jack_client_t *)`` (a fresh function object: libjack's
    shared prototypes stay as the ports module set them)."""
    f = lib[function]
    f.restype = ctypes.c_uint32
    f.argtypes = [ctypes.c_void_p]
    return int(f(handle))


# --------------------------------------------------------------------------- MIDI


def midi(api: str) -> Check:
    """The MIDI system `run` would use, and the ports it sees."""
    from ..ports.base import PortError
    from ..ports.listing import list_ports

    try:
        listing = list_ports(api)
    except PortError as exc:
        return Check("MIDI", FAIL, f"no MIDI system for --api {api}", str(exc))
    detail = (f"{listing.backend}: {len(listing.inputs)} input(s) {_few(listing.inputs)}, "
              f"{len(listing.outputs)} output(s) {_few(listing.outputs)}")
    if not listing.inputs:
        return Check("MIDI", WARN, detail, "plug in a keyboard (or start your DAW's MIDI output); `livecomposer ports` lists what appears")
    return Check("MIDI", OK, detail)


def _few(names: list[str], shown: int = 3) -> str:
    if not names:
        return "(none)"
    more = f", +{len(names) - shown} more" if len(names) > shown else ""
    return "(" + ", ".join(names[:shown]) + more + ")"


# --------------------------------------------------------------------------- the machine


def realtime() -> Check:
    """Whether our input pollers and engine may run SCHED_FIFO (tried on a throwaway thread)."""
    from ..rt.priority import INPUT_READER, make_realtime

    if not hasattr(os, "sched_setscheduler"):
        return Check("realtime priority", WARN, f"not available on {sys.platform}: timing rests on the system's scheduler")
    granted: list[bool] = []
    probe = threading.Thread(target=lambda: granted.append(make_realtime(INPUT_READER)))
    probe.start()
    probe.join()
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    limit = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    where = f"ulimit -r {limit}; {_audio_group()}; {_limits_files()}"
    if granted and granted[0]:
        return Check("realtime priority", OK, f"SCHED_FIFO {INPUT_READER} granted ({where})")
    return Check("realtime priority", WARN, f"SCHED_FIFO {INPUT_READER} refused: a busy machine makes MIDI late ({where})", LIMITS_HELP)


def _audio_group() -> str:
    try:
        import grp

        gid = grp.getgrnam("audio").gr_gid
    except (ImportError, KeyError):
        return "no audio group"
    return "in the audio group" if gid in os.getgroups() or os.getgid() == gid else "not in the audio group"


def _limits_files() -> str:
    files = [f for f in glob.glob("/etc/security/limits.d/*") if "audio" in Path(f).name]
    active = [f for f in files if f.endswith(".conf")]
    if active:
        return "limits: " + ", ".join(active)
    return "no audio limits file" + (f" ({', '.join(files)} not active)" if files else "")


def memory_locking() -> Check:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() == 0:
        return Check("memory locking", OK, "root: not limited")
    if soft == resource.RLIM_INFINITY or soft >= MEMLOCK_MIN:
        shown = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 2**20} MiB"
        return Check("memory locking", OK, f"ulimit -l {shown}")
    return Check("memory locking", WARN, f"ulimit -l {soft // 1024} KiB: JACK cannot keep its buffers in memory (page faults glitch)", LIMITS_HELP)


def cpu_governor() -> Check:
    governors = {Path(f).read_text().strip() for f in glob.glob("/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor")}
    if not governors:
        return Check("CPU governor", OK, "no frequency scaling exposed (fixed clock or a virtual machine)")
    if governors == {"performance"}:
        return Check("CPU governor", OK, "performance")
    return Check("CPU governor", WARN, f"{', '.join(sorted(governors))}: the clock slows between notes and wakes late",
                 "`sudo cpupower frequency-set -g performance` for the set (Debian package linux-cpupower)")


# --------------------------------------------------------------------------- sound and sight


def portaudio() -> Check:
    """The monitor's sound (``--monitor``) goes through PortAudio."""
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        return Check("PortAudio", WARN, f"missing ({exc}): --monitor cannot sound",
                     "`apt-get install libportaudio2` (Debian/Ubuntu), `brew install portaudio` (macOS)")
    return Check("PortAudio", OK, sounddevice.get_portaudio_version()[1])


def fluidsynth() -> Check:
    path = shutil.which("fluidsynth")
    if path is None:
        return Check("FluidSynth", WARN, "missing: --monitor fluidsynth cannot sound",
                     "`apt-get install fluidsynth` (Debian/Ubuntu), `brew install fluid-synth` (macOS)")
    return Check("FluidSynth", OK, path)


def soundfont() -> Check:
    from ..audio.fluid import find_soundfont
    from ..audio.monitor import MonitorError

    try:
        return Check("soundfont", OK, str(find_soundfont()))
    except MonitorError as exc:
        return Check("soundfont", WARN, "no General MIDI soundfont: --monitor fluidsynth cannot sound", str(exc).split(": ", 1)[-1])


def models() -> Check:
    """The shipped music models and the visuals' generator load (a partner preset needs them)."""
    from ..model import CheckpointError, load_model, shipped_models

    names = shipped_models()
    if not names:
        return Check("models", FAIL, "no models ship with this install", "reinstall livecomposer (`pip install --force-reinstall livecomposer`)")
    for name in names:
        try:
            load_model(name)
        except (CheckpointError, OSError, RuntimeError) as exc:
            return Check("models", FAIL, f"{name} does not load: {exc}", "reinstall livecomposer, or set $LIVECOMPOSER_MODELS to a folder of good checkpoints")
    loaded = ", ".join(names)
    try:
        from ..visual.gan import load_generator
        from ..visual.renderer import resolve_model

        load_generator(resolve_model("clipart-gan"))
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as exc:
        return Check("models", WARN, f"{loaded} load; the visuals' generator does not: {exc}", "`livecomposer train-visual` makes one")
    return Check("models", OK, f"{loaded} and the visuals' clipart-gan load")


def browser() -> Check:
    """The visuals (``--visual``) are a page on http://127.0.0.1:8765 that a browser shows full screen."""
    import webbrowser

    from ..visual.browser import find_chromium

    found = find_chromium()
    if found is None:
        try:
            found = webbrowser.get().name
        except webbrowser.Error:
            found = None
    if found is None:
        return Check("browser", WARN, "none found: --visual serves its page, but nothing here shows it",
                     "`apt-get install chromium` (or open http://127.0.0.1:8765 from another machine's browser through an SSH tunnel)")
    return Check("browser", OK, f"{found}: `run --visual` shows on http://127.0.0.1:8765 (f: full screen)")
