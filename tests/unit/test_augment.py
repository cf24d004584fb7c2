"""ImageAugment, keras2_augment and AudioAugment: transforms, determinism, threads, streams."""

from __future__ import annotations

import math
import pickle
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from support import DATA

from bytefeed_helpers import (
    AudioAugment,
    ImageAugment,
    audio_batches,
    build_manifest,
    image_batches,
    keras2_augment,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def pictures() -> np.ndarray:
    """uint8 [12, 40, 48, 3]: smooth gradients with a bright off-centre square (not symmetric)."""
    yy, xx = np.mgrid[0:40, 0:48]
    out = []
    for i in range(12):
        img = np.stack([xx * 5, yy * 6, (xx + yy + 20 * i) % 255], -1).astype(np.float32)
        img[6:16, 8:20] = 255
        out.append(img)
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)


# --- ImageAugment -----------------------------------------------------------------------------
def test_keras2_augment_maps_every_old_argument():
    a = keras2_augment()
    assert a.flip == "horizontal" and a.fill_mode == "nearest"
    assert a.rotation == pytest.approx(10 / 360)
    assert a.translation == (0.1, 0.1) and a.zoom == (0.1, 0.1)
    assert a.shear == (0.0, pytest.approx(math.sin(math.radians(0.1))))
    assert a.brightness == a.contrast == 0
    assert keras2_augment(horizontal_flip=False, rotation_range=90).flip is None
    assert keras2_augment(rotation_range=90).rotation == pytest.approx(0.25)


def test_keras2_augment_as_keras_layers():
    layers = keras2_augment().layers(seed=1)
    assert [type(layer).__name__ for layer in layers] == [
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "RandomShear",
    ]
    flip, rot, shift, zoom, shear = layers
    assert flip.mode == "horizontal"
    assert rot.factor == pytest.approx((-10 / 360, 10 / 360))
    assert shift.height_factor == pytest.approx(0.1) and shift.width_factor == pytest.approx(0.1)
    assert zoom.height_factor == pytest.approx(0.1) and zoom.width_factor == pytest.approx(0.1)
    assert shear.x_factor == (0, 0) and shear.y_factor[1] == pytest.approx(0.0017453, rel=1e-3)
    assert all(layer.fill_mode == "nearest" for layer in layers[1:])
    extra = ImageAugment(brightness=0.2, contrast=0.3).layers()
    assert [type(layer).__name__ for layer in extra] == [
        "RandomFlip",
        "RandomBrightness",
        "RandomContrast",
    ]


def test_keras2_augment_visibly_changes_pixels(pictures):
    out = keras2_augment()(pictures, rng(0))
    assert out.dtype == np.uint8 and out.shape == pictures.shape
    diff = np.abs(out.astype(np.int16) - pictures.astype(np.int16)).mean(axis=(1, 2, 3))
    assert (diff > 2).all(), diff  # every image moved, not just a few
    assert out.min() >= 0 and out.max() <= 255


