"""Save a stream's position with the model, so an interrupted training run resumes exactly.

``StreamCheckpoint(stream, "ckpt/stream.json")`` next to ``keras.callbacks.ModelCheckpoint``
writes ``stream.state()`` (seed, epoch, position, ...) as JSON whenever the model is saved;
after a crash, ``load_state`` reads it back and ``image_batches(..., resume=state)`` (or any
stream) continues with the first batch the model did not train on.
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras

_REQUIRED = ("seed", "epoch", "position")


def _is_remote(path: str) -> bool:
    return "://" in path


def save_state(state: dict, path: str | os.PathLike) -> str:
    """Write ``state`` as JSON to ``path`` (local or a ``tf.io.gfile`` URL), atomically.

    The file is written beside ``path`` and renamed over it, so a crash mid-write leaves the
    previous state intact. Returns the path written.
    """
    path = os.fspath(path)
    data = json.dumps(state, indent=1, sort_keys=True)
    tmp = f"{path}.tmp"
    if _is_remote(path):
        import tensorflow as tf

        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(tmp, "w") as fh:
            fh.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return path


def load_state(path: str | os.PathLike) -> dict:
    """Read a state saved by ``StreamCheckpoint`` or ``save_state``; pass it as ``resume=``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not JSON, or not a stream state (no seed, epoch, position).
    """
    path = os.fspath(path)
    if _is_remote(path):
        import tensorflow as tf

        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"no stream state at {path}")
        with tf.io.gfile.GFile(path, "r") as fh:
            text = fh.read()
    else:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not a stream state (not JSON: {exc.msg})") from exc
    missing = [k for k in _REQUIRED if not isinstance(state, dict) or k not in state]
    if missing:
        raise ValueError(f"{path}: not a stream state (missing {', '.join(missing)})")
    return state


class StreamCheckpoint(keras.callbacks.Callback):
    """Keras callback: save ``stream.state()`` as JSON with each checkpoint.

    Args:
        stream: the training stream passed to ``model.fit``.
        path: where to write; may hold ``{epoch}`` (formatted as ``ModelCheckpoint`` does,
            e.g. ``"ckpt/stream-{epoch:02d}.json"``) to keep one file per checkpoint;
            without it the file holds the latest state. Local or a ``tf.io.gfile`` URL.
        save_freq: ``"epoch"`` (after each epoch) or an int: also every that many batches,
            as ``ModelCheckpoint(save_freq=...)`` does; use the same value for both.

    The state saved is what the model has trained on, not how far the stream has read:
    Keras reads a few batches ahead, so the stream tracks where the trained batches end
    (``Stream.keras_state``). Inside ``fit`` the stream serves its own order whatever
    ``shuffle`` says, so a state saved mid-epoch is exact too.

    Resume with ``stream = image_batches(..., resume=load_state(path))`` and
    ``model.fit(stream, initial_epoch=state["epoch"])`` after loading the model.
    """

    def __init__(self, stream: Any, path: str | os.PathLike, save_freq: str | int = "epoch"):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive int, not {save_freq!r}")
        self.stream = stream
        self.path = os.fspath(path)
        self.save_freq = save_freq
        self.saved: list[str] = []  # every file written, in order
        self._keras_epoch = 0
        self._trained = 0  # batches trained in this epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._keras_epoch, self._trained = epoch, 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._trained = batch + 1
        # __init__ allowed only "epoch" or a positive int: an int means "every N batches"
        if isinstance(self.save_freq, int) and self._trained % self.save_freq == 0:
            # Keras reads ahead of training: ask the stream where the trained batches end
            self._save(self.stream.keras_state(self._trained))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._save(self.stream.state())  # Keras has closed the epoch: the cursor is exact

    def _save(self, state: dict) -> None:
        path = self.path.format(epoch=self._keras_epoch + 1, batch=self._trained)
        self.saved.append(save_state(state, path))
