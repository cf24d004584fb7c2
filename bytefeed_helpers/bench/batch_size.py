"""Choosing a batch size: what each batch size costs, and what it does to learning.

The article this kit grew from, *How can byte file data be optimized and batched for Keras
models?* (2025-01-30), names batch size as its fourth consideration: too large risks memory
overflow, too small slows learning, and experimentation decides. This module runs that
experiment on a stream and a model (notebook 09 shows it):

- ``measure_costs``: per batch size, the input stream's throughput on its own (samples/s
  over whole epochs), the peak memory of a training step, and the median time of
  ``model.train_on_batch`` (so training samples/s);
- ``learning_runs``: per batch size and seed, one short ``fit``: every batch size from the
  same initial weights, the same seed and the same number of epochs (so the same samples
  seen), with its per-epoch history and training seconds;
- ``advise``: the largest batch size that fits a memory budget and still learns nearly as
  well as the best one (``learning_scores``: its best validation accuracy, the mean over the
  seeds), by a rule it states;
- ``summary_rows``, ``plot_costs``, ``plot_learning``: the numbers as table rows and figures.

Everything returned is a small dataclass whose ``to_dict()`` is plain JSON (for
``save_results``). Timings depend on the machine and its load: tests never assert them.

Run as ``python -m bytefeed_helpers.bench.batch_size --serve``, this module is the process
that ``measure_costs`` starts to measure training steps: it imports Keras once and forks a
fresh process per batch size (see ``measure_steps`` for why).
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .profiling import MB, MemorySampler, round_sig, trim_heap

#: The start of the measuring server's replies (any other line on its stdout is a library's).
CHILD_MARK = "bytefeed-batch-size-child: "


# --- the results ------------------------------------------------------------------------------
@dataclass
class BatchCost:
    """What one batch size costs (``measure_costs``). Times in ms and s, memory in MB (1e6).

    ``input_samples_per_s``: the stream alone, ``input_samples`` samples in
    ``input_seconds`` over whole epochs (no model). ``step_ms``: the median time of one
    ``train_on_batch`` on a batch of ``batch_size`` samples held in memory, after the first
    step (``first_step_ms``, which also traces the train function);
    ``train_samples_per_s = batch_size / step_ms``: the model's own speed, data excluded.
    ``peak_mb``: the peak resident memory over the first step and the timed ones, above the
    memory held just before them (model, optimizer and the batch included in that base);
    ``memory_source`` says how it was read (see ``measure_steps``); ``isolated``: measured
    in a fresh process of its own.
    """

    batch_size: int
    input_samples_per_s: float
    input_samples: int
    input_seconds: float
    step_ms: float
    first_step_ms: float
    train_samples_per_s: float
    peak_mb: float
    memory_source: str
    isolated: bool
    step_ms_all: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LearningRun:
    """One short training run at one batch size from one seed (``learning_runs``).

    ``history``: Keras's ``History.history`` (metric name -> one float per epoch, ``val_``
    names from the validation stream). ``seconds``: training seconds at each epoch's end,
    cumulative, counted from the end of the run's first training step (which traces the
    training function: a one-off second or so, whatever the batch size) and from each later
    epoch's start, to the epoch's last training step (validation left out, so runs compare
    on training time alone). ``steps_per_epoch``: the stream's batches per epoch, so
    ``updates = steps_per_epoch * epochs`` weight updates in all.
    """

    batch_size: int
    seed: int
    epochs: int
    steps_per_epoch: int
    seconds: list[float]
    history: dict[str, list[float]]

    @property
    def updates(self) -> int:
        return self.steps_per_epoch * self.epochs

    def best(self, monitor: str = "val_accuracy") -> float:
        """The highest value of ``monitor`` over the epochs."""
        return float(max(self.values(monitor)))

    def final(self, monitor: str = "val_accuracy") -> float:
        """``monitor`` after the last epoch."""
        return float(self.values(monitor)[-1])

    def values(self, monitor: str = "val_accuracy") -> list[float]:
        """``monitor``'s value after each epoch; ValueError naming the metrics there are when
        the history has no ``monitor``."""
        if monitor not in self.history:
            raise ValueError(
                f"monitor must be a metric of the runs' histories ({sorted(self.history)}). "
                f"Received: monitor={monitor!r}"
            )
        return self.history[monitor]

    def to_dict(self) -> dict:
        return {**asdict(self), "updates": self.updates}


@dataclass
class Advice:
    """The batch size ``advise`` picks, and why.

    ``rule`` says the rule in words. ``scores[i]`` is ``batch_sizes[i]``'s score
    (``learning_scores``: its runs' best ``monitor``, averaged over the seeds), the highest
    is ``best_value`` (at ``best_batch_size``) and ``target`` is ``accuracy_share`` times it.
    ``fits`` are the batch sizes whose ``peak_mb`` is within ``memory_budget_mb``;
    ``learns`` those whose score reaches ``target``; ``candidates`` both. ``reason`` says which branch of the rule chose ``batch_size``.
    ``fixed_mb`` and ``mb_per_sample`` are the least-squares line through the measured peaks
    (None with one batch size); ``largest_within_budget`` is where that line meets the
    budget (an estimate, None when it does not rise).
    """

    batch_size: int
    rule: str
    reason: str
    monitor: str
    memory_budget_mb: float
    accuracy_share: float
    batch_sizes: list[int]
    scores: list[float]
    best_batch_size: int
    best_value: float
    target: float
    fits: list[int]
    learns: list[int]
    candidates: list[int]
    fixed_mb: float | None
    mb_per_sample: float | None
    largest_within_budget: int | None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"batch size {self.batch_size}: {self.reason}"


# --- argument checks --------------------------------------------------------------------------
def check_batch_sizes(batch_sizes: Any) -> list[int]:
    """``batch_sizes`` as a list of ints, or ValueError (Keras-style) when it is not a
    non-empty sequence of distinct positive integers."""
    received = f"Received: batch_sizes={batch_sizes!r}"
    if isinstance(batch_sizes, str | bytes) or not isinstance(batch_sizes, Iterable):
        raise ValueError(f"batch_sizes must be a list of positive integers. {received}")
    sizes = list(batch_sizes)
    if not sizes:
        raise ValueError(f"batch_sizes must hold at least one batch size. {received}")
    if not all(_is_int(b) and b > 0 for b in sizes):
        raise ValueError(f"batch_sizes must be positive integers. {received}")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"batch_sizes must not repeat a batch size. {received}")
    return [int(b) for b in sizes]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _positive_int(name: str, value: Any) -> int:
    if not (_is_int(value) and value > 0):
        raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _callable(name: str, value: Any, what: str) -> None:
    if not callable(value):
        raise ValueError(f"{name} must be a function {what}. Received: {name}={value!r}")


def _compiled(model: Any, what: str = "model_fn must return") -> Any:
    """``model``, or ValueError when it is not a compiled Keras model."""
    if getattr(model, "optimizer", None) is None or not getattr(model, "compiled", True):
        raise ValueError(
            f"{what} a compiled Keras model (call model.compile first). "
            f"Received: {type(model).__name__} without an optimizer"
        )
    return model


# --- training steps: time and peak memory -----------------------------------------------------
def measure_steps(model: Any, x: Any, y: Any, steps: int = 5, *, interval: float = 0.005) -> dict:
    """Time ``steps + 1`` calls of ``model.train_on_batch(x, y)`` and their peak memory.

    ``model`` is compiled; ``x``, ``y`` one batch (``x.shape[0]`` samples). The first call
    builds (traces) the train function and the optimizer's slots; its time is reported
    apart (``first_step_ms``) and ``step_ms`` is the median of the others.

    Memory is the process's resident set size (RSS), not ``tracemalloc``: a training step's
    activations, gradients and workspaces are allocated by the backend in C++ (TensorFlow's
    allocator, oneDNN), which ``tracemalloc`` never sees. Freed heap memory is handed back to
    the OS first (``trim_heap``); then the kernel's own peak (``VmHWM`` in
    ``/proc/self/status``, restarted through ``/proc/self/clear_refs``) is read after the
    steps, so no peak between samples is missed, with RSS also sampled every ``interval`` s
    (the only source where the kernel's peak cannot be restarted). ``getrusage``'s
    ``ru_maxrss`` cannot serve: it is never restarted, and a forked child inherits its
    parent's. ``peak_mb`` is that peak above the RSS just before the first step.

    That base already holds what the allocator kept from earlier work in the same process,
    and memory it reuses is not counted again: a step measured after a larger one in the
    same process reads low. So ``measure_costs`` measures each batch size in a fresh
    process (``isolate=True``), where nothing came before.

    This is host memory: where the model trains on a GPU, the activations that overflow
    live in the GPU's memory, which this does not read.

    Returns ``{"peak_mb", "step_ms", "first_step_ms", "step_ms_all", "memory_source"}``.
    """
    steps = _positive_int("steps", steps)
    _compiled(model, "model must be")
    times = []
    trim_heap()
    with MemorySampler(interval) as memory:
        for _ in range(steps + 1):
            tick = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(1000 * (time.perf_counter() - tick))
    kernel = getattr(memory, "_kernel", False)  # True where VmHWM could be restarted
    return {
        "peak_mb": (memory.peak - memory.start) / MB,
        "step_ms": float(np.median(times[1:])),
        "first_step_ms": times[0],
        "step_ms_all": times[1:],
        "memory_source": "VmHWM" if kernel else f"RSS sampled every {1000 * interval:g} ms",
    }


#: Fork a fresh measuring process from a server that has imported Keras once (Linux), or
#: start one server per batch size where forking after importing TensorFlow is unsafe
#: (macOS) or impossible (Windows).
_FORK = sys.platform.startswith("linux")


class _StepServer:
    """``python -m bytefeed_helpers.bench.batch_size --serve``: a process that imports Keras
    once, then for each request forks a fresh process that loads the saved model and batch,
    runs ``measure_steps`` and writes the result, so that no earlier step's memory is in its
    base and the import is paid once. Requests and replies are JSON lines; the server's
    stderr (TensorFlow's start-up lines) goes to a file, whose end a failure shows."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._log_path = work / "server.log"
        self._proc: subprocess.Popen | None = None
        self._served = 0

    def measure(self, model_path: Path, batch_path: Path, steps: int) -> dict:
        if self._proc is None or (not _FORK and self._served):
            self.close()
            self._log = open(self._log_path, "ab")  # noqa: SIM115  (closed in close())
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bytefeed_helpers.bench.batch_size", "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                text=True,
            )
        result_path = batch_path.with_suffix(".result.json")
        result_path.unlink(missing_ok=True)
        spec = {"model": str(model_path), "batch": str(batch_path), "steps": steps}
        spec["result"] = str(result_path)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        try:
            self._proc.stdin.write(json.dumps(spec) + "\n")
            self._proc.stdin.flush()
            reply = None
            for line in self._proc.stdout:  # other lines are the libraries' own
                if line.startswith(CHILD_MARK):
                    reply = json.loads(line[len(CHILD_MARK) :])
                    break
        except OSError:  # the server is gone: its log says why
            reply = None
        self._served += 1
        if not reply or reply.get("exit") != 0 or not result_path.is_file():
            self.close()
            tail = "\n".join(
                self._log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-8:]
            )
            raise RuntimeError(
                f"the process measuring batch size {batch_path.stem} failed "
                f"({'exit ' + str(reply['exit']) if reply else 'no reply'}):\n{tail}"
            )
        return json.loads(result_path.read_text(encoding="utf-8"))

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()  # the server's loop ends at the end of its input
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            self._log.close()

    def __enter__(self) -> _StepServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _measure_spec(spec: dict) -> None:
    """Load the model and the batch of ``spec``, measure, write the result."""
    import warnings

    import keras

    with warnings.catch_warnings():
        # the saved model's optimizer was never built: Keras says it skips its slots
        warnings.simplefilter("ignore", UserWarning)
        model = keras.models.load_model(spec["model"])
    with np.load(spec["batch"]) as batch:
        x, y = batch["x"], batch["y"]
    result = {**measure_steps(model, x, y, spec["steps"]), "isolated": True}
    Path(spec["result"]).write_text(json.dumps(result), encoding="utf-8")


