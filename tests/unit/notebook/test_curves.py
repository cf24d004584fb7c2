"""Learning curves, confusion matrices and a prediction pass over a stream
(bytefeed_helpers.notebook.curves)."""

from __future__ import annotations

import pytest
from support import colour_images, colour_model
from support import colour_stream as image_stream

from bytefeed_helpers import Manifest
from bytefeed_helpers.notebook import (
    collect_predictions,
    confusion_matrix,
    plot_confusion,
    plot_history,
)


@pytest.fixture
def images(tmp_path) -> Manifest:
    """Four noisy PNGs per colour class; class ids follow sorted names (blue, green, red)."""
    return colour_images(tmp_path)


def invert(batch, rng):
    return 255 - batch


# --- confusion matrix and plots ------------------------------------------------------------
def test_confusion_matrix_counts_rows_true_columns_predicted():
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert confusion_matrix([1], [0]).shape == (2, 2)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [([0, 1], [0], "2 labels"), ([0, -1], [0, 0], "unlabelled"), ([0, 3], [0, 0], "0..2")],
)
def test_confusion_matrix_rejects_bad_ids(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(y_true, y_pred, 3)


def test_plot_confusion_annotates_every_cell_and_accuracy():
    fig = plot_confusion([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and texts[:3] == ["1", "1", "0"]
    assert "75.0%" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    normalised = plot_confusion([0, 0, 1], [0, 1, 1], ["a", "b"], normalize=True)
    assert [t.get_text() for t in normalised.axes[0].texts] == ["0.50", "0.50", "0.00", "1.00"]


def test_plot_history_pairs_train_and_validation_curves():
    logs = {"accuracy": [0.3, 0.6, 0.9], "samples_per_s": [50, 60, 70], "loss": [2, 1, 0.5]}
    logs.update(val_accuracy=[0.3, 0.5, 0.7], val_loss=[2, 1.5, 1])
    fig = plot_history(logs)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy", "samples_per_s"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 1]
    assert fig.axes[0].lines[1].get_ydata().tolist() == [2, 1.5, 1]
    only = plot_history(logs, keys=["accuracy"])
    assert len(only.axes) == 1
    with pytest.raises(ValueError, match="no metric"):
        plot_history({})


# --- a pass over a stream ----------------------------------------------------------------------
def test_collect_predictions_aligns_labels_predictions_and_paths(images, tmp_path):
    pytest.importorskip("keras")
    bad = tmp_path / "junk.png"
    bad.write_bytes(b"junk")
    manifest = Manifest([*images.paths, bad], [*images.labels, 1], images.class_names)
    stream = image_stream(manifest, augment=invert)  # shuffled, with augmentation
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        y_true, y_pred, paths = collect_predictions(colour_model(), stream)
    assert len(paths) == 12 and sorted(paths) == sorted(map(str, images.paths))
    truth = dict(zip(map(str, images.paths), images.labels.tolist(), strict=True))
    assert y_true.tolist() == [truth[p] for p in paths]
    assert y_pred.tolist() == y_true.tolist()  # augmentation (inversion) was off
    assert stream.augment_enabled and not stream.with_paths  # both restored
    assert [e.path for e in stream.errors] == [str(bad)]
