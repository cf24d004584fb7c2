"""The choices every stream and decoder accepts, defined once, and checked where they enter.

Enumerated arguments are ``Literal`` types; ``check_choice`` turns a wrong one into a
Keras-style ``ValueError`` naming the argument, what it accepts and what it received.
``StreamOptions`` holds what every front-end hands to the engine, validated when it is made.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, get_args

Kind = Literal["image", "audio", "text"]
OnError = Literal["skip", "raise"]
Fit = Literal["stretch", "crop", "pad"]
ImageDtype = Literal["uint8", "float32"]
#: Keras's names (``tf.image.resize``'s methods) first, then Pillow's older ones kept working;
#: ``decoders.image`` maps each to the nearest OpenCV or Pillow filter.
Interpolation = Literal[
    "bilinear",
    "nearest",
    "bicubic",
    "area",
    "lanczos3",
    "lanczos5",
    "gaussian",
    "mitchellcubic",
    "lanczos",
    "box",
    "hamming",
]
DataFormat = Literal["channels_last", "channels_first"]
TextOutput = Literal["tokens", "text"]
Crop = Literal["start", "center", "random"]
AudioFeatures = Literal["waveform", "logmel"]
BatchPolicy = Literal["short", "pad"]
LabelMode = Literal["int", "categorical", "binary"]
Parallelism = Literal["threads", "processes"]


# Keyed by the Literal object's id, not the object: hashing a Literal hashes its values (about
# 2 us for the 11 interpolations), more than the check itself. The Literal is kept in the value,
# so its id is never reused.
_CHOICES: dict[int, tuple[Any, tuple[Any, ...]]] = {}


def choices(literal: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` type, in order."""
    held = _CHOICES.get(id(literal))
    if held is None:
        held = _CHOICES[id(literal)] = (literal, get_args(literal))
    return held[1]


def check_choice(name: str, value: Any, literal: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is one of the ``literal`` type's values."""
    allowed = choices(literal)
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {listed}. Received: {name}={value!r}")


def check_int(name: str, value: Any, *, minimum: int = 1, optional: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not a bool) of at least ``minimum``."""
    if optional and value is None:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if not ok:
        raise ValueError(
            f"{name} must be an integer >= {minimum}{' or None' if optional else ''}. "
            f"Received: {name}={value!r}"
        )


def check_shard(shard: Any) -> tuple[int, int]:
    """``shard`` as ``(index, count)`` with ``0 <= index < count``; ValueError otherwise."""
    try:
        index, count = (int(v) for v in shard)
    except (TypeError, ValueError):
        index, count = -1, 0
    if count < 1 or not 0 <= index < count:
        raise ValueError(
            f"shard must be (index, count) with 0 <= index < count. Received: shard={shard!r}"
        )
    return index, count


@dataclass(frozen=True)
class StreamOptions:
    """What every front-end passes to the engine and the stream (see ``BatchEngine``).

    Validated once, when made: a wrong value raises ``ValueError`` before any file is read.
    """

    batch_size: int = 32
    shuffle: bool = True
    seed: int | None = None
    on_error: OnError = "skip"
    drop_remainder: bool = False
    with_paths: bool = False
    augment: Any = None
    training: bool | None = None
    workers: int | None = None
    prefetch: int | None = None
    shard: tuple[int, int] = (0, 1)
    resume: dict | None = None
    cache: str | os.PathLike | None = None
    max_error_rate: float | None = 0.5
    batch_policy: BatchPolicy = "short"
    label_mode: LabelMode | None = "int"
    parallelism: Parallelism = "threads"

    def __post_init__(self) -> None:
        check_int("batch_size", self.batch_size)
        check_choice("on_error", self.on_error, OnError)
        check_choice("batch_policy", self.batch_policy, BatchPolicy)
        if self.label_mode is not None:
            check_choice("label_mode", self.label_mode, LabelMode)
        check_choice("parallelism", self.parallelism, Parallelism)
        if self.parallelism == "processes" and self.cache is not None:
            raise ValueError(
                "cache= is filled by the stream's own process, and parallelism='processes' "
                "decodes in others; fill the cache with parallelism='threads' (a complete "
                "cache is read without decoding, so processes would not help it). "
                "Received: parallelism='processes' with cache="
                f"{os.fspath(self.cache)!r}"
            )
        check_int("workers", self.workers, optional=True)
        check_int("prefetch", self.prefetch, optional=True)
        if self.seed is not None and not isinstance(self.seed, int | bool):
            raise ValueError(f"seed must be an integer or None. Received: seed={self.seed!r}")
        object.__setattr__(self, "shard", check_shard(self.shard))
        rate = self.max_error_rate
        if rate is not None and not (
            isinstance(rate, int | float) and not isinstance(rate, bool) and 0 <= rate < 1
        ):
            raise ValueError(
                "max_error_rate must be a share of an epoch's files in [0, 1), or None for no "
                f"limit. Received: max_error_rate={rate!r}"
            )
        if self.shard[1] > 1 and self.shuffle and self.seed is None and self.resume is None:
            raise ValueError("sharded shuffled streams need a seed shared by every shard")

    @property
    def is_training(self) -> bool:
        """Whether augmentation (and random crops) run: ``training``, else ``shuffle``."""
        return self.shuffle if self.training is None else bool(self.training)
