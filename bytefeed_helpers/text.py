"""``text_batches``: the text front-end of the engine (decode + tokenise, then pad)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .decoders.text import WordTokenizer, decode_text, pad_sequences
from .engine import Collate, Decoder
from .options import OnError, StreamOptions, check_int
from .sources import Source, as_source
from .stream import Stream, make_stream


def text_batches(
    manifest: Any,
    batch_size: int = 32,
    *,
    max_length: int | None = None,
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
) -> Stream:
    """Stream batches of tokenised documents from ``manifest``.

    Yields ``(x, y)``: ``x`` is ``int32 [B, T]`` token ids with 0 as padding, ``T`` the
    longest document of the batch (``max_length=None``) or exactly ``max_length`` (longer
    documents truncated at the end); ``y`` is ``int32 [B]``. An empty document is all padding.

    Documents are read as UTF-8 (with or without BOM) or UTF-16 with BOM, falling back to
    cp1252/Latin-1 for other bytes; a file holding NUL bytes is not text and is skipped (or
    raises with ``on_error="raise"``), as are missing files.

    ``tokenizer`` maps one document (``str``) to a sequence of int ids: a fitted
    ``WordTokenizer``, a ``keras.layers.TextVectorization`` (adapted), or any callable.
    Without one, a lower-case ``WordTokenizer`` of at most ``max_tokens`` words is fitted on
    this manifest (pass ``tokenizer=train_stream.tokenizer`` to the validation stream so both
    share one vocabulary). The tokenizer is ``stream.tokenizer``.

    Keras on the TensorFlow backend fixes batch shapes from the first batches it sees, so for
    ``model.fit`` give ``max_length`` (variable ``T`` works for plain iteration).
    ``cache`` (a folder) stores the token ids in the first epoch and reads them back later;
    it needs ``max_length`` (see ``bytefeed_helpers.cache``).
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
    )
    check_int("max_length", max_length, optional=True)
    source = as_source(manifest, "text")
    if tokenizer is None:
        tokenizer = WordTokenizer(max_tokens=max_tokens).fit(_documents(source, workers))
    decoder = Decoder(functools.partial(_tokenise, tokenizer=tokenizer, max_length=max_length))
    collate = Collate(functools.partial(pad_sequences, max_length=max_length))
    settings = {"max_length": max_length}
    stream = make_stream(source, decoder, collate, options, kind="text", settings=settings)
    stream.tokenizer = tokenizer
    return stream


def _tokenise(src: Any, *, tokenizer: Callable[[str], Any], max_length: int | None) -> np.ndarray:
    ids = np.asarray(tokenizer(decode_text(src)), dtype=np.int32).reshape(-1)
    return ids if max_length is None else ids[:max_length]


def _documents(source: Source, workers: int | None) -> Iterator[str]:
    """Every readable document of ``source`` (unreadable ones are left to the stream)."""

    def read(row: int) -> str:
        try:
            return decode_text(source.open(row))
        except Exception:  # recorded later, when the stream meets the file
            return ""

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        yield from tqdm(
            pool.map(read, range(len(source))), total=len(source), desc="vocabulary", delay=1
        )
