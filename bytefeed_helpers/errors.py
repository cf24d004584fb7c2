"""Errors and skip records shared by every decoder and stream."""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

# Object reprs carry memory addresses and descriptor numbers that change from run to run
# ("cannot identify image file <_io.BytesIO object at 0x7f...>", "<_io.BufferedReader
# name=4>", cffi's "<cdata 'SNDFILE *' 0x55...>"): reasons drop the whole repr, or a stray
# " at 0x..." left elsewhere. A reason names no file: the record beside it does.
_UNSTABLE_REPR = re.compile(r"\s*<(?:_io\.\w+ [^<>]*|[^<>]*\b0x[0-9a-fA-F]+[^<>]*)>")
_AT_ADDRESS = re.compile(r"\s+at 0x[0-9a-fA-F]+\b")


def stable_reason(text: str) -> str:
    """``text`` without object addresses, so a file's reason reads the same in every run."""
    if "0x" not in text and "<_io." not in text:
        return text
    return _AT_ADDRESS.sub("", _UNSTABLE_REPR.sub("", text)).strip()


class BadFileError(ValueError):
    """A file that cannot become a sample: missing, empty, truncated, wrong format, too large.

    ``reason`` is written for a person ("truncated JPEG data", "not UTF-8 or UTF-16 text"),
    ``path`` names the file when the raiser knows it (decoders handed bytes do not).
    """

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        self.reason = stable_reason(reason)
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __reduce__(self) -> tuple:  # keeps the path when raised in a worker process
        return (type(self), (self.reason, self.path))

    def with_path(self, path: str | os.PathLike) -> BadFileError:
        """The same error, naming ``path``."""
        return BadFileError(self.reason, path)


def reason_of(exc: BaseException) -> str:
    """A one-line, human-readable reason for ``exc``, for error reports."""
    if isinstance(exc, BadFileError):
        return exc.reason
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    text = stable_reason(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class SkippedFile:
    """One file a stream skipped: which, why, and in which epoch (0-based)."""

    path: str
    reason: str
    epoch: int = 0

    def __iter__(self):  # lets people write `for path, reason, epoch in stream.errors`
        return iter((self.path, self.reason, self.epoch))


def write_error_report(errors: Iterable[SkippedFile], path: str | os.PathLike) -> int:
    """Write ``errors`` as a CSV (``path,reason,epoch``) for a person to fix the folder.

    Returns the number of rows written.
    """
    rows = list(errors)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason", "epoch"])
        writer.writerows((e.path, e.reason, e.epoch) for e in rows)
    return len(rows)


class TooManyBadFiles(RuntimeError):
    """More of an epoch's files failed than the stream's ``max_error_rate`` allows."""


class BytefeedWarning(UserWarning):
    """Summaries of skipped files, one per epoch."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(os.path.join(d, "") for d in dirs)


def warn(message: str, category: type[Warning] = BytefeedWarning) -> None:
    """``warnings.warn(message, category)`` pointed at the caller's own line: the first frame
    outside this package and outside the installed libraries (Keras's ``fit`` loop, IPython),
    so a notebook shows the cell line that ran the epoch, not the kit's internals. Falls back
    to the first frame outside this package (a warning raised on a worker thread).

    Python 3.12's ``skip_file_prefixes`` does this; 3.11 counts the frames itself.
    """
    import sys
    import types

    libraries = _library_dirs()
    frame: types.FrameType | None = sys._getframe(1)
    level, outside, user = 1, None, None
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(_PACKAGE_DIR):
            outside = outside or level
            if not name.startswith(libraries) and not frame.f_code.co_filename.startswith(
                "<frozen"
            ):
                user = level
                break
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=1 + (user or outside or 1))
