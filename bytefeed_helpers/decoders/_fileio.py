"""Opening and reading files for the decoders: checked first, then read in few system calls.

Every path a decoder opens goes through ``open_regular``: the file is opened with
``O_NONBLOCK`` (so a FIFO never blocks the open), ``fstat`` is asked about the open
descriptor (not the path, which may change in between), and anything but a regular file (a
FIFO, a socket, a character or block device such as ``/dev/zero`` behind a link named
``.jpg``, a directory) is refused with ``BadFileError("not a regular file (fifo)")``. The
size ``fstat`` gives is checked against the decoder's limit (``max_file_mb``) before a byte
is read, and ``read_file`` hands the caller's ``head_check`` the first bytes before it reads
the rest, so a 2 GiB file of zeros named ``.jpg`` costs one small read. A special file is
opened (without blocking) but never read: a writer waiting on a FIFO sees a reader come and
go, which opening to look at it first cannot avoid short of a separate ``stat`` per file.

Reading: ``open(path, "rb").read()`` makes six or more system calls (open, fstat, ioctl,
lseek, reads, close), and Python lets go of the GIL around each. Decoding threads then hand
the GIL back and forth once per call: on small files (a 32x32 PNG) two threads read *slower*
than one. ``read_file`` opens, fstats, clears ``O_NONBLOCK`` and reads a file of the size
fstat gave in one ``read`` into one buffer of that size (no joins, no copies), then closes:
five calls, as fast as the unchecked four-call read it replaced (1,000 files of 300 bytes:
~310k files/s on one thread, ~290k on two; a ``stat`` first would cost a quarter of that).

Size limits are in MB of 2**20 bytes. The decoders' defaults (``DEFAULT_MAX_FILE_MB``) are
generous, meant to stop a wrong file, not a big one:

- image, 256 MB: an uncompressed 8-bit RGB image at Pillow's decompression-bomb limit
  (``PIL.Image.MAX_IMAGE_PIXELS`` = 89.5 M pixels x 3 bytes). More pixels are refused by
  that guard anyway, so only uncompressed 16-bit or alpha images near the pixel limit need
  a larger ``max_file_mb``.
- audio, 2048 MB: the largest WAV most tools write (RIFF sizes read as signed 32-bit), about
  3.4 hours of 44.1 kHz stereo 16-bit PCM. Clips are read frame by frame, so big files cost
  little; the limit bounds ``duration=None``, which decodes the whole file.
- text, 64 MB: a whole document is decoded to ``str`` and tokenized at once; a long novel is
  about 1 MB, so 64 MB is a file of tens of millions of words, or not a document at all.
"""

from __future__ import annotations

import contextlib
import errno
import math
import numbers
import os
import stat
from collections.abc import Callable, Iterator
from typing import IO, Any

from .. import stages
from ..errors import BadFileError

try:  # POSIX: clears O_NONBLOCK in one call once a file is known to be regular
    import fcntl
except ImportError:  # Windows: no FIFOs to open, and no O_NONBLOCK either
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_MAX_FILE_MB",
    "HEAD_SIZE",
    "MB",
    "DirectoryError",
    "NotRegularFileError",
    "check_max_file_mb",
    "check_text_head",
    "file_too_large",
    "open_checked",
    "open_fd",
    "open_regular",
    "read_at",
    "read_bytes",
    "read_file",
]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

#: Bytes in one MB of ``max_file_mb``.
MB = 1 << 20
#: Each decoder's default ``max_file_mb`` (see the module's docstring for why).
DEFAULT_MAX_FILE_MB: dict[str, float] = {"image": 256, "audio": 2048, "text": 64}

