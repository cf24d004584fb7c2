"""The scale benchmark: ``python -m bytefeed_helpers bench --scale 10000000``.

Writes an ``N``-row ``path,label`` manifest (10 classes) to a temporary folder and times, side
by side, what a job with millions of files pays before its first batch: CSV and Parquet
written and read, the source fingerprint, building an image stream, ``stream.state()`` and
the first batch. The paths need not exist, except the first 64, which are made small JPEGs so
that a first batch (``shuffle=False``) can be timed.

Each step runs in a fresh Python process, so that its peak RSS (``VmHWM``) is its own:
the peak of a process that imported what the step needs (numpy and pyarrow; Keras for the
stream step) and then did the step, next to the RSS it started the step with.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Classes of the benchmark manifest; the first ``REAL_IMAGES`` rows are real JPEG files.
CLASSES = 10
REAL_IMAGES = 64

#: The issue's targets on the 2-core machine: ``step -> (seconds, peak RSS MB)``; None: none.
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "write_csv": (10.0, None),
    "read_csv": (10.0, 1500.0),
    "write_parquet": (10.0, None),
    "read_parquet": (3.0, None),
    "stream_build": (1.0, None),
    "state": (1e-3, None),
}


@dataclass
class Step:
    """One measured step: ``seconds`` it took; peak and starting RSS of its process (MB)."""

    name: str
    seconds: float
    peak_mb: float | None = None
    start_mb: float | None = None
    note: str = ""


@dataclass
class ScaleReport:
    """What ``scale_benchmark`` measured: one ``Step`` per line, plus file sizes."""

    rows: int
    folder: str
    cpus: int
    steps: list[Step] = field(default_factory=list)
    csv_mb: float = 0.0
    parquet_mb: float = 0.0

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def table(self) -> str:
        """The report as a text table, one step a line, with the issue's target beside it."""
        lines = [
            f"bytefeed scale benchmark: {self.rows:,} rows (path,label; {CLASSES} classes), "
            f"{self.cpus} CPUs, in {self.folder}",
            f"files: CSV {self.csv_mb:.1f} MB, Parquet {self.parquet_mb:.1f} MB",
            f"{'step':<34}{'time':>12}{'peak RSS':>12}{'at start':>11}  target",
        ]
        for s in self.steps:
            peak = "" if s.peak_mb is None else f"{s.peak_mb:,.0f} MB"
            start = "" if s.start_mb is None else f"{s.start_mb:,.0f} MB"
            lines.append(
                f"{_LABELS.get(s.name, s.name):<34}{_duration(s.seconds):>12}{peak:>12}"
                f"{start:>11}  {_target(s)}{'  ' + s.note if s.note else ''}"
            )
        return "\n".join(lines)


_LABELS = {
    "make": "make the manifest in memory",
    "write_csv": "Manifest.write (CSV)",
    "read_csv": "read_manifest (CSV)",
    "write_parquet": "Manifest.write (Parquet)",
    "read_parquet": "read_manifest (Parquet)",
    "import": "import bytefeed + Keras",
    "stream_build": "stream build (image_batches)",
    "state_first": "stream.state(), first call",
    "state": "stream.state(), median",
    "fingerprint": "Manifest.fingerprint() (first)",
    "epoch_order": "epoch order (shuffled)",
    "first_batch": "first batch (32 JPEGs, no shuffle)",
}


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _target(step: Step) -> str:
    seconds, mb = TARGETS.get(step.name, (None, None))
    if seconds is None:
        return ""
    ok = step.seconds <= seconds and (mb is None or (step.peak_mb or 0) <= mb)
    want = f"<= {_duration(seconds)}" + (f", <= {mb:,.0f} MB" if mb is not None else "")
    return f"{want} ({'met' if ok else 'MISSED'})"


def scale_benchmark(rows: int, folder: str | os.PathLike | None = None) -> ScaleReport:
    """Measure every step on an ``rows``-row manifest written under ``folder`` (default: a
    temporary folder, removed afterwards). Each step runs in its own Python process."""
    rows = int(rows)
    if rows < REAL_IMAGES:
        raise ValueError(f"scale must be at least {REAL_IMAGES} rows. Received: scale={rows}")
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="bytefeed-scale-") as tmp:
            return _run_all(rows, Path(tmp))
    Path(folder).mkdir(parents=True, exist_ok=True)
    return _run_all(rows, Path(folder))


def _run_all(rows: int, folder: Path) -> ScaleReport:
    report = ScaleReport(rows=rows, folder=str(folder), cpus=os.cpu_count() or 1)
    _real_images(folder)
    for step in ("write_csv", "write_parquet", "read_csv", "read_parquet", "stream"):
        report.steps += [Step(**s) for s in _child(step, folder, rows)]
    report.csv_mb = (folder / "manifest.csv").stat().st_size / 2**20
    report.parquet_mb = (folder / "manifest.parquet").stat().st_size / 2**20
    return report


def _real_images(folder: Path) -> None:
    from PIL import Image

    for row in range(REAL_IMAGES):
        path = folder / _relative_path(row)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (row * 3 % 256, 90, 160)).save(path, "JPEG")


