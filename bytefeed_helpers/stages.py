"""Stage hooks: the engine and the decoders report how long each step of a sample took.

The engine points each worker thread at a sink (``reporting_to(engine.stats)``) while it
builds a batch; the decoders mark their own steps with ``start()``/``done(stage, t)``: reading
a file (``"read"``, with its size) and resizing or resampling (``"resize"``). Without a sink
both are one thread-local look-up, so unprofiled streams pay next to nothing. Profiling
(``bytefeed_helpers.bench.profile_stream``) sets a sink; it never replaces a function.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Protocol

#: Stages the engine and the decoders report, in pipeline order.
STAGES = ("read", "decode", "resize", "collate", "augment", "postprocess", "features", "wait")

_LOCAL = threading.local()


class StageSink(Protocol):
    """Receives stage timings, from any thread."""

    def add(self, stage: str, seconds: float, count: int = 1, nbytes: int = 0) -> None: ...


@contextlib.contextmanager
def reporting_to(sink: StageSink | None) -> Iterator[None]:
    """Send this thread's stage reports to ``sink`` (None: to nobody) inside the block."""
    previous = getattr(_LOCAL, "sink", None)
    _LOCAL.sink = sink
    try:
        yield
    finally:
        _LOCAL.sink = previous


def start() -> float:
    """The time a step starts, or 0.0 when nobody listens on this thread."""
    return time.perf_counter() if getattr(_LOCAL, "sink", None) is not None else 0.0


def done(stage: str, started: float, count: int = 1, nbytes: int = 0) -> None:
    """Report a step begun at ``started`` (a ``start()`` value; 0.0 reports nothing)."""
    if started:
        sink = getattr(_LOCAL, "sink", None)
        if sink is not None:
            sink.add(stage, time.perf_counter() - started, count, nbytes)
