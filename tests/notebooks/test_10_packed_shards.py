"""Notebook 10 (packed shards): pack, verify, same batches, read speed, a corrupted record."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def test_10_packed_shards(run_nb, tmp_path):
    n = 240
    nb = run_nb("10_packed_shards", N_SMALL=n, REPEATS=1, OUT_DIR=str(tmp_path / "work"))
    r = nb.results
    assert r["n_small"] == n and r["shards"] >= 1
    assert r["verify_ok"] and r["packed_equal"]
    assert r["loose_files_per_s"] > 0 and r["packed_files_per_s"] > 0  # measured, not judged
    assert set(r["epoch_images_per_s"]) == {
        "stream, loose",
        "stream, packed",
        "tf.data, loose",
        "tf.data, packed",
    }
    assert len(r["corrupted_shards"]) == 1 and len(r["corrupted_paths"]) == 1
    assert r["corrupt_decoded"] == n - 1
    assert [p for p, _ in r["corrupt_skipped"]] == r["corrupted_paths"]
    assert "checksum mismatch" in r["corrupt_skipped"][0][1]
    assert nb.count("image/png") >= 1  # the speed chart was drawn
