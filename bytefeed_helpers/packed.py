"""Packed records: many small files as a few large TFRecord shards, read back by offset.

Opening a file costs the same whether it holds 5 KB or 5 MB, and on network disks and object
stores (gs://, s3://) it costs far more than reading. ``pack`` copies the files' raw bytes,
labels and original paths into TFRecord shards of about ``shard_mb`` each and writes
``index.json``: per record its shard, byte offset, length and SHA-256. ``read_packed`` gives
a ``Source`` the streams read exactly as they read a manifest (same rows, same order, same
decoders, same outputs, same skip records): each sample is one seek and one read in an
already open shard, checked against its SHA-256.

Each record is a ``tf.train.Example`` with features ``data`` (bytes), ``label`` (int64),
``path`` (bytes) and ``row`` (int64, the manifest row), so the shards are ordinary TFRecords:
``tf.data.TFRecordDataset`` reads them (``to_tf_dataset`` does, for the tf.data service), and
TFRecord's own framing checksums (masked CRC32C) guard every record too.

A manifest row whose file could not be read when packing is kept as a record without data
and its reason, so the packed stream reports it as the loose stream would (skip or raise).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
from tqdm.auto import tqdm

from .decoders._fileio import DEFAULT_MAX_FILE_MB, MB, read_file
from .errors import BadFileError, reason_of

INDEX_NAME = "index.json"
INDEX_VERSION = 1
SHARD_NAME = "shard-{:05d}.tfrecord"
# TFRecord framing around each payload: uint64 length, uint32 CRC of it, payload, uint32 CRC.
_HEADER = 12
_FRAMING = 16
_READ_AHEAD = 64  # files read in parallel ahead of the writer while packing
_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate line ends


# --- paths that may be local or remote ----------------------------------------------------------
def _is_remote(path: str) -> bool:
    return "://" in path


def _join(root: str, name: str) -> str:
    return posixpath.join(root, name) if _is_remote(root) else os.path.join(root, name)


def open_path(path: str, mode: str = "rb") -> Any:
    """A file object: the built-in ``open`` for local paths, ``tf.io.gfile.GFile`` for URLs."""
    if _is_remote(path):
        import tensorflow as tf

        return tf.io.gfile.GFile(path, mode)
    return open(path, mode)


def _exists(path: str) -> bool:
    if _is_remote(path):
        import tensorflow as tf

        return tf.io.gfile.exists(path)
    return os.path.exists(path)


def _size(path: str) -> int:
    if _is_remote(path):
        import tensorflow as tf

        return int(tf.io.gfile.stat(path).length)
    return os.path.getsize(path)


def _locate(path: str | os.PathLike) -> tuple[str, str]:
    """``(root, index_file)`` of a packed directory given as itself or as its index file."""
    path = os.fspath(path)
    if not path.endswith(".json"):
        return path, _join(path, INDEX_NAME)
    root = posixpath.dirname(path) if _is_remote(path) else os.path.dirname(path)
    return root or ".", path


def is_packed(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a packed directory (one holding ``index.json``) or its index."""
    root, index_file = _locate(path)
    return (_is_remote(root) or os.path.isdir(root)) and _exists(index_file)


