"""Notebook 03 (audio batches) runs end to end and proves its numbers."""

from __future__ import annotations

import math

import pytest
from support import broken_files, check_article_comparison

pytestmark = pytest.mark.notebook


def test_03_audio_batches(run_nb, tmp_path):
    nb = run_nb(
        "03_audio_batches",
        OUT_DIR=str(tmp_path / "out"),
        SAMPLE_RATE=8000,
        DURATION=0.5,
        BATCH_SIZE=4,
        N_MELS=32,
        SHOW=2,
        AUGMENT_REPEATS=1,
    )
    r = nb.results
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
    check_article_comparison(r)
    assert r["augment_changed"] > 0.5 and 0 < r["masked_fraction"] < 0.9
    assert r["augment_ms_per_batch"] > 0 and r["features_ms_per_batch"] > 0
    assert r["train_augments"] and not r["val_augments"]
    assert r["explorer_shown"] == 4
    # batch, log-mels, waveform stages, two comparisons, explorer view; and players
    assert nb.count("image/png") >= 6
    assert nb.count("text/html") >= 2
    assert nb.count("application/vnd.jupyter.widget-view+json") == 1
