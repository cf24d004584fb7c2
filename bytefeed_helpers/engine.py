"""The batch engine: order, shards, parallel decoding, prefetch, error policy, epochs, state.

Every stream (image, audio, text) runs on this one engine; a front-end supplies only a
per-file ``decode`` and a per-batch ``collate`` (plus optional ``postprocess``). The engine
knows nothing about Keras; ``stream.Stream`` adapts it to ``keras.utils.PyDataset``.

Threads by default: the decoders (libjpeg-turbo, Pillow, libsndfile, soxr) release the GIL,
so a thread pool decodes in parallel without pickling samples between processes. Each worker
builds a whole batch. The per-file Python around the decoders still holds the GIL, which caps
a thread pool at some number of cores (``bench --gil`` measures it); ``parallelism=
"processes"`` builds the batches in worker processes instead (``processes``), each with its
own GIL, with the same order, errors and state: this process then pays per batch, not per
file.
"""

from __future__ import annotations

import collections
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import order, stages
from .errors import (
    BadFileError,
    BytefeedWarning,
    SkippedFile,
    TooManyBadFiles,
    reason_of,
    warn,
    write_error_report,
)
from .options import StreamOptions
from .processes import ProcessWorkers
from .sources import Source
from .workers import Workers

STATE_VERSION = 2


@dataclass(frozen=True)
class Decoder:
    """A per-file decode step: ``fn(src) -> sample``, or ``fn(src, rng=...)`` when
    ``takes_rng`` (the engine then makes a per-row ``np.random.Generator`` from the seed,
    the epoch and the row; seeding one costs about as much as reading a small file, so only
    decoders that draw from it say so). ``for_evaluation``: the same decoding without its
    random choices (a random crop taken from the start), for predicting single files; None
    when ``fn`` makes none."""

    fn: Callable[..., Any]
    takes_rng: bool = False
    for_evaluation: Callable[..., Any] | None = None

    def __call__(self, src: Any, rng: np.random.Generator | None = None) -> Any:
        return self.fn(src, rng=rng) if self.takes_rng else self.fn(src)

    def evaluation(self) -> Decoder:
        """This decoder without random choices."""
        if not self.takes_rng:
            return self
        if self.for_evaluation is None:
            raise ValueError("this decoder draws random choices and has no evaluation form")
        return Decoder(self.for_evaluation)


@dataclass(frozen=True)
class Collate:
    """A per-batch collate step ``fn(list[sample]) -> batch``. ``same_shape``: every sample
    has one shape, so a batch can be built in pieces and joined, or read whole from a cache."""

    fn: Callable[[list[Any]], np.ndarray]
    same_shape: bool = False

    def __call__(self, samples: list[Any]) -> np.ndarray:
        return self.fn(samples)

    def lengths(self, samples: Sequence[Any]) -> np.ndarray | None:
        """Each sample's own length (``len``, its first axis), ``int32 [B]``, for a collate
        that pads samples of different lengths (what a model masks with); None when every
        sample has one shape."""
        if self.same_shape:
            return None
        return np.fromiter((len(s) for s in samples), np.int32, len(samples))


