"""Decode image files (JPEG, PNG, GIF, WebP, BMP, TIFF) to fixed-size uint8/float32 arrays.

The format is told by the file's content (magic bytes), never by its name. JPEG goes through
libjpeg-turbo (simplejpeg) and lets the DCT do part of the downscale; plain 8-bit PNGs through
OpenCV's ``cv2.imdecode``; everything else, and the files those cannot handle (CMYK/YCCK JPEGs,
recoverable corruption, palette or EXIF PNGs), goes through Pillow. Resizing is OpenCV's
``cv2.resize``, or Pillow's for the Keras filters OpenCV lacks ("lanczos3", "gaussian",
"mitchellcubic"). These calls release the GIL, so decoding threads run in parallel.
Every bad input raises :class:`~bytefeed_helpers.errors.BadFileError` with a short reason;
a missing file raises :class:`FileNotFoundError`.

Functions here are thread-safe: they share no mutable state.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from typing import IO, Any

import cv2
import numpy as np
import simplejpeg
from PIL import Image

from .. import stages
from ..errors import BadFileError
from ..options import Fit, ImageDtype, Interpolation, check_choice, choices
from ._fileio import DEFAULT_MAX_FILE_MB, check_max_file_mb, open_checked, read_bytes

__all__ = ["IMAGE_FORMATS", "decode_image", "image_info"]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

# Our own thread pool decodes files in parallel; OpenCV's internal threads would only
# oversubscribe the cores.
cv2.setNumThreads(1)

#: Formats ``decode_image`` reads, by the names Pillow and ``image_info`` use.
IMAGE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

FITS: tuple[str, ...] = choices(Fit)
DTYPES: tuple[str, ...] = choices(ImageDtype)
CHANNELS = (1, 3, 4)
#: Pillow's mode for each number of channels (grey, RGB, RGB + alpha).
_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
_AREA_FROM = 3.0  # "bilinear" shrinks by this much or more are area-averaged
INTERPOLATIONS: tuple[str, ...] = choices(Interpolation)
# The cv2 flag for each name; None: INTER_AREA when shrinking, INTER_LINEAR when enlarging.
# Keras's names are ``tf.image.resize``'s methods; each maps to the nearest filter OpenCV or
# Pillow has (see ``decode_image`` for where they differ).
_CV2_FLAGS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": None,
    "hamming": None,  # no cv2 equivalent: treated as bilinear
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "lanczos5": cv2.INTER_LANCZOS4,  # radius 4, the widest either library has (TF's: 5)
    "box": cv2.INTER_AREA,
    "area": cv2.INTER_AREA,  # Keras' name for box averaging
}
# Names whose nearest filter is Pillow's: its kernels widen with the shrink (antialiased), so
# they need no reducing step. Lanczos3 is TF's own kernel; TF's Gaussian (sigma 0.5 px, radius
# 1.5) is closest to Pillow's triangle (sigma 0.41 px, radius 1); Mitchell-Netravali's cubic
# (B = C = 1/3) to Pillow's Catmull-Rom cubic (B = 0, C = 0.5), a little sharper.
_PIL_FILTERS = {
    "lanczos3": Image.Resampling.LANCZOS,
    "gaussian": Image.Resampling.BILINEAR,
    "mitchellcubic": Image.Resampling.BICUBIC,
}
# cv2's bicubic and Lanczos kernels do not widen when shrinking (they alias); like Pillow's
# ``reducing_gap``, larger shrinks are first area-averaged down to this many times the output.
_REDUCING_GAP = 2

# EXIF Orientation (tag 0x0112) -> the transpose that makes the stored pixels upright,
# the same table as PIL.ImageOps.exif_transpose.
_ORIENTATION_TAG = 0x0112
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = frozenset({5, 6, 7, 8})

# What Pillow lets through on corrupt files: the list its fuzz tests accept
# (Tests/test_fuzzers.py), plus EOFError and struct.error that some plugins raise on cut files.
_PIL_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    MemoryError,
    NotImplementedError,
    OverflowError,
    EOFError,
    struct.error,
)

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)


def _sniff_format(head: bytes) -> str | None:
    """The image format named by the first bytes of a file (16 are enough), or None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    return None


