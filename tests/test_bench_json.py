"""``livecomposer bench --json``: only JSON on stdout, null for a missing number, skipped figures as entries."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from livecomposer.bench import Measurement, skipped, summarize

REPO = Path(__file__).resolve().parents[1]


def bench(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livecomposer.cli", "bench", "--json", "--quick", *args],
                          capture_output=True, text=True, timeout=600, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO), **env))


def test_a_missing_number_is_null_and_a_skipped_figure_says_why() -> None:
    empty = summarize("x", [])
    assert math.isnan(empty.median_us)
    assert json.dumps(empty.as_dict(), allow_nan=False)
    assert empty.as_dict()["median_us"] is None and empty.as_dict()["n"] == 0
    assert skipped("y", "no JACK").as_dict() == {"name": "y", "skipped": "no JACK"}
    assert "skipped: no JACK" in skipped("y", "no JACK").text()
    assert Measurement("z", 3, 1.0, 2.0, 3.0).as_dict()["p99_us"] == 2.0


def test_bench_json_is_only_json_with_figures() -> None:
    proc = bench("--only", "model")
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(proc.stdout)  # the whole of stdout: nothing before or after
    names = {f["name"] for f in figures}
    assert {"model.folk-melody.feed", "model.chorale-harmony.feed"} <= names
    feed = next(f for f in figures if f["name"] == "model.folk-melody.feed")
    assert feed["n"] > 0 and 0 < feed["median_us"] <= feed["p99_us"] <= feed["max_us"]


def test_a_benchmark_that_cannot_run_here_is_a_skipped_entry_not_a_failure() -> None:
    proc = bench("--only", "jack", JACK_DEFAULT_SERVER="lc-no-such-server", JACK_NO_START_SERVER="1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"name": "engine.thru.jack", "skipped": "no JACK server answers (start jackd)"}]


def test_what_children_and_libraries_write_while_measuring_goes_to_stderr() -> None:
    code = (
        "import os, subprocess\n"
        "from livecomposer.commands.bench import stdout_to_stderr\n"
        "with stdout_to_stderr():\n"
        "    print('from python')\n"
        "    subprocess.run(['echo', 'from a child'])\n"
        "    os.write(1, b'from C\\n')\n"
        "print('[]')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"
    assert proc.stderr.split() == ["from", "python", "from", "a", "child", "from", "C"]
