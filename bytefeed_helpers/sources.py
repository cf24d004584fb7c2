"""Where samples' bytes come from: the ``Source`` protocol, loose files, and ``as_source``.

A source has one row per sample: ``len(source)`` rows, ``labels`` ``int32 [N]`` (``-1`` for
unlabelled rows), ``class_names``, ``path(row)`` for error reports, ``open(row)`` for the
decoder and ``fingerprint()`` for resume states and caches.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO, Protocol, runtime_checkable

import numpy as np

from .manifest import Manifest, read_manifest
from .packed import is_packed, read_packed


@runtime_checkable
class Source(Protocol):
    """Where samples' bytes come from: loose files of a manifest, or packed records."""

    labels: np.ndarray
    class_names: list[str]

    def __len__(self) -> int: ...
    def path(self, row: int) -> str: ...
    def open(self, row: int) -> str | BinaryIO: ...
    def fingerprint(self) -> str: ...


class FileSource:
    """Rows of a ``Manifest``: decoders get each file's path and open it themselves.

    ``path(row)`` decodes that one path from the manifest's column (a ``StringColumn``):
    ten million rows cost their bytes, not ten million ``str`` objects. ``fingerprint()`` is
    the manifest's, computed once.
    """

    def __init__(self, manifest: Any):
        self.manifest = manifest
        self.labels = manifest.labels
        self.class_names = manifest.class_names
        self._paths = manifest.paths

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, row: int) -> str:
        return self._paths[row]

    def open(self, row: int) -> str:
        return self._paths[row]

    def fingerprint(self) -> str:
        return self.manifest.fingerprint()


def as_source(manifest: Any, kind: str | None = None) -> Source:
    """A ``Source`` from a ``Manifest``, a path to a manifest file, or a source as it is."""
    if isinstance(manifest, (str, os.PathLike)):
        if is_packed(manifest):  # a packed directory reads like a manifest
            return read_packed(manifest)
        manifest = read_manifest(manifest, kind=kind)
    if isinstance(manifest, Manifest):
        if len(manifest) == 0:
            raise ValueError("the manifest is empty: no files to stream")
        return FileSource(manifest)
    if isinstance(manifest, Source):
        return manifest
    raise TypeError(f"expected a Manifest, a manifest path or a source, not {type(manifest)}")
