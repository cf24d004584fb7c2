"""A disk cache of decoded samples: decode once, then read every later epoch from one file.

``image_batches(..., cache="cache/")`` (and the audio and text front-ends) wrap their per-file
decoder with a ``SampleCache``. The first epoch decodes as usual and also writes each sample,
as the decoder returned it (resized, resampled, tokenised; before augmentation, which runs on
whole batches afterwards), into row ``i`` of one ``.npy`` file. Later epochs read row ``i``
back with a single positioned read instead of opening and decoding the file: far faster, and
memory stays flat (reads go through the page cache; rows under 16 KB through a memory map whose
pages are dropped from the process every 32 MB read).
Once the cache is complete, an epoch with no augmentation or postprocess to run is read in
the calling thread: a whole batch is one read per row, cheaper than a hand-off to a worker.

Layout of a cache folder; several streams can share one::

    cache/
      <key>/                      complete: only ever created by one atomic rename
        samples.npy               [rows, *sample_shape], np.load(..., mmap_mode="r") opens it
        status.npy                uint8 [rows]: 1 stored, 2 failed (reason in meta.json)
        lengths.npy               int64 [rows], only for variable-length (text) samples
        meta.json                 key, shape, dtype, failed rows and their reasons
      .partial-<key>-<pid>-<id>/  being written by process <pid>; never read as complete

``<key>`` hashes the manifest (paths, labels, classes and every file's size and mtime), the
stream's decode settings (``stream.options``) and the decoder itself (its keywords and the
source of its module), so changing a file, a setting or the decoding code makes a new cache.
Rows are written as the epoch reaches them, in any order; when every row has been stored or
has failed, the files are flushed to disk, ``meta.json`` is written (via ``os.replace``) and
the partial folder is renamed to ``<key>``. A process killed mid-epoch therefore leaves only
a partial folder, which a later process deletes and rebuilds from scratch. Files that failed
are remembered with their reason: later epochs skip (or raise for) them exactly as the first
did, without touching them again.

Limits, by design:

- Samples must share one shape and dtype (images, fixed-length audio), or be 1-D up to a
  fixed capacity (text with ``max_length``). A stream whose samples vary otherwise, or whose
  decode settings cannot be keyed, streams uncached with one warning.
- Audio with ``crop="random"`` is not cached: a cached crop would repeat every epoch, which
  is not what random crops are for. Such streams warn once and read the files. Use
  ``crop="start"``/``"center"`` (validation streams do by default) to cache audio.
- A sharded stream decodes only its shard's rows, so its cache serves later epochs of the
  same process but never completes on disk.
- Caches are never deleted automatically: ``clear_cache(folder)`` removes them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import mmap
import os
import shutil
import threading
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Decoder
from .errors import BadFileError, BytefeedWarning, reason_of
from .packed import PackedSource
from .sources import FileSource, Source

CACHE_VERSION = 1
SAMPLES, STATUS, LENGTHS, META = "samples.npy", "status.npy", "lengths.npy", "meta.json"
_EMPTY, _STORED, _FAILED = 0, 1, 2
_PARTIAL = ".partial-"


class Unkeyable(TypeError):
    """A decode setting that has no stable identity, so no cache key can be built."""


# --- keys ---------------------------------------------------------------------------------------
def _value_key(value: Any) -> Any:
    """A JSON-able stand-in for a decode setting, equal whenever the setting is."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_value_key(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value_key(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if callable(getattr(value, "get_vocabulary", None)):  # keras.layers.TextVectorization
        vocab = json.dumps(list(value.get_vocabulary()), ensure_ascii=False)
        return {"type": type(value).__qualname__, "vocabulary": _sha(vocab.encode())}
    if callable(getattr(value, "get_config", None)):  # WordTokenizer and other Keras-style objects
        config = json.dumps(value.get_config(), sort_keys=True, default=str, ensure_ascii=False)
        return {"type": type(value).__qualname__, "config": _sha(config.encode())}
    if callable(value):
        return decoder_identity(value)
    raise Unkeyable(f"cannot build a cache key from a {type(value).__name__} setting")


