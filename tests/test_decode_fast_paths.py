"""decode_image's fast routes (plain PNG, cheap DCT scales, compiled resize) change no output."""

from __future__ import annotations

import importlib
import io
import zlib

import numpy as np
import pytest
import simplejpeg
from PIL import Image

from bytefeed_helpers import BadFileError
from bytefeed_helpers.decode_image import decode_image

decoder = importlib.import_module("bytefeed_helpers.decode_image")


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
    assert decoder._decode_png_plain(data, "RGB") is not None  # the fast route was taken
    assert np.array_equal(decode_image(data, None), pillow_reference(data))
    assert np.array_equal(decode_image(data, (90, 120)), pillow_reference(data))


@pytest.mark.parametrize(
    "data",
    [
        png(photo().quantize(16)),  # palette
        png(photo(), transparency=(1, 2, 3)),  # tRNS
        png(photo(mode="I;16")),  # 16-bit
        png(photo(), exif=turned()),  # eXIf chunk (orientation)
    ],
    ids=["palette", "trns", "16bit", "exif"],
)
def test_unusual_pngs_take_the_full_route(data):
    assert decoder._decode_png_plain(data, "RGB") is None
    assert decode_image(data, (30, 40)).shape == (30, 40, 3)


def test_interlaced_and_damaged_pngs_take_the_full_route():
    good = png(photo())
    assert decoder._decode_png_plain(good, "RGB") is not None
    assert decoder._decode_png_plain(interlaced(good), "RGB") is None
    cut = good[: len(good) // 2]
    assert decoder._decode_png_plain(cut, "RGB") is None  # the full route names the damage
    with pytest.raises(BadFileError, match=r"truncated|corrupt"):
        decode_image(cut, None)


def test_dct_scales_avoid_the_slow_eighths():
    # 5/8, 6/8 and 7/8 have no SIMD inverse DCT: a full decode is faster than any of them
    for height, width, want in [(640, 480, 224), (400, 400, 224), (3000, 2000, 224)]:
        h, w = decoder._dct_size(height, width, want, want)
        eighths = {round(8 * h / height), round(8 * w / width)}
        assert eighths <= {1, 2, 3, 4, 8} and h >= want and w >= want


def test_jpeg_route_matches_a_full_decode_resized_by_pillow():
    buf = io.BytesIO()
    photo(600, 450).save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    full = simplejpeg.decode_jpeg(data)
    want = np.asarray(Image.fromarray(full).resize((224, 224), Image.Resampling.BILINEAR))
    got = decode_image(data, (224, 224))
    assert got.shape == want.shape and np.abs(got.astype(int) - want).mean() < 2.5


# --- audio: 16-bit PCM WAV through the standard library's wave module -------------------------
def wav(path, channels: int = 1, rate: int = 44100, seconds: float = 1.3, subtype="PCM_16"):
    import soundfile as sf

    t = np.arange(int(rate * seconds)) / rate
    x = np.stack([np.sin(2 * np.pi * 440 * t * (c + 1)) * 0.5 for c in range(channels)], -1)
    sf.write(path, x, rate, subtype=subtype)
    return path


def libsndfile_only(monkeypatch):
    audio = importlib.import_module("bytefeed_helpers.decode_audio")
    monkeypatch.setattr(audio, "_decode_pcm16_wav", lambda *args: None)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("crop", ["start", "center", "random"])
def test_wav_route_equals_libsndfile(tmp_path, monkeypatch, channels, crop):
    from bytefeed_helpers.decode_audio import decode_audio

    audio = importlib.import_module("bytefeed_helpers.decode_audio")
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
    audio = importlib.import_module("bytefeed_helpers.decode_audio")
    for name, subtype in [("u8.wav", "PCM_U8"), ("f.wav", "FLOAT"), ("p24.wav", "PCM_24")]:
        path = wav(tmp_path / name, subtype=subtype)
        assert audio._decode_pcm16_wav(path, 16000, 1.0, "start", None, True) is None
    cut = tmp_path / "cut.wav"
    data = wav(tmp_path / "whole.wav").read_bytes()
    cut.write_bytes(data[: len(data) // 3])  # the header promises more frames than remain
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    assert audio._decode_pcm16_wav(cut, 16000, 1.0, "random", rng, True) is None
    assert rng.bit_generator.state == before  # libsndfile will draw the same crop


# --- png.decode_plain: every row filter, every plain colour type ------------------------------
def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filtered_png(pixels: np.ndarray, colour: int) -> bytes:
    """A PNG whose rows use filter types 0, 1, 2, 3, 4, 0, ... (PNG spec, section 9)."""
    height, width, bpp = pixels.shape
    rows = pixels.reshape(height, width * bpp).astype(int)
    raw = bytearray()
    for y, row in enumerate(rows):
        kind = y % 5
        prior = rows[y - 1] if y else np.zeros_like(row)
        out = []
        for x, v in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            b = prior[x]
            c = prior[x - bpp] if x >= bpp else 0
            pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
            out.append((v - pred) % 256)
        raw += bytes([kind, *out])

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, colour, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(raw)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("colour", "channels"), [(0, 1), (2, 3), (6, 4)])
def test_png_unfilter_every_filter_type(colour, channels):
    from bytefeed_helpers import png

    pixels = np.random.default_rng(channels).integers(0, 256, (11, 7, channels), np.uint8)
    data = filtered_png(pixels, colour)
    assert np.array_equal(png.decode_plain(data), pixels)
    pillow = np.asarray(Image.open(io.BytesIO(data))).reshape(pixels.shape)
    assert np.array_equal(pillow, pixels)  # the hand-made file is a valid PNG


def test_png_decode_plain_declines_damage():
    from bytefeed_helpers import png

    data = bytearray(filtered_png(np.zeros((4, 4, 3), np.uint8), 2))
    assert png.decode_plain(bytes(data)) is not None
    assert png.decode_plain(b"not a png at all") is None
    assert png.decode_plain(bytes(data[:40])) is None  # cut inside IDAT
    bad = bytearray(filtered_png(np.zeros((4, 4, 3), np.uint8), 2))
    raw = zlib.decompress(bytes(bad[41:-16]))  # the IDAT body
    bad_raw = bytes([9]) + raw[1:]  # filter type 9 does not exist
    idat = zlib.compress(bad_raw)
    forged = bytes(bad[:33]) + len(idat).to_bytes(4, "big") + b"IDAT" + idat + b"\0\0\0\0"
    assert png.decode_plain(forged + bytes(bad[-12:])) is None
