"""Measure what lazy batching promises: memory that stays flat, and data that is never late.

``profile_stream(stream)`` iterates a stream (or any iterable of batches) and reports
throughput, time per stage (read, decode, resize, collate, augment, the consumer's wait), and
process memory over time (RSS sampled in the background, plus ``tracemalloc``). Comparisons of
whole pipelines (``compare``, ``memory_vs_size``, the ``bench`` command) are in ``benchmark``,
and re-exported here.

Timings are wall-clock and depend on the machine and its load: tests never assert them.
"""

from __future__ import annotations

import contextlib
import gc
import math
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np

from ..engine import BatchEngine
from ..stages import STAGES
from ..stream import Stream

MB = 1e6


@overload
def round_sig(value: float, digits: int = 3) -> float: ...
@overload
def round_sig(value: None, digits: int = 3) -> None: ...
def round_sig(value: float | None, digits: int = 3) -> float | None:
    """``value`` rounded to ``digits`` significant digits (``1234.5`` -> ``1230.0`` at 3,
    ``0.49561600000000006`` -> ``0.5`` at 2), for tables and results files: a wall-clock
    rate or ratio is not known better than a percent or so. None, NaN, infinities and 0
    come back as they are; ``digits`` must be at least 1.
    """
    if digits < 1:
        raise ValueError(f"digits must be at least 1. Received: digits={digits!r}")
    if value is None:
        return None
    v = float(value)
    if v == 0 or not math.isfinite(v):
        return v
    return round(v, digits - 1 - math.floor(math.log10(abs(v))))


# --- stage timing -------------------------------------------------------------------------------
class StageStats:
    """Seconds and counts per stage, added from any thread (``BatchEngine.stats``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.read_bytes = 0
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float, count: int = 1, nbytes: int = 0) -> None:
        with self._lock:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
            self.counts[stage] = self.counts.get(stage, 0) + count
            self.read_bytes += nbytes


@contextlib.contextmanager
def _stage_hooks(engine: BatchEngine, stats: StageStats) -> Iterator[None]:
    """Point ``engine``'s stage hook at ``stats`` for the block (see ``bytefeed_helpers.stages``:
    the engine times decode, collate, augment and waits; the decoders time their own file
    reads and resizes)."""
    previous, engine.stats = engine.stats, stats
    try:
        yield
    finally:
        engine.stats = previous


# --- memory sampling ----------------------------------------------------------------------------
def rss() -> int:
    """This process' resident set size in bytes."""
    import psutil

    return psutil.Process().memory_info().rss


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None


def trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc only), so runs start from a fair RSS."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(Exception):
            libc.malloc_trim(0)


def fixed_mmap_threshold() -> None:
    """Make glibc serve every allocation over 128 KiB with its own mapping, for good.

    glibc raises that threshold after large blocks are freed, then serves later large arrays
    from memory it kept: a pipeline run after another would then show no RSS growth for
    arrays it really holds. With the threshold fixed, freeing returns memory and peaks
    measure what each run holds. The price: every such allocation page-faults anew, which
    slows decoding, so measure speed (``compare``) before memory in one process.
    (``mallopt(M_MMAP_THRESHOLD)``; a no-op off glibc.)
    """
    libc = _libc()
    if libc is not None:
        with contextlib.suppress(Exception):
            libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD


def _reset_peak_rss() -> bool:
    """Restart the kernel's record of this process' peak RSS (Linux); False where there is none."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _peak_rss() is not None
    except OSError:
        return False


def _peak_rss() -> int | None:
    """The kernel's peak RSS of this process in bytes (``VmHWM``), None off Linux."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


