"""decode_image's fast routes (OpenCV PNG decode and resize, cheap DCT scales) change no output."""

from __future__ import annotations

import importlib
import io
import zlib

import cv2
import numpy as np
import pytest
from conftest import DATA
from PIL import Image, ImageOps

from bytefeed_helpers import BadFileError
from bytefeed_helpers.decoders.image import decode_image

decoder = importlib.import_module("bytefeed_helpers.decoders.image")


def photo(w: int = 120, h: int = 90, mode: str = "RGB") -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, (x * y) % 256], -1).astype(np.uint8)
    img = Image.fromarray(rgb)
    return img.convert(mode) if mode != "RGB" else img


def turned() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif


def interlaced(data: bytes) -> bytes:
    """``data`` with IHDR's interlace flag set (and its CRC fixed); Pillow writes none."""
    ihdr = bytearray(data[8 : 8 + 8 + 13 + 4])
    ihdr[8 + 12] = 1
    ihdr[-4:] = zlib.crc32(bytes(ihdr[4:-4])).to_bytes(4, "big")
    return data[:8] + bytes(ihdr) + data[8 + len(ihdr) :]


def png(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kwargs)
    return buf.getvalue()


def pillow_reference(data: bytes, size=None) -> np.ndarray:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    if size is not None:
        img = img.resize(size[::-1], Image.Resampling.BILINEAR)
    return np.asarray(img)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_plain_png_route_equals_pillow(mode):
    data = png(photo(mode=mode))
    assert decoder._decode_png_plain(data, "RGB") is not None  # the OpenCV route was taken
    assert np.array_equal(decode_image(data, None), pillow_reference(data))
    assert np.array_equal(decode_image(data, (90, 120)), pillow_reference(data))
    grey = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").convert("L"))[:, :, None]
    assert np.array_equal(decode_image(data, None, channels=1), grey)


@pytest.mark.parametrize(
    "data",
    [
        png(photo().quantize(16)),  # palette
        png(photo(), transparency=(1, 2, 3)),  # tRNS
        png(photo(mode="I;16")),  # 16-bit
        png(photo(mode="LA")),  # grey + alpha
        png(photo(), exif=turned()),  # eXIf chunk (orientation)
    ],
    ids=["palette", "trns", "16bit", "grey-alpha", "exif"],
)
def test_unusual_pngs_take_the_full_route(data):
    assert decoder._decode_png_plain(data, "RGB") is None
    assert decode_image(data, (30, 40)).shape == (30, 40, 3)


def test_interlaced_pngs_take_the_full_route():
    good = png(photo())
    assert decoder._decode_png_plain(good, "RGB") is not None
    assert decoder._decode_png_plain(interlaced(good), "RGB") is None


def test_exif_orientation_of_a_png_is_applied():
    out = decode_image(png(photo(), exif=turned()), None)
    assert out.shape == (120, 90, 3)  # orientation 6: turned a quarter


