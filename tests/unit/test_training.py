"""Training helpers on small synthetic files: callback, plots, predictions, step times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bytefeed_helpers import BadFileError, Manifest
from bytefeed_helpers.bench import step_time_ratio
from bytefeed_helpers.notebook import (
    collect_predictions,
    confusion_matrix,
    plot_confusion,
    plot_history,
)
from bytefeed_helpers.training import StreamMonitor, class_ids, decode_files, predict_files

keras = pytest.importorskip("keras")

COLOURS = {"blue": (20, 30, 230), "green": (30, 220, 40), "red": (240, 20, 30)}
SIZE = (8, 8)


@pytest.fixture
def images(tmp_path: Path) -> Manifest:
    """Four noisy PNGs per colour class; class ids follow sorted names (blue, green, red)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths, labels = [], []
    for label, (name, rgb) in enumerate(sorted(COLOURS.items())):
        for i in range(4):
            noise = rng.integers(-15, 16, size=(12, 10, 3))
            pixels = np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)
            path = tmp_path / f"{name}_{i}.png"
            Image.fromarray(pixels).save(path)
            paths.append(path)
            labels.append(label)
    return Manifest(paths, labels, sorted(COLOURS), kind="image")


def colour_model():
    """Untrained but right: the mean of each channel, softmaxed (blue, green, red order)."""
    return keras.Sequential(
        [
            keras.Input((*SIZE, 3)),
            keras.layers.Rescaling(10 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Lambda(lambda t: keras.ops.flip(t, axis=-1)),  # RGB -> BGR order
            keras.layers.Softmax(),
        ]
    )


def image_stream(manifest, **kw):
    from bytefeed_helpers import image_batches

    kw.setdefault("seed", 3)
    return image_batches(manifest, 4, SIZE, workers=2, **kw)


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


# --- the callback -----------------------------------------------------------------------------
def test_stream_monitor_logs_errors_and_throughput(images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    train = Manifest([*images.paths, bad], [*images.labels, 0], images.class_names)
    val = Manifest([images.paths[0], tmp_path / "missing.png"], [0, 0], images.class_names)
    train_stream, val_stream = image_stream(train), image_stream(val, shuffle=False)
    model = keras.Sequential(
        [keras.Input((*SIZE, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = StreamMonitor(train_stream, val_stream)
    with pytest.warns(UserWarning, match="skipped 1 bad file"):
        history = model.fit(
            train_stream, validation_data=val_stream, epochs=2, verbose=0, callbacks=[monitor]
        )
    logs = history.history
    assert logs["stream_errors"] == [1.0, 1.0] and logs["val_stream_errors"] == [1.0, 1.0]
    assert len(logs["samples_per_s"]) == 2 and min(logs["samples_per_s"]) > 0
    assert monitor.history["stream_errors"] == logs["stream_errors"]
    assert len(train_stream.errors) == 2  # one per epoch


def test_stream_monitor_verbose_names_epochs_with_skips(images, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"")
    stream = image_stream(Manifest([*images.paths, bad], [*images.labels, 0], images.class_names))
    monitor = StreamMonitor(stream, verbose=True)
    monitor.on_epoch_begin(0)
    with pytest.warns(UserWarning):
        for _ in stream:
            monitor.on_train_batch_end(0)
    monitor.on_epoch_end(0, None)  # Keras may pass no logs: the history still gets them
    assert "epoch 1: skipped 1 file(s)" in capsys.readouterr().out
    assert monitor.history["stream_errors"] == [1.0]


def test_stream_monitor_counts_only_good_samples(images, monkeypatch):
    stream = image_stream(images, shuffle=False)
    monitor = StreamMonitor(stream)
    times = iter([0.0, 2.0, 2.0, 2.0])  # epoch begin, then three steps ending at 2 s
    monkeypatch.setattr("bytefeed_helpers.training.time.perf_counter", lambda: next(times))
    monitor.on_epoch_begin(0)
    for step in range(3):
        monitor.on_train_batch_end(step)
    logs: dict = {}
    monitor.on_epoch_end(0, logs)
    assert logs == {"stream_errors": 0.0, "samples_per_s": 12 / 2.0}


# --- decoding and predicting single files ------------------------------------------------------
def test_decode_files_matches_the_stream_without_augmentation(images):
    val = image_stream(images, shuffle=False)
    x_stream = np.concatenate([x for x, _ in val])
    assert np.array_equal(decode_files(val, images.paths), x_stream)
    train = image_stream(images, augment=invert)
    assert next(iter(train))[0].max() < 255  # augmented batches are inverted ...
    assert np.array_equal(decode_files(train, images.paths), x_stream)  # ... files are not
    settings = {"kind": "image", **val.options}
    assert np.array_equal(decode_files(settings, images.paths[:2]), x_stream[:2])


def test_predict_files_gives_probabilities_and_ids(images):
    model, val = colour_model(), image_stream(images, shuffle=False)
    probs, ids = predict_files(model, val, images.paths, batch_size=5)
    assert probs.shape == (12, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert ids.tolist() == images.labels.tolist()
    one_probs, one_id = predict_files(model, val, images.paths[-1])
    assert one_id.tolist() == [2] and np.allclose(one_probs[0], probs[-1], atol=1e-6)


def test_predict_files_from_logits_and_sigmoid_ids(images):
    logits = keras.Sequential([keras.Input((*SIZE, 3)), keras.layers.GlobalAveragePooling2D()])
    probs, ids = predict_files(logits, image_stream(images), images.paths, from_logits=True)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert ids.tolist() == probs.argmax(axis=1).tolist()
    assert class_ids(np.array([[0.2], [0.7]])).tolist() == [0, 1]
    assert class_ids(np.array([0.9, 0.1])).tolist() == [1, 0]


def test_predict_files_names_bad_files_and_bad_settings(images, tmp_path):
    model, val = colour_model(), image_stream(images, shuffle=False)
    with pytest.raises(BadFileError, match=r"missing\.png"):
        predict_files(model, val, [images.paths[0], tmp_path / "missing.png"])
    with pytest.raises(ValueError, match="unknown image settings"):
        decode_files({"kind": "image", "colour": "yes"}, images.paths)
    with pytest.raises(ValueError, match="tokenizer"):
        decode_files({"kind": "text", "max_length": 8}, images.paths)
    with pytest.raises(TypeError, match="Stream or a settings"):
        decode_files({"image_size": SIZE}, images.paths)
    with pytest.raises(ValueError, match="no paths"):
        predict_files(model, val, [])


def test_decode_files_turns_random_audio_crops_off(tmp_path):
    import soundfile as sf

    from bytefeed_helpers import audio_batches

    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"tone_{i}.wav")
        sf.write(paths[-1], 0.3 * rng.standard_normal(8000).astype("float32"), 8000)
    manifest = Manifest(paths, [0, 1, 0], ["a", "b"], kind="audio")
    kw = {"sample_rate": 8000, "duration": 0.25, "features": "logmel", "n_mels": 16}
    train = audio_batches(manifest, 3, seed=5, **kw)
    val = audio_batches(manifest, 3, shuffle=False, **kw)
    assert train.options["crop"] == "random" and val.options["crop"] == "start"
    x_val = next(iter(val))[0]
    assert x_val.shape == (3, 1 + 2000 // 160, 16)
    np.testing.assert_array_equal(decode_files(train, paths), x_val)
    np.testing.assert_array_equal(decode_files({"kind": "audio", **train.options}, paths), x_val)


def test_decode_files_text_uses_the_streams_tokenizer(tmp_path):
    from bytefeed_helpers import text_batches

    paths = []
    for i, text in enumerate(["the cat sat", "a dog ran far away", "the end"]):
        paths.append(tmp_path / f"doc_{i}.txt")
        paths[-1].write_text(text)
    stream = text_batches(Manifest(paths, [0, 1, 0], ["a", "b"]), 3, max_length=5, shuffle=False)
    x = next(iter(stream))[0]
    assert np.array_equal(decode_files(stream, paths), x)
    settings = {"kind": "text", "tokenizer": stream.tokenizer, **stream.options}
    assert np.array_equal(decode_files(settings, paths[1:]), x[1:])


# --- a pass over a stream ----------------------------------------------------------------------
def test_collect_predictions_aligns_labels_predictions_and_paths(images, tmp_path):
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


# --- step times --------------------------------------------------------------------------------
def test_step_time_ratio_measures_and_leaves_the_model_untrained(images):
    model = keras.Sequential(
        [keras.Input((*SIZE, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    stream = image_stream(images, dtype="float32")
    model.fit(stream, epochs=1, verbose=0)  # builds the optimizer's slots
    before = [w.copy() for w in model.get_weights()]
    slots = [np.array(v.numpy()) for v in model.optimizer.variables]
    result = step_time_ratio(model, stream, n_steps=7)  # 3 batches per epoch: runs on
    assert set(result) == {"stream_ms", "memory_ms", "ratio", "steps"} and result["steps"] == 7
    assert result["stream_ms"] > 0 and result["memory_ms"] > 0
    assert result["ratio"] == pytest.approx(result["stream_ms"] / result["memory_ms"])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    after = [np.array(v.numpy()) for v in model.optimizer.variables]
    assert all(np.array_equal(a, b) for a, b in zip(slots, after, strict=True))
    assert stream.epoch >= 3  # 1 fitted + 8 batches of 3 per epoch


def test_step_time_ratio_rejects_bad_arguments_and_unreadable_streams(images, tmp_path):
    model = colour_model()
    with pytest.raises(ValueError, match="compile"):
        step_time_ratio(model, image_stream(images), 3)
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="n_steps"):
        step_time_ratio(model, image_stream(images), 0)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"junk")
    with pytest.warns(UserWarning), pytest.raises(BadFileError, match="1 skipped"):
        step_time_ratio(model, image_stream(Manifest([junk], [0], ["a"])), 3)