def _serve() -> None:
    """The server's loop (see ``_StepServer``): one request a line on stdin, one reply a
    line on stdout, ``{"exit": status}`` of the process that measured."""
    import os
    import traceback

    import keras  # noqa: F401  (imported once, so that each forked process starts with it)

    for line in sys.stdin:
        spec = json.loads(line)
        if not _FORK:
            try:
                _measure_spec(spec)
                code = 0
            except Exception:
                traceback.print_exc()
                code = 1
        else:
            pid = os.fork()
            if pid == 0:  # the fresh process: measure, then leave without any cleanup
                code = 1
                try:
                    _measure_spec(spec)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
        print(CHILD_MARK + json.dumps({"exit": code}), flush=True)


# --- the input stream alone -------------------------------------------------------------------
def _stream_epochs(stream: Any, epochs: int, keep: int) -> tuple[int, float, Any, Any]:
    """Iterate ``epochs`` whole epochs of ``stream`` (nothing else runs): ``(samples,
    seconds, x, y)`` with ``x``, ``y`` the first ``keep`` samples (rows repeat when fewer
    were delivered: a step's time and memory depend on the batch's shape, not its rows)."""
    xs: list[Any] = []
    ys: list[Any] = []
    kept = samples = 0
    tick = time.perf_counter()
    for _ in range(epochs):
        for batch in stream:
            x, y = batch[0], batch[1]
            samples += len(x)
            if kept < keep:
                xs.append(np.asarray(x)[: keep - kept])
                ys.append(np.asarray(y)[: keep - kept])
                kept += len(xs[-1])
    seconds = time.perf_counter() - tick
    if not samples:
        raise ValueError("the stream delivered no sample: no file of it could be decoded")
    x_all, y_all = np.concatenate(xs), np.concatenate(ys)
    rows = np.arange(keep) % len(x_all)
    return samples, seconds, x_all[rows], y_all[rows]


