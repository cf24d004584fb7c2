"""``to_tf_dataset``: a stream's pipeline rebuilt from TensorFlow ops, for the tf.data service.

A ``Stream`` decodes in Python threads; the tf.data service runs datasets on remote worker
processes, which can only run TensorFlow ops (no ``py_function``). ``to_tf_dataset(stream)``
builds the equivalent graph: read (``tf.io.read_file``, or TFRecords of a packed source),
decode, resize or resample, crop or pad, batch; the same rows, labels, order, shapes and
dtypes as the stream, with TensorFlow's decoders instead of Pillow / libsndfile / soxr.

Differences from the stream, all documented on ``to_tf_dataset``: TensorFlow reads fewer
formats, ignores EXIF orientation, resamples audio with an FFT instead of soxr, replaces the
5 bytes cp1252 leaves undefined instead of falling back to Latin-1, and skips bad files inside
the graph (logged by TensorFlow, not listed in ``stream.errors``); a damaged packed record ends
its shard; augmentation is not carried over.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from .options import OnError, check_choice
from .sources import FileSource

#: Image formats ``tf.io.decode_image`` reads (no TIFF), by file extension.
TF_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
Unsupported = Literal["raise", "skip"]
_SHUFFLE_BLOCKS = 16  # blocks of packed records shuffled together (beyond shard order)
_INTERLEAVE = 8  # packed shards read at once
_PARSE_BLOCK = 256  # packed records parsed per op call


def to_tf_dataset(
    stream: Any,
    *,
    epoch: int | None = None,
    unsupported: Unsupported = "raise",
    on_error: OnError | None = None,
    num_parallel_calls: int | None = None,
    deterministic: bool = True,
    prefetch: bool = True,
) -> tf.data.Dataset:
    """One epoch of ``stream`` as a ``tf.data.Dataset`` built only from TensorFlow ops.

    Yields ``(x, y)`` batches with the stream's shapes and dtypes (``y`` as its ``label_mode``):
    images ``[B, H, W, C]`` (``tf.io.decode_image``, then stretch / centre crop / letterbox
    with antialiased ``tf.image.resize`` by the stream's ``interpolation``, Keras's names
    as TensorFlow's methods, "lanczos" as "lanczos3", "box" as "area", "hamming" as
    "bilinear"; RGBA for ``channels=4``, opaque where the file has no alpha;
    ``[B, C, H, W]`` for ``data_format="channels_first"``); audio ``float32 [B, N]`` or
    log-mels ``[B, frames, n_mels]`` (``tf.audio.decode_wav``, channels averaged, FFT
    resampling with ``tf.signal``, crop or zero-pad; the same mel filters as the stream,
    from librosa), whole clips padded to each batch's longest with ``duration=None`` (a
    clip over ``max_duration`` fails in the graph, so ``on_error="skip"`` drops it), the
    stream's ``channel_axis`` and ``lengths`` inputs too; text ``int32 [B, T]``
    (``tf.io.read_file`` and the stream's tokenizer, which must be an adapted
    ``keras.layers.TextVectorization``), or with ``output="text"`` the documents,
    ``tf.string [B]``, cut to ``max_length`` characters.

    Rows are the stream's for that epoch and shard: for loose files in exactly the stream's
    order (so batches match while no file is bad); for a packed source in shard order,
    shards interleaved and blocks of records shuffled when the stream shuffles (TFRecords
    are read front to back, not by offset). The graph holds every path (or a mask of rows)
    as constants, so it serialises to tf.data service workers:
    ``ds.apply(tf.data.experimental.service.distribute("distributed_epoch", service))``.

    Args:
        stream: an image, audio or text ``Stream``.
        epoch: which epoch's order (default: the rest of the stream's current epoch).
        unsupported: files TensorFlow cannot decode (TIFF images, told by extension; audio
            other than 16-bit PCM WAV, told by reading each file's header once here):
            ``"raise"`` a ValueError naming them, or ``"skip"`` them with one warning.
        on_error: ``"skip"`` drops files that fail to read or decode (``ignore_errors``:
            TensorFlow logs a warning per file; ``stream.errors`` does not list them), or
            ``"raise"`` (the op's error stops iteration); default: the stream's policy.
        num_parallel_calls: decoding parallelism (default ``tf.data.AUTOTUNE``).
        deterministic: keep the order when decoding in parallel.
        prefetch: add ``prefetch(AUTOTUNE)`` at the end.

    Skipped files make the following batches refill (the stream's batches come out short
    instead), so batches realign only within an epoch without bad files. In a packed
    source, a damaged record ends the reading of its shard (TFRecord cannot resynchronise
    after a CRC error), so run ``verify_pack`` before a long distributed job; the Python
    stream loses only the damaged record. Augmentation is not carried over: put Keras
    preprocessing layers in the model or map your own.
    """
    engine = stream.engine
    check_choice("unsupported", unsupported, Unsupported)
    on_error = on_error or engine.on_error
    check_choice("on_error", on_error, OnError)
    epoch, start = (engine.epoch, engine.position) if epoch is None else (int(epoch), 0)
    rows = _epoch_rows(engine, epoch, start)
    rows = _supported_rows(stream, rows, unsupported)
    calls = tf.data.AUTOTUNE if num_parallel_calls is None else num_parallel_calls
    decode = _decoder(stream)
    ds, read = _records(engine, rows, epoch, on_error)
    ds = ds.map(
        lambda src, label, row: (decode(read(src), row), label),
        num_parallel_calls=calls,
        deterministic=deterministic,
    )
    if on_error == "skip":
        ds = ds.ignore_errors(log_warning=True)
    options = stream.options
    whole_clips = stream.kind == "audio" and options.get("duration") is None
    if whole_clips:  # clips of their own lengths: each batch padded to its longest
        ds = ds.map(lambda x, y: ((x, tf.shape(x)[0]), y), num_parallel_calls=calls)
        ds = ds.padded_batch(
            engine.batch_size,
            padded_shapes=(([None], []), []),
            drop_remainder=engine.drop_remainder,
        )
    else:
        ds = ds.batch(engine.batch_size, drop_remainder=engine.drop_remainder)
    if stream.kind == "text" and options.get("output", "tokens") == "tokens":
        tokenize = _tokenizer(stream)
        ds = ds.map(lambda x, y: (tokenize(x), y), num_parallel_calls=calls)
    if stream.kind == "image" and options.get("data_format") == "channels_first":
        ds = ds.map(lambda x, y: (tf.transpose(x, [0, 3, 1, 2]), y), num_parallel_calls=calls)
    if whole_clips:
        ds = ds.map(lambda x, y: (_clip_inputs(*x, **options), y), num_parallel_calls=calls)
    elif stream.kind == "audio" and options.get("channel_axis"):
        ds = ds.map(lambda x, y: (x[..., tf.newaxis], y), num_parallel_calls=calls)
    ds = _label_mode(ds, engine.label_mode, len(engine.source.class_names))
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


def _label_mode(ds: tf.data.Dataset, mode: str | None, classes: int) -> tf.data.Dataset:
    """``y`` as the Python stream gives it under ``label_mode`` (ids stay ``int32 [B]``)."""
    if mode is None:
        return ds.map(lambda x, y: x)
    if mode == "categorical":
        return ds.map(lambda x, y: (x, tf.one_hot(y, classes, dtype=tf.float32)))
    if mode == "binary":
        return ds.map(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), (-1, 1))))
    return ds


# --- which rows, in which order -----------------------------------------------------------------
def _epoch_rows(engine: Any, epoch: int, start: int) -> np.ndarray:
    """Rows of this shard's slots ``start..`` of ``epoch``, in the stream's order."""
    order = engine.epoch_order(epoch)
    parts = [engine.slot_rows(epoch, slot, order) for slot in range(start, len(engine))]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def _regular_rows(source: Any, rows: np.ndarray) -> np.ndarray:
    """``rows`` without loose files that exist but are not regular files: ``tf.io.read_file``
    would block on a FIFO and read a link to /dev/zero until memory runs out."""
    if not isinstance(source, FileSource):
        return rows  # packed records are bytes already
    paths = [source.path(int(r)) for r in rows.tolist()]
    special = [os.path.exists(p) and not os.path.isfile(p) for p in paths]
    if any(special):
        examples = ", ".join([p for p, s in zip(paths, special, strict=True) if s][:3])
        warnings.warn(
            f"{sum(special)} files are not regular files (FIFOs, devices, folders; e.g. "
            f"{examples}); left out of the tf.data pipeline",
            UserWarning,
            stacklevel=3,
        )
        return rows[[not s for s in special]]
    return rows


def _supported_rows(stream: Any, rows: np.ndarray, unsupported: str) -> np.ndarray:
    """``rows`` without the files TensorFlow cannot decode (or a ValueError naming them)."""
    rows = _regular_rows(stream.engine.source, rows)
    check = {"image": _image_problem, "audio": _audio_problem}.get(stream.kind)
    if check is None:
        return rows
    source = stream.engine.source
    with ThreadPoolExecutor(min(32, 2 * (os.cpu_count() or 1))) as pool:
        problems = list(pool.map(lambda r: check(source, int(r)), rows.tolist()))
    bad = [(source.path(int(r)), p) for r, p in zip(rows, problems, strict=True) if p]
    if not bad:
        return rows
    reasons = "; ".join(f"{n} x {why}" for why, n in Counter(p for _, p in bad).most_common())
    examples = ", ".join(path for path, _ in bad[:3])
    message = (
        f"{len(bad)} of {len(rows)} files cannot be decoded by TensorFlow ops ({reasons}; "
        f"e.g. {examples})"
    )
    if unsupported == "raise":
        raise ValueError(f"{message}; convert them, or pass unsupported='skip'")
    warnings.warn(f"{message}; left out of the tf.data pipeline", UserWarning, stacklevel=3)
    return rows[[not p for p in problems]]


def _image_problem(source: Any, row: int) -> str | None:
    ext = os.path.splitext(source.path(row))[1].lower()
    if ext in (".tif", ".tiff"):
        return "TIFF (tf.io.decode_image reads JPEG, PNG, GIF, BMP, WebP)"
    return None


def _audio_problem(source: Any, row: int) -> str | None:
    """Why ``tf.audio.decode_wav`` cannot read row ``row``; None if it can or it is a bad file."""
    import soundfile as sf

    try:
        info = sf.info(source.open(row))
    except Exception:  # missing or broken: a bad file for both pipelines, not a format issue
        return None
    if info.format != "WAV" or info.subtype != "PCM_16":
        return f"{info.format} {info.subtype} (tf.audio.decode_wav reads 16-bit PCM WAV only)"
    return None


def _records(
    engine: Any, rows: np.ndarray, epoch: int, on_error: str
) -> tuple[tf.data.Dataset, Callable]:
    """``(path or bytes, label, row)`` elements of ``rows``, and how to get the bytes."""
    from .packed import PackedSource

    source = engine.source
    if isinstance(source, PackedSource):
        seed, skip = (engine.seed, epoch), on_error == "skip"
        ds = _packed_records(source, rows, seed=seed, shuffle=engine.shuffle, skip=skip)
        return ds, lambda data: data
    paths = tf.constant([source.path(int(r)) for r in rows], tf.string)
    labels = np.asarray(source.labels, np.int32)[rows]
    return tf.data.Dataset.from_tensor_slices((paths, labels, rows)), tf.io.read_file


def _packed_records(
    source: Any, rows: np.ndarray, *, seed: tuple[int, int], shuffle: bool, skip: bool
) -> tf.data.Dataset:
    """Records of a pack, filtered to ``rows`` (shard order, shuffled in blocks).

    A damaged record (TFRecord CRC mismatch) ends the reading of its shard: TFRecord cannot
    find the next record after a bad one. With ``skip`` the rest of that shard is dropped
    (TensorFlow logs it) and the other shards carry on; otherwise the error is raised.
    """
    keep = np.zeros(len(source), bool)
    keep[rows] = True
    keep_t = tf.constant(keep)
    rng = np.random.default_rng(list(seed))
    op_seed = int(rng.integers(2**31))
    paths = np.asarray(source.index.shard_paths, dtype=object)
    # the shard order is drawn here, not by a shuffle op: the tf.data service splits the file
    # list among workers, and a shuffle above the split would give every worker all files
    paths = paths[rng.permutation(len(paths))] if shuffle else paths
    files = tf.data.Dataset.from_tensor_slices(tf.constant(paths.tolist(), tf.string))

    def read(path: tf.Tensor) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(path)
        return records.ignore_errors(log_warning=True) if skip else records

    ds = files.interleave(read, cycle_length=min(_INTERLEAVE, max(1, len(source.index.shards))))
    # parse, filter and shuffle whole blocks of records: one op call per block, not per record
    block_seed = op_seed if shuffle else None
    ds = ds.batch(_PARSE_BLOCK).map(
        lambda recs: _block(recs, keep_t, block_seed), num_parallel_calls=tf.data.AUTOTUNE
    )
    if shuffle:
        ds = ds.shuffle(_SHUFFLE_BLOCKS, seed=op_seed)
    return ds.unbatch()


_SPEC = {
    "data": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "row": tf.io.FixedLenFeature([], tf.int64),
}


def _block(records: tf.Tensor, keep: tf.Tensor, seed: int | None) -> tuple[tf.Tensor, ...]:
    """``(data, label, row)`` of the records in a block whose rows ``keep`` marks; with a
    ``seed``, in an order drawn from it and the block's first row (so reruns repeat it)."""
    ex = tf.io.parse_example(records, _SPEC)
    index = tf.where(tf.gather(keep, ex["row"]))[:, 0]
    if seed is not None:
        key = tf.stack([tf.constant(seed, tf.int64), ex["row"][0]])
        index = tf.random.experimental.stateless_shuffle(index, key)
    return (
        tf.gather(ex["data"], index),
        tf.cast(tf.gather(ex["label"], index), tf.int32),
        tf.gather(ex["row"], index),
    )


# --- decoding -----------------------------------------------------------------------------------
def _decoder(stream: Any) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    options, kind = stream.options, stream.kind
    if kind == "image":
        return _image_decoder(**options)
    if kind == "audio":
        return _audio_decoder(seed=stream.engine.seed, **options)
    if kind == "text":
        return _text_decoder(options.get("max_length") if options.get("output") == "text" else None)
    raise ValueError(f"to_tf_dataset builds image, audio and text streams, not {kind!r}")


#: ``tf.image.resize``'s method for each of the stream's interpolation names.
_TF_METHODS = {"lanczos": "lanczos3", "box": "area", "hamming": "bilinear"}


def _image_decoder(
    image_size: tuple[int, int],
    channels: int,
    fit: str,
    dtype: str,
    interpolation: str = "bilinear",
    **_: Any,
) -> Callable:
    height, width = (int(v) for v in image_size)
    out_dtype = tf.float32 if dtype == "float32" else tf.uint8
    method = _TF_METHODS.get(interpolation, interpolation)

    def decode(data: tf.Tensor, row: tf.Tensor) -> tf.Tensor:
        # JPEG and GIF refuse channels=4: decode as stored, then add the alpha
        wanted = 0 if channels == 4 else channels
        img = tf.io.decode_image(data, channels=wanted, expand_animations=False)
        img = tf.image.convert_image_dtype(img, tf.uint8)  # 16-bit PNGs scale to 0..255
        if channels == 4:
            img = _rgba(img)
        img = _fit(tf.cast(img, tf.float32), height, width, fit, method)
        img = tf.clip_by_value(tf.round(img), 0.0, 255.0)
        return tf.ensure_shape(tf.cast(img, out_dtype), (height, width, channels))

    return decode


def _rgba(img: tf.Tensor) -> tf.Tensor:
    """A uint8 ``[H, W, 1..4]`` image as RGBA: grey spread to RGB, alpha kept or opaque."""
    stored = tf.shape(img)[2]
    colour = tf.cond(stored < 3, lambda: tf.tile(img[..., :1], [1, 1, 3]), lambda: img[..., :3])
    opaque = tf.fill(tf.concat([tf.shape(img)[:2], [1]], 0), tf.constant(255, tf.uint8))
    alpha = tf.case(
        [
            (tf.equal(stored, 2), lambda: img[..., 1:2]),
            (tf.equal(stored, 4), lambda: img[..., 3:4]),
        ],
        default=lambda: opaque,
    )
    return tf.concat([colour, alpha], axis=2)


def _fit(img: tf.Tensor, height: int, width: int, fit: str, method: str = "bilinear") -> tf.Tensor:
    """Resize ``img`` to ``(height, width)`` as ``decode_image`` does for ``fit``."""

    def resize(image: tf.Tensor, size: Any) -> tf.Tensor:
        return tf.image.resize(image, size, method=method, antialias=True)

    if fit == "stretch":
        return resize(img, (height, width))
    shape = tf.cast(tf.shape(img)[:2], tf.float32)
    ih, iw = shape[0], shape[1]
    if fit == "crop":  # the largest centred box of the output's aspect, then resize
        aspect = width / height
        ch = tf.maximum(1, tf.cast(tf.round(tf.minimum(ih, iw / aspect)), tf.int32))
        cw = tf.maximum(1, tf.cast(tf.round(tf.minimum(iw, ih * aspect)), tf.int32))
        top = (tf.cast(ih, tf.int32) - ch) // 2
        left = (tf.cast(iw, tf.int32) - cw) // 2
        img = tf.image.crop_to_bounding_box(img, top, left, ch, cw)
        return resize(img, (height, width))
    scale = tf.minimum(width / iw, height / ih)  # "pad": fit inside, centre on zeros
    nh = tf.clip_by_value(tf.cast(tf.round(ih * scale), tf.int32), 1, height)
    nw = tf.clip_by_value(tf.cast(tf.round(iw * scale), tf.int32), 1, width)
    img = resize(img, tf.stack([nh, nw]))
    return tf.image.pad_to_bounding_box(img, (height - nh) // 2, (width - nw) // 2, height, width)


def _audio_decoder(
    seed: int,
    sample_rate: int | None,
    duration: float | None,
    crop: str,
    features: str = "waveform",
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    max_duration: float | None = None,
    **_: Any,
) -> Callable:
    if sample_rate is None:
        raise ValueError(
            "to_tf_dataset resamples every clip to the stream's sample_rate; build the stream "
            "with one (sample_rate=None keeps each file's rate)"
        )
    length = None if duration is None else round(sample_rate * duration)
    mel = _mel_matrix(sample_rate, n_fft, n_mels) if features == "logmel" else None
    longest = None if max_duration is None else round(max_duration * sample_rate)

    def decode(data: tf.Tensor, row: tf.Tensor) -> tf.Tensor:
        wav, rate = tf.audio.decode_wav(data)  # float32 [N, channels]
        x = tf.reduce_mean(wav, axis=1)  # mono, as the stream mixes
        x = _resample(x, rate, sample_rate)
        if length is None:  # whole clips: padded per batch, log-mels after padding
            if longest is not None:
                too_long = tf.debugging.assert_less_equal(
                    tf.shape(x)[0], longest, message="clip too long (max_duration)"
                )
                with tf.control_dependencies([too_long]):
                    x = tf.identity(x)
            return x
        x = _crop(x, length, crop, seed, row)
        if mel is not None:
            x = _logmel(x, mel, n_fft, hop_length)
        return x

    return decode


def _clip_inputs(
    x: tf.Tensor,
    clip_lengths: tf.Tensor,
    *,
    sample_rate: int,
    features: str = "waveform",
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    channel_axis: bool = False,
    **options: Any,
) -> Any:
    """A padded batch of whole clips ``[B, T]`` as the stream gives it: log-mels of the padded
    waveforms, the channel axis, ``{"audio", "lengths"}`` with ``lengths=True``."""
    if features == "logmel":
        mel = _mel_matrix(sample_rate, n_fft, n_mels)
        x = tf.map_fn(
            lambda clip: _logmel(clip, mel, n_fft, hop_length),
            x,
            fn_output_signature=tf.float32,
        )
        clip_lengths = tf.where(clip_lengths > 0, 1 + clip_lengths // hop_length, 0)
    if channel_axis:
        x = x[..., tf.newaxis]
    if not options.get("lengths"):
        return x
    return {"audio": x, "lengths": tf.cast(clip_lengths, tf.int32)}


def _resample(x: tf.Tensor, rate: tf.Tensor, target: int) -> tf.Tensor:
    """``x`` at ``rate`` Hz resampled to ``target`` Hz by truncating or padding its spectrum."""

    def fft_resample() -> tf.Tensor:
        n = tf.shape(x)[0]
        m = tf.maximum(1, tf.cast(tf.round(tf.cast(n, tf.float64) * target / tf.cast(
            rate, tf.float64)), tf.int32))  # fmt: skip
        spectrum = tf.signal.rfft(x)
        bins = m // 2 + 1
        kept = spectrum[: tf.minimum(bins, tf.shape(spectrum)[0])]
        kept = tf.pad(kept, [[0, bins - tf.shape(kept)[0]]])
        y = tf.signal.irfft(kept, fft_length=tf.reshape(m, [1]))
        return y * (tf.cast(m, tf.float32) / tf.cast(n, tf.float32))

    return tf.cond(tf.equal(rate, target), lambda: x, fft_resample)


def _crop(x: tf.Tensor, length: int, crop: str, seed: int, row: tf.Tensor) -> tf.Tensor:
    """``length`` samples of ``x`` (start / centre / seeded random), zero-padded if short."""
    spare = tf.maximum(0, tf.shape(x)[0] - length)
    if crop == "center":
        start = spare // 2
    elif crop == "random":  # reproducible per (seed, row); not the stream's NumPy draws
        key = tf.stack([tf.constant(seed & 0x7FFFFFFF, tf.int64), tf.cast(row, tf.int64)])
        start = tf.random.stateless_uniform([], key, 0, spare + 1, dtype=tf.int32)
    else:
        start = 0
    x = x[start : start + length]
    return tf.ensure_shape(tf.pad(x, [[0, length - tf.shape(x)[0]]]), (length,))


def _mel_matrix(sample_rate: int, n_fft: int, n_mels: int) -> tf.Tensor:
    """librosa's mel filters (Slaney), as ``logmel`` uses: ``[n_fft // 2 + 1, n_mels]``."""
    import librosa

    return tf.constant(librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).T)


def _logmel(x: tf.Tensor, mel: tf.Tensor, n_fft: int, hop_length: int) -> tf.Tensor:
    """Log-mel in dB, ``[1 + N // hop, n_mels]``: centred frames, Hann window, 80 dB floor."""
    padded = tf.pad(x, [[n_fft // 2, n_fft // 2]])  # librosa's center=True, constant padding
    stft = tf.signal.stft(padded, n_fft, hop_length, n_fft, window_fn=tf.signal.hann_window)
    power = tf.math.square(tf.abs(stft))
    db = 10.0 * tf.math.log(tf.maximum(power @ mel, 1e-10)) / tf.math.log(10.0)
    return tf.maximum(db, tf.reduce_max(db) - 80.0)


def _text_decoder(max_length: int | None = None) -> Callable:
    """Bytes to a UTF-8 document; cut to ``max_length`` characters when given (raw text)."""

    def decode(data: tf.Tensor, row: tf.Tensor) -> tf.Tensor:
        head = tf.strings.substr(data, 0, 2)  # a UTF-16 byte-order mark, or not
        text = tf.case(
            [
                (tf.equal(head, b"\xff\xfe"), lambda: _transcode(data, "UTF-16-LE")),
                (tf.equal(head, b"\xfe\xff"), lambda: _transcode(data, "UTF-16-BE")),
            ],
            default=lambda: _utf8_or_cp1252(data),
        )
        is_text = tf.logical_not(tf.strings.regex_full_match(text, "(?s).*\x00.*"))
        # binary files fail here, as decode_text rejects them (skipped or raised per on_error)
        with tf.control_dependencies([tf.debugging.Assert(is_text, ["holds NUL bytes"])]):
            text = tf.strings.regex_replace(text, "^\ufeff", "")  # the BOM, kept by transcode
        text = tf.strings.regex_replace(text, "\r\n?", "\n")
        if max_length is None:
            return text
        return tf.strings.substr(text, 0, max_length, unit="UTF8_CHAR")

    return decode


def _transcode(data: tf.Tensor, encoding: str) -> tf.Tensor:
    return tf.strings.unicode_transcode(data, encoding, "UTF-8", errors="replace")


def _utf8_or_cp1252(data: tf.Tensor) -> tf.Tensor:
    """UTF-8 when valid, else cp1252, as ``decode_text`` falls back for unmarked bytes."""

    def codepoints(replacement: int) -> tf.Tensor:
        return tf.strings.unicode_decode(data, "UTF-8", errors="replace",
                                         replacement_char=replacement)  # fmt: skip

    # invalid bytes are the only code points that change with the replacement character
    valid = tf.reduce_all(tf.equal(codepoints(0xFFFD), codepoints(0xFFFE)))
    return tf.cond(valid, lambda: data, lambda: _transcode(data, "windows-1252"))


def _tokenizer(stream: Any) -> Callable[[tf.Tensor], tf.Tensor]:
    import keras

    layer = getattr(stream, "tokenizer", None)
    if not isinstance(layer, keras.layers.TextVectorization):
        raise TypeError(
            "to_tf_dataset needs a text stream whose tokenizer is an adapted "
            f"keras.layers.TextVectorization, not {type(layer).__name__}: a Python tokenizer "
            "cannot run on tf.data service workers. Build the stream with "
            "text_batches(..., tokenizer=layer) after layer.adapt(texts)."
        )
    max_length = stream.options.get("max_length")

    def tokenize(texts: tf.Tensor) -> tf.Tensor:
        ids = tf.cast(layer(texts), tf.int32)
        if isinstance(ids, tf.RaggedTensor):
            ids = ids.to_tensor()
        if max_length is not None:
            ids = ids[:, :max_length]
            ids = tf.pad(ids, [[0, 0], [0, max_length - tf.shape(ids)[1]]])
            return tf.ensure_shape(ids, (None, max_length))
        return ids

    return tokenize
