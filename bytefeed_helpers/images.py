"""``image_batches``: the image front-end of the engine (decoder + collate, nothing else)."""

from __future__ import annotations

import functools
import os
from typing import Any

from .decoders.image import decode_image
from .engine import Decoder, stack
from .options import Fit, ImageDtype, OnError, StreamOptions
from .stream import Stream, make_stream


def image_batches(
    manifest: Any,
    batch_size: int = 32,
    image_size: tuple[int, int] = (224, 224),
    *,
    channels: int = 3,
    fit: Fit = "stretch",
    dtype: ImageDtype = "uint8",
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
    """Stream batches of images decoded from ``manifest`` (a ``Manifest`` or a manifest file).

    Yields ``(x, y)``: ``x`` is ``uint8 [B, H, W, channels]`` (``image_size = (H, W)``), or
    ``float32`` holding the same 0-255 values with ``dtype="float32"``; ``y`` is
    ``int32 [B]`` label ids into ``stream.class_names``. Keep ``uint8`` and put
    ``keras.layers.Rescaling(1/255)`` first in the model: a quarter of the memory and
    bandwidth of float32 batches, and the scaling runs on the accelerator.

    Files are decoded by content (JPEG, PNG, GIF first frame, WebP, BMP, TIFF), turned upright
    by their EXIF orientation, converted to RGB (or one channel with ``channels=1``) and
    resized with ``fit="stretch"`` (ignore aspect), ``"crop"`` (centre crop to the aspect)
    or ``"pad"`` (letterbox with zeros). JPEGs decode through libjpeg-turbo's DCT scaling,
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
    settings = {"image_size": tuple(image_size), "channels": channels, "fit": fit, "dtype": dtype}
    decoder = Decoder(functools.partial(decode_image, **settings))
    return make_stream(manifest, decoder, stack, options, kind="image", settings=settings)