def _close(stream: Any) -> None:
    close = getattr(stream, "close", None)
    if callable(close):
        close()


def _bar_options(progress: bool) -> dict:
    """``tqdm.auto`` settings: shown after 2 s, removed when done (a saved notebook keeps the
    results, not a finished bar), on stdout (progress is not a warning)."""
    return {"delay": 2, "leave": False, "file": sys.stdout, "disable": not progress}


# --- measure_costs ----------------------------------------------------------------------------
def measure_costs(
    model_fn: Callable[[], Any],
    stream_fn: Callable[[int], Any],
    batch_sizes: Sequence[int],
    *,
    steps: int = 5,
    input_epochs: int = 2,
    isolate: bool = True,
    workdir: str | Path | None = None,
    progress: bool = True,
) -> list[BatchCost]:
    """What each batch size costs: input throughput, step time, peak step memory.

    Args:
        model_fn: ``() -> model``, a compiled Keras model (called once, and once more per
            batch size with ``isolate=False``; every batch size trains an untrained copy).
            With ``isolate=True`` it must save to
            ``.keras`` and load back (no ``Lambda`` layers; custom layers registered with
            ``keras.saving.register_keras_serializable``).
        stream_fn: ``batch_size -> stream`` of ``(x, y)`` batches of that size (e.g.
            ``lambda b: bf.image_batches(files, b, size, seed=0)``); called once per batch
            size for a fresh stream, and once more for an untimed warm-up epoch (the page
            cache and the decoders warm, so the first size measured pays no cold start).
        batch_sizes: distinct positive integers, measured in this order.
        steps: timed training steps per batch size, after one untimed first step.
        input_epochs: whole epochs the stream runs alone for its throughput.
        isolate: measure the steps of each batch size in a fresh process (the default: see
            ``measure_steps`` for why), forked from a server process that imports Keras once
            (on Linux; elsewhere one new process per batch size); False measures in this
            process, faster, but its peaks may read low after a larger batch size.
        workdir: where the saved model and batches go (default: a temporary folder).
        progress: show a ``tqdm.auto`` bar over the batch sizes.

    Returns one ``BatchCost`` per batch size, in the order given. A batch size larger than
    what the stream delivers in ``input_epochs`` epochs trains on repeated samples.
    Raises ValueError on a bad argument or a stream that delivers nothing, RuntimeError
    when a measuring process fails (with the end of its stderr).
    """
    sizes = check_batch_sizes(batch_sizes)
    steps = _positive_int("steps", steps)
    input_epochs = _positive_int("input_epochs", input_epochs)
    _callable("model_fn", model_fn, "returning a compiled Keras model")
    _callable("stream_fn", stream_fn, "of the batch size returning a stream")
    model = _compiled(model_fn())
    with contextlib.ExitStack() as cleanup:
        if workdir is None:
            work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bytefeed-")))
        else:
            work = Path(workdir)
            work.mkdir(parents=True, exist_ok=True)
        model_path = work / "model.keras"
        if isolate:
            model.save(model_path)
        server = cleanup.enter_context(_StepServer(work))
        warm = stream_fn(sizes[0])
        try:
            _stream_epochs(warm, 1, 1)  # untimed: warms the page cache and the decoders
        finally:
            _close(warm)
        costs = []
        bar = cleanup.enter_context(
            tqdm(sizes, desc="batch sizes", unit="size", **_bar_options(progress))
        )
        for size in bar:
            bar.set_postfix_str(f"batch size {size}")
            stream = stream_fn(size)
            try:
                samples, seconds, x, y = _stream_epochs(stream, input_epochs, size)
            finally:
                _close(stream)
            if isolate:
                batch_path = work / f"{size}.npz"
                np.savez(batch_path, x=x, y=y)
                step = server.measure(model_path, batch_path, steps)
            else:
                step = {**measure_steps(_compiled(model_fn()), x, y, steps), "isolated": False}
            costs.append(
                BatchCost(
                    batch_size=size,
                    input_samples_per_s=samples / seconds if seconds > 0 else math.nan,
                    input_samples=samples,
                    input_seconds=seconds,
                    step_ms=step["step_ms"],
                    first_step_ms=step["first_step_ms"],
                    train_samples_per_s=1000 * size / step["step_ms"]
                    if step["step_ms"] > 0
                    else math.nan,
                    peak_mb=step["peak_mb"],
                    memory_source=step["memory_source"],
                    isolated=bool(step["isolated"]),
                    step_ms_all=list(step["step_ms_all"]),
                )
            )
    return costs


