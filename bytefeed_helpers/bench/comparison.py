"""Compare bytefeed with the pipelines users would otherwise pick, on the same files.

- ``compare(manifest, kind)`` runs bytefeed and the ``baselines`` (the article's generator,
  preloading, ``keras.utils.*_dataset_from_directory``, a hand-tuned ``tf.data``) one after
  another in alternating rounds, and reports each one's median throughput, peak memory and
  their ratios to bytefeed, next to the machine's decode bound for images.
- ``memory_vs_size`` measures peak memory against the number of files read;
  ``profile_pipelines`` profiles one epoch of each pipeline (memory timelines).
- ``python -m bytefeed_helpers bench manifest.csv --kind image`` prints ``compare``'s table
  (``bench_command``); ``--json`` for machines; ``--isolate`` runs every pipeline's every
  round in a fresh process of its own (``python -m bytefeed_helpers.bench.comparison``, the
  rounds still alternating); ``--first-batch`` adds each pipeline's time to first batch from
  a fresh process (interpreter start, imports, reading the manifest, building the pipeline,
  the first batch). ``--gil`` (``gil.gil_command``, dispatched by the CLI) measures the GIL
  ceiling instead.

Timings are wall-clock and depend on the machine and its load: tests never assert them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .profiling import (
    MB,
    StreamProfile,
    fixed_mmap_threshold,
    profile_stream,
    round_sig,
    trim_heap,
)


# --- the decode bound ---------------------------------------------------------------------------
def _cores() -> int:
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def decode_paths(size: int) -> dict[str, Any]:
    """Single-file decode+resize functions on JPEG bytes, one per libjpeg-turbo route."""
    import io

    import simplejpeg
    from PIL import Image

    from ..decoders.image import decode_image

    def turbo(data: bytes) -> np.ndarray:
        a = simplejpeg.decode_jpeg(data, min_height=size, min_width=size)
        img = Image.fromarray(a).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img)

    def turbo_fast(data: bytes) -> np.ndarray:
        a = simplejpeg.decode_jpeg(
            data, min_height=size, min_width=size, fastdct=True, fastupsample=True
        )
        img = Image.fromarray(a).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img)

    def pillow_draft(data: bytes) -> np.ndarray:
        jpeg = Image.open(io.BytesIO(data))
        jpeg.draft("RGB", (size, size))
        img = jpeg.convert("RGB").resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img)

    return {
        "decode_image": lambda d: decode_image(d, (size, size)),
        "simplejpeg+resize": turbo,
        "simplejpeg-fast+resize": turbo_fast,
        "pillow-draft+resize": pillow_draft,
    }


def decode_bound(paths: Sequence[str], size: int = 224, *, files: int = 200) -> dict:
    """The machine's decode bound for these JPEGs: cores x best single-core rate.

    Up to ``files`` JPEG files are read into memory, then each route of ``decode_paths``
    decodes and resizes all of them on this thread; the fastest route's files/s times the
    usable cores is the most any loader of these files can reach by decoding them.
    Returns ``{"cores", "rates": {route: files/s}, "best", "best_rate", "bound",
    "all_cores", "files", "what", "from_files"}`` (``all_cores``: the best route run on every
    core at once, which is less where cores share a physical core; ``from_files``: files/s of
    bytefeed's ``decode_image`` reading the same files from their paths on this thread, so
    ``from_files / best_rate`` is the most of the bound a loader that also reads the files,
    as bytefeed does, can reach on cores that scale perfectly), or an empty dict when no file
    is a readable JPEG.
    """
    from ..decoders.image import decode_image

    data: list[tuple[bytes]] = []
    read: list[tuple[str]] = []
    for p in paths:
        if len(data) >= files:
            break
        with contextlib.suppress(OSError), open(p, "rb") as fh:
            head = fh.read()
            if head[:3] == b"\xff\xd8\xff":
                data.append((head,))
                read.append((p,))
    from_files = (lambda p: decode_image(p, (size, size)), read)
    return _bound(data, decode_paths(size), "decode", from_files)


def resample_bound(
    paths: Sequence[str], sample_rate: int = 16000, duration: float = 1.0, *, files: int = 200
) -> dict:
    """The machine's resampling bound for these clips: cores x single-core soxr HQ rate.

    Up to ``files`` clips whose rate differs from ``sample_rate`` are decoded into memory at
    their own rate (``duration`` seconds), then resampled to ``sample_rate`` on this thread
    with soxr's HQ filter, as bytefeed and ``librosa.load`` both do: no loader that resamples
    these files at that quality can go faster than the usable cores times that rate, whatever
    it does about reading and decoding. Same keys as ``decode_bound`` (``from_files``:
    bytefeed's ``decode_audio`` reading, decoding and resampling the same clips from their
    paths on this thread); empty when none of the first ``4 * files`` clips needs resampling.
    """
    import soundfile as sf
    import soxr

    from ..decoders._resample import resample
    from ..decoders.audio import decode_audio

    clips: list[tuple[np.ndarray, int]] = []
    read: list[tuple[str]] = []
    for p in paths[: 4 * files]:  # a sample: a folder of clips at the target rate has no bound
        if len(clips) >= files:
            break
        with contextlib.suppress(Exception):  # a bad file is not part of the bound
            rate = int(sf.info(p).samplerate)
            if rate != sample_rate:
                clips.append((decode_audio(p, None, duration), rate))
                read.append((p,))
    routes = {
        "soxr.resample": lambda c, r: soxr.resample(c, r, sample_rate, quality="HQ"),
        "resample (kept)": lambda c, r: resample(c, r, sample_rate),
    }
    from_files = (lambda p: decode_audio(p, sample_rate, duration), read)
    return _bound(clips, routes, "resample", from_files)


def _bound(
    items: list[tuple],
    routes: dict[str, Any],
    what: str,
    from_files: tuple[Any, list[tuple]] | None = None,
) -> dict:
    """Time each route on ``items`` (``route(*item)``) on this thread, best of two passes,
    then the fastest route on every core at once, and ``from_files`` (a decoder and its
    arguments, one tuple per file) on this thread; the dict ``decode_bound`` describes."""
    rates: dict[str, float] = {}
    for route, fn in routes.items():
        try:
            fn(*items[0]) if items else None
        except Exception:
            continue  # a route that cannot read these files is not a bound
        rates[route] = _one_thread_rate(fn, items)
    if not rates or not items:
        return {}
    top = max(rates, key=rates.__getitem__)
    cores = _cores()
    all_cores = _rate_on_all_cores(routes[top], items, cores)
    out = _bound_dict(rates, cores, all_cores, len(items), what)
    if from_files is not None:
        fn, args = from_files
        out["from_files"] = _one_thread_rate(fn, args)
    return out


def _one_thread_rate(fn: Any, items: list[tuple]) -> float:
    """Items/s of ``fn(*item)`` over ``items`` on this thread, best of two passes (an item
    that raises is not counted)."""
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        ok = 0
        for item in items:
            with contextlib.suppress(Exception):
                fn(*item)
                ok += 1
        best = min(best, (time.perf_counter() - t) / max(1, ok))
    return 1.0 / best


def _bound_dict(
    rates: dict[str, float], cores: int, all_cores: float, files: int, what: str
) -> dict:
    top = max(rates, key=rates.__getitem__)
    return {
        "cores": cores,
        "rates": rates,
        "best": top,
        "best_rate": rates[top],
        "bound": cores * rates[top],
        "all_cores": all_cores,
        "files": files,
        "what": what,
    }


def _rate_on_all_cores(fn: Any, items: list[tuple], cores: int) -> float:
    """Items/s of ``fn`` over ``items`` split between ``cores`` threads running at once."""
    import threading

    def run(share: list[tuple]) -> None:
        for item in share:
            with contextlib.suppress(Exception):
                fn(*item)

    threads = [threading.Thread(target=run, args=(items[i::cores],)) for i in range(cores)]
    t = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(items) / (time.perf_counter() - t)


def _from_files_note(bound: dict) -> str:
    """The bound's note on ``from_files``: "; one core from the files N/s (P% of route)", or ""."""
    rate = bound.get("from_files")
    if not rate:
        return ""
    share = rate / bound["best_rate"]
    return f"; one core from the files {rate:,.0f}/s ({share:.0%} of {bound['best']})"