# --- the index ---------------------------------------------------------------------------------
@dataclass
class PackIndex:
    """What ``index.json`` holds: the shards and, per record, where its bytes are.

    Attributes:
        root: the packed directory (local path or URL); shard names are relative to it.
        shards: shard file names, and ``shard_bytes`` their sizes.
        shard: ``int32 [N]`` shard number of each record; ``offset`` and ``length``
            (``int64 [N]``) locate the file's raw bytes inside that shard; ``sha256`` their
            hex digests; ``error`` the reason a row has no data ('' for packed rows).
        paths, labels (``int32 [N]``), class_names, columns, kind: the manifest's rows.
    """

    root: str
    shards: list[str]
    shard_bytes: list[int]
    shard: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    sha256: list[str]
    error: list[str]
    paths: list[str]
    labels: np.ndarray
    class_names: list[str]
    columns: dict[str, list[str]] = field(default_factory=dict)
    kind: str | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"<PackIndex {len(self)} records in {len(self.shards)} shards, "
            f"{sum(self.shard_bytes) / 2**20:.1f} MiB at {self.root}>"
        )

    @property
    def path(self) -> str:
        """The ``index.json`` file."""
        return _join(self.root, INDEX_NAME)

    def shard_path(self, number: int) -> str:
        return _join(self.root, self.shards[number])

    @property
    def shard_paths(self) -> list[str]:
        return [self.shard_path(i) for i in range(len(self.shards))]

    def manifest(self) -> Any:
        """The packed rows as a ``Manifest`` (original paths, labels, classes, columns)."""
        from .manifest import Manifest

        return Manifest(
            self.paths, self.labels, self.class_names, columns=self.columns, kind=self.kind
        )

    def to_json(self) -> dict:
        return {
            "version": INDEX_VERSION,
            "kind": self.kind,
            "class_names": self.class_names,
            "shards": [
                {"file": f, "bytes": b} for f, b in zip(self.shards, self.shard_bytes, strict=True)
            ],
            "records": {
                "path": self.paths,
                "label": self.labels.tolist(),
                "shard": self.shard.tolist(),
                "offset": self.offset.tolist(),
                "length": self.length.tolist(),
                "sha256": self.sha256,
                "error": self.error,
            },
            "columns": self.columns,
        }

    @classmethod
    def from_json(cls, root: str, doc: dict) -> PackIndex:
        if doc.get("version") != INDEX_VERSION:
            raise ValueError(f"{root}: unknown packed index version {doc.get('version')!r}")
        rec = doc["records"]
        return cls(
            root=root,
            shards=[s["file"] for s in doc["shards"]],
            shard_bytes=[int(s["bytes"]) for s in doc["shards"]],
            shard=np.asarray(rec["shard"], dtype=np.int32),
            offset=np.asarray(rec["offset"], dtype=np.int64),
            length=np.asarray(rec["length"], dtype=np.int64),
            sha256=list(rec["sha256"]),
            error=list(rec["error"]),
            paths=list(rec["path"]),
            labels=np.asarray(rec["label"], dtype=np.int32),
            class_names=list(doc["class_names"]),
            columns={k: list(v) for k, v in doc.get("columns", {}).items()},
            kind=doc.get("kind"),
        )


def read_index(path: str | os.PathLike) -> PackIndex:
    """Read a packed directory's ``index.json`` (``path``: the directory or the file).

    Raises FileNotFoundError when there is no index, ValueError when it is not one.
    """
    root, index_file = _locate(path)
    if not _exists(index_file):
        raise FileNotFoundError(f"no packed index at {index_file} (make one with pack())")
    with open_path(index_file, "rb") as fh:
        raw = fh.read()
    try:
        return PackIndex.from_json(root, json.loads(raw))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{index_file}: not a packed index ({reason_of(exc)})") from exc


# --- packing -----------------------------------------------------------------------------------
# A file larger than the largest decoder's default limit is not packed (recorded as bad).
_PACK_LIMIT = round(max(DEFAULT_MAX_FILE_MB.values()) * MB)


def _read_file(path: str) -> tuple[bytes | None, str]:
    try:
        if _is_remote(path):
            with open_path(path, "rb") as fh:
                return fh.read(), ""
        # the decoders' checked read: a FIFO or a link to /dev/zero is refused, not read
        return bytes(read_file(path, _PACK_LIMIT)), ""
    except Exception as exc:  # recorded in the index; the stream reports it like a loose file
        return None, reason_of(exc)


def _example(data: bytes, label: int, path: str, row: int) -> bytes:
    import tensorflow as tf

    def ints(v: int) -> Any:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    def raw(b: bytes) -> Any:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[b]))

    path_bytes = path.encode("utf-8", "surrogateescape")
    feature = {"data": raw(data), "label": ints(label), "path": raw(path_bytes), "row": ints(row)}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _read_ahead(paths: Sequence[str], workers: int) -> Iterator[tuple[bytes | None, str]]:
    """Each file's bytes (or None and a reason), in order, read ``workers`` at a time."""
    with ThreadPoolExecutor(workers, thread_name_prefix="bytefeed-pack") as pool:
        for start in range(0, len(paths), _READ_AHEAD):
            yield from pool.map(_read_file, paths[start : start + _READ_AHEAD])


