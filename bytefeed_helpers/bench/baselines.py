"""The pipelines bytefeed is measured against, all reading the same manifest's files.

``make_pipeline(name, manifest, kind, ...)`` builds one of them; ``pipeline.batches()``
yields one epoch of ``(x, y)`` batches. The names, per kind (``PIPELINES``):

- ``bytefeed``: the kit's stream (``image_batches`` / ``audio_batches`` / ``text_batches``).
- ``bytefeed+cache``: the same with ``cache=``; ``prepare()`` runs the first epoch (which
  fills the cache), so what is timed is a later epoch.
- ``article``: the article's generator (``article_generators``), one core, as written.
- ``preload``: every file decoded (by the kit's decoders, in parallel) into one NumPy array
  before the first batch, then shuffled batches sliced from memory. Timing includes loading.
- ``tf.data``: a hand-tuned ``tf.data`` pipeline: parallel map (read, decode, resize),
  batch, prefetch, non-deterministic order.
- ``keras``: ``keras.utils.image_dataset_from_directory`` / ``audio_dataset_from_directory``
  / ``text_dataset_from_directory`` on a folder of links to the manifest's files laid out
  by class (those functions take a directory, not a list).

Audio: TensorFlow cannot resample without ``tensorflow-io``, so ``tf.data`` and ``keras`` read
WAVs at their native rate (``@native``) and are compared with ``bytefeed@native``. Their
``decode_wav`` reads 16-bit PCM only: other files make those pipelines fail (``compare``
reports the error) and other formats are left out of Keras' folder. The other
audio pipelines resample to ``sample_rate``. All audio pipelines take the first ``duration``
seconds of each clip (the article's ``librosa.load(duration=...)``), so bytefeed streams use
``crop="start"``. Text: ``--size`` is ``max_length``; Keras' pipelines tokenise with a
``TextVectorization`` holding bytefeed's vocabulary.

Building a pipeline (scanning folders, importing TensorFlow, tracing maps) is not timed;
iterating ``batches()`` is.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..manifest import Manifest

PIPELINES: dict[str, tuple[str, ...]] = {
    "image": ("bytefeed", "bytefeed+cache", "tf.data", "keras", "preload", "article"),
    "audio": (
        "bytefeed",
        "bytefeed+cache",
        "preload",
        "article",
        "bytefeed@native",
        "tf.data@native",
        "keras@native",
    ),
    "text": ("bytefeed", "bytefeed+cache", "tf.data", "keras", "preload", "article"),
}


@dataclass
class Pipeline:
    """One way of feeding the manifest's files as batches.

    ``batches()`` yields one epoch of ``(x, y)`` (``x`` a NumPy array or a tf.Tensor);
    ``prepare()`` runs untimed work that belongs before the timed epoch (warming a cache);
    ``close()`` frees what the pipeline holds. ``group`` names the bytefeed pipeline this one
    is compared with (the same work: ``bytefeed`` or ``bytefeed@native``).
    """

    name: str
    batches: Callable[[], Iterator[tuple[Any, Any]]]
    note: str = ""
    group: str = "bytefeed"
    prepare: Callable[[], None] = field(default=lambda: None)
    close: Callable[[], None] = field(default=lambda: None)


@dataclass
class Settings:
    """What every pipeline of one comparison shares."""

    kind: str
    size: int = 224
    batch_size: int = 32
    sample_rate: int = 16000
    duration: float = 1.0
    seed: int = 0
    workers: int | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.size, self.size)


def pipeline_names(kind: str) -> tuple[str, ...]:
    """The pipelines ``make_pipeline`` builds for ``kind``."""
    if kind not in PIPELINES:
        raise ValueError(f"kind must be one of {tuple(PIPELINES)}, not {kind!r}")
    return PIPELINES[kind]


def make_pipeline(
    name: str, manifest: Manifest, settings: Settings, workdir: str | os.PathLike
) -> Pipeline:
    """Build pipeline ``name`` over ``manifest``; scratch files go to ``workdir``.

    Raises ValueError for a name not in ``PIPELINES[settings.kind]``.
    """
    names = pipeline_names(settings.kind)
    if name not in names:
        raise ValueError(f"unknown {settings.kind} pipeline {name!r}; choose from {names}")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    builder = _BUILDERS[(settings.kind, name.split("@")[0])]
    return builder(name, manifest, settings, work)


# --- helpers -------------------------------------------------------------------------------------
def epoch_of(stream: Any) -> Callable[[], Iterator]:
    """``batches()`` for a bytefeed stream: the rest of its current epoch."""
    return lambda: iter(stream)


def manifest_csv(manifest: Manifest, work: Path) -> Path:
    """The manifest as a ``path,label`` CSV in ``work`` (what the article's generators read)."""
    path = work / "manifest.csv"
    if not path.exists():
        manifest.write(path)
    return path


def class_folders(manifest: Manifest, work: Path, extensions: tuple[str, ...] = ()) -> Path:
    """A folder of links to the manifest's files, one sub-folder per class.

    Keras' ``*_dataset_from_directory`` take a directory; this lays the manifest out as
    one, so they read exactly these files. Links are symbolic, else hard, else copies.
    ``extensions`` keeps only files with these suffixes (Keras' audio loader reads WAV only).
    Unlabelled manifests go into one folder, ``all``.
    """
    root = work / ("classes" + "".join(extensions).replace(".", "_"))
    if root.exists():
        return root
    names = manifest.label_names() if manifest.labelled else ["all"] * len(manifest)
    for name in set(names):
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (path, name) in enumerate(zip(manifest.paths, names, strict=True)):
        if extensions and not path.lower().endswith(extensions):
            continue
        _link(Path(path).resolve(), root / name / f"{i:07d}_{Path(path).name}")
    return root


def _link(src: Path, dst: Path) -> None:
    for make in (os.symlink, os.link, shutil.copyfile):
        with contextlib.suppress(OSError):
            make(src, dst)
            return


def _native_rate(manifest: Manifest) -> int:
    """The sample rate of the manifest's first readable audio file."""
    import soundfile as sf

    for path in manifest.paths:
        with contextlib.suppress(Exception):
            return int(sf.info(path).samplerate)
    raise ValueError("no readable audio file in the manifest")


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _tf_batches(ds: Any) -> Callable[[], Iterator]:
    return lambda: iter(ds)


# --- bytefeed -------------------------------------------------------------------------------------
def _stream(manifest: Manifest, s: Settings, *, cache: Path | None = None, rate: int | None = None):
    from ..audio import audio_batches
    from ..images import image_batches
    from ..text import text_batches

    common = {"shuffle": True, "seed": s.seed, "workers": s.workers, "cache": cache}
    if s.kind == "image":
        return image_batches(manifest, s.batch_size, s.image_size, **common)
    if s.kind == "audio":
        rate = rate or s.sample_rate
        return audio_batches(manifest, s.batch_size, rate, s.duration, crop="start", **common)
    return text_batches(manifest, s.batch_size, max_length=s.size, **common)


def _bytefeed(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    native = name.endswith("@native")
    rate = _native_rate(manifest) if native else None
    if name.startswith("bytefeed+cache"):
        stream = _stream(manifest, s, cache=work / "cache")

        def prepare() -> None:
            if stream.engine.position == 0 and not getattr(stream.cache, "complete", False):
                for _ in stream:  # the first epoch fills the cache
                    pass

        note = "epochs after the first (read from the cache)"
        return Pipeline(name, epoch_of(stream), note, prepare=prepare, close=stream.close)
    stream = _stream(manifest, s, rate=rate)
    note = f"at the files' rate ({rate} Hz)" if native else ""
    group = "bytefeed@native" if native else "bytefeed"
    return Pipeline(name, epoch_of(stream), note, group=group, close=stream.close)


# --- the article's generators -------------------------------------------------------------------
def _article(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    from . import article as ag

    csv = manifest_csv(manifest, work)
    steps = -(-len(manifest) // s.batch_size)
    if s.kind == "image":
        gen = ag.article_image_generator(csv, s.batch_size, s.image_size)
    elif s.kind == "audio":
        gen = ag.article_audio_generator(csv, s.batch_size, s.sample_rate, s.duration)
    else:
        gen = ag.article_text_generator(csv, _tokenizer(manifest, work), s.batch_size)

    def batches() -> Iterator:
        for _ in range(steps):
            yield next(gen)

    return Pipeline(name, batches, "one core; re-reads the CSV each epoch", close=gen.close)


def _tokenizer(manifest: Manifest, work: Path) -> Any:
    """One ``WordTokenizer`` per comparison, fitted on the manifest (untimed)."""
    from ..decoders.text import WordTokenizer, decode_text

    cached = _TOKENIZERS.get(str(work))
    if cached is None:
        docs = []
        for p in manifest.paths:
            with contextlib.suppress(Exception):
                docs.append(decode_text(p))
        cached = _TOKENIZERS[str(work)] = WordTokenizer().fit(docs)
    return cached


_TOKENIZERS: dict[str, Any] = {}


# --- preloading ---------------------------------------------------------------------------------
def _preload(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    decode = _sample_decoder(manifest, s, work)

    def batches() -> Iterator:
        def load(path: str) -> np.ndarray | None:
            try:
                return decode(path)
            except Exception:  # a preloading loop would crash here; skip to keep comparing
                return None

        with ThreadPoolExecutor(s.workers or os.cpu_count() or 1) as pool:
            loaded = list(pool.map(load, manifest.paths))
        keep = [i for i, a in enumerate(loaded) if a is not None]
        x = np.stack([loaded[i] for i in keep])  # the whole dataset in memory: the point
        del loaded
        y = manifest.labels[keep]
        order = np.random.default_rng(s.seed).permutation(len(x))
        for i in range(0, len(x), s.batch_size):
            idx = order[i : i + s.batch_size]
            yield x[idx], y[idx]

    return Pipeline(name, batches, "decodes every file into one array first (timed)")


def _sample_decoder(manifest: Manifest, s: Settings, work: Path) -> Callable[[str], np.ndarray]:
    if s.kind == "image":
        from ..decoders.image import decode_image

        return lambda p: decode_image(p, s.image_size)
    if s.kind == "audio":
        from ..decoders.audio import decode_audio

        return lambda p: decode_audio(p, s.sample_rate, s.duration)
    from ..decoders.text import decode_text, pad_sequences

    tokenizer = _tokenizer(manifest, work)
    return lambda p: pad_sequences([tokenizer(decode_text(p))], s.size)[0]


# --- tf.data, hand-tuned -----------------------------------------------------------------------
def _tfdata(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    tf = _tf()
    auto = tf.data.AUTOTUNE
    paths, labels = manifest.paths, manifest.labels
    note = "parallel map + prefetch"
    if s.kind == "audio":
        rate = _native_rate(manifest)
        keep = [i for i, p in enumerate(paths) if p.lower().endswith(".wav")]
        paths, labels = [paths[i] for i in keep], labels[keep]
        length = round(rate * s.duration)

        def load(path: Any, label: Any) -> tuple[Any, Any]:
            audio, _ = tf.audio.decode_wav(tf.io.read_file(path), desired_samples=length)
            return tf.reduce_mean(audio, axis=-1), label

        note = f"WAV at the files' rate ({rate} Hz); {note}"
    elif s.kind == "image":

        def load(path: Any, label: Any) -> tuple[Any, Any]:
            data = tf.io.read_file(path)
            img = tf.io.decode_image(data, channels=3, expand_animations=False)
            return tf.image.resize(img, s.image_size), label
    else:
        return _tf_text(name, manifest, s, work)
    ds = (
        tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels)))
        .shuffle(len(paths), seed=s.seed, reshuffle_each_iteration=True)
        .map(load, num_parallel_calls=auto, deterministic=False)
        .batch(s.batch_size)
        .prefetch(auto)
    )
    group = "bytefeed@native" if s.kind == "audio" else "bytefeed"
    return Pipeline(name, _tf_batches(ds), note, group=group)


def _vectorizer(manifest: Manifest, s: Settings, work: Path) -> Any:
    import keras

    vocab = _tokenizer(manifest, work).vocabulary[2:]
    return keras.layers.TextVectorization(vocabulary=vocab, output_sequence_length=s.size)


def _tf_text(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    tf = _tf()
    auto = tf.data.AUTOTUNE
    vectorize = _vectorizer(manifest, s, work)
    ds = (
        tf.data.Dataset.from_tensor_slices((list(manifest.paths), manifest.labels))
        .shuffle(len(manifest), seed=s.seed)
        .map(lambda p, y: (tf.io.read_file(p), y), num_parallel_calls=auto, deterministic=False)
        .batch(s.batch_size)
        .map(lambda t, y: (vectorize(t), y), num_parallel_calls=auto)
        .prefetch(auto)
    )
    return Pipeline(name, _tf_batches(ds), "TextVectorization, parallel map + prefetch")


# --- keras.utils.*_dataset_from_directory ------------------------------------------------------
def _keras(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    import keras

    labels = "inferred" if manifest.labelled else None
    common = {"labels": labels, "batch_size": s.batch_size, "shuffle": True, "seed": s.seed}
    if s.kind == "image":
        ds = keras.utils.image_dataset_from_directory(
            class_folders(manifest, work), image_size=s.image_size, verbose=False, **common
        )
        return Pipeline(name, _tf_batches(ds), "float32 batches, TensorFlow decoders")
    if s.kind == "audio":
        rate = _native_rate(manifest)
        ds = keras.utils.audio_dataset_from_directory(
            class_folders(manifest, work, (".wav",)),
            output_sequence_length=round(rate * s.duration),
            verbose=False,
            **common,
        )
        note = f"WAV only, at the files' rate ({rate} Hz)"
        return Pipeline(name, _tf_batches(ds), note, group="bytefeed@native")
    ds = keras.utils.text_dataset_from_directory(
        class_folders(manifest, work), verbose=False, **common
    )
    vectorize = _vectorizer(manifest, s, work)
    tf = _tf()
    if labels is None:  # strings only: give every row the label -1, as bytefeed does
        ds = ds.map(lambda t: (t, tf.fill(tf.shape(t)[:1], -1)))
    ds = ds.map(lambda t, y: (vectorize(t), y), num_parallel_calls=tf.data.AUTOTUNE)
    return Pipeline(name, _tf_batches(ds), "strings, then TextVectorization")


_BUILDERS: dict[tuple[str, str], Callable[[str, Manifest, Settings, Path], Pipeline]] = {
    (kind, base): builder
    for kind in PIPELINES
    for base, builder in (
        ("bytefeed", _bytefeed),
        ("bytefeed+cache", _bytefeed),
        ("article", _article),
        ("preload", _preload),
        ("tf.data", _tfdata),
        ("keras", _keras),
    )
}