# --- compare -------------------------------------------------------------------------------------
@dataclass
class PipelineResult:
    """One pipeline's runs in a comparison (one per round)."""

    name: str
    note: str = ""
    group: str = "bytefeed"
    runs: list[dict] = field(default_factory=list)
    error: str | None = None
    #: why the pipeline did not run here (a peer that is not installed); not a failure
    skipped: str | None = None
    #: seconds from starting a fresh process to its first batch, one per measurement
    first_batch: list[float] = field(default_factory=list)

    def _median(self, key: str) -> float:
        values = [r[key] for r in self.runs]
        return float(statistics.median(values)) if values else float("nan")

    @property
    def samples_per_s(self) -> float:
        return self._median("samples_per_s")

    @property
    def mb_per_s(self) -> float:
        return self._median("mb_per_s")

    @property
    def peak_mb(self) -> float:
        """The largest peak RSS growth over the rounds, in MB."""
        return max((r["peak_mb"] for r in self.runs), default=float("nan"))

    @property
    def samples(self) -> int:
        return self.runs[-1]["samples"] if self.runs else 0

    @property
    def first_batch_s(self) -> float:
        """Median seconds to the first batch from a fresh process (nan: not measured)."""
        return float(statistics.median(self.first_batch)) if self.first_batch else float("nan")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "note": self.note,
            "group": self.group,
            "samples": self.samples,
            "samples_per_s": self.samples_per_s,
            "mb_per_s": self.mb_per_s,
            "peak_mb": self.peak_mb,
            "runs": self.runs,
            "error": self.error,
            "skipped": self.skipped,
            "first_batch_s": self.first_batch_s,
            "first_batch": self.first_batch,
        }