# Files up to this size are read in one call before anything is checked; larger ones show
# their first HEAD_SIZE bytes to the caller's head_check before the rest is read.
_FIRST_READ = 1 << 16
HEAD_SIZE = 4096
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_FLAGS = (
    os.O_RDONLY
    | _NONBLOCK  # a FIFO opens at once instead of waiting for a writer
    | getattr(os, "O_NOCTTY", 0)  # a terminal device never becomes our controlling one
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


class NotRegularFileError(BadFileError):
    """A path that names a FIFO, socket, device or directory: refused without a byte read."""


class DirectoryError(NotRegularFileError, IsADirectoryError):
    """A directory where a file was expected. Also an ``IsADirectoryError``, as ``open``
    raises, so code that caught that before still does."""

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        super().__init__(reason, path)
        self.errno, self.strerror, self.filename = errno.EISDIR, reason, self.path


def check_max_file_mb(max_file_mb: Any, name: str = "max_file_mb") -> int | None:
    """The byte limit ``max_file_mb`` MB stands for (None: no limit); a Keras-style
    ValueError unless it is a positive number or None."""
    if max_file_mb is None:
        return None
    ok = (
        isinstance(max_file_mb, numbers.Real)  # numpy's numbers too
        and not isinstance(max_file_mb, bool)
        and float(max_file_mb) > 0
        and not math.isnan(max_file_mb)
    )
    if not ok:
        raise ValueError(
            f"{name} must be a number of MB > 0, or None for no limit. "
            f"Received: {name}={max_file_mb!r}"
        )
    return None if math.isinf(max_file_mb) else round(max_file_mb * MB)


def file_too_large(size: int | None, max_bytes: int) -> BadFileError:
    """The error for a file of ``size`` bytes (None: unknown) over ``max_bytes``."""
    mb_limit = max_bytes / MB  # shown as given ("256", "0.001"), not as rounded to bytes
    shown = f"{mb_limit:.4f}".rstrip("0").rstrip(".") if mb_limit >= 1 else f"{mb_limit:.3g}"
    limit = f"{shown} MB (max_file_mb)"
    if size is None:  # a stream read up to the limit: its full size is unknown
        return BadFileError(f"file too large: over the limit of {limit}")
    mb = f"{size / MB:.1f}" if size >= MB else f"{size / MB:.3g}"
    return BadFileError(f"file too large: {mb} MB, over the limit of {limit}")


def _not_regular(mode: int, path: str | os.PathLike) -> NotRegularFileError:
    for is_kind, kind in _KINDS:
        if is_kind(mode):
            cls = DirectoryError if kind == "directory" else NotRegularFileError
            return cls(f"not a regular file ({kind})", path)
    return NotRegularFileError("not a regular file (unknown kind)", path)


def _mode_of(path: str | os.PathLike) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def open_regular(path: str | os.PathLike, max_bytes: int | None = None) -> tuple[int, int]:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes`` bytes.

    Returns ``(fd, size)``: a blocking, close-on-exec descriptor the caller must close (or
    hand to something that does), and the size ``fstat`` reports. Nothing is read.

    Raises:
        NotRegularFileError: a FIFO, socket, device or directory (``DirectoryError``, also an
            ``IsADirectoryError``), without blocking and without reading from it.
        BadFileError: larger than ``max_bytes`` ("file too large: ...").
        OSError: what ``open`` raises otherwise (FileNotFoundError, PermissionError, ...).
    """
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        # Linux refuses to open a socket (ENXIO), as it does a device without a driver
        mode = _mode_of(path) if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP) else None
        if mode is not None and not stat.S_ISREG(mode):
            raise _not_regular(mode, path) from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(info.st_mode, path)
        if max_bytes is not None and info.st_size > max_bytes:
            raise file_too_large(info.st_size, max_bytes)
        if _NONBLOCK and fcntl is not None:
            # back to blocking reads (F_SETFL changes only the status flags; we set no other)
            fcntl.fcntl(fd, fcntl.F_SETFL, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


@contextlib.contextmanager
def open_checked(
    path: str | os.PathLike, max_bytes: int | None = None
) -> Iterator[tuple[int, int]]:
    """``open_regular`` as a context manager: ``(fd, size)``, the descriptor closed afterwards."""
    fd, size = open_regular(path, max_bytes)
    try:
        yield fd, size
    finally:
        os.close(fd)


@contextlib.contextmanager
def open_fd(path: str | os.PathLike, max_bytes: int | None = None) -> Iterator[int]:
    """A read-only descriptor on the regular file ``path``, closed afterwards (errors as
    ``open_regular``'s)."""
    with open_checked(path, max_bytes) as (fd, _):
        yield fd


def read_at(fd: int, size: int, offset: int) -> bytes:
    """``size`` bytes from ``offset`` of ``fd``, fewer only where the file ends (short reads
    before the end, as some network file systems give, are read on from)."""
    started = stages.start()
    data = _pread(fd, size, offset)
    stages.done("read", started, nbytes=len(data))
    return data


def _pread(fd: int, size: int, offset: int) -> bytes:
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
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_file(
    path: str | os.PathLike,
    max_bytes: int | None = None,
    head_check: Callable[[bytes], object] | None = None,
) -> bytes | bytearray:
    """All bytes of the regular file at ``path``, checked before they are read.

    Args:
        path: the file.
        max_bytes: refuse files larger than this (None: no limit), by ``fstat`` before reading,
            and while reading files whose size ``fstat`` does not know (``/proc``-like).
        head_check: called with the file's first ``HEAD_SIZE`` bytes (fewer if it is shorter)
            before more than 64 KiB of it is read; it raises to refuse the file.

    Returns ``bytes`` read in one call into one buffer of the size ``fstat`` gave (no joins,
    no copies); a ``bytearray``, also filled in place, when the file system returned a short
    read, the file is over 2 GiB (more than one ``read`` returns) or ``fstat`` gave size 0.

    Raises:
        NotRegularFileError, BadFileError, OSError: as ``open_regular``; and what
        ``head_check`` raises.
    """
    started = stages.start()
    fd, size = open_regular(path, max_bytes)
    try:  # not open_checked: its generator costs ~1 us, a quarter of a small file's read
        if head_check is not None and size > _FIRST_READ:  # look before reading the lot
            head_check(_pread(fd, HEAD_SIZE, 0))
        data = _read_all(fd, size, max_bytes)
    finally:
        os.close(fd)
    if head_check is not None and size <= _FIRST_READ:
        head_check(bytes(data[:HEAD_SIZE]))
    stages.done("read", started, nbytes=len(data))
    return data


# Linux returns at most this much from one read() (2 GiB less a page).
_MAX_READ = 0x7FFFF000


def _read_all(fd: int, size: int, max_bytes: int | None) -> bytes | bytearray:
    """All of ``fd`` from its start, expected to be ``size`` bytes long (0: unknown)."""
    first = b""
    if 0 < size <= _MAX_READ:
        first = os.read(fd, size)
        if len(first) == size or not first:  # as fstat said (a file growing meanwhile is
            return first  # read as it was when opened), or empty by now
    # A short read (some network or FUSE file systems stop early), a file too big for one
    # read, or one whose size fstat does not know: fill one buffer of the known size in place.
    data = bytearray(size)
    got = len(first)
    data[:got] = first
    del first
    with memoryview(data) as view:
        while got < size and (n := _read_into(fd, view[got : got + _MAX_READ])):
            got += n
    del data[got:]  # the file shrank
    if size == 0:  # /proc-like: read until read returns nothing
        while chunk := os.read(fd, _FIRST_READ):
            data += chunk
            if max_bytes is not None and len(data) > max_bytes:
                raise file_too_large(None, max_bytes)
    return data if data else b""


def _read_into(fd: int, view: memoryview) -> int:
    if hasattr(os, "readv"):
        return os.readv(fd, [view])
    chunk = os.read(fd, len(view))  # Windows: no readv
    view[: len(chunk)] = chunk
    return len(chunk)


def read_bytes(
    src: Source,
    max_bytes: int | None = None,
    head_check: Callable[[bytes], object] | None = None,
) -> bytes | bytearray:
    """All bytes of ``src``, no larger than ``max_bytes`` (None: any size).

    Paths are read with ``read_file`` (checked before reading); bytes and bytearrays are
    returned as they are, memoryviews copied, binary file objects read from where they stand
    (at most ``max_bytes + 1`` bytes: a larger stream is refused without reading it all).
    ``head_check`` sees the first ``HEAD_SIZE`` bytes of every kind of source.
    """
    if isinstance(src, str | os.PathLike):
        return read_file(src, max_bytes, head_check)
    if isinstance(src, bytes | bytearray):
        data = src
    elif isinstance(src, memoryview):
        data = src.tobytes()
    else:
        data = src.read() if max_bytes is None else src.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:
            raise file_too_large(None, max_bytes)
    if max_bytes is not None and len(data) > max_bytes:
        raise file_too_large(len(data), max_bytes)
    if head_check is not None:
        head_check(bytes(data[:HEAD_SIZE]))
    return data


def check_text_head(head: bytes) -> None:
    """BadFileError for a head that no text holds: eight NUL bytes in a row are a NUL
    character in UTF-8, UTF-16 and UTF-32 alike (each covers a whole aligned code unit),
    which no text decoding lets through; a sparse or binary file shows them at once."""
    if b"\x00" * 8 in head:
        raise BadFileError("holds NUL bytes: not text")