def decode_image(
    src: Source,
    image_size: tuple[int, int] | None = (224, 224),
    *,
    channels: int = 3,
    fit: str = "stretch",
    dtype: str = "uint8",
    interpolation: str = "bilinear",
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB["image"],
) -> np.ndarray:
    """Decode one image to a C-contiguous ``[H, W, channels]`` array.

    Args:
        src: a path, the file's bytes, or a binary file object.
        image_size: ``(height, width)`` of the output, as in Keras; None keeps the image's size.
        channels: 3 for RGB, 1 for grayscale (shape ``[H, W, 1]``), 4 for RGBA: the file's
            alpha where it has one (PNG, GIF/WebP transparency, TIFF), else opaque 255 (JPEG,
            BMP); letterbox padding (``fit="pad"``) is transparent, alpha 0.
        fit: "stretch" resizes to exactly ``image_size`` ignoring aspect; "crop" keeps aspect,
            covers ``image_size`` and cuts the centre (Keras ``crop_to_aspect_ratio``); "pad"
            keeps aspect, fits inside and centres the image on zeros (``pad_to_aspect_ratio``).
        dtype: "uint8", or "float32" holding the same 0..255 values (as Keras loaders do).
        interpolation: one of ``INTERPOLATIONS``: Keras's names (``tf.image.resize``'s
            methods) and Pillow's, each mapped to the nearest OpenCV or Pillow filter.
            "bilinear" (and "hamming", which OpenCV lacks) is ``cv2.INTER_AREA`` when shrinking
            3x or more (area averaging, antialiased like Pillow's reducing filters) and
            ``cv2.INTER_LINEAR`` otherwise (large JPEGs are already DCT-scaled to under 2x the
            output first); Keras (``antialias=False``) keeps 2x2 bilinear taps at any shrink,
            which aliases. "area"/"box" is ``INTER_AREA``, as TF's area; "nearest"
            ``INTER_NEAREST``. "bicubic" is ``INTER_CUBIC`` (Keys a = -0.75; TF's a = -0.5)
            and "lanczos"/"lanczos5" ``INTER_LANCZOS4`` (radius 4: no library here has TF's
            radius 5), after an area-averaged reduction to twice the output size when
            shrinking more (their kernels alias). "lanczos3" is Pillow's ``LANCZOS`` (TF's
            kernel, antialiased); "gaussian" Pillow's triangle ``BILINEAR`` (sigma 0.41 px
            against TF's Gaussian's 0.5 px); "mitchellcubic" Pillow's ``BICUBIC``
            (Catmull-Rom, a little sharper than Mitchell-Netravali). Pillow's filters widen
            with the shrink, so they are antialiased; TF's, as Keras calls them, are not.
        max_file_mb: refuse larger files (MB of 2**20 bytes; None: no limit) before reading
            them. The default, 256, is an uncompressed 8-bit RGB image at Pillow's pixel limit.

    A path is opened only if it is a regular file (never a FIFO, socket, device or directory),
    and its format is told from its first bytes before the rest is read. The EXIF orientation
    is applied, so the pixels come out upright. With ``channels=3`` or 1, alpha is dropped (as
    ``PIL.Image.convert("RGB")`` and Keras do: transparent pixels show their stored colour);
    ``channels=4`` keeps it, and its channels are resized independently, as Keras's (not
    premultiplied). GIFs give their first frame, 16-bit images are scaled to 0..255.

    Raises:
        BadFileError: empty, unrecognised, truncated or corrupt content, more pixels than
            ``PIL.Image.MAX_IMAGE_PIXELS`` (decompression-bomb guard), a file over
            ``max_file_mb`` ("file too large: ..."), or a path that is not a regular file
            ("not a regular file (fifo)", a ``NotRegularFileError``).
        FileNotFoundError: ``src`` names no file.
        ValueError: an argument outside the allowed values.
    """
    size = check_image_settings(image_size, channels, fit, dtype, interpolation)
    return decode_checked(
        src, size, channels, fit, dtype, interpolation, check_max_file_mb(max_file_mb)
    )


