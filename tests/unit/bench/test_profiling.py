"""profile_stream on known workloads (no timing is ever asserted)."""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from support import DATA

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


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux peak RSS")
def test_memory_sampler_catches_a_peak_between_samples():
    from bytefeed_helpers.bench.profiling import MemorySampler

    with MemorySampler(interval=60) as mem:  # no sample falls inside the allocation
        block = np.ones(64 << 20, np.uint8)  # 64 MiB, touched
        del block
    assert mem.peak - mem.start >= 60 << 20
    assert max(mem.values) - mem.start < 32 << 20  # the samples alone missed it


def test_round_sig_rounds_to_significant_digits():
    from bytefeed_helpers.bench.profiling import round_sig

    assert round_sig(0.49561600000000006, 2) == 0.5 and round_sig(1234.5) == 1230.0
    assert round_sig(-0.0012345, 2) == -0.0012 and round_sig(0.0) == 0.0
    assert round_sig(None) is None and np.isnan(round_sig(float("nan")))
    with pytest.raises(ValueError, match=r"digits must be at least 1\. Received: digits=0"):
        round_sig(1.0, 0)


def test_the_memory_plot_and_its_numbers_come_from_the_same_samples():
    """Issue 18: the figure topped out near 150 MB while the line under it said +184 MB (the
    kernel's high-water mark, which sees a peak between samples). The plotted top is its own
    number now, and the text says which is which when they differ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bytefeed_helpers.bench.profiling import StreamProfile

    start = 800_000_000
    p = StreamProfile(
        name="preload",
        batches=3,
        samples=96,
        bytes=96 * 150_528,
        seconds=0.49561600000000006,
        first_batch_s=0.0123456,
        rss_start=start,
        rss_peak=start + 184_000_000,  # the kernel's record: between two samples
        rss_end=start + 2_000_000,
        timeline_s=np.array([0.0, 0.01, 0.02, 0.03]),
        timeline_rss=np.array([start, start + 90_000_000, start + 150_200_000, start + 2_000_000]),
    )
    assert p.timeline_mb.tolist() == pytest.approx([0.0, 90.0, 150.2, 2.0])
    assert p.timeline_peak_mb == pytest.approx(150.2)
    ax = p.plot_memory(plt.figure().gca())
    assert float(ax.lines[0].get_ydata().max()) == pytest.approx(p.timeline_peak_mb)
    assert p.summary() == {
        "pipeline": "preload",
        "samples": 96,
        "samples/s": 194.0,
        "first batch ms": 12.3,
        "plotted peak MB": 150.2,
        "peak MB": 184.0,
    }
    assert "peak +184.0 MB (kernel's high-water mark; the plotted samples reach +150.2 MB)" in str(
        p
    )
    p.rss_peak = start + 150_200_000  # the samples saw the peak: nothing to explain
    assert "plotted samples" not in str(p)
    plt.close("all")