def test_flip_only_mirrors_exactly_half_of_the_time(pictures):
    batch = np.concatenate([pictures] * 4)
    out = ImageAugment(flip="horizontal")(batch, rng(5))
    same = [np.array_equal(o, p) for o, p in zip(out, batch, strict=True)]
    mirrored = [np.array_equal(o, p[:, ::-1]) for o, p in zip(out, batch, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert 8 <= sum(mirrored) <= 40
    vertical = ImageAugment(flip="vertical")(batch, rng(5))
    assert all(
        np.array_equal(o, p) or np.array_equal(o, p[::-1])
        for o, p in zip(vertical, batch, strict=True)
    )


def test_flips_agree_between_numpy_and_affine_paths(pictures):
    fast = ImageAugment(flip="horizontal_and_vertical")(pictures, rng(6))  # NumPy indexing
    resampled = ImageAugment(flip="horizontal_and_vertical", rotation=1e-9)(pictures, rng(6))
    assert np.abs(fast.astype(np.int16) - resampled).max() <= 1
    assert not np.array_equal(fast, pictures)


def test_nothing_on_returns_an_equal_copy(pictures):
    a = ImageAugment(flip=None)
    out = a(pictures, rng(0))
    assert np.array_equal(out, pictures) and out is not pictures
    assert a.matrices(3, 10, 10, rng(0)) is None and a.layers() == []


def test_same_rng_same_result_other_rng_other_result(pictures):
    a = ImageAugment(
        rotation=0.05, translation=0.1, zoom=0.1, shear=0.1, brightness=0.2, contrast=0.3
    )
    first, again = a(pictures, rng(42)), a(pictures, rng(42))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, a(pictures, rng(43)))


def test_float32_in_float32_out_matches_uint8(pictures):
    a = ImageAugment(rotation=0.05, zoom=0.1, brightness=0.1)
    as_float = a(pictures.astype(np.float32), rng(1))
    as_uint8 = a(pictures, rng(1))
    assert as_float.dtype == np.float32 and as_float.shape == pictures.shape
    assert np.abs(as_float - as_uint8.astype(np.float32)).max() <= 0.5 + 1e-3


def test_geometry_keeps_the_centre_and_bounds_the_shift():
    a = ImageAugment(flip=None, rotation=0.1, zoom=0.2, shear=0.1)
    m = a.matrices(64, 31, 41, rng(2))
    centre = np.array([20.0, 15.0, 1.0])
    full = np.concatenate([m, np.ones((64, 1), np.float32)], 1).reshape(64, 3, 3)
    assert np.allclose(full @ centre, centre, atol=1e-3)  # rotate/zoom/shear about the centre
    t = ImageAugment(flip=None, translation=(0.1, 0.25)).matrices(64, 40, 80, rng(3))
    assert np.allclose(t[:, [0, 1, 3, 4]], [1, 0, 0, 1])  # a pure shift
    assert np.abs(t[:, 2]).max() <= 0.25 * 80 and np.abs(t[:, 5]).max() <= 0.1 * 40
    assert np.abs(t[:, 2]).max() > 0.1 * 80  # and it does use the range


def test_translation_moves_content_by_the_drawn_offset(pictures):
    a = ImageAugment(flip=None, translation=0.2, interpolation="nearest", fill_mode="constant")
    offsets = a.matrices(len(pictures), 40, 48, rng(9))[:, [2, 5]]
    out = a(pictures, rng(9))
    checked = 0
    for img, aug, (dx, dy) in zip(pictures, out, offsets, strict=True):
        ox, oy = round(float(dx)), round(float(dy))  # output (x, y) reads input (x+ox, y+oy)
        if max(abs(abs(dx - ox) - 0.5), abs(abs(dy - oy) - 0.5)) < 0.05:
            continue  # too close to a half pixel to know which way nearest rounds
        kept = aug[max(-oy, 0) : 40 - max(oy, 0), max(-ox, 0) : 48 - max(ox, 0)]
        src = img[max(oy, 0) : 40 + min(oy, 0), max(ox, 0) : 48 + min(ox, 0)]
        assert np.array_equal(kept, src)
        checked += 1
    assert checked >= 8


def test_strengths_are_settable_between_calls(pictures):
    a = ImageAugment(flip=None)
    assert np.array_equal(a(pictures, rng(0)), pictures)
    a.rotation = 0.1
    rotated = a(pictures, rng(0))
    assert not np.array_equal(rotated, pictures)
    a.brightness = 0.5
    brighter = a(pictures, rng(0))
    assert not np.array_equal(brighter, rotated)
    a.rotation, a.brightness = 0.0, 0.0
    assert np.array_equal(a(pictures, rng(0)), pictures)


def test_brightness_shifts_and_stays_in_range(pictures):
    out = ImageAugment(flip=None, brightness=0.5)(pictures, rng(4)).astype(np.float32)
    shift = out.mean(axis=(1, 2, 3)) - pictures.astype(np.float32).mean(axis=(1, 2, 3))
    assert np.abs(shift).max() > 5 and out.min() >= 0 and out.max() <= 255


def test_thread_safe_and_order_independent(pictures):
    a = ImageAugment(rotation=0.05, zoom=0.1, contrast=0.2)
    serial = [a(pictures, rng(s)) for s in range(8)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda s: a(pictures, rng(s)), reversed(range(8))))[::-1]
    assert all(np.array_equal(p, q) for p, q in zip(serial, parallel, strict=True))