def decoder_identity(fn: Callable) -> dict:
    """What identifies a decoder: its name, the source of its module, and its settings.

    ``Decoder`` and ``functools.partial`` objects are unwrapped (their arguments are
    settings). Hashing the module's source means a change to the decoding code invalidates
    caches it filled.
    """
    if isinstance(fn, Decoder):
        return {"decoder": decoder_identity(fn.fn), "takes_rng": fn.takes_rng}
    if isinstance(fn, functools.partial):
        return {
            "func": decoder_identity(fn.func),
            "args": [_value_key(a) for a in fn.args],
            "keywords": _value_key(dict(fn.keywords)),
        }
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"
    try:
        source = inspect.getsourcefile(inspect.getmodule(fn) or fn)
        code = _sha(Path(source).read_bytes()) if source else ""
    except (TypeError, OSError):
        code = ""
    return {"name": name, "code": code}


def source_fingerprint(source: Source) -> str:
    """The identity of a source's contents, for cache keys.

    Manifests of loose files hash their paths, labels and each file's size and mtime; packed
    sources their records' SHA-256; other sources their own ``fingerprint()``.
    """
    if isinstance(source, FileSource):
        return source.manifest.fingerprint(stat=True)
    if isinstance(source, PackedSource):
        return _sha((source.fingerprint() + "".join(source.index.sha256)).encode())
    return source.fingerprint()


def cache_key(source: Source, decode: Callable, kind: str, options: dict) -> str:
    """A hex key for ``source`` decoded by ``decode``; raises ``Unkeyable`` if none exists."""
    doc = {
        "version": CACHE_VERSION,
        "kind": kind,
        "rows": len(source),
        "options": _value_key(dict(options)),
        "decoder": decoder_identity(decode),
        "source": source_fingerprint(source),
    }
    return _sha(json.dumps(doc, sort_keys=True).encode())[:32]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- low-level I/O: positioned reads, or a map released as it is read --------------------------
# Rows smaller than this are read through a memory map of a complete cache: a system call
# per 3 KB row costs more than copying it (32 such rows: ~50 us by preadv, ~10 us mapped).
# Larger rows are read with preadv, which is as fast for them without mapping the file.
_MAP_ROWS_UNDER = 16 << 10
# After this many bytes read through the map, its pages are dropped from the process (the
# page cache keeps them), so resident memory stays flat however large the cache.
_MAP_RELEASE = 32 << 20
_IO_LOCK = threading.Lock()  # only for platforms without os.pread/os.pwrite


def _pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    with _IO_LOCK:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, size)


