"""The pipelines bytefeed is measured against, all reading the same manifest's files.

``make_pipeline(name, manifest, kind, ...)`` builds one of them; ``pipeline.batches()``
yields one epoch of ``(x, y)`` batches. The names, per kind (``PIPELINES``):

- ``bytefeed``: the kit's stream (``image_batches`` / ``audio_batches`` / ``text_batches``).
- ``bytefeed+processes``: the same with ``parallelism="processes"`` (worker processes write
  batches into shared memory; started in ``prepare()``, untimed, as Grain's and PyTorch's).
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
- ``keras-grain``: the same Keras function with ``format="grain"`` (images and text; Keras'
  audio loader has no such format), iterated as it returns it (one process, Pillow decoding,
  ``keras.ops`` resizing).
- ``grain``: Grain's ``MapDataset`` (shuffle, map, batch, repeat) through
  ``mp_prefetch(MultiprocessingOptions(num_workers=workers))``, decoding as its users do:
  Pillow with ``draft`` then OpenCV ``INTER_AREA`` for images, soundfile + soxr HQ for audio,
  the kit's tokenizer for text. Worker processes start in ``prepare()``, untimed, which also
  takes the first wave of batches Grain's threads build together (17 per worker); the timed
  window is at least two such waves (over more than one epoch on small sets).
- ``torch``: PyTorch's ``DataLoader`` over a map-style ``Dataset`` with the same decoding,
  ``num_workers=workers``, ``persistent_workers=True``; when torch is not installed the
  pipeline is skipped with a message (``SkippedPipeline``), never installed for you.

Peak memory is the calling process's: the worker processes of ``grain`` and ``torch`` are
not counted. Grain and PyTorch come with ``pip install 'bytefeed-helpers[peers]'``.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from ..manifest import Manifest
from ..options import Parallelism

if TYPE_CHECKING:  # stream imports Keras; a pipeline imports it only once it is built
    from ..stream import Stream

PIPELINES: dict[str, tuple[str, ...]] = {
    "image": (
        "bytefeed",
        "bytefeed+processes",
        "bytefeed+cache",
        "tf.data",
        "keras",
        "keras-grain",
        "grain",
        "torch",
        "preload",
        "article",
    ),
    "audio": (
        "bytefeed",
        "bytefeed+processes",
        "bytefeed+cache",
        "grain",
        "torch",
        "preload",
        "article",
        "bytefeed@native",
        "bytefeed+processes@native",
        "tf.data@native",
        "keras@native",
        "grain@native",
        "torch@native",
    ),
    "text": (
        "bytefeed",
        "bytefeed+processes",
        "bytefeed+cache",
        "tf.data",
        "keras",
        "keras-grain",
        "grain",
        "torch",
        "preload",
        "article",
    ),
}


class SkippedPipeline(Exception):
    """A pipeline that cannot run here (its package is not installed): reported, not failed."""


def optional_module(module: str, package: str) -> Any:
    """Import ``module``, or raise ``SkippedPipeline`` naming the package that provides it.

    The peers are optional (the ``peers`` extra): a comparison runs the rows it can."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise SkippedPipeline(
            f"{package} is not installed (pip install 'bytefeed-helpers[peers]' or "
            f"pip install {package})"
        ) from exc


