"""Soak: long playing through the effects graph, on the manual clock at high speed (20
performance minutes here, an hour in ``bench --stage``) and in real time (15 s here, ten
minutes in the bench).  Memory (RSS and the live Python object count) and the per-step cost /
added latency stay flat, and nothing is left sounding.  Bounds are loose: they catch a leak
of one object per event (tens of thousands) or a queue that grows, not noise.
"""

from __future__ import annotations

from livecomposer.kernel.events import NS_PER_MS
from livecomposer.bench.robustness.runs import soak_manual, soak_realtime


def test_twenty_minutes_on_the_manual_clock_stay_flat() -> None:
    r = soak_manual(20, every_s=60)
    assert len(r.points) >= 19
    assert r.stuck == {}, "every note-on sent got its note-off"
    stats = r.engine.stats
    assert stats.notes_in > 9000 and stats.plugin_failures == 0 and stats.bad_messages == 0
    settled = r.points[1:]  # the first minute warms caches and imports
    assert settled[-1].objects - settled[0].objects < 2000, [p.objects for p in r.points]
    assert settled[-1].rss_mb - settled[0].rss_mb < 8, [round(p.rss_mb, 1) for p in r.points]
    first = sorted(p.p50_us for p in settled[:5])[2]
    last = sorted(p.p50_us for p in settled[-5:])[2]
    assert last < 3 * first + 100, f"per-step cost grew: {first:.0f} -> {last:.0f} us"


def test_fifteen_seconds_in_real_time_stay_flat() -> None:
    r = soak_realtime(15, every_s=3)
    assert len(r.points) >= 4
    assert r.stuck == {}
    assert sum(p.n for p in r.points) > 60, "latency was measured on the notes played"
    assert r.points[-1].objects - r.points[0].objects < 2000, [p.objects for p in r.points]
    assert r.points[-1].rss_mb - r.points[0].rss_mb < 8
    assert max(p.p50_us for p in r.points) * 1000 < 20 * NS_PER_MS, [p.p50_us for p in r.points]
