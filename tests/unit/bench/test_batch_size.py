"""Choosing a batch size (bytefeed_helpers.bench.batch_size) on tiny colour images: what
each batch size costs, short training runs, and the rule that picks one. No timing is
asserted, only that each number is measured, kept and consistent with the others."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support import COLOUR_SIZE as SIZE
from support import colour_images

from bytefeed_helpers import Manifest, image_batches
from bytefeed_helpers.bench.batch_size import (
    Advice,
    BatchCost,
    LearningRun,
    _StepServer,
    advise,
    check_batch_sizes,
    check_seeds,
    learning_runs,
    learning_scores,
    measure_costs,
    measure_steps,
    memory_line,
    plot_costs,
    plot_learning,
    summary_rows,
)
from bytefeed_helpers.notebook import save_results

keras = pytest.importorskip("keras")


@pytest.fixture
def images(tmp_path) -> Manifest:
    """Four noisy PNGs per colour class (12 in all)."""
    return colour_images(tmp_path)


def tiny_model():
    """Channel means into a softmax: saves to .keras and loads back (no Lambda layer)."""
    model = keras.Sequential(
        [
            keras.Input((*SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def streams(manifest):
    """``(batch_size, seed) -> stream``, the seed 3 unless given."""

    def stream(batch_size, seed=3):
        return image_batches(manifest, batch_size, SIZE, seed=seed, workers=2)

    return stream


# --- arguments ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((0,), r"batch_sizes must be positive integers. Received: batch_sizes=\(0,\)"),
        ([4, -2], r"positive integers. Received: batch_sizes=\[4, -2\]"),
        ([2.5], "positive integers"),
        ([True], "positive integers"),
        ((), r"at least one batch size. Received: batch_sizes=\(\)"),
        ("8", r"a list of positive integers. Received: batch_sizes='8'"),
        (8, "a list of positive integers"),
        ([4, 4], r"must not repeat a batch size. Received: batch_sizes=\[4, 4\]"),
    ],
)
def test_bad_batch_sizes_are_refused_keras_style(value, message):
    with pytest.raises(ValueError, match=message):
        check_batch_sizes(value)


def test_good_batch_sizes_keep_their_order():
    assert check_batch_sizes((8, np.int64(2), 32)) == [8, 2, 32]


def test_seeds_are_distinct_integers():
    assert check_seeds(range(3)) == [0, 1, 2]
    for bad in ((), [0, 0], [1.0], 3, "0"):
        with pytest.raises(ValueError, match="seeds must"):
            check_seeds(bad)


def test_other_arguments_are_refused_before_any_work(images):
    with pytest.raises(ValueError, match=r"steps must be a positive integer. Received: steps=0"):
        measure_costs(tiny_model, streams(images), [2], steps=0)
    with pytest.raises(ValueError, match="input_epochs must be a positive integer"):
        measure_costs(tiny_model, streams(images), [2], input_epochs=1.5)
    with pytest.raises(ValueError, match="stream_fn must be a function"):
        measure_costs(tiny_model, None, [2])
    with pytest.raises(ValueError, match=r"batch_sizes must be positive integers"):
        learning_runs(tiny_model, streams(images), None, [0])
    with pytest.raises(ValueError, match=r"epochs must be a positive integer. Received: epochs=0"):
        learning_runs(tiny_model, streams(images), None, [2], epochs=0)

    def uncompiled():
        return keras.Sequential([keras.Input((*SIZE, 3)), keras.layers.Flatten()])

    with pytest.raises(ValueError, match="model_fn must return a compiled Keras model"):
        measure_costs(uncompiled, streams(images), [2])


# --- training steps -----------------------------------------------------------------------------
def test_measure_steps_times_every_step_and_reads_a_peak():
    x = np.zeros((4, *SIZE, 3), np.uint8)
    y = np.array([0, 1, 2, 0], np.int32)
    step = measure_steps(tiny_model(), x, y, steps=3)
    assert set(step) == {"peak_mb", "step_ms", "first_step_ms", "step_ms_all", "memory_source"}
    assert len(step["step_ms_all"]) == 3 and all(t > 0 for t in step["step_ms_all"])
    assert step["step_ms"] == pytest.approx(float(np.median(step["step_ms_all"])))
    assert step["first_step_ms"] > 0 and step["peak_mb"] >= 0
    assert step["memory_source"] in {"VmHWM", "RSS sampled every 5 ms"}
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        measure_steps(tiny_model(), x, y, steps=0)


def test_measure_costs_in_this_process(images, tmp_path):
    costs = measure_costs(
        tiny_model, streams(images), [4, 2, 16], steps=2, isolate=False, progress=False
    )
    assert [c.batch_size for c in costs] == [4, 2, 16]  # the order given
    for c in costs:
        assert c.input_samples == 2 * len(images)  # input_epochs=2 whole epochs
        assert c.input_seconds > 0 and c.input_samples_per_s > 0
        assert c.step_ms > 0 and len(c.step_ms_all) == 2 and c.peak_mb >= 0
        assert c.train_samples_per_s == pytest.approx(1000 * c.batch_size / c.step_ms)
        assert not c.isolated
    # JSON as it is (16 > 12 files: that batch repeats samples, but is 16 rows all the same)
    saved = save_results(tmp_path / "r.json", costs=[c.to_dict() for c in costs])
    assert saved["costs"][2]["batch_size"] == 16


@pytest.mark.slow  # the measuring server imports Keras once (several seconds)
def test_the_step_server_measures_in_fresh_processes_and_reports_failures(tmp_path):
    model_path = tmp_path / "model.keras"
    tiny_model().save(model_path)
    with _StepServer(tmp_path) as server:
        for size in (8, 2):  # one server, a fresh process each
            np.savez(
                tmp_path / f"{size}.npz",
                x=np.zeros((size, *SIZE, 3), np.uint8),
                y=np.zeros(size, np.int32),
            )
            step = server.measure(model_path, tmp_path / f"{size}.npz", 2)
            assert step["isolated"] and step["peak_mb"] > 0 and len(step["step_ms_all"]) == 2
        (tmp_path / "broken.keras").write_bytes(b"not a model")
        with pytest.raises(RuntimeError, match="measuring batch size 2 failed"):
            server.measure(tmp_path / "broken.keras", tmp_path / "2.npz", 2)


# --- learning runs ------------------------------------------------------------------------------
@pytest.mark.slow  # four short fits, each tracing its own training function
def test_learning_runs_share_seed_and_epochs(images):
    val = image_batches(images, 6, SIZE, shuffle=False, workers=2)
    runs = learning_runs(tiny_model, streams(images), val, [2, 8], epochs=2, progress=False)
    assert [(r.batch_size, r.seed) for r in runs] == [(2, 0), (8, 0)]
    assert [r.steps_per_epoch for r in runs] == [6, 2] and [r.updates for r in runs] == [12, 4]
    for r in runs:
        # the clock starts after the first step (the trace): from there it only grows
        assert r.epochs == 2 and len(r.seconds) == 2 and 0 <= r.seconds[0] < r.seconds[1]
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(r.history)
        assert all(len(v) == 2 for v in r.history.values())
        assert r.best() == max(r.history["val_accuracy"])
        assert r.final() == r.history["val_accuracy"][-1]
        json.dumps(r.to_dict())
    again = learning_runs(
        tiny_model, streams(images), val, [2], epochs=2, seeds=[0, 1], progress=False
    )
    assert [(r.batch_size, r.seed) for r in again] == [(2, 0), (2, 1)]
    assert again[0].history == runs[0].history  # the same seed: the same run
    assert again[1].history["loss"] != runs[0].history["loss"]  # another seed, another run
    assert learning_scores(again)[2] == pytest.approx((again[0].best() + again[1].best()) / 2)
    with pytest.raises(ValueError, match=r"monitor must be a metric.*Received: monitor='auc'"):
        runs[0].best("auc")


# --- the rule -----------------------------------------------------------------------------------
def cost(batch_size: int, peak_mb: float) -> BatchCost:
    return BatchCost(batch_size, 100.0, 12, 0.12, 10.0, 50.0, 100.0 * batch_size, peak_mb, "", True)


def run(batch_size: int, val_accuracy: list[float], seed: int = 0) -> LearningRun:
    n = len(val_accuracy)
    seconds = [0.1 * (i + 1) for i in range(n)]
    return LearningRun(batch_size, seed, n, 1, seconds, {"val_accuracy": val_accuracy})


#: Peaks 10 + 2 MB per sample; best accuracies 0.9, 1.0, 0.95, 0.5 at 2, 4, 8, 16.
COSTS = [cost(b, 10 + 2 * b) for b in (2, 4, 8, 16)]
RUNS = [run(2, [0.5, 0.9]), run(4, [0.7, 1.0]), run(8, [0.95, 0.9]), run(16, [0.4, 0.5])]


def test_advice_is_the_largest_that_fits_and_learns():
    advice = advise(COSTS, RUNS, memory_budget_mb=100, accuracy_share=0.9)
    assert isinstance(advice, Advice) and advice.batch_size == 8
    assert advice.fits == [2, 4, 8, 16] and advice.learns == [2, 4, 8]
    assert advice.candidates == [2, 4, 8] and advice.target == pytest.approx(0.9)
    assert advice.best_batch_size == 4 and advice.best_value == 1.0
    assert advice.batch_sizes == [2, 4, 8, 16] and advice.scores == [0.9, 1.0, 0.95, 0.5]
    assert advice.fixed_mb == pytest.approx(10) and advice.mb_per_sample == pytest.approx(2)
    assert advice.largest_within_budget == 45  # (100 - 10) / 2
    assert "largest" in advice.reason and "90%" in advice.rule
    json.dumps(advice.to_dict())
    # a tighter budget leaves 8 out (26 MB), a stricter share leaves 2 out
    assert advise(COSTS, RUNS, memory_budget_mb=25).batch_size == 4
    assert advise(COSTS, RUNS, memory_budget_mb=100, accuracy_share=1.0).candidates == [4]


def test_advice_scores_a_batch_size_by_the_mean_over_its_seeds():
    # batch 8 again from another seed, best 0.7: its mean (0.825) falls short of 0.9
    advice = advise(COSTS, [*RUNS, run(8, [0.7, 0.6], seed=1)], memory_budget_mb=100)
    assert advice.scores[2] == pytest.approx(0.825) and advice.learns == [2, 4]
    assert advice.batch_size == 4


def test_advice_falls_back_when_nothing_both_fits_and_learns():
    only_small_fit = advise(COSTS, RUNS, memory_budget_mb=15, accuracy_share=0.96)
    assert only_small_fit.fits == [2] and only_small_fit.candidates == []
    assert only_small_fit.batch_size == 2 and "learns best" in only_small_fit.reason
    nothing_fits = advise(COSTS, RUNS, memory_budget_mb=5)
    assert nothing_fits.fits == [] and nothing_fits.batch_size == 2
    assert "none fits" in nothing_fits.reason


def test_advice_refuses_bad_arguments():
    with pytest.raises(ValueError, match=r"memory_budget_mb must be a positive number"):
        advise(COSTS, RUNS, memory_budget_mb=0)
    with pytest.raises(ValueError, match=r"accuracy_share must be in \(0, 1\]"):
        advise(COSTS, RUNS, memory_budget_mb=100, accuracy_share=1.5)
    with pytest.raises(ValueError, match="not a loss"):
        advise(COSTS, RUNS, memory_budget_mb=100, monitor="val_loss")
    with pytest.raises(ValueError, match=r"same batch sizes. Received: costs for \[2, 4, 8, 16\]"):
        advise(COSTS, RUNS[:2], memory_budget_mb=100)


def test_memory_line_needs_two_batch_sizes():
    assert memory_line(COSTS[:1]) is None
    assert advise(COSTS[:1], RUNS[:1], memory_budget_mb=100).largest_within_budget is None
    fixed, per_sample = memory_line(COSTS)
    assert fixed == pytest.approx(10) and per_sample == pytest.approx(2)


# --- tables and figures -------------------------------------------------------------------------
def test_summary_rows_and_figures():
    rows = summary_rows(COSTS, RUNS)
    assert [r["batch size"] for r in rows] == [2, 4, 8, 16]
    assert rows[2]["peak MB"] == 26.0 and rows[2]["best val_accuracy"] == 0.95
    assert rows[0]["updates"] == 2 and rows[0]["training s"] == 0.2
    assert (
        rows[0]["train samples/s"] == 200 and summary_rows([cost(3, 12.3456)])[0]["peak MB"] == 12.3
    )
    assert "updates" not in summary_rows(COSTS)[0]
    assert all(not isinstance(v, float) or math.isfinite(v) for r in rows for v in r.values())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    assert len(plot_costs(COSTS, memory_budget_mb=30).axes) == 3
    assert len(plot_learning(RUNS).axes) == 2
    plt.close("all")
