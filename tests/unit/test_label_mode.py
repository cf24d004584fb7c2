"""``label_mode`` as Keras's ``*_dataset_from_directory``: "int", "categorical", "binary", None.

Ported from Keras's ``image_dataset_utils_test.py`` (``test_image_dataset_from_directory_
binary``, ``..._multiclass`` with ``label_mode="categorical"``, ``label_mode=None``) and the
audio/text equivalents: the same shapes and dtypes, on the Python stream and on
``to_tf_dataset()``.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import DATA

import bytefeed_helpers as bf


@pytest.fixture(scope="module")
def images() -> bf.Manifest:
    return bf.build_manifest(DATA / "images", kind="image")  # three classes


@pytest.fixture(scope="module")
def two_classes(images) -> bf.Manifest:
    keep = np.flatnonzero(images.labels < 2)
    return bf.Manifest(
        [images.paths[i] for i in keep], images.labels[keep].tolist(), images.class_names[:2]
    )


def first(stream):
    return next(iter(stream))


def test_int_is_the_default(images):
    _, y = first(bf.image_batches(images, 8, 16, shuffle=False))
    assert y.dtype == np.int32 and y.shape == (8,)


def test_categorical_is_one_hot_float32(images):
    stream = bf.image_batches(images, 8, 16, seed=0, label_mode="categorical")
    ids = bf.image_batches(images, 8, 16, seed=0)
    (_, y), (_, want) = first(stream), first(ids)
    assert y.dtype == np.float32 and y.shape == (8, 3)
    assert np.array_equal(y.argmax(axis=1), want) and np.all(y.sum(axis=1) == 1)


def test_binary_is_float32_b_by_1_and_needs_two_classes(images, two_classes):
    _, y = first(bf.image_batches(two_classes, 8, 16, seed=0, label_mode="binary"))
    assert y.dtype == np.float32 and y.shape == (8, 1) and set(np.unique(y)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"label_mode='binary' needs exactly 2 classes"):
        bf.image_batches(images, 8, 16, label_mode="binary")


def test_none_yields_inputs_only(images):
    stream = bf.image_batches(images, 8, 16, shuffle=False, label_mode=None)
    batches = list(stream)
    assert all(isinstance(b, np.ndarray) and b.shape[1:] == (16, 16, 3) for b in batches)
    assert sum(len(b) for b in batches) == len(images)


def test_unlabelled_rows_refuse_categorical(tmp_path, images):
    unlabelled = bf.Manifest(list(images.paths[:4]), [-1] * 4, images.class_names)
    with pytest.raises(ValueError, match="unlabelled rows"):
        bf.image_batches(unlabelled, 2, 16, label_mode="categorical")


def test_a_wrong_label_mode_is_refused(images):
    with pytest.raises(ValueError, match=r"label_mode must be one of 'int', 'categorical', "):
        bf.image_batches(images, 8, 16, label_mode="sparse")


def test_audio_and_text_streams_take_label_mode():
    audio = bf.build_manifest(DATA / "audio", kind="audio")
    _, y = first(bf.audio_batches(audio, 4, 8000, 0.25, seed=0, label_mode="categorical"))
    assert y.shape == (4, len(audio.class_names)) and y.dtype == np.float32
    text = bf.build_manifest(DATA / "text", kind="text")
    _, y = first(bf.text_batches(text, 4, max_length=16, seed=0, label_mode="binary"))
    assert y.shape == (4, 1) and y.dtype == np.float32


def test_padded_categorical_batches_pad_the_one_hot_rows(images):
    stream = bf.image_batches(
        images, 10, 8, shuffle=False, label_mode="categorical", batch_policy="pad"
    )
    *_, (x, y, w) = list(stream)  # 72 files: the last batch holds 2 real rows
    assert x.shape[0] == y.shape[0] == 10 and y.shape[1] == 3
    assert w.tolist() == [1.0, 1.0] + [0.0] * 8 and not y[2:].any()


@pytest.mark.parametrize("mode", ["categorical", "binary", None])
def test_to_tf_dataset_follows_label_mode(images, two_classes, mode):
    pytest.importorskip("tensorflow")
    manifest = two_classes if mode == "binary" else images
    keep = [i for i, p in enumerate(manifest.paths) if not str(p).endswith(".tif")]  # TF: no TIFF
    manifest = bf.Manifest(
        [manifest.paths[i] for i in keep], manifest.labels[keep].tolist(), manifest.class_names
    )
    stream = bf.image_batches(manifest, 8, 16, shuffle=False, label_mode=mode)
    python = first(stream)
    graph = next(iter(stream.to_tf_dataset().as_numpy_iterator()))
    if mode is None:
        assert graph.shape == python.shape
    else:
        assert graph[1].dtype == python[1].dtype and graph[1].shape == python[1].shape
        assert np.array_equal(graph[1], python[1])
