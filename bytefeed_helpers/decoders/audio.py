"""Decode audio files to fixed-length float32 waveforms, and turn waveforms into log-mels.

WAV (8-bit unsigned, 16/24/32-bit int, float), FLAC, OGG/Vorbis and MP3 are read with
libsndfile (``soundfile``), only the frames a clip needs; formats libsndfile cannot open fall
back to ``audioread``. Resampling is soxr's HQ filter. Every bad input raises
:class:`~bytefeed_helpers.errors.BadFileError` with a short reason; a missing file raises
:class:`FileNotFoundError`.

A header's frame count is a claim until the audio decodes: every window of a file is placed
in the frames the whole file holds (found once per file, see ``_held_frames``), so a file gets
the same clip length and verdict whatever crop is asked for, in ``Manifest.validate`` and in
every epoch. An MP3's or Ogg's count is an estimate, and the file holds what decodes; a WAV's
data size and a FLAC's sample count are exact, and a file that ends before them is cut.

Functions here are thread-safe: the only state they share is that per-file memo, a
lock-guarded dict. librosa (slow to import) is imported only when ``logmel`` is first called.
"""

from __future__ import annotations

import io
import math
import os
import struct
import threading
from typing import IO, Any

import numpy as np
import soundfile as sf

from .. import stages
from ..errors import BadFileError
from ..options import Crop, check_choice, choices
from ._fileio import (
    DEFAULT_MAX_FILE_MB,
    check_max_file_mb,
    file_too_large,
    open_checked,
    open_regular,
    read_at,
)
from ._resample import QUALITY, check_quality, resample
from ._scratch import scratch

__all__ = ["AUDIO_FORMATS", "audio_info", "decode_audio", "logmel"]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

#: Formats ``decode_audio`` reads through libsndfile, by ``audio_info``'s format names
#: (MP3 needs libsndfile >= 1.1).
AUDIO_FORMATS: tuple[str, ...] = tuple(
    fmt for fmt in ("WAV", "WAVEX", "FLAC", "OGG", "MP3", "AIFF") if fmt in sf.available_formats()
)

CROPS: tuple[str, ...] = choices(Crop)
# soxr's HQ filter spreads an impulse over ~90 output samples (~100 input samples when
# upsampling): read this many extra source frames around a window, so its edges are filtered
# from real neighbours rather than from zeros, then trim them off.
_FILTER_MARGIN = 128
# How a format's frame count relates to the audio it holds (see ``_length_kind``).
# Lossy streams carry no exact count: an MP3's is a Xing/Info header's (often left wrong by
# editors and cut downloads) or, without one, a guess from the bitrate and file size; an Ogg's
# is its last page's position. Their audio is what decodes.
_MPEG_SUBTYPES = ("MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III")
_ESTIMATED_SUBTYPES = frozenset({*_MPEG_SUBTYPES, "VORBIS", "OPUS"})
# FLAC's STREAMINFO and ALAC's packet table state the count exactly, written by the encoder
# after the last sample: a file that ends before it is cut (as a WAV shorter than its data
# chunk). Every other format's count libsndfile derives from the data's size, capped by the
# file's size, so it is what the file holds.
_EXACT_FORMATS = frozenset({"FLAC"})
_EXACT_SUBTYPES = frozenset({"ALAC_16", "ALAC_20", "ALAC_24", "ALAC_32"})
# Frames are read this many samples (frames x channels) at a time wherever the count comes
# from a header rather than from the file's size: a header's claim (FLAC's 36-bit count, an
# MP3's Xing count) never sizes an allocation.
_READ_BLOCK = 1 << 20
# An MP3 frame's audio depends on earlier frames (the bit reservoir reaches up to 511 bytes
# back, six of the smallest MPEG-1 frames, plus one frame of filter overlap): mpg123 decodes
# the first frames after a seek without them, so a window read right after one can start
# with a frame of wrong samples (measured: 12 of 40 random windows of a 24 kHz file, off by
# up to 0.12). Decoding from 8 frames of 1152 samples earlier gives exactly the samples a
# read from the start gives (tested); it costs ~0.1 ms on a 1 s crop of 44.1 kHz stereo.
_PREROLL = dict.fromkeys(_MPEG_SUBTYPES, 8 * 1152)
# What the whole of a file says, found once per file and reused by every later window: the
# frames a header-claimed file holds (``_held_frames``) and whether a float file is finite
# (``_check_finite_elsewhere``), or the reason it is bad. Keyed by what the file is (device,
# inode, size, modification time: a rewritten file is judged afresh); paths only (bytes have
# no identity to key on). Bounded: past ``_JUDGED_MAX`` files the oldest are judged again.
_JUDGED: dict[tuple[Any, ...], tuple[int, str | None]] = {}
_JUDGED_MAX = 1 << 16
_JUDGED_LOCK = threading.Lock()