@dataclass
class Comparison:
    """What ``compare`` measured: a row per pipeline, the decode bound and the machine."""

    kind: str
    files: int
    settings: dict
    results: list[PipelineResult]
    bound: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> PipelineResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def speedup(self, name: str) -> float:
        """How many times ``name``'s group's bytefeed throughput is of ``name``'s."""
        row = self[name]
        try:
            ref = self[row.group]
        except KeyError:
            return float("nan")
        return ref.samples_per_s / row.samples_per_s if row.samples_per_s else float("nan")

    def memory_ratio(self, name: str) -> float:
        """``name``'s peak memory over its bytefeed's."""
        row = self[name]
        try:
            ref = self[row.group]
        except KeyError:
            return float("nan")
        return row.peak_mb / ref.peak_mb if ref.peak_mb > 0 else float("nan")

    @property
    def bound_fraction(self) -> float | None:
        """bytefeed's throughput as a fraction of the decode (or resampling) bound."""
        if not self.bound or "bytefeed" not in [r.name for r in self.results]:
            return None
        return self["bytefeed"].samples_per_s / self.bound["bound"]

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "files": self.files,
            "settings": self.settings,
            "results": [
                {
                    **r.to_dict(),
                    "bytefeed_speedup": self.speedup(r.name),
                    "memory_vs_bytefeed": self.memory_ratio(r.name),
                }
                for r in self.results
            ],
            "decode_bound": self.bound,
            "bound_fraction": self.bound_fraction,
            "machine": self.machine,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_jsonable)

    def caption(self) -> str:
        """One line saying what was compared: files, sizes, batch, rounds, cores."""
        s = self.settings
        what = (
            f"{s['size']}x{s['size']}"
            if self.kind == "image"
            else f"{s['sample_rate']} Hz, {s['duration']} s"
            if self.kind == "audio"
            else f"max_length {s['size']}"
        )
        isolated = " in a fresh process each" if s.get("isolate") else ""
        return (
            f"bytefeed bench: {self.files} {self.kind} files, {what}, batch {s['batch_size']}, "
            f"{s['rounds']} round{'s' if s['rounds'] != 1 else ''} (median){isolated}, "
            f"{self.machine.get('cores')} cores"
        )

    def notes(self) -> list[str]:
        """What each pipeline is (its note), then the machine, one line each."""
        notes = [f"{r.name}: {r.note}" for r in self.results if r.note]
        return [*notes, "machine: " + ", ".join(f"{k} {v}" for k, v in self.machine.items())]

    def rows(self) -> list[dict[str, Any]]:
        """The comparison as table rows (``notebook.html_table`` draws them), one per
        pipeline and one for the decode (or resampling) bound.

        Every row has the same keys. The numeric ones hold a number or None (nothing
        measured), rounded to what it means: ``samples/s`` and ``MB/s`` to 3 significant
        digits, ``peak MB`` to 0.1 MB, the ratios ``bytefeed speed-up`` (how many times
        bytefeed's throughput is this row's) and ``memory vs bytefeed`` (this row's peak
        over bytefeed's) to 2, and ``first batch s`` (only when measured) to 2. Words go in
        ``note``: why a pipeline was skipped or failed, how the bound is made up.
        """
        first = any(r.first_batch for r in self.results)
        out: list[dict[str, Any]] = []
        for r in self.results:
            ran = not (r.error or r.skipped) and bool(r.runs)
            row: dict[str, Any] = {
                "pipeline": r.name,
                "samples/s": round_sig(r.samples_per_s) if ran else None,
                "MB/s": round_sig(r.mb_per_s) if ran else None,
                "peak MB": round(r.peak_mb, 1) if ran else None,
                "bytefeed speed-up": round_sig(self.speedup(r.name), 2) if ran else None,
                "memory vs bytefeed": round_sig(self.memory_ratio(r.name), 2) if ran else None,
            }
            if first:
                row["first batch s"] = round_sig(r.first_batch_s, 2) if r.first_batch else None
            row["note"] = (
                f"skipped: {r.skipped}" if r.skipped else f"failed: {r.error}" if r.error else ""
            )
            out.append(row)
        if self.bound:
            b = self.bound
            share = self.bound_fraction
            row = dict.fromkeys(out[0] if out else ("pipeline", "samples/s", "note"))
            row["pipeline"] = f"{b.get('what', 'decode')} bound"
            row["samples/s"] = round_sig(b["bound"])
            row["note"] = (
                f"{b['cores']} cores x {round_sig(b['best_rate']):,.0f}/s ({b['best']}); "
                f"all cores at once {round_sig(b.get('all_cores', float('nan'))):,.0f}/s"
                + _from_files_note(b)
                + (f"; bytefeed reaches {share:.0%} of it" if share is not None else "")
            )
            out.append(row)
        # NaN (a ratio without its bytefeed row, a rate of no run) is "not measured" too
        return [
            {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}
            for row in out
        ]

    def table(self) -> str:
        """The comparison as a plain-text (and Markdown) table."""
        first = any(r.first_batch for r in self.results)
        lines = [
            self.caption(),
            "",
            "| pipeline | samples/s | MB/s | peak MB | bytefeed is x faster | memory vs bytefeed |"
            + (" first batch s |" if first else ""),
            "|---|---:|---:|---:|---:|---:|" + ("---:|" if first else ""),
        ]
        pad = " |" if first else ""
        for r in self.results:
            fb = f" {r.first_batch_s:.2f} |" if r.first_batch else pad
            if r.skipped:
                lines.append(f"| {r.name} | skipped: {r.skipped} | | | | |{pad}")
                continue
            if r.error:
                lines.append(f"| {r.name} | failed: {r.error} | | | | |{fb}")
                continue
            speed = self.speedup(r.name)
            mem = self.memory_ratio(r.name)
            lines.append(
                f"| {r.name} | {r.samples_per_s:,.0f} | {r.mb_per_s:,.1f} | {r.peak_mb:,.0f} "
                f"| {speed:.2f}x | {mem:.1f}x |{fb}"
            )
        if self.bound:
            b = self.bound
            lines.append(
                f"| {b.get('what', 'decode')} bound | {b['bound']:,.0f} | | "
                f"| {self.bound_fraction:.0%} of it "
                f"| {b['cores']} cores x {b['best_rate']:,.0f}/s ({b['best']}); "
                f"all cores at once {b.get('all_cores', float('nan')):,.0f}/s"
                f"{_from_files_note(b)} |{pad}"
            )
        *notes, machine = self.notes()
        if notes:
            lines += ["", *(f"- {n}" for n in notes)]
        lines += ["", machine]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def plot(self, ax: Any = None) -> Any:
        """Median throughput per pipeline as bars (the decode bound as a line)."""
        import matplotlib.pyplot as plt

        ax = ax or plt.gca()
        ok = [r for r in self.results if not r.error and not r.skipped]
        colors = ["tab:green" if r.name.startswith("bytefeed") else "tab:gray" for r in ok]
        ax.bar([r.name for r in ok], [r.samples_per_s for r in ok], color=colors)
        if self.bound:
            ax.axhline(self.bound["bound"], color="tab:red", ls="--", label="decode bound")
            ax.legend()
        ax.set(ylabel="samples/s (median)", title=f"{self.kind} throughput, {self.files} files")
        ax.tick_params(axis="x", rotation=30)
        return ax


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def machine_info(kind: str = "image") -> dict:
    """CPU, cores and the versions that matter for the numbers."""
    info = {"cpu": _cpu_name(), "cores": _cores(), "python": platform.python_version()}
    packages = ["numpy", "pillow", "simplejpeg", "tensorflow", "keras"]
    if kind == "audio":
        packages += ["soundfile", "soxr", "librosa"]
    for pkg in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            info[pkg] = metadata.version(pkg)
    info["os"] = platform.platform(terse=True)
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _warm_page_cache(paths: Sequence[str]) -> None:
    """Read every file once, so no pipeline pays for the first cold read alone."""
    for p in paths:
        with contextlib.suppress(OSError), open(p, "rb") as fh:
            while fh.read(1 << 20):
                pass


