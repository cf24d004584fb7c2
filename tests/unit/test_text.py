"""text_batches on the public-domain documents and the broken-file manifest."""

from __future__ import annotations

import numpy as np
import pytest
from support import DATA

from bytefeed_helpers import BadFileError, WordTokenizer, build_manifest, text_batches
from bytefeed_helpers.errors import BytefeedWarning

BROKEN = DATA / "broken" / "text.csv"


@pytest.fixture(scope="module")
def docs():
    return build_manifest(DATA / "text", kind="text", progress=False)


def test_dynamic_padding_and_vocabulary(docs):
    s = text_batches(docs, batch_size=8, seed=0)
    assert isinstance(s.tokenizer, WordTokenizer) and s.tokenizer.vocabulary_size > 100
    widths = set()
    for x, y in s:
        assert x.dtype == np.int32 and x.ndim == 2 and y.dtype == np.int32
        lengths = (x != 0).sum(axis=1)
        assert lengths.max() == x.shape[1]  # padded to the batch's longest
        widths.add(x.shape[1])
    assert len(widths) > 1 and not s.errors


def test_max_length_truncates_and_pads(docs):
    x, _ = next(iter(text_batches(docs, 8, max_length=12, shuffle=False)))
    assert x.shape == (8, 12)


def test_shared_tokenizer_for_validation(docs):
    train, val = docs.split(0.25, seed=0)
    t = text_batches(train, 8, seed=0)
    v = text_batches(val, 8, tokenizer=t.tokenizer, shuffle=False)
    assert v.tokenizer is t.tokenizer


def test_keras_text_vectorization_as_tokenizer(docs):
    keras = pytest.importorskip("keras")
    from bytefeed_helpers.decoders import decode_text

    layer = keras.layers.TextVectorization(max_tokens=500, output_sequence_length=16)
    layer.adapt([decode_text(p) for p in docs.paths])
    x, _ = next(iter(text_batches(docs, 4, tokenizer=layer, shuffle=False)))
    assert x.shape == (4, 16) and x.dtype == np.int32 and x.max() < 500


def test_broken_manifest_skips_and_records():
    s = text_batches(BROKEN, batch_size=4, shuffle=False)
    with pytest.warns(BytefeedWarning, match="skipped 2"):
        n = sum(len(x) for x, _ in s)
    assert n == 10  # the cp1252 document is read through the fallback
    names = {e.path.split("/")[-1] for e in s.errors}
    assert names == {"binary_junk.txt", "missing.txt"}
    with pytest.raises(BadFileError):
        list(text_batches(BROKEN, 4, shuffle=False, on_error="raise"))


def test_model_fit_on_text_stream(docs):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    s = text_batches(docs, 8, max_length=64, seed=0)
    model = keras.Sequential(
        [
            keras.Input((64,), dtype="int32"),
            keras.layers.Embedding(s.tokenizer.vocabulary_size, 8),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(s, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
