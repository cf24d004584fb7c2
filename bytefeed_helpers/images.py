"""``image_batches``: the image front-end of the engine (decoder + collate, nothing else)."""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from .decoders._fileio import DEFAULT_MAX_FILE_MB, check_max_file_mb
from .decoders.image import check_image_settings, decode_checked
from .engine import Decoder, stack
from .options import (
    BatchPolicy,
    DataFormat,
    Fit,
    ImageDtype,
    Interpolation,
    LabelMode,
    OnError,
    Parallelism,
    StreamOptions,
    check_choice,
)
from .stream import Stream, make_stream


def image_batches(
    manifest: Any,
    batch_size: int = 32,
    image_size: int | tuple[int, int] = (224, 224),
    *,
    channels: int = 3,
    fit: Fit = "stretch",
    dtype: ImageDtype = "uint8",
    interpolation: Interpolation = "bilinear",
    data_format: DataFormat = "channels_last",
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
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB["image"],
) -> Stream:
    """Stream batches of images decoded from ``manifest`` (a ``Manifest`` or a manifest file).

    Yields ``(x, y)``: ``x`` is ``uint8 [B, H, W, channels]`` (``image_size = (H, W)``; an int
    is a square), or ``float32`` holding the same 0-255 values with ``dtype="float32"``;
    ``[B, channels, H, W]`` with ``data_format="channels_first"`` (transposed after
    augmentation, which always sees ``[B, H, W, C]``); ``y`` is
    ``int32 [B]`` label ids into ``stream.class_names``. Keep ``uint8`` and put
    ``keras.layers.Rescaling(1/255)`` first in the model: a quarter of the memory and
    bandwidth of float32 batches, and the scaling runs on the accelerator.

    Files are decoded by content (JPEG, PNG, GIF first frame, WebP, BMP, TIFF), turned upright
    by their EXIF orientation, converted to RGB (one channel with ``channels=1``; RGBA with
    ``channels=4``: the file's alpha, or opaque 255 where it has none) and resized with
    ``fit="stretch"`` (ignore aspect), ``"crop"`` (centre crop to the aspect) or ``"pad"``
    (letterbox with zeros), by ``interpolation`` (Keras's names: "bilinear", "nearest",
    "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic"; each mapped to the
    nearest OpenCV or Pillow filter, see ``decoders.decode_image``). JPEGs decode through
    libjpeg-turbo's DCT scaling,
    so a 3000 px photo to 224 px skips most of the work. Pillow's decompression-bomb guard
    stays on.

    Bad files (missing, empty, truncated, not an image, too large) are skipped and recorded
    in ``stream.errors`` with ``on_error="skip"``, or raise ``BadFileError`` with
    ``on_error="raise"``. ``augment`` (a ``(batch, rng) -> batch`` callable, e.g.
    ``bytefeed_helpers.ImageAugment``) runs on each batch of a training stream.
    See ``BatchEngine`` for ``shuffle``, ``seed``, ``workers``, ``prefetch``, ``shard`` and
    ``resume``; ``with_paths=True`` yields ``(x, y, paths)`` for inspection.
    ``cache`` (a folder) stores the decoded, resized images on disk in the first epoch and
    reads them back in later ones (see ``bytefeed_helpers.cache``).

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
    size = check_image_settings(image_size, channels, fit, dtype, interpolation)
    check_choice("data_format", data_format, DataFormat)
    check_max_file_mb(max_file_mb)
    if size is None:  # a batch needs one shape
        raise ValueError(
            "image_size must be an int or (height, width) for a stream. Received: image_size=None"
        )
    settings: dict[str, Any] = {"image_size": size, "channels": channels, "fit": fit}
    settings.update(dtype=dtype, interpolation=interpolation, data_format=data_format)
    decoder = Decoder(
        functools.partial(
            decode_checked,  # the settings were checked above, once
            image_size=size,
            channels=channels,
            fit=fit,
            dtype=dtype,
            interpolation=interpolation,
            max_bytes=check_max_file_mb(max_file_mb),
        )
    )
    # a postprocess step, so augmentation (which runs before it) still sees [B, H, W, C]
    post = _channels_first if data_format == "channels_first" else None
    return make_stream(
        manifest, decoder, stack, options, kind="image", settings=settings, postprocess=post
    )


def _channels_first(x: np.ndarray) -> np.ndarray:
    """``[B, H, W, C]`` as a C-contiguous ``[B, C, H, W]``."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
