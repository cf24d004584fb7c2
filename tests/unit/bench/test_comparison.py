"""compare, the decode bound, the memory sweep and the bench CLI (no timing is asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from support import DATA

from bytefeed_helpers import build_manifest, read_manifest
from bytefeed_helpers.bench.comparison import (
    compare,
    decode_bound,
    memory_vs_size,
    profile_pipelines,
    repeat_manifest,
    resample_bound,
)
from bytefeed_helpers.cli import main


@pytest.fixture(scope="module")
def images():
    return build_manifest(DATA / "images", kind="image", progress=False)


@pytest.fixture(scope="module")
def small(images):
    return images.subset(np.arange(0, len(images), 6))  # 12 files


def test_compare_small(small, tmp_path):
    c = compare(
        small,
        "image",
        pipelines=["bytefeed", "preload", "article"],
        size=32,
        batch_size=4,
        rounds=2,
        bound=True,
        progress=False,
    )
    assert [r.name for r in c.results] == ["bytefeed", "preload", "article"]
    for r in c.results:
        assert r.error is None and len(r.runs) == 2 and r.samples == len(small)
        assert r.samples_per_s > 0 and r.peak_mb == max(run["peak_mb"] for run in r.runs)
    assert c.speedup("bytefeed") == pytest.approx(1.0)
    assert c.speedup("article") == pytest.approx(
        c["bytefeed"].samples_per_s / c["article"].samples_per_s
    )
    assert c.bound["bound"] == pytest.approx(c.bound["cores"] * c.bound["best_rate"])
    doc = json.loads(c.to_json())
    assert doc["files"] == len(small) and len(doc["results"]) == 3
    table = c.table()
    assert "| bytefeed |" in table and "| decode bound |" in table and "machine:" in table


@pytest.mark.filterwarnings("ignore::bytefeed_helpers.engine.BytefeedWarning")
def test_compare_reports_a_failing_pipeline(tmp_path):
    broken = read_manifest(DATA / "broken" / "images.csv", kind="image")
    names = ["bytefeed", "article"]
    c = compare(broken, "image", pipelines=names, size=32, rounds=1, bound=False, progress=False)
    assert c["bytefeed"].error is None
    assert c["article"].error  # the article's generator dies on the first bad file
    assert "failed" in c.table()


def test_compare_rejects_unknown_names(small):
    with pytest.raises(ValueError, match="unknown image pipelines"):
        compare(small, "image", pipelines=["bytefeed", "dali"], progress=False)


def test_decode_bound(images):
    b = decode_bound(images.paths, 64, files=10)
    assert b["files"] == 10 and b["best"] in b["rates"]
    assert b["bound"] == pytest.approx(b["cores"] * max(b["rates"].values()))
    assert b["all_cores"] > 0  # the best route on every core at once
    assert b["from_files"] > 0  # decode_image reading the same files from their paths
    assert decode_bound([str(DATA / "images" / "cat" / "cat_013_rgb.png")], 64) == {}


def test_resample_bound_counts_only_clips_to_resample():
    clips = build_manifest(DATA / "audio", kind="audio", progress=False)
    b = resample_bound(clips.paths, 16000, 0.5, files=8)
    assert b["files"] == 8 and b["what"] == "resample" and b["best"] in b["rates"]
    assert b["all_cores"] > 0 and b["from_files"] > 0
    assert b["bound"] == pytest.approx(b["cores"] * max(b["rates"].values()))
    native = [p for p in clips.paths if sf.info(p).samplerate == 16000]
    assert native and resample_bound(native, 16000) == {}  # nothing to resample: no bound


def test_compare_audio_reports_the_resample_bound(tmp_path):
    clips = build_manifest(DATA / "audio", kind="audio", progress=False)
    few = clips.subset(np.arange(0, len(clips), 8))
    c = compare(few, "audio", pipelines=["bytefeed"], rounds=1, batch_size=4, progress=False)
    assert c.bound["what"] == "resample" and c.bound_fraction > 0
    assert "| resample bound |" in c.table() and "one core from the files" in c.table()


def test_memory_vs_size_and_repeats(small):
    assert len(repeat_manifest(small, 30)) == 30
    sweep = memory_vs_size(
        small, "image", [8, 24], pipelines=["preload", "bytefeed"], size=96, progress=False
    )
    assert sweep["files"] == [8, 24] and len(sweep["preload"]) == len(sweep["bytefeed"]) == 2
    # preloading 24 images of 96x96x3 must hold at least their bytes at its peak
    assert sweep["preload"][1] >= 24 * 96 * 96 * 3 / 1e6 * 0.9


def test_profile_pipelines(small):
    profiles = profile_pipelines(small, "image", ["bytefeed", "preload"], size=32)
    assert set(profiles) == {"bytefeed", "preload"}
    assert all(p.samples == len(small) for p in profiles.values())


def test_bench_cli_json(small, tmp_path, capsys):
    csv = small.write(tmp_path / "m.csv")
    argv = ["bench", str(csv), "--kind", "image", "--size", "32", "--batch", "4", "--rounds", "1"]
    assert main([*argv, "--pipelines", "bytefeed,preload", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in doc["results"]] == ["bytefeed", "preload"]
    assert all(r["samples"] == len(small) for r in doc["results"])
    assert doc["settings"]["batch_size"] == 4 and doc["machine"]["cores"] >= 1


def test_bench_cli_table_and_errors(small, tmp_path, capsys):
    csv = small.write(tmp_path / "m.csv")
    assert (
        main(["bench", str(csv), "--size", "32", "--rounds", "1", "--pipelines", "bytefeed"]) == 0
    )
    assert "| bytefeed |" in capsys.readouterr().out
    assert main(["bench", str(csv), "--pipelines", "bytefeed,nope"]) == 2
    assert "unknown image pipelines" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read manifest" in capsys.readouterr().err


def test_bench_package_exports_the_comparison_api():
    from bytefeed_helpers import bench
    from bytefeed_helpers.bench import comparison

    assert bench.compare is compare and callable(comparison.bench_command)


def test_rows_keep_numbers_in_numeric_columns_and_words_in_the_note():
    """Issue 18: the text table put "62% of it" and "16 cores x ..." into numeric columns of
    the decode-bound row. ``rows()`` (what notebook 05 draws as HTML) keeps numbers rounded
    to what they mean, None where nothing was measured, and words in ``note``."""
    from bytefeed_helpers.bench.comparison import Comparison, PipelineResult, sweep_rows

    def run(rate: float, peak: float) -> dict:
        return {"samples": 48, "samples_per_s": rate, "mb_per_s": rate / 7, "peak_mb": peak}

    ours = PipelineResult("bytefeed", runs=[run(1234.5, 20.04)])
    theirs = PipelineResult("article", runs=[run(412.3, 3.333)])
    gone = PipelineResult("torch", skipped="torch is not installed")
    bound = {"cores": 16, "rates": {"turbo": 155.55}, "best": "turbo", "best_rate": 155.55}
    bound.update(bound=16 * 155.55, all_cores=2101.7, files=48, what="decode")
    c = Comparison(
        "image",
        48,
        {"size": 224, "batch_size": 32, "rounds": 1},
        [ours, theirs, gone],
        bound,
        {"cores": 16},
    )
    rows = c.rows()
    assert [r["pipeline"] for r in rows] == ["bytefeed", "article", "torch", "decode bound"]
    assert len({tuple(r) for r in rows}) == 1  # every row has the same columns
    assert rows[0]["samples/s"] == 1230.0 and rows[0]["peak MB"] == 20.0
    assert rows[1]["bytefeed speed-up"] == 3.0 and rows[1]["memory vs bytefeed"] == 0.17
    assert rows[2]["samples/s"] is None and rows[2]["note"] == "skipped: torch is not installed"
    b = rows[3]
    assert b["samples/s"] == 2490.0 and b["MB/s"] is None and b["bytefeed speed-up"] is None
    assert (
        b["note"]
        == "16 cores x 156/s (turbo); all cores at once 2,100/s; bytefeed reaches 50% of it"
    )
    for row in rows:
        assert all(
            v is None or isinstance(v, int | float)
            for k, v in row.items()
            if k not in ("pipeline", "note")
        )
    assert c.caption().startswith("bytefeed bench: 48 image files, 224x224, batch 32")
    assert c.notes() == ["machine: cores 16"]
    assert "| decode bound |" in c.table()  # the CLI's text table is unchanged

    sweep = {"files": [48, 480], "preload": [7.2345, 72.96], "bytefeed": [20.01, 20.4]}
    assert sweep_rows(sweep) == [
        {
            "pipeline": "preload",
            "peak MB, 48 files": 7.2,
            "peak MB, 480 files": 73.0,
            "growth MB": 65.7,
        },
        {
            "pipeline": "bytefeed",
            "peak MB, 48 files": 20.0,
            "peak MB, 480 files": 20.4,
            "growth MB": 0.4,
        },
    ]
