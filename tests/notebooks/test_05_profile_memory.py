"""Notebook 05 (profile and memory) on a small generated set (no timing is ever asserted)."""

from __future__ import annotations

import re

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

    # issue 18: the sentence under the memory figure says what the figure shows ...
    plotted, drawn = r["timeline_plotted_mb"], r["timeline_figure_mb"]
    assert plotted == drawn and set(drawn) == {"preload", "article", "bytefeed"}
    line = re.search(r"top of each line: (.*)", nb.stdout())
    assert line, nb.stdout()
    printed = dict(re.findall(r"(\S+) ([+-][\d.]+) MB", line[1]))
    assert {k: float(v) for k, v in printed.items()} == drawn
    # ... the kernel's peak, in the table after it, is never below the samples it also saw
    assert all(r["timeline_peak_mb"][k] >= v - 0.1 for k, v in drawn.items())
    # comparisons are HTML tables (comparison, timeline, sweep), not Markdown printed as text
    tables = [h for h in nb.data("text/html") if "<table" in h]
    assert len(tables) >= 3 and "| pipeline |" not in nb.stdout()
    assert any("decode bound" in h and "bytefeed speed-up" in h for h in tables)
    # numeric columns hold numbers (or nothing), words go in the note
    rows = r["comparison_rows"]
    assert [row["pipeline"] for row in rows[: len(params["PIPELINES"])]] == params["PIPELINES"]
    assert rows[-1]["pipeline"] == "decode bound" and rows[-1]["samples/s"] > 0
    for row in rows:
        for key, value in row.items():
            if key in ("pipeline", "note"):
                assert isinstance(value, str)
            else:
                assert value is None or isinstance(value, int | float), (key, value)
    # floats are rounded to what they mean, not 0.49561600000000006
    assert all(_digits(v) <= 7 for v in _floats(r)), sorted(_floats(r), key=_digits)[-3:]


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)


def _digits(value: float) -> int:
    """Significant digits in ``repr(value)`` (``150.2`` -> 4, ``0.49561600000000006`` -> 17)."""
    mantissa = repr(abs(value)).split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if mantissa else 0