class MemorySampler:
    """Samples RSS every ``interval`` seconds in a background thread (a context manager).

    On Linux the peak is also the kernel's own (``VmHWM``, restarted on entry), so a peak
    shorter than ``interval`` is not missed; this restarts the process' peak that
    ``getrusage`` reports too, and two samplers must not run at once.
    """

    def __init__(self, interval: float = 0.01):
        import psutil

        self.interval = interval
        self._proc = psutil.Process()
        self.times: list[float] = []
        self.values: list[int] = []
        self._kernel_peak: int | None = None  # VmHWM at exit, where the kernel keeps it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bytefeed-rss", daemon=True)

    def _sample(self) -> None:
        self.times.append(time.perf_counter() - self.t0)
        self.values.append(self._proc.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        self._kernel = _reset_peak_rss()
        self.t0 = time.perf_counter()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self._kernel:
            self._kernel_peak = _peak_rss()

    @property
    def start(self) -> int:
        return self.values[0]

    @property
    def peak(self) -> int:
        return max(max(self.values), self._kernel_peak or 0)

    @property
    def end(self) -> int:
        return self.values[-1]


# --- profile_stream -----------------------------------------------------------------------------
@dataclass
class StreamProfile:
    """What ``profile_stream`` measured. Sizes in bytes, times in seconds.

    ``stages`` sums each stage's time over the worker threads (so it can exceed
    ``seconds``); ``wait`` is the consumer's time blocked on the next batch. ``bytes`` counts
    the batches delivered (``x`` and ``y``), ``read_bytes`` the file bytes read. Memory:
    ``rss_*`` from the sampled resident set size, ``py_*`` from ``tracemalloc`` (Python
    objects and NumPy buffers), both relative to the start of iteration.
    """

    name: str
    batches: int
    samples: int
    bytes: int
    seconds: float
    first_batch_s: float
    rss_start: int
    rss_peak: int
    rss_end: int
    timeline_s: np.ndarray
    timeline_rss: np.ndarray
    stages: dict[str, float] = field(default_factory=dict)
    read_bytes: int | None = None
    py_peak: int | None = None
    py_growth: int | None = None
    workers: int | None = None
    skipped: int = 0
    cache_hits: int | None = None

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")

    @property
    def mb_per_s(self) -> float:
        """Megabytes of batches delivered per second."""
        return self.bytes / MB / self.seconds if self.seconds > 0 else float("nan")

    @property
    def read_mb_per_s(self) -> float | None:
        if self.read_bytes is None or self.seconds <= 0:
            return None
        return self.read_bytes / MB / self.seconds

    @property
    def rss_peak_growth(self) -> int:
        """Peak RSS above the RSS when iteration started."""
        return self.rss_peak - self.rss_start

    @property
    def rss_growth(self) -> int:
        """RSS at the end above the RSS at the start (what stayed allocated)."""
        return self.rss_end - self.rss_start

    @property
    def timeline_mb(self) -> np.ndarray:
        """The sampled RSS above the start, in MB (``float64 [samples]``): what
        ``plot_memory`` draws."""
        return (np.asarray(self.timeline_rss, dtype=np.float64) - self.rss_start) / MB

    @property
    def timeline_peak_mb(self) -> float:
        """The highest point of ``timeline_mb``: the top of the line ``plot_memory`` draws.

        ``rss_peak_growth`` can be higher: on Linux it is the kernel's high-water mark, which
        also sees a peak between two samples (the sampling thread needs the GIL, so it waits
        while one long NumPy call, such as stacking a preloaded array, holds it).
        """
        series = self.timeline_mb
        return float(series.max()) if series.size else 0.0

    def summary(self) -> dict[str, Any]:
        """This profile as one table row, rounded to what the numbers mean: ``pipeline``,
        ``samples``, ``samples/s`` (3 significant digits), ``first batch ms`` (3 significant
        digits), ``plotted peak MB`` (``timeline_peak_mb``) and ``peak MB``
        (``rss_peak_growth``), both to 0.1 MB."""
        return {
            "pipeline": self.name,
            "samples": self.samples,
            "samples/s": round_sig(self.samples_per_s),
            "first batch ms": round_sig(1000 * self.first_batch_s),
            "plotted peak MB": round(self.timeline_peak_mb, 1),
            "peak MB": round(self.rss_peak_growth / MB, 1),
        }

    def stage_ms_per_sample(self) -> dict[str, float]:
        """Milliseconds per sample of each timed stage (``wait`` per sample too)."""
        n = max(1, self.samples)
        return {k: 1000 * v / n for k, v in self.stages.items()}

    def to_dict(self) -> dict:
        """Plain numbers (no timeline) for JSON."""
        d = {f: getattr(self, f) for f in _PROFILE_FIELDS}
        d.update(
            samples_per_s=self.samples_per_s,
            mb_per_s=self.mb_per_s,
            rss_peak_growth=self.rss_peak_growth,
            rss_growth=self.rss_growth,
            stages=dict(self.stages),
        )
        return d

    def table(self) -> str:
        """A plain-text report."""
        lines = [
            f"profile of {self.name}: {self.samples} samples in {self.batches} batches, "
            f"{self.seconds:.2f} s" + (f" ({self.workers} workers)" if self.workers else ""),
            f"  throughput   {self.samples_per_s:10.1f} samples/s  {self.mb_per_s:8.1f} MB/s out"
            + (f"  {self.read_mb_per_s:8.1f} MB/s read" if self.read_mb_per_s is not None else ""),
            f"  first batch  {self.first_batch_s:10.3f} s",
            f"  memory (RSS) start {self.rss_start / MB:.1f} MB, peak "
            f"{self.rss_peak_growth / MB:+.1f} MB{self._plotted_note()}, end "
            f"{self.rss_growth / MB:+.1f} MB",
        ]
        if self.py_peak is not None and self.py_growth is not None:  # set together
            lines.append(
                f"  tracemalloc  peak {self.py_peak / MB:+.1f} MB, "
                f"growth {self.py_growth / MB:+.1f} MB"
            )
        if self.skipped:
            lines.append(f"  skipped      {self.skipped} files")
        if self.cache_hits is not None:
            lines.append(f"  cache hits   {self.cache_hits}")
        if self.stages:
            busy = sum(v for k, v in self.stages.items() if k != "wait") or 1.0
            lines.append(f"  {'stage':<12} {'total s':>9} {'ms/sample':>10} {'share':>7}")
            per = self.stage_ms_per_sample()
            for stage in [s for s in STAGES if s in self.stages]:
                share = "" if stage == "wait" else f"{100 * self.stages[stage] / busy:6.1f}%"
                label = "wait (main)" if stage == "wait" else stage
                lines.append(
                    f"  {label:<12} {self.stages[stage]:9.3f} {per[stage]:10.3f} {share:>7}"
                )
        return "\n".join(lines)

    def _plotted_note(self) -> str:
        """Where the memory plot's top differs from the peak printed (see
        ``timeline_peak_mb``), say so: a figure and the line under it must agree."""
        plotted = self.timeline_peak_mb
        if f"{plotted:+.1f}" == f"{self.rss_peak_growth / MB:+.1f}":
            return ""
        return f" (kernel's high-water mark; the plotted samples reach {plotted:+.1f} MB)"

    def __str__(self) -> str:
        return self.table()

    def plot(self, axes: Sequence[Any] | None = None) -> Any:
        """Memory over time and time per stage, side by side; returns the figure."""
        import matplotlib.pyplot as plt

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
        else:
            fig = axes[0].figure
        self.plot_memory(axes[0])
        self.plot_stages(axes[1])
        fig.tight_layout()
        return fig

    def plot_memory(self, ax: Any = None, label: str | None = None) -> Any:
        """RSS above the start (MB) against time (s)."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        ax.plot(self.timeline_s, self.timeline_mb, label=label or self.name)
        ax.set(xlabel="seconds", ylabel="RSS above start (MB)", title="memory while iterating")
        return ax

    def plot_stages(self, ax: Any = None) -> Any:
        """Milliseconds per sample of each stage, as horizontal bars."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        per = self.stage_ms_per_sample()
        names = [s for s in STAGES if s in per][::-1]
        ax.barh(names, [per[n] for n in names], color="tab:blue")
        ax.set(xlabel="ms per sample (summed over workers)", title=f"stages of {self.name}")
        return ax


_PROFILE_FIELDS = (
    "name",
    "batches",
    "samples",
    "bytes",
    "seconds",
    "first_batch_s",
    "rss_start",
    "rss_peak",
    "rss_end",
    "read_bytes",
    "py_peak",
    "py_growth",
    "workers",
    "skipped",
    "cache_hits",
)


def _split(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, tuple | list) and len(batch) >= 2:
        return batch[0], batch[1]
    return batch, None


def _nbytes(x: Any) -> int:
    if x is None:
        return 0
    if isinstance(x, np.ndarray):
        return x.nbytes
    shape, dtype = getattr(x, "shape", None), getattr(x, "dtype", None)
    if shape is not None and dtype is not None:  # tf.Tensor, jax/torch arrays
        size = getattr(dtype, "size", None) or getattr(dtype, "itemsize", None) or 0
        return int(np.prod([int(d) for d in shape], dtype=np.int64)) * int(size)
    return int(np.asarray(x).nbytes)


def _count(x: Any) -> int:
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) else len(x)


