"""Speed checks: is the stream or the model the bottleneck, and how fast do raw bytes arrive."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..errors import BadFileError
from ..packed import PackedSource, open_path
from ..sources import as_source


# --- is the data pipeline the bottleneck? ----------------------------------------------------
def step_time_ratio(model: Any, stream: Any, n_steps: int = 20) -> dict[str, float]:
    """Median ms per training step fed by ``stream`` against the same batches held in memory.

    Trains ``model`` (compiled) with ``train_on_batch`` on ``n_steps`` batches as the stream
    delivers them (waiting for data included), keeping them; then on those same batches from
    a list in memory. One untimed warm-up step comes first; the median ignores one-off costs
    (a retrace for a short batch). The model's weights and optimizer state are restored
    afterwards, so measuring does not train it; the stream moves on by ``n_steps + 1``
    batches (into later epochs when needed). Holds ``n_steps`` batches in memory.

    Returns ``{"stream_ms", "memory_ms", "ratio", "steps"}``; ``ratio = stream_ms /
    memory_ms``: about 1 means the data pipeline keeps up with the model.
    """
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, not {n_steps}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("compile the model first: step_time_ratio trains it")
    saved = _training_state(model)
    batches = _batches_forever(stream)
    cached, stream_times, memory_times = [], [], []
    try:
        model.train_on_batch(*next(batches))  # warm-up: builds the train function
        tick = time.perf_counter()
        for x, y in tqdm(_take(batches, n_steps), total=n_steps, desc="from stream", delay=2):
            model.train_on_batch(x, y)
            cached.append((x, y))
            stream_times.append(time.perf_counter() - tick)
            tick = time.perf_counter()
        batches.close()  # stops the stream's workers before the in-memory run
        for x, y in cached:
            tick = time.perf_counter()
            model.train_on_batch(x, y)
            memory_times.append(time.perf_counter() - tick)
    finally:
        batches.close()
        _restore_training_state(model, saved)
    stream_ms = 1000 * float(np.median(stream_times))
    memory_ms = 1000 * float(np.median(memory_times))
    return {
        "stream_ms": stream_ms,
        "memory_ms": memory_ms,
        "ratio": stream_ms / max(memory_ms, 1e-9),
        "steps": n_steps,
    }


def _batches_forever(stream: Any) -> Any:
    """``(x, y)`` batches of the stream, epoch after epoch."""
    while True:
        served = 0
        for batch in stream:
            served += 1
            yield batch[0], batch[1]
        if not served:
            raise BadFileError(
                f"no file of this stream could be decoded ({len(stream.errors)} skipped)"
            )


def _take(iterator: Any, n: int) -> Any:
    for _ in range(n):
        yield next(iterator)


def _training_state(model: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    optimizer_values = [np.array(v.numpy()) for v in model.optimizer.variables]
    return model.get_weights(), optimizer_values


def _restore_training_state(model: Any, saved: tuple[list, list]) -> None:
    weights, optimizer_values = saved
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, optimizer_values, strict=False):
        variable.assign(value)
    model.reset_metrics()


def _reader(source: Any) -> Any:
    """``row -> bytes`` for a packed source or loose files (a manifest or a FileSource)."""
    if isinstance(source, PackedSource):
        return source.read

    def read_loose(row: int) -> bytes:
        with open_path(source.path(row), "rb") as fh:
            return fh.read()

    return read_loose


def read_speed(source: Any, *, workers: int = 1, repeats: int = 3) -> dict[str, float]:
    """How fast the raw bytes of every row come off ``source`` (no decoding): best of repeats.

    ``source`` is a ``PackedSource`` (or packed directory) or loose files (a ``Manifest``,
    manifest file or ``FileSource``). Rows that fail to read are counted in ``failed``.
    Returns ``files``, ``failed``, ``mib``, ``seconds``, ``files_per_s`` and ``mib_per_s``.
    Both are timed as they are now: a second run reads loose files from the page cache.
    """
    source = as_source(source)
    read = _reader(source)

    def sizes_of(rows: range) -> list[int]:
        out = []
        for row in rows:
            try:
                out.append(len(read(row)))
            except Exception:  # counted, not raised: a timing is not the place to stop
                out.append(-1)
        return out

    n, workers = len(source), max(1, workers)
    # one task per worker, each looping over every workers-th row: no per-file pool overhead
    parts = [range(i, n, workers) for i in range(workers)]
    best, sizes = float("inf"), []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            sizes = [s for part in pool.map(sizes_of, parts) for s in part]
        best = min(best, time.perf_counter() - start)
    mib = sum(s for s in sizes if s > 0) / 2**20
    ok = sum(s >= 0 for s in sizes)
    return {
        "files": ok,
        "failed": len(sizes) - ok,
        "mib": mib,
        "seconds": best,
        "files_per_s": ok / best,
        "mib_per_s": mib / best,
    }
