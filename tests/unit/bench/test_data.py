"""Benchmark folders: the sizes asked for, laid out by class, with a manifest, deterministic."""

from __future__ import annotations

import hashlib

import numpy as np
import soundfile as sf
from PIL import Image

from bytefeed_helpers import read_manifest
from bytefeed_helpers.bench.data import make_audio_set, make_image_set


def digest(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


def test_image_set_sizes_classes_and_manifest(tmp_path):
    m = make_image_set(tmp_path / "a", 9, 40, 70, progress=False)
    assert len(m) == 9 and m.class_names == ["cat", "coffee", "rocket"]
    assert list(m.counts().values()) == [3, 3, 3]
    for p in m.paths:
        with Image.open(p) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert 40 <= img.width <= 70 and 40 <= img.height <= 70
    assert read_manifest(tmp_path / "a" / "manifest.csv") == m


def test_image_set_is_deterministic_and_photo_like(tmp_path):
    a = make_image_set(tmp_path / "a", 4, 64, 64, progress=False)
    b = make_image_set(tmp_path / "b", 4, 64, 64, progress=False)
    assert digest(a.paths) == digest(b.paths)
    pixels = np.asarray(Image.open(a.paths[0]))
    assert pixels.std() > 10  # real picture content, not a flat fill


def test_png_set(tmp_path):
    m = make_image_set(tmp_path, 3, 32, 32, fmt="png", progress=False)
    assert all(Image.open(p).format == "PNG" and Image.open(p).size == (32, 32) for p in m.paths)


def test_audio_set(tmp_path):
    m = make_audio_set(tmp_path, 6, 22050, 0.5, progress=False)
    assert len(m) == 6 and m.class_names == ["no", "stop", "yes"]
    for p in m.paths:
        info = sf.info(p)
        assert info.samplerate == 22050 and info.frames == 11025 and info.channels == 1
        assert np.abs(sf.read(p)[0]).max() > 0.01  # a word was placed in the clip
