"""Training on streams: a Keras callback that logs the stream, and predictions on single files.

``StreamMonitor`` logs each epoch's skipped files and throughput into Keras' history;
``predict_files`` runs a trained (or reloaded) model on single files decoded exactly as the
stream decodes them. Learning curves and confusion matrices are in ``bytefeed_helpers.notebook``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from .audio import audio_batches
from .engine import Collate, Decoder
from .errors import BadFileError, reason_of
from .images import image_batches
from .manifest import Manifest
from .stream import Stream
from .text import text_batches


class StreamMonitor(keras.callbacks.Callback):
    """Adds the training stream's skipped files and throughput to each epoch's logs.

    Per epoch it writes into ``logs`` (so into ``History.history`` and the progress bar):

    - ``stream_errors``: files of the training stream skipped during this epoch (an int);
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
            "stream_errors": int(errors),
            "samples_per_s": (_epoch_rows(self.stream, self._epoch, self._steps) - errors)
            / seconds,
        }
        if self.validation is not None:
            numbers["val_stream_errors"] = int(
                sum(1 for e in self.validation.errors if e.epoch >= self._val_epoch)
            )
        for key, value in numbers.items():
            self.history.setdefault(key, []).append(value)
        if logs is not None:
            logs.update(numbers)
        skipped = numbers["stream_errors"] + numbers.get("val_stream_errors", 0)
        if self.verbose and skipped:
            print(f"epoch {epoch + 1}: skipped {skipped} file(s); see stream.errors")


class EpochLog(keras.callbacks.Callback):
    """One line per epoch, in place of ``model.fit``'s own (pass ``verbose=0`` to ``fit``):
    counters as integers (``stream_errors: 0``, where Keras prints ``0.0000e+00``), other
    numbers to four significant digits, and the epoch's seconds.

    Within an epoch of more than ``bar_after`` steps a progress bar (``tqdm.auto``: a widget
    in a notebook, one rewritten line in a terminal) moves at most every ``mininterval``
    seconds and is removed when the epoch ends, so a saved notebook keeps only the epoch
    lines.
    """

    def __init__(self, *, bar_after: int = 50, mininterval: float = 2.0):
        super().__init__()
        self.bar_after = int(bar_after)
        self.mininterval = float(mininterval)
        self._bar: Any = None
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()
        steps = (self.params or {}).get("steps")
        if steps and steps > self.bar_after:
            import sys

            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=steps,
                desc=f"epoch {epoch + 1}",
                unit="step",
                leave=False,
                mininterval=self.mininterval,
                file=sys.stdout,  # not stderr: progress is not a warning
            )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        epochs = (self.params or {}).get("epochs", "?")
        parts = [f"epoch {epoch + 1}/{epochs}", f"{time.perf_counter() - self._start:.0f} s"]
        parts += [f"{key}: {_number(value)}" for key, value in (logs or {}).items()]
        print(" - ".join(parts))


def _number(value: Any) -> str:
    """An integer as an integer, any other number to four significant digits."""
    if isinstance(value, int | np.integer):
        return str(int(value))
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def _epoch_rows(stream: Any, epoch: int, steps: int) -> int:
    """Rows in the first ``steps`` batch slots of ``epoch`` (good and skipped files)."""
    engine = stream.engine
    order = engine.epoch_order(epoch)
    slots = min(steps, len(engine))
    return sum(len(engine.slot_rows(epoch, s, order)) for s in range(slots))


# --- predicting files --------------------------------------------------------------------------
def decode_files(stream_or_settings: Any, paths: str | os.PathLike | Sequence[Any]) -> Any:
    """Decode ``paths`` into one batch exactly as a stream decodes them, without augmentation.

    ``stream_or_settings`` is a ``Stream`` (its ``engine.decode``, ``engine.collate`` and
    ``engine.postprocess`` are used) or a settings dict ``{"kind": "image", **stream.options}``
    (``"audio"``, ``"text"`` with the training stream's ``"tokenizer"``). Random audio crops
    are augmentation: they become ``crop="start"``, as on a validation stream. Returns what the
    stream's ``x`` would be for these files (e.g. ``uint8 [N, H, W, C]``; the stream's
    ``inputs`` step applied last, as to its batches). A file that cannot
    be decoded raises ``BadFileError`` naming it.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("no paths to decode")
    decode, collate, postprocess, inputs = _decode_path(stream_or_settings, paths)
    samples = []
    for path in paths:
        try:
            sample = decode(path)
        except Exception as exc:
            raise BadFileError(reason_of(exc), path) from exc
        samples.append(sample)
    x = collate(samples)
    x = x if postprocess is None else postprocess(x)
    return x if inputs is None else inputs(x, collate.lengths(samples))


def _decode_path(
    source: Any, paths: list[Any]
) -> tuple[Decoder, Collate, Callable | None, Callable | None]:
    """``(decode, collate, postprocess, inputs)`` of a stream, or of one built from settings;
    the decoder without random choices (a random crop becomes a crop from the start)."""
    stream = source if isinstance(source, Stream) else _settings_stream(source, paths)
    engine = stream.engine
    return engine.decoder.evaluation(), engine.collate, engine.postprocess, stream.inputs


#: The decoding settings of each kind (``stream.options``) that settings dicts may hold.
SETTINGS = {
    "image": ("image_size", "channels", "fit", "dtype", "interpolation", "data_format"),
    "audio": (
        *("sample_rate", "duration", "crop", "features", "n_mels", "n_fft", "hop_length"),
        *("max_duration", "channel_axis", "lengths", "resample_quality"),
    ),
    "text": ("max_length", "tokenizer", "max_tokens", "output"),
}


def _settings_stream(settings: Any, paths: list[Any]) -> Any:
    if not isinstance(settings, Mapping) or "kind" not in settings:
        raise TypeError("expected a Stream or a settings dict with a 'kind' key")
    options = dict(settings)
    kind = options.pop("kind")
    # the three front-ends differ in their keyword arguments; SETTINGS checked them above
    fronts: dict[str, Callable[..., Stream]] = {
        "image": image_batches,
        "audio": audio_batches,
        "text": text_batches,
    }
    if kind not in fronts:
        raise ValueError(f"kind must be one of {sorted(fronts)}, not {kind!r}")
    if (
        kind == "text"
        and options.get("output", "tokens") == "tokens"
        and options.get("tokenizer") is None
    ):
        raise ValueError("text settings need the training stream's 'tokenizer'")
    unknown = sorted(set(options) - set(SETTINGS[kind]))
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