def _pread_into(fd: int, buffer: memoryview, offset: int) -> int:
    """Fill ``buffer`` from ``offset`` of ``fd``; the number of bytes read."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [buffer], offset)
    data = _pread(fd, len(buffer), offset)
    buffer[: len(data)] = data
    return len(data)


def _pwrite(fd: int, data: Any, offset: int) -> None:
    view = memoryview(data).cast("B")
    while len(view):
        if hasattr(os, "pwrite"):
            done = os.pwrite(fd, view, offset)
        else:
            with _IO_LOCK:
                os.lseek(fd, offset, os.SEEK_SET)
                done = os.write(fd, view)
        view, offset = view[done:], offset + done


def _pid_alive(pid: int) -> bool:
    import psutil

    return pid == os.getpid() or psutil.pid_exists(pid)


def _write_json_atomic(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not possible on Windows: harmless
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --- the cache -----------------------------------------------------------------------------------
class SampleCache:
    """Decoded samples of one stream, one row per manifest row, on disk.

    Args:
        folder: the cache folder (created if needed); see the module docs for its layout.
        key: this stream's key (``cache_key``).
        rows: number of rows of the source.
        capacity: for variable-length 1-D samples (text), the longest sample; samples are
            stored zero-padded to it with their length. None: samples share one shape.
        name: the stream's name, for warnings.

    ``get(row)`` returns a stored sample (a read-only array), raises ``BadFileError`` with the
    recorded reason for a row that failed, or returns None when the row is not stored yet.
    ``put(row, sample)`` and ``fail(row, reason)`` record a row; the cache completes itself
    once every row is recorded. ``hits`` and ``misses`` count ``get`` calls.
    Thread-safe: the engine's workers call it concurrently.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        key: str,
        rows: int,
        *,
        capacity: int | None = None,
        name: str = "stream",
    ):
        self.root = Path(folder)
        self.key = key
        self.rows = int(rows)
        self.capacity = capacity
        self.name = name
        self.hits = 0
        self.misses = 0
        self.complete = False
        self.disabled = False
        self._lock = threading.Lock()
        self._status = np.zeros(self.rows, np.uint8)
        # a length per row exactly when samples are padded to a capacity
        self._lengths = np.zeros(self.rows, np.int64) if capacity is not None else None
        self._reasons: dict[int, str] = {}
        self._recorded = 0
        self._fd: int | None = None
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self._offset = 0
        self._row_bytes = 0
        self._map: mmap.mmap | None = None
        self._mapped: np.ndarray | None = None  # uint8 [rows, row_bytes] over the map
        self._mapped_reads = 0
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / key
        self._remove_stale_partials()
        if not self._attach(self.path):
            self.path = self.root / f"{_PARTIAL}{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{self._recorded}/{self.rows} rows"
        return f"<SampleCache {self.path} {state}, {self.hits} hits, {self.misses} misses>"

    @property
    def nbytes(self) -> int:
        """Bytes the stored samples take on disk (0 before the first is stored)."""
        return self.rows * self._row_bytes

    # --- opening a complete cache -----------------------------------------------------------
    def _attach(self, folder: Path) -> bool:
        """Read ``folder`` as a complete cache of this key; False if it is not one."""
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
            if meta.get("key") != self.key or meta.get("rows") != self.rows:
                return False
            status = np.load(folder / STATUS)
            lengths = np.load(folder / LENGTHS) if self.capacity is not None else None
            fd = None
            if meta.get("shape") is not None:
                fd = os.open(folder / SAMPLES, os.O_RDONLY | getattr(os, "O_BINARY", 0))
                self._set_layout(fd, tuple(meta["shape"]), np.dtype(meta["dtype"]))
                if os.fstat(fd).st_size < self._offset + self.nbytes:
                    raise ValueError("samples file shorter than its header says")
        except (OSError, ValueError, KeyError, TypeError):
            if "fd" in locals() and fd is not None:
                os.close(fd)
            return False
        if status.shape != (self.rows,) or (lengths is not None and lengths.shape != status.shape):
            return False
        self._fd, self._status, self._lengths = fd, status, lengths
        self._reasons = {int(k): str(v) for k, v in meta.get("failed", {}).items()}
        self._recorded, self.complete, self.path = self.rows, True, folder
        return True

    def _set_layout(self, fd: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        with os.fdopen(os.dup(fd), "rb") as fh:
            version = np.lib.format.read_magic(fh)
            header = (
                np.lib.format.read_array_header_1_0(fh)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(fh)
            )
            if header[0] != (self.rows, *shape) or header[2] != dtype:
                raise ValueError("samples file does not match meta.json")
            self._offset = fh.tell()
        self._shape, self._dtype = shape, dtype
        self._row_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    def _remove_stale_partials(self) -> None:
        """Delete partial caches left by processes that are gone (killed mid-epoch)."""
        for entry in self.root.glob(f"{_PARTIAL}*"):
            try:
                pid = int(entry.name.rsplit("-", 2)[-2])
            except (ValueError, IndexError):
                continue
            if not _pid_alive(pid):
                shutil.rmtree(entry, ignore_errors=True)

    # --- reading ----------------------------------------------------------------------------
    def get(self, row: int) -> np.ndarray | None:
        """Row ``row``'s stored sample, None if not stored; BadFileError if it failed."""
        state = self._status[row]
        if state == _FAILED:
            self._count(hit=True)
            raise BadFileError(self._reasons.get(row, "failed when the cache was built"))
        data = None
        if state == _STORED and self._fd is not None:
            with contextlib.suppress(OSError):
                data = _pread(self._fd, self._row_bytes, self._offset + row * self._row_bytes)
        if data is None or len(data) != self._row_bytes:  # not stored, or the file was cut
            self._count(hit=False)
            return None
        self._count(hit=True)
        sample = np.frombuffer(data, self._dtype).reshape(self._shape)
        return sample[: self._lengths[row]] if self._lengths is not None else sample

    def read_rows(self, rows: list[int], out: np.ndarray) -> bool:
        """Read stored rows ``rows`` straight into ``out[i]`` (``[len(rows), *shape]``), one
        positioned read each: no per-row array and no stacking copy. False, with ``out`` in
        no particular state, unless every row is stored and samples have one shape."""
        if self._fd is None or self._lengths is not None:
            return False
        if not (self._status[rows] == _STORED).all():
            return False
        fd, size, offset = self._fd, self._row_bytes, self._offset
        mapped = self._rows_mapped()
        if mapped is not None and os.fstat(fd).st_size >= offset + self.nbytes:
            # (a file cut under a map would kill the process on access, hence the size check)
            # mode="clip" writes straight into ``out`` ("raise" buffers); rows are in range
            np.take(
                mapped, rows, axis=0, out=out.reshape(len(rows), -1).view(np.uint8), mode="clip"
            )
            self._after_mapped_read(len(rows) * size)
            return True
        try:
            for i, row in enumerate(rows):
                if _pread_into(fd, memoryview(out[i]).cast("B"), offset + row * size) != size:
                    return False  # the file was cut under us
        except OSError:
            return False
        with self._lock:
            self.hits += len(rows)
        return True

    def _rows_mapped(self) -> np.ndarray | None:
        """The samples of a complete cache of small rows as a read-only ``uint8 [rows, bytes]``
        array over a memory map (made on first use); None where rows are read with preadv."""
        if self._mapped is not None:
            return self._mapped
        if not (self.complete and 0 < self._row_bytes < _MAP_ROWS_UNDER and self._fd is not None):
            return None
        if not hasattr(mmap, "MADV_DONTNEED"):
            return None  # no way to keep resident memory flat
        with self._lock:
            if self._mapped is None:
                try:
                    if os.fstat(self._fd).st_size < self._offset + self.nbytes:
                        return None  # cut short: the positioned reads say which rows are gone
                    self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    return None
                rows = np.frombuffer(self._map, np.uint8, self.nbytes, self._offset)
                self._mapped = rows.reshape(self.rows, self._row_bytes)
        return self._mapped

    def _after_mapped_read(self, nbytes: int) -> None:
        with self._lock:
            self.hits += nbytes // self._row_bytes
            self._mapped_reads += nbytes
            if self._mapped_reads >= _MAP_RELEASE and self._map is not None:
                self._mapped_reads = 0
                self._map.madvise(mmap.MADV_DONTNEED)

    @property
    def serves_every_row(self) -> bool:
        """Every row is stored or has failed: no file needs opening any more."""
        return self.complete and not self.disabled

    def read_batch(self, rows: list[int]) -> np.ndarray | None:
        """The samples of ``rows`` stacked into one new array, read in one go; None unless
        every row is stored (the engine then takes them one by one)."""
        if self._shape is None or self._dtype is None:
            return None
        out = np.empty((len(rows), *self._shape), self._dtype)
        return out if self.read_rows(rows, out) else None

    def _count(self, *, hit: bool) -> None:
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    # --- writing ----------------------------------------------------------------------------
    def put(self, row: int, sample: Any) -> None:
        """Store ``row``'s decoded sample (ignored once complete, disabled or already stored)."""
        if self.complete or self.disabled or self._status[row] != _EMPTY:
            return
        try:
            array = self._slot(row, np.asarray(sample))
            if array is None:
                return
            with self._lock:
                fd = self._fd if self._fd is not None else self._create(array)
            if array.shape != self._shape or array.dtype != self._dtype:
                self._disable(
                    f"samples differ in shape or dtype ({array.shape} {array.dtype} vs "
                    f"{self._shape} {self._dtype})"
                )
                return
            _pwrite(fd, np.ascontiguousarray(array), self._offset + row * self._row_bytes)
        except OSError as exc:  # disk full, read-only folder...: stream on, uncached
            self._disable(f"cannot write the cache ({reason_of(exc)})")
            return
        self._mark(row, _STORED)

    def fail(self, row: int, reason: str) -> None:
        """Record that ``row`` could not be decoded, and why."""
        if self.complete or self.disabled or self._status[row] != _EMPTY:
            return
        self._reasons[row] = reason
        self._mark(row, _FAILED)

    def _slot(self, row: int, array: np.ndarray) -> np.ndarray | None:
        """``array`` as stored: padded to ``capacity`` (recording its length) if ragged."""
        if array.dtype.hasobject:
            self._disable("samples hold Python objects")
            return None
        lengths = self._lengths
        if self.capacity is None or lengths is None:  # None together (see __init__)
            return array
        if array.ndim != 1 or len(array) > self.capacity:
            self._disable(f"samples are not 1-D of at most {self.capacity} items")
            return None
        padded = np.zeros(self.capacity, array.dtype)
        padded[: len(array)] = array
        lengths[row] = len(array)
        return padded

    def _create(self, first: np.ndarray) -> int:
        """Create the partial folder and a sparse ``samples.npy`` shaped after ``first``;
        returns the samples file's descriptor (also kept as ``self._fd``)."""
        need = self.rows * first.nbytes
        self.path.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.path).free
        if need > free:
            raise OSError(f"needs {need / 2**20:.0f} MiB, {free / 2**20:.0f} MiB free")
        target = self.path / SAMPLES
        mm = np.lib.format.open_memmap(target, "w+", first.dtype, (self.rows, *first.shape))
        del mm  # only its header was written; the rest stays a sparse file until rows land
        fd = self._fd = os.open(target, os.O_RDWR | getattr(os, "O_BINARY", 0))
        self._set_layout(fd, first.shape, first.dtype)
        return fd

    def _mark(self, row: int, state: int) -> None:
        with self._lock:
            if self._status[row] != _EMPTY or self.disabled:
                return
            self._status[row] = state
            self._recorded += 1
            finished = self._recorded == self.rows
        if finished:
            self._complete()

    def _complete(self) -> None:
        """Flush everything, write meta.json, then publish the folder with one rename."""
        try:
            if self._fd is not None:
                os.fsync(self._fd)
            np.save(self.path / STATUS, self._status)
            if self._lengths is not None:
                np.save(self.path / LENGTHS, self._lengths)
            meta = {
                "key": self.key,
                "version": CACHE_VERSION,
                "rows": self.rows,
                "shape": None if self._shape is None else list(self._shape),
                "dtype": None if self._dtype is None else self._dtype.str,
                "failed": {str(r): reason for r, reason in sorted(self._reasons.items())},
            }
            self.path.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(self.path / META, meta)
            final = self.root / self.key
            if final.exists() and not _is_complete(final, self.key):
                shutil.rmtree(final, ignore_errors=True)  # a broken leftover: replace it
            try:
                os.rename(self.path, final)
            except OSError:  # another process published the same key first: use theirs
                shutil.rmtree(self.path, ignore_errors=True)
            _fsync_dir(self.root)
        except OSError as exc:
            self._disable(f"cannot finish the cache ({reason_of(exc)})")
            return
        # The open file descriptor stays: it is the same file under its final name, and
        # other workers may be reading through it right now.
        self.complete, self.path = True, final

    def _disable(self, why: str) -> None:
        with self._lock:
            if self.disabled:
                return
            self.disabled = True
        warnings.warn(
            f"{self.name}: sample cache off ({why}); decoding every epoch", BytefeedWarning, 3
        )
        # The file descriptor stays open (workers may be using it); the partial files go.
        if not self.complete:
            shutil.rmtree(self.path, ignore_errors=True)

    def close(self) -> None:
        """Close the samples file (a partial cache stays on disk until a later cleanup)."""
        fd, self._fd = self._fd, None
        self._mapped, mapped = None, self._map
        self._map = None
        if mapped is not None:
            with contextlib.suppress(BufferError, OSError):
                mapped.close()
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


