"""Manifests: the list of files (and their labels) that a stream reads.

A manifest is built once from a folder tree (``build_manifest``) or read from a CSV, a plain
list of paths or a Parquet file (``read_manifest``). Streams keep it in memory and never
re-read it per epoch. It holds its paths and extra columns as Arrow arrays
(``StringColumn``), never as one Python object per row: ten million rows read in seconds,
take their bytes in memory, and hash their fingerprint once.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import hashlib
import io
import json
import math
import numbers
import operator
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from tqdm.auto import tqdm

from .errors import SkippedFile, reason_of

#: File extensions (lower case, with the dot) that each kind of stream reads by default.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image": (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"),
    "audio": (".wav", ".flac", ".ogg", ".oga", ".mp3"),
    "text": (".txt", ".text", ".md"),
}
KINDS = tuple(EXTENSIONS)


class ManifestError(ValueError):
    """A manifest file that cannot be read; the message names the file and the line."""


def check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, not {kind!r}")


# --- columns of strings -----------------------------------------------------------------------
_BIN = pa.large_binary()
_STR = pa.large_string()
_EMPTY = pa.scalar(b"", _BIN)


class StringColumn(Sequence[str]):
    """``N`` strings in Arrow ``large_binary`` arrays, never as ``N`` Python objects.

    What ``Manifest.paths`` and ``Manifest.columns`` hold: ten million paths take their bytes
    plus 8 bytes each. Reads like a read-only list of ``str``: ``col[i]`` (an ``int`` or a
    NumPy integer) decodes one value, ``col[a:b]`` is a column over the same memory, and
    ``len``, iteration, ``in``, ``index`` and ``==`` (against a list, a tuple or a column,
    value by value) work as on a list; ``col + list`` gives a list. Values are UTF-8;
    a file name that is not (possible on POSIX) is kept as its raw bytes and reads back as
    the ``str`` that ``os.fsdecode`` gives (``surrogateescape``), so nothing is lost.
    ``tolist()`` makes the Python list; ``to_arrow()`` the Arrow array (``large_string``,
    or ``large_binary`` when some value is not UTF-8).

    Build one from an iterable of ``str`` / ``os.PathLike`` / ``bytes`` or from an Arrow
    string or binary array, chunked or not (missing values become ``""``). A ``str`` alone
    is refused (``TypeError``): it is one path, not a sequence of them.

    Inside, the values are the chunks as read (no copy into one buffer), after an optional
    prefix shared by every value: ``read_manifest`` keeps the manifest's folder once, not
    ten million times, when every path in the file is relative.
    """

    __slots__ = ("__weakref__", "_chunks", "_head", "_parts", "_prefix", "_starts")

    def __init__(self, values: Iterable[Any] | pa.Array | pa.ChunkedArray = ()):
        if isinstance(values, StringColumn):
            self._set(values._chunks, values._prefix)
        else:
            self._set(_binary_chunks(values), b"")

    @classmethod
    def _wrap(cls, chunks: pa.ChunkedArray, prefix: bytes = b"") -> StringColumn:
        """A column over ``chunks`` (``large_binary``, no nulls) after ``prefix``, no copy."""
        column = cls.__new__(cls)
        column._set(chunks, prefix)
        return column

    def _set(self, chunks: pa.ChunkedArray, prefix: bytes) -> None:
        self._chunks = chunks
        self._prefix = prefix
        self._head = prefix.decode("utf-8", "surrogateescape")
        self._parts: list[tuple[np.ndarray, memoryview]] = []
        self._starts: list[int] = []
        rows = 0
        for chunk in chunks.chunks:
            if len(chunk):
                self._parts.append((_offsets(chunk), memoryview(_used_buffer(chunk))))
                self._starts.append(rows)
                rows += len(chunk)
        self._starts.append(rows)  # the end: len(self)

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return StringColumn._wrap(
                    self._chunks.slice(start, max(0, stop - start)), self._prefix
                )
            return self.take(np.arange(start, stop, step))
        i = operator.index(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"row {index} is out of range for {n} rows")
        k = 0 if len(self._parts) == 1 else bisect.bisect_right(self._starts, i) - 1
        o, data = self._parts[k]
        j = i - self._starts[k]
        return self._head + str(data[o[j] : o[j + 1]], "utf-8", "surrogateescape")

    def __iter__(self) -> Iterator[str]:
        head = self._head
        for o, data in self._parts:
            n = len(o) - 1
            for a in range(0, n, 4096):
                b = min(n, a + 4096)
                block = bytes(data[int(o[a]) : int(o[b])])
                ends = (o[a : b + 1] - o[a]).tolist()
                for i in range(b - a):
                    yield head + block[ends[i] : ends[i + 1]].decode("utf-8", "surrogateescape")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StringColumn):
            if len(self) != len(other):
                return False
            if self._prefix == other._prefix:
                return bool(self._chunks.equals(other._chunks))
            return all(
                self._block(a, _BLOCK_ROWS).equals(other._block(a, _BLOCK_ROWS))
                for a in range(0, len(self), _BLOCK_ROWS)
            )
        if isinstance(other, (list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to lists, which are unhashable

    def __add__(self, other: object) -> list[str]:
        if isinstance(other, (StringColumn, list, tuple)):
            return [*self, *other]
        return NotImplemented

    def __radd__(self, other: object) -> list[str]:
        if isinstance(other, (list, tuple)):
            return [*other, *self]
        return NotImplemented

    def __repr__(self) -> str:
        head = [self[i] for i in range(min(3, len(self)))]
        more = ", ..." if len(self) > 3 else ""
        return f"StringColumn({len(self)} strings: {repr(head)[:-1]}{more}])"

    def __reduce__(self) -> tuple[Any, ...]:
        return (StringColumn._wrap, (self._chunks, self._prefix))

    def __copy__(self) -> StringColumn:
        return self  # immutable

    def __deepcopy__(self, memo: dict) -> StringColumn:
        return self

    def take(self, indices: Sequence[int] | np.ndarray) -> StringColumn:
        """The values at ``indices`` (negative ones count from the end), as a new column."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        idx = np.where(idx < 0, idx + n, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"an index is out of range for {n} rows")
        taken = self._chunks.take(pa.array(idx)) if n else self._chunks
        return StringColumn._wrap(_chunked(taken), self._prefix)

    def tolist(self) -> list[str]:
        """Every value as a Python ``str`` (``N`` objects: for small columns)."""
        return list(self)

    def to_arrow(self) -> pa.Array:
        """The values as one Arrow array: ``large_string``, or ``large_binary`` if a value is
        not UTF-8 (a copy when the column has a shared prefix or several chunks)."""
        blocks = [self._block(a, _BLOCK_ROWS) for a in range(0, len(self), _BLOCK_ROWS)]
        array = pa.concat_arrays(blocks) if blocks else pa.array([], _BIN)
        try:
            return array.cast(_STR)
        except pa.ArrowInvalid:
            return array

    def _block(self, start: int, rows: int) -> pa.Array:
        """Values ``start`` to ``start + rows`` (whole: prefix joined) as one array."""
        part = self._chunks.slice(start, rows)
        block = part.combine_chunks() if part.num_chunks != 1 else part.chunk(0)
        if self._prefix:
            block = pc.binary_join_element_wise(pa.scalar(self._prefix, _BIN), block, _EMPTY)
        return block

    @property
    def nbytes(self) -> int:
        """Bytes of memory the column holds (values plus offsets)."""
        return int(self._chunks.nbytes) + len(self._prefix)


