"""The batch engine: order, shards, parallel decoding, prefetch, error policy, epochs, state.

Every stream (image, audio, text) runs on this one engine; a front-end supplies only a
per-file ``decode`` and a per-batch ``collate`` (plus optional ``postprocess``). The engine
knows nothing about Keras; ``stream.Stream`` adapts it to ``keras.utils.PyDataset``.

Threads, not processes: the decoders (libjpeg-turbo, Pillow, libsndfile, soxr) release the GIL,
so a thread pool decodes in parallel without pickling samples between processes. Each worker
builds a whole batch, so Python's per-file overhead is paid inside the worker, in parallel.
"""

from __future__ import annotations

import collections
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import order, stages
from .errors import BadFileError, BytefeedWarning, SkippedFile, reason_of, write_error_report
from .options import StreamOptions
from .sources import Source

STATE_VERSION = 1


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
            ``shuffle``); ``resume`` a ``state()`` dict to continue exactly where it stopped.
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
        self.seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)
        self.drop_remainder = bool(options.drop_remainder)
        self.on_error = options.on_error
        self.workers = max(1, int(options.workers or os.cpu_count() or 1))
        self.prefetch = max(1, int(options.prefetch or 2 * self.workers))
        self.shard = options.shard
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
        return order.slot_rows(rows, slot, self.batch_size, self.shard)

    # --- building one batch (runs in a worker thread) -------------------------------------
    def build(
        self,
        epoch: int,
        slot: int,
        perm: np.ndarray | None = None,
        part: tuple[int, int] | None = None,
    ) -> Batch:
        """Decode, collate and (when training) augment batch ``slot`` of ``epoch``.

        ``part=(i, k)``: only the ``i``-th of ``k`` consecutive pieces of the batch's rows,
        decoded and collated but not augmented (``_join`` puts the pieces together).
        """
        with stages.reporting_to(self.stats):  # the decoders report their own steps
            return self._build(epoch, slot, perm, part)

    def _build(
        self, epoch: int, slot: int, perm: np.ndarray | None, part: tuple[int, int] | None
    ) -> Batch:
        rows = self.slot_rows(epoch, slot, perm).tolist()
        if part is not None:
            i, k = part
            rows = rows[len(rows) * i // k : len(rows) * (i + 1) // k]
        laps = _Laps(self.stats)
        if self.store is not None and self.collate.same_shape:
            x = self.store.read_batch(rows)  # a cache's stored rows, stacked as they are read
            if x is not None:
                laps.lap("decode", len(rows))  # as when cached rows come one by one
                y = np.asarray([self.source.labels[r] for r in rows], dtype=np.int32)
                paths = [self.source.path(r) for r in rows]
                if part is None:
                    x = self._finish(x, epoch, slot, laps)
                return Batch(x, y.reshape(-1), paths, slot)
        samples, labels, paths, skipped = [], [], [], []
        for row in rows:
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
        y = np.asarray(labels, dtype=np.int32).reshape(-1)
        laps.lap("decode", len(rows))
        if not samples:
            return Batch(None, y, paths, slot, skipped)
        x = self.collate(samples)
        laps.lap("collate", len(samples))
        if part is None:
            x = self._finish(x, epoch, slot, laps)
        return Batch(x, y, paths, slot, skipped)

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
        return Batch(self._finish(x, epoch, slot, laps), y, paths, slot, skipped)

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
        if self._reads_inline():
            for slot in range(next_slot, n):
                batch = self.build(epoch, slot, perm)
                self.record(epoch, batch)
                yield batch
            return
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"bytefeed-{self.name}")
        pending: collections.deque[Future[Batch]] = collections.deque()
        # The last batches of an epoch are split between the workers: built whole, the last
        # one would keep one worker busy while the others idle (with 4 batches of camera
        # photos on 2 cores, a quarter of the epoch).
        split = self.workers if self.workers > 1 and self.collate.same_shape else 1
        try:
            while next_slot < n or pending:
                while next_slot < n and len(pending) < self.prefetch:
                    if split > 1 and n - next_slot <= self.workers:
                        pieces = [
                            pool.submit(self.build, epoch, next_slot, perm, (i, split))
                            for i in range(split)
                        ]
                        # joined (and augmented) on a worker, not on the training thread; the
                        # pieces are queued first, so the join waits only on running ones
                        pending.append(pool.submit(self._join, pieces, epoch))
                    else:
                        pending.append(pool.submit(self.build, epoch, next_slot, perm))
                    next_slot += 1
                laps = _Laps(self.stats)
                batch = pending.popleft().result()
                laps.lap("wait", 1)  # time the consumer waited for the batch
                self.record(epoch, batch)
                yield batch
        finally:
            for fut in pending:
                fut.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

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
        twice, e.g. read ahead and then read again, adds nothing new)."""
        if not batch.skipped:
            return
        with self._lock:
            for path, reason in batch.skipped:
                if (epoch, path) not in self._recorded:
                    self._recorded.add((epoch, path))
                    self.errors.append(SkippedFile(path, reason, epoch))
                    self._epoch_skips[epoch] += 1

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
            warnings.warn(
                f"{self.name}: skipped {skipped} bad file(s) in epoch {epoch} "
                f"(stream.errors lists them; stream.write_errors(path) saves a CSV)",
                BytefeedWarning,
                stacklevel=4,
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
            "shard": list(self.shard),
            "rows": len(self.source),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "source": self.source.fingerprint()[:16],
        }

    def _restore(self, state: dict) -> None:
        expected = {
            "rows": len(self.source),
            "batch_size": self.batch_size,
            "shard": list(self.shard),
            "shuffle": self.shuffle,
            "source": self.source.fingerprint()[:16],
        }
        for key, value in expected.items():
            if key in state and state[key] != value:
                raise ValueError(
                    f"resume state does not fit this stream: {key} was {state[key]!r}, "
                    f"now {value!r}"
                )
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        if not 0 <= self.position <= len(self):
            raise ValueError(f"resume position {self.position} outside 0..{len(self)}")
        if self.position == len(self):  # saved after an epoch's last batch: start the next
            self.epoch, self.position = self.epoch + 1, 0


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