def decode_audio(
    src: Source,
    sample_rate: int | None = 16000,
    duration: float | None = 1.0,
    *,
    crop: str = "start",
    rng: np.random.Generator | None = None,
    mono: bool = True,
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB["audio"],
    resample_quality: str = QUALITY,
) -> np.ndarray:
    """Decode one clip to ``float32 [N]`` (``[N, channels]`` with ``mono=False``), in [-1, 1].

    Args:
        src: a path, the file's bytes, or a binary file object.
        sample_rate: output rate in Hz (soxr HQ resampling); None keeps the file's rate.
        duration: clip length in seconds: ``N = round(rate * duration)`` with ``rate`` the
            output rate; shorter files are zero-padded at the end. None keeps the whole file.
        crop: which ``duration`` of a longer file: "start", "center", or "random" (uniform
            over every start that fits, drawn from ``rng``, which it requires).
        rng: random generator for ``crop="random"``.
        mono: average the channels (True) or keep them as the last axis (False).
        max_file_mb: refuse larger files (MB of 2**20 bytes; None: no limit) before reading
            them. The default, 2048, is the largest WAV most tools write.
        resample_quality: soxr's filter when the file's rate is not ``sample_rate``: "QQ",
            "LQ", "MQ", "HQ" (the default, librosa's) or "VHQ"; speeds and errors against HQ
            are in ``decoders._resample``.

    Only the frames the clip needs are read (plus a small margin for the resampling filter,
    and 8 MPEG frames before an MP3 window), except once per file (remembered per path): the
    end of a file whose length is a header's claim (MP3, Ogg, FLAC) is probed, and a float
    file is scanned for NaN/Inf, so the clip's length and verdict do not depend on the window.
    A path is opened only if it is a regular file: a FIFO, socket, device or directory is
    refused before libsndfile sees it (libsndfile would wait forever on a FIFO).

    Raises:
        BadFileError: empty file, unreadable or cut header, no samples, a WAV or FLAC file
            that ends before its header says (an MP3's or Ogg's length is an estimate: such a
            file holds what decodes), or non-finite samples (NaN/Inf, possible in float
            files) anywhere in the file, whichever window is asked for; a file
            over ``max_file_mb`` ("file too large: ..."), or a path that is not a regular
            file ("not a regular file (fifo)", a ``NotRegularFileError``).
        FileNotFoundError: ``src`` names no file.
        ValueError: an argument outside the allowed values, or ``crop="random"`` without rng.
    """
    check_audio_settings(sample_rate, duration, crop)
    check_quality(resample_quality)
    max_bytes = check_max_file_mb(max_file_mb)
    return decode_checked(
        src,
        rng,
        sample_rate=sample_rate,
        duration=duration,
        crop=crop,
        mono=mono,
        max_bytes=max_bytes,
        quality=resample_quality,
    )


def decode_checked(
    src: Source,
    rng: np.random.Generator | None = None,
    *,
    sample_rate: int | None,
    duration: float | None,
    crop: str,
    mono: bool = True,
    max_bytes: int | None,
    quality: str = QUALITY,
) -> np.ndarray:
    """``decode_audio`` with settings already checked (``check_audio_settings``,
    ``check_quality``, ``check_max_file_mb``): what a stream calls for every file, so those
    checks run once per stream, not once per clip."""
    if crop == "random" and rng is None:
        raise ValueError("crop='random' needs rng (a numpy.random.Generator)")
    clip = _decode_pcm16_wav(src, sample_rate, duration, crop, rng, mono, max_bytes, quality)
    if clip is not None:
        return clip
    source = _source(src, max_bytes)  # a path: a checked descriptor, which fh then owns
    if not isinstance(source, int):  # a path's WAV header was checked on the WAV route
        _check_wav_source(source)
    try:
        fh = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError) as exc:
        return _decode_fallback(src, exc, sample_rate, duration, crop, rng, mono, quality)
    with fh:
        in_rate, claimed, kind = _checked_rate(fh.samplerate), fh.frames, _length_kind(fh)
        if claimed <= 0:
            raise BadFileError("audio has no samples")
        out_rate = sample_rate or in_rate
        length = None if duration is None else round(out_rate * duration)
        # The window is placed in the frames the file holds, found from the whole file (not
        # from this window), so every window of a file gets the same verdict and length. A
        # clip that takes every frame finds them by reading them.
        key = _file_key(source, claimed)
        whole = length is None or math.ceil(length * in_rate / out_rate) >= claimed
        frames = claimed if whole or kind == "size" else _held_frames(fh, claimed, kind, key)
        first, count, lead = _span(frames, in_rate, out_rate, length, crop, rng)
        samples, failure = _read(fh, first, count)
        if failure is not None and whole and kind == "estimate":
            # decoding stopped early (damage, a change of format mid-stream): the audio ends
            # where it stops, which is where _held_frames finds the end for any other window
            frames, whole = _held_frames(fh, claimed, kind, key), False
            first, count, lead = _span(frames, in_rate, out_rate, length, crop, rng)
            samples, failure = _read(fh, first, count)
        if failure is not None or len(samples) < count:
            _check_short_read(fh, kind, whole, claimed, first, count, len(samples), failure)
        _check_finite_elsewhere(fh, first, len(samples), key)
    return _finish(samples, in_rate, out_rate, length, lead, mono, quality=quality)


