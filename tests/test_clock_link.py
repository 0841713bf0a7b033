"""Ableton Link wiring: config, the guard that keeps it off in tests and CI, and the grid math.

A Link session is never constructed here: it would announce itself by multicast."""

from __future__ import annotations

import sys

import pytest

from livecomposer.kernel.events import NS_PER_MS, NS_PER_S
from livecomposer.app.link import LinkError, LinkSync, apply_link_state, link_forbidden, link_requested
from livecomposer.app.presets import load_preset
from livecomposer.kernel.tempo import Tempo


def test_requested_only_by_source_link(tmp_path):
    assert link_requested({"source": "link", "bpm": 100})
    assert not link_requested({"source": "internal"})
    assert not link_requested(None)
    preset = tmp_path / "linked.yaml"
    preset.write_text("name: linked\nclock: {source: link, bpm: 100}\ngraph:\n  - thru\n")
    loaded = load_preset(preset)
    assert link_requested(loaded.clock)
    tempo = Tempo.from_config(loaded.clock)
    assert tempo.source == "link" and tempo.running and tempo.bpm == pytest.approx(100)
    assert tempo.tap(0) is None  # Link owns the tempo: taps go to Link, not our grid


def test_never_started_under_pytest():
    assert link_forbidden() is not None
    had_binding = "aalink" in sys.modules
    with pytest.raises(LinkError, match="never started"):
        LinkSync(Tempo(source="link")).start()
    assert ("aalink" in sys.modules) == had_binding  # refused before even importing the binding


def test_never_started_in_ci(monkeypatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    monkeypatch.setenv("CI", "true")
    assert "CI" in link_forbidden()


def test_link_state_moves_our_grid():
    tempo = Tempo(bpm=120, source="link")
    now = 10 * NS_PER_S
    # Link says: beat 33.5 at 100 BPM right now
    assert apply_link_state(tempo, 33.5, 100.0, now, playing=True)
    assert tempo.beat_at(now) == pytest.approx(33.5)
    assert tempo.bpm == pytest.approx(100.0)
    assert tempo.next_bar(now) == pytest.approx(now + 2.5 * 0.6 * NS_PER_S, abs=1000)
    # the same state a little later: within tolerance, no re-anchoring (no jitter added)
    later = now + 50 * NS_PER_MS
    assert not apply_link_state(tempo, tempo.beat_at(later) + 0.0001, 100.0, later)
    # a peer stops the transport
    apply_link_state(tempo, tempo.beat_at(later), 100.0, later, playing=False)
    assert not tempo.running
    # nonsense from the binding is ignored
    assert not apply_link_state(tempo, 0.0, 0.0, later)
