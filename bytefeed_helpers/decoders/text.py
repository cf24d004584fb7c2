"""Decode text files to ``str``, and a small word tokenizer with a Keras-style vocabulary.

Functions here are thread-safe: they share no mutable state (a ``WordTokenizer`` is only
read while it encodes, so one fitted tokenizer serves every worker thread).
"""

from __future__ import annotations

import codecs
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from ..errors import BadFileError
from ._fileio import DEFAULT_MAX_FILE_MB, check_max_file_mb, check_text_head, read_bytes

__all__ = ["WordTokenizer", "decode_text", "pad_sequences", "text_info"]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

# Byte-order marks, their codecs and the encodings they name, UTF-32 first: its LE mark
# starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16-be"),
)
_NEWLINES = re.compile(r"\r\n?")

# Two charset-normalizer readings closer than this in mess ("chaos") and language fit
# ("coherence") are ones it cannot rank: its own CharsetMatch ordering calls such a pair a
# "difficult decision" (3.x: 0.005 and 0.02) and picks by multi-byte use, not by evidence.
_TIE_CHAOS = 0.005
_TIE_COHERENCE = 0.02
# Below this coherence charset-normalizer names no language (its ``language_threshold``).
_NO_LANGUAGE = 0.1
# Readings that tie and differ only in this share of the bytes or less (the non-ASCII ones)
# differ in a few characters: Czech or Polish text has 7-10% such bytes, English with a
# few quotes and dashes 1-2%.
_FEW_NON_ASCII = 0.02
# Readings other than windows-1252's rest on statistics, so their confidence scales with
# the evidence (``_evidence``): 128 non-ASCII bytes or 400 bytes of text count as enough,
# half of either as the least to decode on. On 345 snippets (12 characters to whole
# paragraphs) of 41 public-domain paragraphs in 35 legacy encodings, charset-normalizer's
# untied pick was wrong for 24 and the confident reading is wrong for 3 (two 25-character
# Polish snippets read as windows-1252, one 100-character Arabic ISO-8859-6 one).
_ENOUGH_NON_ASCII = 128
_ENOUGH_BYTES = 400
_HIGH_BYTES = bytes(range(0x80, 0x100))
# BOM-less UTF-16/32: what charset-normalizer may choose between when the NUL bytes alone
# do not settle the byte order (CJK text in UTF-16 has NULs at both places).
_WIDE = ["utf_16_le", "utf_16_be", "utf_32_le", "utf_32_be"]
# The name reported when several encodings give the same text (charset-normalizer may name
# German cp1252 text "cp1250", EUC-JP "euc_jis_2004"): the common one, as a person would.
_COMMON_NAMES = (
    "cp1252", "iso8859_1", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r",
    "iso8859_5", "cp866", "cp1253", "iso8859_7", "cp1254", "iso8859_9", "cp1255", "iso8859_8",
    "cp1256", "iso8859_6", "cp1257", "iso8859_13", "cp1258", "tis_620", "cp874", "gb2312",
    "gbk", "gb18030", "big5", "shift_jis", "cp932", "euc_jp", "iso2022_jp", "euc_kr", "cp949",
)  # fmt: skip
# Characters no plain text holds: controls other than white space, private-use and
# unassigned code points (a BOM-less UTF-16/32 reading of binary data is full of them).
_WHITESPACE_CONTROLS = frozenset("\t\n\v\f\r")
_NOT_TEXT_CATEGORIES = frozenset({"Cc", "Co", "Cn", "Cs"})
# Symbols and odd numbers (¹ ± ¾ ¤): a non-ASCII one between two letters is mojibake.
_SYMBOLS = frozenset({"No", "Sc", "Sk", "Sm", "So"})


@dataclass(frozen=True)
class _Decoded:
    text: str
    encoding: str  # Python's name for the codec (``codecs.lookup(name).name``)
    confidence: float
    bom: bool
    method: str  # "forced", "bom", "utf-8", "nul-pattern", "detected" or "default"


