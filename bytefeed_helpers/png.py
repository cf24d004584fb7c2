"""Plain PNGs decoded with little Python: a chunk walk, zlib, and a compiled row unfilter.

For small files (thumbnails, 32x32 datasets) Pillow's PNG plugin spends more time in Python
(parsing chunks, setting up decoders, converting to NumPy) than in inflating the pixels, and
holds the GIL all the while, so decoding threads queue behind each other. Here the chunks are
walked with ``struct``, the IDAT stream is inflated by ``zlib`` (which releases the GIL) and the
PNG row filters (None, Sub, Up, Average, Paeth; PNG spec section 9) are undone by a numba kernel
that releases it too.

Only plain images take this route: 8-bit grey, RGB or RGBA, not interlaced, without palette,
transparency, EXIF or animation chunks. ``decode_plain`` returns None for anything else, and
for any damage, so the caller's full decoder handles it (and names the problem).
"""

from __future__ import annotations

import functools
import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type -> samples per pixel (8-bit only)
# Chunks that change what the pixels mean: their images take the full route.
_SPECIAL = frozenset({b"PLTE", b"tRNS", b"eXIf", b"acTL"})
_TEXT = frozenset({b"tEXt", b"zTXt", b"iTXt"})


@functools.cache
def _unfilter():
    import numba

    @numba.njit(nogil=True, cache=True, boundscheck=False)
    def unfilter(raw, height, stride, bpp, out):  # pragma: no cover - jitted
        # raw: filter byte + stride bytes per row; out: (height, stride) uint8. False: bad filter
        for y in range(height):
            base = y * (stride + 1)
            kind = raw[base]
            row = raw[base + 1 : base + 1 + stride]
            cur = out[y]
            if kind == 0:
                for x in range(stride):
                    cur[x] = row[x]
            elif kind == 1:
                for x in range(stride):
                    left = cur[x - bpp] if x >= bpp else 0
                    cur[x] = (row[x] + left) & 255
            elif kind == 2:
                for x in range(stride):
                    up = out[y - 1, x] if y > 0 else 0
                    cur[x] = (row[x] + up) & 255
            elif kind == 3:
                for x in range(stride):
                    left = np.int32(cur[x - bpp]) if x >= bpp else 0
                    up = np.int32(out[y - 1, x]) if y > 0 else 0
                    cur[x] = (row[x] + ((left + up) >> 1)) & 255
            elif kind == 4:
                for x in range(stride):
                    a = np.int32(cur[x - bpp]) if x >= bpp else 0
                    b = np.int32(out[y - 1, x]) if y > 0 else 0
                    c = np.int32(out[y - 1, x - bpp]) if (y > 0 and x >= bpp) else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                    cur[x] = (row[x] + pred) & 255
            else:
                return False
        return True

    return unfilter


def decode_plain(data: bytes | bytearray | memoryview) -> np.ndarray | None:
    """A plain PNG's pixels as uint8 ``[H, W, C]`` (C = 1, 3 or 4); None for any other PNG.

    None also for damaged files (bad chunk layout, truncated or corrupt zlib data, unknown
    filter types): the caller's full decoder then reports the problem.
    """
    if bytes(data[:8]) != SIGNATURE:
        return None
    try:
        header, idat = _walk(memoryview(data))
    except (struct.error, ValueError):
        return None
    if header is None or not idat:
        return None
    width, height, depth, colour, _, _, interlace = header
    channels = _CHANNELS.get(colour)
    if depth != 8 or channels is None or interlace or width <= 0 or height <= 0:
        return None
    stride = width * channels
    try:
        raw = zlib.decompressobj().decompress(b"".join(idat), height * (stride + 1))
    except zlib.error:
        return None
    if len(raw) != height * (stride + 1):
        return None
    out = np.empty((height, stride), np.uint8)
    if not _unfilter()(np.frombuffer(raw, np.uint8), height, stride, channels, out):
        return None
    return out.reshape(height, width, channels)


def size(data: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """``(width, height)`` from a PNG's IHDR, or None when it cannot be read."""
    try:
        width, height = struct.unpack_from(">II", data, 16)
    except struct.error:
        return None
    return width, height


def _walk(view: memoryview) -> tuple[tuple | None, list[memoryview]]:
    """IHDR's fields and the IDAT chunks' data; ValueError for chunks that need Pillow."""
    pos, header, idat = 8, None, []
    while pos + 8 <= len(view):
        length, kind = struct.unpack_from(">I4s", view, pos)
        body = pos + 8
        if body + length + 4 > len(view):
            raise ValueError("chunk runs past the end of the file")
        if kind == b"IHDR":
            header = struct.unpack_from(">IIBBBBB", view, body)
        elif kind == b"IDAT":
            idat.append(view[body : body + length])
        elif kind == b"IEND":
            break
        elif kind in _SPECIAL or (
            kind in _TEXT and bytes(view[body : body + 21]) == b"Raw profile type exif"
        ):
            raise ValueError(f"{kind!r} chunk")
        pos = body + length + 4
    return header, idat
