"""Decode audio files to fixed-length float32 waveforms, and turn waveforms into log-mels.

WAV (8-bit unsigned, 16/24/32-bit int, float), FLAC, OGG/Vorbis and MP3 are read with
libsndfile (``soundfile``), only the frames a clip needs; formats libsndfile cannot open fall
back to ``audioread``. Resampling is soxr's HQ filter. Every bad input raises
:class:`~bytefeed_helpers.errors.BadFileError` with a short reason; a missing file raises
:class:`FileNotFoundError`.

Functions here are thread-safe: they share no mutable state. librosa (slow to import) is
imported only when ``logmel`` is first called.
"""

from __future__ import annotations

import io
import math
import os
import struct
from typing import IO, Any

import numpy as np
import soundfile as sf

from .. import stages
from ..errors import BadFileError
from ._fileio import open_fd, read_at
from ._resample import resample
from ._scratch import scratch

__all__ = ["AUDIO_FORMATS", "audio_info", "decode_audio", "logmel"]

Source = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

#: Formats ``decode_audio`` reads through libsndfile, by ``audio_info``'s format names
#: (MP3 needs libsndfile >= 1.1).
AUDIO_FORMATS: tuple[str, ...] = tuple(
    fmt for fmt in ("WAV", "WAVEX", "FLAC", "OGG", "MP3", "AIFF") if fmt in sf.available_formats()
)

CROPS = ("start", "center", "random")
# soxr's HQ filter spreads an impulse over ~90 output samples (~100 input samples when
# upsampling): read this many extra source frames around a window, so its edges are filtered
# from real neighbours rather than from zeros, then trim them off.
_FILTER_MARGIN = 128
# A read may come up short of libsndfile's frame count by this much (MP3 lengths are
# estimated from the bitrate when the file has no Xing/LAME header: two MPEG frames) before
# it counts as truncated data.
_SHORT_READ_TOLERANCE = 2304