def audio_info(
    src: Source, *, max_file_mb: float | None = DEFAULT_MAX_FILE_MB["audio"]
) -> dict[str, Any]:
    """Sample rate, channels, frames, duration (s), format and subtype.

    ``frames`` is what ``decode_audio(src, None, None)`` returns: the header's count where the
    file holds it, checked against the file's end (one seek and a one-frame read) where the
    count is only a header's claim; an MP3 or Ogg file that ends before its claim reports the
    frames that decode (found by bisection), as ``decode_audio`` reads them.

    Raises BadFileError for an empty or unreadable file, a WAV or FLAC file that ends before
    its header says (the reason ``decode_audio`` gives), a path that is not a regular file,
    or one over ``max_file_mb`` (as ``decode_audio``), FileNotFoundError for a missing one.
    """
    return info_checked(src, check_max_file_mb(max_file_mb))


def info_checked(src: Source, max_bytes: int | None) -> dict[str, Any]:
    """``audio_info`` with the byte limit already checked (a stream's per-file call)."""
    source = _source(src, max_bytes)
    try:
        _check_wav_source(source)  # before libsndfile moves a file object on
    except BadFileError:
        if isinstance(source, int):
            os.close(source)
        raise
    try:
        fh = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise BadFileError(f"not a readable audio file: {_sf_reason(exc)}") from exc
    with fh:
        rate, frames, kind = _checked_rate(fh.samplerate), fh.frames, _length_kind(fh)
        if frames > 0 and kind != "size":
            frames = _held_frames(fh, frames, kind, _file_key(source, frames))
        return {
            "samplerate": rate,
            "channels": fh.channels,
            "frames": max(frames, 0),
            "duration": max(frames, 0) / rate,
            "format": fh.format,
            "subtype": fh.subtype,
        }


