"""Notebooks 02-04 (image, audio and text batches) run end to end and prove their numbers."""

from __future__ import annotations

import csv
import math

import pytest
from conftest import DATA, NOTEBOOKS

pytestmark = pytest.mark.notebook


def broken_files(kind: str) -> set[str]:
    """Names of the deliberately broken rows of ``broken/<kind>.csv`` (the rest point into
    the good sample folders, ``../images/...``)."""
    with open(DATA / "broken" / f"{kind}.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {r["path"] for r in rows if "/" not in r["path"]}


def execute(name: str, tmp_path, kernel_name: str, **parameters) -> tuple[dict, list[dict]]:
    """Run a notebook; return its saved results and the executed copy's outputs."""
    import nbformat

    from bytefeed_helpers.notebook.runner import run_notebook

    parameters.setdefault("OUT_DIR", str(tmp_path / "out"))
    run = run_notebook(NOTEBOOKS / f"{name}.ipynb", tmp_path, parameters, kernel_name=kernel_name)
    nb = nbformat.read(run.output, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    return run.results(), outputs


def count(outputs: list[dict], mime: str) -> int:
    return sum(mime in o.get("data", {}) for o in outputs)


def check_comparison(r: dict) -> None:
    assert r["article_crashed"] and r["article_error"]
    assert r["bytefeed_s"] > 0 and r["article_s"] > 0
    assert math.isfinite(r["ratio"]) and r["ratio"] > 0


def test_02_image_batches(tmp_path, kernel_name):
    r, outputs = execute(
        "02_image_batches",
        tmp_path,
        kernel_name,
        IMAGE_SIZE=[64, 80],
        BATCH_SIZE=8,
        AUGMENT_REPEATS=1,
    )
    assert r["batch_shape"] == [8, 64, 80, 3] and r["dtype"] == "uint8"
    assert r["label_dtype"] == "int32" and r["n_classes"] == 3
    assert r["train_files"] + r["val_files"] == 72 and r["val_files"] > 0
    bad = broken_files("images")
    assert r["n_errors"] == len(bad) == r["error_csv_rows"] and set(r["skipped"]) == bad
    assert r["decoded_from_broken"] == r["broken_rows"] - len(bad)
    check_comparison(r)
    assert r["augment_changed_pixels"] > 0.5  # the article's augmentation visibly moves pixels
    assert r["augment_ms_per_batch"] > 0 and r["layers_ms_per_batch"] > 0
    assert r["train_augments"] and not r["val_augments"]
    assert r["explorer_shown"] == 8
    assert (tmp_path / "out" / "image_errors.csv").exists()
    assert count(outputs, "image/png") >= 3  # batch grid, original vs augmented, explorer view
    assert count(outputs, "application/vnd.jupyter.widget-view+json") == 1


def test_03_audio_batches(tmp_path, kernel_name):
    r, outputs = execute(
        "03_audio_batches",
        tmp_path,
        kernel_name,
        SAMPLE_RATE=8000,
        DURATION=0.5,
        BATCH_SIZE=4,
        N_MELS=32,
        SHOW=2,
        AUGMENT_REPEATS=1,
    )
    assert r["batch_shape"] == [4, 4000] and r["dtype"] == "float32" and r["n_classes"] == 3
    assert r["logmel_shape"] == [4, 1 + 4000 // 160, 32]
    stages = r["stage_lengths"]
    stored = next(v for k, v in stages.items() if k.endswith("as stored"))
    assert len(stored) == 2 and stored[1] >= 2  # the longest multi-channel clip, all channels
    assert stages["mono, resampled"] == [round(stored[0] * 8000 / r["long_clip_rate"])]
    assert stages["centre 0.5 s"] == stages["padded to 0.5 s"] == [4000]
    if r["short_clip_s"] < 0.5:  # a clip shorter than DURATION gets a run of zeros at the end
        assert r["padded_zeros"] >= 4000 - math.ceil(r["short_clip_s"] * 8000)
    bad = broken_files("audio")
    assert r["n_errors"] == len(bad) == r["error_csv_rows"] and set(r["skipped"]) == bad
    assert r["decoded_from_broken"] == r["broken_rows"] - len(bad)
    check_comparison(r)
    assert r["augment_changed"] > 0.5 and 0 < r["masked_fraction"] < 0.9
    assert r["augment_ms_per_batch"] > 0 and r["features_ms_per_batch"] > 0
    assert r["train_augments"] and not r["val_augments"]
    assert r["explorer_shown"] == 4
    # batch, log-mels, waveform stages, two comparisons, explorer view; and players
    assert count(outputs, "image/png") >= 6
    assert count(outputs, "text/html") >= 2
    assert count(outputs, "application/vnd.jupyter.widget-view+json") == 1


def test_04_text_batches(tmp_path, kernel_name):
    r, outputs = execute("04_text_batches", tmp_path, kernel_name, BATCH_SIZE=6, MAX_LENGTH=40)
    assert r["batch_shape"][0] == 6 and r["dtype"] == "int32" and r["n_classes"] == 2
    assert r["vocabulary_size"] > 100
    assert r["fixed_widths"] and set(r["fixed_widths"]) == {40}
    assert max(r["dynamic_widths"]) == r["longest"] > 40 and r["truncated_docs"] > 0
    assert len(r["dynamic_widths"]) == len(r["fixed_widths"])
    bad = broken_files("text") - {"non_utf8.txt"}  # legacy-encoded text is decoded, not skipped
    assert r["non_utf8_decoded"] and r["utf8_error"].startswith("UnicodeDecodeError")
    assert r["n_errors"] == len(bad) == r["error_csv_rows"] and set(r["skipped"]) == bad
    assert r["decoded_from_broken"] == r["broken_rows"] - len(bad)
    assert r["ragged_error"].startswith("ValueError")
    check_comparison(r)
    assert r["article_crashed_on_good"] and r["bytefeed_good_read"] == r["good_files"] == 48
    assert 0 < r["utf8_files"] < r["good_files"]
    assert r["explorer_shown"] == 6
    assert count(outputs, "image/png") >= 2  # token table and the explorer's view
    assert count(outputs, "application/vnd.jupyter.widget-view+json") == 1