def compare(
    manifest: Any,
    kind: str = "image",
    *,
    pipelines: Sequence[str] | None = None,
    size: int = 224,
    batch_size: int = 32,
    rounds: int = 3,
    sample_rate: int = 16000,
    duration: float = 1.0,
    workers: int | None = None,
    seed: int = 0,
    bound: bool = True,
    workdir: str | os.PathLike | None = None,
    progress: bool = True,
    isolate: bool = False,
    first_batch: bool = False,
) -> Comparison:
    """Run several pipelines over the same files and compare them.

    Each pipeline first yields one batch untimed (compilers and imports warm up). Then each
    round runs every pipeline once (one epoch), in the listed order on even rounds and
    reversed on odd ones, so drift in the machine's speed (thermal, other load) hits all
    alike. Reported per pipeline: median samples/s and MB/s over rounds, and the largest
    peak RSS growth (MB above the RSS when that run started). Ratios are to the bytefeed
    pipeline doing the same work (``bytefeed``, or ``bytefeed@native`` for audio at the
    files' rate). For images, the decode bound (``decode_bound``) is measured each round;
    for audio, the resampling bound (``resample_bound``).
    The allocator is left as users have it; heap memory freed by an earlier run can serve a
    later one without raising RSS, so peaks here are lower bounds (``memory_vs_size``
    measures memory strictly).

    Args:
        manifest: a ``Manifest`` or a manifest file.
        kind: "image", "audio" or "text".
        pipelines: names from ``baselines.PIPELINES[kind]`` (default: all).
        size: image side in pixels (text: ``max_length``); ``batch_size``: rows per batch.
        rounds: measured epochs per pipeline.
        sample_rate, duration: audio output rate (Hz) and clip length (s).
        workers: bytefeed's and the preload's threads (default: the cores).
        bound: measure the decode bound (images) or the resampling bound (audio).
        workdir: scratch folder (links for Keras, the cache); default a temporary one.
        isolate: run each pipeline's each round (warm-up batch, then the timed epoch) in a
            fresh Python process of its own, so no pipeline's threads, caches or heap
            affect another's; also records each round's time to first batch.
        first_batch: (without ``isolate``) time each pipeline's first batch once from a
            fresh process, after the rounds.

    A pipeline that fails is reported with its error, not raised; one whose package is not
    installed (a peer) is reported as skipped.
    """
    from ..manifest import Manifest, read_manifest
    from .baselines import Settings, make_pipeline, pipeline_names

    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, kind=kind)
    if len(manifest) == 0:
        raise ValueError("the manifest is empty")
    names = list(pipelines or pipeline_names(kind))
    unknown = [n for n in names if n not in pipeline_names(kind)]
    if unknown:
        raise ValueError(f"unknown {kind} pipelines {unknown}; choose from {pipeline_names(kind)}")
    settings = Settings(kind, size, batch_size, sample_rate, duration, seed, workers)
    results = {n: PipelineResult(n) for n in names}
    bounds: list[dict] = []
    _warm_page_cache(manifest.paths)
    with contextlib.ExitStack() as stack:
        work = (
            Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        csv = manifest.write(work / "bench-manifest.csv") if isolate or first_batch else None
        total = rounds * len(names)
        from tqdm.auto import tqdm

        bar = stack.enter_context(tqdm(total=total, desc="bench", disable=not progress, delay=1))
        if not isolate:
            for name in names:  # first calls compile, trace and import: keep them out of runs
                bar.set_postfix_str(f"warm-up {name}")
                _warm_up(name, manifest, settings, work, make_pipeline)
        for r in range(rounds):
            if bound and kind == "image":
                bounds.append(decode_bound(manifest.paths, size))
            elif bound and kind == "audio":
                bounds.append(resample_bound(manifest.paths, sample_rate, duration))
            for name in names if r % 2 == 0 else names[::-1]:
                bar.set_postfix_str(name)
                if isolate:
                    _run_in_child(results[name], csv, settings, work, "run")
                else:
                    _run_once(results[name], manifest, settings, work, make_pipeline)
                bar.update()
        if first_batch and not isolate:
            for name in names:
                bar.set_postfix_str(f"first batch {name}")
                _run_in_child(results[name], csv, settings, work, "first")
    best = _median_bound(bounds)
    return Comparison(
        kind=kind,
        files=len(manifest),
        settings={**settings.__dict__, "rounds": rounds, "isolate": isolate},
        results=list(results.values()),
        bound=best,
        machine=machine_info(kind),
    )


def _warm_up(name: str, manifest: Any, settings: Any, work: Path, make: Any) -> None:
    """One batch of ``name``, untimed (numba, tf.function and librosa compile on first use)."""
    if name.startswith(("preload", "bytefeed+cache")):
        return  # the kit's decoders, warmed by "bytefeed"; their first batch costs an epoch
    with contextlib.suppress(Exception):  # a failing pipeline fails again in its real run
        pipeline = make(name, manifest, settings, work)
        try:
            it = iter(pipeline.batches())
            next(it, None)
            if hasattr(it, "close"):
                it.close()
        finally:
            pipeline.close()


def _run_once(result: PipelineResult, manifest: Any, settings: Any, work: Path, make: Any) -> None:
    from .baselines import SkippedPipeline

    if result.error or result.skipped:
        return
    pipeline = None
    try:
        pipeline = make(result.name, manifest, settings, work)
        result.note, result.group = pipeline.note, pipeline.group
        # the heap is trimmed before prepare(), not between it and the timed epoch: a
        # pipeline whose workers run ahead on their own (Grain) filled its buffers during
        # the trim (a second or more with TensorFlow loaded) and then "ran" 3x its rate
        trim_heap()
        pipeline.prepare()
        prof = profile_stream(pipeline.timed(), name=result.name, trace_python=False)
    except SkippedPipeline as exc:
        result.skipped = str(exc)
        return
    except Exception as exc:  # one broken pipeline must not hide the others' numbers
        from ..errors import reason_of

        result.error = reason_of(exc)
        return
    finally:
        if pipeline is not None:
            with contextlib.suppress(Exception):
                pipeline.close()
        del pipeline
        trim_heap()
    result.runs.append(
        {
            "samples": prof.samples,
            "seconds": prof.seconds,
            "samples_per_s": prof.samples_per_s,
            "mb_per_s": prof.mb_per_s,
            "peak_mb": prof.rss_peak_growth / MB,
        }
    )


# --- one pipeline in a fresh process ------------------------------------------------------------
#: The line a child process prints its result on (the rest of its output is the libraries').
CHILD_MARK = "bytefeed-bench-child: "


def _run_in_child(
    result: PipelineResult, csv: Path | None, settings: Any, work: Path, mode: str
) -> None:
    """Run ``result.name`` in ``python -m bytefeed_helpers.bench.comparison``: ``mode``
    "first" times the first batch from the process's start; "run" also runs ``_run_once``
    after a fresh build (the first batch serving as its warm-up). Adds to ``result``."""
    import subprocess

    if result.error or result.skipped or csv is None:
        return
    spec = {
        "name": result.name,
        "manifest": str(csv),
        "settings": settings.__dict__,
        "work": str(work),
        "mode": mode,
        "spawned": time.time(),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bytefeed_helpers.bench.comparison", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(CHILD_MARK)]
    if not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        result.error = f"child process failed: {tail[0][:200]}"
        return
    out = json.loads(lines[-1][len(CHILD_MARK) :])
    result.note = out.get("note", result.note)
    result.group = out.get("group", result.group)
    result.skipped = out.get("skipped")
    result.error = out.get("error")
    if out.get("first_batch_s") is not None:
        result.first_batch.append(out["first_batch_s"])
    if out.get("run"):
        result.runs.append(out["run"])


def _child(spec: dict) -> dict:
    """The child's side of ``_run_in_child``: what it prints after ``CHILD_MARK``."""
    from ..manifest import read_manifest
    from .baselines import Settings, SkippedPipeline, make_pipeline

    s = Settings(**spec["settings"])
    out: dict[str, Any] = {}
    try:
        manifest = read_manifest(spec["manifest"], kind=s.kind)
        pipeline = make_pipeline(spec["name"], manifest, s, spec["work"])
        out["note"], out["group"] = pipeline.note, pipeline.group
        try:
            it = iter(pipeline.batches())
            next(it)
            out["first_batch_s"] = time.time() - spec["spawned"]
            if hasattr(it, "close"):
                it.close()
        finally:
            pipeline.close()
        del pipeline
    except SkippedPipeline as exc:
        return {**out, "skipped": str(exc)}
    except Exception as exc:
        from ..errors import reason_of

        return {**out, "error": reason_of(exc)}
    if spec["mode"] == "run":
        result = PipelineResult(spec["name"])
        _run_once(result, manifest, s, Path(spec["work"]), make_pipeline)
        out.update(error=result.error, skipped=result.skipped)
        out["run"] = result.runs[-1] if result.runs else None
    return out


def _median_bound(bounds: list[dict]) -> dict:
    bounds = [b for b in bounds if b]
    if not bounds:
        return {}
    rates = {
        k: statistics.median(b["rates"][k] for b in bounds if k in b["rates"])
        for k in bounds[0]["rates"]
    }
    all_cores = statistics.median(b["all_cores"] for b in bounds)
    first = bounds[0]
    out = _bound_dict(rates, first["cores"], all_cores, first["files"], first["what"])
    from_files = [b["from_files"] for b in bounds if "from_files" in b]
    if from_files:
        out["from_files"] = statistics.median(from_files)
    return out


# --- profiling the baselines one by one ---------------------------------------------------------
def profile_pipelines(
    manifest: Any,
    kind: str = "image",
    pipelines: Sequence[str] = ("preload", "article", "bytefeed"),
    *,
    size: int = 224,
    batch_size: int = 32,
    sample_rate: int = 16000,
    duration: float = 1.0,
    trace_python: bool = False,
    workdir: str | os.PathLike | None = None,
) -> dict[str, StreamProfile]:
    """``profile_stream`` of one epoch of each pipeline (``baselines``), one after another,
    after each has yielded one batch untimed (imports and compilers warm up). Like
    ``memory_vs_size``, it fixes glibc's mmap threshold so memory is measured strictly.

    Returns ``{name: StreamProfile}``; each has its memory timeline (``plot_timelines``).
    """
    from ..manifest import Manifest, read_manifest
    from .baselines import Settings, make_pipeline

    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest, kind=kind)
    settings = Settings(kind, size, batch_size, sample_rate, duration)
    out: dict[str, StreamProfile] = {}
    fixed_mmap_threshold()
    with contextlib.ExitStack() as stack:
        work = (
            Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        for name in pipelines:  # imports and compilers first, so no timeline includes them
            _warm_up(name, manifest, settings, work, make_pipeline)
        for name in pipelines:
            pipeline = make_pipeline(name, manifest, settings, work)
            try:
                trim_heap()  # before prepare(), as in _run_once
                pipeline.prepare()
                out[name] = profile_stream(pipeline.timed(), name=name, trace_python=trace_python)
            finally:
                pipeline.close()
                del pipeline
                trim_heap()
    return out


def plot_timelines(profiles: dict[str, StreamProfile] | Sequence[StreamProfile], ax: Any = None):
    """Memory above the start of each run against time, one line per profile."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    for prof in profiles.values() if isinstance(profiles, dict) else profiles:
        prof.plot_memory(ax)
    ax.legend()
    return ax


def plot_memory_vs_size(sweep: dict[str, list[float]], ax: Any = None):
    """``memory_vs_size``'s result: peak MB against files read, one line per pipeline."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    for name, peaks in sweep.items():
        if name != "files":
            ax.plot(sweep["files"], peaks, marker="o", label=name)
    ax.set(xlabel="files read", ylabel="peak RSS above start (MB)", title="peak memory vs files")
    ax.legend()
    return ax


# --- memory against dataset size ----------------------------------------------------------------
def repeat_manifest(manifest: Any, n: int) -> Any:
    """The first ``n`` rows of ``manifest`` repeated as often as needed (for size sweeps)."""
    return manifest.subset(np.arange(n) % len(manifest))


def memory_vs_size(
    manifest: Any,
    kind: str = "image",
    sizes: Sequence[int] = (100, 1000),
    *,
    pipelines: Sequence[str] = ("preload", "article", "bytefeed"),
    size: int = 224,
    batch_size: int = 32,
    sample_rate: int = 16000,
    duration: float = 1.0,
    workdir: str | os.PathLike | None = None,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Peak RSS growth (MB) of each pipeline reading ``sizes`` files (rows repeated as needed).

    Returns ``{"files": sizes, pipeline: [peak MB per size], ...}``. Preloading grows with
    the files; a stream should stay flat.
    """
    from .baselines import Settings, make_pipeline

    settings = Settings(kind, size, batch_size, sample_rate, duration)
    out: dict[str, list[float]] = {"files": [int(n) for n in sizes]}
    fixed_mmap_threshold()
    from tqdm.auto import tqdm

    with contextlib.ExitStack() as stack:
        work = (
            Path(workdir) if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        )
        bar = stack.enter_context(
            tqdm(total=len(sizes) * len(pipelines), desc="memory", disable=not progress, delay=1)
        )
        for n in sizes:
            subset = repeat_manifest(manifest, int(n))
            for name in pipelines:
                result = PipelineResult(name)
                _run_once(result, subset, settings, work / f"{name}-{n}", make_pipeline)
                if result.error:
                    raise RuntimeError(f"{name} on {n} files failed: {result.error}")
                out.setdefault(name, []).append(result.peak_mb)
                bar.update()
    return out


def sweep_rows(sweep: dict[str, list[float]]) -> list[dict[str, Any]]:
    """``memory_vs_size``'s result as table rows, one per pipeline: ``pipeline``, the peak
    MB at each size (``"peak MB, 100 files"``...) and ``growth MB`` (the peak at the largest
    size minus the peak at the smallest), all to 0.1 MB, the numbers ``plot_memory_vs_size``
    draws."""
    files = sweep["files"]
    rows = []
    for name, peaks in sweep.items():
        if name == "files":
            continue
        row: dict[str, Any] = {"pipeline": name}
        row.update(
            {f"peak MB, {n} files": round(mb, 1) for n, mb in zip(files, peaks, strict=True)}
        )
        row["growth MB"] = round(peaks[-1] - peaks[0], 1)
        rows.append(row)
    return rows


# --- the CLI --------------------------------------------------------------------------------------
def bench_command(args: argparse.Namespace) -> int:
    """``python -m bytefeed_helpers bench``: print ``compare``'s table (or JSON); exit status.

    Returns 0 when every pipeline ran, 1 when one failed, 2 for bad arguments.
    """
    from ..manifest import ManifestError, read_manifest

    try:
        manifest = read_manifest(args.manifest, kind=args.kind, **args.manifest_options)
    except (OSError, ManifestError, ValueError) as exc:
        print(f"bench: cannot read manifest {args.manifest}: {exc}", file=sys.stderr)
        return 2
    pipelines = [p.strip() for p in args.pipelines.split(",")] if args.pipelines else None
    try:
        result = compare(
            manifest,
            args.kind,
            pipelines=pipelines,
            size=args.size,
            batch_size=args.batch,
            rounds=args.rounds,
            workers=getattr(args, "workers", None),
            progress=not args.json and sys.stderr.isatty(),
            isolate=getattr(args, "isolate", False),
            first_batch=getattr(args, "first_batch", False),
        )
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(result.to_json() if args.json else result.table())
    return 1 if any(r.error for r in result.results) else 0


if __name__ == "__main__":  # one pipeline in a fresh process: ``_run_in_child``
    _spec = json.loads(sys.argv[1])
    print(CHILD_MARK + json.dumps(_child(_spec), default=_jsonable), flush=True)
