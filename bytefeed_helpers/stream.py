"""``Stream``: the engine as a ``keras.utils.PyDataset`` and as a plain Python iterable.

``model.fit(stream, validation_data=other)`` works on every Keras 3 backend, because Keras
reads a PyDataset by index; plain ``for x, y in stream`` runs one epoch per loop. Both
paths share the engine's prefetching workers, its error records and its cursor.
"""

from __future__ import annotations

import inspect
import os
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from typing import Any

import keras
import numpy as np

from .cache import SampleCache, attach_cache
from .engine import Batch, BatchEngine, Collate, Decoder
from .errors import BadFileError, SkippedFile
from .options import Kind, StreamOptions
from .sources import as_source

#: ``(x, lengths) -> model inputs``: the last step of a batch, after augmentation and
#: features (``lengths`` is ``Batch.lengths``, None for same-shape samples).
ModelInputs = Callable[[Any, np.ndarray | None], Any]


class Stream(keras.utils.PyDataset):
    """Batches of one kind of file, decoded lazily in parallel; an epoch per iteration.

    Iterating yields one epoch of ``(x, y)`` NumPy batches (``(x, y, paths)`` with
    ``with_paths=True``; ``(x, y, sample_weight)`` with ``batch_policy="pad"``; ``x`` alone
    with ``label_mode=None``), ``y`` by ``label_mode``: ``int32 [B]`` label ids (``-1`` for
    unlabelled rows, the default "int"), one-hot ``float32 [B, C]`` ("categorical") or
    ``float32 [B, 1]`` ("binary"); the next iteration yields the next epoch, reshuffled. ``len(stream)`` is the number of
    batches per epoch. A batch holds only good samples: it comes out short by the files that
    were skipped (a batch whose every file failed is left out when iterating; Keras, which
    asks by index, gets the next batch that has a good file instead). Skipped files are in
    ``errors`` and summarised by one ``BytefeedWarning`` per epoch.

    ``x`` is a NumPy batch as the front-end documents it, or what its ``inputs`` step makes of
    it (``{"audio": x, "lengths": ...}`` for ``audio_batches(lengths=True)``); raw text
    (``text_batches(output="text")``) comes as a ``tf.string`` batch.

    Keras reads ``(x, y)`` only: a 3-tuple would be taken as sample weights, so streams built
    ``with_paths=True`` are for iteration and inspection, not ``fit``.

    Build streams with ``image_batches``, ``audio_batches`` or ``text_batches``.
    """

    def __init__(self, engine: BatchEngine, *, with_paths: bool = False, kind: str = ""):
        super().__init__()  # workers=1: Keras must not add threads on top of the engine's
        self.engine = engine
        self.with_paths = bool(with_paths)
        self.kind = kind
        self.options: dict = {}  # the front-end's decoding settings (image size, rate, ...)
        self.cache: SampleCache | None = None
        self.tokenizer: Any = None  # text streams: what maps a document to token ids
        # what the model gets from a batch's x and its samples' lengths (a channel axis, a
        # dict with the lengths); None: x as it is. Set by ``make_stream(inputs=...)``.
        self.inputs: ModelInputs | None = None
        self._live: Generator[Batch, None, None] | None = (
            None  # prefetching sequence for Keras' requests
        )
        self._iterator: weakref.ref[Generator[tuple, None, None]] | None = None  # plain loop
        self._live_next = -1  # global batch position it yields next
        self._peeked: dict[int, Batch] = {}  # batches asked for outside a Keras epoch
        self._keras_epoch_open = False
        self._keras_lock = threading.Lock()
        # global position after each batch handed to Keras and not yet part of a closed epoch
        self._requests: list[int] = []

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
        self.engine.close_processes()  # worker processes hold the old one: new ones next epoch

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

    def to_tf_dataset(self, **kwargs: Any) -> Any:
        """This stream's epoch as a ``tf.data.Dataset`` of TensorFlow ops (for the tf.data
        service); see ``bytefeed_helpers.tf_pipeline.to_tf_dataset`` for ``kwargs``."""
        from .tf_pipeline import to_tf_dataset

        return to_tf_dataset(self, **kwargs)

    # --- Keras' own parallelism knobs ------------------------------------------------------
    # Every PyDataset has ``workers`` and ``use_multiprocessing``. Keras would read a stream
    # from several threads (batches out of order) or processes (each with its own cursor:
    # duplicated and missing samples); the stream's engine already decodes on its own
    # threads, so these stay at 1 and False.
    @property
    def workers(self) -> int:
        return 1

    @workers.setter
    def workers(self, value: int) -> None:
        if value not in (None, 1):
            raise ValueError(
                "workers must stay 1 on a bytefeed stream: Keras's own workers would read its "
                "batches out of order. The stream decodes on its own threads: pass workers=N "
                f"when building it ({self.engine.workers} now). Received: workers={value!r}"
            )

    @property
    def use_multiprocessing(self) -> bool:
        return False

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        if value:
            raise ValueError(
                "use_multiprocessing must stay False on a bytefeed stream: each process would "
                "keep its own cursor and the epoch would repeat and miss samples. The stream "
                f"decodes on its own threads. Received: use_multiprocessing={value!r}"
            )

    # --- plain iteration ------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple]:
        """The rest of the current epoch (all of it, unless a loop broke off earlier).

        One iterator at a time: a second one while the first is live (started and not
        finished) would share the cursor and hand out the same batches twice, so it raises
        RuntimeError instead. An iterator made but never started is superseded by a newer
        one (``tqdm.auto`` makes one it never uses) and raises if it is started later.
        """
        live = self._iterator() if self._iterator is not None else None
        if live is not None and inspect.getgeneratorstate(live) in _LIVE:
            raise RuntimeError(
                "this stream is already being iterated: a second live iterator would share its "
                "cursor and repeat batches. Finish or close() the first iterator, or build a "
                "second stream for a second reader."
            )
        iterator = self._epoch()
        self._iterator = weakref.ref(iterator)
        return iterator

    def _epoch(self) -> Generator[tuple, None, None]:
        current = self._iterator() if self._iterator is not None else None
        superseded = current is None or inspect.getgeneratorstate(current) != inspect.GEN_RUNNING
        del current  # a reference to itself would keep a dropped iterator (and its threads) alive
        if superseded:
            raise RuntimeError(
                "this iterator was superseded by a newer iterator over the same stream before "
                "it started; iterate the newer one"
            )
        self._drop_live()
        self._peeked, self._requests = {}, []
        for batch in self.engine.batches():
            yield self._format(batch)

    def _format(self, batch: Batch) -> Any:
        x = batch.x if self.inputs is None else self.inputs(batch.x, batch.lengths)
        if self.with_paths:
            return x, batch.y, np.asarray(batch.paths, dtype=object)
        if self.engine.label_mode is None:  # inputs only, as Keras's label_mode=None
            return x
        if batch.weights is not None:  # batch_policy="pad": Keras reads (x, y, sample_weight)
            return x, batch.y, batch.weights
        return x, batch.y

    # --- Keras' indexed access ------------------------------------------------------------
    # Keras reads a PyDataset by index, but the stream already reshuffles each epoch from its
    # seed, and TensorFlow's input pipeline asks for the next epoch's first batches before
    # Keras closes the current one (and even after the last). So inside fit every request
    # takes the *next batch of the stream's own sequence*, whatever the index: fit(shuffle=
    # True) cannot defeat prefetching, and the sequence runs on across epoch boundaries. The
    # cursor (``state()``) moves only as Keras closes an epoch, by the epoch's batches: what
    # TensorFlow fetched beyond them and never trained is handed out again next time. A
    # request made outside fit on the main thread (Keras' look at two batches to learn their
    # shapes, or a person's ``stream[i]``) reads the i-th batch from the cursor and moves nothing.
    def __getitem__(self, index: int) -> tuple:
        """Batch ``index`` counted from the cursor; inside ``fit``, the next batch in order."""
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"batch {index} out of range for {n} batches")
        if not self._keras_epoch_open and threading.current_thread() is threading.main_thread():
            return self._format(self._good_from(self.engine.global_position() + index)[0])
        with self._keras_lock:
            start = self._requests[-1] if self._requests else self.engine.global_position()
            batch, after = self._good_from(start)
            self._requests.append(after)
        return self._format(batch)

    def _good_from(self, position: int) -> tuple[Batch, int]:
        """The first batch at or after global ``position`` holding a good sample, and the
        position after it (a batch whose every file failed is passed over)."""
        for g in range(position, position + len(self)):
            batch = self._fetch(g)
            if not batch.empty:
                return batch, g + 1
        raise BadFileError(f"no file of this stream could be decoded ({len(self.errors)} skipped)")

    def _fetch(self, g: int) -> Batch:
        looking = (
            not self._keras_epoch_open and threading.current_thread() is threading.main_thread()
        )
        batch = self._peeked.get(g) if looking else self._peeked.pop(g, None)
        if batch is not None:
            return batch
        if self._live is None or g != self._live_next:
            self._drop_live()
            self._live, self._live_next = _sequence(self.engine, g), g
        batch = next(self._live)
        self._live_next = g + 1
        if looking:  # keep what Keras looked at for the epoch to come
            self._peeked[g] = batch
        return batch

    def keras_state(self, trained: int) -> dict:
        """The state after Keras trained ``trained`` batches of its current epoch (what a
        checkpoint callback saves mid-epoch; Keras reads batches ahead of training)."""
        with self._keras_lock:
            if trained <= 0:
                return self.engine.state()
            return self.engine.state(self._requests[min(trained, len(self._requests)) - 1])

    def on_epoch_begin(self) -> None:
        self._keras_epoch_open = True

    def on_epoch_end(self) -> None:
        """Keras closes an epoch: the cursor moves past the epoch's batches.

        Keras also calls this when it starts ``fit`` afresh (resetting its iterator, outside
        any epoch): batches fetched but never trained are then forgotten and handed out again.
        """
        with self._keras_lock:
            if self._keras_epoch_open and self._requests:
                done = self._requests[: len(self)]
                self.engine.move_to(done[-1])
                self._requests = self._requests[len(done) :]
            elif not self._keras_epoch_open:  # a fresh start: drop what was read ahead
                self._requests = []
                self._drop_live()
            self._keras_epoch_open = False
            cursor = self.engine.global_position()
            self._peeked = {g: b for g, b in self._peeked.items() if g >= cursor}

    # --- shutting down --------------------------------------------------------------------
    def _drop_live(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.close()

    def close(self) -> None:
        """Stop any worker threads or processes now (also happens on garbage collection and
        exit)."""
        self._drop_live()
        self.engine.close_processes()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LIVE = (inspect.GEN_RUNNING, inspect.GEN_SUSPENDED)


def make_stream(
    manifest: Any,
    decode: Decoder,
    collate: Collate,
    options: StreamOptions,
    *,
    kind: Kind,
    settings: dict[str, Any] | None = None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    inputs: ModelInputs | None = None,
) -> Stream:
    """Build a ``Stream`` over ``manifest`` (a ``Manifest``, a manifest file or a source).

    The front-ends (``image_batches``, ``audio_batches``, ``text_batches``) call this with
    their decoder, collate step and ``StreamOptions``. ``settings`` records the front-end's
    decoding settings as ``stream.options`` (for caches, the TensorFlow pipeline and
    predicting single files the same way). ``options.cache`` (a folder) keeps decoded samples
    on disk after the first epoch (``bytefeed_helpers.cache``); ``stream.cache`` is the
    ``SampleCache``, or None. ``inputs(x, lengths)`` shapes each batch's ``x`` for the model
    last of all (``stream.inputs``; ``training.decode_files`` applies it too).
    """
    source = as_source(manifest, kind)
    name = f"{kind}_batches"
    sample_cache = None
    if options.cache is not None:
        sample_cache = attach_cache(
            options.cache, source, decode, kind=kind, settings=settings, name=name
        )
    engine = BatchEngine(
        source, decode, collate, options, postprocess=postprocess, store=sample_cache, name=name
    )
    stream = Stream(engine, with_paths=options.with_paths, kind=kind)
    stream.options = dict(settings or {})
    stream.cache = sample_cache
    stream.inputs = inputs
    return stream


def _sequence(engine: BatchEngine, g: int) -> Generator[Batch, None, None]:
    """Batches from global position ``g`` on, across epochs. A module function, so the
    generator holds no reference to its Stream: a dropped stream is freed at once, and its
    worker threads with it."""
    epoch, slot = divmod(g, len(engine))
    while True:  # prefetching runs within an epoch; the next starts when it is asked for
        yield from engine.slots(epoch, slot)
        epoch, slot = epoch + 1, 0
