"""decode_image / image_info: formats, sizing, EXIF orientation, bad input, and the fast
routes (OpenCV PNG decode and resize, cheap DCT scales), which change no output."""

from __future__ import annotations

import importlib
import io
import zlib

import cv2
import numpy as np
import pytest
import simplejpeg
from PIL import Image, ImageOps
from support import DATA, SOURCE_KINDS, source_of

from bytefeed_helpers.decoders.image import IMAGE_FORMATS, decode_image, image_info
from bytefeed_helpers.errors import BadFileError

decoder = importlib.import_module("bytefeed_helpers.decoders.image")

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def quadrants(height: int = 40, width: int = 60) -> Image.Image:
    """Top-left red, top-right green, bottom-left blue, bottom-right white."""
    a = np.zeros((height, width, 3), np.uint8)
    a[: height // 2, : width // 2] = RED
    a[: height // 2, width // 2 :] = GREEN
    a[height // 2 :, : width // 2] = BLUE
    a[height // 2 :, width // 2 :] = WHITE
    return Image.fromarray(a)


def corners(a: np.ndarray) -> list[np.ndarray]:
    """Mean colour near each corner (TL, TR, BL, BR): robust to JPEG ringing at edges."""
    h, w = a.shape[:2]
    dy, dx = max(1, h // 8), max(1, w // 8)
    spots = [(dy, dx), (dy, w - 2 * dx), (h - 2 * dy, dx), (h - 2 * dy, w - 2 * dx)]
    return [a[y : y + dy, x : x + dx].reshape(-1, a.shape[2]).mean(0) for y, x in spots]


def assert_quadrants(a: np.ndarray, tol: float = 40) -> None:
    for got, want in zip(corners(a), (RED, GREEN, BLUE, WHITE), strict=True):
        assert np.abs(got - np.array(want)).max() <= tol, (got, want)


def smooth_image(height: int = 400, width: int = 600) -> Image.Image:
    """A smooth gradient photo stand-in: JPEG-friendly, so decoders can be compared closely."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    a = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 37 + y / 53)], -1)
    return Image.fromarray(a.round().astype(np.uint8))


def bands(height: int = 50, width: int = 100) -> Image.Image:
    """Green outer quarters; the middle half is red (left) then blue (right)."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:, : width // 4] = GREEN
    a[:, width // 4 : width // 2] = RED
    a[:, width // 2 : 3 * width // 4] = BLUE
    a[:, 3 * width // 4 :] = GREEN
    return Image.fromarray(a)


# --- formats ------------------------------------------------------------------------------


def test_image_formats_constant():
    assert set(IMAGE_FORMATS) == {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"}


@pytest.mark.parametrize(
    ("fmt", "mode", "kwargs"),
    [
        ("JPEG", "RGB", {"quality": 95}),
        ("JPEG", "RGB", {"quality": 95, "progressive": True}),
        ("JPEG", "L", {"quality": 95}),
        ("JPEG", "CMYK", {"quality": 95}),
        ("PNG", "RGB", {}),
        ("PNG", "L", {}),
        ("PNG", "RGBA", {}),
        ("PNG", "P", {}),
        ("PNG", "LA", {}),
        ("PNG", "1", {}),
        ("WEBP", "RGB", {"lossless": True}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {}),
        ("TIFF", "CMYK", {}),
        ("GIF", "P", {}),
    ],
)
def test_every_format_decodes_to_rgb_uint8(fmt, mode, kwargs):
    img = quadrants(40, 60).convert(mode)
    out = decode_image(encode(img, fmt, **kwargs), (20, 30))
    assert out.shape == (20, 30, 3)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    # Shrinking "bilinear" is area averaging (cv2.INTER_AREA): Pillow's BOX filter.
    reference = np.asarray(img.convert("RGB").resize((30, 20), Image.Resampling.BOX))
    # Lossy JPEG and grey/bilevel conversions blur colours a little; structure must match.
    assert np.abs(out.astype(int) - reference).mean() < 12


def test_grey_sources_stay_grey():
    img = quadrants().convert("L")
    out = decode_image(encode(img, "PNG"), None)
    assert np.array_equal(out, np.asarray(img.convert("RGB")))


def test_cmyk_jpeg_colours_match_pillow():
    data = encode(quadrants().convert("CMYK"), "JPEG", quality=95)
    assert simplejpeg.decode_jpeg_header(data)[2] == "CMYK"
    out = decode_image(data, None)
    assert np.array_equal(out, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert_quadrants(out)


def test_png_with_alpha_drops_alpha():
    a = np.zeros((10, 10, 4), np.uint8)
    a[..., :3] = (10, 200, 30)
    a[:5, ..., 3] = 0  # top half fully transparent: its stored colour shows
    a[5:, ..., 3] = 255
    out = decode_image(encode(Image.fromarray(a), "PNG"), None)
    assert np.array_equal(out, np.broadcast_to(np.array((10, 200, 30), np.uint8), (10, 10, 3)))


def test_palette_png_with_transparency():
    img = quadrants().convert("P")
    data = encode(img, "PNG", transparency=0)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "P" and "transparency" in check.info
    out = decode_image(data, None)
    assert_quadrants(out, tol=0)


def test_16bit_png_is_scaled_not_clipped():
    values = np.array([[0, 257, 257 * 128, 65535]], np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I")
    out = decode_image(data, None)
    assert out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 1, 128, 255]


@pytest.mark.parametrize(("scale", "want"), [(1.0, [0, 128, 255]), (255.0, [0, 128, 255])])
def test_float_tiff_in_0_1_or_0_255(scale, want):
    values = np.array([[0.0, 128 / 255, 1.0]], np.float32) * scale
    data = encode(Image.fromarray(values), "TIFF")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "F"
    assert decode_image(data, None, channels=1)[0, :, 0].tolist() == want


def test_gif_gives_first_frame():
    frames = [Image.new("RGB", (16, 12), RED), Image.new("RGB", (16, 12), BLUE)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    out = decode_image(buf.getvalue(), None)
    assert out.shape == (12, 16, 3)
    assert np.all(out == RED)


def test_format_told_by_content_not_name(tmp_path):
    path = tmp_path / "really_a_png.jpg"
    quadrants().save(path, "PNG")
    assert_quadrants(decode_image(path, None), tol=0)
    assert image_info(path)["format"] == "PNG"


# --- sources, dtype, channels, arguments --------------------------------------------------


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_source_kind(tmp_path, kind):
    data = encode(quadrants(), "JPEG", quality=95)
    path = tmp_path / "q.jpg"
    path.write_bytes(data)
    src = source_of(kind, path, data)
    assert_quadrants(decode_image(src, None))


def test_float32_holds_same_values():
    data = encode(quadrants(), "PNG")
    as_uint8 = decode_image(data, (20, 20))
    as_float = decode_image(data, (20, 20), dtype="float32")
    assert as_float.dtype == np.float32
    assert np.array_equal(as_float, as_uint8.astype(np.float32))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_channels_1(fmt):
    img = quadrants()
    out = decode_image(
        encode(img, fmt, quality=95) if fmt == "JPEG" else encode(img, fmt), (8, 12), channels=1
    )
    assert out.shape == (8, 12, 1)
    assert out.dtype == np.uint8
    assert out.flags.c_contiguous
    reference = np.asarray(img.convert("L").resize((12, 8), Image.Resampling.BILINEAR))
    assert np.abs(out[..., 0].astype(int) - reference).mean() < 6


def test_original_size_kept_with_none():
    out = decode_image(encode(quadrants(33, 47), "PNG"), None)
    assert out.shape == (33, 47, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fit": "squash"},
        {"channels": 2},  # 4 (RGBA) is valid since issue 15; 2 never was
        {"dtype": "float64"},
        {"interpolation": "cubic-ish"},
        {"image_size": (0, 10)},
        {"image_size": (10,)},
    ],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="must be"):
        decode_image(encode(quadrants(), "PNG"), **kwargs)


# --- fits ----------------------------------------------------------------------------------


def test_fit_stretch_keeps_everything():
    out = decode_image(encode(bands(), "PNG"), (100, 100), fit="stretch", interpolation="nearest")
    assert out.shape == (100, 100, 3)
    row = out[50]
    assert tuple(row[5]) == GREEN and tuple(row[94]) == GREEN
    assert tuple(row[35]) == RED and tuple(row[65]) == BLUE


def test_fit_crop_keeps_centre():
    out = decode_image(encode(bands(), "PNG"), (50, 50), fit="crop", interpolation="nearest")
    assert out.shape == (50, 50, 3)
    assert np.all(out[:, :25] == RED) and np.all(out[:, 25:] == BLUE)


def test_fit_pad_leaves_zero_borders():
    out = decode_image(encode(bands(), "PNG"), (100, 100), fit="pad", interpolation="nearest")
    assert out.shape == (100, 100, 3)
    assert np.all(out[:25] == 0) and np.all(out[75:] == 0)
    assert tuple(out[50, 5]) == GREEN and tuple(out[50, 35]) == RED and tuple(out[50, 65]) == BLUE


def test_fit_pad_tall_target_pads_rows_and_wide_target_pads_columns():
    square = encode(Image.new("RGB", (50, 50), WHITE), "PNG")
    wide = decode_image(square, (40, 80), fit="pad")
    assert np.all(wide[:, :20] == 0) and np.all(wide[:, 60:] == 0) and np.all(wide[:, 20:60] == 255)
    tall = decode_image(square, (80, 40), fit="pad")
    assert np.all(tall[:20] == 0) and np.all(tall[60:] == 0) and np.all(tall[20:60] == 255)


@pytest.mark.parametrize("fit", ["stretch", "crop", "pad"])
@pytest.mark.parametrize("size", [(224, 224), (100, 300), (300, 100), (37, 53)])
def test_jpeg_fast_path_matches_full_pillow_decode(fit, size):
    """The DCT-scaled decode must look like a full decode resized the same way."""
    data = encode(smooth_image(400, 600), "JPEG", quality=95)
    fast = decode_image(data, size, fit=fit)
    full = decode_image(encode(Image.open(io.BytesIO(data)), "PNG"), size, fit=fit)
    assert fast.shape == full.shape == (*size, 3)
    assert np.abs(fast.astype(int) - full).mean() < 2.5


def test_jpeg_fast_path_downscales_via_dct(monkeypatch):
    calls = []
    real = simplejpeg.decode_jpeg

    def spy(data, **kwargs):
        out = real(data, **kwargs)
        calls.append((kwargs, out.shape))
        return out

    monkeypatch.setattr(simplejpeg, "decode_jpeg", spy)
    data = encode(smooth_image(800, 1200), "JPEG")
    decode_image(data, (100, 100), fit="crop")
    decode_image(data, (300, 300), fit="crop")
    decode_image(data, (300, 300), fit="pad")
    decode_image(data, (300, 300), fit="stretch")
    decoded = [shape[:2] for _, shape in calls]
    # crop and stretch need both sides covered (1/8, then 3/8); pad only the limiting one (1/4)
    assert decoded == [(100, 150), (300, 450), (200, 300), (300, 450)]


# --- EXIF orientation ----------------------------------------------------------------------

# The transform that turns the upright picture into what a camera with that tag stores.
STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def with_orientation(upright: Image.Image, orientation: int, fmt: str) -> bytes:
    method = STORED[orientation]
    stored = upright if method is None else upright.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    kwargs = {"quality": 95} if fmt == "JPEG" else {}
    return encode(stored, fmt, exif=exif, **kwargs)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg(orientation):
    data = with_orientation(quadrants(48, 64), orientation, "JPEG")
    out = decode_image(data, None)
    assert out.shape == (48, 64, 3)
    assert_quadrants(out)
    assert_quadrants(decode_image(data, (24, 32), fit="crop"))


def _xmp(orientation: int) -> bytes:
    return (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
        b'22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
        b'tiff:Orientation="%d"/></rdf:RDF></x:xmpmeta>' % orientation
    )


@pytest.mark.parametrize("orientation", [3, 6])
def test_xmp_orientation_jpeg_turns_as_pillow_does(orientation):
    method = STORED[orientation]
    data = encode(quadrants(48, 64).transpose(method), "JPEG", quality=95, xmp=_xmp(orientation))
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == (64, 48)
    out = decode_image(data, None)
    assert out.shape == (48, 64, 3)
    assert_quadrants(out)


def test_orientation_is_looked_for_in_the_header_only():
    plain = encode(quadrants(48, 64), "JPEG", quality=95)
    # "Exif" bytes after the image data (a comment, a trailer) are not an EXIF block
    assert decoder._jpeg_orientation(plain + b"Exif\x00\x00MM\x00*") == 1
    exif = Image.Exif()
    exif[0x0112] = 6
    icc_then_exif = encode(quadrants(48, 64), "JPEG", icc_profile=b"\x00" * 3000, exif=exif)
    assert decoder._jpeg_orientation(icc_then_exif) == 6
    assert decoder._jpeg_may_turn(plain[:3])  # a cut header: Pillow is asked, as before


@pytest.mark.parametrize("orientation", [3, 6])
@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_exif_orientation_pillow_formats(orientation, fmt):
    out = decode_image(with_orientation(quadrants(48, 64), orientation, fmt), None)
    assert out.shape == (48, 64, 3)
    assert_quadrants(out, tol=0 if fmt != "WEBP" else 40)


def test_exif_orientation_6_picks_dct_scale_for_the_turned_image():
    upright = smooth_image(600, 400)  # portrait, stored as landscape with orientation 6
    data = with_orientation(upright, 6, "JPEG")
    fast = decode_image(data, (300, 100), fit="pad")
    full = decode_image(encode(upright, "PNG"), (300, 100), fit="pad")
    assert np.abs(fast.astype(int) - full).mean() < 2.5


# --- bad input -----------------------------------------------------------------------------


def test_empty(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    for src in (path, b"", io.BytesIO()):
        with pytest.raises(BadFileError, match="empty file"):
            decode_image(src)
    with pytest.raises(BadFileError, match="empty file"):
        image_info(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        decode_image(tmp_path / "nope.jpg")
    with pytest.raises(FileNotFoundError):
        image_info(tmp_path / "nope.jpg")


def test_text_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am not a picture\n")
    with pytest.raises(BadFileError, match=r"not an image \(unrecognised content\)"):
        decode_image(path)
    with pytest.raises(BadFileError, match="not an image"):
        image_info(path)


@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg(progressive):
    data = encode(smooth_image(), "JPEG", quality=90, progressive=progressive)
    with pytest.raises(BadFileError, match="truncated or corrupt JPEG data") as info:
        decode_image(data[: len(data) // 2])
    assert info.value.__cause__ is not None


def test_jpeg_cut_inside_header():
    data = encode(smooth_image(), "JPEG")
    with pytest.raises(BadFileError, match="JPEG"):
        decode_image(data[:40])


def test_recoverable_jpeg_damage_falls_back_to_pillow():
    data = encode(quadrants(), "JPEG", quality=95)
    damaged = data[:-2] + b"\x00" * 7 + data[-2:]  # junk before the EOI marker
    with pytest.raises(ValueError):
        simplejpeg.decode_jpeg(damaged, strict=True)
    assert_quadrants(decode_image(damaged, None))


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_truncated_other_formats(fmt):
    data = encode(smooth_image(120, 160), fmt)
    with pytest.raises(BadFileError, match=f"{fmt}"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_decompression_bomb(monkeypatch, fmt):
    data = encode(smooth_image(100, 100), fmt)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10_000 > 2 x limit: Pillow errors
    with pytest.raises(BadFileError, match=r"image too large \(decompression bomb guard\)"):
        decode_image(data)
    with pytest.raises(BadFileError, match="decompression bomb"):
        image_info(data)


def test_decompression_bomb_warning_zone_is_rejected(monkeypatch):
    data = encode(smooth_image(100, 100), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 7000)  # between limit and 2 x: Pillow warns
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(BadFileError, match="decompression bomb"),
    ):
        decode_image(data)


# --- image_info ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mode"),
    [
        ("JPEG", "RGB"),
        ("PNG", "RGBA"),
        ("GIF", "P"),
        ("WEBP", "RGB"),
        ("BMP", "RGB"),
        ("TIFF", "L"),
    ],
)
def test_image_info(fmt, mode):
    data = encode(quadrants(30, 50).convert(mode), fmt)
    assert image_info(data) == {"format": fmt, "width": 50, "height": 30, "mode": mode}
    assert image_info(io.BytesIO(data))["format"] == fmt


# --- fast routes: OpenCV PNG decode and resize, cheap DCT scales; same output as Pillow ---
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


# --- RGBA (channels=4) and Keras's interpolation names (issue 15) ----------------------------
def rgba_photo(w: int = 61, h: int = 47) -> np.ndarray:
    """A gradient with an alpha ramp and a fully transparent corner."""
    rgb = np.asarray(photo(w, h))
    alpha = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    alpha[: h // 4, : w // 4] = 0
    return np.dstack([rgb, alpha])


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_rgba_keeps_the_files_alpha(fmt):
    pixels = rgba_photo()
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    out = decode_image(encode(Image.fromarray(pixels), fmt, **kwargs), None, channels=4)
    assert out.shape == (47, 61, 4) and out.dtype == np.uint8
    assert np.array_equal(out[..., 3], pixels[..., 3])  # alpha as stored
    if fmt != "WEBP":  # lossless WebP may change the colour under fully transparent pixels
        assert np.array_equal(out, pixels)


@pytest.mark.parametrize(("fmt", "mode"), [("JPEG", "RGB"), ("BMP", "RGB"), ("PNG", "L"),
                                           ("PNG", "RGB"), ("GIF", "P"), ("JPEG", "L")])  # fmt: skip
def test_rgba_without_alpha_is_opaque_and_matches_rgb(fmt, mode):
    data = encode(photo(mode=mode), fmt)
    rgba = decode_image(data, (30, 40), channels=4)
    rgb = decode_image(data, (30, 40), channels=3)
    assert rgba.shape == (30, 40, 4) and (rgba[..., 3] == 255).all()
    assert np.array_equal(rgba[..., :3], rgb)  # the same decode and resize, plus alpha


def test_rgba_of_a_palette_with_transparency_and_of_grey_with_alpha():
    palette = photo().convert("P")
    data = encode(palette, "PNG", transparency=0)
    out = decode_image(data, None, channels=4)
    transparent = np.asarray(palette) == 0
    assert transparent.any() and (out[..., 3][transparent] == 0).all()
    assert (out[..., 3][~transparent] == 255).all()
    la = Image.fromarray(np.dstack([np.asarray(photo().convert("L")), rgba_photo(120, 90)[..., 3]]),
                         "LA")  # fmt: skip
    out = decode_image(encode(la, "PNG"), None, channels=4)
    assert np.array_equal(out[..., 3], rgba_photo(120, 90)[..., 3])
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


@pytest.mark.parametrize("fit", ["stretch", "crop", "pad"])
@pytest.mark.parametrize("interpolation", ["bilinear", "area", "bicubic", "lanczos3"])
def test_rgba_channels_are_resized_independently(fit, interpolation):
    pixels = rgba_photo()
    data = encode(Image.fromarray(pixels), "PNG")
    out = decode_image(data, (20, 32), channels=4, fit=fit, interpolation=interpolation)
    assert out.shape == (20, 32, 4)
    # the colour is the RGB decode's (not premultiplied by alpha), and alpha resizes as grey
    rgb = decode_image(encode(Image.fromarray(pixels[..., :3]), "PNG"), (20, 32), fit=fit,
                       interpolation=interpolation)  # fmt: skip
    alpha = decode_image(encode(Image.fromarray(pixels[..., 3]), "PNG"), (20, 32), channels=1,
                         fit=fit, interpolation=interpolation)  # fmt: skip
    # (OpenCV's 4-channel cubic kernels round a few values differently: 1 at most)
    assert np.abs(out[..., :3].astype(int) - rgb).max() <= 1
    assert np.abs(out[..., 3:].astype(int) - alpha).max() <= 1
    if fit == "pad":
        assert (out[0, :, 3] == 0).all() or (out[:, 0, 3] == 0).all()  # padding: transparent


@pytest.mark.parametrize(
    ("name", "resample"),
    [
        ("lanczos3", Image.Resampling.LANCZOS),
        ("gaussian", Image.Resampling.BILINEAR),
        ("mitchellcubic", Image.Resampling.BICUBIC),
    ],
)
@pytest.mark.parametrize("size", [(23, 31), (150, 200)])  # shrinking and enlarging
def test_keras_names_without_an_opencv_filter_are_pillows(name, resample, size):
    img = photo()
    out = decode_image(encode(img, "PNG"), size, interpolation=name)
    want = np.asarray(img.resize(size[::-1], resample))
    assert np.array_equal(out, want)


def test_every_interpolation_name_decodes_and_lanczos5_is_opencvs_widest(monkeypatch):
    data = encode(photo(), "PNG")
    for name in decoder.INTERPOLATIONS:
        out = decode_image(data, (30, 45), interpolation=name)
        assert out.shape == (30, 45, 3) and out.dtype == np.uint8, name
    assert decoder.INTERPOLATIONS[:8] == (
        "bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian",
        "mitchellcubic",
    )  # Keras's names first  # fmt: skip
    flags = []
    real = cv2.resize

    def spy(array, size, interpolation):
        flags.append(interpolation)
        return real(array, size, interpolation=interpolation)

    monkeypatch.setattr(cv2, "resize", spy)
    decoder._resize(np.zeros((40, 60, 3), np.uint8), 30, 45, "lanczos5")
    assert flags == [cv2.INTER_LANCZOS4]


def test_channels_message_names_the_choices():
    with pytest.raises(ValueError, match=r"channels must be 1, 3 or 4 .* Received: channels=2"):
        decode_image(encode(quadrants(), "PNG"), channels=2)