@dataclass
class Pipeline:
    """One way of feeding the manifest's files as batches.

    ``batches()`` yields one epoch of ``(x, y)`` (``x`` a NumPy array or a tf.Tensor);
    ``prepare()`` runs untimed work that belongs before the timed epoch (warming a cache);
    ``close()`` frees what the pipeline holds; ``epochs`` is how many epochs in a row one
    round times (more than one where a pipeline's read-ahead spans a short epoch). ``group``
    names the bytefeed pipeline this one is compared with (the same work: ``bytefeed`` or
    ``bytefeed@native``).
    """

    name: str
    batches: Callable[[], Iterator[tuple[Any, Any]]]
    note: str = ""
    group: str = "bytefeed"
    prepare: Callable[[], None] = field(default=lambda: None)
    close: Callable[[], None] = field(default=lambda: None)
    epochs: int = 1  # epochs timed in a row per round (``timed``)

    def timed(self) -> Iterator[tuple[Any, Any]]:
        """The batches one round times: ``epochs`` epochs of ``batches()`` in a row."""
        for _ in range(self.epochs):
            yield from self.batches()


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
    parallelism: Parallelism = "threads"  # bytefeed's streams

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
def _stream(
    manifest: Manifest,
    s: Settings,
    *,
    cache: Path | None = None,
    rate: int | None = None,
    parallelism: Parallelism | None = None,
) -> Stream:
    from ..audio import audio_batches
    from ..images import image_batches
    from ..text import text_batches

    if s.kind == "image":
        return image_batches(
            manifest,
            s.batch_size,
            s.image_size,
            shuffle=True,
            seed=s.seed,
            workers=s.workers,
            cache=cache,
            parallelism=parallelism or s.parallelism,
        )
    if s.kind == "audio":
        return audio_batches(
            manifest,
            s.batch_size,
            rate or s.sample_rate,
            s.duration,
            crop="start",
            shuffle=True,
            seed=s.seed,
            workers=s.workers,
            cache=cache,
            parallelism=parallelism or s.parallelism,
        )
    return text_batches(
        manifest,
        s.batch_size,
        max_length=s.size,
        shuffle=True,
        seed=s.seed,
        workers=s.workers,
        cache=cache,
    )


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
    processes = name.startswith("bytefeed+processes")
    stream = _stream(manifest, s, rate=rate, parallelism="processes" if processes else None)
    note = f"at the files' rate ({rate} Hz)" if native else ""
    group = "bytefeed@native" if native else "bytefeed"
    if processes:

        def start() -> None:
            if stream.engine._processes is None:  # an untimed epoch starts the workers
                for _ in stream:
                    pass

        note = ", ".join(filter(None, [note, "worker processes started untimed"]))
        return Pipeline(name, epoch_of(stream), note, group, prepare=start, close=stream.close)
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
        x = np.stack([a for a in loaded if a is not None])  # the whole dataset in memory: the point
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
    paths, labels = list(manifest.paths), manifest.labels
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


# --- the peers: Grain, Keras format="grain", PyTorch ---------------------------------------------
# Module-level functions, so that worker processes can unpickle them.
def peer_image(path: str, size: tuple[int, int]) -> np.ndarray:
    """``uint8 [H, W, 3]``: Pillow with ``draft`` (libjpeg's DCT scaling) then OpenCV
    ``INTER_AREA``, as Grain and PyTorch users decode images."""
    import cv2
    from PIL import Image

    with Image.open(path) as img:
        img.draft("RGB", (size[1], size[0]))
        array = np.asarray(img.convert("RGB"))
    return cv2.resize(array, (size[1], size[0]), interpolation=cv2.INTER_AREA)


def peer_audio(path: str, rate: int, duration: float) -> np.ndarray:
    """``float32 [rate * duration]`` mono: soundfile, then soxr HQ, cropped from the start
    or zero-padded."""
    import soundfile as sf
    import soxr

    info = sf.info(path)
    frames = int(np.ceil(info.samplerate * duration))
    clip, native = sf.read(path, frames=frames, dtype="float32", always_2d=True)
    mono = clip.mean(axis=1)
    if native != rate:
        mono = soxr.resample(mono, native, rate, quality="HQ")
    length = round(rate * duration)
    out = np.zeros(length, np.float32)
    out[: min(length, len(mono))] = mono[:length]
    return out


def peer_text(path: str, tokenizer: Any, max_length: int) -> np.ndarray:
    """``int32 [max_length]``: the file as UTF-8, the kit's tokenizer, padded or cut."""
    from ..decoders.text import pad_sequences

    with open(path, encoding="utf-8", errors="replace") as fh:
        return pad_sequences([tokenizer(fh.read())], max_length)[0]


def _peer_decode(manifest: Manifest, s: Settings, work: Path, rate: int | None) -> Any:
    import functools

    if s.kind == "image":
        return functools.partial(peer_image, size=s.image_size)
    if s.kind == "audio":
        return functools.partial(peer_audio, rate=rate or s.sample_rate, duration=s.duration)
    return functools.partial(peer_text, tokenizer=_tokenizer(manifest, work), max_length=s.size)


def _labelled(decode: Any, record: tuple[str, int]) -> tuple[np.ndarray, np.int64]:
    return decode(record[0]), np.int64(record[1])


def _records(manifest: Manifest) -> list[tuple[str, int]]:
    labels = manifest.labels if manifest.labelled else np.full(len(manifest), -1)
    return [(str(p), int(y)) for p, y in zip(manifest.paths, labels, strict=True)]


def _peer_rate(name: str, manifest: Manifest) -> tuple[int | None, str]:
    if name.endswith("@native"):
        return _native_rate(manifest), "bytefeed@native"
    return None, "bytefeed"


