"""Learning curves, confusion matrices and a stream's predictions, for the training notebooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..training import class_ids


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
    y_true: list[np.ndarray] = []
    y_pred: list[np.ndarray] = []
    paths: list[str] = []
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