class _ShardWriter:
    """Writes records into shards of about ``limit`` bytes, tracking where each one lands."""

    def __init__(self, root: str, limit: int):
        self.root, self.limit = root, limit
        self.names: list[str] = []
        self.sizes: list[int] = []
        self._writer: Any = None
        self._position = 0

    def write(self, payload: bytes) -> tuple[int, int]:
        """Append ``payload``; returns its shard number and the offset of its first byte."""
        import tensorflow as tf

        if self._writer is None or self._position >= self.limit:
            self._close_shard()
            self.names.append(SHARD_NAME.format(len(self.names)))
            self._writer = tf.io.TFRecordWriter(_join(self.root, self.names[-1]))
        start = self._position + _HEADER
        self._writer.write(payload)
        self._position += _FRAMING + len(payload)
        return len(self.names) - 1, start

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self.sizes.append(self._position)
            self._writer, self._position = None, 0

    def close(self) -> None:
        self._close_shard()
        for name, expected in zip(self.names, self.sizes, strict=True):
            actual = _size(_join(self.root, name))
            if actual != expected:  # TFRecord framing is fixed: anything else is a failed write
                raise OSError(f"{name}: {actual} bytes written, {expected} expected")


def _prepare(out_dir: str, overwrite: bool) -> None:
    """Create ``out_dir``; refuse to clobber a pack unless ``overwrite``, then clear its shards."""
    import tensorflow as tf

    if _exists(_join(out_dir, INDEX_NAME)):
        if not overwrite:
            raise FileExistsError(f"{out_dir} already holds a pack (overwrite=True replaces it)")
        tf.io.gfile.remove(_join(out_dir, INDEX_NAME))  # first: a half-rewritten pack is no pack
        for old in tf.io.gfile.glob(_join(out_dir, "shard-*.tfrecord")):
            tf.io.gfile.remove(old)
    tf.io.gfile.makedirs(out_dir)


