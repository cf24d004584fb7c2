"""``audio_batches``: the audio front-end of the engine (decoder + collate + features)."""

from __future__ import annotations

import functools
import math
import os
from typing import Any

import numpy as np

from .decoders._fileio import DEFAULT_MAX_FILE_MB, check_max_file_mb
from .decoders._resample import QUALITY, check_quality
from .decoders.audio import check_audio_settings, decode_checked, info_checked, logmel
from .engine import Collate, Decoder, stack
from .errors import BadFileError
from .options import (
    AudioFeatures,
    BatchPolicy,
    Crop,
    LabelMode,
    OnError,
    Parallelism,
    StreamOptions,
    check_choice,
    check_int,
)
from .stream import Stream, make_stream

#: Longest clip (seconds) a ``duration=None`` stream takes by default: every batch is padded to
#: its longest clip, so one stray hour-long recording would make each batch holding it
#: 32 x 57.6 M samples (7 GB of float32 at 16 kHz) instead of a few MB.
DEFAULT_MAX_DURATION = 60.0


def audio_batches(
    manifest: Any,
    batch_size: int = 32,
    sample_rate: int | None = 16000,
    duration: float | None = 1.0,
    *,
    crop: Crop | None = None,
    features: AudioFeatures | None = None,
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    max_duration: float | None = DEFAULT_MAX_DURATION,
    channel_axis: bool = False,
    lengths: bool = False,
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
    max_error_rate: float | None = 0.5,
    batch_policy: BatchPolicy = "short",
    label_mode: LabelMode | None = "int",
    parallelism: Parallelism = "threads",
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB["audio"],
    resample_quality: str = QUALITY,
) -> Stream:
    """Stream batches of audio clips decoded from ``manifest``.

    Yields ``(x, y)``: ``x`` is ``float32 [B, N]`` mono waveforms in [-1, 1] with
    ``N = round(sample_rate * duration)``, or with ``features="logmel"`` log-mel spectrograms
    ``float32 [B, 1 + N // hop_length, n_mels]`` (time first); ``y`` is ``int32 [B]``.
    ``channel_axis=True`` adds a last axis of 1: ``[B, N, 1]``, Keras's
    ``audio_dataset_from_directory`` shape (``[B, frames, n_mels, 1]`` for log-mels, as a
    ``Conv2D`` takes them); it is added last, after augmentation and features.

    ``duration=None`` keeps every clip whole and pads each batch with zeros at the end to its
    longest clip: ``x`` is ``[B, T]``, ``T`` the longest clip of that batch (Keras's
    ``output_sequence_length=None``). ``lengths=True`` (only with ``duration=None``) yields
    each clip's true length for masking: ``x`` becomes ``{"audio": x, "lengths": int32 [B]}``,
    the inputs of a model with two ``keras.Input`` named so (lengths in samples, or in
    frames, ``1 + samples // hop_length``, with log-mels); padding rows of
    ``batch_policy="pad"`` have length 0. ``max_duration`` (seconds, default 60; None: no
    limit) guards a ``duration=None`` stream against one huge file: a longer clip is skipped
    before it is read (from its header) as "clip too long: 3600.0 s, over the limit of 60 s
    (max_duration)",
    recorded in ``stream.errors`` like any bad file (a file far longer than its neighbours is
    usually the wrong file, and cropping it would hide that; pass ``duration=`` to crop every
    clip instead). With a fixed ``duration`` only the frames needed are read, so
    ``max_duration`` does not apply.

    WAV (8/16/24/32-bit, float), FLAC, OGG and MP3 are read with libsndfile, only the frames
    needed; stereo is mixed to mono and resampled to ``sample_rate`` with soxr's filter
    ``resample_quality`` ("HQ", librosa's, by default; "QQ", "LQ", "MQ" are quicker and
    alias more, "VHQ" is slower: speeds and errors against HQ in BENCHMARKS.md); None
    keeps each file's own rate (as Keras's ``sampling_rate=None``: clips of different rates
    then share a batch unresampled). Each clip is cropped to ``duration`` (``crop="random"``
    for training streams by default, else ``"start"``; ``"center"`` is the third choice) or
    zero-padded at the end. Random crops are reproducible from the stream's seed.

    Bad files (missing, empty, cut header, undecodable, non-finite samples) are skipped and
    recorded in ``stream.errors`` (``on_error="skip"``) or raise ``BadFileError``
    (``on_error="raise"``). ``augment`` runs on each waveform batch of a training stream
    (padded ones with ``duration=None``); an augmenter's ``features(batch, rng)`` method
    (SpecAugment masks) runs on the log-mels. See ``BatchEngine`` for the other options.
    ``cache`` (a folder) stores the decoded clips (waveforms, before features and
    augmentation) in the first epoch and reads them back later; random crops are not cached
    (see ``bytefeed_helpers.cache``), and clips of one ``duration`` only.

    ``max_file_mb``: larger files are skipped before a byte of them is read (MB of 2**20
    bytes; None: no limit); anything but a regular file (a FIFO, a device, a folder) is
    skipped at once as "not a regular file".
    Arguments are checked when the stream is built: a wrong one raises ``ValueError`` naming
    it, before any file is read. ``max_error_rate`` (default 0.5; a stream with more bad
    files in an epoch stops), ``label_mode`` (Keras's "int", "categorical", "binary" or None),
    ``batch_policy`` ("short", or "pad": one batch shape with sample weights) and
    ``parallelism`` ("threads" or "processes"): see ``BatchEngine``.
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
        max_error_rate=max_error_rate,
        batch_policy=batch_policy,
        label_mode=label_mode,
        parallelism=parallelism,
    )
    if features is not None:
        check_choice("features", features, AudioFeatures)
    if duration is None and crop is not None:
        raise ValueError(
            "crop needs a duration to crop to: duration=None keeps every clip whole. "
            f"Received: crop={crop!r} with duration=None"
        )
    crop = crop or ("random" if options.is_training and duration is not None else "start")
    check_audio_settings(sample_rate, duration, crop)
    for name, value in (("n_mels", n_mels), ("n_fft", n_fft), ("hop_length", hop_length)):
        check_int(name, value)
    _check_variable_length(duration, max_duration, channel_axis, lengths, cache)
    check_quality(resample_quality)
    decoder, collate = _decoding(
        sample_rate, duration, crop, max_duration, check_max_file_mb(max_file_mb), resample_quality
    )
    post = None
    if features == "logmel":
        if sample_rate is None:
            raise ValueError(
                "features='logmel' needs one sample_rate for its mel filters. "
                "Received: sample_rate=None"
            )
        post = functools.partial(
            logmel, sample_rate=sample_rate, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length
        )
    settings: dict[str, Any] = {"sample_rate": sample_rate, "duration": duration, "crop": crop}
    settings["features"] = features or "waveform"
    settings["resample_quality"] = resample_quality
    settings.update(n_mels=n_mels, n_fft=n_fft, hop_length=hop_length)
    settings.update(max_duration=max_duration, channel_axis=channel_axis, lengths=lengths)
    inputs = None
    if channel_axis or lengths:
        frames = hop_length if features == "logmel" else None
        inputs = functools.partial(
            _model_inputs, channel_axis=channel_axis, lengths=lengths, hop_length=frames
        )
    return make_stream(
        manifest,
        decoder,
        collate,
        options,
        kind="audio",
        settings=settings,
        postprocess=post,
        inputs=inputs,
    )


def _check_variable_length(
    duration: float | None,
    max_duration: Any,
    channel_axis: Any,
    lengths: Any,
    cache: Any,
) -> None:
    if max_duration is not None and not (
        isinstance(max_duration, int | float)
        and not isinstance(max_duration, bool)
        and math.isfinite(max_duration)
        and max_duration > 0
    ):
        raise ValueError(
            "max_duration must be a number of seconds > 0 or None. "
            f"Received: max_duration={max_duration!r}"
        )
    for name, value in (("channel_axis", channel_axis), ("lengths", lengths)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False. Received: {name}={value!r}")
    if lengths and duration is not None:
        raise ValueError(
            "lengths=True needs duration=None: with a fixed duration every clip is cropped or "
            "zero-padded to it when decoded, and its own length is gone. "
            f"Received: lengths=True with duration={duration!r}"
        )
    if duration is None and cache is not None:
        raise ValueError(
            "cache= stores clips of one duration; pass a duration (seconds) to cache, or no "
            "cache for whole clips. Received: cache with duration=None"
        )


def _decoding(
    sample_rate: int | None,
    duration: float | None,
    crop: str,
    max_duration: float | None,
    max_bytes: int | None,
    quality: str,
) -> tuple[Decoder, Collate]:
    """The decoder and collate step: clips of one length stacked, or whole clips padded.
    The settings were checked by ``audio_batches``; the decoders do not check them again."""
    if duration is None:
        whole = functools.partial(
            _whole_clip,
            sample_rate=sample_rate,
            max_duration=max_duration,
            max_bytes=max_bytes,
            quality=quality,
        )
        return Decoder(whole), Collate(pad_clips, same_shape=False)
    fixed = functools.partial(
        decode_checked,
        sample_rate=sample_rate,
        duration=duration,
        max_bytes=max_bytes,
        quality=quality,
    )
    # Only random crops draw from the engine's per-file generator; the others say they take
    # none, so none is made (seeding one costs as much as reading a clip).
    if crop == "random":
        return Decoder(
            functools.partial(fixed, crop=crop),
            takes_rng=True,
            for_evaluation=functools.partial(fixed, crop="start"),
        ), stack
    return Decoder(functools.partial(fixed, crop=crop)), stack


def _whole_clip(
    src: Any,
    *,
    sample_rate: int | None,
    max_duration: float | None,
    max_bytes: int | None,
    quality: str,
) -> np.ndarray:
    """A whole clip ``float32 [T]``; BadFileError ("clip too long: ...") past ``max_duration``.

    The header is read first, so a long file is refused before its samples are; the decoded
    length is checked too (a header's frame count may be an estimate, as an MP3's).
    """
    if max_duration is None:
        return _whole(src, sample_rate, max_bytes, quality)
    try:
        info = info_checked(src, max_bytes)
    except BadFileError:
        info = None  # a format only the fallback decoder reads: checked once decoded
    if not isinstance(src, str | os.PathLike | bytes | bytearray | memoryview):
        src.seek(0)  # a packed row's file object: decode it from its start
    if info is not None and info["duration"] > max_duration:
        raise BadFileError(_too_long(info["duration"], max_duration))
    clip = _whole(src, sample_rate, max_bytes, quality)
    rate = sample_rate or (info["samplerate"] if info is not None else None)
    if rate is not None and len(clip) > round(max_duration * rate):
        raise BadFileError(_too_long(len(clip) / rate, max_duration))
    return clip


def _whole(src: Any, sample_rate: int | None, max_bytes: int | None, quality: str) -> np.ndarray:
    return decode_checked(
        src,
        sample_rate=sample_rate,
        duration=None,
        crop="start",
        max_bytes=max_bytes,
        quality=quality,
    )


def _too_long(seconds: float, max_duration: float) -> str:
    limit = f"{max_duration:g}"  # shown as given: "60", "0.5"
    return f"clip too long: {seconds:.1f} s, over the limit of {limit} s (max_duration)"


def pad_clips(clips: list[np.ndarray]) -> np.ndarray:
    """Clips ``float32 [T_i]`` as one ``float32 [B, max T_i]`` batch, zero-padded at the end."""
    out = np.zeros((len(clips), max(len(c) for c in clips)), np.float32)
    for row, clip in zip(out, clips, strict=True):
        row[: len(clip)] = clip
    return out


def _model_inputs(
    x: np.ndarray,
    clip_lengths: np.ndarray | None,
    *,
    channel_axis: bool,
    lengths: bool,
    hop_length: int | None,
) -> Any:
    """``x`` with a last axis of 1 (``channel_axis``), and with the clips' lengths as
    ``{"audio": x, "lengths": ...}`` (``lengths``; in frames when ``hop_length`` is given)."""
    if channel_axis:
        x = x[..., np.newaxis]
    if not lengths:
        return x
    n = np.zeros(len(x), np.int32) if clip_lengths is None else clip_lengths
    if hop_length is not None:  # centred frames: 1 + samples // hop, none for a padding row
        n = np.where(n > 0, 1 + n // hop_length, 0).astype(np.int32)
    return {"audio": x, "lengths": n}