def test_damaged_pngs_take_the_full_route_which_names_the_damage():
    good = png(photo())
    cut = good[: len(good) // 2]
    assert decoder._decode_png_plain(cut, "RGB") is None
    with pytest.raises(BadFileError, match=r"truncated|corrupt"):
        decode_image(cut, None)
    at = good.index(b"IDAT") + 8  # inside the compressed pixels: the file is whole but corrupt
    flipped = good[:at] + bytes(b ^ 0xFF for b in good[at : at + 16]) + good[at + 16 :]
    assert decoder._decode_png_plain(flipped, "RGB") is None
    with pytest.raises(BadFileError, match=r"truncated|corrupt"):
        decode_image(flipped, None)
    with pytest.raises(BadFileError, match="not an image"):
        decode_image(b"\x89PNX" + good[4:], None)


def test_png_route_keeps_the_decompression_bomb_guard(monkeypatch):
    data = png(photo())
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 // 2)  # error above 2x the limit
    assert decoder._decode_png_plain(data, "RGB") is None
    with pytest.raises(BadFileError, match="decompression bomb"):
        decode_image(data, None)


def test_dct_scales_avoid_the_slow_eighths():
    # 5/8, 6/8 and 7/8 have no SIMD inverse DCT: a full decode is faster than any of them
    for height, width, want in [(640, 480, 224), (400, 400, 224), (3000, 2000, 224)]:
        h, w = decoder._dct_size(height, width, want, want)
        eighths = {round(8 * h / height), round(8 * w / width)}
        assert eighths <= {1, 2, 3, 4, 8} and h >= want and w >= want


@pytest.mark.parametrize("fit", ["stretch", "crop", "pad"])
def test_jpeg_route_matches_a_full_decode_resized_by_pillow(fit):
    """Real photos through the DCT-scaled decode and cv2's resize look like Pillow's full
    decode and bilinear (antialiased) resize: under 1.5% mean difference (cv2's bilinear
    does not antialias the shrinks under 3x, which adds about one level)."""
    photos = sorted(DATA.glob("images/*/*.jpg"))
    assert photos
    for path in photos:
        data = path.read_bytes()
        got = decode_image(data, (224, 224), fit=fit)
        img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)).convert("RGB"))
        box = None
        if fit == "crop":  # the centred square, at sub-pixel precision
            side = min(img.size)
            left, top = (img.width - side) / 2, (img.height - side) / 2
            box = (left, top, left + side, top + side)
        if fit == "pad":
            got = decode_image(data, (224, 224), fit="stretch")  # same pixels, no border
        want = np.asarray(img.resize((224, 224), Image.Resampling.BILINEAR, box=box))
        assert got.shape == want.shape
        assert np.abs(got.astype(int) - want).mean() < 3.5, path


def test_resize_maps_each_interpolation_to_its_cv2_flag(monkeypatch):
    flags = []
    real = cv2.resize

    def spy(array, size, interpolation):
        flags.append(interpolation)
        return real(array, size, interpolation=interpolation)

    monkeypatch.setattr(cv2, "resize", spy)
    small, large = np.zeros((40, 60, 3), np.uint8), np.zeros((400, 600, 3), np.uint8)
    cases = [
        ("bilinear", small, (20, 30), [cv2.INTER_LINEAR]),  # under 3x: bilinear taps suffice
        ("bilinear", large, (100, 150), [cv2.INTER_AREA]),  # 4x: area-averaged
        ("bilinear", small, (80, 120), [cv2.INTER_LINEAR]),
        ("bilinear", small, (20, 120), [cv2.INTER_AREA, cv2.INTER_LINEAR]),  # shrink, then grow
        ("hamming", large, (20, 30), [cv2.INTER_AREA]),
        ("box", small, (80, 120), [cv2.INTER_AREA]),
        ("area", small, (20, 30), [cv2.INTER_AREA]),
        ("nearest", small, (20, 30), [cv2.INTER_NEAREST]),
        ("bicubic", small, (80, 120), [cv2.INTER_CUBIC]),
        ("lanczos", small, (30, 45), [cv2.INTER_LANCZOS4]),
        ("lanczos", large, (30, 45), [cv2.INTER_AREA, cv2.INTER_LANCZOS4]),  # averaged first
    ]
    for name, array, (h, w), want in cases:
        flags.clear()
        out = decoder._resize(array, h, w, name)
        assert out.shape == (h, w, 3) and out.flags.c_contiguous and flags == want, name
    grey = decoder._resize(np.zeros((40, 60, 1), np.uint8), 20, 30, "bilinear")
    assert grey.shape == (20, 30, 1)  # cv2 drops a single channel's axis: restored


def test_opencv_runs_on_the_callers_thread_only():
    assert cv2.getNumThreads() == 1  # our pool decodes in parallel; cv2's would oversubscribe