def _grain(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    import functools

    grain = optional_module("grain", "grain")
    flags = optional_module("absl.flags", "absl-py").FLAGS  # grain's own dependency
    if not flags.is_parsed():  # outside absl.app, grain's workers read unparsed flags and fail
        flags.mark_as_parsed()
    rate, group = _peer_rate(name, manifest)
    workers = s.workers or os.cpu_count() or 1
    fn = functools.partial(_labelled, _peer_decode(manifest, s, work, rate))
    steps = -(-len(manifest) // s.batch_size)
    read = grain.ReadOptions()  # Grain's defaults, as its users keep them
    ds = (
        grain.MapDataset.source(_records(manifest))
        .shuffle(seed=s.seed)
        .map(fn)
        .batch(s.batch_size)
        .repeat()
        .to_iter_dataset(read)
        .mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
    )
    state: dict[str, Any] = {}

    def iterator() -> Iterator:
        if "it" not in state:
            state["it"] = iter(ds)
        return state["it"]

    # Each worker runs ReadOptions' threads (16), each building a whole batch, so batches
    # arrive in waves of 16 per worker, all finishing together; a short epoch timed inside
    # or between waves measures the wave, not Grain (a 4-batch epoch "beat" the decode
    # bound 30x). So the first wave is taken untimed and the timed window is as many whole
    # epochs as span two waves (samples/s counts what was timed; every file once an epoch).
    wave = workers * (read.num_threads + 1)
    epochs = -(-2 * wave // steps)

    def prepare() -> None:
        it = iterator()  # the worker processes start here, untimed
        for _ in range(wave):
            next(it)

    def batches() -> Iterator:
        it = iterator()
        for _ in range(steps):
            yield next(it)

    def close() -> None:
        it = state.pop("it", None)
        if it is not None and hasattr(it, "close"):
            it.close()

    what = {"image": "Pillow draft + OpenCV", "audio": "soundfile + soxr HQ", "text": "tokenizer"}
    note = f"MapDataset + mp_prefetch, {workers} processes, {what[s.kind]}"
    if rate:
        note += f", at the files' rate ({rate} Hz)"
    return Pipeline(name, batches, note, group, prepare, close, epochs)


def _keras_grain(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    import keras

    optional_module("grain", "grain")
    labels = "inferred" if manifest.labelled else None
    common = {"labels": labels, "batch_size": s.batch_size, "shuffle": True, "seed": s.seed}
    folder = class_folders(manifest, work)
    if s.kind == "image":
        ds = keras.utils.image_dataset_from_directory(
            folder, image_size=s.image_size, verbose=False, format="grain", **common
        )
        note = 'format="grain", as returned (one process, Pillow + keras.ops resize)'
        return Pipeline(name, lambda: iter(ds), note)
    ds = keras.utils.text_dataset_from_directory(folder, verbose=False, format="grain", **common)
    tokenizer = _tokenizer(manifest, work)

    def batches() -> Iterator:
        from ..decoders.text import pad_sequences

        for batch in ds:
            texts, y = batch if labels else (batch, np.full(len(batch), -1))
            docs = [t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in texts]
            yield pad_sequences([tokenizer(d) for d in docs], s.size), np.asarray(y)

    return Pipeline(name, batches, 'format="grain" strings, then the kit\'s tokenizer')


class _TorchFiles:
    """A map-style dataset for ``torch.utils.data.DataLoader``: ``(sample, label)`` per row."""

    def __init__(self, records: list[tuple[str, int]], decode: Any):
        self.records, self.decode = records, decode

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.int64]:
        return _labelled(self.decode, self.records[i])


def _torch(name: str, manifest: Manifest, s: Settings, work: Path) -> Pipeline:
    torch = optional_module("torch", "torch")
    rate, group = _peer_rate(name, manifest)
    workers = s.workers or os.cpu_count() or 1
    dataset = _TorchFiles(_records(manifest), _peer_decode(manifest, s, work, rate))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=s.batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=True,
        generator=torch.Generator().manual_seed(s.seed),
    )

    def prepare() -> None:
        next(iter(loader))  # the persistent worker processes start here, untimed

    note = f"DataLoader, num_workers={workers}, same decoding as grain"
    if rate:
        note += f", at the files' rate ({rate} Hz)"
    return Pipeline(name, lambda: iter(loader), note, group=group, prepare=prepare)


_BUILDERS: dict[tuple[str, str], Callable[[str, Manifest, Settings, Path], Pipeline]] = {
    (kind, base): builder
    for kind in PIPELINES
    for base, builder in (
        ("bytefeed", _bytefeed),
        ("bytefeed+cache", _bytefeed),
        ("bytefeed+processes", _bytefeed),
        ("article", _article),
        ("preload", _preload),
        ("tf.data", _tfdata),
        ("keras", _keras),
        ("keras-grain", _keras_grain),
        ("grain", _grain),
        ("torch", _torch),
    )
}
