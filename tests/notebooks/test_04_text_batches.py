"""Notebook 04 (text batches) runs end to end and proves its numbers."""

from __future__ import annotations

import pytest
from support import broken_files, check_article_comparison

pytestmark = pytest.mark.notebook


def test_04_text_batches(run_nb, tmp_path):
    nb = run_nb("04_text_batches", OUT_DIR=str(tmp_path / "out"), BATCH_SIZE=6, MAX_LENGTH=40)
    r = nb.results
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
    check_article_comparison(r)
    assert r["article_crashed_on_good"] and r["bytefeed_good_read"] == r["good_files"] == 48
    assert 0 < r["utf8_files"] < r["good_files"]
    assert r["explorer_shown"] == 6
    assert nb.count("image/png") >= 2  # token table and the explorer's view
    assert nb.count("application/vnd.jupyter.widget-view+json") == 1
