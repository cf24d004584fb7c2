"""The compiled resize gives Pillow's results (to within 1) for its filters, boxes and sizes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bytefeed_helpers import resize as fast

pytestmark = pytest.mark.skipif(not fast.available(), reason="numba unavailable")

PILLOW = {
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
}
SHAPES = [
    (480, 520, 224, 224),  # a photo to a model input
    (100, 300, 37, 53),  # odd sizes, both axes shrink differently
    (20, 30, 224, 224),  # upscaling
    (7, 5, 3, 9),  # tiny, mixed
    (64, 64, 64, 64),  # same size: still Pillow's (identity) output
]


def pillow(a: np.ndarray, size: tuple[int, int], flt: str, box=None) -> np.ndarray:
    img = Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)
    out = np.asarray(img.resize(size[::-1], PILLOW[flt], box=box))
    return out.reshape(*size, a.shape[2])


@pytest.mark.parametrize("flt", fast.FILTERS)
@pytest.mark.parametrize("h, w, oh, ow", SHAPES)
@pytest.mark.parametrize("channels", [1, 3])
def test_matches_pillow(flt, h, w, oh, ow, channels):
    a = np.random.default_rng(h * w + channels).integers(0, 256, (h, w, channels), np.uint8)
    got = fast.resize(a, (oh, ow), flt)
    assert got.shape == (oh, ow, channels) and got.dtype == np.uint8 and got.flags.c_contiguous
    assert np.abs(got.astype(int) - pillow(a, (oh, ow), flt)).max() <= 1


@pytest.mark.parametrize("flt", fast.FILTERS)
def test_box_region_matches_pillow(flt):
    a = np.random.default_rng(0).integers(0, 256, (90, 120, 3), np.uint8)
    box = (10.5, 3.25, 101.0, 80.75)
    got = fast.resize(a, (40, 60), flt, box=box)
    assert np.abs(got.astype(int) - pillow(a, (40, 60), flt, box)).max() <= 1


def test_smooth_photo_is_exact_most_of_the_time():
    y, x = np.mgrid[0:300, 0:400]
    a = np.stack([x * 255 // 400, y * 255 // 300, (x + y) * 255 // 700], -1).astype(np.uint8)
    diff = fast.resize(a, (224, 224)).astype(int) - pillow(a, (224, 224), "bilinear")
    assert np.abs(diff).max() <= 1 and (diff == 0).mean() > 0.9


def test_rejects_other_dtypes_and_shapes():
    with pytest.raises(ValueError, match="uint8"):
        fast.resize(np.zeros((4, 4, 3), np.float32), (2, 2))
    with pytest.raises(ValueError, match="uint8"):
        fast.resize(np.zeros((4, 4), np.uint8), (2, 2))


def test_coefficients_are_normalised_fixed_point():
    start, count, weights = fast.coefficients(400, 224, "bilinear")
    assert start.shape == count.shape == (224,) and weights.shape[0] == 224
    sums = weights.sum(axis=1)
    assert np.all(np.abs(sums - (1 << fast.PRECISION_BITS)) <= weights.shape[1])
    assert np.all(start >= 0) and np.all(start + count <= 400)
