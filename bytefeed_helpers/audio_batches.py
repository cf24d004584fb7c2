"""``audio_batches``: the audio front-end of the engine (decoder + collate + features)."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .decode_audio import decode_audio, logmel
from .engine import stack

if TYPE_CHECKING:
    from .stream import Stream

FEATURES = (None, "waveform", "logmel")


def audio_batches(
    manifest: Any,
    batch_size: int = 32,
    sample_rate: int = 16000,
    duration: float = 1.0,
    *,
    crop: str | None = None,
    features: str | None = None,
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    shuffle: bool = True,
    seed: int | None = None,
    on_error: str = "skip",
    drop_remainder: bool = False,
    with_paths: bool = False,
    augment: Any = None,
    training: bool | None = None,
    workers: int | None = None,
    prefetch: int | None = None,
    shard: tuple[int, int] = (0, 1),
    resume: dict | None = None,
    cache: str | os.PathLike | None = None,
) -> Stream:
    """Stream batches of audio clips decoded from ``manifest``.

    Yields ``(x, y)``: ``x`` is ``float32 [B, N]`` mono waveforms in [-1, 1] with
    ``N = round(sample_rate * duration)``, or with ``features="logmel"`` log-mel spectrograms
    ``float32 [B, 1 + N // hop_length, n_mels]`` (time first); ``y`` is ``int32 [B]``.

    WAV (8/16/24/32-bit, float), FLAC, OGG and MP3 are read with libsndfile, only the frames
    needed; stereo is mixed to mono and resampled to ``sample_rate`` with soxr (HQ). Each clip
    is cropped to ``duration`` (``crop="random"`` for training streams by default, else
    ``"start"``; ``"center"`` is the third choice) or zero-padded at the end. Random crops are
    reproducible from the stream's seed.

    Bad files (missing, empty, cut header, undecodable, non-finite samples) are skipped and
    recorded in ``stream.errors`` (``on_error="skip"``) or raise ``BadFileError``
    (``on_error="raise"``). ``augment`` runs on each waveform batch of a training stream; an
    augmenter's ``features(batch, rng)`` method (SpecAugment masks) runs on the log-mels.
    See ``BatchEngine`` for the other options.
    ``cache`` (a folder) stores the decoded clips (waveforms, before features and
    augmentation) in the first epoch and reads them back later; random crops are not cached
    (see ``bytefeed_helpers.cache``).
    """
    arguments = dict(locals())  # taken first, while they are the only names
    if features not in FEATURES:
        raise ValueError(f"features must be one of {FEATURES}, not {features!r}")
    training = shuffle if training is None else training
    crop = crop or ("random" if training else "start")
    # Only random crops draw from the engine's per-file generator; the others get a decoder
    # without an rng parameter, so none is made (seeding one costs as much as reading a clip).
    decode = functools.partial(
        decode_audio if crop == "random" else _decode_fixed_crop,
        sample_rate=sample_rate,
        duration=duration,
        crop=crop,
    )
    mel = {"n_mels": n_mels, "n_fft": n_fft, "hop_length": hop_length}
    post = (
        functools.partial(logmel, sample_rate=sample_rate, **mel) if features == "logmel" else None
    )
    options = {"sample_rate": sample_rate, "duration": duration, "crop": crop}
    options.update({"features": features or "waveform", **mel})
    from .stream import make_stream, stream_options  # here: importing this module skips Keras

    return make_stream(
        manifest,
        decode,
        stack,
        kind="audio",
        options=options,
        postprocess=post,
        **stream_options(arguments),
    )


def _decode_fixed_crop(src: Any, **settings: Any) -> np.ndarray:
    """``decode_audio`` for "start"/"center" crops, which need no random generator."""
    return decode_audio(src, **settings)
