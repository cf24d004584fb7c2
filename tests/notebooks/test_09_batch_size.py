"""Notebook 09 (choosing a batch size) on data_sample/ with two batch sizes, two seeds and short
runs: every size measured, every run recorded, and the advice follows from the recorded numbers
by the notebook's rule. No timing is asserted."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.notebook

BATCH_SIZES = [2, 32]
SEEDS = [0, 1]
PARAMETERS = {
    "IMAGE_SIZE": 48,
    "BATCH_SIZES": BATCH_SIZES,
    "SEEDS": SEEDS,
    "EPOCHS": 3,
    "STEPS": 3,
    "INPUT_EPOCHS": 1,
    "MEMORY_BUDGET_MB": 4000,
}


def test_09_batch_size(run_nb):
    nb = run_nb("09_batch_size", **PARAMETERS)
    r = nb.results
    assert r["batch_sizes"] == BATCH_SIZES and r["seeds"] == SEEDS and r["epochs"] == 3
    assert r["n_train"] >= 36 and r["n_val"] >= 12

    costs = {c["batch_size"]: c for c in r["costs"]}
    assert list(costs) == BATCH_SIZES
    for b, c in costs.items():
        assert c["input_samples"] == r["n_train"]  # INPUT_EPOCHS=1 whole epoch
        assert c["input_samples_per_s"] > 0 and c["train_samples_per_s"] > 0
        assert c["step_ms"] > 0 and len(c["step_ms_all"]) == 3
        assert c["train_samples_per_s"] == pytest.approx(1000 * b / c["step_ms"])
        assert c["isolated"] and c["peak_mb"] > 0
    # 30 more samples of 48 px at about 0.5 MB each in activations and gradients: the peak
    # grows by far more than the MB or so that repeated measurements of one size differ by
    assert costs[32]["peak_mb"] > costs[2]["peak_mb"] + 2

    assert [(run["batch_size"], run["seed"]) for run in r["runs"]] == [
        (b, seed) for b in BATCH_SIZES for seed in SEEDS
    ]
    for run in r["runs"]:
        b = run["batch_size"]
        assert run["epochs"] == 3 and run["steps_per_epoch"] == -(-r["n_train"] // b)
        assert run["updates"] == 3 * run["steps_per_epoch"]
        assert all(len(run["history"][k]) == 3 for k in ("loss", "val_loss", "val_accuracy"))
        assert all(0 <= v <= 1 for v in run["history"]["val_accuracy"])
        assert len(run["seconds"]) == 3 and 0 < run["seconds"][0] < run["seconds"][-1]

    # the advice, recomputed by the rule the notebook states
    a = r["advice"]
    assert a["memory_budget_mb"] == r["memory_budget_mb"] == 4000
    # a batch size's score: its runs' best val_accuracy, the mean over the seeds
    best = {
        b: sum(max(run["history"]["val_accuracy"]) for run in r["runs"] if run["batch_size"] == b)
        / len(SEEDS)
        for b in BATCH_SIZES
    }
    assert a["batch_sizes"] == BATCH_SIZES
    assert a["scores"] == pytest.approx([best[b] for b in BATCH_SIZES])
    target = r["accuracy_share"] * max(best.values())
    assert a["target"] == pytest.approx(target)
    fits = [b for b in BATCH_SIZES if costs[b]["peak_mb"] <= 4000]
    learns = [b for b in BATCH_SIZES if best[b] >= target]
    assert a["fits"] == fits and a["learns"] == learns
    candidates = [b for b in fits if b in learns]
    assert a["candidates"] == candidates
    assert a["batch_size"] in BATCH_SIZES
    if candidates:
        assert a["batch_size"] == max(candidates)
    elif fits:
        assert best[a["batch_size"]] == max(best[b] for b in fits)
    else:
        assert a["batch_size"] == min(BATCH_SIZES)
    assert a["mb_per_sample"] > 0 and a["largest_within_budget"] > 32

    assert nb.count("text/html") >= 2  # the costs table, the costs-and-learning table
    assert nb.count("image/png") >= 2  # the three cost panels, the learning curves
