"""The GIL ceiling: how far bytefeed's decoding threads can scale on a machine with more cores.

``python -m bytefeed_helpers bench MANIFEST --kind image --gil`` (``gil_command``) measures,
on the manifest's files:

- **the GIL-held share of an epoch**: while a bytefeed stream runs whole epochs (after one
  untimed batch), gilknocker's ``KnockKnock`` thread tries to take the GIL every millisecond
  and records how much of the time it had to wait (its ``contention_metric``, 0 to 1).
  Sampling runs without pauses (``sleeping_interval_micros=1``): with gilknocker's default
  pauses a NumPy matmul in two threads read 0.18 instead of 0.005 here. Calibration, measured
  and printed by every run: two threads of pure Python read ~0.9, two sleeping threads ~0.
- **the ceiling it implies**: samples/s divided by the held share. With threads, no amount of
  cores gets a process past the point where the GIL is held all the time; "cores' worth" is
  that ceiling over the single-thread decode rate (the stream's own decoder, file reads
  included, on this thread alone), i.e. how many cores the thread pool could keep busy.
- **the engine's own cost**: samples/s through ``BatchEngine`` with a decoder that returns
  one shared ``float32 [1]`` zeros array (no file is opened), and its held share.
- **the per-file Python** (``python_hotspots``): one thread decodes the files under
  ``cProfile``; the functions with the most own time per file, Python and built-in. cProfile
  inflates Python-level calls (each pays the profiler's hook), so read the ranks and the
  orders of magnitude, not the microseconds.

The GIL is measured with ``gilknocker`` (``pip install 'bytefeed-helpers[peers]'``, or the
dev extra); without it the command says how to install it and exits with status 2.

Timings are wall-clock and depend on the machine and its load: tests never assert them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import pstats
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..options import Parallelism
from .comparison import _one_thread_rate

#: gilknocker's settings: knock every 1 ms, sample without pauses (see the module docstring).
KNOCK = {
    "polling_interval_micros": 1000,
    "sampling_interval_micros": 100_000,
    "sleeping_interval_micros": 1,
}


def _gilknocker() -> Any:
    """The ``gilknocker`` module, or ModuleNotFoundError saying which extra installs it."""
    try:
        return importlib.import_module("gilknocker")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "the GIL measurement needs gilknocker: pip install 'bytefeed-helpers[peers]' "
            "(or pip install gilknocker)",
            name="gilknocker",
        ) from exc


@contextlib.contextmanager
def gil_held() -> Iterator[dict]:
    """Measure the GIL's contention while the block runs; ``{"held": share}`` after it.

    The share is gilknocker's ``contention_metric``: the fraction of its knocks (one per
    millisecond) that found the GIL taken by another thread.
    """
    knocker = _gilknocker().KnockKnock(**KNOCK)
    out: dict = {}
    knocker.start()
    try:
        yield out
    finally:
        knocker.stop()
        out["held"] = float(knocker.contention_metric)


def calibrate(seconds: float = 0.3, threads: int = 2) -> dict[str, float]:
    """The metric for ``threads`` threads of pure Python and of sleeping, ``seconds`` each."""

    def spin() -> None:
        end = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < end:
            n += 1

    def sleep() -> None:
        time.sleep(seconds)

    out = {}
    for name, fn in (("pure Python", spin), ("sleeping", sleep)):
        with gil_held() as m:
            ts = [threading.Thread(target=fn) for _ in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        out[name] = m["held"]
    return out


@dataclass
class GilSet:
    """One benchmark set's measurement (samples/s with the knocker running)."""

    name: str
    files: int
    samples: int
    seconds: float
    samples_per_s: float
    held: float
    single_rate: float
    workers: int

    @property
    def ceiling(self) -> float:
        """samples/s at which the GIL would be held all the time (inf when never held)."""
        return self.samples_per_s / self.held if self.held > 0 else float("inf")

    @property
    def cores_worth(self) -> float:
        """The ceiling as a multiple of the single-thread decode rate."""
        return self.ceiling / self.single_rate if self.single_rate > 0 else float("nan")

    def to_dict(self) -> dict:
        return {**asdict(self), "ceiling": self.ceiling, "cores_worth": self.cores_worth}


@dataclass
class Hotspot:
    """One function's own time per file under cProfile (``python``: a Python function)."""

    function: str
    us_per_file: float
    calls_per_file: float
    python: bool