def decode_checked(
    src: Source,
    image_size: tuple[int, int] | None,
    channels: int,
    fit: str,
    dtype: str,
    interpolation: str,
    max_bytes: int | None,
) -> np.ndarray:
    """``decode_image`` with settings already checked (``check_image_settings``,
    ``check_max_file_mb``): what a stream calls for every file, so the checks (a few
    microseconds, a tenth of a tiny PNG's decode) run once per stream, not once per file."""
    # _detect sees the first bytes before the rest is read: a 2 GiB file of zeros costs 4 KiB
    data = read_bytes(src, max_bytes, _detect)
    fmt = _detect(data)
    mode = _MODES[channels]
    img: Image.Image | np.ndarray | None = None
    if fmt == "JPEG":
        img = _decode_jpeg_turbo(data, image_size, fit, mode)
    elif fmt == "PNG":
        img = _decode_png_plain(data, mode)
    if img is None:  # not JPEG/plain PNG, or one the fast routes declined
        img = _decode_pillow(data, fmt, image_size, fit, mode)
    if image_size is not None:
        started = stages.start()
        img = _fit(img, image_size, fit, interpolation)
        stages.done("resize", started)
    return _to_array(img, dtype)


def image_info(
    src: Source, *, max_file_mb: float | None = DEFAULT_MAX_FILE_MB["image"]
) -> dict[str, Any]:
    """Format, width, height and Pillow mode of an image, reading only its header.

    Width and height are as stored (before any EXIF rotation). Raises BadFileError for an
    empty, unrecognised or oversized image, a path that is not a regular file or is over
    ``max_file_mb`` (as ``decode_image``), FileNotFoundError for a missing file.
    """
    with _open_stream(src, check_max_file_mb(max_file_mb)) as fh:
        head = fh.read(16)
        fh.seek(-len(head), io.SEEK_CUR)
        fmt = _detect(head)
        img = _open_pillow(fh, fmt)
        _check_pixels(*img.size)
        return {"format": fmt, "width": img.width, "height": img.height, "mode": img.mode}


# ---------------------------------------------------------------------------------------------
# reading


@contextlib.contextmanager
def _open_stream(src: Source, max_bytes: int | None) -> Iterator[IO[bytes]]:
    """A seekable binary stream on ``src``, closed afterwards only if opened here; a path
    only if it is a regular file of at most ``max_bytes`` (``open_checked``)."""
    if isinstance(src, bytes | bytearray | memoryview):
        yield io.BytesIO(src)
    elif isinstance(src, str | os.PathLike):
        with open_checked(src, max_bytes) as (fd, _), open(fd, "rb", closefd=False) as fh:
            yield fh
    else:  # a binary file object
        yield src if src.seekable() else io.BytesIO(src.read())  # Pillow needs to seek


def _detect(head: bytes | bytearray) -> str:
    """The format of ``head``'s content; BadFileError when empty or not one we read."""
    if len(head) == 0:
        raise BadFileError("empty file")
    fmt = _sniff_format(bytes(head[:16]))
    if fmt is None:
        raise BadFileError("not an image (unrecognised content)")
    return fmt