def decode_audio(
    src: Source,
    sample_rate: int | None = 16000,
    duration: float | None = 1.0,
    *,
    crop: str = "start",
    rng: np.random.Generator | None = None,
    mono: bool = True,
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

    Only the frames the clip needs are read (plus a small margin for the resampling filter).

    Raises:
        BadFileError: empty file, unreadable or cut header, no samples, truncated data, or
            non-finite samples (NaN/Inf, possible in float WAVs) in the part read.
        FileNotFoundError: ``src`` names no file.
        ValueError: an argument outside the allowed values, or ``crop="random"`` without rng.
    """
    _check_args(sample_rate, duration, crop, rng)
    clip = _decode_pcm16_wav(src, sample_rate, duration, crop, rng, mono)
    if clip is not None:
        return clip
    # a path got here through the WAV route, which opened it and raised if empty or absent
    source = src if isinstance(src, str | os.PathLike) else _source(src)
    try:
        fh = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError) as exc:
        return _decode_fallback(src, exc, sample_rate, duration, crop, rng, mono)
    with fh:
        in_rate, frames = fh.samplerate, fh.frames
        if frames <= 0:
            raise BadFileError("audio has no samples")
        out_rate = sample_rate or in_rate
        length = None if duration is None else round(out_rate * duration)
        start, count = _window(frames, in_rate, out_rate, length, crop, rng)
        lead, margin = _margins(start, in_rate, out_rate)
        count_read = min(frames - start + lead, lead + count + margin)
        samples = _read(fh, start - lead, count_read)
    return _finish(samples, in_rate, out_rate, length, lead, mono)


def audio_info(src: Source) -> dict[str, Any]:
    """Sample rate, channels, frames, duration (s), format and subtype, without decoding.

    Raises BadFileError for an empty or unreadable file, FileNotFoundError for a missing one.
    """
    try:
        info = sf.info(_source(src))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise BadFileError(f"not a readable audio file: {_sf_reason(exc)}") from exc
    return {
        "samplerate": info.samplerate,
        "channels": info.channels,
        "frames": info.frames,
        "duration": info.frames / info.samplerate if info.samplerate else 0.0,
        "format": info.format,
        "subtype": info.subtype,
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


def _check_args(
    sample_rate: int | None, duration: float | None, crop: str, rng: np.random.Generator | None
) -> None:
    """ValueError naming the allowed values for any argument outside them."""
    if sample_rate is not None and not (
        isinstance(sample_rate, int | np.integer) and sample_rate > 0
    ):
        raise ValueError(f"sample_rate must be None or an int > 0, not {sample_rate!r}")
    if duration is not None and not duration > 0:
        raise ValueError(f"duration must be None or > 0 seconds, not {duration!r}")
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, not {crop!r}")
    if crop == "random" and rng is None:
        raise ValueError("crop='random' needs rng (a numpy.random.Generator)")


def _source(src: Source) -> str | os.PathLike | IO[bytes]:
    """What ``soundfile`` opens for ``src``; BadFileError if empty, FileNotFoundError if absent.

    Paths are opened here once because libsndfile reports a missing file, a folder or a
    permission problem as a generic error; Python raises the precise OSError.
    """
    if isinstance(src, bytes | bytearray | memoryview):
        if len(src) == 0:
            raise BadFileError("empty file")
        return io.BytesIO(src)
    if hasattr(src, "read"):
        if _stream_is_empty(src):
            raise BadFileError("empty file")
        return src
    with open(src, "rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise BadFileError("empty file")
    return src  # libsndfile reads a path natively, without calling back into Python


def _stream_is_empty(fh: IO[bytes]) -> bool:
    """Whether a seekable stream has no bytes left (unseekable ones are not judged here)."""
    if not (hasattr(fh, "seekable") and fh.seekable()):
        return False
    here = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(here)
    return end == here


def _sf_reason(exc: BaseException) -> str:
    """libsndfile's own words, without soundfile's "Error opening <object repr>:" prefix."""
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
        return int(rng.integers(0, spare + 1)), count
    return 0, count


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
) -> np.ndarray | None:
    """The common case, a 16-bit PCM WAV file, read with one ``read`` of its first bytes.

    Opening a file through libsndfile costs about four times what the whole read costs here,
    and short clips are mostly opening; the standard library's ``wave`` reads a header in a
    dozen small reads, each a hand-off of the GIL between decoding threads (see ``fileio``).
    Anything else (other sample formats, extensible headers, data shorter than the header
    says, file objects) returns None, with ``rng`` as it was, for libsndfile to read exactly as before.
    An empty file raises BadFileError; a missing one FileNotFoundError.
    """
    if not isinstance(source, str | os.PathLike):
        return None
    state = None if rng is None else rng.bit_generator.state
    with open_fd(source) as fd:
        head = read_at(fd, _WAV_HEAD, 0)
        if not head:
            raise BadFileError("empty file")
        layout = _wav_layout(head)
        if layout is None:
            return None
        tag, channels, in_rate, bits, data_at, data_bytes = layout
        _check_wav_whole(fd, head, data_at, data_bytes)
        if tag != _WAVE_FORMAT_PCM or bits != 16 or channels < 1 or in_rate < 1:
            return None
        frames = data_bytes // (2 * channels)
        out_rate = sample_rate or in_rate
        length = None if duration is None else round(out_rate * duration)
        start, count = _window(frames, in_rate, out_rate, length, crop, rng)
        lead, margin = _margins(start, in_rate, out_rate)
        count_read = min(frames - start + lead, lead + count + margin)
        first, size = data_at + (start - lead) * 2 * channels, count_read * 2 * channels
        if first + size <= len(head):  # a short clip: already read
            data: bytes | memoryview = memoryview(head)[first : first + size]
        else:
            data = read_at(fd, size, first)
    if len(data) != size or frames <= 0:
        if state is not None:
            rng.bit_generator.state = state  # libsndfile draws the same crop again
        return None
    ints = np.frombuffer(data, "<i2").reshape(-1, channels)
    if length is None and in_rate == out_rate:  # _finish may return these very samples
        samples = ints.astype(np.float32)
    else:  # a temporary: _finish resamples or copies it into a new array
        samples = scratch(ints.size * 4, "wav").view(np.float32).reshape(ints.shape)
        np.copyto(samples, ints)
    samples *= np.float32(2.0**-15)
    return _finish(samples, in_rate, out_rate, length, lead, mono, from_ints=True)


# The first read of a WAV: its header and, for clips up to ~1.4 s of 48 kHz stereo, the data.
_WAV_HEAD = 1 << 18
_RIFF = struct.Struct("<4sI4s")
_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")  # format tag, channels, rate, bytes/s, block align, bits
_WAVE_FORMAT_PCM = 1
# Data sizes that recorders write before they know the length (and never fix if killed):
# such files hold as much as they hold.
_WAV_SIZE_UNKNOWN = 0x7FFFF000


def _wav_layout(head: bytes) -> tuple[int, int, int, int, int, int] | None:
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


def _check_wav_whole(fd: int, head: bytes, data_at: int, data_bytes: int) -> None:
    """BadFileError when a WAV's data chunk claims more bytes than the file holds: a cut
    file, whose missing end libsndfile would silently read as nothing (then zero-padded)."""
    if data_bytes == 0 or data_bytes >= _WAV_SIZE_UNKNOWN:
        return
    held = len(head) if len(head) < _WAV_HEAD else os.fstat(fd).st_size
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


def _read(fh: sf.SoundFile, start: int, count: int) -> np.ndarray:
    """``count`` frames from ``start`` as float32 ``[count, channels]``; BadFileError if cut."""
    dtype, scale = _INTEGER_READS.get(fh.subtype, ("float32", None))
    try:
        if start:
            fh.seek(start)
        samples = fh.read(count, dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise BadFileError(f"truncated or corrupt audio data: {_sf_reason(exc)}") from exc
    if count and (len(samples) == 0 or count - len(samples) > _SHORT_READ_TOLERANCE):
        raise BadFileError(
            f"truncated audio data: read {len(samples)} of {count} frames from frame {start}"
        )
    if scale is not None:
        samples = samples.astype(np.float32)
        samples *= np.float32(scale)
    return samples


def _finish(
    samples: np.ndarray,
    in_rate: int,
    out_rate: int,
    length: int | None,
    lead: int,
    mono: bool,
    *,
    from_ints: bool = False,
) -> np.ndarray:
    """Check, mix, resample, trim the filter margin and crop/pad ``samples`` to ``length``.

    ``from_ints``: the samples were converted from integers, so they are finite already.
    """
    if not from_ints and not np.isfinite(samples).all():
        raise BadFileError("audio contains non-finite samples (NaN or Inf)")
    if mono:  # a one-channel file needs no mixing (a mean over axis 1 costs a reduction per row)
        samples = samples[:, 0] if samples.shape[1] == 1 else samples.mean(axis=1, dtype=np.float32)
    if in_rate != out_rate:
        started = stages.start()
        samples = resample(samples, in_rate, out_rate)
        stages.done("resize", started)
    skip = round(lead * out_rate / in_rate)
    if length is None:
        return np.ascontiguousarray(samples[skip:], dtype=np.float32)
    out = np.zeros((length, *samples.shape[1:]), dtype=np.float32)
    kept = samples[skip : skip + length]
    out[: len(kept)] = kept
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
) -> np.ndarray:
    """Decode a file libsndfile cannot open with ``audioread`` (FFmpeg, GStreamer, ...).

    audioread reads whole files by path only, so bytes and file objects, and files no codec
    backend reads either, end as BadFileError with libsndfile's reason.
    """
    reason = f"not a readable audio file: {_sf_reason(sf_error)}"
    backends = [] if not isinstance(src, str | os.PathLike) else _audioread_backends()
    if not backends:
        raise BadFileError(reason) from sf_error
    import audioread

    try:
        with audioread.audio_open(os.fspath(src), backends=backends) as fh:
            in_rate, channels = fh.samplerate, fh.channels
            pcm = b"".join(fh)  # 16-bit signed little-endian, interleaved
    except Exception as exc:  # audioread's backends raise many types; none may escape raw
        raise BadFileError(reason) from exc
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    samples = samples[: len(samples) // channels * channels].reshape(-1, channels)
    if len(samples) == 0:
        raise BadFileError("audio has no samples")
    out_rate = sample_rate or in_rate
    length = None if duration is None else round(out_rate * duration)
    start, count = _window(len(samples), in_rate, out_rate, length, crop, rng)
    clip = samples[start : start + count]
    return _finish(clip, in_rate, out_rate, length, 0, mono, from_ints=True)