def _is_complete(folder: Path, key: str) -> bool:
    try:
        return json.loads((folder / META).read_text(encoding="utf-8")).get("key") == key
    except (OSError, ValueError):
        return False


# --- wiring a cache into a stream ------------------------------------------------------------
def attach_cache(
    folder: str | os.PathLike,
    source: Source,
    decode: Decoder,
    *,
    kind: str,
    settings: dict | None = None,
    name: str = "stream",
) -> SampleCache | None:
    """The ``SampleCache`` in ``folder`` for ``source`` decoded by ``decode`` with ``settings``
    (the engine's ``store``); None, with one warning, when this stream cannot be cached
    (random audio crops, text without ``max_length``, unkeyable settings).
    """
    settings = dict(settings or {})
    if settings.get("crop") == "random":
        warnings.warn(
            f"{name}: random crops differ every epoch, so they are not cached; pass "
            "crop='start' or 'center' to cache this audio stream",
            BytefeedWarning,
            stacklevel=4,
        )
        return None
    capacity = None
    if kind == "text":
        capacity = settings.get("max_length")
        if capacity is None:
            warnings.warn(
                f"{name}: text streams are cached only with max_length; streaming uncached",
                BytefeedWarning,
                stacklevel=4,
            )
            return None
    try:
        key = cache_key(source, decode, kind, settings)
    except Unkeyable as exc:
        warnings.warn(f"{name}: not cached ({exc})", BytefeedWarning, stacklevel=4)
        return None
    return SampleCache(folder, key, len(source), capacity=capacity, name=name)


def clear_cache(folder: str | os.PathLike) -> int:
    """Delete every cache (complete or partial) in ``folder``; returns how many were removed."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    removed = 0
    for entry in root.iterdir():
        if entry.is_dir() and ((entry / META).exists() or entry.name.startswith(_PARTIAL)):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