def test_pickles_and_repr(pictures):
    a = ImageAugment(rotation=0.05, brightness=0.1)
    a(pictures, rng(0))  # builds this thread's layers
    b = pickle.loads(pickle.dumps(a))
    assert np.array_equal(b(pictures, rng(1)), a(pictures, rng(1)))
    assert "rotation=0.05" in repr(a)


def test_bad_input_is_a_clear_error(pictures):
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        ImageAugment()(pictures[0], rng())
    with pytest.raises(ValueError, match="flip"):
        ImageAugment(flip="diagonal")
    with pytest.raises(ValueError, match="fill_mode"):
        ImageAugment(fill_mode="smear")
    with pytest.raises(ValueError, match="translation"):
        ImageAugment(flip=None, translation=(0.1, -0.2))(pictures, rng())


# --- augmentation inside image streams --------------------------------------------------------
@pytest.fixture(scope="module")
def photos():
    return build_manifest(DATA / "images", kind="image", progress=False).subset(range(0, 72, 6))


def _epoch(stream) -> list[np.ndarray]:
    return [x for x, _ in stream]


def test_image_streams_augment_only_when_training(photos):
    kw = {"batch_size": 4, "image_size": (32, 32), "seed": 3, "workers": 2}
    plain = _epoch(image_batches(photos, shuffle=False, **kw))
    evaluation = image_batches(photos, shuffle=False, augment=keras2_augment(), **kw)
    assert not evaluation.augment_enabled
    assert all(np.array_equal(a, b) for a, b in zip(plain, _epoch(evaluation), strict=True))
    training = _epoch(
        image_batches(photos, shuffle=False, training=True, augment=keras2_augment(), **kw)
    )
    assert not any(np.array_equal(a, b) for a, b in zip(plain, training, strict=True))