def _check_pixels(width: int, height: int) -> None:
    """Apply Pillow's decompression-bomb limit (read each call: users may change it)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and width * height > limit:
        raise BadFileError(
            f"image too large (decompression bomb guard): {width}x{height} pixels "
            f"> PIL.Image.MAX_IMAGE_PIXELS={limit}"
        )


# ---------------------------------------------------------------------------------------------
# decoding


def _needed_size(
    height: int, width: int, image_size: tuple[int, int] | None, fit: str, orientation: int
) -> tuple[int, int]:
    """The least ``(height, width)`` a DCT-scaled decode of a stored image needs, 0 = any.

    Stretch and crop need both output sides covered (crop covers the target, then cuts);
    pad only needs the side that limits the scale. Orientations 5-8 store the image turned by
    90 degrees, so the target's sides swap.
    """
    if image_size is None:
        return height, width
    out_h, out_w = image_size
    if orientation in _SWAPS_AXES:
        out_h, out_w = out_w, out_h
    if fit == "pad":
        return (out_h, 0) if out_h / height <= out_w / width else (0, out_w)
    return out_h, out_w


# libjpeg-turbo scales by n/8 while decoding. Its 5/8, 6/8 and 7/8 inverse DCTs have no SIMD
# code and run slower than a full-size decode, so only these eighths are used.
_DCT_EIGHTHS = (1, 2, 3, 4, 8)


def _dct_size(height: int, width: int, min_h: int, min_w: int) -> tuple[int, int]:
    """The smallest fast DCT-scaled size of a ``height`` x ``width`` JPEG covering the minimum."""
    for n in _DCT_EIGHTHS:
        h, w = -(-height * n // 8), -(-width * n // 8)
        if h >= min_h and w >= min_w:
            return h, w
    return height, width


def _decode_jpeg_turbo(
    data: bytes | bytearray,
    image_size: tuple[int, int] | None,
    fit: str,
    mode: str,
) -> np.ndarray | None:
    """Decode a JPEG with libjpeg-turbo to an upright ``[H, W, C]`` array; None: use Pillow."""
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None  # a header libjpeg-turbo rejects: Pillow may still read it, or say why
    _check_pixels(width, height)
    if colorspace in ("CMYK", "YCCK"):
        return None  # Pillow handles Adobe's inverted CMYK properly
    orientation = _jpeg_orientation(data)
    min_h, min_w = _dct_size(
        height, width, *_needed_size(height, width, image_size, fit, orientation)
    )
    try:
        array = simplejpeg.decode_jpeg(
            data,
            colorspace={"L": "GRAY", "RGB": "RGB", "RGBA": "RGBA"}[mode],  # JPEG alpha: 255
            fastdct=False,
            min_height=min_h,
            min_width=min_w,
            strict=True,
            buffer=_decode_buffer(min_h, min_w, mode, image_size, orientation),
        )
    except ValueError as exc:
        if "Premature end" in str(exc):
            # Truncated for certain; Pillow would say the same, more slowly.
            raise BadFileError(f"truncated or corrupt JPEG data: {exc}") from exc
        return None  # e.g. "extraneous bytes before marker": Pillow is more lenient
    if orientation == 1:
        return array
    img = Image.fromarray(array[:, :, 0] if mode == "L" else array)
    return np.asarray(_upright(img, orientation))


def _decode_buffer(
    height: int, width: int, mode: str, image_size: tuple[int, int] | None, orientation: int
) -> np.ndarray | None:
    """A reused per-thread buffer for a decode that is certainly resized into a new array
    afterwards (so the buffer never leaves this call); None otherwise."""
    if image_size is None or orientation != 1 or (height, width) == tuple(image_size):
        return None
    from ._scratch import scratch

    return scratch(height * width * len(mode), "jpeg")  # a byte per channel ("L", "RGBA")


def _jpeg_orientation(data: bytes | bytearray) -> int:
    """The EXIF orientation of a JPEG (1 when absent), read from its header without decoding.

    Pillow reads it from an EXIF block or, failing that, from XMP (``tiff:Orientation``); both
    live in APP1 segments before the image data. Most JPEGs have neither, and walking the few
    segment headers finds that out without searching the whole file (~1.3 us against ~20 us
    for a 320-640 px photo).
    """
    if not _jpeg_may_turn(data):
        return 1
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
            return _orientation(img)
    except _PIL_ERRORS:
        return 1  # unreadable EXIF does not make the pixels unreadable


_APP1 = 0xE1
_APP1_ORIENTING = (b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/\x00")  # EXIF, XMP


def _jpeg_may_turn(data: bytes | bytearray) -> bool:
    """Whether a JPEG has an APP1 segment holding EXIF or XMP before its scan data.

    A header that cannot be walked (cut, or bytes where a marker should be) answers True:
    Pillow then reads what it can, as it would for the whole file.
    """
    at, end = 2, len(data)
    while at + 4 <= end:
        if data[at] != 0xFF:
            return True
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: no more headers
            return False
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            at += 2
            continue
        length = (data[at + 2] << 8) | data[at + 3]
        if length < 2:
            return True
        if marker == _APP1 and data.startswith(_APP1_ORIENTING, at + 4):
            return True
        at += 2 + length
    return True


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation of an opened image, 1 when absent or invalid."""
    value = img.getexif().get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    """``img`` turned and mirrored as its EXIF orientation says."""
    method = _UPRIGHT.get(orientation)
    return img if method is None else img.transpose(method)