def test_crop_of_a_reused_decode_buffer_is_a_copy():
    buf = io.BytesIO()
    photo(300, 224).save(buf, "JPEG", quality=90)  # the crop box is exactly 224 x 224
    data = buf.getvalue()
    first = decode_image(data, (224, 224), fit="crop")
    kept = first.copy()
    other = photo(300, 224).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    buf = io.BytesIO()
    other.save(buf, "JPEG", quality=90)
    decode_image(buf.getvalue(), (224, 224), fit="crop")  # reuses this thread's buffer
    assert np.array_equal(first, kept)


# --- audio: 16-bit PCM WAV read in one go, without libsndfile ------------------------------------
def wav(path, channels: int = 1, rate: int = 44100, seconds: float = 1.3, subtype="PCM_16"):
    import soundfile as sf

    t = np.arange(int(rate * seconds)) / rate
    x = np.stack([np.sin(2 * np.pi * 440 * t * (c + 1)) * 0.5 for c in range(channels)], -1)
    sf.write(path, x, rate, subtype=subtype)
    return path


def libsndfile_only(monkeypatch):
    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    monkeypatch.setattr(audio, "_decode_pcm16_wav", lambda *args: None)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("crop", ["start", "center", "random"])
def test_wav_route_equals_libsndfile(tmp_path, monkeypatch, channels, crop):
    from bytefeed_helpers.decoders.audio import decode_audio

    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    path = wav(tmp_path / "a.wav", channels)
    kwargs = {"crop": crop, "rng": np.random.default_rng(7)}
    assert (
        audio._decode_pcm16_wav(path, 16000, 1.0, crop, np.random.default_rng(7), True) is not None
    )
    fast = [decode_audio(path, 16000, 1.0, **kwargs), decode_audio(path, None, None, mono=False)]
    libsndfile_only(monkeypatch)
    kwargs["rng"] = np.random.default_rng(7)
    slow = [decode_audio(path, 16000, 1.0, **kwargs), decode_audio(path, None, None, mono=False)]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))


def test_wav_route_declines_other_files_and_keeps_the_rng(tmp_path):
    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    for name, subtype in [("u8.wav", "PCM_U8"), ("f.wav", "FLOAT"), ("p24.wav", "PCM_24")]:
        path = wav(tmp_path / name, subtype=subtype)
        assert audio._decode_pcm16_wav(path, 16000, 1.0, "start", None, True) is None
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    assert audio._decode_pcm16_wav(path, 16000, 1.0, "random", rng, True) is None
    assert rng.bit_generator.state == before  # libsndfile will draw the same crop
    cut = tmp_path / "cut.wav"
    data = wav(tmp_path / "whole.wav").read_bytes()
    cut.write_bytes(data[: len(data) // 3])  # the header promises more frames than remain
    with pytest.raises(BadFileError, match="truncated audio data"):
        audio._decode_pcm16_wav(cut, 16000, 1.0, "start", None, True)


def with_chunk_before_data(data: bytes, body: bytes) -> bytes:
    """A WAV with a ``LIST`` chunk of ``body`` (padded to even length) before its data."""
    at = data.index(b"data")
    chunk = b"LIST" + len(body).to_bytes(4, "little") + body + b"\x00" * (len(body) % 2)
    out = data[:at] + chunk + data[at:]
    return out[:4] + (len(out) - 8).to_bytes(4, "little") + out[8:]


@pytest.mark.parametrize(("rate", "seconds"), [(16000, 1.0), (48000, 6.0)])
def test_wav_route_reads_past_odd_chunks_and_beyond_its_first_read(
    tmp_path, monkeypatch, rate, seconds
):
    from bytefeed_helpers.decoders.audio import decode_audio

    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    path = wav(tmp_path / "a.wav", 2, rate, seconds)
    path.write_bytes(with_chunk_before_data(path.read_bytes(), b"odd"))
    assert audio._decode_pcm16_wav(path, 16000, 0.5, "center", None, True) is not None
    fast = [decode_audio(path, 16000, 0.5, crop="center"), decode_audio(path, None, None)]
    libsndfile_only(monkeypatch)
    slow = [decode_audio(path, 16000, 0.5, crop="center"), decode_audio(path, None, None)]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
