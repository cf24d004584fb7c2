"""Notebook 02 (image batches) runs end to end and proves its numbers."""

from __future__ import annotations

import pytest
from support import broken_files, check_article_comparison

pytestmark = pytest.mark.notebook


def test_02_image_batches(run_nb, tmp_path):
    nb = run_nb(
        "02_image_batches",
        OUT_DIR=str(tmp_path / "out"),
        IMAGE_SIZE=[64, 80],
        BATCH_SIZE=8,
        AUGMENT_REPEATS=1,
    )
    r = nb.results
    assert r["batch_shape"] == [8, 64, 80, 3] and r["dtype"] == "uint8"
    assert r["label_dtype"] == "int32" and r["n_classes"] == 3
    assert r["train_files"] + r["val_files"] == 72 and r["val_files"] > 0
    bad = broken_files("images")
    assert r["n_errors"] == len(bad) == r["error_csv_rows"] and set(r["skipped"]) == bad
    assert r["decoded_from_broken"] == r["broken_rows"] - len(bad)
    check_article_comparison(r)
    assert r["augment_changed_pixels"] > 0.5  # the article's augmentation visibly moves pixels
    assert r["augment_ms_per_batch"] > 0 and r["layers_ms_per_batch"] > 0
    assert r["train_augments"] and not r["val_augments"]
    assert r["explorer_shown"] == 8
    assert (tmp_path / "out" / "image_errors.csv").exists()
    assert nb.count("image/png") >= 3  # batch grid, original vs augmented, explorer view
    assert nb.count("application/vnd.jupyter.widget-view+json") == 1
