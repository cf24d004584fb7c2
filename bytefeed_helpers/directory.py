"""``from_directory``: the one call of Keras's ``*_dataset_from_directory``, as bytefeed streams.

``bf.from_directory(folder, kind="image", validation_split=0.2, subset="both", seed=1)``
lists ``folder`` as Keras's ``index_directory`` does (``build_manifest``: class folders,
Keras's file order, ``labels``, ``class_names``, ``follow_links``), splits it and returns
``(train, val)`` streams: the training one shuffled every epoch and augmentable, the
validation one in order, without augmentation or random crops. Every other option goes to
the stream (``image_batches``, ``audio_batches`` or ``text_batches``) with the stream's
defaults; Keras's names for options bytefeed names otherwise (``color_mode``,
``crop_to_aspect_ratio``, ``pad_to_aspect_ratio``, ``sampling_rate``,
``output_sequence_length``) are translated. The README's "Coming from Keras" table lists
every Keras argument and where bytefeed differs.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

from .audio import audio_batches
from .folders import build_manifest
from .images import image_batches
from .manifest import EXTENSIONS, Manifest
from .options import Kind, LabelMode, check_choice
from .stream import Stream
from .text import text_batches

Subset = Literal["training", "validation", "both"]
ColorMode = Literal["grayscale", "rgb", "rgba"]

_FRONTS: dict[str, Callable[..., Stream]] = {
    "image": image_batches,
    "audio": audio_batches,
    "text": text_batches,
}
_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
#: Keras's names that bytefeed spells otherwise, by the kind of stream that takes them.
_KERAS_NAMES = {
    "color_mode": "image",
    "crop_to_aspect_ratio": "image",
    "pad_to_aspect_ratio": "image",
    "sampling_rate": "audio",
    "output_sequence_length": "audio",
    "ragged": "audio",
}
#: What Keras's "No ... found" errors call each kind's files.
_NOUNS = {"image": "images", "audio": "audio files", "text": "text files"}


def from_directory(
    folder: str | os.PathLike,
    kind: Kind = "image",
    *,
    labels: str | Sequence[int] | None = "inferred",
    label_mode: LabelMode | None = "int",
    class_names: Sequence[str] | None = None,
    validation_split: float | None = None,
    subset: Subset | None = None,
    seed: int | None = None,
    follow_links: bool = False,
    verbose: bool = True,
    **stream_options: Any,
) -> Stream | tuple[Stream, Stream]:
    """Streams over a folder, called as Keras's ``image_dataset_from_directory``,
    ``audio_dataset_from_directory`` or ``text_dataset_from_directory`` is.

    Returns one ``Stream``, or ``(train, val)`` with ``subset="both"``. ``kind`` is
    "image", "audio" or "text" (which files are read and which stream is built).

    Args:
        folder: the data; with ``labels="inferred"``, one subfolder per class (files at any
            depth below it belong to it), the classes sorted by name.
        labels: "inferred" (from the class folders), None (every file at any depth, no
            labels: the stream yields ``x`` alone), or a list of class ids, one per file in
            Keras's file order (``os.walk``'s, sorted), ``0 .. C-1``; ``class_names`` are
            then their names as strings, as in Keras.
        label_mode: "int" (``int32 [B]``), "categorical" (one-hot ``float32 [B, C]``),
            "binary" (``float32 [B, 1]``, exactly two classes) or None (``x`` alone).
        class_names: with ``labels="inferred"``, the class folders to read, in this order
            (files in other folders are left out, with one warning).
        validation_split: a share of the files, in (0, 1), for validation: the manifest is
            split by ``Manifest.split``, stratified (each class split on its own, every class
            of two files or more in both parts; Keras cuts the last share of all the files
            after one shuffle, so its class shares vary), from ``seed``.
        subset: with ``validation_split``, "training", "validation" or "both" (a
            ``(train, val)`` pair). "training" and "validation" from two calls agree when
            both get the same ``seed``.
        seed: seeds the split, the training stream's shuffles and its random choices. Needed
            with ``validation_split`` and shuffling (Keras's rule: two calls must split
            alike); without shuffling the split is drawn from seed 0.
        follow_links: follow links to folders below ``folder`` (each real folder is listed
            once; see ``build_manifest``).
        verbose: print how many files and classes were found and used, as Keras does.
        **stream_options: the stream's own options (``batch_size``, ``image_size``,
            ``interpolation``, ``channels``, ``data_format``, ``sample_rate``, ``duration``,
            ``max_length``, ``output``, ``shuffle``, ``augment``, ``workers``, ...), with the
            stream's defaults, and Keras's names for some of them: ``color_mode``
            ("grayscale", "rgb", "rgba" for ``channels`` 1, 3, 4), ``crop_to_aspect_ratio`` /
            ``pad_to_aspect_ratio`` (``fit="crop"`` / ``"pad"``), ``data_format=None``
            (``keras.config.image_data_format()``), ``sampling_rate`` (``sample_rate``),
            ``output_sequence_length`` (samples: ``duration = n / sample_rate``; None:
            whole clips padded per batch) and ``ragged=False``.

    The validation stream (``subset="validation"`` or the second of "both") reads in order
    (``shuffle=False``), never augments and crops audio from the start; a text stream of
    tokens shares the training stream's tokenizer (fitted on the training files only), so
    ``subset="validation"`` alone needs ``tokenizer=`` (the training stream's).

    Raises:
        ValueError: an argument outside what Keras or the stream accepts (Keras's checks,
            in Keras's order, with Keras-style messages), no files of ``kind`` in
            ``folder``, or a split that leaves a part empty.
        FileNotFoundError: ``folder`` is not a folder.
    """
    check_choice("kind", kind, Kind)
    inferred = isinstance(labels, str) and labels == "inferred"
    explicit = _explicit_labels(labels)
    if class_names is not None and not inferred:
        raise ValueError(
            'You can only pass `class_names` if `labels="inferred"`. '
            f"Received: labels={labels!r}, and class_names={class_names!r}"
        )
    if label_mode is not None:
        check_choice("label_mode", label_mode, LabelMode)
    options = _translate(kind, stream_options)
    _check_split(validation_split, subset, options.get("shuffle", True), seed)
    if labels is None or label_mode is None:  # as Keras: no labels, any tree
        labels, label_mode, inferred, explicit = None, None, False, None
    manifest = build_manifest(
        folder,
        kind,
        labels="inferred" if inferred else None,
        class_names=class_names,
        follow_links=follow_links,
        progress=verbose,
    )
    if explicit is not None:
        manifest = _with_labels(manifest, explicit, folder)
    if label_mode == "binary" and len(manifest.class_names) != 2:
        raise ValueError(
            'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
            f"Received: class_names={manifest.class_names}"
        )
    noun = _NOUNS[kind]
    if len(manifest) == 0 or (inferred and not manifest.class_names):
        where = (
            "" if manifest.class_names or not inferred else " (no class folders: pass labels=None)"
        )
        raise ValueError(
            f"No {noun} found in directory {os.fspath(folder)}{where}. "
            f"Allowed formats: {EXTENSIONS[kind]}"
        )
    if verbose:
        classes = f" belonging to {len(manifest.class_names)} classes" if labels is not None else ""
        print(f"Found {len(manifest)} files{classes}.")
    options["label_mode"] = label_mode
    front = _FRONTS[kind]
    if not validation_split:
        return front(manifest, seed=seed, **options)
    train_files, val_files = manifest.split(
        val=float(validation_split), seed=0 if seed is None else seed
    )
    for part, files in (("training", train_files), ("validation", val_files)):
        if subset in (part, "both") and len(files) == 0:
            raise ValueError(
                f"No {part} {noun} found in directory {os.fspath(folder)}: "
                f"validation_split={validation_split} of {len(manifest)} files leaves none"
            )
    if verbose:
        if subset in ("training", "both"):
            print(f"Using {len(train_files)} files for training.")
        if subset in ("validation", "both"):
            print(f"Using {len(val_files)} files for validation.")
    if subset == "training":
        return front(train_files, seed=seed, **options)
    if subset == "validation":
        if kind == "text" and _needs_vocabulary(options):
            raise ValueError(
                "subset='validation' of a text stream of tokens needs the training stream's "
                "vocabulary: pass tokenizer=train.tokenizer, or subset='both' (which shares "
                "it), or output='text'"
            )
        return front(val_files, seed=seed, **_validation(options))
    train = front(train_files, seed=seed, **options)
    val_options = _validation(options)
    if kind == "text" and _needs_vocabulary(options):
        val_options["tokenizer"] = train.tokenizer  # fitted on the training files only
    return train, front(val_files, seed=seed, **val_options)


def _explicit_labels(labels: Any) -> list[int] | None:
    """A list of class ids, or None for "inferred" / None; ValueError for anything else."""
    if labels is None or (isinstance(labels, str) and labels == "inferred"):
        return None
    ok = isinstance(labels, list | tuple) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in labels
    )
    if not ok:
        raise ValueError(
            "`labels` argument should be a list/tuple of integer labels, of the same size as "
            'the number of files in the target directory, "inferred" (from the class '
            f"folders) or None (no labels). Received: labels={labels!r}"
        )
    return [int(v) for v in labels]


def _with_labels(manifest: Manifest, labels: list[int], folder: Any) -> Manifest:
    """``manifest`` (Keras's file order, unlabelled) with ``labels`` as its class ids."""
    if len(labels) != len(manifest):
        raise ValueError(
            "Expected the lengths of `labels` to match the number of files in the target "
            f"directory. len(labels) is {len(labels)} while we found {len(manifest)} files "
            f"in directory {os.fspath(folder)}."
        )
    present = sorted(set(labels))
    if present != list(range(len(present))):
        # Keras takes any ints and one-hots them by position: [1, 2] would give one-hot rows
        # of zeros for label 2. bytefeed wants ids into class_names.
        raise ValueError(
            "labels must be class ids 0, 1, ..., C-1, each used at least once (their names "
            f"are '0', '1', ...). Received: labels using {present}"
        )
    names = [str(v) for v in present]
    return Manifest(manifest.paths, labels, names, kind=manifest.kind)


def _translate(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with Keras's names turned into the stream's, checked as Keras does."""
    options = dict(options)
    if "format" in options:
        raise ValueError(
            "from_directory returns bytefeed streams (keras.utils.PyDataset, for every "
            "backend), not a tf.data or Grain dataset: leave format out, and call "
            f"stream.to_tf_dataset() for a tf.data.Dataset. Received: format={options['format']!r}"
        )
    for name, owner in _KERAS_NAMES.items():
        if name in options and owner != kind:
            raise ValueError(
                f"{name} is an option of {owner} streams (kind={owner!r}). "
                f"Received: {name}={options[name]!r} with kind={kind!r}"
            )
    if kind == "image":
        _translate_image(options)
    elif kind == "audio":
        _translate_audio(options)
    return options


def _translate_image(options: dict[str, Any]) -> None:
    if "color_mode" in options:
        mode = options.pop("color_mode")
        if mode not in _CHANNELS:
            raise ValueError(
                '`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
                f"Received: color_mode={mode!r}"
            )
        _once(options, "channels", _CHANNELS[mode], "color_mode")
    crop = bool(options.pop("crop_to_aspect_ratio", False))
    pad = bool(options.pop("pad_to_aspect_ratio", False))
    if crop and pad:
        raise ValueError(
            "Only one of `crop_to_aspect_ratio` or `pad_to_aspect_ratio` can be set to `True`."
        )
    if crop or pad:
        _once(options, "fit", "crop" if crop else "pad", "crop_to_aspect_ratio")
    if "data_format" in options and options["data_format"] is None:
        import keras

        options["data_format"] = keras.config.image_data_format()


def _translate_audio(options: dict[str, Any]) -> None:
    if "sampling_rate" in options:
        _once(options, "sample_rate", options.pop("sampling_rate"), "sampling_rate")
    if options.pop("ragged", False):
        raise ValueError(
            "ragged=True has no bytefeed equivalent: pass output_sequence_length=None (or "
            "duration=None) for whole clips padded per batch, and lengths=True for their "
            "true lengths"
        )
    if "output_sequence_length" in options:
        n = options.pop("output_sequence_length")
        rate = options.get("sample_rate", 16000)  # audio_batches's default
        if n is None:
            duration = None
        elif isinstance(n, int) and not isinstance(n, bool) and n > 0:
            if rate is None:
                raise ValueError(
                    "output_sequence_length counts samples at one rate: pass sampling_rate= "
                    "(or sample_rate=) with it. Received: sampling_rate=None"
                )
            duration = n / rate
        else:
            raise ValueError(
                "output_sequence_length must be an int > 0 (samples) or None. "
                f"Received: output_sequence_length={n!r}"
            )
        _once(options, "duration", duration, "output_sequence_length")


def _once(options: dict[str, Any], name: str, value: Any, keras_name: str) -> None:
    if name in options:
        raise ValueError(
            f"{keras_name} (Keras's name) and {name} set the same thing; pass one of them. "
            f"Received: {keras_name} and {name}={options[name]!r}"
        )
    options[name] = value


def _check_split(validation_split: Any, subset: Any, shuffle: Any, seed: Any) -> None:
    """Keras's ``check_validation_split_arg``, in its order, bytefeed's wording."""
    if validation_split is not None and (
        not isinstance(validation_split, numbers.Real) or isinstance(validation_split, bool)
    ):
        raise ValueError(
            "validation_split must be a number between 0 and 1. "
            f"Received: validation_split={validation_split!r}"
        )
    if validation_split and not 0 < float(validation_split) < 1:
        raise ValueError(
            "`validation_split` must be between 0 and 1. "
            f"Received: validation_split={validation_split!r}"
        )
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError(
            "If `subset` is set, `validation_split` must be set, and inversely. "
            f"Received: validation_split={validation_split!r}, subset={subset!r}"
        )
    if subset is not None:
        check_choice("subset", subset, Subset)
    if validation_split and shuffle and seed is None:
        raise ValueError(
            "If using `validation_split` and shuffling the data, you must provide a `seed` "
            "argument, to make sure that there is no overlap between the training and "
            "validation subset (two calls split alike only with the same seed)."
        )


def _validation(options: dict[str, Any]) -> dict[str, Any]:
    """A training stream's options made a validation stream's: in order, not augmented, no
    random crops, not resumed (a resume state belongs to the training stream)."""
    val = {k: v for k, v in options.items() if k not in ("augment", "training", "resume")}
    val["shuffle"] = False
    if val.get("crop") == "random":
        del val["crop"]  # an evaluation stream crops from the start
    return val


def _needs_vocabulary(options: dict[str, Any]) -> bool:
    return options.get("output", "tokens") == "tokens" and options.get("tokenizer") is None