def decode_text(
    src: Source,
    *,
    encoding: str | None = None,
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB["text"],
) -> str:
    """Decode a text file to ``str`` with "\\n" line ends.

    ``src`` is a path, the file's bytes, or a binary file object. An empty file is ``""`` (a
    valid, empty document). The encoding is found in this order:

    1. a byte-order mark (UTF-8, UTF-16 LE/BE, UTF-32 LE/BE), which is dropped;
    2. strict UTF-8, the fast path most files take: they never pay for detection;
    3. UTF-16/32 without a BOM, from where its NUL bytes stand (Latin-script UTF-16 LE has
       them in every odd byte, UTF-32 in three of four), else by charset-normalizer among
       those four; a file with NUL bytes that is none of them is binary, not text;
    4. charset-normalizer's reading of every other file (Big5, Shift_JIS, EUC-KR, KOI8-R,
       windows-125x, ISO-8859-x, TIS-620, ISO-2022-JP, ...).

    A detected encoding is used only when it is confident, ``text_info``'s ``confidence``
    above 0.5: no reading that gives a *different* text scores as well (within the margins
    charset-normalizer itself cannot rank), and there is enough to go on (a reading other
    than windows-1252's needs more than 64 non-ASCII bytes or 200 bytes of text), and the
    text has no symbol between two letters ("V¹ichni": Czech ISO-8859-2 read as cp1252).
    A file that is not confident is **skipped**, with ``BadFileError("text encoding not
    recognised with confidence (best guess cp1251, 0.32; from only 47 bytes, 41 of them
    non-ASCII); pass encoding=... to force one")`` naming the best guess and its confidence:
    a wrong guess would feed mojibake to the vocabulary without a word. One exception, as
    browsers read unlabelled pages: when the tied readings differ in a few characters only
    (no language shows, or at most 2% of the bytes are non-ASCII: "café" in an English
    text) and windows-1252's is one of them, it is used ("default" in ``text_info``).

    Args:
        src: a path, bytes, a bytearray, a memoryview or a binary file object.
        encoding: force this codec (any name ``codecs.lookup`` knows, e.g. "cp1251");
            None to detect. A leading BOM character is dropped.

    Raises:
        ValueError: ``encoding`` is not the name of a text codec (raised before any read).
        BadFileError: NUL bytes outside UTF-16/32 text or in the decoded text ("holds NUL
            bytes: not text"), a BOM whose encoding the bytes do not follow, bytes that no
            encoding reads as text, a detection that is not confident (above), or bytes the
            forced ``encoding`` does not decode ("not valid cp1251 text: ...").
        FileNotFoundError: ``src`` names no file.

    ``max_file_mb`` (MB of 2**20 bytes; None: no limit; default 64) refuses larger files
    before reading them ("file too large: ..."); a path that is not a regular file is refused
    without reading from it ("not a regular file (fifo)"); a run of 8 NUL bytes in the first
    4 KiB, which no text holds, refuses a file before the rest is read.
    """
    codec = check_encoding(encoding)
    data = read_bytes(src, check_max_file_mb(max_file_mb), check_text_head)
    return _NEWLINES.sub("\n", _decode(data, codec).text)


def text_info(
    src: Source,
    *,
    encoding: str | None = None,
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB["text"],
) -> dict[str, Any]:
    """How ``decode_text`` reads ``src``: ``{"encoding", "confidence", "bom", "bytes",
    "method"}``.

    ``encoding`` is Python's name for the codec used ("utf-8", "cp1251", "utf-16-le", ...,
    valid as ``decode_text(encoding=...)``); ``confidence`` is 1.0 for a BOM, valid UTF-8,
    UTF-16/32 told by its NUL bytes and a forced encoding, and for a detected one
    ``(1 - mess) / k * evidence``: mess is charset-normalizer's chaos of the reading, ``k``
    the number of different texts it cannot rank apart, ``evidence`` 1 for windows-1252's
    reading, UTF-16/32 and ISO-2022, else ``min(1, max(non-ASCII bytes / 128, bytes /
    400))`` (detected files decode when it is above 0.5); ``bom`` whether a byte-order mark
    was found; ``bytes`` the file's size; ``method`` one of "bom", "utf-8", "nul-pattern",
    "detected", "default" (windows-1252 where tied readings differ in a few characters,
    see ``decode_text``) or "forced".

    Reads ``src`` as ``decode_text`` does (``max_file_mb`` the same) and raises what it
    raises for the same arguments: a file it skips has no encoding (the error's reason names
    the best guess and its confidence).
    """
    codec = check_encoding(encoding)
    data = read_bytes(src, check_max_file_mb(max_file_mb), check_text_head)
    got = _decode(data, codec)
    return {
        "encoding": got.encoding,
        "confidence": got.confidence,
        "bom": got.bom,
        "bytes": len(data),
        "method": got.method,
    }


