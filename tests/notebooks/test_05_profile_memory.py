"""Notebook 05 (profile and memory) on a small generated set (no timing is ever asserted)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def test_05_profile_memory(run_nb, tmp_path):
    files, size, sweep = 48, 128, [48, 480]
    params = {
        "GENERATE": files,
        "MIN_SIDE": 100,
        "MAX_SIDE": 160,
        "IMAGE_SIZE": size,
        "BATCH_SIZE": 16,
        "TIMELINE_FILES": 96,
        "MEMORY_SIZES": sweep,
        "PIPELINES": ["bytefeed", "bytefeed+cache", "keras", "preload", "article"],
        "ROUNDS": 1,
        "WORK_DIR": str(tmp_path / "work"),
    }
    nb = run_nb("05_profile_memory", **params)
    r = nb.results
    assert r["files"] == files and not r["errors"]
    assert set(r["samples"]) == set(params["PIPELINES"])
    assert all(n == files for n in r["samples"].values())
    assert all(v > 0 for v in r["throughput"].values())
    assert r["timeline_samples"] == {"preload": 96, "article": 96, "bytefeed": 96}
    assert r["sweep"]["files"] == sweep
    # preloading holds every decoded image at its peak; the stream's peak does not grow with
    # the files (its batches in flight are its whole working set)
    one = size * size * 3 / 1e6
    assert r["sweep"]["preload"][-1] >= 0.9 * sweep[-1] * one
    assert r["growth_mb"]["preload"] > r["growth_mb"]["bytefeed"]
    assert r["growth_mb"]["bytefeed"] < 50
    assert r["cache_hits"] == files and r["cache_complete"]
    assert r["profile_samples"] == files and {"read", "decode", "collate"} <= set(r["stage_ms"])
    assert r["bytefeed_speedup"]["bytefeed"] == pytest.approx(1.0)
    assert nb.count("image/png") >= 5  # memory over time, memory vs size, throughput, stages, cache