@dataclass
class GilReport:
    """What ``gil_ceiling`` measured."""

    kind: str
    sets: list[GilSet]
    engine: dict
    calibration: dict[str, float]
    hotspots: dict[str, list[Hotspot]] = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    method: str = "gilknocker contention_metric, knock every 1 ms, no pauses"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "method": self.method,
            "sets": [s.to_dict() for s in self.sets],
            "engine": self.engine,
            "calibration": self.calibration,
            "hotspots": {k: [asdict(h) for h in v] for k, v in self.hotspots.items()},
            "machine": self.machine,
        }

    def table(self) -> str:
        m = self.machine
        cal = ", ".join(f"{k} {v:.2f}" for k, v in self.calibration.items())
        lines = [
            f"bytefeed GIL ceiling: {self.kind}, {m.get('cores')} cores; method: {self.method}",
            f"calibration (2 threads): {cal}",
            "",
            "| set | files | workers | samples/s | GIL held | ceiling (samples/s) "
            "| single-thread decode/s | cores' worth |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in self.sets:
            lines.append(
                f"| {s.name} | {s.files:,} | {s.workers} | {s.samples_per_s:,.0f} | {s.held:.1%} "
                f"| {s.ceiling:,.0f} | {s.single_rate:,.0f} | {s.cores_worth:.1f} |"
            )
        e = self.engine
        lines += [
            "",
            f"engine alone (no-op decoder, {e['samples']:,} samples, batch {e['batch_size']}, "
            f"{e['workers']} workers): {e['samples_per_s']:,.0f} samples/s = "
            f"{e['us_per_sample']:.2f} us/sample; GIL held {e['held']:.1%}",
        ]
        for name, spots in self.hotspots.items():
            lines += [
                "",
                f"per-file own time under cProfile, one thread ({name}; cProfile inflates "
                "Python calls):",
                "",
                "| function | us/file | calls/file | Python |",
                "|---|---:|---:|---|",
            ]
            lines += [
                f"| {h.function} | {h.us_per_file:,.1f} | {h.calls_per_file:.1f} "
                f"| {'yes' if h.python else 'no'} |"
                for h in spots
            ]
        lines += ["", "machine: " + ", ".join(f"{k} {v}" for k, v in m.items())]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


# --- measuring ---------------------------------------------------------------------------------
def _epochs(stream: Any, min_seconds: float) -> tuple[int, float, float]:
    """Whole epochs of ``stream`` until ``min_seconds`` have passed, with the GIL measured;
    returns ``(samples, seconds, held)``. One batch first, untimed (imports, first calls)."""
    it = iter(stream)
    next(it, None)
    for _ in it:  # the rest of the first epoch: untimed too, so every measured epoch is whole
        pass
    samples = 0
    with gil_held() as m:
        t = time.perf_counter()
        while True:
            for batch in stream:
                samples += len(batch[0])
            seconds = time.perf_counter() - t
            if seconds >= min_seconds:
                break
    return samples, seconds, m["held"]


def single_thread_rate(
    decode: Callable[[str], Any], paths: Sequence[str], files: int = 200
) -> float:
    """Files/s of ``decode(path)`` on this thread over up to ``files`` paths, best of two
    passes (a file that fails is not counted)."""
    return _one_thread_rate(decode, [(p,) for p in paths[:files]])


def engine_cost(
    manifest: Any,
    *,
    batch_size: int = 32,
    workers: int | None = None,
    rows: int = 50_000,
    min_seconds: float = 2.0,
) -> dict:
    """Samples/s of ``BatchEngine`` over ``rows`` rows (the manifest repeated) with a decoder
    that returns one shared ``float32 [1]`` zeros array, whole epochs until ``min_seconds``
    have passed, and the GIL-held share meanwhile."""
    from ..engine import BatchEngine, stack
    from ..options import StreamOptions
    from ..sources import FileSource
    from .comparison import repeat_manifest

    zeros = np.zeros(1, np.float32)
    source = FileSource(repeat_manifest(manifest, rows))
    options = StreamOptions(batch_size=batch_size, shuffle=True, seed=0, workers=workers)
    engine = BatchEngine(source, lambda src: zeros, stack, options)
    for _ in engine.batches():  # one epoch untimed: thread pool, first calls
        pass
    samples = 0
    with gil_held() as m:
        t = time.perf_counter()
        while True:  # whole epochs until min_seconds: the knocker reports per 100 ms sample
            for batch in engine.batches():
                samples += len(batch.y)
            seconds = time.perf_counter() - t
            if seconds >= min_seconds:
                break
    return {
        "samples": samples,
        "seconds": seconds,
        "samples_per_s": samples / seconds,
        "us_per_sample": 1e6 * seconds / samples,
        "held": m["held"],
        "batch_size": batch_size,
        "workers": engine.workers,
    }


def python_hotspots(
    decode: Callable[[str], Any], paths: Sequence[str], *, files: int = 200, top: int = 12
) -> list[Hotspot]:
    """The ``top`` functions by own time per file while ``decode`` reads up to ``files``
    paths on this thread under cProfile (after one untimed pass)."""
    paths = list(paths[:files])
    for p in paths[:5]:
        with contextlib.suppress(Exception):
            decode(p)
    prof = cProfile.Profile()
    prof.enable()
    for p in paths:
        with contextlib.suppress(Exception):
            decode(p)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = []
    n = max(1, len(paths))
    for (filename, line, fname), (_cc, ncalls, tottime, _ct, _callers) in stats.items():
        python = filename not in ("~", "") and not filename.startswith("<")
        where = filename.split("site-packages/")[-1].split("bytefeed_helpers/")[-1]
        label = f"{where}:{line} {fname}" if python else fname
        rows.append(Hotspot(label, 1e6 * tottime / n, ncalls / n, python))
    rows.sort(key=lambda h: -h.us_per_file)
    return rows[:top]


def gil_ceiling(
    manifest: Any,
    kind: str = "image",
    *,
    size: int = 224,
    batch_size: int = 32,
    sample_rate: int = 16000,
    duration: float = 1.0,
    workers: int | None = None,
    parallelism: Parallelism = "threads",
    min_seconds: float = 3.0,
    engine_rows: int = 50_000,
    hotspot_files: int = 200,
    calibration_seconds: float = 0.3,
) -> GilReport:
    """Measure the GIL ceiling of bytefeed's stream on ``manifest``'s files (module docstring).

    ``kind`` "image" measures one set (``size`` px); "audio" two: resampled to
    ``sample_rate`` and at the files' own rate. ``parallelism="processes"`` measures the
    stream on worker processes: the GIL that then caps it is this process's alone (handing
    out tasks, copying batches out of shared memory), each worker having its own. Each set runs whole epochs until
    ``min_seconds`` have passed. Raises ModuleNotFoundError without gilknocker, ValueError
    for an empty manifest or another kind.
    """
    from ..manifest import Manifest, read_manifest
    from .baselines import Settings, _native_rate, _stream
    from .comparison import _warm_page_cache, machine_info

    if kind not in ("image", "audio"):
        raise ValueError(f"kind must be 'image' or 'audio' for --gil. Received: kind={kind!r}")
    _gilknocker()
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, kind=kind)
    if len(manifest) == 0:
        raise ValueError("the manifest is empty")
    _warm_page_cache(manifest.paths)
    settings = Settings(kind, size, batch_size, sample_rate, duration, 0, workers, parallelism)
    runs: list[tuple[str, int | None]]
    on = "" if parallelism == "threads" else f", {parallelism}"
    if kind == "image":
        runs = [(f"{kind} {size}x{size}{on}", None)]
    else:
        native = _native_rate(manifest)
        runs = [
            (f"audio -> {sample_rate} Hz{on}", sample_rate),
            (f"audio native {native} Hz{on}", native),
        ]
    sets: list[GilSet] = []
    hotspots: dict[str, list[Hotspot]] = {}
    for name, rate in runs:
        stream = _stream(manifest, settings, rate=rate)
        decode = stream.engine.decoder  # what the stream runs per file (settings checked once)
        single = single_thread_rate(decode, manifest.paths)
        try:
            samples, seconds, held = _epochs(stream, min_seconds)
            threads = stream.engine.workers
        finally:
            stream.close()
        sets.append(
            GilSet(name, len(manifest), samples, seconds, samples / seconds, held, single, threads)
        )
        if hotspot_files:
            hotspots[name] = python_hotspots(decode, manifest.paths, files=hotspot_files)
    engine = engine_cost(
        manifest, batch_size=batch_size, workers=workers, rows=engine_rows, min_seconds=min_seconds
    )
    return GilReport(
        kind=kind,
        sets=sets,
        engine=engine,
        calibration=calibrate(calibration_seconds),
        hotspots=hotspots,
        machine=machine_info(kind),
    )


def gil_command(args: argparse.Namespace) -> int:
    """``bench MANIFEST --gil``: print ``gil_ceiling``'s table (or JSON); exit status 0, or
    2 for an unreadable manifest, bad arguments or without gilknocker."""
    import json

    from ..manifest import ManifestError, read_manifest

    try:
        manifest = read_manifest(args.manifest, kind=args.kind, **args.manifest_options)
    except (OSError, ManifestError, ValueError) as exc:
        print(f"bench --gil: cannot read manifest {args.manifest}: {exc}", file=sys.stderr)
        return 2
    try:
        report = gil_ceiling(
            manifest,
            args.kind,
            size=args.size,
            batch_size=args.batch,
            workers=args.workers,
            parallelism="processes" if args.processes else "threads",
        )
    except (ValueError, ModuleNotFoundError) as exc:
        print(f"bench --gil: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0
