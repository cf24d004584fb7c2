"""Training helpers on small synthetic files: the StreamMonitor callback, decoding and
predicting single files."""

from __future__ import annotations

import numpy as np
import pytest
from support import COLOUR_SIZE as SIZE
from support import colour_images, colour_model
from support import colour_stream as image_stream

from bytefeed_helpers import BadFileError, Manifest
from bytefeed_helpers.training import StreamMonitor, class_ids, decode_files, predict_files

keras = pytest.importorskip("keras")


@pytest.fixture
def images(tmp_path) -> Manifest:
    """Four noisy PNGs per colour class; class ids follow sorted names (blue, green, red)."""
    return colour_images(tmp_path)


def invert(batch, rng):
    return 255 - batch


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