def check_encoding(encoding: Any) -> str | None:
    """Python's name for the text codec ``encoding`` names; None for None (detect)."""
    if encoding is None:
        return None
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ValueError(
            f"encoding must be a codec name Python knows. Received: encoding={encoding!r}"
        ) from None
    try:  # bytes-to-bytes codecs (base64, zlib, hex) decode to bytes, not str
        text_codec = isinstance(codecs.decode(b"", name), str)
    except Exception:  # rot13 and the like cannot decode bytes at all
        text_codec = False
    if not text_codec:
        raise ValueError(
            "encoding must be a text encoding (bytes to str), not a bytes codec. "
            f"Received: encoding={encoding!r}"
        )
    return name


def _decode(data: bytes | bytearray, codec: str | None) -> _Decoded:
    """``data`` decoded by ``codec`` when given, else by the steps of ``decode_text``."""
    if codec is not None:
        got = _decode_forced(data, codec)
    else:
        for bom, bom_codec, name in _BOMS:
            if data.startswith(bom):
                try:
                    text = data.decode(bom_codec)
                except UnicodeDecodeError as exc:
                    family = name.upper().removesuffix("-LE").removesuffix("-BE")
                    raise BadFileError(
                        f"not valid {family} text despite its byte-order mark"
                    ) from exc
                got = _Decoded(text, name, 1.0, True, "bom")
                break
        else:
            got = _decode_unmarked(data)
    if "\x00" in got.text:
        raise BadFileError("holds NUL bytes: not text")
    return got


def _decode_forced(data: bytes | bytearray, codec: str) -> _Decoded:
    try:
        text = codecs.decode(data, codec)
    except UnicodeError as exc:  # UnicodeDecodeError, or idna's and the like's own
        if isinstance(exc, UnicodeDecodeError):
            why = f"{exc.reason} at byte {exc.start}"
        else:
            why = str(exc)
        raise BadFileError(
            f"not valid {codec} text: {why}; pass another encoding=, or None to detect one"
        ) from exc
    # "utf-16" and "utf-32" take their BOM themselves; others leave it as U+FEFF
    bom = text.startswith("\ufeff") or (
        codec in ("utf-16", "utf-32")
        and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    )
    return _Decoded(text.removeprefix("\ufeff"), codec, 1.0, bom, "forced")


def _decode_unmarked(data: bytes | bytearray) -> _Decoded:
    """Bytes without a BOM: UTF-8 if valid, UTF-16/32 if NUL bytes say so, else detected."""
    if b"\x00" in data:  # plain-text encodings never need NUL; UTF-16 and UTF-32 do
        return _decode_wide(data)
    # ISO-2022 text is 7-bit and so valid UTF-8; its escapes (ESC $ ...) tell it apart
    # (ESC alone first: a one-byte search is memchr, ~30x faster than a two-byte one)
    if b"\x1b" not in data or b"\x1b$" not in data:
        try:
            return _Decoded(data.decode("utf-8"), "utf-8", 1.0, False, "utf-8")
        except UnicodeDecodeError:
            pass
    return _detect(data)


def _decode_wide(data: bytes | bytearray) -> _Decoded:
    """BOM-less UTF-32 or UTF-16, or BadFileError: NUL bytes in anything else are binary."""
    if len(data) % 4 == 0:  # UTF-32 is strict: each unit below 0x110000, so rarely a fluke
        for codec in ("utf-32-le", "utf-32-be"):
            text = _strict(data, codec)
            if text is not None and _looks_like_text(text):
                return _Decoded(text, codec, 1.0, False, "nul-pattern")
    if len(data) % 2 == 0:
        # Latin-script (and Cyrillic, Greek, ... with ASCII spaces) UTF-16 has NULs in one
        # half of each unit only: high bytes, odd offsets in LE, even ones in BE
        even, odd = b"\x00" in data[0::2], b"\x00" in data[1::2]
        if even != odd:
            codec = "utf-16-be" if even else "utf-16-le"
            text = _strict(data, codec)
            if text is not None and _looks_like_text(text):
                return _Decoded(text, codec, 1.0, False, "nul-pattern")
        # CJK UTF-16 may have NULs in both halves (U+4E00 is 00 4E): let the detector say
        try:
            return _detect(data, _WIDE)
        except BadFileError:
            pass
    raise BadFileError("holds NUL bytes: not text")