# PNG chunks that change what the pixels mean or how they turn: files holding them take
# Pillow's route. So do text chunks carrying EXIF ("Raw profile type exif") or XMP that may
# hold an orientation (Pillow applies both).
_PNG_SPECIAL = frozenset({b"PLTE", b"tRNS", b"eXIf", b"acTL"})
_PNG_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})
_PNG_CHUNK = struct.Struct(">I4s")  # a chunk's data length and type
_PNG_HEADER = struct.Struct(">4sIIBBBBB")  # IHDR's type, width, height, depth, colour, ...
# OpenCV turns images by their EXIF unless told not to; the chunks that carry one go to Pillow.
_CV2_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
_CV2_KEEP = cv2.IMREAD_IGNORE_ORIENTATION


def _decode_png_plain(data: bytes | bytearray, mode: str) -> np.ndarray | None:
    """A plain PNG (8-bit grey, RGB or RGBA, not interlaced, no palette, transparency, EXIF or
    animation) through ``cv2.imdecode``, as a ``mode`` ("RGB"/"L"/"RGBA") ``[H, W, C]`` array.
    None for every other PNG, and for damage, so Pillow decodes it or names the problem."""
    try:
        kind, width, height, depth, colour, _, _, interlace = _PNG_HEADER.unpack_from(data, 12)
    except struct.error:
        return None
    limit = Image.MAX_IMAGE_PIXELS
    if (
        kind != b"IHDR"
        or depth != 8
        or colour not in (0, 2, 6)
        or interlace
        or (limit is not None and width * height > limit)  # Pillow warns or refuses
        or not _png_is_plain(data)
    ):
        return None
    buffer = np.frombuffer(data, np.uint8)
    if mode == "RGB" and _CV2_RGB is not None:  # one call: alpha dropped, grey replicated
        pixels = cv2.imdecode(buffer, _CV2_RGB | _CV2_KEEP)
    elif mode == "L" and colour == 0:
        pixels = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE | _CV2_KEEP)
    elif mode == "RGBA":  # the file's alpha, or opaque (IMREAD_UNCHANGED ignores EXIF too)
        pixels = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        if pixels is not None:
            stored = 1 if pixels.ndim == 2 else pixels.shape[2]
            to_rgba = {1: cv2.COLOR_GRAY2RGBA, 3: cv2.COLOR_BGR2RGBA, 4: cv2.COLOR_BGRA2RGBA}
            pixels = cv2.cvtColor(pixels, to_rgba[stored])
    else:
        pixels = cv2.imdecode(buffer, cv2.IMREAD_COLOR | _CV2_KEEP)
        if pixels is not None:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if pixels is None or pixels.shape[:2] != (height, width):
        return None
    if pixels.ndim == 2:
        return pixels[:, :, None]
    if mode != "L":
        return pixels
    # colour to grey: Pillow's own rounding, so both routes agree to the last bit
    return np.asarray(Image.fromarray(pixels).convert("L"))[:, :, None]


