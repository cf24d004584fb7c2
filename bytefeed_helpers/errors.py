"""Errors and skip records shared by every decoder and stream."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass


class BadFileError(ValueError):
    """A file that cannot become a sample: missing, empty, truncated, wrong format, too large.

    ``reason`` is written for a person ("truncated JPEG data", "not UTF-8 or UTF-16 text"),
    ``path`` names the file when the raiser knows it (decoders handed bytes do not).
    """

    def __init__(self, reason: str, path: str | os.PathLike | None = None):
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        super().__init__(reason)

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
    text = str(exc).strip().splitlines()
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


class BytefeedWarning(UserWarning):
    """Summaries of skipped files, one per epoch."""
