"""The scale benchmark (``bench --scale N``): its table and JSON have every step, each with a
time and, where measured, a peak RSS from the step's own process. Run at a small scale; the
numbers themselves are never asserted (tests never time)."""

from __future__ import annotations

import json
import re

import pytest

from bytefeed_helpers.bench.scale import _LABELS, TARGETS, ScaleReport, Step
from bytefeed_helpers.cli import main as cli

STEPS = [
    "make",
    "write_csv",
    "write_parquet",
    "read_csv",
    "read_parquet",
    "import",
    "stream_build",
    "state_first",
    "state",
    "epoch_order",
    "first_batch",
]


@pytest.mark.timeout(300)
def test_scale_command_prints_every_step(capsys):
    assert cli(["bench", "--scale", "2000", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 2000 and report["cpus"] >= 1
    assert [s["name"] for s in report["steps"]] == STEPS
    for step in report["steps"]:
        assert step["seconds"] >= 0
    by_name = {s["name"]: s for s in report["steps"]}
    for name in ("write_csv", "read_csv", "write_parquet", "read_parquet", "stream_build"):
        # each step's own process: it started small, and its peak is at least where it began
        assert 0 < by_name[name]["start_mb"] <= by_name[name]["peak_mb"]
    assert "(32, 64, 64, 3)" in by_name["first_batch"]["note"]
    assert report["csv_mb"] > report["parquet_mb"] > 0

    steps = [Step(**s) for s in report.pop("steps")]
    table = ScaleReport(**report, steps=steps).table()  # the table of the same measurements
    lines = table.splitlines()
    assert lines[0].startswith("bytefeed scale benchmark: 2,000 rows")
    assert len(lines) == 3 + len(STEPS)
    for name, line in zip(STEPS, lines[3:], strict=True):
        assert line.startswith(_LABELS[name])
        assert re.search(r"\d+(\.\d+)? (s|ms|µs)", line)
        if name in TARGETS:
            assert re.search(r"\((met|MISSED)\)", line)


def test_scale_arguments(capsys):
    assert cli(["bench", "--scale", "10"]) == 2
    assert "scale must be at least 64 rows" in capsys.readouterr().err
    assert cli(["bench"]) == 2
    assert "give a manifest, or --scale N" in capsys.readouterr().err