def _png_is_plain(data: bytes | bytearray) -> bool:
    """Whether a PNG's chunks are whole, end with IEND at the end of the file, and hold none
    of ``_PNG_SPECIAL`` (or EXIF/XMP text). Cut or inconsistent files are not plain: Pillow
    names their damage, and libpng (inside OpenCV) would print its complaints on stderr."""
    pos, end = 8, len(data)
    while pos + 12 <= end:
        length, kind = _PNG_CHUNK.unpack_from(data, pos)
        if kind in _PNG_SPECIAL:
            return False
        if kind in _PNG_TEXT and _png_text_may_turn(data[pos + 8 : pos + 8 + length], kind):
            return False
        pos += 12 + length
        if kind == b"IEND":
            return pos == end and length == 0
    return False


def _png_text_may_turn(body: bytes | bytearray, kind: bytes) -> bool:
    """Whether a text chunk may carry an EXIF orientation Pillow would apply."""
    keyword = body[: body.find(b"\x00")]
    if keyword == b"Raw profile type exif":
        return True
    if keyword != b"XML:com.adobe.xmp":
        return False
    compressed = kind == b"zTXt" or (
        kind == b"iTXt" and body[len(keyword) + 1 : len(keyword) + 2] == b"\x01"
    )
    return compressed or b"tiff:Orientation" in body


def _open_pillow(fh: IO[bytes], fmt: str) -> Image.Image:
    """``Image.open`` restricted to ``fmt``, its errors turned into BadFileError."""
    try:
        return Image.open(fh, formats=[fmt])
    except Image.DecompressionBombError as exc:
        raise BadFileError(f"image too large (decompression bomb guard): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        # Pillow's message ends with the stream's repr, which differs from run to run
        raise BadFileError(f"corrupt {fmt} data: cannot identify image file") from exc
    except _PIL_ERRORS as exc:
        raise BadFileError(f"corrupt {fmt} data: {exc}") from exc


def _decode_pillow(
    data: bytes | bytearray,
    fmt: str,
    image_size: tuple[int, int] | None,
    fit: str,
    mode: str,
) -> Image.Image:
    """Decode any supported format with Pillow to an upright ``mode`` ("RGB"/"L"/"RGBA") image."""
    img = _open_pillow(io.BytesIO(data), fmt)
    _check_pixels(*img.size)
    kind = f"{fmt} data"
    try:
        img.seek(0)  # the first frame of an animation
        if fmt == "JPEG" and image_size is not None:
            # Let libjpeg scale by 1/2..1/8 while decoding; draft() wants both sides, 1 = any.
            min_h, min_w = _needed_size(img.height, img.width, image_size, fit, _orientation(img))
            # (a JPEG has no alpha: an "RGBA" decode is an "RGB" one, made opaque by _convert)
            draft = "RGB" if mode == "RGBA" else mode
            img.draft(draft, (max(1, min_w), max(1, min_h)))
        img.load()
        orientation = _orientation(img)  # after load: PNG may keep EXIF after the pixels
    except Image.DecompressionBombError as exc:
        raise BadFileError(f"image too large (decompression bomb guard): {exc}") from exc
    except _PIL_ERRORS as exc:
        raise BadFileError(f"truncated or corrupt {kind}: {exc}") from exc
    return _upright(_convert(img, mode), orientation)


def _convert(img: Image.Image, mode: str) -> Image.Image:
    """``img`` as 8-bit "RGB", "L" or "RGBA"; alpha dropped unless "RGBA" (then kept, or 255
    where the image has none), 16-bit and float scaled to 0..255."""
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit grey (PNG, TIFF; "I" holds the same data): 0..65535 -> 0..255, rounded.
        wide = np.asarray(img).astype(np.int64).clip(0, 65535)
        img = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8))
    elif img.mode == "F":
        # Float images come as 0..1 or 0..255: scale the former, clip the latter.
        values = np.nan_to_num(np.asarray(img, dtype=np.float32))
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        img = Image.fromarray(np.rint(values.clip(0, 255)).astype(np.uint8))
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # Pillow warns converting such palettes straight to RGB
    if img.mode == mode:
        return img
    try:
        return img.convert(mode)
    except ValueError:
        pass  # Pillow lacks some direct conversions (LAB -> L): go through RGB
    try:
        return img.convert("RGB").convert(mode)
    except ValueError as exc:
        raise BadFileError(f"unsupported image mode {img.mode!r}") from exc


