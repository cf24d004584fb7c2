"""Benchmark folders made from the sample photos and clips: any count, any size, deterministic.

Benchmarks need thousands of files of a given size; the repository ships a few dozen. These
functions re-encode crops and rescales of ``data_sample/`` into a fresh folder laid out by
class (``out/<class>/<file>``) with a ``manifest.csv`` beside it, so every pipeline (and
``keras.utils.*_dataset_from_directory``) reads the very same files.

Images are mosaics of real-photo crops taken near their native scale, so a 2,500 px
"camera" JPEG carries photo-like detail (and decodes as slowly as a real one), not a smooth
upscale. Audio clips are the sample words resampled to the wanted rate, shifted and scaled.
Nothing is downloaded; the same arguments always give the same bytes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..folders import build_manifest
from ..manifest import Manifest

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "data_sample"
_FORMATS = {"jpeg": ("JPEG", ".jpg"), "png": ("PNG", ".png"), "webp": ("WEBP", ".webp")}


def _photos(root: Path) -> dict[str, list[np.ndarray]]:
    """RGB arrays of every readable image under ``root/<class>/``, by class."""
    from ..decoders.image import decode_image

    out: dict[str, list[np.ndarray]] = {}
    for cls in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        arrays = []
        for f in sorted(cls.iterdir()):
            try:
                arrays.append(decode_image(f, None))
            except Exception:  # a broken sample file is simply not a source
                continue
        if arrays:
            out[cls.name] = arrays
    if not out:
        raise FileNotFoundError(f"no readable photos in class folders under {root}")
    return out


def _crop(rng: np.random.Generator, photo: np.ndarray, w: int, h: int) -> Image.Image:
    """A ``w`` x ``h`` tile cut from ``photo`` at 0.8-1.25x its native scale, maybe mirrored."""
    ph, pw = photo.shape[:2]
    scale = max(rng.uniform(0.8, 1.25), w / pw, h / ph)  # never smaller than the tile
    img = Image.fromarray(photo)
    if abs(scale - 1) > 1e-3:
        img = img.resize(
            (max(w, round(pw * scale)), max(h, round(ph * scale))), Image.Resampling.BILINEAR
        )
    x = int(rng.integers(0, img.width - w + 1))
    y = int(rng.integers(0, img.height - h + 1))
    img = img.crop((x, y, x + w, y + h))
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


def _mosaic(rng: np.random.Generator, photos: list[np.ndarray], w: int, h: int) -> Image.Image:
    """A ``w`` x ``h`` picture tiled from crops of ``photos``, each about native size."""
    side = int(np.median([min(p.shape[:2]) for p in photos]))
    cols, rows = max(1, round(w / side)), max(1, round(h / side))
    canvas = Image.new("RGB", (w, h))
    xs = np.linspace(0, w, cols + 1).round().astype(int)
    ys = np.linspace(0, h, rows + 1).round().astype(int)
    for i in range(rows):
        for j in range(cols):
            tile = photos[int(rng.integers(len(photos)))]
            canvas.paste(_crop(rng, tile, xs[j + 1] - xs[j], ys[i + 1] - ys[i]), (xs[j], ys[i]))
    return canvas


def make_image_set(
    out: str | os.PathLike,
    n: int,
    min_side: int = 320,
    max_side: int = 640,
    *,
    fmt: str = "jpeg",
    quality: int = 90,
    seed: int = 0,
    source: str | os.PathLike | None = None,
    progress: bool = True,
) -> Manifest:
    """Write ``n`` images of ``min_side``-``max_side`` px per side into ``out/<class>/``.

    Each image is a mosaic of photo crops from ``source`` (default ``data_sample/images``),
    classes cycled in turn; width and height are drawn independently, so aspects vary.
    ``fmt`` is "jpeg" (4:2:0, ``quality``), "png" or "webp". Writes ``out/manifest.csv`` and
    returns the manifest (rows ordered by class, then name). Existing files are overwritten.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"fmt must be one of {tuple(_FORMATS)}, not {fmt!r}")
    if not 0 < min_side <= max_side:
        raise ValueError(f"need 0 < min_side <= max_side, not {min_side}, {max_side}")
    photos = _photos(Path(source) if source else SAMPLE_DATA / "images")
    names = sorted(photos)
    pil_format, ext = _FORMATS[fmt]
    root = Path(out)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        rng = np.random.default_rng([seed, i])
        cls = names[i % len(names)]
        w, h = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
        img = _mosaic(rng, photos[cls], w, h)
        path = root / cls / f"{cls}_{i:06d}{ext}"
        opts = {"quality": quality} if fmt in ("jpeg", "webp") else {"compress_level": 6}
        img.save(path, pil_format, **opts)

    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        done = pool.map(write, range(n))
        for _ in tqdm(
            done, total=n, desc=f"images {min_side}-{max_side}px", disable=not progress, delay=2
        ):
            pass
    return _manifest(root, "image")


def make_audio_set(
    out: str | os.PathLike,
    n: int,
    sample_rate: int = 44100,
    duration: float = 1.0,
    *,
    seed: int = 0,
    source: str | os.PathLike | None = None,
    progress: bool = True,
) -> Manifest:
    """Write ``n`` mono 16-bit WAV clips of ``duration`` s at ``sample_rate`` into ``out/<class>/``.

    Each clip is a sample word from ``source`` (default ``data_sample/audio``) resampled to
    ``sample_rate``, placed at a random offset in the clip and scaled by a random gain.
    Writes ``out/manifest.csv`` and returns the manifest.
    """
    import soundfile as sf

    from ..decoders.audio import decode_audio

    src = Path(source) if source else SAMPLE_DATA / "audio"
    clips: dict[str, list[np.ndarray]] = {}
    for cls in sorted(p for p in src.iterdir() if p.is_dir()):
        for f in sorted(cls.iterdir()):
            try:
                clips.setdefault(cls.name, []).append(decode_audio(f, sample_rate, None))
            except Exception:  # broken sample files are not sources
                continue
    if not clips:
        raise FileNotFoundError(f"no readable clips in class folders under {src}")
    names = sorted(clips)
    length = round(sample_rate * duration)
    root = Path(out)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(n), desc="audio clips", disable=not progress, delay=2):
        rng = np.random.default_rng([seed, i])
        cls = names[i % len(names)]
        word = clips[cls][int(rng.integers(len(clips[cls])))][:length]
        clip = np.zeros(length, np.float32)
        at = int(rng.integers(0, length - len(word) + 1))
        clip[at : at + len(word)] = word * rng.uniform(0.5, 1.0)
        sf.write(root / cls / f"{cls}_{i:06d}.wav", clip, sample_rate, subtype="PCM_16")
    return _manifest(root, "audio")


def _manifest(root: Path, kind: str) -> Manifest:
    manifest = build_manifest(root, kind=kind, progress=False)
    manifest.write(root / "manifest.csv")
    return manifest
