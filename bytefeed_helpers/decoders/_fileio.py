"""Reading files whole with the fewest system calls, for the decoders.

``open(path, "rb").read()`` makes six or more system calls (open, fstat, ioctl, lseek, reads,
close), and Python lets go of the GIL around each. Decoding threads then hand the GIL back
and forth once per call: on small files (a 32x32 PNG) two threads read *slower* than one.
``os.open``, ``os.read`` until it returns nothing, and ``os.close`` read such a file in four
calls, and threads scale again (1,000 small PNGs, 2 threads: 24k -> 146k files/s with three
calls; the fourth, which makes sure of the end, is cheap next to that).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO

from .. import stages

__all__ = ["open_fd", "read_at", "read_bytes", "read_file"]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

# Most small files fit one read of this size; larger ones take an fstat to size the next.
_FIRST_READ = 1 << 16
_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


@contextlib.contextmanager
def open_fd(path: str | os.PathLike) -> Iterator[int]:
    """A read-only file descriptor on ``path``, closed afterwards (errors as ``open``'s)."""
    fd = os.open(path, _FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def read_at(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes from ``offset`` of ``fd``, fewer only where the file ends (short reads
    before the end, as pipes and some network file systems give, are read on from)."""
    started = stages.start()
    parts, got = [], 0
    while got < size:
        if hasattr(os, "pread"):
            chunk = os.pread(fd, size - got, offset + got)
        else:  # Windows: no pread
            os.lseek(fd, offset + got, os.SEEK_SET)
            chunk = os.read(fd, size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    stages.done("read", started, nbytes=got)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_file(path: str | os.PathLike) -> bytes:
    """All bytes of the file at ``path``.

    Raises what ``open`` raises: FileNotFoundError, PermissionError, IsADirectoryError.
    """
    started = stages.start()
    with open_fd(path) as fd:
        first = os.read(fd, _FIRST_READ)
        if len(first) < _FIRST_READ:
            # the end of a file on a local disk, but pipes and some network or FUSE file
            # systems return short reads before it: read on until read returns nothing
            want = _FIRST_READ
        else:
            want = max(os.fstat(fd).st_size - len(first), 0) + 1  # + 1: the end in one call
        parts = [first]
        while first and (chunk := os.read(fd, want)):
            parts.append(chunk)
            want = max(want, _FIRST_READ)
        data = first if len(parts) == 1 else b"".join(parts)
    stages.done("read", started, nbytes=len(data))
    return data


def read_bytes(src: Source) -> bytes | bytearray:
    """All bytes of ``src``: bytes and bytearrays as they are, memoryviews copied, binary
    file objects read from where they stand, paths read whole with ``read_file``."""
    if isinstance(src, bytes | bytearray):
        return src
    if isinstance(src, memoryview):
        return src.tobytes()
    if hasattr(src, "read"):
        return src.read()
    return read_file(src)