def _stack(samples: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack(samples)


#: Collate same-shape samples into one C-contiguous batch ``[B, ...]``.
stack = Collate(_stack, same_shape=True)


@runtime_checkable
class FeatureAugment(Protocol):
    """An augmenter that also acts after ``postprocess`` (SpecAugment masks on log-mels)."""

    def __call__(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...
    def features(self, batch: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


class RowStore(Protocol):
    """Decoded samples kept by row (a ``SampleCache``), asked before a file is decoded."""

    @property
    def serves_every_row(self) -> bool:
        """Every row is stored or has failed: no file needs opening any more."""
        ...

    def get(self, row: int) -> Any | None:
        """The stored sample, None if not stored; raises ``BadFileError`` for a failed row."""
        ...

    def put(self, row: int, sample: Any) -> None: ...
    def fail(self, row: int, reason: str) -> None: ...
    def read_batch(self, rows: list[int]) -> np.ndarray | None:
        """The rows' samples stacked in one array, or None unless every row is stored."""
        ...


@dataclass
class Batch:
    """One built batch: samples, their labels and paths, and the files that failed."""

    x: np.ndarray | None
    y: np.ndarray
    paths: list[str]
    slot: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: ``float32 [B]`` under ``batch_policy="pad"``: 1 for real samples, 0 for padding rows
    weights: np.ndarray | None = None
    #: ``int32 [B]``: each sample's length before a padding collate (``Collate.lengths``)
    lengths: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return self.x is None


class BatchEngine:
    """Builds the batches of each epoch from a ``Source``.

    Args:
        source: rows to read (``FileSource(manifest)`` or a packed source).
        decode: a ``Decoder`` (or a plain ``src -> sample`` callable) for one file; raises on
            bad input.
        collate: a ``Collate`` (or a plain ``list[sample] -> np.ndarray`` callable).
        options: the ``StreamOptions`` (already validated):
            ``batch_size`` rows per batch (the last batch may be short unless
            ``drop_remainder``); ``shuffle`` reshuffles every epoch from ``(seed, epoch)``,
            False keeps manifest order; ``seed`` seeds the shuffles and every random choice
            (crops, augmentation), None draws one (see ``state()['seed']``); ``on_error``
            ``"skip"`` records bad files and carries on, ``"raise"`` raises ``BadFileError``
            naming the file and the reason; ``workers`` decoding threads (default: the
            machine's cores); ``prefetch`` batches in flight (default ``2 * workers``; memory
            is ``O(prefetch * batch)``, never ``O(dataset)``); ``shard=(index, count)``: this
            worker takes every ``count``-th batch of each epoch's global order, starting at
            ``index`` (the shards are disjoint, their union is the epoch, their sizes differ
            by at most one batch); ``augment``, an optional ``(batch, rng) -> batch`` run in
            the worker when training (if it also has a ``features(batch, rng)`` method, that
            runs after ``postprocess``); ``training`` whether augmentation runs (default:
            ``shuffle``); ``resume`` a ``state()`` dict to continue exactly where it stopped;
            ``parallelism="processes"`` decodes in ``workers`` worker processes (each its own
            GIL) instead of threads, with the same batches, order, errors and state: for many
            cores and small files, where the per-file Python of threads shares one GIL
            (``bench --gil``). The decoder and ``augment`` must pickle, a script needs
            ``if __name__ == "__main__":`` (as PyTorch's ``DataLoader``), and ``cache=`` is
            refused. ``max_error_rate`` (default 0.5): once more than this share of an
            epoch's files have failed, the stream stops with ``errors.TooManyBadFiles``
            naming the commonest reasons (a wrong folder never trains on almost nothing);
            None: no limit. ``label_mode`` as Keras's: "int" (``y`` ``int32 [B]``),
            "categorical" (one-hot ``float32 [B, C]``), "binary" (``float32 [B, 1]``, two
            classes only) or None (``x`` alone, for ``predict``). ``batch_policy="pad"``:
            every batch has exactly ``batch_size`` rows (rows of skipped files and the short
            last batch are zeros) and comes as ``(x, y, sample_weight)``, ``float32 [B]`` 1
            for real samples and 0 for padding: weighted metrics
            (``compile(weighted_metrics=...)``) are exactly those of the real samples,
            padding adds nothing to the gradients, and XLA/JAX compile one step for the
            epoch. (Keras's default loss reduction divides by all ``B`` rows;
            ``reduction="mean_with_sample_weight"`` on the loss averages over the real ones.)
        postprocess: optional ``batch -> batch`` step after augmentation (e.g. log-mel).
        store: optional ``RowStore`` (a sample cache) asked for each row before decoding,
            and for whole batches when ``collate.same_shape``.
        name: the stream's name in warnings and thread names.
    """

    def __init__(
        self,
        source: Source,
        decode: Decoder | Callable[[Any], Any],
        collate: Collate | Callable[[list[Any]], np.ndarray],
        options: StreamOptions | None = None,
        *,
        postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
        store: RowStore | None = None,
        name: str = "stream",
    ):
        options = StreamOptions() if options is None else options
        self.options = options
        self.source = source
        self.decoder = decode if isinstance(decode, Decoder) else Decoder(decode)
        self.collate = collate if isinstance(collate, Collate) else Collate(collate)
        self.postprocess = postprocess
        self.store = store
        self.batch_size = options.batch_size
        self.shuffle = bool(options.shuffle)
        seed = options.seed
        self.seed = secrets.randbits(31) if seed is None else int(seed)
        self.drop_remainder = bool(options.drop_remainder)
        self.on_error = options.on_error
        self.workers = max(1, int(options.workers or os.cpu_count() or 1))
        self.prefetch = max(1, int(options.prefetch or 2 * self.workers))
        self.shard = options.shard
        self.max_error_rate = options.max_error_rate
        self.batch_policy = options.batch_policy
        self.label_mode = options.label_mode
        self.parallelism = options.parallelism
        self._processes: ProcessWorkers | None = None  # kept from epoch to epoch
        self._check_label_mode()
        self._sample_spec: tuple[tuple[int, ...], np.dtype] | None = None  # for padding
        self.augment = options.augment
        self.training = options.is_training
        self.augment_enabled = True
        self.name = name
        self.errors: list[SkippedFile] = []
        self.epoch = 0
        self.position = 0  # next batch slot of this epoch (counts slots, not yielded batches)
        self._lock = threading.Lock()
        self._epoch_skips: collections.Counter[int] = collections.Counter()
        self._summarised: set[int] = set()
        self._recorded: set[tuple[int, str]] = set()
        self._fingerprint: str | None = None
        # A state saved by another shard layout resumes its epoch from a global position in
        # samples: (epoch, samples consumed, this shard's first slot); see ``_restore``.
        self._elastic: tuple[int, int, int] | None = None
        # the stage hook: a ``stages.StageSink`` (profiling sets one) that the worker threads
        # and the decoders report their steps to while building batches
        self.stats: stages.StageSink | None = None
        if options.resume is not None:
            self._restore(options.resume)

    # --- order (see ``order``) ---------------------------------------------------------
    def __len__(self) -> int:
        """Batches per epoch for this shard."""
        total = order.global_slots(len(self.source), self.batch_size, self.drop_remainder)
        return order.shard_slots(total, self.shard)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Row indices of ``epoch`` in the global order (all shards), ``int64 [N]``."""
        return order.epoch_order(len(self.source), self.seed, epoch, self.shuffle)

    def slot_rows(self, epoch: int, slot: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Rows of this shard's batch number ``slot`` in ``epoch`` (``rows``: its order)."""
        rows = self.epoch_order(epoch) if rows is None else rows
        if self._elastic is not None and self._elastic[0] == epoch:
            _, consumed, first = self._elastic  # the epoch's rest, batched from ``consumed``
            return order.slot_rows(rows[consumed:], slot - first, self.batch_size, self.shard)
        return order.slot_rows(rows, slot, self.batch_size, self.shard)

    def samples_consumed(self, epoch: int, slot: int) -> int:
        """Samples of ``epoch``'s global order consumed by all shards together once every
        shard has taken its first ``slot`` batches (shards step together in data-parallel
        training): the position a state saved here resumes from on any number of shards."""
        consumed, first = 0, 0
        if self._elastic is not None and self._elastic[0] == epoch:
            _, consumed, first = self._elastic
        if slot >= len(self):
            return len(self.source)
        taken = max(0, slot - first) * self.shard[1] * self.batch_size
        return min(len(self.source), consumed + taken)

    # --- building one batch (runs in a worker thread) -------------------------------------
    def build(
        self,
        epoch: int,
        slot: int,
        perm: np.ndarray | None = None,
        part: tuple[int, int] | None = None,
        cancel: threading.Event | None = None,
    ) -> Batch:
        """Decode, collate and (when training) augment batch ``slot`` of ``epoch``.

        ``part=(i, k)``: only the ``i``-th of ``k`` consecutive pieces of the batch's rows,
        decoded and collated but not augmented (``_join`` puts the pieces together).
        ``cancel``: once set, the build stops before its next file (the stream was closed or
        interrupted).
        """
        with stages.reporting_to(self.stats):  # the decoders report their own steps
            batch = self._build(epoch, slot, perm, part, cancel)
        return batch if part is not None else self._shaped(batch)

    def _build(
        self,
        epoch: int,
        slot: int,
        perm: np.ndarray | None,
        part: tuple[int, int] | None,
        cancel: threading.Event | None,
    ) -> Batch:
        rows = self.slot_rows(epoch, slot, perm).tolist()
        if part is not None:
            i, k = part
            rows = rows[len(rows) * i // k : len(rows) * (i + 1) // k]
        return self._build_rows(rows, epoch, slot, part is None, cancel)

    def _build_rows(
        self,
        rows: list[int],
        epoch: int,
        slot: int,
        finish: bool,
        cancel: threading.Event | None = None,
    ) -> Batch:
        """Batch ``slot`` of ``epoch`` from ``rows``; augmented and postprocessed if ``finish``."""
        laps = _Laps(self.stats)
        if self.store is not None and self.collate.same_shape:
            x = self.store.read_batch(rows)  # a cache's stored rows, stacked as they are read
            if x is not None:
                laps.lap("decode", len(rows))  # as when cached rows come one by one
                y = self._targets([self.source.labels[r] for r in rows])
                paths = [self.source.path(r) for r in rows]
                if finish:
                    x = self._finish(x, epoch, slot, laps)
                return Batch(x, y, paths, slot)
        samples, labels, paths, skipped = [], [], [], []
        for row in rows:
            if cancel is not None and cancel.is_set():
                raise _Cancelled
            path = self.source.path(row)
            try:
                sample = self._decode_row(row, epoch)
            except Exception as exc:  # a bad file is a record, or an error naming it
                if self.on_error == "raise":
                    raise BadFileError(reason_of(exc), path) from exc
                skipped.append((path, reason_of(exc)))
                continue
            samples.append(sample)
            labels.append(self.source.labels[row])
            paths.append(path)
        y = self._targets(labels)
        laps.lap("decode", len(rows))
        if not samples:
            return Batch(None, y, paths, slot, skipped)
        x = self.collate(samples)
        laps.lap("collate", len(samples))
        if finish:
            x = self._finish(x, epoch, slot, laps)
        return Batch(x, y, paths, slot, skipped, lengths=self.collate.lengths(samples))

    def _targets(self, labels: list[Any]) -> np.ndarray:
        """``y`` of a batch under ``label_mode``: ``int32 [B]`` ids ("int", and None, where
        the stream yields no ``y``), one-hot ``float32 [B, C]`` ("categorical") or
        ``float32 [B, 1]`` ("binary")."""
        ids = np.asarray(labels, dtype=np.int32).reshape(-1)
        if self.label_mode == "categorical":
            return np.eye(len(self.source.class_names), dtype=np.float32)[ids]
        if self.label_mode == "binary":
            return ids.astype(np.float32).reshape(-1, 1)
        return ids

    def _check_label_mode(self) -> None:
        mode, classes = self.label_mode, len(self.source.class_names)
        if mode not in ("categorical", "binary"):
            return
        if mode == "binary" and classes != 2:
            raise ValueError(
                "label_mode='binary' needs exactly 2 classes; use 'categorical' or 'int' for "
                f"more. Received: label_mode='binary' with {classes} classes"
            )
        if len(self.source) and int(np.min(self.source.labels)) < 0:
            raise ValueError(
                f"label_mode={mode!r} needs a label on every row, and this source has "
                "unlabelled rows (label -1); use label_mode='int' or None"
            )

    def _decode_row(self, row: int, epoch: int) -> Any:
        """Row ``row``'s sample: from the store when it holds it, else decoded (and stored)."""
        store = self.store
        if store is not None:
            stored = store.get(row)  # raises for a row that failed when it was stored
            if stored is not None:
                return stored
        rng = order.rng(self.seed, epoch, row) if self.decoder.takes_rng else None
        try:
            sample = self.decoder(self.source.open(row), rng)
        except Exception as exc:
            if store is not None:  # remembered: later epochs skip it without reading it
                store.fail(row, reason_of(exc))
            raise
        if store is not None:
            store.put(row, sample)
        return sample

    def _join(self, built: list[Future[Batch]], epoch: int) -> Batch:
        """One batch from the ``part`` pieces of its slot (being built), in order, augmented."""
        pieces = [piece.result() for piece in built]
        slot = pieces[0].slot
        y = np.concatenate([p.y for p in pieces])
        paths = [path for p in pieces for path in p.paths]
        skipped = [s for p in pieces for s in p.skipped]
        xs = [p.x for p in pieces if p.x is not None]
        if not xs:
            return Batch(None, y, paths, slot, skipped)
        laps = _Laps(self.stats)
        x = xs[0] if len(xs) == 1 else np.concatenate(xs)
        laps.lap("collate", len(x))
        return self._shaped(Batch(self._finish(x, epoch, slot, laps), y, paths, slot, skipped))

    def _shaped(self, batch: Batch) -> Batch:
        """The batch under the batch policy: as built (``"short"``), or padded to exactly
        ``batch_size`` rows with zeros and weighted 1 for real samples, 0 for padding
        (``"pad"``: one shape for XLA and JAX, which compile a step per batch shape)."""
        if self.batch_policy != "pad":
            return batch
        if batch.x is not None:
            self._sample_spec = (batch.x.shape[1:], batch.x.dtype)
        elif self._sample_spec is None:  # no sample seen yet to take a shape from
            return batch
        shape, dtype = self._sample_spec
        real = 0 if batch.x is None else len(batch.x)
        if batch.x is not None and real == self.batch_size:
            return replace(batch, weights=np.ones(real, np.float32))
        x = np.zeros((self.batch_size, *shape), dtype)
        if batch.x is not None:
            x[:real] = batch.x
        y = np.zeros((self.batch_size, *batch.y.shape[1:]), batch.y.dtype)
        y[:real] = batch.y
        weights = np.zeros(self.batch_size, np.float32)
        weights[:real] = 1.0
        paths = [*batch.paths, *[""] * (self.batch_size - real)]
        lengths = None
        if not self.collate.same_shape:
            lengths = np.zeros(self.batch_size, np.int32)  # padding rows have no length
            if batch.lengths is not None:
                lengths[:real] = batch.lengths
        return replace(batch, x=x, y=y, paths=paths, weights=weights, lengths=lengths)

    def _finish(
        self, x: np.ndarray, epoch: int, slot: int, laps: _Laps | None = None
    ) -> np.ndarray:
        laps = laps or _Laps(None)
        augment = self.augment if (self.training and self.augment_enabled) else None
        if augment is not None:  # seeding a generator costs ~30 us: only when one is used
            rng = order.rng(self.seed, epoch, order.global_batch(slot, self.shard), 0xA06)
            x = augment(x, rng)
            laps.lap("augment", len(x))
        if self.postprocess is not None:
            x = self.postprocess(x)
            laps.lap("postprocess", len(x))
        if isinstance(augment, FeatureAugment):
            x = augment.features(x, rng)
            laps.lap("features", len(x))
        return x

    # --- epochs ---------------------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """The rest of the current epoch, in order, built in parallel; then the epoch ends.

        Batches whose every file failed are not yielded. Breaking out early keeps the cursor
        where it stopped (``state()``), and stops the worker threads.
        """
        for batch in self.slots():
            self.position = batch.slot + 1
            if not batch.empty:
                yield batch
        self.end_epoch()

    def slots(self, epoch: int | None = None, start: int | None = None) -> Iterator[Batch]:
        """Every batch slot of ``epoch`` from ``start`` on (default: the cursor), in order.

        Empty batches (every file failed) are yielded too. Up to ``prefetch`` batches are
        built ahead by ``workers`` threads, each batch by one thread except the last
        ``workers`` of the epoch, whose rows are shared out (same result, no idle tail); the
        threads stop when the iterator is exhausted,
        closed or garbage-collected. Skipped files are recorded as each batch is taken; the
        cursor is left alone (the caller moves it).
        """
        epoch = self.epoch if epoch is None else epoch
        next_slot, n = (self.position if start is None else start), len(self)
        perm = self.epoch_order(epoch)
        if self.parallelism == "processes" and not self._reads_inline():
            yield from self._process_slots(epoch, next_slot, n)
            return
        if self._reads_inline():
            for slot in range(next_slot, n):
                batch = self.build(epoch, slot, perm)
                self.record(epoch, batch)
                yield batch
            return
        pool = Workers(self.workers, f"bytefeed-{self.name}")
        pending: collections.deque[Future[Batch]] = collections.deque()
        # The last batches of an epoch are split between the workers: built whole, the last
        # one would keep one worker busy while the others idle (with 4 batches of camera
        # photos on 2 cores, a quarter of the epoch).
        split = self.workers if self.workers > 1 and self.collate.same_shape else 1
        cancel = threading.Event()
        wait = True
        try:
            while next_slot < n or pending:
                while next_slot < n and len(pending) < self.prefetch:
                    if split > 1 and n - next_slot <= self.workers:
                        pieces = [
                            pool.submit(self.build, epoch, next_slot, perm, (i, split), cancel)
                            for i in range(split)
                        ]
                        # joined (and augmented) on a worker, not on the training thread; the
                        # pieces are queued first, so the join waits only on running ones
                        pending.append(pool.submit(self._join, pieces, epoch))
                    else:
                        pending.append(
                            pool.submit(self.build, epoch, next_slot, perm, None, cancel)
                        )
                    next_slot += 1
                laps = _Laps(self.stats)
                batch = pending.popleft().result()
                laps.lap("wait", 1)  # time the consumer waited for the batch
                self.record(epoch, batch)
                yield batch
        except GeneratorExit:  # closed: a loop broke off, or the stream was dropped
            raise
        except BaseException:
            # Ctrl-C (KeyboardInterrupt), or an error: return at once; the workers stop
            # before their next file, so no thread outlives the current files.
            wait = False
            raise
        finally:
            cancel.set()
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=wait)

    def _process_slots(self, epoch: int, next_slot: int, n: int) -> Iterator[Batch]:
        """``slots`` on worker processes: each builds whole batches, finding their rows from
        its copy of this engine (the cursor and the error records stay here); up to ``prefetch`` batches
        in flight. The processes are kept for the next epoch; an epoch left early (a loop
        broken off, Ctrl-C, an error) stops them, and the next starts new ones."""
        if self._processes is None:
            self._processes = ProcessWorkers(_ProcessBuild(self), self.workers, self.name)
        pool = self._processes
        augment = self.training and self.augment_enabled
        done = False
        try:
            while next_slot < n or pool.pending:
                while next_slot < n and pool.pending < self.prefetch:
                    pool.submit((epoch, next_slot, augment))
                    next_slot += 1
                laps = _Laps(self.stats)
                x, (slot, y, paths, skipped, lengths) = pool.result()
                laps.lap("wait", 1)
                batch = self._shaped(Batch(x, y, paths, slot, skipped, lengths=lengths))
                self.record(epoch, batch)
                yield batch
            done = True
        finally:
            if not done:  # the workers may be mid-batch: stop them rather than wait
                self.close_processes()

    def close_processes(self) -> None:
        """Stop the worker processes of ``parallelism="processes"`` (none: nothing to do)."""
        pool, self._processes = self._processes, None
        if pool is not None:
            pool.close()

    def __getstate__(self) -> dict:
        """What a worker process needs to build batches: no lock, pool, cache or records."""
        state = self.__dict__.copy()
        for name in ("_lock", "_processes", "stats", "store"):
            state[name] = None
        state.update(errors=[], _epoch_skips=collections.Counter(), _recorded=set())
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _reads_inline(self) -> bool:
        """Whether this epoch's batches are built in the calling thread, without workers.

        So they are when every batch comes whole from a complete cache (``store``)
        and nothing costly runs on it (no augmentation, no postprocess): such a batch is one
        read per row, and handing it to a thread and back costs more than reading it (32 rows
        of 3 KB: ~55 us to read, ~150 us through the pool; about 2x the samples/s inline,
        and no slower for 150 KB rows).
        """
        if self.store is None or not self.collate.same_shape or not self.store.serves_every_row:
            return False
        augmenting = self.training and self.augment_enabled and self.augment is not None
        return not augmenting and self.postprocess is None

    def record(self, epoch: int, batch: Batch) -> None:
        """Add a batch's skipped files to ``errors``, once per file and epoch (a batch built
        twice, e.g. read ahead and then read again, adds nothing new).

        Raises ``TooManyBadFiles`` once more of the epoch's files have failed than
        ``max_error_rate`` of them (counted against the whole epoch, so the verdict does not
        depend on the order the files come in): a folder of the wrong files, or a setting
        that fails every file, stops the stream instead of training on almost nothing.
        """
        if not batch.skipped:
            return
        with self._lock:
            for path, reason in batch.skipped:
                if (epoch, path) not in self._recorded:
                    self._recorded.add((epoch, path))
                    self.errors.append(SkippedFile(path, reason, epoch))
                    self._epoch_skips[epoch] += 1
            failed = self._epoch_skips[epoch]
        if self.max_error_rate is not None and failed > self.max_error_rate * self.epoch_rows():
            raise self._budget_error(epoch, failed)

    def epoch_rows(self) -> int:
        """Files this shard reads in one epoch."""
        return order.shard_rows(len(self.source), self.batch_size, self.drop_remainder, self.shard)

    def _budget_error(self, epoch: int, failed: int) -> TooManyBadFiles:
        reasons = collections.Counter(e.reason for e in self.errors if e.epoch == epoch)
        common = "; ".join(f"{reason!r} x {n}" for reason, n in reasons.most_common(3))
        return TooManyBadFiles(
            f"{self.name}: {failed} of the {self.epoch_rows()} files of epoch {epoch} failed, "
            f"more than max_error_rate={self.max_error_rate} allows. Most common reasons: "
            f"{common}. Fix or remove those files (stream.errors lists them), or pass a higher "
            "max_error_rate (None: no limit)."
        )

    def end_epoch(self) -> None:
        """Close the current epoch: warn once about its skips, move the cursor on."""
        self.move_to((self.epoch + 1) * len(self))

    def move_to(self, position: int) -> None:
        """Put the cursor at global batch ``position`` (``epoch * len + slot``), summarising
        the skipped files of every epoch it leaves behind."""
        while self.epoch < position // max(1, len(self)):
            self._summarise(self.epoch)
            self.epoch += 1
        self.position = position - self.epoch * len(self)

    def global_position(self) -> int:
        """The cursor as one number: batches since the start of epoch 0 (``epoch * len + slot``)."""
        return self.epoch * len(self) + self.position

    def _summarise(self, epoch: int) -> None:
        skipped = self._epoch_skips.get(epoch, 0)
        if skipped and epoch not in self._summarised:
            self._summarised.add(epoch)
            warn(  # at the user's line (the cell that ran the epoch), not this one
                f"{self.name}: skipped {skipped} bad file(s) in epoch {epoch} "
                f"(stream.errors lists them; stream.write_errors(path) saves a CSV)",
                BytefeedWarning,
            )

    def write_errors(self, path: str | os.PathLike) -> int:
        """Write ``errors`` as a CSV ``path,reason,epoch``; returns the number of rows."""
        return write_error_report(self.errors, path)

    # --- state ----------------------------------------------------------------------------
    def state(self, position: int | None = None) -> dict:
        """A JSON-serialisable dict from which ``resume=`` continues exactly here (or at
        global batch ``position``, see ``global_position``)."""
        epoch, slot = (
            (self.epoch, self.position) if position is None else divmod(position, max(1, len(self)))
        )
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "epoch": epoch,
            "position": slot,
            "samples": self.samples_consumed(epoch, slot),
            "shard": list(self.shard),
            "rows": len(self.source),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "source": self.fingerprint(),
        }

    def fingerprint(self) -> str:
        """The source's fingerprint (computed once: a source does not change under a stream)."""
        if self._fingerprint is None:
            self._fingerprint = self.source.fingerprint()[:16]
        return self._fingerprint

    def _restore(self, state: dict) -> None:
        """Continue where ``state`` stopped.

        On the shard it was saved on, exactly at its batch. On another number of shards (a job
        restarted on another number of workers: ``shard=(j, M)`` where the state says
        ``(i, N)``, ``M != N``), from the global position in samples that all shards had reached
        together: the rest of that epoch is batched afresh and dealt to the ``M`` shards,
        so together they take every remaining sample once; later epochs are as usual.
        """
        expected = {
            "rows": len(self.source),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "source": self.fingerprint(),
        }
        for key, value in expected.items():
            if key in state and state[key] != value:
                raise ValueError(
                    f"resume state does not fit this stream: {key} was {state[key]!r}, "
                    f"now {value!r}"
                )
        saved = list(state.get("shard", self.shard))
        if saved[1:] == [self.shard[1]] and saved != list(self.shard):
            # the same layout resumes shard by shard: another shard's state is a mix-up
            raise ValueError(
                f"resume state does not fit this stream: shard was {saved!r}, now "
                f"{list(self.shard)!r} (on the same number of shards each resumes its own state)"
            )
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        if saved == list(self.shard):
            self.position = int(state["position"])
            if not 0 <= self.position <= len(self):
                raise ValueError(f"resume position {self.position} outside 0..{len(self)}")
        else:
            if "samples" not in state:
                raise ValueError(
                    f"resume state was saved on shard {state['shard']} by an older version "
                    f"without a position in samples; it resumes only on that shard, not {list(self.shard)}"
                )
            self._resume_elastic(int(state["samples"]))
        if self.position == len(self):  # saved after an epoch's last batch: start the next
            self.epoch, self.position = self.epoch + 1, 0

    def _resume_elastic(self, consumed: int) -> None:
        n = len(self.source)
        if not 0 <= consumed <= n:
            raise ValueError(f"resume position {consumed} samples outside 0..{n}")
        rest = order.shard_slots(
            order.global_slots(n - consumed, self.batch_size, self.drop_remainder), self.shard
        )
        first = len(self) - rest  # this shard's slots of the rest end where its epoch ends
        self._elastic = (self.epoch, consumed, first)
        self.position = first


class _ProcessBuild:
    """The task a worker process runs: ``(epoch, slot, augment)`` -> ``(x, (slot, y, paths,
    skipped, lengths))``; ``x`` travels through shared memory, the rest pickled (a tuple:
    cheaper to unpickle than a ``Batch``). The worker finds the slot's rows itself, from its
    copy of the engine (same seed, shards and resume point), keeping one epoch's order."""

    def __init__(self, engine: BatchEngine):
        self.engine = engine
        self._order: tuple[int, np.ndarray] | None = None

    def __call__(self, task: tuple[int, int, bool]) -> tuple[Any, tuple]:
        epoch, slot, augment = task
        engine = self.engine
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, engine.epoch_order(epoch))
        engine.augment_enabled = engine.training = augment
        rows = engine.slot_rows(epoch, slot, self._order[1]).tolist()
        b = engine._build_rows(rows, epoch, slot, True)
        return b.x, (slot, b.y, b.paths, b.skipped, b.lengths)


class _Cancelled(Exception):
    """A batch build stopped because its stream was closed or interrupted."""


class _Laps:
    """Times consecutive steps into a ``stats`` object; does nothing when it is None."""

    __slots__ = ("stats", "t")

    def __init__(self, stats: Any):
        self.stats = stats
        self.t = time.perf_counter() if stats is not None else 0.0

    def lap(self, stage: str, count: int) -> None:
        if self.stats is not None:
            now = time.perf_counter()
            self.stats.add(stage, now - self.t, count)
            self.t = now
