"""Notebook 11 (resume and shards): a stream resumed from its state, StreamCheckpoint, shards."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook


def test_11_resume_and_shards(run_nb, tmp_path):
    n = 240
    nb = run_nb("11_resume_and_shards", N_SMALL=n, EPOCHS=2, OUT_DIR=str(tmp_path / "work"))
    r = nb.results
    assert r["n_small"] == n
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
