"""``audio_batches``: the audio front-end of the engine (decoder + collate + features)."""

from __future__ import annotations

import functools
import os
from typing import Any

from .decoders.audio import decode_audio, logmel
from .engine import Decoder, stack
from .options import AudioFeatures, Crop, OnError, StreamOptions, check_choice
from .stream import Stream, make_stream


def audio_batches(
    manifest: Any,
    batch_size: int = 32,
    sample_rate: int = 16000,
    duration: float = 1.0,
    *,
    crop: Crop | None = None,
    features: AudioFeatures | None = None,
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    shuffle: bool = True,
    seed: int | None = None,
    on_error: OnError = "skip",
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
    options = StreamOptions(
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        on_error=on_error,
        drop_remainder=drop_remainder,
        with_paths=with_paths,
        augment=augment,
        training=training,
        workers=workers,
        prefetch=prefetch,
        shard=shard,
        resume=resume,
        cache=cache,
    )
    if features is not None:
        check_choice("features", features, AudioFeatures)
    crop = crop or ("random" if options.is_training else "start")
    check_choice("crop", crop, Crop)
    fixed = functools.partial(decode_audio, sample_rate=sample_rate, duration=duration)
    # Only random crops draw from the engine's per-file generator; the others say they take
    # none, so none is made (seeding one costs as much as reading a clip).
    decoder = (
        Decoder(
            functools.partial(fixed, crop=crop),
            takes_rng=True,
            for_evaluation=functools.partial(fixed, crop="start"),
        )
        if crop == "random"
        else Decoder(functools.partial(fixed, crop=crop))
    )
    mel = {"n_mels": n_mels, "n_fft": n_fft, "hop_length": hop_length}
    post = (
        functools.partial(logmel, sample_rate=sample_rate, **mel) if features == "logmel" else None
    )
    settings = {"sample_rate": sample_rate, "duration": duration, "crop": crop}
    settings.update({"features": features or "waveform", **mel})
    return make_stream(
        manifest, decoder, stack, options, kind="audio", settings=settings, postprocess=post
    )