def profile_stream(
    stream: Iterable,
    batches: int | None = None,
    *,
    name: str | None = None,
    stages: bool = True,
    trace_python: bool = True,
    interval: float = 0.01,
) -> StreamProfile:
    """Iterate ``stream`` and measure it.

    Args:
        stream: a bytefeed ``Stream`` (the rest of its current epoch is read, stage times
            come from its engine) or any iterable of ``(x, y)`` batches or of ``x`` arrays
            (NumPy arrays or tensors; generators that never end need ``batches``).
        batches: stop after this many batches (default: the whole epoch / iterable).
        name: label for tables and plots.
        stages: time each stage (bytefeed streams only).
        trace_python: also trace Python allocations with ``tracemalloc`` (slows
            Python-heavy pipelines; turn off for pure throughput).
        interval: seconds between RSS samples.

    Returns a ``StreamProfile``. Nothing of the batches is kept, so the memory measured is
    the pipeline's own.
    """
    engine = stream.engine if isinstance(stream, Stream) else None
    name = name or (
        f"{stream.kind}_batches" if isinstance(stream, Stream) else type(stream).__name__
    )
    stats = StageStats()
    skipped0 = len(engine.errors) if engine is not None else 0
    hooks = (
        _stage_hooks(engine, stats) if (engine is not None and stages) else contextlib.nullcontext()
    )
    tracing = trace_python and not tracemalloc.is_tracing()
    if tracing:
        tracemalloc.start()
    if trace_python:
        tracemalloc.reset_peak()
        py0 = tracemalloc.get_traced_memory()[0]
    n_batches = n_samples = n_bytes = 0
    first = float("nan")
    try:
        with hooks, MemorySampler(interval) as mem:
            t0 = time.perf_counter()
            it = iter(stream)
            try:
                for batch in it:
                    x, y = _split(batch)
                    n_batches += 1
                    n_samples += _count(x)
                    n_bytes += _nbytes(x) + _nbytes(y)
                    if n_batches == 1:
                        first = time.perf_counter() - t0
                    del batch, x, y
                    if batches is not None and n_batches >= batches:
                        break
            finally:
                if hasattr(it, "close"):
                    it.close()  # stops a stream's workers when we broke off early
            seconds = time.perf_counter() - t0
        if trace_python:
            py_now, py_peak = tracemalloc.get_traced_memory()
    finally:
        if tracing:
            tracemalloc.stop()
    cache = stream.cache if isinstance(stream, Stream) else None
    return StreamProfile(
        name=name,
        batches=n_batches,
        samples=n_samples,
        bytes=n_bytes,
        seconds=seconds,
        first_batch_s=first,
        rss_start=mem.start,
        rss_peak=mem.peak,
        rss_end=mem.end,
        timeline_s=np.asarray(mem.times),
        timeline_rss=np.asarray(mem.values),
        stages=_stage_seconds(stats) if (engine is not None and stages) else {},
        read_bytes=stats.read_bytes
        if (engine is not None and stages and "read" in stats.seconds)
        else None,
        py_peak=(py_peak - py0) if trace_python else None,
        py_growth=(py_now - py0) if trace_python else None,
        workers=engine.workers if engine is not None else None,
        skipped=(len(engine.errors) - skipped0) if engine is not None else 0,
        cache_hits=getattr(cache, "hits", None),
    )


def _stage_seconds(stats: StageStats) -> dict[str, float]:
    """The engine's ``decode`` lap split into read, decode and resize."""
    s = dict(stats.seconds)
    if "decode" in s:
        s["decode"] = max(0.0, s["decode"] - s.get("read", 0.0) - s.get("resize", 0.0))
    return {k: s[k] for k in STAGES if k in s}