def _relative_path(row: int) -> str:
    return f"class_{row % CLASSES}/img_{row:08d}.jpg"


def _child(step: str, folder: Path, rows: int) -> list[dict]:
    """Run ``step`` in a fresh interpreter; its steps' measurements."""
    # this file run as a script: importing bytefeed_helpers.bench would import every
    # benchmark (and TensorFlow) into the child, and its RSS would not be the step's own
    code = "import runpy, sys; runpy.run_path(sys.argv.pop(1), run_name='__main__')"
    out = subprocess.run(
        [sys.executable, "-c", code, __file__, step, str(folder), str(rows)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if out.returncode != 0:
        raise RuntimeError(f"scale step {step!r} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _peak_mb() -> float:
    """This process's peak RSS in MB. Linux: ``VmHWM``, the high-water mark of this program's
    own memory: ``ru_maxrss`` would also count the parent's RSS at the fork, which ``exec``
    carries over (a parent holding TensorFlow would make every step look 900 MB big)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    # ru_maxrss is KiB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _make(rows: int, folder: Path) -> Any:
    """The benchmark manifest in memory, built column-wise (no Python object per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from bytefeed_helpers.manifest import Manifest, StringColumn

    i = np.arange(rows, dtype=np.int64)
    labels = (i % CLASSES).astype(np.int32)
    s = pa.large_string()
    digits = pc.utf8_lpad(pc.cast(pa.array(i), s), 8, "0")
    paths = pc.binary_join_element_wise(
        pa.scalar(f"{folder}/class_", s),
        pc.cast(pa.array(labels), s),
        pa.scalar("/img_", s),
        digits,
        pa.scalar(".jpg", s),
        pa.scalar("", s),
    )
    return Manifest(StringColumn(paths), labels, [f"class_{k}" for k in range(CLASSES)])


def _timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t


def _main(argv: list[str]) -> None:
    """A step, in this (fresh) process; prints its measurements as one JSON line."""
    step, folder_text, rows_text = argv
    folder, rows = Path(folder_text), int(rows_text)
    from bytefeed_helpers.manifest import read_manifest

    csv, parquet = folder / "manifest.csv", folder / "manifest.parquet"
    out: list[dict] = []
    if step in ("write_csv", "write_parquet"):
        m, made = _timed(lambda: _make(rows, folder))
        if step == "write_csv":
            out.append(asdict(Step("make", made, _peak_mb(), None)))
        start = _rss_mb()
        _, took = _timed(lambda: m.write(csv if step == "write_csv" else parquet))
        out.append(asdict(Step(step, took, _peak_mb(), start)))
    elif step in ("read_csv", "read_parquet"):
        start = _rss_mb()
        m, took = _timed(lambda: read_manifest(csv if step == "read_csv" else parquet))
        peak = _peak_mb()
        if len(m) != rows or m.paths[REAL_IMAGES - 1] != str(folder / _relative_path(63)):
            raise SystemExit(f"{step}: wrong manifest {m!r}, row 63 = {m.paths[63]!r}")
        out.append(asdict(Step(step, took, peak, start)))
    elif step == "stream":
        out += _stream_steps(folder, rows, read_manifest(parquet))
    else:
        raise SystemExit(f"unknown step {step!r}")
    print(json.dumps(out))


def _stream_steps(folder: Path, rows: int, m: Any) -> list[dict]:
    image_batches, imported = _timed(_import_stream)
    out = [asdict(Step("import", imported, _peak_mb(), None, f"Keras backend {_backend()}"))]
    start = _rss_mb()
    stream, built = _timed(lambda: image_batches(m, 32, 64, seed=0))
    out.append(asdict(Step("stream_build", built, _peak_mb(), start)))
    _, first = _timed(stream.state)
    out.append(asdict(Step("state_first", first, note="computes the fingerprint once")))
    times = []
    for _ in range(1000):
        t = time.perf_counter()
        stream.state()
        times.append(time.perf_counter() - t)
    out.append(asdict(Step("state", statistics.median(times), note="of 1000 calls")))
    from bytefeed_helpers.order import epoch_order

    start = _rss_mb()
    perm, took = _timed(lambda: epoch_order(rows, 0, 0, True))
    note = f"{perm.dtype}, {perm.nbytes / 2**20:.0f} MB"
    out.append(asdict(Step("epoch_order", took, _peak_mb(), start, note)))
    del perm
    again = image_batches(m, 32, 64, shuffle=False, workers=2)
    batch, took = _timed(lambda: next(iter(again)))
    note = f"x {tuple(batch[0].shape)}, stream built and started"
    out.append(asdict(Step("first_batch", took, _peak_mb(), None, note)))
    again.close()
    return out


def _import_stream() -> Any:
    from bytefeed_helpers.images import image_batches  # Keras and the stream machinery

    return image_batches


def _backend() -> str:
    import keras

    return str(keras.backend.backend())


def scale_command(args: argparse.Namespace) -> int:
    """``python -m bytefeed_helpers bench --scale N``: print the report (or JSON)."""
    try:
        report = scale_benchmark(args.scale)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else report.table())
    return 0


if __name__ == "__main__":  # a step's own process (see ``_child``)
    _main(sys.argv[1:])
