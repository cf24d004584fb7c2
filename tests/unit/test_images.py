"""image_batches on the sample photos and the broken-file manifest."""

from __future__ import annotations

import numpy as np
import pytest
from support import DATA

from bytefeed_helpers import BadFileError, build_manifest, image_batches
from bytefeed_helpers.errors import BytefeedWarning

BROKEN = DATA / "broken" / "images.csv"


@pytest.fixture(scope="module")
def images():
    return build_manifest(DATA / "images", kind="image", progress=False)


def test_batches_shapes_dtypes_and_every_file_once(images):
    s = image_batches(images, batch_size=16, image_size=(48, 64), seed=0, with_paths=True)
    assert len(s) == 5 and s.class_names == ["cat", "coffee", "rocket"]
    seen = []
    for x, y, paths in s:
        assert x.dtype == np.uint8 and x.shape[1:] == (48, 64, 3) and x.flags.c_contiguous
        assert y.dtype == np.int32 and y.shape == (len(x),)
        seen += list(paths)
    assert sorted(seen) == sorted(images.paths) and not s.errors


def test_labels_follow_files_under_shuffle(images):
    s = image_batches(images, batch_size=10, image_size=(16, 16), seed=3, with_paths=True)
    for _, y, paths in s:
        assert [s.class_names[i] for i in y] == [p.split("/")[-2] for p in paths]


def test_float32_and_one_channel(images):
    x, _ = next(iter(image_batches(images, 4, (8, 8), channels=1, dtype="float32", seed=0)))
    assert x.shape == (4, 8, 8, 1) and x.dtype == np.float32 and x.max() <= 255


def test_broken_manifest_skips_and_records():
    s = image_batches(BROKEN, batch_size=4, image_size=(32, 32), shuffle=False)
    with pytest.warns(BytefeedWarning, match="skipped 4"):
        n = sum(len(x) for x, _ in s)
    assert n == 10
    reasons = {e.path.split("/")[-1]: e.reason for e in s.errors}
    assert set(reasons) == {"truncated.jpg", "empty.jpg", "not_an_image.png", "missing.jpg"}
    assert reasons["missing.jpg"] == "file not found" and "empty" in reasons["empty.jpg"]


def test_broken_manifest_raise_names_the_file():
    s = image_batches(BROKEN, batch_size=4, image_size=(32, 32), shuffle=False, on_error="raise")
    with pytest.raises(BadFileError, match=r"truncated\.jpg"):
        list(s)


def test_model_fit_on_image_stream(images):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    train, val = images.split(0.25, seed=0)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        image_batches(train, 16, (32, 32), seed=0),
        validation_data=image_batches(val, 16, (32, 32), shuffle=False),
        epochs=2,
        verbose=0,
    )
    assert len(history.history["val_accuracy"]) == 2
    assert np.isfinite(history.history["loss"]).all()
