"""The article's three generators, kept as the baseline the kit is measured against.

The article this kit grew from sketches one Python generator per kind of file. As written
they no longer run on Keras 3, so this module keeps them *as close to the sketch as will run*
and no closer. What had to change, and nothing else:

- labels are yielded (``(x, y)``), otherwise nothing can be trained or compared;
- images are converted to RGB, otherwise one grayscale or RGBA file breaks ``np.array``;
- token lists are padded, since lists of different lengths cannot be stacked;
- ``ImageDataGenerator`` is gone from Keras 3 (and its iterator lost ``.next()``): its
  augmentation is dropped here (``bytefeed_helpers.augment`` has the replacement).

What is kept on purpose, because it is what the kit fixes: the manifest is re-read every
epoch, everything decodes on one core, a JPEG is fully decoded then resized, audio goes
through ``librosa.load``, and the first bad file raises out of the loop and ends training.
These generators loop forever, like the article's; ``steps_per_epoch`` bounds them.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import reason_of


def _read_rows(manifest_csv: str | os.PathLike) -> tuple[list[str], list[int]]:
    # the article re-reads its CSV at the start of every epoch
    base = Path(manifest_csv).resolve().parent
    with open(manifest_csv, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    names = sorted({r["label"] for r in rows})
    paths = [str(base / r["path"]) for r in rows]
    return paths, [names.index(r["label"]) for r in rows]


def article_image_generator(
    manifest_csv: str | os.PathLike, batch_size: int = 32, image_size: tuple[int, int] = (224, 224)
) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
    """Forever: ``(uint8 [B, H, W, 3], int32 [B])`` batches, one core, full decode then resize."""
    while True:
        paths, labels = _read_rows(manifest_csv)
        for i in range(0, len(paths), batch_size):
            images = [
                np.array(Image.open(p).convert("RGB").resize(image_size[::-1]))
                for p in paths[i : i + batch_size]
            ]
            yield np.array(images), np.array(labels[i : i + batch_size], dtype=np.int32)


def article_audio_generator(
    manifest_csv: str | os.PathLike,
    batch_size: int = 32,
    sample_rate: int = 16000,
    duration: float = 1.0,
) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
    """Forever: ``(float32 [B, N], int32 [B])`` batches through ``librosa.load``, one core."""
    import librosa

    n = int(sample_rate * duration)
    while True:
        paths, labels = _read_rows(manifest_csv)
        for i in range(0, len(paths), batch_size):
            clips = [
                _librosa_load(librosa, p, sample_rate, duration) for p in paths[i : i + batch_size]
            ]
            clips = [np.pad(c, (0, max(0, n - len(c))))[:n] for c in clips]
            yield np.array(clips), np.array(labels[i : i + batch_size], dtype=np.int32)


def _librosa_load(librosa: Any, path: str, sample_rate: int, duration: float) -> np.ndarray:
    """``librosa.load(path, sr=sample_rate, duration=duration)[0]``, as the article calls it,
    with its failure told truthfully.

    When soundfile cannot read a file, librosa warns ("PySoundFile failed. Trying audioread
    instead", then a FutureWarning about its own deprecated fallback) and raises whatever
    audioread raises, often a bare ``EOFError``. The generator still stops at the first bad
    file (that is the article's behaviour the kit is measured against); the error it raises
    names the file and soundfile's reason, and librosa's two warnings about its internals are
    not shown.
    """
    import soundfile

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PySoundFile failed", UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module="librosa")
        try:
            return librosa.load(path, sr=sample_rate, duration=duration)[0]
        except Exception as exc:
            try:
                soundfile.info(path)
                why = reason_of(exc)
            except Exception as sf_exc:  # soundfile's reason is the one that means something
                said = getattr(sf_exc, "error_string", "") or reason_of(sf_exc)  # no path
                why = f"soundfile: {said.strip()} (audioread then raised {reason_of(exc)})"
            raise RuntimeError(f"librosa.load({Path(path).name!r}) failed: {why}") from exc


def article_text_generator(
    manifest_csv: str | os.PathLike,
    tokenizer: Callable[[str], list[int]],
    batch_size: int = 32,
) -> Generator[tuple[np.ndarray, np.ndarray], None, None]:
    """Forever: ``(int32 [B, T], int32 [B])`` batches, padded to the batch's longest."""
    while True:
        paths, labels = _read_rows(manifest_csv)
        for i in range(0, len(paths), batch_size):
            docs = [Path(p).read_text(encoding="utf-8") for p in paths[i : i + batch_size]]
            tokens = [list(tokenizer(d)) for d in docs]
            width = max(1, *(len(t) for t in tokens))
            x = np.array([t + [0] * (width - len(t)) for t in tokens], dtype=np.int32)
            yield x, np.array(labels[i : i + batch_size], dtype=np.int32)
