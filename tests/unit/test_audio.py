"""audio_batches on the spoken-word clips and the broken-file manifest."""

from __future__ import annotations

import numpy as np
import pytest
from support import DATA

from bytefeed_helpers import BadFileError, audio_batches, build_manifest
from bytefeed_helpers.errors import BytefeedWarning

BROKEN = DATA / "broken" / "audio.csv"


@pytest.fixture(scope="module")
def clips():
    return build_manifest(DATA / "audio", kind="audio", progress=False)


def test_waveform_batches(clips):
    s = audio_batches(clips, batch_size=16, sample_rate=8000, duration=0.5, seed=0)
    assert len(s) == 3 and s.class_names == ["no", "stop", "yes"]
    total = 0
    for x, y in s:
        assert x.dtype == np.float32 and x.shape[1:] == (4000,)
        assert np.isfinite(x).all() and np.abs(x).max() <= 1.0 + 1e-4
        assert y.dtype == np.int32
        total += len(x)
    assert total == len(clips) and not s.errors


def test_logmel_batches(clips):
    s = audio_batches(clips, 8, 16000, 1.0, features="logmel", n_mels=40, shuffle=False)
    x, _ = next(iter(s))
    assert x.shape == (8, 1 + 16000 // 160, 40) and x.dtype == np.float32


def test_random_crop_reproducible_for_a_seed(clips):
    a = [x for x, _ in audio_batches(clips, 8, 8000, 0.25, seed=5)]
    b = [x for x, _ in audio_batches(clips, 8, 8000, 0.25, seed=5)]
    for xa, xb in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)


def test_broken_manifest_skips_and_records():
    s = audio_batches(BROKEN, batch_size=4, sample_rate=8000, duration=0.5, shuffle=False)
    with pytest.warns(BytefeedWarning, match="skipped 4"):
        n = sum(len(x) for x, _ in s)
    assert n == 10
    names = {e.path.split("/")[-1] for e in s.errors}
    assert names == {"cut_header.wav", "empty.wav", "truncated.flac", "missing.wav"}


def test_broken_manifest_raise():
    s = audio_batches(BROKEN, 4, 8000, 0.5, shuffle=False, on_error="raise")
    with pytest.raises(BadFileError):
        list(s)


def test_model_fit_on_audio_stream(clips):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    stream = audio_batches(
        clips, 16, 8000, 0.5, features="logmel", n_mels=20, n_fft=256, hop_length=80, seed=0
    )
    x, _ = next(iter(stream))
    model = keras.Sequential(
        [
            keras.Input(x.shape[1:]),
            keras.layers.Conv1D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(stream, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("quality", ["QQ", "MQ", "VHQ"])
def test_resample_quality_reaches_every_clip(clips, quality):
    """``resample_quality`` is the filter every clip of the stream is resampled with: each
    clip equals ``decode_audio`` with that quality, differs from HQ where rates differ, and
    stays within soxr's error of HQ (rate 8 kHz, every sample file is 8-44.1 kHz)."""
    from bytefeed_helpers.decoders import decode_audio

    kw = {"batch_size": 48, "sample_rate": 8000, "duration": 0.5, "shuffle": False}
    hq = next(iter(audio_batches(clips, **kw)))[0]
    x = next(iter(audio_batches(clips, resample_quality=quality, **kw)))[0]
    assert x.shape == hq.shape == (48, 4000)
    for row, path in enumerate(clips.paths):
        want = decode_audio(path, 8000, 0.5, resample_quality=quality)
        np.testing.assert_array_equal(x[row], want)
    assert not np.array_equal(x, hq)
    assert np.sqrt(np.mean((x - hq) ** 2)) < 0.05  # the same audio, another filter


def test_resample_quality_is_checked_when_built(clips):
    with pytest.raises(ValueError, match=r"resample_quality must be one of QQ, LQ, MQ, HQ, VHQ"):
        audio_batches(clips, resample_quality="best")


def test_whole_clips_take_the_quality_too(clips):
    kw = {"batch_size": 48, "sample_rate": 8000, "duration": None, "shuffle": False}
    a = next(iter(audio_batches(clips, resample_quality="QQ", lengths=True, **kw)))[0]
    b = next(iter(audio_batches(clips, lengths=True, **kw)))[0]
    assert np.array_equal(a["lengths"], b["lengths"]) and not np.array_equal(a["audio"], b["audio"])