def pack(
    manifest: Any,
    out_dir: str | os.PathLike,
    shard_mb: float = 64,
    *,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> PackIndex:
    """Copy the files of ``manifest`` into TFRecord shards of about ``shard_mb`` MiB.

    Args:
        manifest: a ``Manifest`` or a manifest file (its order is the records' order).
        out_dir: a local directory or a ``tf.io.gfile`` URL (gs://, s3://, hdfs:// where
            TensorFlow's filesystems are installed); created if missing.
        shard_mb: target shard size; a shard is closed once it reaches this size (a file
            larger than that gets a shard of its own).
        overwrite: replace an existing pack in ``out_dir`` (otherwise FileExistsError).
        workers: threads reading the source files (default: 2 x cores, capped at 32).
        progress: show a progress bar.

    Returns the ``PackIndex`` (also written as ``out_dir/index.json``, last, so a directory
    with an index is a complete pack). A file that cannot be read (missing, permission) is
    kept as a record without data and its reason; the streams report it as a bad file.
    """
    from .manifest import Manifest, read_manifest

    m = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    if len(m) == 0:
        raise ValueError("the manifest is empty: nothing to pack")
    if shard_mb <= 0:
        raise ValueError(f"shard_mb must be > 0, not {shard_mb}")
    root = os.fspath(out_dir)
    _prepare(root, overwrite)
    n = len(m)
    shard, offset, length = np.full(n, -1, np.int32), np.zeros(n, np.int64), np.zeros(n, np.int64)
    sha256, error = [""] * n, [""] * n
    writer = _ShardWriter(root, int(shard_mb * 2**20))
    files = _read_ahead(m.paths, workers or min(32, 2 * (os.cpu_count() or 1)))
    bar = tqdm(files, total=n, desc="pack", unit=" files", disable=not progress, delay=1)
    try:
        for row, (data, reason) in enumerate(bar):
            if data is None:
                error[row] = reason
                continue
            payload = _example(data, m.labels[row], m.paths[row], row)
            # the raw bytes sit unchanged inside the serialised Example; any match is the data
            inner = payload.find(data) if data else 0
            shard[row], start = writer.write(payload)
            offset[row], length[row] = start + inner, len(data)
            sha256[row] = hashlib.sha256(data).hexdigest()
    finally:
        writer.close()
    index = PackIndex(
        root, writer.names, writer.sizes, shard, offset, length, sha256, error,
        list(m.paths), m.labels.copy(), list(m.class_names),
        {k: list(v) for k, v in m.columns.items()}, m.kind,
    )  # fmt: skip
    with open_path(index.path, "wb") as fh:
        fh.write(json.dumps(index.to_json(), separators=(",", ":")).encode("utf-8"))
    return index


# --- reading -----------------------------------------------------------------------------------
class _LocalShards:
    """Local shards: one descriptor each, read with ``os.pread`` (no seek, thread-safe)."""

    def __init__(self, paths: list[str]):
        self._paths = paths
        self._fds: dict[int, int] = {}
        self._lock = threading.Lock()

    def _fd(self, number: int) -> int:
        fd = self._fds.get(number)
        if fd is None:
            with self._lock:
                fd = self._fds.get(number)
                if fd is None:
                    fd = self._fds[number] = os.open(self._paths[number], os.O_RDONLY | _BINARY)
        return fd

    def read(self, number: int, offset: int, length: int) -> bytes:
        fd = self._fd(number)
        chunks, done = [], 0
        while done < length:  # pread may return less than asked (signals, huge reads)
            chunk = os.pread(fd, length - done, offset + done)
            if not chunk:
                break  # end of a truncated shard: the caller reports the short read
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        with self._lock:
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


class _GFileShards:
    """Shards at ``tf.io.gfile`` URLs: a pool of open handles per shard (seek, then read)."""

    def __init__(self, paths: list[str]):
        self._paths = paths
        self._free: dict[int, queue.LifoQueue] = {i: queue.LifoQueue() for i in range(len(paths))}
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def read(self, number: int, offset: int, length: int) -> bytes:
        import tensorflow as tf

        free = self._free[number]
        try:
            fh = free.get_nowait()
        except queue.Empty:  # one handle per concurrent reader of this shard, reused after
            fh = tf.io.gfile.GFile(self._paths[number], "rb")
            with self._lock:
                self._all.append(fh)
        fh.seek(offset)
        data = fh.read(length)
        free.put(fh)
        return data

    def close(self) -> None:
        with self._lock:
            handles, self._all = self._all, []
        for fh in handles:
            fh.close()
        self._free = {i: queue.LifoQueue() for i in range(len(self._paths))}


class PackedSource:
    """A ``Source`` over a packed directory: streams read it as they read a manifest.

    Rows, order, labels, class names and ``path(row)`` (the original file's path) are the
    manifest's, and ``fingerprint()`` equals the manifest's, so a ``state()`` saved while
    reading loose files resumes on the pack and vice versa. ``open(row)`` returns an
    ``io.BytesIO`` of the file's bytes: one read at a known offset in an open shard (local
    shards with ``os.pread``, URLs through ``tf.io.gfile.GFile``).

    With ``check=True`` every record is checked against its SHA-256; a mismatch, a short
    read or a missing shard raises ``BadFileError`` for that record (the stream skips and
    records it, or raises with ``on_error="raise"``). ``verify()`` checks whole shards.
    """

    def __init__(self, index: PackIndex | str | os.PathLike, *, check: bool = True):
        self.index = index if isinstance(index, PackIndex) else read_index(index)
        self.check = bool(check)
        self.labels = self.index.labels
        self.class_names = self.index.class_names
        self.kind = self.index.kind
        paths = self.index.shard_paths
        remote = _is_remote(self.index.root) or not hasattr(os, "pread")
        self._shards: _LocalShards | _GFileShards = (
            _GFileShards(paths) if remote else _LocalShards(paths)
        )
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"<PackedSource {len(self)} records in {len(self.index.shards)} shards>"

    def path(self, row: int) -> str:
        """The original path of row ``row`` (what error reports name)."""
        return self.index.paths[row]

    def read(self, row: int) -> bytes:
        """The raw bytes of row ``row``, checked; BadFileError naming the reason otherwise."""
        ix = self.index
        path = ix.paths[row]
        if ix.error[row]:
            raise BadFileError(ix.error[row], path)
        number, length = int(ix.shard[row]), int(ix.length[row])
        try:
            data = self._shards.read(number, int(ix.offset[row]), length)
        except (OSError, ValueError) as exc:  # tf.errors are OSErrors too
            reason = f"packed shard {ix.shards[number]} unreadable ({reason_of(exc)})"
            raise BadFileError(reason, path) from exc
        if len(data) != length:
            reason = f"packed record cut short ({len(data)} of {length} bytes): truncated shard"
            raise BadFileError(reason, path)
        if self.check and hashlib.sha256(data).hexdigest() != ix.sha256[row]:
            raise BadFileError(f"checksum mismatch in {ix.shards[number]}: corrupted", path)
        return data

    def open(self, row: int) -> BinaryIO:
        """The bytes of row ``row`` as a binary file object (what decoders take)."""
        return io.BytesIO(self.read(row))

    def fingerprint(self) -> str:
        """The manifest's fingerprint (paths, labels, class names)."""
        if self._fingerprint is None:
            self._fingerprint = self.manifest.fingerprint()
        return self._fingerprint

    @property
    def manifest(self) -> Any:
        """The packed rows as a ``Manifest`` of the original paths."""
        return self.index.manifest()

    def verify(self, *, progress: bool = True) -> VerifyReport:
        """Check every shard; see ``verify_pack``."""
        return verify_pack(self.index, progress=progress)

    def close(self) -> None:
        """Close the open shard files (reading again reopens them)."""
        self._shards.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter shutdown there is no one to tell
            self.close()


def read_packed(path: str | os.PathLike, *, check: bool = True) -> PackedSource:
    """Open a packed directory (or its ``index.json``) as a ``PackedSource``.

    Pass the result, or the directory itself, wherever a stream takes a manifest:
    ``image_batches(read_packed("packed/"), ...)``. ``check=False`` skips the per-record
    SHA-256 (TFRecord's own CRCs are then checked only by ``verify_pack`` and tf.data).
    """
    return PackedSource(path, check=check)


# --- verifying ---------------------------------------------------------------------------------
@dataclass
class VerifyReport:
    """What ``verify_pack`` found: ``problems`` holds ``(shard, path, reason)`` triples."""

    records: int
    shards: int
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def bad_shards(self) -> list[str]:
        """Names of the shards with at least one problem, sorted."""
        return sorted({shard for shard, _, _ in self.problems})

    def summary(self) -> str:
        return (
            f"{self.records} records in {self.shards} shards checked, "
            f"{len(self.problems)} problems in {len(self.bad_shards)} shards"
        )

    def __str__(self) -> str:
        return "\n".join([self.summary(), *(f"{s}: {p}: {r}" for s, p, r in self.problems)])


def _framing_problem(shard_path: str, expected: int) -> str | None:
    """Read the shard with ``tf.data.TFRecordDataset`` (CRC32C of every record), or a reason."""
    import tensorflow as tf

    count = 0
    try:
        for _ in tf.data.TFRecordDataset(shard_path):
            count += 1
    except tf.errors.OpError as exc:
        return f"TFRecord framing broken after record {count}: {exc.message.strip()}"
    if count != expected:
        return f"holds {count} records, the index lists {expected}"
    return None


def verify_pack(packed: PackIndex | str | os.PathLike, *, progress: bool = True) -> VerifyReport:
    """Check a pack: every shard present at its size, TFRecord CRCs, every record's SHA-256.

    Returns a ``VerifyReport``; ``report.bad_shards`` names the corrupted shards and
    ``report.problems`` says what is wrong where. Rows packed without data (unreadable at
    packing time) are not problems of the pack. Never raises for a damaged pack.
    """
    index = packed if isinstance(packed, PackIndex) else read_index(packed)
    source = PackedSource(index, check=True)
    report = VerifyReport(records=int((index.shard >= 0).sum()), shards=len(index.shards))
    try:
        bar = tqdm(range(len(index.shards)), desc="verify", unit=" shards", disable=not progress)
        for number in bar:
            name, path = index.shards[number], index.shard_path(number)
            rows = np.flatnonzero(index.shard == number)
            try:
                size = _size(path)
            except Exception as exc:  # missing or unreadable: every record of it is lost
                report.problems.append((name, "", f"shard unreadable ({reason_of(exc)})"))
                continue
            if size != index.shard_bytes[number]:
                msg = f"shard is {size} bytes, the index says {index.shard_bytes[number]}"
                report.problems.append((name, "", msg))
            framing = _framing_problem(path, len(rows))
            if framing:
                report.problems.append((name, "", framing))
            for row in rows.tolist():
                try:
                    source.read(row)
                except BadFileError as exc:
                    report.problems.append((name, exc.path or "", exc.reason))
    finally:
        source.close()
    return report
