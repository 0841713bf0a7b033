"""Ableton Link: share tempo and bar phase with other Link apps (OFF unless the preset asks).

Enabled only by ``clock: {source: link}`` in a preset.  Link announces itself by UDP
multicast on every network interface, so it is never started in tests or CI (``start``
refuses when ``CI`` or ``PYTEST_CURRENT_TEST`` is set) and nothing here imports the binding
(``aalink``, ``pip install aalink``) until :meth:`LinkSync.start`.

A poller thread reads Link's beat and tempo every few milliseconds and re-anchors our
:class:`~livecomposer.kernel.tempo.Tempo` map when they drift apart by more than a small
tolerance, so plugins keep reading one consistent grid (one tuple swap, no locks).
Changes we make (tap, OSC, status keys) are pushed to Link with :meth:`LinkSync.set_bpm`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Mapping

from ..kernel.events import NS_PER_MS
from ..kernel.tempo import Tempo, TempoMap, bpm_to_beat_ns

log = logging.getLogger(__name__)

POLL_S = 0.005
PHASE_TOLERANCE_NS = NS_PER_MS  # re-anchor when our grid and Link's differ by more than this


class LinkError(RuntimeError):
    pass


def link_requested(clock: Any) -> bool:
    """True when the preset's clock section says ``source: link``."""
    if clock is None:
        return False
    source = clock.get("source") if isinstance(clock, Mapping) else getattr(clock, "source", None)
    return source == "link"


def link_forbidden() -> str | None:
    """Why Link must not start here (tests, CI), or None."""
    if os.environ.get("PYTEST_CURRENT_TEST"):
        return "Link is never started under pytest (it multicasts on the network)"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return "Link is never started in CI (it multicasts on the network)"
    if os.environ.get("LIVECOMPOSER_NO_LINK"):
        return "LIVECOMPOSER_NO_LINK is set"
    return None


def apply_link_state(tempo: Tempo, beat: float, bpm: float, now_ns: int, playing: bool | None = None) -> bool:
    """Bring our grid onto Link's: at ``now_ns`` Link is at ``beat`` with ``bpm``.  Returns
    True if the map was re-anchored (tempo changed, or phase off by more than the tolerance)."""
    if not 20.0 <= bpm <= 999.0:
        return False
    if playing is not None:
        tempo.running = bool(playing)
    m = tempo.map
    beat_ns = bpm_to_beat_ns(bpm)
    ours = m.beat_at(now_ns)
    same_tempo = abs(beat_ns - m.beat_ns) <= 1e-6 * beat_ns
    if same_tempo and abs(ours - beat) * m.beat_ns < PHASE_TOLERANCE_NS:
        return False
    tempo.map = TempoMap(now_ns, float(beat), beat_ns)
    return True


class LinkSync:
    """``LinkSync(tempo).start()`` after the engine starts; ``close()`` on the way out."""

    def __init__(self, tempo: Tempo, quantum: int | None = None) -> None:
        self.tempo = tempo
        self.quantum = quantum or tempo.beats_per_bar
        self.link: Any = None
        self.peers = 0
        self.updates = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "LinkSync":
        reason = link_forbidden()
        if reason:
            raise LinkError(reason)
        try:
            import aalink
        except ImportError:
            raise LinkError("Ableton Link needs the aalink package: pip install aalink") from None
        self.link = aalink.Link(self.tempo.bpm)
        self.link.quantum = self.quantum
        self.link.start_stop_sync_enabled = True
        self.link.enabled = True
        self._thread = threading.Thread(target=self._poll, name="livecomposer-link", daemon=True)
        self._thread.start()
        log.warning("Ableton Link on: announcing this session on the local network")
        return self

    def _poll(self) -> None:
        link = self.link
        while not self._stop.wait(POLL_S):
            try:
                beat, bpm, peers = link.beat, link.tempo, link.num_peers
                now = time.monotonic_ns()
                playing = link.playing if peers else None
            except Exception:
                log.exception("reading Link failed")
                continue
            self.peers = peers
            if apply_link_state(self.tempo, beat, bpm, now, playing):
                self.updates += 1

    def set_bpm(self, bpm: float) -> None:
        """Our tempo changed (tap, OSC, keys): tell the other Link apps."""
        if self.link is not None:
            self.link.tempo = float(bpm)

    def describe(self) -> str:
        return f"Link: {self.peers} peer(s)" if self.link is not None else "Link off"

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
            self._thread = None
        if self.link is not None:
            try:
                self.link.enabled = False
            finally:
                self.link = None
