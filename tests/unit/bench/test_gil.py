"""The GIL-ceiling command at a tiny size: the shape of its report, never its times."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from support import DATA

from bytefeed_helpers import build_manifest
from bytefeed_helpers.bench.data import make_audio_set
from bytefeed_helpers.bench.gil import GilReport, calibrate, engine_cost, gil_ceiling, gil_held
from bytefeed_helpers.cli import main

pytest.importorskip("gilknocker")  # the dev extra has it; the core does not


@pytest.fixture(scope="module")
def images():
    m = build_manifest(DATA / "images", kind="image", progress=False)
    return m.subset(np.arange(0, len(m), 6))  # 12 files


def tiny(manifest, kind, **kw) -> GilReport:
    return gil_ceiling(
        manifest,
        kind,
        size=32,
        batch_size=4,
        min_seconds=0.0,
        engine_rows=64,
        hotspot_files=4,
        calibration_seconds=0.05,
        **kw,
    )


def test_gil_held_is_a_share():
    with gil_held() as m:
        sum(range(10_000))
    assert 0.0 <= m["held"] <= 1.0
    cal = calibrate(0.05)
    assert set(cal) == {"pure Python", "sleeping"}
    assert all(0.0 <= v <= 1.0 for v in cal.values())


def test_image_report_shape(images):
    r = tiny(images, "image")
    (s,) = r.sets
    assert s.name == "image 32x32" and s.files == len(images)
    assert s.samples % len(images) == 0 and s.samples >= len(images)  # whole epochs only
    assert s.samples_per_s > 0 and s.single_rate > 0 and 0.0 <= s.held <= 1.0
    assert s.ceiling == (s.samples_per_s / s.held if s.held else float("inf"))
    assert s.cores_worth == pytest.approx(s.ceiling / s.single_rate)
    assert r.engine["samples"] % 64 == 0 and r.engine["us_per_sample"] > 0
    spots = r.hotspots["image 32x32"]
    assert 0 < len(spots) <= 12 and any(h.python for h in spots)
    assert all(a.us_per_file >= b.us_per_file for a, b in itertools.pairwise(spots))
    table = r.table()
    assert "| image 32x32 | 12 |" in table and "engine alone" in table and "calibration" in table
    doc = json.loads(json.dumps(r.to_dict()))
    assert doc["sets"][0]["cores_worth"] == pytest.approx(s.cores_worth)


def test_audio_reports_resampled_and_native(tmp_path):
    clips = make_audio_set(tmp_path / "wav", 6, 22050, 0.5, progress=False)
    r = tiny(clips, "audio", duration=0.5)
    assert [s.name for s in r.sets] == ["audio -> 16000 Hz", "audio native 22050 Hz"]
    assert all(s.samples >= 6 for s in r.sets)


def test_engine_cost_counts_whole_epochs(images):
    e = engine_cost(images, batch_size=4, workers=1, rows=40, min_seconds=0.0)
    assert e["samples"] == 40 and e["workers"] == 1 and e["batch_size"] == 4


def test_gil_rejects_text(images):
    with pytest.raises(ValueError, match="kind must be 'image' or 'audio'"):
        gil_ceiling(images, "text")


def test_bench_gil_cli(images, tmp_path, capsys):
    csv = images.write(tmp_path / "m.csv")
    argv = ["bench", str(csv), "--kind", "image", "--size", "32", "--batch", "4", "--gil"]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "image" and len(doc["sets"]) == 1 and doc["engine"]["samples"] > 0
    assert doc["sets"][0]["files"] == len(images) and doc["calibration"]


def test_the_process_route_is_measured_in_this_process(images, tmp_path, capsys):
    """``--gil --processes``: the stream runs on worker processes, and the share measured
    is this process's GIL (handing out tasks, copying batches out of shared memory)."""
    r = tiny(images, "image", parallelism="processes")
    (s,) = r.sets
    assert s.name == "image 32x32, processes" and s.files == len(images)
    assert s.samples % len(images) == 0 and 0.0 <= s.held <= 1.0 and s.samples_per_s > 0
    csv = images.write(tmp_path / "m.csv")
    argv = ["bench", str(csv), "--kind", "image", "--size", "32", "--batch", "4", "--gil"]
    assert main([*argv, "--processes", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sets"][0]["name"] == "image 32x32, processes"