# ---------------------------------------------------------------------------------------------
# sizing and output


def _fit(
    img: Image.Image | np.ndarray, image_size: tuple[int, int], fit: str, interpolation: str
) -> np.ndarray:
    """``img`` (an "RGB"/"L"/"RGBA" image or a uint8 ``[H, W, C]`` array) resized to ``image_size`` =
    (height, width) as ``fit`` says, with ``cv2.resize``; a uint8 ``[h, w, C]`` array."""
    array = np.asarray(img)
    if array.ndim == 2:
        array = array[:, :, None]
    out_h, out_w = image_size
    height, width = array.shape[:2]
    if fit == "stretch":
        if (height, width) == (out_h, out_w):
            return array
        return _resize(array, out_h, out_w, interpolation)
    if fit == "crop":
        # The largest centred region of the target's aspect, whole pixels in size. Its place
        # is rounded to whole pixels only where that shifts the output by at most a quarter
        # pixel; a small (DCT-scaled) decode is cut at sub-pixel precision, as Pillow's resize
        # box does. The resize copies, so a decoder's scratch buffer never leaves the call.
        aspect = out_w / out_h
        if width / height > aspect:  # too wide: cut the sides
            crop_w, crop_h = min(width, max(1, round(height * aspect))), height
        else:
            crop_w, crop_h = width, min(height, max(1, round(width / aspect)))
        if crop_w >= 2 * out_w or (width - crop_w) % 2 == (height - crop_h) % 2 == 0:
            top, left = (height - crop_h) // 2, (width - crop_w) // 2
            array = array[top : top + crop_h, left : left + crop_w]
        else:
            array = _sub_pixel(array, (crop_w, crop_h), ((width - 1) / 2, (height - 1) / 2))
        return _resize(array, out_h, out_w, interpolation)
    scale = min(out_w / width, out_h / height)
    new_w = min(out_w, max(1, round(width * scale)))
    new_h = min(out_h, max(1, round(height * scale)))
    if (height, width) != (new_h, new_w):
        array = _resize(array, new_h, new_w, interpolation)
    if (new_h, new_w) == (out_h, out_w):
        return array
    canvas = np.zeros((out_h, out_w, array.shape[2]), np.uint8)
    top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = array
    return canvas


