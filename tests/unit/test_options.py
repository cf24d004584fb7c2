"""Arguments are checked once, when a stream is built: a wrong one is a ValueError naming it.

Before, ``image_batches(m, 32, (64, 64), channels=2)`` built a stream that recorded every file
as skipped ("channels must be one of (1, 3)"), and plain iteration yielded nothing. Each case
here builds its stream over files that do not exist: a check that only ran per file would
show up as skipped files, not as the ValueError the test expects. The cases follow Keras's
own argument tests (``image_dataset_utils_test.py``: invalid ``color_mode``,
``image_size``, ``validation_split``...), mapped onto bytefeed's arguments.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from support import DATA

import bytefeed_helpers as bf
from bytefeed_helpers.options import StreamOptions, check_choice

MISSING = bf.Manifest(["nowhere/a.jpg", "nowhere/b.jpg"], [0, 1], ["a", "b"])

IMAGE_CASES = [
    ({"channels": 2}, "channels", "channels=2"),
    ({"channels": True}, "channels", "channels=True"),
    ({"fit": "squash"}, "fit", "fit='squash'"),
    ({"dtype": "int8"}, "dtype", "dtype='int8'"),
    ({"image_size": "big"}, "image_size", "image_size='big'"),
    ({"image_size": (0, 3)}, "image_size", "image_size=(0, 3)"),
    ({"image_size": (64,)}, "image_size", "image_size=(64,)"),
    ({"image_size": 12.5}, "image_size", "image_size=12.5"),
    ({"image_size": None}, "image_size", "image_size=None"),
]
COMMON_CASES = [
    ({"batch_size": 0}, "batch_size", "batch_size=0"),
    ({"batch_size": 2.5}, "batch_size", "batch_size=2.5"),
    ({"on_error": "ignore"}, "on_error", "on_error='ignore'"),
    ({"shard": (2, 2)}, "shard", "shard=(2, 2)"),
    ({"shard": "0/2"}, "shard", "shard='0/2'"),
    ({"workers": 0}, "workers", "workers=0"),
    ({"prefetch": -1}, "prefetch", "prefetch=-1"),
    ({"seed": "x"}, "seed", "seed='x'"),
    ({"max_error_rate": 1.5}, "max_error_rate", "max_error_rate=1.5"),
    ({"max_error_rate": -0.1}, "max_error_rate", "max_error_rate=-0.1"),
    ({"batch_policy": "drop"}, "batch_policy", "batch_policy='drop'"),
    ({"max_file_mb": -1}, "max_file_mb", "max_file_mb=-1"),
    ({"max_file_mb": "big"}, "max_file_mb", "max_file_mb='big'"),
]
AUDIO_CASES = [
    ({"sample_rate": -1}, "sample_rate", "sample_rate=-1"),
    ({"sample_rate": 16000.5}, "sample_rate", "sample_rate=16000.5"),
    ({"sample_rate": 0}, "sample_rate", "sample_rate=0"),
    ({"duration": 0}, "duration", "duration=0"),
    ({"duration": float("nan")}, "duration", "duration=nan"),
    ({"crop": "end"}, "crop", "crop='end'"),
    ({"features": "mfcc"}, "features", "features='mfcc'"),
    ({"n_mels": 0}, "n_mels", "n_mels=0"),
    ({"hop_length": 0}, "hop_length", "hop_length=0"),
]
TEXT_CASES = [
    ({"max_length": 0}, "max_length", "max_length=0"),
    ({"max_tokens": 1}, "max_tokens", "max_tokens=1"),
    ({"tokenizer": "words"}, "tokenizer", "tokenizer='words'"),
    ({"encoding": "nope"}, "encoding", "encoding='nope'"),
]


def expect_value_error(build, argument: str, received: str) -> None:
    with pytest.raises(ValueError) as info:
        build()
    message = str(info.value)
    assert message.startswith(argument), message  # names the argument first
    assert f"Received: {received}" in message, message  # and what it got


@pytest.mark.parametrize(("kw", "argument", "received"), IMAGE_CASES + COMMON_CASES)
def test_image_arguments(kw, argument, received):
    kw = {"image_size": (8, 8), **kw}
    size = kw.pop("image_size")
    expect_value_error(
        lambda: bf.image_batches(MISSING, kw.pop("batch_size", 2), size, **kw), argument, received
    )


@pytest.mark.parametrize(("kw", "argument", "received"), AUDIO_CASES + COMMON_CASES)
def test_audio_arguments(kw, argument, received):
    kw = dict(kw)
    batch = kw.pop("batch_size", 2)
    expect_value_error(lambda: bf.audio_batches(MISSING, batch, **kw), argument, received)


@pytest.mark.parametrize(("kw", "argument", "received"), TEXT_CASES + COMMON_CASES)
def test_text_arguments(kw, argument, received):
    kw = dict(kw)
    batch = kw.pop("batch_size", 2)
    tokenizer = kw.pop("tokenizer", bf.WordTokenizer())  # no vocabulary pass over the files
    expect_value_error(
        lambda: bf.text_batches(MISSING, batch, tokenizer=tokenizer, **kw), argument, received
    )


def test_sharded_shuffled_streams_need_a_seed():
    with pytest.raises(ValueError, match="seed shared by every shard"):
        bf.image_batches(MISSING, 2, 8, shard=(0, 2))


def test_an_int_image_size_is_a_square_as_in_keras():
    m = bf.build_manifest(DATA / "images", kind="image")
    x, y = next(iter(bf.image_batches(m, 4, 20, shuffle=False)))
    assert x.shape == (4, 20, 20, 3) and x.dtype == np.uint8 and y.shape == (4,)


def test_check_choice_lists_every_accepted_value():
    from bytefeed_helpers.options import OnError

    with pytest.raises(ValueError, match=re.escape("on_error must be one of 'skip', 'raise'. ")):
        check_choice("on_error", "warn", OnError)


def test_stream_options_are_frozen_and_normalise_the_shard():
    options = StreamOptions(shard=[1, 3], seed=0)
    assert options.shard == (1, 3)
    with pytest.raises(AttributeError):
        options.batch_size = 4  # type: ignore[misc]
