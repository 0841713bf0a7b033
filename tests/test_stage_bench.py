"""``livecomposer bench --stage``: nothing without --stage; the soak figures and CSV it writes."""

from __future__ import annotations

import csv

from livecomposer.bench import BenchOptions
from livecomposer.bench import robustness as stage_bench
from livecomposer.bench.robustness.runs import soak_manual


def test_nothing_is_measured_without_stage() -> None:
    assert stage_bench.measure(BenchOptions(stage=False)) == []


def test_soak_figures_and_csv(tmp_path) -> None:
    r = soak_manual(3, every_s=60)
    path = tmp_path / "out" / "soak.csv"
    m = stage_bench._soak_measurement("stage soak: 3 min", r, 1, path)
    assert m.n == sum(p.n for p in r.points) > 1000
    assert m.median_us > 0 and m.p99_us >= m.median_us and m.max_us >= m.p99_us
    assert "stuck 0" in m.note and "min 1.0" in m.note and str(path) in m.note
    rows = list(csv.DictReader(path.open()))
    assert [round(float(row["minute"])) for row in rows] == [1, 2, 3]
    assert all(float(row["rss_mb"]) > 10 and int(row["objects"]) > 1000 for row in rows)