def _sub_pixel(array: np.ndarray, size: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    """``cv2.getRectSubPix`` of a ``[H, W, C]`` array; it takes 1 or 3 channels, so RGBA goes
    as its colour and its alpha."""
    if array.shape[2] != 4:
        out = cv2.getRectSubPix(array, size, centre)
        return out if out.ndim == 3 else out[:, :, None]  # cv2 drops a single channel's axis
    colour = cv2.getRectSubPix(np.ascontiguousarray(array[:, :, :3]), size, centre)
    alpha = cv2.getRectSubPix(np.ascontiguousarray(array[:, :, 3]), size, centre)
    return np.dstack([colour, alpha])


def _resize(array: np.ndarray, out_h: int, out_w: int, interpolation: str) -> np.ndarray:
    """A new uint8 ``[out_h, out_w, C]`` array of ``array`` (uint8 ``[H, W, C]``), resized
    with the cv2 flag or Pillow filter ``interpolation`` maps to (see ``decode_image``)."""
    resample = _PIL_FILTERS.get(interpolation)
    if resample is not None:
        return _resize_pillow(array, out_h, out_w, resample)
    height, width = array.shape[:2]
    flag = _CV2_FLAGS[interpolation]
    if flag is None:
        grows = out_h > height or out_w > width
        if grows and (out_h < height or out_w < width):
            # one axis shrinks, the other grows: average the first, then interpolate the second
            array = _resize(array, min(out_h, height), min(out_w, width), "area")
        # area averaging antialiases a strong shrink; below 3x bilinear (2x2 taps) still reads
        # most source pixels, and OpenCV's area filter is 10x slower at fractional scales
        shrink = max(height / out_h, width / out_w)
        flag = cv2.INTER_AREA if not grows and shrink >= _AREA_FROM else cv2.INTER_LINEAR
    elif flag in (cv2.INTER_CUBIC, cv2.INTER_LANCZOS4):
        gap_h, gap_w = out_h * _REDUCING_GAP, out_w * _REDUCING_GAP
        if height > gap_h or width > gap_w:
            array = _resize(array, min(height, gap_h), min(width, gap_w), "area")
    out = cv2.resize(np.ascontiguousarray(array), (out_w, out_h), interpolation=flag)
    return out if out.ndim == 3 else out[:, :, None]


def _resize_pillow(
    array: np.ndarray, out_h: int, out_w: int, resample: Image.Resampling
) -> np.ndarray:
    """``array`` (uint8 ``[H, W, C]``) resized by Pillow's ``resample`` filter (which releases
    the GIL, as cv2 does). One channel at a time unless RGB: Pillow premultiplies RGBA by its
    alpha, and Keras (like the cv2 filters) resizes every channel independently."""
    if array.shape[2] == 3:
        return np.array(Image.fromarray(array).resize((out_w, out_h), resample))
    bands = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(array[:, :, c])).resize((out_w, out_h), resample)
        )
        for c in range(array.shape[2])
    ]
    return np.stack(bands, axis=-1)


def _to_array(img: Image.Image | np.ndarray, dtype: str) -> np.ndarray:
    """A writable, C-contiguous ``[H, W, C]`` array of ``img`` in ``dtype``."""
    target = np.float32 if dtype == "float32" else np.uint8
    if isinstance(img, np.ndarray):  # copied only if read-only, strided or another dtype
        flags = img.flags
        if img.dtype == target and flags.c_contiguous and flags.writeable:
            array = img  # the common case, without np.require's cost on tiny images
        else:
            array = np.require(img, dtype=target, requirements=["C", "W"])
    else:
        array = np.array(img, dtype=target)
    return array[:, :, np.newaxis] if array.ndim == 2 else array


def check_image_settings(
    image_size: int | tuple[int, int] | None,
    channels: int,
    fit: str,
    dtype: str,
    interpolation: str,
) -> tuple[int, int] | None:
    """``image_size`` as ``(height, width)`` (an int is a square, as Keras takes it), or None;
    a Keras-style ValueError naming the argument for any value outside the allowed ones.
    Streams call this once when they are built, so a wrong setting never reaches a file."""
    size = _image_size(image_size)
    if channels not in CHANNELS or isinstance(channels, bool):
        raise ValueError(
            f"channels must be 1, 3 or 4 (grey, RGB, RGBA). Received: channels={channels!r}"
        )
    check_choice("fit", fit, Fit)
    check_choice("dtype", dtype, ImageDtype)
    check_choice("interpolation", interpolation, Interpolation)
    return size


def _image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None

    def positive(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool) and bool(v > 0)

    if positive(image_size):
        return int(image_size), int(image_size)
    if (
        isinstance(image_size, list | tuple)
        and len(image_size) == 2
        and all(map(positive, image_size))
    ):
        return int(image_size[0]), int(image_size[1])
    raise ValueError(
        "image_size must be an int > 0 (a square), a (height, width) pair of ints > 0, or "
        f"None. Received: image_size={image_size!r}"
    )