def _chunked(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        return values
    return pa.chunked_array([values], values.type)


def _binary_chunks(values: Any) -> pa.ChunkedArray:
    """``values`` as ``large_binary`` chunks without nulls (see ``StringColumn``)."""
    if isinstance(values, StringColumn):
        if values._prefix:
            blocks = [values._block(a, _BLOCK_ROWS) for a in range(0, len(values), _BLOCK_ROWS)]
            return pa.chunked_array(blocks, _BIN)
        return values._chunks
    if isinstance(values, pa.ChunkedArray):
        return pa.chunked_array([_binary_array(c) for c in values.chunks], _BIN)
    if isinstance(values, pa.Array):
        return _chunked(_binary_array(values))
    if isinstance(values, (str, bytes)):
        raise TypeError(f"expected a sequence of paths, not one {type(values).__name__}")
    if isinstance(values, np.ndarray):
        values = values.tolist()
    texts = [v if type(v) is str else _path_text(v) for v in values]
    try:
        array = pa.array(texts, _STR).view(_BIN)
    except (UnicodeEncodeError, pa.ArrowException):  # a file name that is not UTF-8
        array = pa.array([t.encode("utf-8", "surrogateescape") for t in texts], _BIN)
    return _chunked(array)


def _binary_array(values: Any) -> pa.Array:
    """One Arrow array (or a column's values) as one ``large_binary`` array without nulls."""
    if isinstance(values, StringColumn):
        return values._block(0, len(values))
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not isinstance(values, pa.Array):
        return _binary_chunks(values).combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        values = values.cast(_STR).view(_BIN)
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        values = values.cast(_BIN)
    else:
        raise TypeError(f"a column of strings needs a string array, not {kind}")
    return pc.fill_null(values, _EMPTY) if values.null_count else values


def _path_text(value: Any) -> str:
    text = os.fspath(value)  # TypeError for anything that is not a path
    return os.fsdecode(text) if isinstance(text, bytes) else text


def _text_column(values: Any) -> StringColumn:
    """An extra column as strings (``Manifest.columns``): arrays kept, other values ``str``."""
    if isinstance(values, (StringColumn, pa.Array, pa.ChunkedArray)):
        return StringColumn(values)
    return StringColumn([v if isinstance(v, str) else str(v) for v in values])


def _offsets(array: pa.Array) -> np.ndarray:
    """``int64 [N + 1]`` offsets of a ``large_binary``/``large_string`` array into its data."""
    buf = array.buffers()[1]
    if buf is None:
        return np.zeros(1, np.int64)
    return np.frombuffer(buf, np.int64, len(array) + 1, array.offset * 8)


def _used_buffer(array: pa.Array) -> Any:
    """The data buffer of a binary array (``b""`` when it has none)."""
    buf = array.buffers()[2]
    return b"" if buf is None else buf


def _used_bytes(array: pa.Array) -> Any:
    """The bytes of a binary array's values, end to end (an Arrow buffer, no copy)."""
    offsets = _offsets(array)
    buf = array.buffers()[2]
    if buf is None:
        return b""
    return buf.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _data(array: pa.Array) -> np.ndarray:
    buf = array.buffers()[2]
    return np.frombuffer(b"" if buf is None else buf, np.uint8)


class Manifest:
    """Files and their labels, in a fixed order.

    Attributes:
        paths: a ``StringColumn`` of file paths (``paths[row]`` is a ``str``; reads like a
            read-only list), absolute unless built from relative input.
        labels: ``int32 [N]`` label ids into ``class_names``; ``-1`` marks an unlabelled row.
        class_names: sorted class names (the order ``keras.utils.image_dataset_from_directory``
            uses, so label ids match Keras's).
        columns: any extra CSV columns, ``name -> StringColumn`` aligned with ``paths``.
        kind: ``"image"``, ``"audio"``, ``"text"`` or None when unknown.
        skipped: what ``build_manifest`` found but left out (broken links, link loops, links
            it did not follow, files that are not regular files, unreadable folders), one
            ``SkippedFile(path, reason)`` each; empty for manifests made any other way and
            not carried over by ``subset`` or ``split``.

    A manifest is a value: its columns cannot change, and ``labels`` must not be edited in
    place (make a new manifest, e.g. with ``subset``), which is what lets ``fingerprint()``
    be computed once.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike] | StringColumn | pa.Array | pa.ChunkedArray,
        labels: Sequence[int] | np.ndarray | None = None,
        class_names: Sequence[str] = (),
        *,
        columns: Mapping[str, Sequence[str] | StringColumn | pa.Array] | None = None,
        kind: str | None = None,
    ):
        check_kind(kind)
        self.paths: StringColumn = paths if isinstance(paths, StringColumn) else StringColumn(paths)
        n = len(self.paths)
        self.labels = (
            np.full(n, -1, np.int32) if labels is None else np.asarray(labels, dtype=np.int32)
        )
        self.class_names: list[str] = list(class_names)
        self.columns: dict[str, StringColumn] = {
            k: _text_column(v) for k, v in (columns or {}).items()
        }
        self.kind = kind
        self.skipped: list[SkippedFile] = []
        self._fingerprint: tuple[Any, ...] | None = None
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {self.labels.shape}")
        if n and self.labels.max(initial=-1) >= len(self.class_names):
            raise ValueError("a label id is out of range of class_names")
        for name, values in self.columns.items():
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} values for {n} paths")

    @classmethod
    def from_labelled(
        cls,
        paths: Sequence[str | os.PathLike],
        label_names: Sequence[str],
        class_names: Sequence[str] | None = None,
        **kwargs,
    ) -> Manifest:
        """Build from paths and label *names*; an empty name marks an unlabelled row.

        ``class_names`` defaults to the sorted set of names; pass the training manifest's
        ``class_names`` to keep ids aligned across splits. An unknown name raises ValueError.
        """
        names = sorted({n for n in label_names if n}) if class_names is None else class_names
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted({n for n in label_names if n and n not in index})
        if unknown:
            raise ValueError(f"labels not in class_names: {unknown[:5]}")
        labels = [index[n] if n else -1 for n in label_names]
        return cls(paths, labels, names, **kwargs)

    @classmethod
    def from_dataframe(
        cls,
        df: Any,
        *,
        path_column: str = "path",
        label_column: str | None = "label",
        root: str | os.PathLike | None = None,
        suffix: str = "",
        kind: str | None = None,
        class_names: Sequence[str] | None = None,
    ) -> Manifest:
        """Build from a table: a pandas ``DataFrame`` (or anything with ``.columns`` and
        ``df[column]`` iterating over one column's values, e.g. a polars frame).

        Columns are matched as in ``read_manifest``: exactly, else ignoring case and
        surrounding spaces. ``path_column`` holds file paths or ids (str, ``os.PathLike``
        or integers); ``suffix`` is appended to each value that does not already end with
        it (``"ISIC_0024306"`` + ``".jpg"``). Relative paths are joined to ``root`` when
        given, else kept as they are (relative to the working directory). ``label_column``
        (None: no labels) holds class names or integers; a missing value (None, NaN,
        ``pd.NA``) or an empty string marks an unlabelled row; integral floats (``3.0``,
        what pandas makes of an int column with gaps) count as the integer. When every
        label is a non-negative integer the classes sort numerically, so labels ``0..K-1``
        keep their values as ids; otherwise they sort as strings. Every other column is
        kept in ``columns`` as strings (missing values as ``""``). pandas is never
        imported here.

        Raises:
            TypeError: ``df`` has no ``.columns``.
            ManifestError: a column is missing (the message lists the table's columns and
                how to name them) or a path is missing or empty (the message names the row).
        """
        _check_manifest_options(path_column, label_column, suffix)
        base = _check_root(root)
        try:
            keys = list(df.columns)
        except AttributeError:
            raise TypeError(
                "df must be a pandas DataFrame or a table with .columns and df[column]. "
                f"Received: {type(df).__name__}"
            ) from None
        names = [str(k) for k in keys]
        where = "the table"
        path_i, label_i = _columns(where, names, path_column, label_column)
        missing = _missing_test()
        paths: list[str] = []
        for row, value in enumerate(df[keys[path_i]]):
            text = _cell_text(value, missing)
            if not text:
                raise ManifestError(f"{where}, row {row}: empty path in column {names[path_i]!r}")
            p = _complete(text, suffix)
            paths.append(p if base is None or os.path.isabs(p) else os.path.join(base, p))
        if base is not None:
            paths = [os.path.normpath(p) for p in paths]
        columns = {
            names[i]: [_cell_text(v, missing) for v in df[keys[i]]]
            for i in range(len(keys))
            if i not in (path_i, label_i)
        }
        if label_i is None:
            return cls(paths, None, class_names or (), columns=columns, kind=kind)
        labels = [_cell_text(v, missing) for v in df[keys[label_i]]]
        try:
            return cls.from_labelled(
                paths, labels, _class_order(labels, class_names), columns=columns, kind=kind
            )
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from exc

    # --- basic protocol -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        kind = f" kind={self.kind!r}" if self.kind else ""
        return f"<Manifest {len(self)} files, {len(self.class_names)} classes{kind}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Manifest)
            and self.paths == other.paths
            and np.array_equal(self.labels, other.labels)
            and self.class_names == other.class_names
            and self.columns == other.columns
        )

    @property
    def labelled(self) -> bool:
        """True when every row has a label."""
        return bool(len(self)) and bool((self.labels >= 0).all())

    def label_names(self) -> list[str]:
        """Each row's class name ('' for unlabelled rows)."""
        return self._label_name_array().to_pylist()

    def _label_name_array(self) -> pa.Array:
        """Each row's class name ('' for unlabelled rows), a ``large_string`` array."""
        names = pa.array([*self.class_names, ""], _STR)
        return names.take(pa.array(np.where(self.labels < 0, len(self.class_names), self.labels)))

    def counts(self) -> dict[str, int]:
        """Rows per class, in ``class_names`` order (classes with no rows count 0)."""
        labelled = self.labels[self.labels >= 0]
        counts = np.bincount(labelled, minlength=len(self.class_names)).tolist()
        return {name: counts[i] for i, name in enumerate(self.class_names)}

    def plot_counts(self, ax: Any = None, title: str | None = None) -> Any:
        """Bar chart of rows per class (matplotlib); returns the Axes."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3))[1]
        counts = self.counts() or {"(unlabelled)": len(self)}
        ax.bar(list(counts), list(counts.values()), color="tab:blue")
        ax.set_ylabel("files")
        ax.set_title(title or f"{self.kind or 'files'} per class ({len(self)} in all)")
        ax.tick_params(axis="x", labelrotation=30)
        return ax

    def subset(self, indices: Sequence[int] | np.ndarray) -> Manifest:
        """The rows at ``indices`` (in that order), keeping ``class_names`` and ``kind``."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return Manifest(
            self.paths.take(idx),
            self.labels[idx],
            self.class_names,
            columns={k: v.take(idx) for k, v in self.columns.items()},
            kind=self.kind,
        )

    def fingerprint(self, *, stat: bool = False) -> str:
        """A hex digest of paths, labels and class names (plus sizes and mtimes with ``stat``).

        Used to key caches and resume states: a changed manifest, or with ``stat`` a changed
        file, gets a new fingerprint. Missing files hash as size -1. Without ``stat`` it is
        computed once (hashing the paths' bytes as they lie in memory, about 1.5 GB/s) and
        kept; with ``stat`` every file is stat-ed on each call, since files change.
        """
        if stat:
            return self._digest(stat=True)
        key = (self.paths, self.labels, tuple(self.class_names))
        kept = self._fingerprint
        if kept is None or kept[0] is not key[0] or kept[1] is not key[1] or kept[2] != key[2]:
            kept = self._fingerprint = (*key, self._digest(stat=False))
        return kept[3]

    def _digest(self, *, stat: bool) -> str:
        # the same bytes as hashing "path\0" row by row (fingerprints of older manifests stay
        # valid), hashed a million rows at a time from Arrow's buffers
        h = hashlib.sha256()
        h.update("\0".join(self.class_names).encode())
        h.update(self.labels.tobytes())
        if stat:
            for p in self.paths:
                h.update(p.encode("utf-8", "surrogateescape") + b"\0")
                try:
                    st = os.stat(p)
                    h.update(f"{st.st_size}:{st.st_mtime_ns}\0".encode())
                except OSError:
                    h.update(b"-1\0")
            return h.hexdigest()
        paths, step, nul = self.paths, _BLOCK_ROWS, pa.scalar(b"\0", _BIN)
        prefix = pa.scalar(paths._prefix, _BIN)
        for start in range(0, len(paths), step):
            part = paths._chunks.slice(start, step)
            block = part.combine_chunks() if part.num_chunks != 1 else part.chunk(0)
            # prefix + path + NUL in one pass (the prefix is b"" unless shared)
            joined = pc.binary_join_element_wise(prefix, block, nul, _EMPTY)
            h.update(_used_bytes(joined))
        return h.hexdigest()

    # --- writing ------------------------------------------------------------------------
    def write(self, path: str | os.PathLike) -> Path:
        """Write a CSV (``path,label`` plus extra columns), or Parquet for a ``.parquet`` name.

        Each path is written as it is, relative to the file's own folder where possible (so a
        folder with its manifest can be moved), POSIX-style; labels as class names. Paths
        are never resolved through links: the relative path is computed on the absolute
        path as given and on the file's folder as given, which is exactly how ``read_manifest``
        joins it back, so a write/read round trip returns the same paths even when a file,
        a folder or the manifest's folder is a symbolic link. A path that has no relative form
        (another drive on Windows) is written absolute.

        CSV: UTF-8, ``\\r\\n`` line ends, fields quoted only where needed (as Python's
        ``csv.writer``), an empty label for an unlabelled row. A path that is not valid UTF-8
        (a raw file name) cannot go into a CSV: ``ManifestError`` says to write Parquet.
        Parquet: columns ``path`` (string, or binary when a path is not UTF-8), ``label``
        (dictionary-encoded class names, null when unlabelled) and the extra columns; the
        file's metadata keeps ``class_names`` (classes without rows included) and ``kind``,
        which ``read_manifest`` restores. Both are written a million rows at a time, with
        no Python object per row.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        base = os.path.abspath(out.parent)
        if out.suffix.lower() in PARQUET_SUFFIXES:
            _write_parquet(self, out, base)
        else:
            _write_csv(self, out, base)
        return out

    # --- splitting ----------------------------------------------------------------------
    def split(
        self, val: float = 0.2, test: float = 0.0, *, seed: int = 0, stratify: bool = True
    ) -> tuple[Manifest, ...]:
        """Split into ``(train, val)``, or ``(train, val, test)`` when ``test > 0``.

        Deterministic for a seed; every row lands in exactly one part; each part keeps
        manifest order. With ``stratify`` each class (and the unlabelled rows as one group)
        is split separately, so class proportions are kept (each class with at least two
        rows gives ``val`` at least one row when ``val > 0``).
        """
        if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
            raise ValueError("val and test must be fractions in [0, 1) with val + test < 1")
        rng = np.random.default_rng(seed)
        groups = (
            [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
            if stratify
            else [np.arange(len(self))]
        )
        parts: list[list[np.ndarray]] = [[], [], []]
        for group in groups:
            order = rng.permutation(group)
            n_val, n_test = _part_sizes(len(order), val, test)
            parts[1].append(order[:n_val])
            parts[2].append(order[n_val : n_val + n_test])
            parts[0].append(order[n_val + n_test :])
        subsets = [self.subset(np.sort(np.concatenate(p or [np.empty(0, int)]))) for p in parts]
        return tuple(subsets) if test > 0 else tuple(subsets[:2])

    # --- validating ---------------------------------------------------------------------
    def validate(
        self, kind: str | None = None, *, workers: int | None = None, progress: bool = True
    ) -> ValidationReport:
        """Open and decode every file (in parallel, one at a time per worker) and report.

        Returns a ``ValidationReport`` listing every missing, unreadable or undecodable
        file with its reason. Decoded data is dropped right away, so memory stays flat.
        """
        kind = kind or self.kind or _guess_kind(self.paths)
        check = _checker(kind)
        workers = workers or min(32, (os.cpu_count() or 1) * 2)
        with ThreadPoolExecutor(workers, thread_name_prefix="bytefeed-validate") as pool:
            results = pool.map(check, self.paths)
            bar = tqdm(results, total=len(self), desc=f"validate {kind}", disable=not progress)
            problems = [(p, r) for p, r in zip(self.paths, bar, strict=True) if r is not None]
        return ValidationReport(kind=kind, checked=len(self), problems=problems)


@dataclass
class ValidationReport:
    """What ``Manifest.validate`` found: ``problems`` holds ``(path, reason)`` pairs."""

    kind: str
    checked: int
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: how many files were checked and how many have problems."""
        return f"{self.checked} {self.kind} files checked, {len(self.problems)} with problems"

    def __str__(self) -> str:
        return "\n".join([self.summary(), *(f"{p}: {r}" for p, r in self.problems)])

    def write(self, path: str | os.PathLike) -> None:
        """Write the problems as a CSV ``path,reason``."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "reason"])
            writer.writerows(self.problems)


def _relative_to(path: str, base: str) -> str:
    # abspath, never resolve/realpath: a link stays the link the user listed (issue 14)
    full = os.path.abspath(path)
    try:
        return Path(os.path.relpath(full, base)).as_posix()
    except ValueError:  # another drive on Windows: no relative form
        return Path(full).as_posix()


#: A path that ``os.path.normpath`` would change: a ``.`` or ``..`` part, ``//``, a final ``/``.
_NOT_NORMAL = r"(^|/)\.\.?(/|$)|//|/$"
#: Rows written or read a block at a time (bounds the memory of each step).
_BLOCK_ROWS = 1 << 20


def _relative_block(paths: pa.Array, base: str) -> pa.Array:
    """``_relative_to(p, base)`` for each path of a ``large_binary`` array, as one array.

    Absolute, normal paths (nearly all) are cut lexically, with no Python object per row:
    a path under ``base`` loses the ``base/`` prefix; one under an ancestor of ``base``
    gets one ``../`` per level up. Every other path (relative, not normal, a folder above
    ``base`` itself, or not POSIX) takes ``_relative_to``.
    """
    if os.sep != "/" or os.altsep or len(paths) == 0:
        return _each(paths, lambda p: _relative_to(p, base))
    slow = pc.invert(pc.starts_with(paths, "/"))
    odd = _not_normal(paths)
    if odd is not None:
        slow = pc.or_(slow, odd)
    ancestors = [base]
    while ancestors[-1] != os.path.dirname(ancestors[-1]):
        ancestors.append(os.path.dirname(ancestors[-1]))
    slow = pc.or_(slow, pc.is_in(paths, pa.array([os.fsencode(a) for a in ancestors], _BIN)))
    result = pa.nulls(len(paths), _BIN)
    todo = pc.invert(slow)
    offsets = _offsets(paths)
    longest = int((offsets[1:] - offsets[:-1]).max())
    for up, folder in enumerate(ancestors):
        prefix = os.fsencode(folder.rstrip("/") + "/")
        here = pc.and_(todo, pc.starts_with(paths, prefix))
        if not pc.any(here).as_py():
            continue
        # an explicit stop, no longer than the longest path: pyarrow 26's binary_slice
        # fails ("Negative buffer resize") without one, or with a huge one
        cut = pc.binary_slice(paths, len(prefix), longest + 1)
        if up:
            cut = pc.binary_join_element_wise(pa.scalar(b"../" * up, _BIN), cut, _EMPTY)
        result = pc.if_else(here, cut, result)
        todo = pc.and_(todo, pc.invert(here))
    if pc.any(slow).as_py():
        rows = np.flatnonzero(slow.to_numpy(zero_copy_only=False))
        fixed = _each(paths.take(pa.array(rows)), lambda p: _relative_to(p, base))
        result = pc.replace_with_mask(result, slow, fixed)
    return result


def _not_normal(paths: pa.Array) -> pa.Array | None:
    """Where ``os.path.normpath`` would change a path (``_NOT_NORMAL``), or None when it
    changes none, which is usual and found with byte searches over the whole block, not a
    regular expression per row: no ``/.`` or ``//`` anywhere, no value that starts with a
    dot or ends with a slash."""
    offsets, data = _offsets(paths), _data(paths)
    full = offsets[1:] > offsets[:-1]
    maybe = (
        _holds_any(paths, (b"/.", b"//"))
        or bool((data[offsets[1:][full] - 1] == ord("/")).any())
        or bool((data[offsets[:-1][full]] == ord(".")).any())
    )
    return pc.match_substring_regex(paths, _NOT_NORMAL) if maybe else None


def _holds_any(values: pa.Array, needles: tuple[bytes, ...]) -> bool:
    """Whether any needle occurs in the values' bytes end to end (a needle spanning two
    values counts too: callers use this only to skip work)."""
    raw = _used_bytes(values)
    raw = raw if isinstance(raw, bytes) else raw.to_pybytes()
    return any(n in raw for n in needles)


def _each(values: pa.Array, fn: Callable[[str], str]) -> pa.Array:
    """``fn`` applied to each value (as ``str``) of a binary array: the per-row route."""
    return _binary_array([fn(v) for v in StringColumn(values)])


def _utf8(values: pa.Array, what: str, out: Path) -> pa.Array:
    """A ``large_binary`` block as ``large_string``; ManifestError for a non-UTF-8 value."""
    try:
        return values.cast(_STR)
    except pa.ArrowInvalid:
        for text in StringColumn(values):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                bad = text
                break
        else:  # pragma: no cover - cast failed, so some value is not UTF-8
            bad = "?"
        raise ManifestError(
            f"cannot write {out}: the {what} {bad!r} is not valid UTF-8 (a raw file name), and "
            "a CSV manifest is UTF-8 text; write a .parquet manifest instead"
        ) from None


def _csv_quoted(values: pa.Array) -> pa.Array:
    """Each value as ``csv.writer`` writes a field: quoted (quotes doubled) only when it holds
    a comma, a quote, CR or LF."""
    if not _holds_any(values, (b",", b'"', b"\r", b"\n")):
        return values
    needs = pc.match_substring_regex(values, '[,"\r\n]')
    quote = pa.scalar('"', _STR)
    quoted = pc.binary_join_element_wise(
        quote, pc.replace_substring(values, '"', '""'), quote, pa.scalar("", _STR)
    )
    return pc.if_else(needs, quoted, values)


def _relative_paths(paths: StringColumn, start: int, base: str) -> pa.Array:
    """Block ``start`` of ``paths``, each relative to ``base`` (``_relative_block``).

    Paths read from a manifest in ``base`` (every one relative, kept after the shared
    prefix ``base/``) are written back as they were read, with no work at all.
    """
    if paths._prefix and paths._prefix == os.fsencode(base.rstrip("/") + "/"):
        part = paths._chunks.slice(start, _BLOCK_ROWS)
        return part.combine_chunks() if part.num_chunks != 1 else part.chunk(0)
    return _relative_block(paths._block(start, _BLOCK_ROWS), base)


def _write_csv(m: Manifest, out: Path, base: str) -> None:
    header = io.StringIO()
    csv.writer(header).writerow(["path", "label", *m.columns])  # as before: excel dialect
    names = m._label_name_array()
    comma, crlf = pa.scalar(",", _STR), pa.scalar("\r\n", _STR)
    with open(out, "wb") as fh:
        fh.write(header.getvalue().encode("utf-8"))
        for start in range(0, len(m), _BLOCK_ROWS):
            rel = _relative_paths(m.paths, start, base)
            fields = [_utf8(rel, "path", out), names.slice(start, _BLOCK_ROWS)]
            for name, column in m.columns.items():
                fields.append(_utf8(column._block(start, _BLOCK_ROWS), f"{name!r} value", out))
            rows = pc.binary_join_element_wise(*(_csv_quoted(f) for f in fields), comma)
            lines = pc.binary_join_element_wise(rows, pa.scalar("", _STR), crlf)
            fh.write(_used_bytes(lines))


#: Names ``Manifest.write`` writes as Parquet (``read_manifest`` also knows a Parquet file by
#: its magic bytes, whatever its name).
PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_KEY = b"bytefeed"


def _write_parquet(m: Manifest, out: Path, base: str) -> None:
    import pyarrow.parquet as pq

    starts = range(0, len(m), _BLOCK_ROWS)
    rel = _text_or_binary([_relative_paths(m.paths, start, base) for start in starts])
    ids = pa.array(m.labels, mask=m.labels < 0)
    label = pa.DictionaryArray.from_arrays(ids, pa.array(m.class_names, pa.string()))
    names = ["path", "label", *m.columns]
    extras = [
        _text_or_binary([v._block(a, _BLOCK_ROWS) for a in starts]) for v in m.columns.values()
    ]
    arrays = [rel, label, *extras]
    meta = {"version": 1, "class_names": m.class_names, "kind": m.kind, "label_column": "label"}
    table = pa.Table.from_arrays(arrays, names=names)
    table = table.replace_schema_metadata({_PARQUET_KEY: json.dumps(meta)})
    pq.write_table(table, out, use_dictionary=["label"], row_group_size=_BLOCK_ROWS)


def _text_or_binary(blocks: list[pa.Array]) -> pa.ChunkedArray:
    """Binary blocks as one ``large_string`` column, or ``large_binary`` if a value is not
    UTF-8 (a Parquet column has one type)."""
    try:
        return pa.chunked_array([b.cast(_STR) for b in blocks], _STR)
    except pa.ArrowInvalid:
        return pa.chunked_array(blocks, _BIN)


def _part_sizes(n: int, val: float, test: float) -> tuple[int, int]:
    n_val = round(n * val)
    n_test = round(n * test)
    if val > 0 and n_val == 0 and n >= 2:
        n_val = 1
    if test > 0 and n_test == 0 and n - n_val >= 2:
        n_test = 1
    return n_val, min(n_test, n - n_val)


# --- reading a manifest file ------------------------------------------------------------
#: Column names that usually hold the file (or its id) and the class, for error messages only:
#: nothing is guessed silently, the message says which ``path_column=``/``label_column=`` to pass.
_PATH_HINTS = ("path", "file", "filename", "filepath", "image", "img", "audio", "clip", "id")
_LABEL_HINTS = ("label", "class", "category", "target", "dx", "y", "species", "genre")
_DELIMITERS = (",", "\t", ";")


def read_manifest(
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    kind: str | None = None,
    path_column: str = "path",
    label_column: str | None = "label",
    root: str | os.PathLike | None = None,
    suffix: str = "",
) -> Manifest:
    """Read a manifest: a CSV with a header, a plain list of paths (one per line), or Parquet.

    CSV: a header row, then one row per file. ``path_column`` names the column of file
    paths (or ids, see ``suffix``), ``label_column`` the column of class names (None: no
    labels); both match the header ignoring case and surrounding spaces; every other column
    is kept in ``Manifest.columns``. Comma-, tab- or semicolon-separated (the first line's
    most frequent one). UTF-8 with or without BOM, CRLF or LF line ends, quoted fields with
    commas or newlines, and blank lines are all accepted.

    Which first rows are headers: a first row with more than one field is always a header
    (unless the whole line is an existing file: a plain list whose first path holds a
    comma); a one-field first row is a header when it is ``path_column``, or when it does
    not look like a path (no extension, no separator, no such file) while the second row
    does. Otherwise the file is a plain list of paths (one per line, no quoting), which
    gives an unlabelled manifest. A header without ``path_column`` (``filename,label``,
    ``image_id,dx,age``) is an error that lists the header's columns and says which
    arguments to pass; it is never read as paths.

    Parquet (a file that starts and ends with Parquet's magic bytes, whatever its name):
    the same column options; paths may be strings or binary; labels strings or integers
    (a null is an unlabelled row); other columns are kept as text (integral floats without
    ``.0``, nulls as ``""``). A file written by ``Manifest.write`` gives back its
    ``class_names`` (classes without rows included) and ``kind``.

    ``root`` is the folder relative paths start from (default: the folder the manifest is
    in, as the path to it is written: a manifest reached through a linked folder reads
    paths through that link, matching ``Manifest.write``; only a manifest that is itself a
    link starts from its target's folder). ``suffix`` is appended to each path that does
    not already end with it (``ISIC_0024306`` + ``.jpg``). An empty label marks an
    unlabelled row. ``class_names`` fixes the label ids (e.g. a training manifest's);
    otherwise labels that are all non-negative integers sort numerically (so ``0..K-1`` keep
    their values as ids) and other labels sort as strings.

    Speed: a well-formed file is parsed by pyarrow's multi-threaded CSV reader (a file with
    quotes only after checking that every quote is RFC 4180 quoting, so the answer is the
    same) into Arrow columns: ten million rows in seconds, with no Python object per row.
    Anything else (blank or malformed rows, stray quotes, odd line separators) is read row
    by row with Python's ``csv`` module, which names the line of any error.

    Raises:
        FileNotFoundError: the manifest does not exist.
        ValueError: a bad argument (empty column name, ``root`` not a folder).
        ManifestError: a header without ``path_column`` (or without an explicitly named
            ``label_column``), or a malformed row; the message names the file and the line.
    """
    _check_manifest_options(path_column, label_column, suffix)
    src = Path(path)
    head = _Head.read(src)
    base = _check_root(root) or _manifest_folder(src)
    if head.parquet:
        return _read_parquet(src, base, path_column, label_column, suffix, class_names, kind)
    rows = _read_rows(src, head, base, suffix, path_column, label_column)
    return _finish(str(src), rows, base, suffix, class_names, kind)


@dataclass
class _Head:
    """The first bytes of a manifest file: enough to tell its format and its header."""

    raw: bytes
    whole: bool  # ``raw`` is the whole file
    parquet: bool

    #: How much is read to find the header and the first two rows.
    SIZE: ClassVar[int] = 1 << 16

    @classmethod
    def read(cls, src: Path) -> _Head:
        with open(src, "rb") as fh:
            raw = fh.read(cls.SIZE)
            size = os.fstat(fh.fileno()).st_size
            parquet = size >= 12 and raw[:4] == b"PAR1"
            if parquet:
                fh.seek(size - 4)
                parquet = fh.read(4) == b"PAR1"
        return cls(raw, len(raw) >= size, parquet)

    @property
    def start(self) -> int:
        """Where the text starts (after a UTF-8 BOM)."""
        return 3 if self.raw.startswith(codecs.BOM_UTF8) else 0

    def text(self) -> str | None:
        """The head as text, cut after its last complete line; None if that is not UTF-8."""
        raw = self.raw
        if not self.whole:
            end = max(raw.rfind(b"\n"), raw.rfind(b"\r"))
            if end < 0:
                return None
            raw = raw[: end + 1]
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None


@dataclass
class _Rows:
    """What a manifest file holds, before paths are completed and resolved.

    ``paths``: blocks of ``large_string`` (or binary) paths, stripped and never empty;
    ``labels``: blocks of dictionary-encoded label names (None: no label column);
    ``extras``: the other columns.
    """

    paths: list[pa.Array]
    labels: list[pa.DictionaryArray] | None
    extras: dict[str, StringColumn]


def _read_rows(
    src: Path, head: _Head, base: str, suffix: str, path_column: str, label_column: str | None
) -> _Rows:
    text = head.text()
    lines = [] if text is None else [ln.strip() for ln in text.splitlines() if ln.strip()][:2]
    if text is None or (len(lines) < 2 and not head.whole):
        return _slow_rows(src, base, suffix, path_column, label_column)
    delimiter = _delimiter(lines[0]) if lines else ","
    if lines and _has_header(lines, delimiter, base, suffix, path_column):
        fast = _fast_csv(src, head, text, delimiter, path_column, label_column)
    else:
        fast = _fast_list(src, head) if lines else None
    return fast or _slow_rows(src, base, suffix, path_column, label_column)


def _slow_rows(
    src: Path, base: str, suffix: str, path_column: str, label_column: str | None
) -> _Rows:
    """The whole file decoded and read row by row (``csv`` module): exact line numbers."""
    raw = src.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ManifestError(f"{src}:{line}: manifest is not UTF-8 text ({exc.reason})") from exc
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:2]
    delimiter = _delimiter(lines[0]) if lines else ","
    if lines and _has_header(lines, delimiter, base, suffix, path_column):
        paths, names, columns = _read_csv(src, text, delimiter, path_column, label_column)
    else:
        paths, names, columns = _read_list(text), None, {}
    labels = None if names is None else [pa.array(names, _STR).dictionary_encode()]
    extras = {k: StringColumn(v) for k, v in columns.items()}
    return _Rows([pa.array(paths, _STR)], labels, extras)


#: What ``str.strip()`` strips (every ``c`` with ``c.isspace()``; a test checks the list).
_PY_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# A first or last byte that may belong to a space: ASCII spaces and any non-ASCII byte.
_MAYBE_SPACE = np.zeros(256, bool)
_MAYBE_SPACE[[ord(c) for c in _PY_SPACE if ord(c) < 128]] = True
_MAYBE_SPACE[128:] = True
#: Line ends ``str.splitlines`` knows besides CR and LF, as UTF-8 (a plain list holding one
#: is read by the row-by-row route, which splits where Python splits).
_OTHER_LINE_ENDS = (
    b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9"
)  # fmt: skip
#: Bytes that can stand for "no delimiter" when pyarrow reads a plain list.
_NO_DELIMITER = (b"\x1f", b"\x01", b"\x02", b"\x03", b"\x04", b"\x05", b"\x06", b"\x07")


def _strip(block: pa.Array) -> pa.Array:
    """``str.strip()`` on each value of a ``large_string`` block (a copy only if needed)."""
    offsets, data = _offsets(block), _data(block)
    full = offsets[1:] > offsets[:-1]
    if not full.any():
        return block
    ends = _MAYBE_SPACE[data[offsets[:-1][full]]] | _MAYBE_SPACE[data[offsets[1:][full] - 1]]
    return pc.utf8_trim(block, characters=_PY_SPACE) if ends.any() else block


def _empty_rows(block: pa.Array) -> np.ndarray:
    offsets = _offsets(block)
    return np.flatnonzero(offsets[1:] == offsets[:-1])


def _scan(src: Path, start: int, delimiter: str | None, patterns: Sequence[bytes] = ()) -> Any:
    """Read ``src`` once, in blocks, for what decides whether pyarrow may parse it.

    Returns ``(quotes, found)``: ``found`` the ``patterns`` present; ``quotes`` (with a
    ``delimiter``) False when the file has no ``"``, True when every ``"`` is RFC 4180
    quoting, None otherwise. RFC 4180 quoting, checked without a parser: counting quotes
    from the start, an even-numbered one (opening a quoted field) follows a delimiter, a
    line end, the start of the file or a quote; an odd-numbered one (closing it, or the
    first of a doubled quote) is followed by a delimiter, a line end, the end of the file
    or a quote; and their number is even. Then pyarrow and ``csv`` (strict) read the same
    fields; a stray quote (``"a"b``, ``a"b``) or an unclosed one goes to ``csv``.
    """
    allowed = np.zeros(256, bool)
    if delimiter is not None:
        allowed[[ord(delimiter), 10, 13, 34]] = True
    found: set[bytes] = set()
    longest = max((len(p) for p in patterns), default=1)
    quotes, seen_quote, tail, before = 0, False, b"", 10  # the start of the file: a line end
    with open(src, "rb") as fh:
        fh.seek(start)
        block = fh.read(_SCAN_BYTES)
        while block:
            after_block = fh.read(_SCAN_BYTES)
            for p in patterns:
                if p not in found and (p in block or p in tail + block[: longest - 1]):
                    found.add(p)
            if delimiter is not None and b'"' in block:
                seen_quote = True
                arr = np.frombuffer(block, np.uint8)
                q = np.flatnonzero(arr == 34)
                prev = np.where(q > 0, arr[np.maximum(q - 1, 0)], before)
                last = arr.size - 1
                following = after_block[0] if after_block else 10  # the end: a line end
                after = np.where(q < last, arr[np.minimum(q + 1, last)], following)
                odd = (np.arange(q.size) + quotes) % 2 == 1
                if not np.where(odd, allowed[after], allowed[prev]).all():
                    return None, found
                quotes += q.size
            before, tail = block[-1], block[-(longest - 1) :] if longest > 1 else b""
            block = after_block
    if delimiter is None:
        return False, found
    if seen_quote and quotes % 2:
        return None, found
    return seen_quote, found


_SCAN_BYTES = 16 << 20


def _fast_csv(
    src: Path, head: _Head, text: str, delimiter: str, path_column: str, label_column: str | None
) -> _Rows | None:
    """The CSV through pyarrow, or None where ``_slow_rows`` must read it (see ``_scan``)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        first = next(reader)
    except (StopIteration, csv.Error):
        return None
    if reader.line_num != 1 or not first or all(not f.strip() for f in first):
        return None  # blank lines or a multi-line header: the slow route counts lines
    header = [h.strip() for h in first]
    if len({h.lower() for h in header}) != len(header):
        return None
    path_i = _find_column(header, path_column)
    label_i = None if label_column is None else _find_column(header, label_column)
    if path_i is None or (label_i is None and label_column not in (None, "label")):
        return None  # the slow route words the error
    quotes, _ = _scan(src, head.start, delimiter)
    if quotes is None:
        return None
    types = {
        raw: pa.dictionary(pa.int32(), _STR) if i == label_i else _STR
        for i, raw in enumerate(first)
    }
    try:
        table = pa_csv.read_csv(
            src,
            read_options=pa_csv.ReadOptions(use_threads=True, block_size=_CSV_BLOCK),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=bool(quotes),
                ignore_empty_lines=True,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowException, OSError):
        return None  # a row with too few or too many fields, not UTF-8, ...: the slow route
    if table.column_names != first or [table.schema.field(n).type for n in first] != list(
        types.values()
    ):
        return None
    columns = table.columns
    del table
    paths = [_strip(block) for block in columns[path_i].chunks]
    if any(_empty_rows(block).size for block in paths):
        return None  # blank rows to skip or an empty path to report: the slow route
    labels = None if label_i is None else list(columns[label_i].chunks)
    extras = {
        header[i]: StringColumn(columns[i])
        for i in range(len(header))
        if i not in (path_i, label_i)
    }
    return _Rows(paths, labels, extras)


_CSV_BLOCK = 16 << 20


def _fast_list(src: Path, head: _Head) -> _Rows | None:
    """A plain list through pyarrow, or None where ``_slow_rows`` must read it."""
    _, found = _scan(src, head.start, None, _OTHER_LINE_ENDS + _NO_DELIMITER)
    free = [d for d in _NO_DELIMITER if d not in found]
    if any(p in found for p in _OTHER_LINE_ENDS) or not free:
        return None
    try:
        table = pa_csv.read_csv(
            src,
            read_options=pa_csv.ReadOptions(
                use_threads=True, block_size=_CSV_BLOCK, column_names=["path"]
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=free[0].decode(), quote_char=False, escape_char=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={"path": _STR}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowException, OSError):
        return None
    blocks = []
    for block in table.column(0).chunks:
        block = _strip(block)
        if _empty_rows(block).size:  # blank lines (spaces only) are skipped, as before
            block = block.filter(pc.greater(pc.binary_length(block), 0))
        blocks.append(block)
    return _Rows(blocks, None, {})


def _finish(
    where: str,
    rows: _Rows,
    base: str,
    suffix: str,
    class_names: Sequence[str] | None,
    kind: str | None,
) -> Manifest:
    """A manifest from a file's rows: paths completed and resolved, labels made ids."""
    paths = _resolve(rows.paths, base, suffix)
    if rows.labels is None:
        return Manifest(paths, None, class_names or (), columns=rows.extras, kind=kind)
    try:
        ids, names = _label_ids(rows.labels, class_names)
    except ValueError as exc:
        raise ManifestError(f"{where}: {exc}") from exc
    return Manifest(paths, ids, names, columns=rows.extras, kind=kind)


def _resolve_one(path: str, base: str, suffix: str) -> str:
    """``path`` completed with ``suffix`` and, when relative, joined to ``base``."""
    p = _complete(path, suffix)
    return p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))


def _resolve(blocks: list[pa.Array], base: str, suffix: str) -> StringColumn:
    """``_resolve_one`` on every path, a block at a time, into one column.

    POSIX and UTF-8: vectorised. The suffix is added by a case-insensitive ``ends_with``;
    when every path is relative and already normal (the usual manifest), the column keeps
    the blocks as they are after one shared prefix ``base/``: no path is copied, and the
    folder is held once, not once per row. Otherwise relative paths are joined to ``base/``
    block by block, and the few that ``normpath`` would change are fixed one by one.
    ``blocks`` is emptied as it goes, so each input block is released once done.
    """
    prefix = os.fsencode(base.rstrip("/") + "/")
    posix = os.sep == "/" and not os.altsep
    done: list[tuple[pa.Array, bool]] = []  # (block, resolved already)
    shared = posix
    blocks.reverse()
    while blocks:
        raw = blocks.pop()
        block = _text(raw) if posix else None
        if block is None:  # not POSIX, or raw names that are not UTF-8: row by row
            done.append((_each(_binary_array(raw), lambda p: _resolve_one(p, base, suffix)), True))
            shared = False
            continue
        del raw
        block = _with_suffix(block, suffix).view(_BIN)
        if shared:
            shared = not pc.any(pc.starts_with(block, "/")).as_py() and _odd(block) is None
        done.append((block, False))
    if shared:
        return StringColumn._wrap(pa.chunked_array([b for b, _ in done], _BIN), prefix)
    resolved: list[pa.Array] = []
    done.reverse()
    while done:
        block, ready = done.pop()
        resolved.append(block if ready else _join(block, prefix))
    return StringColumn._wrap(pa.chunked_array(resolved, _BIN))


def _text(block: pa.Array) -> pa.Array | None:
    """A block as ``large_string``; None when it holds bytes that are not UTF-8."""
    try:
        return block.cast(_STR)
    except pa.ArrowInvalid:
        return None


def _with_suffix(block: pa.Array, suffix: str) -> pa.Array:
    """``_complete`` on each value of a ``large_string`` block."""
    if not suffix:
        return block
    has = pc.ends_with(pc.utf8_lower(block), suffix.lower())
    if pc.all(has).as_py():
        return block
    added = pc.binary_join_element_wise(block, pa.scalar(suffix, _STR), pa.scalar("", _STR))
    return pc.if_else(has, block, added)


def _join(paths: pa.Array, prefix: bytes) -> pa.Array:
    """Relative paths of a binary block joined to ``prefix`` (``base/``) and normalised."""
    relative = pc.invert(pc.starts_with(paths, "/"))
    if not pc.any(relative).as_py():
        return paths
    odd = _odd(paths)
    odd = None if odd is None else pc.and_(relative, odd)
    joined = pc.binary_join_element_wise(pa.scalar(prefix, _BIN), paths, _EMPTY)
    paths = joined if pc.all(relative).as_py() else pc.if_else(relative, joined, paths)
    del joined
    if odd is not None and pc.any(odd).as_py():
        rows = pa.array(np.flatnonzero(odd.to_numpy(zero_copy_only=False)))
        fixed = pa.array([os.path.normpath(p) for p in paths.take(rows).to_pylist()], _BIN)
        paths = pc.replace_with_mask(paths, odd, fixed)
    return paths


def _odd(paths: pa.Array) -> pa.Array | None:
    """Where ``normpath`` would change a path (``_not_normal``), None where it changes none."""
    odd = _not_normal(paths)
    return odd if odd is not None and pc.any(odd).as_py() else None


def _label_ids(
    blocks: list[pa.DictionaryArray], class_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """``int32 [N]`` ids and the class names for blocks of label names (stripped here).

    The names are read from each block's dictionary (a few values), never row by row.
    Raises ValueError for a name not in a given ``class_names``.
    """
    parts: list[tuple[list[str], np.ndarray]] = []
    used: set[str] = set()
    for block in blocks:
        names = [_label_text(v).strip() for v in block.dictionary.to_pylist()]
        idx = block.indices.fill_null(len(names)).to_numpy(zero_copy_only=False)
        hit = np.bincount(idx, minlength=len(names) + 1)[: len(names)] > 0
        used.update(n for n, h in zip(names, hit, strict=True) if h and n)
        parts.append((names, idx))
    order = list(_class_order(sorted(used), class_names))
    index = {name: i for i, name in enumerate(order)}
    unknown = sorted(n for n in used if n not in index)
    if unknown:
        raise ValueError(f"labels not in class_names: {unknown[:5]}")
    ids = [
        np.array([index.get(n, -1) if n else -1 for n in names] + [-1], np.int32)[idx]
        for names, idx in parts
    ]
    return (np.concatenate(ids) if ids else np.zeros(0, np.int32)), order


def _label_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return value if isinstance(value, str) else str(value)


def _check_manifest_options(path_column: Any, label_column: Any, suffix: Any) -> None:
    if not isinstance(path_column, str) or not path_column.strip():
        raise ValueError(
            f"path_column must be a non-empty column name. Received: path_column={path_column!r}"
        )
    if label_column is not None and (not isinstance(label_column, str) or not label_column.strip()):
        raise ValueError(
            "label_column must be a non-empty column name or None. "
            f"Received: label_column={label_column!r}"
        )
    if label_column is not None and label_column.strip().lower() == path_column.strip().lower():
        raise ValueError(
            "path_column and label_column must name different columns. "
            f"Received: path_column={path_column!r}, label_column={label_column!r}"
        )
    if not isinstance(suffix, str):
        raise ValueError(f"suffix must be a str such as '.jpg'. Received: suffix={suffix!r}")


def _check_root(root: str | os.PathLike | None) -> str | None:
    if root is None:
        return None
    if not os.path.isdir(root):
        raise ValueError(f"root must be an existing folder. Received: root={os.fspath(root)!r}")
    return os.path.abspath(root)


def _manifest_folder(src: Path) -> str:
    """The folder relative paths in ``src`` start from.

    Lexical (``abspath``), not ``resolve()``: ``Manifest.write`` computes relative paths
    lexically, and resolving the folder through a link would turn ``../x`` into a different
    file. A manifest that is itself a link was written where its target lies.
    """
    if src.is_symlink():
        return os.path.dirname(os.path.realpath(src))
    return os.path.dirname(os.path.abspath(src))


def _complete(path: str, suffix: str) -> str:
    if not suffix or path.lower().endswith(suffix.lower()):
        return path
    return path + suffix


def _delimiter(line: str) -> str:
    counts = [(line.count(d), -i, d) for i, d in enumerate(_DELIMITERS)]
    best = max(counts)
    return best[2] if best[0] else ","


def _looks_like_path(value: str, base: str, suffix: str) -> bool:
    """A path separator, an extension, or an existing file (with ``suffix``)."""
    value = value.strip()
    if not value:
        return False
    if "/" in value or "\\" in value or os.path.splitext(value)[1] not in ("", "."):
        return True
    return os.path.lexists(os.path.join(base, _complete(value, suffix)))


def _has_header(lines: list[str], delimiter: str, base: str, suffix: str, path_column: str) -> bool:
    """Whether the first non-blank line is a header row (see ``read_manifest``)."""
    first = lines[0]
    cells = [c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter), [])]
    if path_column.strip().lower() in cells:
        return True
    if len(cells) > 1:
        # a plain list whose first path holds the delimiter is still a plain list
        return not os.path.lexists(os.path.join(base, _complete(first, suffix)))
    if _looks_like_path(first, base, suffix):
        return False
    return len(lines) > 1 and _looks_like_path(lines[1], base, suffix)


def _columns(
    where: str, names: Sequence[str], path_column: str, label_column: str | None
) -> tuple[int, int | None]:
    """The indices of the path and label columns among ``names``; ``ManifestError`` when the
    path column, or a label column the caller named (not the default "label"), is missing."""
    path_i = _find_column(names, path_column)
    if path_i is None:
        raise ManifestError(
            _missing_column_message(
                where, names, path_column, label_column=label_column, is_path=True
            )
        )
    label_i = None if label_column is None else _find_column(names, label_column)
    if label_column is not None and label_i is None and label_column != "label":
        raise ManifestError(
            _missing_column_message(where, names, label_column, label_column=None, is_path=False)
        )
    return path_i, label_i


def _find_column(header: Sequence[str], name: str) -> int | None:
    """Index of ``name`` in ``header``: exact match first, else ignoring case and spaces."""
    if name in header:
        return list(header).index(name)
    folded = [h.strip().lower() for h in header]
    key = name.strip().lower()
    return folded.index(key) if key in folded else None


def _missing_column_message(
    where: str, header: Sequence[str], column: str, *, label_column: str | None, is_path: bool
) -> str:
    """What ``header`` has, that ``column`` is not in it, and which arguments to pass.

    ``is_path``: the missing column is ``path_column`` (``label_column`` is then the label
    column asked for, named in the advice when present); else it is ``label_column``.
    """
    cols = list(header)
    text = f"{where} has columns {cols} but no {column!r} column"
    if not is_path:
        guess = _hint(cols, _LABEL_HINTS)
        advice = f"label_column={guess!r}" if guess else "label_column=..."
        return f"{text}; pass {advice} (or label_column=None for no labels)"
    path_guess = _hint(cols, _PATH_HINTS) or (cols[0] if cols else "...")
    label_i = None if label_column is None else _find_column(cols, label_column)
    label_guess = cols[label_i] if label_i is not None else _hint(cols, _LABEL_HINTS, path_guess)
    text += f"; pass path_column={path_guess!r}"
    if label_column is not None:
        text += f" (and label_column={label_guess!r})" if label_guess else " (and label_column=...)"
    if any(_looks_like_data(h) for h in cols):
        text += (
            "; or, if that row is data rather than a header, add a header row such as "
            f"'{column},label'"
        )
    return text


def _hint(cols: Sequence[str], words: Sequence[str], exclude: str | None = None) -> str | None:
    """The first column named like one of ``words`` (whole name, then a word of it)."""
    folded = [c.strip().lower() for c in cols]
    for whole in (True, False):
        for w in words:
            for c, f in zip(cols, folded, strict=True):
                hit = f == w if whole else w in re.split(r"[^a-z0-9]+", f)
                if hit and c != exclude:
                    return c
    return None


def _looks_like_data(cell: str) -> bool:
    cell = cell.strip()
    return "/" in cell or "\\" in cell or os.path.splitext(cell)[1] not in ("", ".")


def _read_list(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _read_csv(
    src: Path,
    text: str,
    delimiter: str,
    path_column: str,
    label_column: str | None,
) -> tuple[list[str], list[str] | None, dict[str, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    path_i = label_i = None
    paths: list[str] = []
    names: list[str] = []
    extra: dict[str, list[str]] = {}
    extra_i: list[int] = []
    try:
        for row in reader:
            if not row or all(not f.strip() for f in row):
                continue  # blank line
            if header is None:
                header = [h.strip() for h in row]
                lower = [h.lower() for h in header]
                if len(set(lower)) != len(lower):
                    raise ManifestError(f"{src}:{reader.line_num}: duplicate column names")
                where = f"{src}:{reader.line_num}: the header"
                path_i, label_i = _columns(where, header, path_column, label_column)
                extra_i = [i for i in range(len(header)) if i not in (path_i, label_i)]
                extra = {header[i]: [] for i in extra_i}
                continue
            if len(row) != len(header):
                raise ManifestError(
                    f"{src}:{reader.line_num}: expected {len(header)} fields "
                    f"({delimiter.join(header)}), found {len(row)}"
                )
            assert path_i is not None  # set with the header row
            if not row[path_i].strip():
                raise ManifestError(f"{src}:{reader.line_num}: empty path")
            paths.append(row[path_i].strip())
            names.append("" if label_i is None else row[label_i].strip())
            for i in extra_i:
                extra[header[i]].append(row[i])
    except csv.Error as exc:
        raise ManifestError(f"{src}:{reader.line_num}: malformed CSV ({exc})") from exc
    return paths, (names if label_i is not None else None), extra


def _read_parquet(
    src: Path,
    base: str,
    path_column: str,
    label_column: str | None,
    suffix: str,
    class_names: Sequence[str] | None,
    kind: str | None,
) -> Manifest:
    """A Parquet manifest (see ``read_manifest``), column by column, no Python object per row."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(src)
    except (pa.ArrowException, OSError) as exc:
        raise ManifestError(f"{src}: not a readable Parquet file ({exc})") from exc
    names = [name.strip() for name in schema.names]
    where = f"{src}: the table"
    if len({n.lower() for n in names}) != len(names):
        raise ManifestError(f"{where} has duplicate column names {schema.names}")
    path_i, label_i = _columns(where, names, path_column, label_column)
    label_raw = None if label_i is None else schema.names[label_i]
    dictionary = (
        [label_raw]
        if label_raw is not None and pa.types.is_string(schema.field(label_i).type)
        else None
    )
    try:
        table = pq.read_table(src, read_dictionary=dictionary)
    except (pa.ArrowException, OSError) as exc:
        raise ManifestError(f"{src}: not a readable Parquet file ({exc})") from exc
    meta = _parquet_meta(schema)
    columns = table.columns
    del table
    paths: list[pa.Array] = []
    for block in columns[path_i].chunks:
        if pa.types.is_dictionary(block.type):
            block = block.dictionary_decode()
        if pa.types.is_binary(block.type) or pa.types.is_large_binary(block.type):
            block = block.cast(_BIN)  # raw names: kept byte for byte
        else:
            block = _strip(_text_block(block))
        empty = np.flatnonzero(
            pc.fill_null(pc.binary_length(block), 0).to_numpy(zero_copy_only=False) == 0
        )
        if empty.size:
            row = sum(len(p) for p in paths) + int(empty[0])
            raise ManifestError(f"{src}, row {row}: empty path in column {names[path_i]!r}")
        paths.append(block)
    extras = {
        names[i]: StringColumn(pa.chunked_array([_text_block(b) for b in columns[i].chunks], _STR))
        for i in range(len(names))
        if i not in (path_i, label_i)
    }
    if label_i is None:
        return Manifest(
            _resolve(paths, base, suffix), None, class_names or (), columns=extras, kind=kind
        )
    labels = [_dictionary_block(b) for b in columns[label_i].chunks]
    del columns
    if class_names is None and meta.get("label_column") == label_raw:
        class_names = meta.get("class_names")
    try:
        ids, order = _label_ids(labels, class_names)
    except ValueError as exc:
        raise ManifestError(f"{src}: {exc}") from exc
    kind = kind or meta.get("kind")
    return Manifest(_resolve(paths, base, suffix), ids, order, columns=extras, kind=kind)


def _parquet_meta(schema: pa.Schema) -> dict:
    """What ``Manifest.write`` keeps in a Parquet file's metadata ({} for other files)."""
    raw = (schema.metadata or {}).get(_PARQUET_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if not isinstance(meta, dict):
        return {}
    names = meta.get("class_names")
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        meta.pop("class_names", None)
    if meta.get("kind") not in KINDS:
        meta.pop("kind", None)
    return meta


def _text_block(block: pa.Array) -> pa.Array:
    """A block of any Arrow type as ``large_string`` text, as ``_cell_text`` words a cell:
    nulls (and NaN) as ``""``, integral floats without ``.0``, booleans as ``True``."""
    kind = block.type
    if pa.types.is_dictionary(kind):
        block, kind = block.dictionary_decode(), kind.value_type
    if pa.types.is_floating(kind):
        whole = pc.and_(pc.is_finite(block), pc.equal(pc.floor(block), block))
        ints = pc.cast(pc.if_else(whole, block, 0), pa.int64(), safe=False)
        floats = pc.cast(block, _STR)
        text = pc.if_else(whole, pc.cast(ints, _STR), floats)
        text = pc.if_else(pc.is_nan(block), pa.scalar("", _STR), text)
    elif pa.types.is_boolean(kind):
        text = pc.if_else(block, pa.scalar("True", _STR), pa.scalar("False", _STR))
    elif pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        text = pa.array(StringColumn(block).tolist(), _STR)
    else:
        try:
            text = pc.cast(block, _STR)
        except pa.ArrowException as exc:
            raise ManifestError(f"a column of {kind} cannot be read as text ({exc})") from exc
    return pc.fill_null(text, pa.scalar("", _STR))


def _dictionary_block(block: pa.Array) -> pa.DictionaryArray:
    """A block of labels as a dictionary array of text values (see ``_label_ids``)."""
    if pa.types.is_dictionary(block.type):
        values = block.dictionary
        if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
            values = _text_block(values)
        return pa.DictionaryArray.from_arrays(block.indices, values)
    return _text_block(block).dictionary_encode()


def _class_order(names: Sequence[str], class_names: Sequence[str] | None) -> Sequence[str]:
    """``class_names`` if given; else the label names, numerically when all are integers."""
    if class_names is not None:
        return class_names
    unique = {n for n in names if n}
    if unique and all(n.isascii() and n.isdigit() for n in unique):
        return sorted(unique, key=lambda n: (int(n), n))
    return sorted(unique)


def _missing_test() -> Callable[[Any], bool]:
    """A test for a table's missing values: ``pandas.isna`` when pandas is already loaded
    (a pandas frame was handed in), else None and NaN; pandas is never imported here."""
    pandas = sys.modules.get("pandas")
    isna = None if pandas is None else pandas.isna

    def missing(value: Any) -> bool:
        if value is None:
            return True
        if isinstance(value, float):
            return math.isnan(value)
        if isna is not None and not isinstance(value, (str, bytes, os.PathLike)):
            try:
                return bool(isna(value))
            except (TypeError, ValueError):  # an array-like cell: not a missing scalar
                return False
        return False

    return missing


def _cell_text(value: Any, missing: Callable[[Any], bool]) -> str:
    """A table cell as text: '' when missing, integers (and integral floats) without '.0'."""
    if missing(value):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value).strip()


# --- validation helpers -----------------------------------------------------------------
def _guess_kind(paths: Sequence[str]) -> str:
    votes = Counter(
        kind
        for p in paths[:1000]
        for kind, exts in EXTENSIONS.items()
        if os.path.splitext(p)[1].lower() in exts
    )
    if not votes:
        raise ValueError("cannot tell the kind of these files; pass kind='image'|'audio'|'text'")
    return votes.most_common(1)[0][0]


def _checker(kind: str) -> Callable[[str], str | None]:
    """A function ``path -> None`` (fine) or a reason string, for ``kind``."""
    check_kind(kind)
    if kind == "image":
        from .decoders.image import decode_image

        def decode(p: str) -> object:
            # a tiny target lets JPEGs decode at 1/8 scale: every byte is still parsed
            return decode_image(p, (16, 16))
    elif kind == "audio":
        from .decoders.audio import decode_audio

        def decode(p: str) -> object:
            return decode_audio(p, sample_rate=None, duration=None)
    else:
        from .decoders.text import decode_text

        def decode(p: str) -> object:
            return decode_text(p)

    def check(p: str) -> str | None:
        try:
            decode(p)
        except Exception as exc:  # every failure is a finding, never a crash
            return reason_of(exc)
        return None

    return check