def _strict(data: bytes | bytearray, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _looks_like_text(text: str) -> bool:
    """No control characters but white space, no private-use or unassigned code points."""
    return not any(
        unicodedata.category(ch) in _NOT_TEXT_CATEGORIES and ch not in _WHITESPACE_CONTROLS
        for ch in set(text)
    )


def _detect(data: bytes | bytearray, candidates: list[str] | None = None) -> _Decoded:
    """charset-normalizer's reading of ``data`` when confident (see ``decode_text``)."""
    # imported here: UTF-8 files never need it, and importing it builds large tables
    from charset_normalizer import from_bytes

    matches = from_bytes(bytes(data), cp_isolation=candidates)
    best = matches.best()
    if best is None:
        raise BadFileError("not text in any encoding charset-normalizer knows")
    text = str(best)
    tied = [
        m
        for m in matches
        if m is not best
        and abs(m.chaos - best.chaos) < _TIE_CHAOS
        and abs(m.coherence - best.coherence) <= _TIE_COHERENCE
    ]
    readings, rivals = {text}, []
    for match in tied:  # submatches of one match give its text already; these may differ
        reading = str(match)
        if reading not in readings:
            readings.add(reading)
            rivals.append(_common_name(match))
    western = _strict(data, "cp1252")
    non_ascii = len(data) - len(data.translate(None, _HIGH_BYTES))
    if best.encoding.startswith(("utf_16", "utf_32")) and not _looks_like_text(text):
        # legacy bytes read as 16-bit units: private-use, unassigned and control characters
        raise BadFileError("not text in any encoding charset-normalizer knows")
    if text == western or best.encoding.startswith(("utf_", "iso2022")):
        # windows-1252 is the default; UTF-8/16/32 and ISO-2022 (its escapes) are told by
        # structure, not by statistics
        evidence = 1.0
    else:
        evidence = _evidence(non_ascii, len(data))
    confidence = round((1.0 - best.chaos) / len(readings) * evidence, 2)
    if confidence > 0.5:
        return _no_symbols_in_words(
            _Decoded(text, _common_name(best), confidence, False, "detected")
        )
    if rivals and western in readings and _little_to_go_on(data, non_ascii, (best, *tied)):
        # the readings differ in a few characters no detector can weigh: take windows-1252's
        # when it is one of them, as browsers read unlabelled pages
        return _no_symbols_in_words(_Decoded(western, "cp1252", confidence, False, "default"))
    if rivals:
        more = f" and {len(rivals) - 3} more" if len(rivals) > 3 else ""
        why = f"as likely: {', '.join(rivals[:3])}{more}"
    else:
        why = f"from only {len(data)} bytes, {non_ascii} of them non-ASCII"
    raise BadFileError(
        f"text encoding not recognised with confidence (best guess {_common_name(best)}, "
        f"{confidence:.2f}; {why}); pass encoding=... to force one"
    )


def _evidence(non_ascii: int, size: int) -> float:
    """How much a single-byte or CJK reading has to rest on, 0 to 1: charset-normalizer
    weighs the mess of the non-ASCII characters and the fit of the whole text to a language,
    so whichever of the two counts is nearer its ``_ENOUGH_*`` saturates."""
    return min(1.0, max(non_ascii / _ENOUGH_NON_ASCII, size / _ENOUGH_BYTES))


def _little_to_go_on(data: bytes | bytearray, non_ascii: int, tied: Sequence[Any]) -> bool:
    """Whether readings that tie differ in too little to tell apart: a text too short for
    any language to show (a few accented words), or one whose non-ASCII bytes, the only ones
    the readings can differ in, are too rare to weigh in letter frequencies (an English
    text with one "café")."""
    if all(m.coherence < _NO_LANGUAGE for m in tied):
        return True
    return non_ascii <= _FEW_NON_ASCII * len(data)


def _no_symbols_in_words(got: _Decoded) -> _Decoded:
    """``got``, unless its text has a symbol between two letters ("V¹ichni"): the mark of a
    single-byte encoding read as another (Czech ISO-8859-2 as windows-1252), which the
    mess measure lets through in a long enough text."""
    text = got.text
    symbols = "".join(
        ch for ch in set(text) if ch > "\x7f" and unicodedata.category(ch) in _SYMBOLS
    )
    if symbols:
        found = re.search(f"[^\\W\\d_][{re.escape(symbols)}][^\\W\\d_]", text)
        if found:
            raise BadFileError(
                f"text encoding not recognised with confidence (best guess {got.encoding} "
                f"reads symbols inside words: {found.group()!r}); pass encoding=... to force one"
            )
    return got


def _common_name(match: Any) -> str:
    """Python's name for the most common of the encodings that give ``match``'s text."""
    same_text = match.could_be_from_charset
    name = next((n for n in _COMMON_NAMES if n in same_text), match.encoding)
    return codecs.lookup(name).name


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