def logmel(
    x: np.ndarray,
    sample_rate: int = 16000,
    *,
    n_mels: int = 64,
    n_fft: int = 512,
    hop_length: int = 160,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Log-mel spectrogram(s) in dB, time first: ``[frames, n_mels]`` or ``[B, frames, n_mels]``.

    ``x`` is a waveform ``[N]`` or a batch ``[B, N]`` (computed in one vectorised librosa call);
    ``frames = 1 + N // hop_length`` (centred frames). Power is converted with
    ``librosa.power_to_db(ref=1.0, amin=1e-10)``; ``top_db`` then floors each clip at its own
    peak minus ``top_db`` (None: no floor). Returns C-contiguous float32.
    """
    import librosa  # slow to import (numba): only when log-mels are asked for

    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be a waveform [N] or a batch [B, N], not shape {x.shape}")
    power = librosa.feature.melspectrogram(
        y=x,
        sr=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        center=True,
        power=2.0,
    )  # [..., n_mels, frames]
    db = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    if top_db is not None:  # per clip: power_to_db's own top_db would use the batch's peak
        db = np.maximum(db, db.max(axis=(-2, -1), keepdims=True) - top_db)
    return np.ascontiguousarray(np.swapaxes(db, -1, -2), dtype=np.float32)


# ---------------------------------------------------------------------------------------------


def check_audio_settings(sample_rate: int | None, duration: float | None, crop: str) -> None:
    """A Keras-style ValueError naming the argument for any value outside the allowed ones.
    Streams call this once when they are built, so a wrong setting never reaches a file."""
    if sample_rate is not None and not (
        isinstance(sample_rate, int | np.integer)
        and not isinstance(sample_rate, bool)
        and sample_rate > 0
    ):
        raise ValueError(
            f"sample_rate must be an int > 0 (Hz) or None. Received: sample_rate={sample_rate!r}"
        )
    if duration is not None and not (
        isinstance(duration, int | float | np.integer | np.floating)
        and not isinstance(duration, bool)
        and math.isfinite(duration)
        and duration > 0
    ):
        raise ValueError(
            f"duration must be a number of seconds > 0 or None. Received: duration={duration!r}"
        )
    check_choice("crop", crop, Crop)


def _source(src: Source, max_bytes: int | None = None) -> int | IO[bytes]:
    """What ``soundfile`` opens for ``src``: a file object, or for a path a descriptor that
    ``sf.SoundFile`` takes over (it closes it when closed, and when it fails to open).

    BadFileError if empty or over ``max_bytes``; for a path, also if it is not a regular
    file (``open_regular``: never a FIFO, which libsndfile would wait on forever), and
    FileNotFoundError if absent. Paths are opened here because libsndfile reports a missing
    file, a folder or a permission problem as a generic error; Python raises the precise one.
    """
    if isinstance(src, bytes | bytearray | memoryview):
        if len(src) == 0:
            raise BadFileError("empty file")
        if max_bytes is not None and len(src) > max_bytes:
            raise file_too_large(len(src), max_bytes)
        return io.BytesIO(src)
    if not isinstance(src, str | os.PathLike):  # a binary file object
        left = _bytes_left(src)
        if left == 0:
            raise BadFileError("empty file")
        if max_bytes is not None and left is not None and left > max_bytes:
            raise file_too_large(left, max_bytes)
        return src
    fd, size = open_regular(src, max_bytes)
    if size == 0:
        os.close(fd)
        raise BadFileError("empty file")
    return fd  # libsndfile reads a descriptor natively, without calling back into Python


def _bytes_left(fh: IO[bytes]) -> int | None:
    """The bytes a seekable stream has left; None for unseekable ones (not judged here)."""
    if not (hasattr(fh, "seekable") and fh.seekable()):
        return None
    here = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(here)
    return end - here


# libsndfile's "File does not exist or is not a regular file (possibly a pipe?)": what it
# says when its MPEG decoder finds no audio it can decode, in a file or in bytes alike.
_SF_BAD_FILE = 7


def _sf_reason(exc: BaseException) -> str:
    """libsndfile's own words, without soundfile's "Error opening <object repr>:" prefix.

    Only checked regular files and bytes reach libsndfile here, so its guess that a file is
    missing or a pipe is never the reason: the content is what it cannot read.
    """
    if getattr(exc, "code", None) == _SF_BAD_FILE:
        return "Format not recognised"
    reason = getattr(exc, "error_string", None) or str(exc)
    return reason.strip().rstrip(".")


def _window(
    frames: int,
    in_rate: int,
    out_rate: int,
    length: int | None,
    crop: str,
    rng: np.random.Generator | None,
) -> tuple[int, int]:
    """``(start, count)`` in source frames holding the ``length`` output samples to keep."""
    if length is None:
        return 0, frames
    count = min(frames, math.ceil(length * in_rate / out_rate))
    spare = frames - count
    if crop == "center":
        return spare // 2, count
    if crop == "random":
        assert rng is not None  # decode_audio's check: crop="random" comes with an rng
        return int(rng.integers(0, spare + 1)), count
    return 0, count


def _span(
    frames: int,
    in_rate: int,
    out_rate: int,
    length: int | None,
    crop: str,
    rng: np.random.Generator | None,
) -> tuple[int, int, int]:
    """``(first, count, lead)``: the source frames to read for a clip of ``frames``, with the
    filter's margins; the first ``lead`` of them lie before the window."""
    start, count = _window(frames, in_rate, out_rate, length, crop, rng)
    lead, margin = _margins(start, in_rate, out_rate)
    return start - lead, min(frames - start + lead, lead + count + margin), lead


def _margins(start: int, in_rate: int, out_rate: int) -> tuple[int, int]:
    """Source frames to read before and after a window for the resampling filter.

    The margin is rounded up to a whole number of output samples when the rates allow (441
    frames = 160 samples for 44.1 -> 16 kHz), so trimming it after resampling is exact and a
    crop equals the same cut of the whole file resampled.
    """
    if in_rate == out_rate:
        return 0, 0
    margin = math.ceil(_FILTER_MARGIN * max(1.0, in_rate / out_rate))
    step = in_rate // math.gcd(in_rate, out_rate)
    if step <= 4 * margin:
        margin = math.ceil(margin / step) * step
    return min(margin, start), margin


def _decode_pcm16_wav(
    source: Any,
    sample_rate: int | None,
    duration: float | None,
    crop: str,
    rng: np.random.Generator | None,
    mono: bool,
    max_bytes: int | None = None,
    quality: str = QUALITY,
) -> np.ndarray | None:
    """The common case, a 16-bit PCM WAV file, read with one ``read`` of its first bytes.

    Opening a file through libsndfile costs about four times what the whole read costs here,
    and short clips are mostly opening; the standard library's ``wave`` reads a header in a
    dozen small reads, each a hand-off of the GIL between decoding threads (see ``fileio``).
    Anything else (other sample formats, extensible headers, headers libsndfile refuses, file
    objects) returns None, with ``rng`` as it was, for libsndfile to read exactly as before.
    A data chunk claiming more than the file holds raises BadFileError (a cut file), unless its
    size is one recorders write before they know the length: then the frames are what the
    file holds, never the claim (2**32 - 1 bytes would otherwise be read as 4 GiB).
    An empty file raises BadFileError, as do a path that is not a regular file and a file
    over ``max_bytes`` (``open_checked``); a missing one FileNotFoundError.
    """
    if not isinstance(source, str | os.PathLike):
        return None
    state = None if rng is None else rng.bit_generator.state
    with open_checked(source, max_bytes) as (fd, held):
        # no more than the file holds: a read of 256 KiB for an 88 KiB clip allocates (and
        # maps) 256 KiB and reads twice; two threads doing so ran at half one thread's rate
        head = read_at(fd, min(_WAV_HEAD, held) if held else _WAV_HEAD, 0)
        if not head:
            raise BadFileError("empty file")
        layout = _wav_layout(head)
        if layout is None:
            return None
        tag, channels, in_rate, bits, data_at, data_bytes = layout
        _check_wav_whole(held, data_at, data_bytes)
        if tag != _WAVE_FORMAT_PCM or bits != 16 or not 1 <= channels <= _SF_MAX_CHANNELS:
            return None
        if not 1 <= in_rate <= _SF_MAX_RATE:
            return None  # libsndfile refuses the header, with its own words
        # a data size of "unknown" (up to 2**32 - 1 bytes) holds what the file holds
        frames = min(data_bytes, max(0, held - data_at)) // (2 * channels)
        out_rate = sample_rate or in_rate
        length = None if duration is None else round(out_rate * duration)
        first, count_read, lead = _span(frames, in_rate, out_rate, length, crop, rng)
        first, size = data_at + first * 2 * channels, count_read * 2 * channels
        if first + size <= len(head):  # a short clip: already read
            data: bytes | memoryview = memoryview(head)[first : first + size]
        else:
            data = read_at(fd, size, first)
    if len(data) != size or frames <= 0:
        if state is not None and rng is not None:
            rng.bit_generator.state = state  # libsndfile draws the same crop again
        return None
    ints = np.frombuffer(data, "<i2").reshape(-1, channels)
    if length is None and in_rate == out_rate:  # the whole file: _finish returns these samples
        samples = ints.astype(np.float32)
        samples *= np.float32(_PCM16_SCALE)
        return _finish(samples, in_rate, out_rate, length, lead, mono, from_ints=True)
    # a temporary: _finish resamples it or scales it into a new array. The 2**-15 comes last,
    # on the output's samples (fewer than the file's when resampling): scaling by a power of
    # two is exact, so the result is bit-identical to scaling first, one pass over the file's
    # samples fewer (tested)
    samples = scratch(ints.size * 4, "wav").view(np.float32).reshape(ints.shape)
    np.copyto(samples, ints)
    return _finish(
        samples, in_rate, out_rate, length, lead, mono, scale=_PCM16_SCALE, quality=quality
    )


# 16-bit samples to [-1, 1): what libsndfile divides by
_PCM16_SCALE = 2.0**-15
# The first read of a WAV: its header and, for clips up to ~1.4 s of 48 kHz stereo, the data.
_WAV_HEAD = 1 << 18
_RIFF = struct.Struct("<4sI4s")
_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")  # format tag, channels, rate, bytes/s, block align, bits
_WAVE_FORMAT_PCM = 1
# Data sizes that recorders write before they know the length (and never fix if killed):
# such files hold as much as they hold.
_WAV_SIZE_UNKNOWN = 0x7FFFF000
# What libsndfile accepts in a header (SF_MAX_CHANNELS, a positive C int): the WAV route
# declines the rest, so a file gets libsndfile's verdict whichever route reads it.
_SF_MAX_CHANNELS = 1024
_SF_MAX_RATE = 2**31 - 1


def _wav_layout(head: bytes | memoryview) -> tuple[int, int, int, int, int, int] | None:
    """``(format tag, channels, rate, bits, data offset, data bytes)`` of a WAV whose chunks up
    to ``data`` lie in ``head``; None when they do not, or it is no WAV (libsndfile's case)."""
    try:
        riff, _, wave_id = _RIFF.unpack_from(head, 0)
        if riff != b"RIFF" or wave_id != b"WAVE":
            return None
        pos, fmt = 12, None
        while True:
            kind, size = _CHUNK.unpack_from(head, pos)
            body = pos + 8
            if kind == b"fmt " and size >= _FMT.size:
                tag, channels, rate, _, _, bits = _FMT.unpack_from(head, body)
                fmt = (tag, channels, rate, bits)
            elif kind == b"data":
                break
            pos = body + size + (size & 1)  # chunks are padded to an even length
    except struct.error:  # the header runs past what was read, or is cut
        return None
    return None if fmt is None else (*fmt, body, size)


def _check_wav_source(source: int | IO[bytes]) -> None:
    """``_check_wav_whole`` for a WAV that libsndfile reads (``source``: a path's descriptor,
    read with ``pread``, which leaves libsndfile's position alone; or a file object, read
    from where it stands and put back), so bytes and packed records get a path's verdict."""
    if isinstance(source, int):
        head: bytes | memoryview = read_at(source, _WAV_HEAD, 0)
        held = os.fstat(source).st_size
    elif isinstance(source, io.BytesIO):  # bytes, and what packed sources hand out: no copy
        with source.getbuffer() as buffer:
            view = buffer[source.tell() :]
            layout, held = _wav_layout(view[:_WAV_HEAD]), len(view)
            view.release()
        if layout is not None:
            _check_wav_whole(held, layout[4], layout[5])
        return
    else:
        left = _bytes_left(source)
        if left is None:
            return  # an unseekable stream: nothing can be read twice
        here = source.tell()
        head = source.read(_WAV_HEAD)
        source.seek(here)
        held = left
    layout = _wav_layout(head)
    if layout is not None:
        _check_wav_whole(held, layout[4], layout[5])


def _check_wav_whole(held: int, data_at: int, data_bytes: int) -> None:
    """BadFileError when a WAV's data chunk claims more bytes than the file's ``held`` bytes
    hold: a cut file, whose missing end libsndfile would silently read as nothing (then
    zero-padded). Sizes recorders write before they know the length are not judged."""
    if data_bytes == 0 or data_bytes >= _WAV_SIZE_UNKNOWN:
        return
    if data_at + data_bytes > held:
        raise BadFileError(
            f"truncated audio data: the WAV header says {data_bytes} data bytes, "
            f"the file holds {max(0, held - data_at)}"
        )


# libsndfile converts integer PCM to float32 several times slower than reading the integers;
# scaling them here by the same power of two gives the very same float32 values.
_INTEGER_READS = {
    "PCM_S8": ("int16", 2.0**-15),
    "PCM_U8": ("int16", 2.0**-15),
    "PCM_16": ("int16", 2.0**-15),
    "PCM_24": ("int32", 2.0**-31),
    "PCM_32": ("int32", 2.0**-31),
}


def _read(fh: sf.SoundFile, start: int, count: int) -> tuple[np.ndarray, str | None]:
    """Up to ``count`` frames from ``start`` as float32 ``[n, channels]``, and why it stopped
    short (libsndfile's reason) or None.

    Fewer than ``count`` frames come back, with None, where the audio ends first. Long reads
    go in blocks of ``_READ_BLOCK`` samples, so memory follows the frames that decode, never
    a header's count; a failing block keeps the blocks before it. Each block of MPEG audio
    is decoded from ``_PREROLL`` frames before it (dropped again): soundfile seeks after
    every read, and mpg123 restarts there as after any seek. So a window, and a long read
    block by block, hold the very samples one read from the file's start gives.
    """
    dtype, scale = _INTEGER_READS.get(fh.subtype, ("float32", None))
    step = max(1, _READ_BLOCK // fh.channels)
    preroll = _PREROLL.get(fh.subtype, 0)
    blocks: list[np.ndarray] = []
    got, failure = 0, None
    try:
        while got < count:
            skip = min(start + got, preroll)
            if got == 0 or skip:
                _seek(fh, start + got - skip)
            want = min(step, count - got) + skip
            block = fh.read(want, dtype=dtype, always_2d=True)
            ended = len(block) < want
            block = block[skip:]
            blocks.append(block)
            got += len(block)
            if ended:
                break  # the audio ends here
    except (sf.LibsndfileError, RuntimeError) as exc:
        failure = _sf_reason(exc)
    if not blocks:
        samples = np.zeros((0, fh.channels), dtype)
    else:
        samples = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
    if scale is not None:
        samples = samples.astype(np.float32)
        samples *= np.float32(scale)
    return samples, failure


def _seek(fh: sf.SoundFile, frame: int) -> None:
    """Move to ``frame``; in a stream libsndfile cannot seek (GSM 6.10 WAVs) by reading up to
    it from the start, where such a file stands after opening (it is never probed)."""
    if fh.seekable():
        fh.seek(frame)
        return
    step = max(1, _READ_BLOCK // fh.channels)
    while frame > 0:
        skipped = len(fh.read(min(step, frame), dtype="int16", always_2d=True))
        if skipped == 0:
            return  # past the end: the read that follows gets nothing
        frame -= skipped


def _length_kind(fh: sf.SoundFile) -> str:
    """How ``fh.frames`` relates to the audio: "size" (libsndfile derived it from the data's
    size, capped by the file's: exact), "exact" (FLAC and ALAC headers state it; a file that
    ends before it is cut) or "estimate" (MP3 and Ogg: what decodes is the audio)."""
    if fh.subtype in _ESTIMATED_SUBTYPES:
        return "estimate"
    if fh.format in _EXACT_FORMATS or fh.subtype in _EXACT_SUBTYPES:
        return "exact"
    return "size"


def _held_frames(
    fh: sf.SoundFile, claimed: int, kind: str, key: tuple[Any, ...] | None = None
) -> int:
    """The frames of a file whose header claims ``claimed``, found from its end, so that any
    window of it gets the verdict a read of the whole file gets.

    The claim stands when its last frame decodes (one seek and a one-frame read; libsndfile's
    MP3 seeks land on the frame asked for). Otherwise an exact claim means a cut file (BadFileError) and
    an estimated one is bisected to the last frame that decodes: about ``log2(claimed)`` such
    probes, which find what a read from the start until the audio ends finds. Found once per
    file of ``key`` (``_file_key``), then remembered.
    """
    return _judged(key, lambda: _find_held_frames(fh, claimed, kind))


def _find_held_frames(fh: sf.SoundFile, claimed: int, kind: str) -> int:
    if not fh.seekable() or _decodes_at(fh, claimed - 1):
        return claimed
    if kind == "exact":
        raise BadFileError(_cut_reason(fh, claimed))
    if not _decodes_at(fh, 0):
        raise BadFileError("audio has no samples")
    lo, hi = 0, claimed - 1  # frame lo decodes, frame hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _decodes_at(fh, mid):
            lo = mid
        else:
            hi = mid
    return lo + 1


def _file_key(source: int | IO[bytes], claimed: int) -> tuple[Any, ...] | None:
    """What identifies the file behind a path's descriptor ``source`` (with its header's
    ``claimed`` frames) for ``_JUDGED``; None for bytes and file objects."""
    if not isinstance(source, int):
        return None
    st = os.fstat(source)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, claimed)


def _judged(key: tuple[Any, ...] | None, judge: Any) -> int:
    """``judge()``'s frames, or its BadFileError, remembered under ``key`` (None: not kept)."""
    known = None if key is None else _JUDGED.get(key)
    if known is None:
        try:
            known = (judge(), None)
        except BadFileError as exc:
            known = (0, exc.reason)
        if key is not None:
            with _JUDGED_LOCK:
                while len(_JUDGED) >= _JUDGED_MAX:
                    del _JUDGED[next(iter(_JUDGED))]
                _JUDGED[key] = known
    frames, reason = known
    if reason is not None:
        raise BadFileError(reason)
    return frames


def _decodes_at(fh: sf.SoundFile, frame: int) -> bool:
    """Whether the frame at ``frame`` decodes (a seek and a one-frame read)."""
    try:
        fh.seek(frame)
        return len(fh.read(1, dtype="float32", always_2d=True)) == 1
    except (sf.LibsndfileError, RuntimeError):
        return False


def _cut_reason(fh: sf.SoundFile, claimed: int) -> str:
    return (
        f"truncated or corrupt audio data: the {fh.format} header says {claimed} frames, "
        "the audio ends before them"
    )


def _check_short_read(
    fh: sf.SoundFile,
    kind: str,
    whole: bool,
    claimed: int,
    start: int,
    count: int,
    got: int,
    failure: str | None,
) -> None:
    """Judge a read of ``count`` frames from ``start`` that got ``got`` or failed (``failure``).

    A read of the whole file finds where its audio ends: short of an exact claim, the file is
    cut (the words ``_held_frames`` uses, so every window gets them); an estimated claim's
    audio ends there (the clip is what decoded, zero-padded like any short clip), unless
    nothing decoded. Anything else is damage inside the audio.
    """
    if whole and kind == "exact":
        raise BadFileError(_cut_reason(fh, claimed))
    if kind == "estimate" and failure is None:
        if got:
            return
        raise BadFileError("audio has no samples")
    detail = failure or f"frames {start + got} to {start + count} do not decode"
    raise BadFileError(f"truncated or corrupt audio data: {detail}")


def _check_finite_elsewhere(
    fh: sf.SoundFile, start: int, count: int, key: tuple[Any, ...] | None = None
) -> None:
    """BadFileError if a float file holds NaN or Inf anywhere, not only in the ``count``
    frames read from ``start`` (``_finish`` checks those), so that no window of it passes
    where another fails.

    Only float subtypes can hold them; their frames are the file's size (no header claim).
    A file read whole needs nothing more. Otherwise the file is read in blocks through one
    buffer (memory stays at one block), once per file of ``key``: the verdict is remembered.
    """
    if fh.subtype not in ("FLOAT", "DOUBLE") or (start == 0 and count >= fh.frames):
        return
    _judged(None if key is None else ("finite", *key), lambda: _scan_finite(fh))


def _scan_finite(fh: sf.SoundFile) -> int:
    """``fh.frames`` if every sample is finite, else BadFileError."""
    step = max(1, _READ_BLOCK // fh.channels)
    buf = np.empty((min(step, fh.frames), fh.channels), np.float32)
    done = 0
    try:
        _seek(fh, 0)
        while done < fh.frames:
            block = fh.read(out=buf[: min(step, fh.frames - done)])
            if len(block) == 0:
                break
            if not np.isfinite(block).all():
                raise BadFileError("audio contains non-finite samples (NaN or Inf)")
            done += len(block)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise BadFileError(f"truncated or corrupt audio data: {_sf_reason(exc)}") from exc
    return fh.frames


def _checked_rate(rate: int) -> int:
    """``rate`` if it is a sample rate (libsndfile takes any int from 1 Hz), else BadFileError."""
    if rate < 1:
        raise BadFileError(f"invalid sample rate in the header: {rate}")
    return rate


def _finish(
    samples: np.ndarray,
    in_rate: int,
    out_rate: int,
    length: int | None,
    lead: int,
    mono: bool,
    *,
    from_ints: bool = False,
    scale: float | None = None,
    quality: str = QUALITY,
) -> np.ndarray:
    """Check, mix, resample (soxr filter ``quality``), trim the filter margin and crop/pad
    ``samples`` to ``length``; a new array unless ``samples`` (kept as they are) is returned.

    ``from_ints``: the samples were converted from integers, so they are finite already.
    ``scale``: integer samples still to be scaled to [-1, 1) by this power of two (which
    implies ``from_ints``); the result is always a new array then.
    """
    from_ints = from_ints or scale is not None
    if not from_ints and not np.isfinite(samples).all():
        raise BadFileError("audio contains non-finite samples (NaN or Inf)")
    if mono:  # a one-channel file needs no mixing (a mean over axis 1 costs a reduction per row)
        samples = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    if in_rate != out_rate:
        started = stages.start()
        samples = resample(samples, in_rate, out_rate, quality)
        stages.done("resize", started)
    skip = round(lead * out_rate / in_rate)
    if length is None:
        if len(samples) <= skip:  # a header's absurd rate: not one sample at out_rate (a
            # fixed-length clip is zero-padded instead, as validate, which keeps the file's
            # rate, cannot see this)
            raise BadFileError(f"audio has no samples at {out_rate} Hz (the file says {in_rate})")
        if scale is None:
            return np.ascontiguousarray(samples[skip:], dtype=np.float32)
        return np.multiply(samples[skip:], np.float32(scale), dtype=np.float32)
    out = np.empty((length, *samples.shape[1:]), dtype=np.float32)
    kept = samples[skip : skip + length]
    if scale is None:
        out[: len(kept)] = kept
    else:
        np.multiply(kept, np.float32(scale), out=out[: len(kept)])
    out[len(kept) :] = 0.0  # zero-padded to length
    return out


def _audioread_backends() -> list[type]:
    """audioread's codec backends (librosa's own fallback), imported only when needed.

    Its standard-library reader (wave, aifc, sunau) is left out: libsndfile reads all of those
    formats already, and that reader leaks its file handle on a cut header.
    """
    import audioread
    from audioread.rawread import RawAudioFile

    return [b for b in audioread.available_backends() if b is not RawAudioFile]


def _decode_fallback(
    src: Source,
    sf_error: BaseException,
    sample_rate: int | None,
    duration: float | None,
    crop: str,
    rng: np.random.Generator | None,
    mono: bool,
    quality: str = QUALITY,
) -> np.ndarray:
    """Decode a file libsndfile cannot open with ``audioread`` (FFmpeg, GStreamer, ...).

    audioread reads whole files by path only, so bytes and file objects, and files no codec
    backend reads either, end as BadFileError with libsndfile's reason.
    """
    reason = f"not a readable audio file: {_sf_reason(sf_error)}"
    # a path gets here only after _source found it a regular file (FFmpeg waits on FIFOs too)
    backends = [] if not isinstance(src, str | os.PathLike) else _audioread_backends()
    if not backends or not isinstance(src, str | os.PathLike):  # audioread reads paths only
        raise BadFileError(reason) from sf_error
    import audioread

    try:
        with audioread.audio_open(os.fspath(src), backends=backends) as fh:
            in_rate, channels = fh.samplerate, fh.channels
            pcm = b"".join(fh)  # 16-bit signed little-endian, interleaved
    except Exception as exc:  # audioread's backends raise many types; none may escape raw
        raise BadFileError(reason) from exc
    if channels < 1:
        raise BadFileError(f"invalid channel count in the header: {channels}")
    in_rate = _checked_rate(in_rate)
    # whole frames of 16-bit samples only: a stream that stops mid-frame keeps the frames before
    frame_bytes = 2 * channels
    ints = np.frombuffer(pcm, "<i2", count=len(pcm) // frame_bytes * channels)
    samples = ints.reshape(-1, channels).astype(np.float32) / 32768.0
    if len(samples) == 0:
        raise BadFileError("audio has no samples")
    # the whole file was decoded, so every window of it gets the same verdict
    out_rate = sample_rate or in_rate
    length = None if duration is None else round(out_rate * duration)
    start, count = _window(len(samples), in_rate, out_rate, length, crop, rng)
    clip = samples[start : start + count]
    return _finish(clip, in_rate, out_rate, length, 0, mono, from_ints=True, quality=quality)
