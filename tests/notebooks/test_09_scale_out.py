"""Notebook 09 (scale out): packed shards, a corrupted record, resume, shards, tf.data service."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def test_09_scale_out(run_nb, tmp_path):
    n = 240
    nb = run_nb("09_scale_out", N_SMALL=n, REPEATS=1, EPOCHS=2, OUT_DIR=str(tmp_path / "work"))
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
    assert r["resume_equal"] and r["resume_state"]["position"] == 2
    assert r["checkpoint_files"] == [
        "model-01.keras",
        "model-02.keras",
        "stream-01.json",
        "stream-02.json",
    ]
    assert r["resumed_epochs"] == 1
    assert r["shard_disjoint"] and r["shard_union"]
    assert abs(r["shard_batches"][0] - r["shard_batches"][1]) <= 1
    assert r["service_exactly_once"] and r["service_samples"] == {"loose": n, "packed": n}
    assert r["service_fit_epochs"] == 1
