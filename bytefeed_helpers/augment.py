"""Batch augmentation for training streams: images (Keras 3 ops) and audio (NumPy).

An augmenter is a callable ``(batch, rng) -> batch`` that the engine runs in its worker
threads on each collated batch of a *training* stream (evaluation streams are never
augmented). Every random choice comes from the ``rng`` the engine derives from
``(seed, epoch, batch)``, so the same seed replays the same augmented epoch, and
resuming mid-epoch replays the same augmented batches.

``ImageAugment`` replaces Keras 2's ``ImageDataGenerator``: it draws the same kinds of random
transforms as ``keras.layers.RandomFlip``/``RandomRotation``/``RandomTranslation``/
``RandomZoom``/``RandomShear`` but composes them into one affine matrix per image and
resamples each batch once with ``keras.ops.image.affine_transform`` (as the old generator
did), instead of once per layer: several times cheaper on a CPU and one interpolation
blur instead of four (flips alone need no resampling: NumPy indexing). Brightness and
contrast run through ``keras.layers.RandomBrightness`` and ``RandomContrast`` themselves.
``ImageAugment.layers()`` gives the equivalent Keras layers for putting augmentation inside a
model instead (it then runs on the accelerator).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

FLIPS = (None, "horizontal", "vertical", "horizontal_and_vertical")
FILL_MODES = ("nearest", "reflect", "wrap", "constant")
SHIFT_MODES = ("roll", "zero")
MASK_FILLS = ("mean", "min")

Pair = float | tuple[float, float]


def _pair(value: Pair, name: str) -> tuple[float, float]:
    """``v`` -> ``(v, v)``; a pair stays a pair; both must be >= 0."""
    # a pair (or any iterable) is taken as given; a number, Python or NumPy, is doubled
    pair = tuple(value) if isinstance(value, Iterable) else (value, value)
    if len(pair) != 2 or min(pair) < 0:
        raise ValueError(f"{name} must be a number >= 0 or a pair of them, not {value!r}")
    return float(pair[0]), float(pair[1])


class ImageAugment:
    """Random flips, rotations, shifts, zooms, shears, brightness and contrast per batch.

    Call it as ``augment(x, rng)`` with ``x`` a batch ``uint8`` or ``float32``
    ``[B, H, W, C]`` (values in ``value_range``, 0-255 by default) and ``rng`` a
    ``np.random.Generator``; returns a new batch of the same dtype and shape (uint8 results
    are rounded and clipped). Each image gets its own random transform. Runs on the CPU,
    NumPy in and NumPy out, and is safe to call from several threads at once.

    Strengths follow the Keras 3 layers' ``factor`` conventions and may be changed at any
    time (the explorer's sliders do); zero switches a transform off:

    - ``flip``: ``"horizontal"``, ``"vertical"``, ``"horizontal_and_vertical"`` or None;
      each direction flips half of the images (``RandomFlip``).
    - ``rotation``: fraction of a full turn; angles uniform in ``±rotation * 360°``
      (``RandomRotation(factor)``).
    - ``translation``: fraction of the height and width (a number, or a ``(height, width)``
      pair); shifts uniform in ``±fraction * size`` (``RandomTranslation``).
    - ``zoom``: a number ``z`` scales both axes by one factor uniform in ``[1 - z, 1 + z]``
      (aspect kept, ``RandomZoom(z)``); a ``(height, width)`` pair draws each axis on its
      own (``RandomZoom(h, w)``, Keras 2's behaviour). Above 1 zooms out.
    - ``shear``: a number or an ``(x, y)`` pair; shear factors uniform in ``±value``
      (``RandomShear``; 0.1 moves the far edge by 10% of the image), about the centre.
    - ``brightness``: ``RandomBrightness(factor)``: add up to ``±factor`` of the value range.
    - ``contrast``: ``RandomContrast(factor)``: scale contrast by ``[1 - f, 1 + f]``.
    - ``fill_mode``: ``"nearest"``, ``"reflect"``, ``"wrap"`` or ``"constant"`` (with
      ``fill_value``) for pixels shifted in from outside; ``interpolation``: ``"bilinear"``
      or ``"nearest"``.

    Bad input (not 4-D, an unknown option) raises ``ValueError``.
    """

    def __init__(
        self,
        flip: str | None = "horizontal",
        rotation: float = 0.0,
        translation: Pair = 0.0,
        zoom: Pair = 0.0,
        shear: Pair = 0.0,
        brightness: float = 0.0,
        contrast: float = 0.0,
        fill_mode: str = "nearest",
        *,
        fill_value: float = 0.0,
        interpolation: str = "bilinear",
        value_range: tuple[float, float] = (0.0, 255.0),
    ):
        if flip not in FLIPS:
            raise ValueError(f"flip must be one of {FLIPS}, not {flip!r}")
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, not {fill_mode!r}")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"interpolation must be 'bilinear' or 'nearest', not {interpolation!r}"
            )
        self.flip = flip
        self.rotation = float(rotation)
        self.translation = translation
        self.zoom = zoom
        self.shear = shear
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.fill_mode = fill_mode
        self.fill_value = float(fill_value)
        self.interpolation = interpolation
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self._local = threading.local()  # per-thread Keras layers (they hold backend state)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"ImageAugment({args})"

    def params(self) -> dict[str, Any]:
        """The current settings, as keyword arguments of ``ImageAugment``."""
        return {
            "flip": self.flip,
            "rotation": self.rotation,
            "translation": self.translation,
            "zoom": self.zoom,
            "shear": self.shear,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "fill_mode": self.fill_mode,
        }

    # --- the pipeline -----------------------------------------------------------------------
    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment a batch ``[B, H, W, C]``; returns a new array of the same dtype and shape."""
        import keras

        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"ImageAugment expects a batch [B, H, W, C], not shape {x.shape}")
        b, h, w, _ = x.shape
        matrices = self.matrices(b, h, w, rng)
        seeds = rng.integers(0, 2**31 - 1, size=2).tolist()  # drawn always: a fixed stream
        brightness, contrast = self._photometric_layers()
        if matrices is not None and not self._moves():  # flips alone: exact and cheap in NumPy
            x, matrices = _flip(x, matrices[:, 0] < 0, matrices[:, 4] < 0), None
        if b == 0 or (matrices is None and brightness is None and contrast is None):
            return x.copy()
        ops = keras.ops
        with keras.device("cpu"):
            t = ops.convert_to_tensor(x, dtype="float32")
            if matrices is not None:
                t = ops.image.affine_transform(
                    t,
                    ops.convert_to_tensor(matrices),
                    interpolation=self.interpolation,
                    fill_mode=self.fill_mode,
                    fill_value=self.fill_value,
                )
            for layer, seed in ((brightness, seeds[0]), (contrast, seeds[1])):
                if layer is not None:
                    change = layer.get_random_transformation(t, training=True, seed=seed)
                    t = layer.transform_images(t, change, training=True)
            out = ops.convert_to_numpy(t)
        if x.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out.astype(x.dtype, copy=False)

    def _geometry(self) -> tuple[tuple[float, float], ...]:
        """``(ty, tx), (zy, zx), (sx, sy)``: translation, zoom and shear as pairs."""
        return (
            _pair(self.translation, "translation"),
            _pair(self.zoom, "zoom"),
            _pair(self.shear, "shear"),
        )

    def _moves(self) -> bool:
        """Whether any transform other than a flip is on (they need resampling)."""
        return bool(self.rotation) or any(v for pair in self._geometry() for v in pair)

    def matrices(self, b: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray | None:
        """Per-image affine maps ``float32 [B, 8]`` in ``keras.ops.image.affine_transform``'s
        form (output pixel -> input pixel), or None when no geometric transform is on.

        Always draws the same number of values from ``rng`` whatever the strengths, so
        moving a slider changes how far each image moves, not which images move.
        """
        u = rng.uniform(-1.0, 1.0, size=(7, b))
        flip_draws = rng.random((2, b)) < 0.5
        (ty, tx), (zy, zx), (sx, sy) = self._geometry()
        same_zoom = np.isscalar(self.zoom)  # one factor for both axes keeps the aspect ratio
        flip_x = self.flip in ("horizontal", "horizontal_and_vertical")
        flip_y = self.flip in ("vertical", "horizontal_and_vertical")
        if not (flip_x or flip_y or self._moves()):
            return None
        one, zero = np.ones(b), np.zeros(b)

        def m(*rows: Sequence[Any]) -> np.ndarray:  # [B, 3, 3] from rows of per-image values
            return np.stack([np.stack(np.broadcast_arrays(*r), -1) for r in rows], -2)

        angle = u[0] * self.rotation * 2 * math.pi
        cos, sin = np.cos(angle), np.sin(angle)
        zoom_y = 1 + u[3] * zy
        zoom_x = zoom_y if same_zoom else 1 + u[4] * zx
        fx = np.where(flip_x & flip_draws[0], -1.0, 1.0)
        fy = np.where(flip_y & flip_draws[1], -1.0, 1.0)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        steps = [
            m((one, zero, cx), (zero, one, cy), (zero, zero, one)),  # back from the centre
            m((fx, zero, zero), (zero, fy, zero), (zero, zero, one)),  # flip
            m((cos, -sin, zero), (sin, cos, zero), (zero, zero, one)),  # rotate
            m((one, u[5] * sx, zero), (u[6] * sy, one, zero), (zero, zero, one)),  # shear
            m((zoom_x, zero, zero), (zero, zoom_y, zero), (zero, zero, one)),  # zoom
            m((one, zero, -u[2] * tx * w), (zero, one, -u[1] * ty * h), (zero, zero, one)),
            m((one, zero, -cx), (zero, one, -cy), (zero, zero, one)),  # to the centre
        ]
        total = steps[0]
        for step in steps[1:]:
            total = total @ step
        return np.concatenate([total[:, 0, :], total[:, 1, :], total[:, 2, :2]], 1).astype(
            np.float32
        )

    def _photometric_layers(self) -> tuple[Any, Any]:
        """This thread's ``RandomBrightness``/``RandomContrast`` for the current strengths."""
        key = (self.brightness, self.contrast, self.value_range)
        cached = getattr(self._local, "layers", None)
        if cached is None or cached[0] != key:
            from keras import layers

            vr = self.value_range
            bright = layers.RandomBrightness(self.brightness, value_range=vr) if key[0] else None
            contrast = layers.RandomContrast(self.contrast, value_range=vr) if key[1] else None
            cached = self._local.layers = (key, (bright, contrast))
        return cached[1]

    # --- the same augmentation as Keras layers ----------------------------------------------
    def layers(self, seed: int | None = None) -> list[Any]:
        """The equivalent ``keras.layers`` (switched-off transforms left out), for running
        augmentation inside a model on the accelerator instead of in the input stream."""
        from keras import layers

        (ty, tx), (zy, zx), (sx, sy) = self._geometry()
        fill = {"fill_mode": self.fill_mode, "fill_value": self.fill_value}
        fill["interpolation"] = self.interpolation
        out: list[Any] = []
        if self.flip:
            out.append(layers.RandomFlip(self.flip, seed=seed))
        if self.rotation:
            out.append(layers.RandomRotation(self.rotation, seed=seed, **fill))
        if tx or ty:
            out.append(layers.RandomTranslation(ty, tx, seed=seed, **fill))
        if zx or zy:
            width = None if np.isscalar(self.zoom) else zx
            out.append(layers.RandomZoom(zy, width, seed=seed, **fill))
        if sx or sy:
            out.append(layers.RandomShear(sx, sy, seed=seed, **fill))
        if self.brightness:
            out.append(layers.RandomBrightness(self.brightness, self.value_range, seed=seed))
        if self.contrast:
            out.append(layers.RandomContrast(self.contrast, self.value_range, seed=seed))
        return out

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_local")  # thread-local layers are rebuilt where it is unpickled
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()


def _flip(x: np.ndarray, flip_x: np.ndarray, flip_y: np.ndarray) -> np.ndarray:
    """Mirror images ``[B, H, W, C]`` left-right where ``flip_x``, upside down where ``flip_y``."""
    if flip_x.any():
        x = np.where(flip_x[:, None, None, None], x[:, :, ::-1], x)
    if flip_y.any():
        x = np.where(flip_y[:, None, None, None], x[:, ::-1], x)
    return x


def keras2_augment(
    rotation_range: float = 10,
    width_shift_range: float = 0.1,
    height_shift_range: float = 0.1,
    shear_range: float = 0.1,
    zoom_range: float = 0.1,
    horizontal_flip: bool = True,
    fill_mode: str = "nearest",
) -> ImageAugment:
    """The article's ``ImageDataGenerator(...)`` augmentation, rebuilt for Keras 3.

    Defaults are the article's ``ImageDataGenerator(rotation_range=10,
    width_shift_range=0.1, height_shift_range=0.1, shear_range=0.1, zoom_range=0.1,
    horizontal_flip=True, fill_mode="nearest")``. Each old argument maps to:

    - ``rotation_range`` (degrees) -> ``rotation = degrees / 360``
      (``keras.layers.RandomRotation(factor=10/360)``: a fraction of a full turn).
    - ``width_shift_range``, ``height_shift_range`` (fractions of the size) ->
      ``translation = (height, width)`` (``RandomTranslation(height_factor, width_factor)``).
    - ``shear_range`` -> ``shear``. Keras 2 read it as an *angle in degrees*, so the
      article's 0.1 shears by 0.1° (a factor of ``sin(0.1°) ≈ 0.0017``, invisible); kept
      as such for a faithful baseline (``RandomShear(x_factor=0, y_factor=0.0017)``,
      rows moved along columns as Keras 2 did). Write ``ImageAugment(shear=0.1)`` to shear
      by 10% of the image, which is what the article probably meant.
    - ``zoom_range=z`` -> ``zoom = (z, z)``: each axis scaled on its own by
      ``[1 - z, 1 + z]`` (``RandomZoom(height_factor=z, width_factor=z)``).
    - ``horizontal_flip=True`` -> ``flip = "horizontal"`` (``RandomFlip("horizontal")``).
    - ``fill_mode`` -> ``fill_mode`` (same names: nearest, reflect, wrap, constant).
    """
    return ImageAugment(
        flip="horizontal" if horizontal_flip else None,
        rotation=rotation_range / 360.0,
        translation=(height_shift_range, width_shift_range),
        zoom=(zoom_range, zoom_range),
        shear=(0.0, math.sin(math.radians(shear_range))),
        fill_mode=fill_mode,
    )


class AudioAugment:
    """Random gain, time shift and noise on waveforms; SpecAugment masks on log-mels.

    ``augment(x, rng)`` takes waveforms ``float32 [B, N]`` and returns a new ``float32
    [B, N]`` batch, each clip with its own draws:

    - ``gain_db``: ``(low, high)`` dB, uniform (None: off).
    - ``shift``: fraction of the clip; shifts uniform in ``±shift * N`` samples, wrapping
      round (``shift_mode="roll"``) or filling with silence (``"zero"``).
    - ``noise_snr_db``: ``(low, high)``: white noise at a signal-to-noise ratio uniform in
      that range, relative to each clip's own power (silent clips stay silent); None: off.
    - ``clip``: clip the result to [-1, 1], the range the audio stream promises.

    ``augment.features(S, rng)`` takes log-mels ``[B, frames, n_mels]`` and masks
    ``time_masks`` bands of up to ``time_mask_width`` frames and ``freq_masks`` bands of up
    to ``freq_mask_width`` mel bins (widths uniform from 0), filling them with each example's
    ``"mean"`` or ``"min"``. Anything that is not 3-D (a waveform stream) passes unchanged.
    The engine calls ``augment`` before the log-mel step and ``features`` after it.
    """

    def __init__(
        self,
        gain_db: tuple[float, float] | None = (-6.0, 6.0),
        shift: float = 0.1,
        noise_snr_db: tuple[float, float] | None = None,
        *,
        shift_mode: str = "roll",
        time_masks: int = 0,
        time_mask_width: int = 10,
        freq_masks: int = 0,
        freq_mask_width: int = 8,
        mask_fill: str = "mean",
        clip: bool = True,
    ):
        if shift_mode not in SHIFT_MODES:
            raise ValueError(f"shift_mode must be one of {SHIFT_MODES}, not {shift_mode!r}")
        if mask_fill not in MASK_FILLS:
            raise ValueError(f"mask_fill must be one of {MASK_FILLS}, not {mask_fill!r}")
        self.gain_db = None if gain_db is None else (float(gain_db[0]), float(gain_db[1]))
        self.shift = float(shift)
        self.noise_snr_db = (
            None if noise_snr_db is None else (float(noise_snr_db[0]), float(noise_snr_db[1]))
        )
        self.shift_mode = shift_mode
        self.time_masks = int(time_masks)
        self.time_mask_width = int(time_mask_width)
        self.freq_masks = int(freq_masks)
        self.freq_mask_width = int(freq_mask_width)
        self.mask_fill = mask_fill
        self.clip = bool(clip)

    def __repr__(self) -> str:
        keys = ("gain_db", "shift", "noise_snr_db", "time_masks", "freq_masks")
        return f"AudioAugment({', '.join(f'{k}={getattr(self, k)!r}' for k in keys)})"

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Gain, shift, then noise, on waveforms ``[B, N]``; returns ``float32 [B, N]``."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"AudioAugment expects waveforms [B, N], not shape {x.shape}")
        b, n = x.shape
        u = rng.random((3, b))  # fixed draws whatever is switched on
        if self.gain_db is not None:
            low, high = self.gain_db
            x = x * (10.0 ** ((low + u[0] * (high - low)) / 20.0)).astype(np.float32)[:, None]
        if self.shift and n:
            x = self._shift(x, np.rint((2 * u[1] - 1) * self.shift * n).astype(np.int64))
        if self.noise_snr_db is not None:
            low, high = self.noise_snr_db
            snr = low + u[2] * (high - low)
            power = np.mean(np.square(x, dtype=np.float64), axis=1)
            sigma = np.sqrt(power / 10.0 ** (snr / 10.0)).astype(np.float32)
            x = x + sigma[:, None] * rng.standard_normal((b, n), dtype=np.float32)
        if self.clip:
            x = np.clip(x, -1.0, 1.0)
        return np.ascontiguousarray(x, dtype=np.float32)

    def _shift(self, x: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """Move clip ``i`` later by ``shifts[i]`` samples (earlier when negative)."""
        n = x.shape[1]
        source = np.arange(n)[None, :] - shifts[:, None]
        if self.shift_mode == "roll":
            return np.take_along_axis(x, source % n, axis=1)
        inside = (source >= 0) & (source < n)
        return np.where(inside, np.take_along_axis(x, np.clip(source, 0, n - 1), axis=1), 0.0)

    def features(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """SpecAugment time and frequency masks on ``[B, frames, n_mels]``; a new array.

        Input that is not 3-D, or no masks configured, is returned unchanged.
        """
        s = np.asarray(s)
        if s.ndim != 3 or not (self.time_masks or self.freq_masks) or s.size == 0:
            return s
        b, frames, mels = s.shape
        masked = _bands(rng, b, frames, self.time_masks, self.time_mask_width)[:, :, None]
        masked = masked | _bands(rng, b, mels, self.freq_masks, self.freq_mask_width)[:, None, :]
        fill = s.mean(axis=(1, 2)) if self.mask_fill == "mean" else s.min(axis=(1, 2))
        return np.where(masked, fill[:, None, None].astype(s.dtype), s)


def _bands(rng: np.random.Generator, b: int, size: int, count: int, width: int) -> np.ndarray:
    """``bool [B, size]``: the union of ``count`` random bands of width ``0..width`` per row."""
    if count <= 0 or width <= 0:
        return np.zeros((b, size), dtype=bool)
    widths = rng.integers(0, min(width, size) + 1, size=(b, count))
    starts = rng.integers(0, size - widths + 1)
    pos = np.arange(size)
    inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])
    # [B, count, size] -> [B, size]; np.any, as the method's stub also allows a NumPy scalar
    return np.any(inside, axis=1)


def time_augment(
    augment: Callable[[np.ndarray, np.random.Generator], Any],
    x: np.ndarray,
    *,
    repeats: int = 5,
    seed: int = 0,
) -> float:
    """Median wall-clock milliseconds of one ``augment(x, rng)`` call on the batch ``x``.

    One warm-up call first (it builds layers and kernels); then ``repeats`` timed calls,
    each with a fresh ``rng``. Depends on the machine and its load: for reports, not tests.
    """
    import time

    augment(x, np.random.default_rng(seed))
    times = []
    for i in range(max(1, int(repeats))):
        rng = np.random.default_rng(seed + 1 + i)
        start = time.perf_counter()
        augment(x, rng)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)
