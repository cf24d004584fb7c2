"""Decode text files to ``str``, and a small word tokenizer with a Keras-style vocabulary.

Functions here are thread-safe: they share no mutable state (a ``WordTokenizer`` is only
read while it encodes, so one fitted tokenizer serves every worker thread).
"""

from __future__ import annotations

import codecs
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import IO, Any

import numpy as np

from ..errors import BadFileError
from ._fileio import read_bytes

__all__ = ["WordTokenizer", "decode_text", "pad_sequences"]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

# Byte-order marks and their codecs, UTF-32 first: its LE mark starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_NEWLINES = re.compile(r"\r\n?")


def decode_text(src: Source) -> str:
    """Decode a text file to ``str`` with "\\n" line ends.

    ``src`` is a path, the file's bytes, or a binary file object. Files with a byte-order mark
    are decoded as it says (UTF-8, UTF-16 LE/BE, UTF-32); others as UTF-8 when valid, else as
    cp1252 (Windows' superset of Latin-1), else Latin-1, which accepts any byte. An empty file
    is ``""`` (a valid, empty document).

    Raises:
        BadFileError: NUL bytes outside a UTF-16/32 file with BOM ("holds NUL bytes: not
            text"), or a BOM whose encoding the bytes do not follow.
        FileNotFoundError: ``src`` names no file.
    """
    data = read_bytes(src)
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(encoding)
            except UnicodeDecodeError as exc:
                name = encoding.removesuffix("-sig").upper()
                raise BadFileError(f"not valid {name} text despite its byte-order mark") from exc
            break
    else:
        text = _decode_unmarked(data)
    if "\x00" in text:
        raise BadFileError("holds NUL bytes: not text")
    return _NEWLINES.sub("\n", text)


def _decode_unmarked(data: bytes) -> str:
    """Bytes without a BOM: UTF-8 if valid, else cp1252, else Latin-1."""
    if b"\x00" in data:  # binary data; plain-text encodings never need NUL
        raise BadFileError("holds NUL bytes: not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:  # cp1252 leaves 5 bytes undefined; Latin-1 maps every byte
        return data.decode("latin-1")


# ---------------------------------------------------------------------------------------------

PAD, OOV = "", "[UNK]"
_RESERVED = (PAD, OOV)
_WORD = re.compile(r"\w+(?:'\w+)?")


class WordTokenizer:
    """Lower-case word tokenizer: ``text -> int32 ids [T]``.

    Words are ``\\w+(?:'\\w+)?`` matches (Unicode-aware, keeping "don't" whole) of
    ``text.lower()``. Id 0 is padding (""), 1 is out-of-vocabulary ("[UNK]"), and vocabulary
    words follow from 2 in order: the layout of ``keras.layers.TextVectorization``, whose
    ``get_vocabulary()`` equals ``vocabulary`` here.

    Args:
        vocabulary: the words for ids 2, 3, ... (a leading "" and "[UNK]", as in
            ``vocabulary``'s own output, are accepted and skipped); None to ``fit`` later.
            Words must be lower-case to ever match.
        max_tokens: vocabulary size cap including the two reserved ids; None for no cap.
        min_count: ``fit`` keeps words seen at least this often.

    Until it has a vocabulary, every word maps to 1 (out-of-vocabulary).
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        *,
        max_tokens: int | None = 20000,
        min_count: int = 1,
    ):
        if max_tokens is not None and max_tokens < len(_RESERVED):
            raise ValueError(f"max_tokens must be None or >= {len(_RESERVED)}, not {max_tokens}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, not {min_count}")
        self.max_tokens = max_tokens
        self.min_count = min_count
        self._words: list[str] = []
        self._ids: dict[str, int] = {}
        if vocabulary is not None:
            self._set_words(vocabulary)

    def _set_words(self, words: Sequence[str]) -> None:
        words = list(words)
        if words[: len(_RESERVED)] == list(_RESERVED):
            words = words[len(_RESERVED) :]
        if len(set(words)) != len(words) or set(_RESERVED) & set(words):
            raise ValueError('vocabulary words must be unique and exclude "" and "[UNK]"')
        if self.max_tokens is not None and len(words) + len(_RESERVED) > self.max_tokens:
            raise ValueError(
                f"{len(words)} words + 2 reserved ids exceed max_tokens={self.max_tokens}"
            )
        self._words = words
        self._ids = {word: i for i, word in enumerate(words, start=len(_RESERVED))}

    def fit(self, texts: Iterable[str]) -> WordTokenizer:
        """Build the vocabulary from ``texts``: most frequent words first, ties alphabetical.

        Keeps words seen ``min_count`` times or more, at most ``max_tokens - 2`` of them.
        Replaces any earlier vocabulary. Returns ``self``.
        """
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(self.tokens(text))
        ranked = sorted(
            (word for word, n in counts.items() if n >= self.min_count),
            key=lambda word: (-counts[word], word),
        )
        if self.max_tokens is not None:
            ranked = ranked[: self.max_tokens - len(_RESERVED)]
        self._set_words(ranked)
        return self

    @staticmethod
    def tokens(text: str) -> list[str]:
        """The lower-case words of ``text``, in order."""
        return _WORD.findall(text.lower())

    def __call__(self, text: str) -> np.ndarray:
        """``int32 [T]`` ids of ``text``'s words (1 for words outside the vocabulary)."""
        ids = self._ids
        return np.fromiter((ids.get(w, 1) for w in self.tokens(text)), dtype=np.int32)

    @property
    def vocabulary(self) -> list[str]:
        """Every id's word: ``["", "[UNK]", word_2, word_3, ...]``."""
        return [*_RESERVED, *self._words]

    @property
    def vocabulary_size(self) -> int:
        """Number of ids, the two reserved ones included (an Embedding's ``input_dim``)."""
        return len(_RESERVED) + len(self._words)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The words of ``ids``, padding (0) left out; "[UNK]" for 1. ValueError if unknown."""
        vocabulary = self.vocabulary
        words = []
        for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
            if not 0 <= i < len(vocabulary):
                raise ValueError(f"id {i} is outside the vocabulary (size {len(vocabulary)})")
            if i:
                words.append(vocabulary[i])
        return words

    def get_config(self) -> dict[str, Any]:
        """A JSON-serialisable dict that ``from_config`` turns back into this tokenizer."""
        return {
            "vocabulary": list(self._words),
            "max_tokens": self.max_tokens,
            "min_count": self.min_count,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> WordTokenizer:
        """The tokenizer ``get_config`` described."""
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"WordTokenizer(vocabulary_size={self.vocabulary_size}, "
            f"max_tokens={self.max_tokens}, min_count={self.min_count})"
        )


def pad_sequences(seqs: Sequence[np.ndarray], max_length: int | None = None) -> np.ndarray:
    """Stack id sequences into ``int32 [B, T]``, padded with 0 at the end.

    ``T`` is the longest sequence (at least 1) when ``max_length`` is None, else exactly
    ``max_length``, longer sequences being cut at the end. An empty sequence is all padding.
    """
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be None or >= 1, not {max_length}")
    arrays = [np.asarray(s, dtype=np.int32).reshape(-1) for s in seqs]
    width = max_length or max((len(a) for a in arrays), default=0) or 1
    out = np.zeros((len(arrays), width), dtype=np.int32)
    for row, ids in zip(out, arrays, strict=True):
        kept = ids[:width]
        row[: len(kept)] = kept
    return out
