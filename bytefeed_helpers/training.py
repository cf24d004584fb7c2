"""Training on streams: a Keras callback, learning curves, confusion matrices, predictions.

What the training notebooks (06-08) share: ``StreamMonitor`` logs each epoch's skipped files
and throughput into Keras' history; ``plot_history`` and ``plot_confusion`` draw the results;
``predict_files`` runs a trained (or reloaded) model on single files decoded exactly as the
stream decodes them; ``collect_predictions`` gathers a stream's labels, predictions and paths;
``step_time_ratio`` shows whether the stream or the model is the bottleneck.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from .errors import BadFileError, reason_of


class StreamMonitor(keras.callbacks.Callback):
    """Adds the training stream's skipped files and throughput to each epoch's logs.

    Per epoch it writes into ``logs`` (so into ``History.history`` and the progress bar):

    - ``stream_errors``: files of the training stream skipped during this epoch;
    - ``val_stream_errors``: files of ``validation`` skipped since the epoch began (only when
      a validation stream is given);
    - ``samples_per_s``: good training samples of the epoch / seconds from the epoch's start
      to its last training step (validation time excluded): the speed of data and model
      together.

    ``verbose=True`` also prints one line per epoch that skipped files. The same numbers are
    kept in ``monitor.history`` (name -> list, one value per epoch).
    """

    def __init__(self, stream: Any, validation: Any = None, *, verbose: bool = False):
        super().__init__()
        self.stream = stream
        self.validation = validation
        self.verbose = bool(verbose)
        self.history: dict[str, list[float]] = {}
        self._start = 0.0
        self._last_step = 0.0
        self._steps = 0
        self._epoch = 0
        self._val_epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = self._last_step = time.perf_counter()
        self._steps = 0
        self._epoch = self.stream.epoch
        if self.validation is not None:
            self._val_epoch = self.validation.epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._steps += 1
        self._last_step = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        errors = sum(1 for e in self.stream.errors if e.epoch == self._epoch)
        seconds = max(self._last_step - self._start, 1e-9)
        numbers = {
            "stream_errors": float(errors),
            "samples_per_s": (_epoch_rows(self.stream, self._epoch, self._steps) - errors)
            / seconds,
        }
        if self.validation is not None:
            numbers["val_stream_errors"] = float(
                sum(1 for e in self.validation.errors if e.epoch >= self._val_epoch)
            )
        for key, value in numbers.items():
            self.history.setdefault(key, []).append(value)
        if logs is not None:
            logs.update(numbers)
        skipped = numbers["stream_errors"] + numbers.get("val_stream_errors", 0.0)
        if self.verbose and skipped:
            print(f"epoch {epoch + 1}: skipped {skipped:.0f} file(s); see stream.errors")


def _epoch_rows(stream: Any, epoch: int, steps: int) -> int:
    """Rows in the first ``steps`` batch slots of ``epoch`` (good and skipped files)."""
    engine = stream.engine
    order = engine.epoch_order(epoch)
    slots = min(steps, len(engine))
    return sum(len(engine.slot_rows(epoch, s, order)) for s in range(slots))


# --- plots -----------------------------------------------------------------------------------
def plot_history(history: Any, keys: Sequence[str] | None = None) -> Any:
    """Learning curves: one panel per metric, training and ``val_`` curves together.

    ``history`` is a ``keras.callbacks.History`` (what ``fit`` returns) or its ``.history``
    dict (name -> one value per epoch). ``keys`` picks the metrics (default: all, in order,
    e.g. ``loss``, ``accuracy``, and ``StreamMonitor``'s ``samples_per_s``,
    ``stream_errors``). Returns the matplotlib ``Figure``; raises ValueError when there is
    nothing to plot.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    logs = dict(getattr(history, "history", history))
    bases = list(keys) if keys is not None else _metric_bases(logs)
    bases = [b for b in bases if b in logs or f"val_{b}" in logs]
    if not bases:
        raise ValueError(f"no metric to plot in history with keys {sorted(logs)}")
    fig, axes = plt.subplots(1, len(bases), figsize=(3.6 * len(bases), 3.0), squeeze=False)
    for ax, base in zip(axes[0], bases, strict=True):
        for key, label in ((base, "train"), (f"val_{base}", "validation")):
            if key in logs:
                values = np.asarray(logs[key], dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", ms=3, label=label)
        ax.set(title=base, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def _metric_bases(logs: Mapping[str, Any]) -> list[str]:
    """Metric names without ``val_``, loss first, the stream's own numbers last."""
    bases: list[str] = []
    for key in logs:
        base = key.removeprefix("val_")
        if base not in bases:
            bases.append(base)
    return sorted(bases, key=lambda b: (b != "loss", b in _STREAM_KEYS))


_STREAM_KEYS = ("samples_per_s", "stream_errors")


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Counts ``int64 [C, C]``: row = true class, column = predicted class.

    ``y_true`` and ``y_pred`` are integer class ids of the same length; ``n_classes``
    defaults to the largest id + 1. Raises ValueError for mismatched lengths, unlabelled
    (negative) or out-of-range ids.
    """
    t = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(y_pred).astype(np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    if n_classes is None:
        n_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"class ids must lie in 0..{n_classes - 1} (unlabelled rows are -1)")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def plot_confusion(
    y_true: Any, y_pred: Any, class_names: Sequence[str], *, normalize: bool = False
) -> Any:
    """The confusion matrix as an annotated heat map (rows true, columns predicted).

    Cells show counts, or with ``normalize=True`` the fraction of each true class. The title
    gives the accuracy. Returns the ``Figure``; bad ids raise ValueError (see
    ``confusion_matrix``).
    """
    import matplotlib.pyplot as plt

    names = list(class_names)
    cm = confusion_matrix(y_true, y_pred, len(names))
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(shown, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(names))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="true")
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    ax.set_title(f"accuracy {accuracy:.1%} ({np.trace(cm)}/{cm.sum()})")
    threshold = shown.max() / 2 if shown.size else 0
    for i, j in np.ndindex(*shown.shape):
        text = f"{shown[i, j]:.2f}" if normalize else str(shown[i, j])
        colour = "white" if shown[i, j] > threshold else "black"
        ax.text(j, i, text, ha="center", va="center", color=colour, fontsize="small")
    fig.tight_layout()
    return fig


# --- predicting files --------------------------------------------------------------------------
def decode_files(stream_or_settings: Any, paths: str | os.PathLike | Sequence[Any]) -> np.ndarray:
    """Decode ``paths`` into one batch exactly as a stream decodes them, without augmentation.

    ``stream_or_settings`` is a ``Stream`` (its ``engine.decode``, ``engine.collate`` and
    ``engine.postprocess`` are used) or a settings dict ``{"kind": "image", **stream.options}``
    (``"audio"``, ``"text"`` with the training stream's ``"tokenizer"``). Random audio crops
    are augmentation: they become ``crop="start"``, as on a validation stream. Returns what the
    stream's ``x`` would be for these files (e.g. ``uint8 [N, H, W, C]``). A file that cannot
    be decoded raises ``BadFileError`` naming it.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("no paths to decode")
    decode, collate, postprocess = _decode_path(stream_or_settings, paths)
    wants_rng = "rng" in inspect.signature(decode).parameters
    samples = []
    for path in paths:
        try:
            sample = decode(path, rng=np.random.default_rng(0)) if wants_rng else decode(path)
        except Exception as exc:
            raise BadFileError(reason_of(exc), path) from exc
        samples.append(sample)
    x = collate(samples)
    return x if postprocess is None else postprocess(x)


def _decode_path(source: Any, paths: list[Any]) -> tuple[Callable, Callable, Callable | None]:
    """``(decode, collate, postprocess)`` of a stream, or of one built from settings."""
    engine = getattr(source, "engine", None)
    if engine is None:
        engine = _settings_stream(source, paths).engine
    decode = engine.decode
    if isinstance(decode, functools.partial) and decode.keywords.get("crop") == "random":
        decode = functools.partial(decode, crop="start")
    return decode, engine.collate, engine.postprocess


def _settings_stream(settings: Any, paths: list[Any]) -> Any:
    from .audio_batches import audio_batches
    from .image_batches import image_batches
    from .manifest import Manifest
    from .text_batches import text_batches

    if not isinstance(settings, Mapping) or "kind" not in settings:
        raise TypeError("expected a Stream or a settings dict with a 'kind' key")
    options = dict(settings)
    kind = options.pop("kind")
    fronts = {"image": image_batches, "audio": audio_batches, "text": text_batches}
    if kind not in fronts:
        raise ValueError(f"kind must be one of {sorted(fronts)}, not {kind!r}")
    if kind == "text" and options.get("tokenizer") is None:
        raise ValueError("text settings need the training stream's 'tokenizer'")
    unknown = sorted(set(options) - set(inspect.signature(fronts[kind]).parameters))
    if unknown:
        raise ValueError(f"unknown {kind} settings: {unknown}")
    if options.get("crop") == "random":
        options["crop"] = "start"
    return fronts[kind](Manifest(paths, kind=kind), shuffle=False, workers=1, **options)


def class_ids(outputs: Any) -> np.ndarray:
    """Predicted class ids ``int64 [N]`` from model outputs ``[N, C]`` (argmax) or ``[N, 1]``
    / ``[N]`` (one sigmoid unit: id 1 where the output is above 0.5)."""
    out = np.asarray(outputs)
    if out.ndim == 2 and out.shape[1] > 1:
        return out.argmax(axis=1).astype(np.int64)
    return (out.reshape(len(out), -1)[:, 0] > 0.5).astype(np.int64)


def predict_files(
    model: Any,
    stream_or_settings: Any,
    paths: str | os.PathLike | Sequence[Any],
    *,
    batch_size: int = 32,
    from_logits: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on single files decoded through the stream's own decoding path.

    See ``decode_files`` for ``stream_or_settings``. Returns ``(probs, ids)``: ``probs``
    ``float32 [N, C]`` (the model's outputs; softmax applied first with ``from_logits=True``)
    and ``ids`` ``int64 [N]`` (see ``class_ids``), in the order of ``paths``. A bad file
    raises ``BadFileError`` naming it.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    outputs = []
    for start in range(0, len(paths), max(1, int(batch_size))):
        x = decode_files(stream_or_settings, paths[start : start + batch_size])
        outputs.append(np.asarray(model.predict_on_batch(x), dtype=np.float32))
    if not outputs:
        raise ValueError("no paths to predict")
    probs = np.concatenate(outputs)
    if from_logits:
        probs = np.asarray(keras.ops.softmax(probs, axis=-1), dtype=np.float32)
    return probs, class_ids(probs)


def collect_predictions(
    model: Any, stream: Any, *, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Predict every batch of one pass over ``stream``: ``(y_true, y_pred, paths)``.

    ``y_true`` and ``y_pred`` are ``int64 [N]``, ``paths`` the N files in the same order;
    skipped files are left out (they are in ``stream.errors``). The pass is the rest of the
    stream's current epoch (a whole epoch unless a loop broke off mid-way), with augmentation
    switched off for it. Use a validation stream (``shuffle=False``): a training stream's
    random audio crops still apply.
    """
    old_paths, old_augment = stream.with_paths, stream.engine.augment_enabled
    stream.with_paths, stream.augment_enabled = True, False
    y_true, y_pred, paths = [], [], []
    try:
        bar = tqdm(stream, total=len(stream), desc="predict", delay=2, disable=not progress)
        for x, y, batch_paths in bar:
            y_true.append(np.asarray(y, dtype=np.int64))
            y_pred.append(class_ids(model.predict_on_batch(x)))
            paths.extend(str(p) for p in batch_paths)
    finally:
        stream.with_paths, stream.augment_enabled = old_paths, old_augment
    if not paths:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), []
    return np.concatenate(y_true), np.concatenate(y_pred), paths


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
