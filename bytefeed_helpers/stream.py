"""``Stream``: the engine as a ``keras.utils.PyDataset`` and as a plain Python iterable.

``model.fit(stream, validation_data=other)`` works on every Keras 3 backend, because Keras
reads a PyDataset by index; plain ``for x, y in stream`` runs one epoch per loop. Both
paths share the engine's prefetching workers, its error records and its cursor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from .engine import Batch, BatchEngine
from .errors import BadFileError, SkippedFile


class Stream(keras.utils.PyDataset):
    """Batches of one kind of file, decoded lazily in parallel; an epoch per iteration.

    Iterating yields one epoch of ``(x, y)`` NumPy batches (``(x, y, paths)`` with
    ``with_paths=True``), ``y`` ``int32 [B]`` label ids (``-1`` for unlabelled rows); the
    next iteration yields the next epoch, reshuffled. ``len(stream)`` is the number of
    batches per epoch. A batch holds only good samples: it comes out short by the files that
    were skipped (a batch whose every file failed is left out when iterating; Keras, which
    asks by index, gets the next batch that has a good file instead). Skipped files are in
    ``errors`` and summarised by one ``BytefeedWarning`` per epoch.

    Keras reads ``(x, y)`` only: a 3-tuple would be taken as sample weights, so streams built
    ``with_paths=True`` are for iteration and inspection, not ``fit``.

    Build streams with ``image_batches``, ``audio_batches`` or ``text_batches``.
    """

    def __init__(self, engine: BatchEngine, *, with_paths: bool = False, kind: str = ""):
        super().__init__()  # workers=1: Keras must not add threads on top of the engine's
        self.engine = engine
        self.with_paths = bool(with_paths)
        self.kind = kind
        self.options: dict = {}
        self._live: Iterator[Batch] | None = None
        self._live_epoch = -1
        self._served: dict[int, Batch] = {}
        self._keras_epoch_open = False

    # --- facts ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.engine)

    @property
    def class_names(self) -> list[str]:
        return list(self.engine.source.class_names)

    @property
    def errors(self) -> list[SkippedFile]:
        """Every file skipped so far, as ``SkippedFile(path, reason, epoch)`` records."""
        return self.engine.errors

    @property
    def batch_size(self) -> int:
        return self.engine.batch_size

    @property
    def epoch(self) -> int:
        return self.engine.epoch

    @property
    def seed(self) -> int:
        return self.engine.seed

    @property
    def augment(self) -> Any:
        return self.engine.augment

    @augment.setter
    def augment(self, value: Any) -> None:
        self.engine.augment = value

    @property
    def augment_enabled(self) -> bool:
        """Whether augmentation runs (it only ever runs on training streams)."""
        return (
            self.engine.training and self.engine.augment is not None and self.engine.augment_enabled
        )

    @augment_enabled.setter
    def augment_enabled(self, value: bool) -> None:
        self.engine.augment_enabled = bool(value)

    def __repr__(self) -> str:
        e = self.engine
        return (
            f"<Stream {self.kind} {len(e.source)} files, {len(self)} batches of {e.batch_size}, "
            f"epoch {e.epoch}, {len(e.errors)} skipped>"
        )

    def state(self) -> dict:
        """A small JSON-serialisable dict; ``resume=state`` on a stream built with the same
        arguments continues exactly here (nothing repeated or lost)."""
        return self.engine.state()

    def write_errors(self, path: str | os.PathLike) -> int:
        """Save ``errors`` as a CSV (``path,reason,epoch``); returns the number of rows."""
        return self.engine.write_errors(path)

    # --- plain iteration ------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple]:
        """The rest of the current epoch (all of it, unless a loop broke off earlier)."""
        self._drop_live()
        for batch in self.engine.batches():
            yield self._format(batch)

    def _format(self, batch: Batch) -> tuple:
        if self.with_paths:
            return batch.x, batch.y, np.asarray(batch.paths, dtype=object)
        return batch.x, batch.y

    # --- Keras' indexed access ------------------------------------------------------------
    def __getitem__(self, index: int) -> tuple:
        """Batch ``index`` of the current epoch (Keras asks 0, 1, ... in order)."""
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"batch {index} out of range for {n} batches")
        batch = self._served.get(index) or self._take(index)
        for step in range(1, n):  # every file of this batch failed: lend the next good one
            if not batch.empty:
                break
            batch = self._served.get((index + step) % n) or self._build((index + step) % n)
        if batch.empty:
            raise BadFileError(
                f"no file of this stream could be decoded ({len(self.errors)} skipped)"
            )
        return self._format(batch)

    def _take(self, index: int) -> Batch:
        e = self.engine
        if self._live is not None and self._live_epoch == e.epoch and index == e.position:
            batch = self._next_live(index)
        elif self._live is None and index == e.position:
            self._live, self._live_epoch = e.slots(), e.epoch
            batch = self._next_live(index)
        else:  # out of order: build it here, leaving the prefetching iterator alone
            return self._build(index)
        self._served = {k: v for k, v in self._served.items() if k >= index - 2}
        self._served[index] = batch
        return batch

    def _next_live(self, index: int) -> Batch:
        batch = next(self._live)
        assert batch.slot == index, (batch.slot, index)
        return batch

    def _build(self, index: int) -> Batch:
        batch = self.engine.build(self.engine.epoch, index)
        self.engine.record(self.engine.epoch, batch)
        return batch

    def on_epoch_begin(self) -> None:
        self._keras_epoch_open = True

    def on_epoch_end(self) -> None:
        """Keras calls this after each epoch: move on to the next one, reshuffled.

        Keras also calls it when it resets an iterator before any epoch began; that call is
        ignored, so the epoch count matches the epochs trained.
        """
        if not self._keras_epoch_open:
            return
        self._keras_epoch_open = False
        self._drop_live()
        self.engine.end_epoch()

    # --- shutting down --------------------------------------------------------------------
    def _drop_live(self) -> None:
        self._served = {}
        if self._live is not None:
            live, self._live = self._live, None
            live.close()

    def close(self) -> None:
        """Stop any worker threads now (also happens on garbage collection and exit)."""
        self._drop_live()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_stream(
    manifest: Any,
    decode: Any,
    collate: Any,
    *,
    kind: str,
    with_paths: bool = False,
    options: dict | None = None,
    **engine_options: Any,
) -> Stream:
    """Build a ``Stream`` over ``manifest`` (a ``Manifest``, a manifest file or a source).

    The front-ends (``image_batches``, ``audio_batches``, ``text_batches``) call this with
    their decoder and collate step; ``engine_options`` go to ``BatchEngine``. ``options``
    records the front-end's decoding settings as ``stream.options`` (for caches, the
    TensorFlow pipeline and predicting single files the same way).
    """
    source = as_source(manifest, kind)
    engine = BatchEngine(source, decode, collate, name=f"{kind}_batches", **engine_options)
    stream = Stream(engine, with_paths=with_paths, kind=kind)
    stream.options = dict(options or {})
    return stream


def as_source(manifest: Any, kind: str | None = None) -> Any:
    """A ``Source`` from a ``Manifest``, a path to a manifest file, or a source as it is."""
    from .engine import FileSource
    from .manifest import Manifest, read_manifest

    if isinstance(manifest, (str, os.PathLike)):
        manifest = read_manifest(manifest, kind=kind)
    if isinstance(manifest, Manifest):
        if len(manifest) == 0:
            raise ValueError("the manifest is empty: no files to stream")
        return FileSource(manifest)
    if hasattr(manifest, "open") and hasattr(manifest, "labels"):
        return manifest
    raise TypeError(f"expected a Manifest, a manifest path or a source, not {type(manifest)}")
