"""step_time_ratio: a training step fed by the stream against one fed from memory
(bytefeed_helpers.bench.speed); no timing is asserted, only what is measured and kept."""

from __future__ import annotations

import numpy as np
import pytest
from support import COLOUR_SIZE as SIZE
from support import colour_images, colour_model
from support import colour_stream as image_stream

from bytefeed_helpers import BadFileError, Manifest
from bytefeed_helpers.bench import step_time_ratio
from bytefeed_helpers.errors import TooManyBadFiles

keras = pytest.importorskip("keras")


@pytest.fixture
def images(tmp_path) -> Manifest:
    """Four noisy PNGs per colour class; class ids follow sorted names (blue, green, red)."""
    return colour_images(tmp_path)


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
    unreadable = Manifest([junk], [0], ["a"])
    # the error budget stops an epoch of nothing at once ...
    with pytest.raises(TooManyBadFiles, match="1 of the 1 files"):
        step_time_ratio(model, image_stream(unreadable), 3)
    # ... and without one, the epoch ends empty and step_time_ratio says so
    with pytest.warns(UserWarning), pytest.raises(BadFileError, match="1 skipped"):
        step_time_ratio(model, image_stream(unreadable, max_error_rate=None), 3)