# --- learning_runs ----------------------------------------------------------------------------
def _train_clock() -> tuple[Any, list[float]]:
    """A Keras callback and the list it fills: cumulative training seconds at each epoch's
    end (see ``LearningRun``: the first step, which traces, is left out, and so is
    validation)."""
    import keras

    seconds: list[float] = []
    marks: dict[str, float | None] = {"start": None, "last": 0.0}

    def begin(epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        marks["start"], marks["last"] = (None if not seconds else now), now

    def step(batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        if marks["start"] is None:  # the end of the run's first step: the clock starts
            marks["start"] = now
        marks["last"] = now

    def end(epoch: int, logs: dict | None = None) -> None:
        start, last = marks["start"], marks["last"]
        spent = 0.0 if start is None or last is None else last - start
        seconds.append((seconds[-1] if seconds else 0.0) + spent)

    clock = keras.callbacks.LambdaCallback(
        on_epoch_begin=begin, on_train_batch_end=step, on_epoch_end=end
    )
    return clock, seconds


def check_seeds(seeds: Any) -> list[int]:
    """``seeds`` as a list of ints, or ValueError (Keras-style) when it is not a non-empty
    sequence of distinct integers."""
    received = f"Received: seeds={seeds!r}"
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be a list of integers. {received}")
    values = list(seeds)
    if not values or not all(_is_int(v) for v in values) or len(set(values)) != len(values):
        raise ValueError(f"seeds must be distinct integers, at least one. {received}")
    return [int(v) for v in values]


def learning_runs(
    model_fn: Callable[[], Any],
    stream_fn: Callable[[int, int], Any],
    validation: Any,
    batch_sizes: Sequence[int],
    *,
    epochs: int = 8,
    seeds: Sequence[int] = (0,),
    progress: bool = True,
) -> list[LearningRun]:
    """Short ``fit`` runs, one per batch size and seed, all else equal.

    Before each run the Keras session is cleared and ``keras.utils.set_random_seed(seed)``
    set, so every batch size starts from the same initial weights for a seed;
    ``stream_fn(batch_size, seed)`` builds the training stream (give it that seed, so every
    batch size of a seed sees the files in the same order) and ``validation`` (one stream,
    its batch size fixed) scores every run alike. Every run trains ``epochs`` epochs: the
    same samples seen, in ``ceil(n / batch_size)`` updates per epoch. The learning rate is
    whatever ``model_fn`` compiles, the same for every batch size. More than one seed
    repeats each batch size from other weights and orders: on a small validation set one
    run's accuracy is a noisy number, and ``learning_scores`` averages the seeds.

    Returns one ``LearningRun`` per batch size and seed, batch sizes in the order given and
    the seeds of each in theirs. Raises ValueError on a bad argument.
    """
    import keras

    sizes = check_batch_sizes(batch_sizes)
    seeds = check_seeds(seeds)
    epochs = _positive_int("epochs", epochs)
    _callable("model_fn", model_fn, "returning a compiled Keras model")
    _callable("stream_fn", stream_fn, "of the batch size and seed returning a stream")
    runs = []
    plan = [(size, seed) for size in sizes for seed in seeds]
    bar = tqdm(plan, desc="training runs", unit="run", **_bar_options(progress))
    for size, seed in bar:
        bar.set_postfix_str(f"batch size {size}, seed {seed}")
        keras.backend.clear_session()
        keras.utils.set_random_seed(seed)
        model = _compiled(model_fn())
        train = stream_fn(size, seed)
        clock, seconds = _train_clock()
        try:
            history = model.fit(
                train, validation_data=validation, epochs=epochs, callbacks=[clock], verbose=0
            )
            steps_per_epoch = len(train)
        finally:
            _close(train)
        runs.append(
            LearningRun(
                batch_size=size,
                seed=seed,
                epochs=epochs,
                steps_per_epoch=int(steps_per_epoch),
                seconds=seconds,
                history={k: [float(v) for v in vals] for k, vals in history.history.items()},
            )
        )
        del model
    bar.close()
    return runs


def learning_scores(runs: Sequence[LearningRun], monitor: str = "val_accuracy") -> dict[int, float]:
    """Batch size -> the mean over its runs (its seeds) of each run's best ``monitor``."""
    scores: dict[int, list[float]] = {}
    for run in runs:
        scores.setdefault(run.batch_size, []).append(run.best(monitor))
    return {b: float(np.mean(v)) for b, v in scores.items()}


# --- advise -----------------------------------------------------------------------------------
def memory_line(costs: Sequence[BatchCost]) -> tuple[float, float] | None:
    """``(fixed_mb, mb_per_sample)``: the least-squares line ``peak_mb = fixed + per_sample *
    batch_size`` through the measured peaks; None with fewer than two batch sizes."""
    if len({c.batch_size for c in costs}) < 2:
        return None
    slope, intercept = np.polyfit([c.batch_size for c in costs], [c.peak_mb for c in costs], deg=1)
    return float(intercept), float(slope)


def advise(
    costs: Sequence[BatchCost],
    runs: Sequence[LearningRun],
    *,
    memory_budget_mb: float,
    accuracy_share: float = 0.9,
    monitor: str = "val_accuracy",
) -> Advice:
    """The largest batch size that fits the memory budget and still learns nearly as well.

    The rule: a batch size *fits* when its measured ``peak_mb`` is at most
    ``memory_budget_mb``; it *learns* when its score (``learning_scores``: the best
    ``monitor`` of each of its runs, the highest over the epochs, averaged over its seeds;
    ``monitor`` is a metric where higher is better, e.g. ``val_accuracy``) reaches
    ``accuracy_share`` of the best batch size's score. The advice is the largest batch size that does
    both: larger batches train more samples per second, as long as memory holds them and
    the fewer updates per epoch still learn. When none does both, the best-learning batch
    size that fits; when none fits, the smallest measured (the budget needs a smaller model
    or smaller inputs).

    ``costs`` (``measure_costs``) and ``runs`` (``learning_runs``) must cover the same batch
    sizes. Raises ValueError otherwise, or on a bad budget, share or monitor.
    """
    if not isinstance(memory_budget_mb, int | float) or not memory_budget_mb > 0:
        raise ValueError(
            f"memory_budget_mb must be a positive number. Received: "
            f"memory_budget_mb={memory_budget_mb!r}"
        )
    if not isinstance(accuracy_share, int | float) or not 0 < accuracy_share <= 1:
        raise ValueError(
            f"accuracy_share must be in (0, 1]. Received: accuracy_share={accuracy_share!r}"
        )
    if "loss" in monitor:
        raise ValueError(
            "monitor must be a metric where higher is better (an accuracy), not a loss. "
            f"Received: monitor={monitor!r}"
        )
    if isinstance(memory_budget_mb, bool) or isinstance(accuracy_share, bool):
        raise ValueError("memory_budget_mb and accuracy_share must be numbers, not True/False")
    by_cost = {c.batch_size: c for c in costs}
    best_value = learning_scores(runs, monitor)
    if not by_cost or set(by_cost) != set(best_value):
        raise ValueError(
            "costs and runs must measure the same batch sizes. Received: costs for "
            f"{sorted(by_cost)}, runs for {sorted(best_value)}"
        )
    sizes = sorted(by_cost)
    top = max(best_value.values())
    best_size = min(b for b in sizes if best_value[b] == top)  # the smallest of a tie
    target = accuracy_share * top
    fits = [b for b in sizes if by_cost[b].peak_mb <= memory_budget_mb]
    learns = [b for b in sizes if best_value[b] >= target]
    candidates = [b for b in fits if b in learns]
    if candidates:
        choice = candidates[-1]
        reason = (
            f"the largest that fits in {memory_budget_mb:,.0f} MB (peak "
            f"{by_cost[choice].peak_mb:,.1f} MB) and reaches {monitor} "
            f"{best_value[choice]:.3f} >= {target:.3f}"
        )
    elif fits:
        choice = max(fits, key=lambda b: (best_value[b], -b))
        reason = (
            f"no batch size that fits reaches {target:.3f}: the one that learns best within "
            f"{memory_budget_mb:,.0f} MB ({monitor} {best_value[choice]:.3f})"
        )
    else:
        choice = sizes[0]
        reason = (
            f"none fits in {memory_budget_mb:,.0f} MB: the smallest measured (peak "
            f"{by_cost[choice].peak_mb:,.1f} MB); use a smaller model or smaller inputs"
        )
    line = memory_line(costs)
    largest = None
    if line is not None and line[1] > 0:
        # a hair over the floor: a line through exact peaks lands on whole batch sizes
        largest = max(0, math.floor((memory_budget_mb - line[0]) / line[1] + 1e-9))
    rule = (
        f"the largest batch size whose training step peaks within {memory_budget_mb:,.0f} MB "
        f"and whose best {monitor} (mean over its seeds) reaches {accuracy_share:.0%} of the "
        "best batch size's"
    )
    return Advice(
        batch_size=choice,
        rule=rule,
        reason=reason,
        monitor=monitor,
        memory_budget_mb=float(memory_budget_mb),
        accuracy_share=float(accuracy_share),
        batch_sizes=sizes,
        scores=[best_value[b] for b in sizes],
        best_batch_size=best_size,
        best_value=top,
        target=target,
        fits=fits,
        learns=learns,
        candidates=candidates,
        fixed_mb=None if line is None else line[0],
        mb_per_sample=None if line is None else line[1],
        largest_within_budget=largest,
    )


# --- tables and figures -----------------------------------------------------------------------
def _runs_by_size(runs: Sequence[LearningRun]) -> dict[int, list[LearningRun]]:
    grouped: dict[int, list[LearningRun]] = {}
    for run in runs:
        grouped.setdefault(run.batch_size, []).append(run)
    return grouped


def summary_rows(
    costs: Sequence[BatchCost], runs: Sequence[LearningRun] = (), monitor: str = "val_accuracy"
) -> list[dict]:
    """One dict per batch size, keyed by column name: the rows of a table
    (``bytefeed_helpers.notebook.html_table(rows)`` shows it). Rounded to what the numbers
    mean: wall-clock rates, times and memory to three significant digits (``round_sig``:
    a second run moves them by more than that), ``monitor`` to three decimals (one
    validation sample of a few dozen is several hundredths). With ``runs``, each batch
    size's weight updates per run, best and final ``monitor`` and training seconds (each the
    mean over its seeds) join its costs."""
    grouped = _runs_by_size(runs)
    rows = []
    for c in costs:
        row: dict[str, Any] = {
            "batch size": c.batch_size,
            "input samples/s": round_sig(c.input_samples_per_s),
            "train samples/s": round_sig(c.train_samples_per_s),
            "step ms (median)": round_sig(c.step_ms),
            "peak MB": round_sig(c.peak_mb),
        }
        done = grouped.get(c.batch_size)
        if done:
            row["updates"] = done[0].updates
            row[f"best {monitor}"] = round(float(np.mean([r.best(monitor) for r in done])), 3)
            row[f"final {monitor}"] = round(float(np.mean([r.final(monitor) for r in done])), 3)
            row["training s"] = round_sig(float(np.mean([r.seconds[-1] for r in done])))
        rows.append(row)
    return rows


def plot_costs(costs: Sequence[BatchCost], memory_budget_mb: float | None = None) -> Any:
    """Three panels against batch size: samples/s of the stream alone and of training steps,
    and the median step time (log scale: batch sizes double); peak memory of a step, on a
    linear scale where the fitted line (``memory_line``) is straight, with
    ``memory_budget_mb`` drawn where it is in range. Returns the figure."""
    import matplotlib.pyplot as plt

    costs = sorted(costs, key=lambda c: c.batch_size)
    sizes = [c.batch_size for c in costs]
    fig, (speed, memory, step) = plt.subplots(1, 3, figsize=(12, 3.4))
    speed.plot(sizes, [c.input_samples_per_s for c in costs], "o-", label="input stream alone")
    speed.plot(sizes, [c.train_samples_per_s for c in costs], "s-", label="training step")
    speed.set(ylabel="samples/s", title="throughput")
    speed.legend(fontsize="small")
    memory.plot(sizes, [c.peak_mb for c in costs], "o", color="tab:red", label="measured")
    line = memory_line(costs)
    if line is not None:
        grid = np.array([0, max(sizes)])
        memory.plot(
            grid,
            line[0] + line[1] * grid,
            ":",
            color="gray",
            label=f"{line[0]:,.0f} MB + {line[1]:.2g} MB/sample",
        )
    top = max(c.peak_mb for c in costs)
    if memory_budget_mb is not None and memory_budget_mb <= 1.5 * top:
        memory.axhline(memory_budget_mb, color="black", lw=1, ls="--", label="budget")
    memory.set(ylabel="MB above the base", title="peak memory of a step", xlim=(0, None))
    memory.legend(fontsize="small")
    step.plot(sizes, [c.step_ms for c in costs], "o-", color="tab:green")
    step.set(ylabel="ms", title="median training step")
    for ax in (speed, step):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
    for ax in (speed, memory, step):
        ax.set_xlabel("batch size")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_learning(runs: Sequence[LearningRun], monitor: str = "val_accuracy") -> Any:
    """Two panels, one curve per batch size: ``monitor`` against epochs (the same samples
    seen; the mean over the seeds, their range shaded) and against training seconds (the
    same time spent; means over the seeds). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for size, done in sorted(_runs_by_size(runs).items()):
        epochs = min(r.epochs for r in done)
        values = np.array([r.values(monitor)[:epochs] for r in done])
        seconds = np.mean([r.seconds[:epochs] for r in done], axis=0)
        mean = values.mean(axis=0)
        x = np.arange(1, epochs + 1)
        seeds = f", {len(done)} seeds" if len(done) > 1 else ""
        (drawn,) = by_epoch.plot(x, mean, "o-", ms=3, label=f"batch {size}{seeds}")
        if len(done) > 1:
            by_epoch.fill_between(
                x, values.min(axis=0), values.max(axis=0), color=drawn.get_color(), alpha=0.12
            )
        by_time.plot(seconds, mean, "o-", ms=3, color=drawn.get_color())
    by_epoch.set(xlabel="epoch", ylabel=monitor, title=f"{monitor} per epoch")
    by_time.set(xlabel="training seconds (after the first step)", title=f"{monitor} against time")
    for ax in (by_epoch, by_time):
        ax.grid(alpha=0.3)
    by_epoch.legend(fontsize="small")
    fig.tight_layout()
    return fig


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:  # see ``_StepServer``
    _serve()
