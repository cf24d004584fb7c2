"""``text_batches``: the text front-end of the engine (decode + tokenise, then pad)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .decoders._fileio import DEFAULT_MAX_FILE_MB, check_max_file_mb
from .decoders.text import WordTokenizer, check_encoding, decode_text, pad_sequences
from .engine import Collate, Decoder
from .options import (
    BatchPolicy,
    LabelMode,
    OnError,
    Parallelism,
    StreamOptions,
    TextOutput,
    check_choice,
    check_int,
)
from .sources import Source, as_source
from .stream import Stream, make_stream


def text_batches(
    manifest: Any,
    batch_size: int = 32,
    *,
    max_length: int | None = None,
    output: TextOutput = "tokens",
    tokenizer: Callable[[str], Any] | None = None,
    max_tokens: int | None = 20000,
    shuffle: bool = True,
    seed: int | None = None,
    on_error: OnError = "skip",
    drop_remainder: bool = False,
    with_paths: bool = False,
    training: bool | None = None,
    workers: int | None = None,
    prefetch: int | None = None,
    shard: tuple[int, int] = (0, 1),
    resume: dict | None = None,
    cache: str | os.PathLike | None = None,
    max_error_rate: float | None = 0.5,
    batch_policy: BatchPolicy = "short",
    label_mode: LabelMode | None = "int",
    parallelism: Parallelism = "threads",
    encoding: str | None = None,
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB["text"],
) -> Stream:
    """Stream batches of tokenised documents (or the documents themselves) from ``manifest``.

    Yields ``(x, y)``: ``x`` is ``int32 [B, T]`` token ids with 0 as padding, ``T`` the
    longest document of the batch (``max_length=None``) or exactly ``max_length`` (longer
    documents truncated at the end); ``y`` is ``int32 [B]``. An empty document is all padding.

    ``output="text"`` yields the documents themselves, as Keras's
    ``text_dataset_from_directory`` does: ``x`` is a ``tf.string`` tensor ``[B]`` of UTF-8
    documents (``x.numpy()`` holds their bytes), for a ``keras.layers.TextVectorization``
    adapted on the data and put inside the model. No tokenizer is fitted or used, and
    ``max_length`` counts characters (Unicode code points; Keras's TensorFlow pipeline counts
    bytes, and may cut a character in two). A ``tf.string`` tensor and not a NumPy array:
    Keras's ``PyDataset`` adapter refuses NumPy string arrays (keras-team/keras#20479), so
    raw text trains on the TensorFlow backend; on JAX and PyTorch tokenise in the stream
    (``output="tokens"``), as no model there takes strings.

    Documents are decoded by ``decoders.decode_text``: a byte-order mark, else strict UTF-8,
    else BOM-less UTF-16/32, else the encoding charset-normalizer detects with confidence; a
    file whose encoding cannot be told with confidence is skipped with that reason (pass
    ``encoding=`` to force one codec for every file; ``decoders.text_info`` says what a file
    gets). A file holding NUL bytes that is not UTF-16/32 is not text and is skipped (or
    raises with ``on_error="raise"``), as are missing files, special files and files over
    ``max_file_mb``.

    ``tokenizer`` maps one document (``str``) to a sequence of int ids: a fitted
    ``WordTokenizer``, a ``keras.layers.TextVectorization`` (adapted), or any callable.
    Without one, a lower-case ``WordTokenizer`` of at most ``max_tokens`` words is fitted on
    this manifest (pass ``tokenizer=train_stream.tokenizer`` to the validation stream so both
    share one vocabulary). The tokenizer is ``stream.tokenizer``.

    Keras on the TensorFlow backend fixes batch shapes from the first batches it sees, so for
    ``model.fit`` give ``max_length`` (variable ``T`` works for plain iteration).
    ``cache`` (a folder) stores the token ids in the first epoch and reads them back later;
    it needs ``max_length`` (see ``bytefeed_helpers.cache``).

    Arguments are checked when the stream is built: a wrong one raises ``ValueError`` naming
    it, before any file is read. ``max_error_rate`` (default 0.5; a stream with more bad
    files in an epoch stops), ``label_mode`` (Keras's "int", "categorical", "binary" or None),
    ``batch_policy`` ("short", or "pad": one batch shape with sample weights) and
    ``parallelism`` ("threads" or "processes"): see ``BatchEngine``.
    """
    options = StreamOptions(
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        on_error=on_error,
        drop_remainder=drop_remainder,
        with_paths=with_paths,
        training=training,
        workers=workers,
        prefetch=prefetch,
        shard=shard,
        resume=resume,
        cache=cache,
        max_error_rate=max_error_rate,
        batch_policy=batch_policy,
        label_mode=label_mode,
        parallelism=parallelism,
    )
    check_int("max_length", max_length, optional=True)
    check_int("max_tokens", max_tokens, minimum=2, optional=True)
    check_choice("output", output, TextOutput)
    if output == "text":
        _check_text_output(tokenizer, cache, batch_policy)
    if tokenizer is not None and not callable(tokenizer):
        raise ValueError(
            "tokenizer must map a document (str) to token ids: a WordTokenizer, an adapted "
            f"TextVectorization or any callable. Received: tokenizer={tokenizer!r}"
        )
    encoding = check_encoding(encoding)
    check_max_file_mb(max_file_mb)
    read = functools.partial(decode_text, encoding=encoding, max_file_mb=max_file_mb)
    source = as_source(manifest, "text")
    if output == "text":
        import tensorflow as tf  # here, not in a worker thread: importing it takes seconds

        stream = make_stream(
            source,
            Decoder(functools.partial(_document, read=read, max_length=max_length)),
            Collate(functools.partial(_strings, tf=tf)),
            options,
            kind="text",
            settings={"max_length": max_length, "output": output},
        )
        return stream
    if tokenizer is None:
        tokenizer = WordTokenizer(max_tokens=max_tokens).fit(_documents(source, read, workers))
    decoder = Decoder(
        functools.partial(_tokenise, read=read, tokenizer=tokenizer, max_length=max_length)
    )
    collate = Collate(functools.partial(pad_sequences, max_length=max_length))
    settings = {"max_length": max_length, "output": output}
    stream = make_stream(source, decoder, collate, options, kind="text", settings=settings)
    stream.tokenizer = tokenizer
    return stream


def _check_text_output(tokenizer: Any, cache: Any, batch_policy: str) -> None:
    """What ``output="text"`` cannot take, as Keras-style ValueErrors."""
    if tokenizer is not None:
        raise ValueError(
            "output='text' yields the documents as strings and tokenises nothing; put the "
            "tokenizer (an adapted TextVectorization) in the model, or use output='tokens'. "
            f"Received: tokenizer={tokenizer!r} with output='text'"
        )
    if cache is not None:
        raise ValueError(
            "cache= stores token ids; output='text' streams are not cached (reading a text "
            "file back costs about what reading it did). Received: cache with output='text'"
        )
    if batch_policy == "pad":
        raise ValueError(
            "batch_policy='pad' pads x with zeros, and output='text' batches hold strings; "
            "use batch_policy='short' (the default). Received: batch_policy='pad' with "
            "output='text'"
        )


def _document(src: Any, *, read: Callable[[Any], str], max_length: int | None) -> str:
    text = read(src)
    return text if max_length is None else text[:max_length]


def _strings(documents: list[str], *, tf: Any) -> Any:
    """Documents as one ``tf.string [B]`` tensor (UTF-8), what Keras fits on."""
    return tf.constant(documents, dtype=tf.string)


def _tokenise(
    src: Any,
    *,
    read: Callable[[Any], str],
    tokenizer: Callable[[str], Any],
    max_length: int | None,
) -> np.ndarray:
    ids = np.asarray(tokenizer(read(src)), dtype=np.int32).reshape(-1)
    return ids if max_length is None else ids[:max_length]


def _documents(source: Source, read: Callable[[Any], str], workers: int | None) -> Iterator[str]:
    """Every readable document of ``source`` (unreadable ones are left to the stream)."""

    def document(row: int) -> str:
        try:
            return read(source.open(row))
        except Exception:  # recorded later, when the stream meets the file
            return ""

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        yield from tqdm(
            pool.map(document, range(len(source))), total=len(source), desc="vocabulary", delay=1
        )
