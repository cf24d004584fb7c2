"""profile_stream on known workloads, and notebook 05 (no timing is ever asserted)."""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from conftest import NOTEBOOKS as ROOT_NOTEBOOKS

from bytefeed_helpers import build_manifest, image_batches, read_manifest
from bytefeed_helpers.bench.profiling import STAGES, StageStats, profile_stream

SIZE = (32, 48)


@pytest.fixture(scope="module")
def images():
    return build_manifest(DATA / "images", kind="image", progress=False)


def test_stage_stats_add_from_threads():
    stats = StageStats()

    def work():
        for _ in range(1000):
            stats.add("decode", 0.001, 2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.counts["decode"] == 8000
    assert stats.seconds["decode"] == pytest.approx(4.0)


def test_known_workload_counts_samples_and_bytes():
    def gen():
        for _ in range(5):
            yield np.zeros((8, 10, 10, 3), np.uint8), np.zeros(8, np.int32)
        yield np.zeros((3, 10, 10, 3), np.uint8), np.zeros(3, np.int32)

    p = profile_stream(gen(), name="known")
    assert (p.batches, p.samples) == (6, 43)
    assert p.bytes == 43 * 300 + 43 * 4
    assert p.seconds > 0 and p.samples_per_s > 0 and p.mb_per_s > 0
    assert p.rss_peak >= p.rss_start > 0 and len(p.timeline_s) == len(p.timeline_rss) >= 2
    assert p.py_peak is not None and p.py_peak >= 0
    assert p.stages == {} and p.read_bytes is None  # no engine: no stages


def test_batches_limit_and_plain_arrays():
    def forever():
        while True:
            yield np.ones((4, 5), np.float32)

    p = profile_stream(forever(), batches=3, trace_python=False)
    assert (p.batches, p.samples, p.bytes) == (3, 12, 3 * 4 * 5 * 4)
    assert p.py_peak is None


def test_bytefeed_stream_has_right_counts_bytes_and_stages(images):
    s = image_batches(images, 16, SIZE, seed=0)
    p = profile_stream(s)
    n = len(images)
    assert (p.samples, p.batches) == (n, len(s))
    assert p.bytes == n * SIZE[0] * SIZE[1] * 3 + n * 4  # uint8 images + int32 labels
    assert p.read_bytes == sum(os.path.getsize(f) for f in images.paths)  # each file read once
    assert set(p.stages) >= {"read", "decode", "resize", "collate", "wait"}
    assert all(v >= 0 for v in p.stages.values()) and list(p.stages) == [
        st for st in STAGES if st in p.stages
    ]
    assert p.workers == s.engine.workers and p.skipped == 0
    assert s.epoch == 1  # the profile read exactly one epoch
    text = p.table()
    assert "samples/s" in text and "resize" in text and "wait (main)" in text
    assert p.to_dict()["samples"] == n


def test_hooks_are_removed_afterwards(images):
    dm = importlib.import_module("bytefeed_helpers.decoders.image")
    fit, s = dm._fit, image_batches(images, 16, SIZE)
    decoder = s.engine.decoder
    profile_stream(s, batches=1)
    assert dm._fit is fit and s.engine.decoder is decoder and s.engine.stats is None
    assert s.engine.position == 1  # stopped early, the cursor stays where it stopped


def test_skipped_files_are_counted():
    broken = read_manifest(DATA / "broken" / "images.csv", kind="image")
    with pytest.warns(UserWarning, match="skipped"):
        p = profile_stream(image_batches(broken, 4, SIZE, shuffle=False))
    assert p.skipped > 0 and p.samples == len(broken) - p.skipped


def test_cached_stream_reports_hits(images, tmp_path):
    s = image_batches(images, 16, SIZE, cache=tmp_path)
    first = profile_stream(s)
    second = profile_stream(s)
    assert first.cache_hits == 0 and second.cache_hits == len(images)
    assert first.read_bytes > 0 and second.read_bytes is None  # nothing read from the files


def test_profile_plots(images):
    import matplotlib

    matplotlib.use("Agg")
    p = profile_stream(image_batches(images, 16, SIZE))
    fig = p.plot()
    assert len(fig.axes) == 2 and fig.axes[0].lines and fig.axes[1].patches


@pytest.mark.notebook
def test_05_profile_memory_notebook(tmp_path, kernel_name):
    import nbformat

    from bytefeed_helpers.notebook.runner import run_notebook

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
    notebook = ROOT_NOTEBOOKS / "05_profile_memory.ipynb"
    run = run_notebook(notebook, tmp_path, params, kernel_name=kernel_name)
    r = run.results()
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
    nb = nbformat.read(run.output, as_version=4)
    images = sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert images >= 5  # memory over time, memory vs size, throughput, stages, cache


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux peak RSS")
def test_memory_sampler_catches_a_peak_between_samples():
    from bytefeed_helpers.bench.profiling import MemorySampler

    with MemorySampler(interval=60) as mem:  # no sample falls inside the allocation
        block = np.ones(64 << 20, np.uint8)  # 64 MiB, touched
        del block
    assert mem.peak - mem.start >= 60 << 20
    assert max(mem.values) - mem.start < 32 << 20  # the samples alone missed it