def test_image_stream_seed_replays_the_augmented_epoch(photos):
    def run(seed):
        kw = {"batch_size": 4, "image_size": (32, 32), "workers": 2, "augment": keras2_augment()}
        return _epoch(image_batches(photos, shuffle=False, training=True, seed=seed, **kw))

    first, again, other = run(1), run(1), run(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_shuffled_stream_epochs_differ_but_replay(photos):
    kw = {"batch_size": 4, "image_size": (32, 32), "seed": 5, "augment": keras2_augment()}
    s, t = image_batches(photos, **kw), image_batches(photos, **kw)
    e0, e1 = _epoch(s), _epoch(s)
    assert all(np.array_equal(a, b) for a, b in zip(e0, _epoch(t), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(e0, e1, strict=True))


# --- AudioAugment -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    """float32 [6, 4000]: tones of different pitch and level, one silent clip."""
    t = np.arange(4000) / 8000
    out = np.stack([0.1 * (i + 1) * np.sin(2 * np.pi * 200 * (i + 1) * t) for i in range(6)])
    out[3] = 0.0
    return out.astype(np.float32)


def test_gain_only_scales_each_clip_within_range(clips):
    out = AudioAugment(gain_db=(-6, 6), shift=0, clip=False)(clips, rng(0))
    assert out.dtype == np.float32 and out.shape == clips.shape
    loud = [0, 1, 2, 4, 5]
    ratio = out[loud].std(axis=1) / clips[loud].std(axis=1)
    assert (ratio >= 10 ** (-6 / 20) - 1e-4).all() and (ratio <= 10 ** (6 / 20) + 1e-4).all()
    assert np.allclose(out[loud], clips[loud] * ratio[:, None], atol=1e-5)
    assert len(np.unique(np.round(ratio, 4))) > 1


def test_shift_rolls_or_fills_with_silence(clips):
    n = clips.shape[1]
    rolled = AudioAugment(gain_db=None, shift=0.25)(clips, rng(1))
    found = []
    for src, out in zip(clips, rolled, strict=True):
        shifts = [k for k in range(-n // 4, n // 4 + 1) if np.array_equal(np.roll(src, k), out)]
        assert shifts, "each clip is a circular shift of its input"
        found.append(shifts[0])
    zero = AudioAugment(gain_db=None, shift=0.25, shift_mode="zero")(clips, rng(1))
    for k, src, out in zip(found, clips, zero, strict=True):
        if k > 0:
            assert not out[:k].any() and np.array_equal(out[k:], src[:-k])
        elif k < 0:
            assert not out[k:].any() and np.array_equal(out[:k], src[-k:])


def test_noise_hits_the_drawn_snr_and_spares_silence(clips):
    out = AudioAugment(gain_db=None, shift=0, noise_snr_db=(10, 10), clip=False)(clips, rng(2))
    loud = [0, 1, 2, 4, 5]
    noise = out[loud] - clips[loud]
    snr = 10 * np.log10((clips[loud] ** 2).mean(1) / (noise**2).mean(1))
    assert np.allclose(snr, 10, atol=0.5)
    assert not out[3].any()


def test_clip_keeps_waveforms_in_range(clips):
    out = AudioAugment(gain_db=(20, 20), shift=0)(clips, rng(0))
    assert out.max() <= 1.0 and out.min() >= -1.0 and np.isclose(np.abs(out).max(), 1.0)


def test_audio_same_rng_same_result(clips):
    a = AudioAugment(noise_snr_db=(5, 20))
    assert np.array_equal(a(clips, rng(7)), a(clips, rng(7)))
    assert not np.array_equal(a(clips, rng(7)), a(clips, rng(8)))


def test_specaugment_masks_bands_with_the_example_mean():
    s = rng(0).normal(size=(5, 50, 20)).astype(np.float32) + np.arange(5)[:, None, None]
    a = AudioAugment(time_masks=2, time_mask_width=6, freq_masks=1, freq_mask_width=4)
    out = a.features(s, rng(3))
    assert out.shape == s.shape and out.dtype == s.dtype
    for i in range(5):
        changed = out[i] != s[i]
        assert np.allclose(out[i][changed], s[i].mean())
        rows = changed.all(axis=1).sum()  # whole masked time frames
        cols = changed.all(axis=0).sum()  # whole masked mel bins
        assert rows <= 12 and cols <= 4
    assert (out != s).any()
    low = AudioAugment(time_masks=1, time_mask_width=10, mask_fill="min").features(s, rng(3))
    assert np.isin(low[low != s], s.min(axis=(1, 2))).all()


def test_features_passes_waveforms_and_unmasked_input_through(clips):
    a = AudioAugment(time_masks=2)
    assert a.features(clips, rng()) is clips
    s = np.ones((2, 10, 8), np.float32)
    assert AudioAugment().features(s, rng()) is s


def test_audio_bad_input_is_a_clear_error(clips):
    with pytest.raises(ValueError, match=r"\[B, N\]"):
        AudioAugment()(clips[0], rng())
    with pytest.raises(ValueError, match="shift_mode"):
        AudioAugment(shift_mode="bounce")


# --- augmentation inside audio streams --------------------------------------------------------
@pytest.fixture(scope="module")
def spoken():
    return build_manifest(DATA / "audio", kind="audio", progress=False).subset(range(0, 48, 4))


def test_audio_streams_augment_waveforms_then_mask_logmels(spoken):
    a = AudioAugment(gain_db=(-3, 3), noise_snr_db=(20, 30), time_masks=2, freq_masks=2)
    kw = {"batch_size": 4, "duration": 0.5, "features": "logmel", "seed": 1, "shuffle": False}
    plain = [x for x, _ in audio_batches(spoken, **kw)]
    evaluation = [x for x, _ in audio_batches(spoken, augment=a, **kw)]
    assert all(np.array_equal(p, q) for p, q in zip(plain, evaluation, strict=True))
    train = [x for x, _ in audio_batches(spoken, augment=a, training=True, crop="start", **kw)]
    again = [x for x, _ in audio_batches(spoken, augment=a, training=True, crop="start", **kw)]
    assert all(np.array_equal(p, q) for p, q in zip(train, again, strict=True))
    assert not any(np.array_equal(p, q) for p, q in zip(plain, train, strict=True))
    # SpecAugment: the same augmenter without masks differs only in whole frames / mel bins
    b = AudioAugment(gain_db=(-3, 3), noise_snr_db=(20, 30))
    kw.update(augment=b, training=True, crop="start")
    unmasked = [x for x, _ in audio_batches(spoken, **kw)]
    for masked, bare in zip(train, unmasked, strict=True):
        changed = masked != bare
        bands = changed.all(axis=2)[:, :, None] | changed.all(axis=1)[:, None, :]
        assert changed.any() and np.array_equal(changed, bands & changed)
        assert (changed == bands).mean() > 0.99  # a masked band may by chance hold the mean
