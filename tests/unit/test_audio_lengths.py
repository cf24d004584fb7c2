"""Audio lengths: a header's frame count is a claim until the audio decodes.

Every input is built here: MP3s written by libsndfile and then cut or patched so their Xing/Info
header (or, without one, the bitrate estimate) overstates the audio, FLACs cut short of their
STREAMINFO count, WAVs whose data chunk or RF64 size claims 2**31 or 2**63 frames or more
than the file holds, float WAVs with a NaN far from the start. For each: the verdict (a clip or
the BadFileError's reason) is the same for every window asked for, in ``Manifest.validate``
and in every epoch of a stream, the decodable length is what soundfile reads sequentially
until the audio ends, and nothing is allocated from a header's claim.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from support import DATA

from bytefeed_helpers import audio_batches
from bytefeed_helpers.decoders.audio import audio_info, decode_audio
from bytefeed_helpers.errors import BadFileError
from bytefeed_helpers.folders import build_manifest
from bytefeed_helpers.manifest import Manifest

CAN_WRITE_MP3 = "MP3" in sf.available_formats() and "MPEG_LAYER_III" in sf.available_subtypes("MP3")
needs_mp3 = pytest.mark.skipif(not CAN_WRITE_MP3, reason="libsndfile < 1.1 writes no MP3")
SEEDS = range(40)


# --- inputs -------------------------------------------------------------------------------------
def tone(rate: int, seconds: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A 330 Hz tone plus a little noise, float32 ``[N, channels]``."""
    n = round(rate * seconds)
    t = np.arange(n) / rate
    noise = np.random.default_rng(seed).standard_normal((n, channels))
    x = 0.3 * np.sin(2 * np.pi * 330 * t)[:, None] + 0.05 * noise
    return x.astype(np.float32)


def encode(x: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    """``x`` encoded, written in blocks (libsndfile's MP3 encoder crashes on some long writes)."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, x.shape[1], subtype, format=fmt) as fh:
        for i in range(0, len(x), 4096):
            fh.write(x[i : i + 4096])
    return buf.getvalue()


def mp3(rate: int = 16000, seconds: float = 3.0, channels: int = 1) -> bytes:
    return encode(tone(rate, seconds, channels), rate, "MP3", "MPEG_LAYER_III")


# MPEG audio frame headers, enough to find a file's first frame (its Xing/Info frame)
_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2.5
}
_HZ = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def first_frame_bytes(data: bytes) -> int:
    (h,) = struct.unpack(">I", data[:4])
    assert h >> 21 == 0x7FF, "no MPEG frame at the start"
    version, rate = (h >> 19) & 3, _HZ[(h >> 19) & 3][(h >> 10) & 3]
    kbps, padding = _KBPS[version][(h >> 12) & 15], (h >> 9) & 1
    return (144000 if version == 3 else 72000) * kbps // rate + padding


def without_xing(data: bytes) -> bytes:
    """The MP3 without its Xing/Info frame: its length is then estimated from the bitrate."""
    n = first_frame_bytes(data)
    assert b"Xing" in data[:n] or b"Info" in data[:n]
    return data[n:]


def with_xing_frames(data: bytes, frames: int) -> bytes:
    """The MP3 with its Xing header's frame count set to ``frames``."""
    out = bytearray(data)
    at = out.find(b"Xing") if b"Xing" in out[:400] else out.find(b"Info")
    (flags,) = struct.unpack_from(">I", out, at + 4)
    assert flags & 1, "no frame count in this Xing header"
    struct.pack_into(">I", out, at + 8, frames)
    return bytes(out)


def xing_frames(data: bytes) -> int:
    at = data.find(b"Xing")
    return struct.unpack_from(">I", data, at + 8)[0]


def one_read(data: bytes, frames: int) -> np.ndarray:
    """``frames`` frames (fewer where the audio ends) in one soundfile read from the start:
    no seek in between (soundfile seeks after every read, and mpg123 restarts after a seek)."""
    with sf.SoundFile(io.BytesIO(data)) as fh:
        return fh.read(frames, dtype="float32", always_2d=True)


def sequential(data: bytes) -> np.ndarray:
    """The reference: what one read from the start gets until the audio ends; where reading
    that far fails (mpg123 on junk after the audio), the longest read that does not."""
    most = min(claimed_frames(data), 1 << 22)
    try:
        return one_read(data, most)
    except sf.LibsndfileError:
        pass
    lo, hi = 0, most  # a read of lo frames succeeds, one of hi fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            one_read(data, mid)
            lo = mid
        except sf.LibsndfileError:
            hi = mid
    return one_read(data, lo)


def claimed_frames(data: bytes) -> int:
    return sf.info(io.BytesIO(data)).frames


OVERSTATED = (
    "tail cut (Xing count)",
    "Xing count tripled",
    "Xing count 2**32 - 1",
    "stereo 44.1 kHz, tail cut",
    "no Xing header, a quiet start",
    "no Xing header, zeros after the audio",
)


def overstated_mp3s() -> dict[str, bytes]:
    """MP3s whose header claims more frames than decode, each a different way."""
    whole = mp3(16000, 3.0)
    stereo = mp3(44100, 2.0, channels=2)
    quiet = np.concatenate([np.zeros((1600, 1), np.float32), tone(16000, 3.0)])
    quiet_start = without_xing(encode(quiet, 16000, "MP3", "MPEG_LAYER_III"))
    variants = {
        "tail cut (Xing count)": whole[: len(whole) * 6 // 10],
        "Xing count tripled": with_xing_frames(whole, 3 * xing_frames(whole)),
        "Xing count 2**32 - 1": with_xing_frames(whole, 2**32 - 1),
        "stereo 44.1 kHz, tail cut": stereo[: len(stereo) // 2],
        # without a Xing header the length is guessed from the first frame's bitrate and the
        # file's size: a quiet (low-bitrate) first frame, or bytes after the audio, inflate it
        "no Xing header, a quiet start": quiet_start,
        "no Xing header, zeros after the audio": quiet_start + bytes(3000),
    }
    assert tuple(variants) == OVERSTATED
    return variants


def verdicts(src, sample_rate: int | None = None, duration: float = 1.0) -> set[str]:
    """Every outcome of decoding ``src`` with each crop and many random windows: "ok" or
    the BadFileError's reason (any other exception fails the test)."""
    seen = set()
    kwargs = [{"crop": "start"}, {"crop": "center"}]
    kwargs += [{"crop": "random", "rng": np.random.default_rng(s)} for s in SEEDS]
    for kw in kwargs:
        try:
            clip = decode_audio(src, sample_rate, duration, **kw)
            assert clip.dtype == np.float32 and np.isfinite(clip).all()
            seen.add("ok")
        except BadFileError as exc:
            seen.add(exc.reason)
    return seen


def reason(src, **kwargs) -> str:
    with pytest.raises(BadFileError) as info:
        decode_audio(src, **kwargs)
    return info.value.reason


# --- MP3: the audio is what decodes --------------------------------------------------------------
@needs_mp3
@pytest.mark.parametrize("name", OVERSTATED)
def test_overstated_mp3_decodes_what_the_file_holds(tmp_path, name):
    data = overstated_mp3s()[name]
    path = tmp_path / "clip.mp3"
    path.write_bytes(data)
    ref = sequential(data)
    assert 0 < len(ref) < claimed_frames(data)  # the header overstates
    for src in (path, data):
        whole = decode_audio(src, None, None, mono=False)
        assert whole.shape == ref.shape
        np.testing.assert_allclose(whole, ref, atol=1e-6)
        assert audio_info(src)["frames"] == len(ref)
    # soundfile.read, librosa.load's reader, sizes its array by the claim (18 TiB for a Xing
    # count of 2**32 - 1) and gives up on junk after the audio, where decode_audio keeps what
    # decoded before it
    if "zeros after" in name:
        with pytest.raises(sf.LibsndfileError):
            sf.read(path)
    elif claimed_frames(data) < 10**7:
        assert len(sf.read(path)[0]) == len(ref)


@needs_mp3
@pytest.mark.parametrize("name", OVERSTATED)
def test_overstated_mp3_every_window_is_audio(tmp_path, name):
    data = overstated_mp3s()[name]
    path = tmp_path / "clip.mp3"
    path.write_bytes(data)
    full = decode_audio(path, None, None, mono=False)
    rate, n = sf.info(path).samplerate, None
    n = round(rate * 0.5)
    assert len(full) > n
    for src in (path, data):
        for s in SEEDS:  # a window drawn over the frames that decode, as for any file
            clip = decode_audio(
                src, None, 0.5, crop="random", rng=np.random.default_rng(s), mono=False
            )
            start = int(np.random.default_rng(s).integers(0, len(full) - n + 1))
            np.testing.assert_allclose(clip, full[start : start + n], atol=1e-6)
        center = decode_audio(src, None, 0.5, crop="center", mono=False)
        spare = len(full) - n
        np.testing.assert_allclose(center, full[spare // 2 : spare // 2 + n], atol=1e-6)


@needs_mp3
@pytest.mark.parametrize("name", OVERSTATED)
@pytest.mark.parametrize("duration", [0.25, 1.0, 10.0])
def test_overstated_mp3_gets_one_verdict_for_every_window(tmp_path, name, duration):
    path = tmp_path / "clip.mp3"
    path.write_bytes(overstated_mp3s()[name])
    assert verdicts(path, 16000, duration) == {"ok"}
    assert verdicts(path.read_bytes(), 16000, duration) == {"ok"}


@needs_mp3
def test_a_long_clip_of_a_short_mp3_is_zero_padded(tmp_path):
    data = overstated_mp3s()["tail cut (Xing count)"]
    held = len(sequential(data))
    for crop in ("start", "center", "random"):
        clip = decode_audio(data, None, 5.0, crop=crop, rng=np.random.default_rng(0))
        assert clip.shape == (80000,)
        assert np.abs(clip[: held - 100]).max() > 0.1 and not clip[held:].any()


@needs_mp3
@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (22050, 1), (24000, 1), (44100, 2)])
def test_mp3_windows_hold_the_samples_a_read_from_the_start_gives(rate, channels):
    # mpg123 decodes the first frames after a seek without the bit reservoir of the frames
    # before (without a pre-roll, 12 of these 40 windows at 24 kHz were off, by up to 0.12)
    data = mp3(rate, 3.0, channels)
    full = decode_audio(data, None, None, mono=False)
    n = rate // 2
    for s in SEEDS:
        clip = decode_audio(
            data, None, 0.5, crop="random", rng=np.random.default_rng(s), mono=False
        )
        start = int(np.random.default_rng(s).integers(0, len(full) - n + 1))
        np.testing.assert_allclose(clip, full[start : start + n], atol=1e-6)


@needs_mp3
@pytest.mark.parametrize(("rate", "channels"), [(16000, 1), (22050, 1), (44100, 2)])
def test_long_mp3_reads_block_by_block_equal_one_read(monkeypatch, rate, channels):
    # blocks of 4096 samples stand in for the 2**20 of files over a minute long
    monkeypatch.setattr(sys.modules[decode_audio.__module__], "_READ_BLOCK", 4096)
    data = mp3(rate, 3.0, channels)
    np.testing.assert_allclose(
        decode_audio(data, None, None, mono=False), sequential(data), atol=1e-6
    )


@needs_mp3
def test_an_mp3_that_holds_its_claim_is_read_as_before():
    data = mp3(44100, 2.0, channels=2)
    assert len(sequential(data)) == claimed_frames(data) == 88200
    assert decode_audio(data, None, None).shape == (88200,)
    assert audio_info(data)["frames"] == 88200
    assert verdicts(data, 16000, 0.5) == {"ok"}


# --- exact headers: a file that ends early is cut, whatever window is asked for ------------------
def cut_flac(seconds: float = 3.0) -> bytes:
    data = encode(tone(16000, seconds), 16000, "FLAC", "PCM_16")
    return data[: len(data) // 2]


def flac_claiming(total: int) -> bytes:
    """A whole 1 s FLAC whose STREAMINFO says ``total`` samples (36 bits at most)."""
    data = bytearray(encode(tone(16000, 1.0), 16000, "FLAC", "PCM_16"))
    body = 8  # "fLaC", then the STREAMINFO block's 4-byte header
    packed = int.from_bytes(data[body + 10 : body + 18], "big")
    packed = (packed & ~(2**36 - 1)) | total
    data[body + 10 : body + 18] = packed.to_bytes(8, "big")
    return bytes(data)


@pytest.mark.parametrize("data", [cut_flac(), flac_claiming(2**36 - 1)], ids=["cut", "2**36"])
def test_cut_flac_gets_one_reason_for_every_window(tmp_path, data):
    path = tmp_path / "cut.flac"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        whole = reason(path, sample_rate=None, duration=None)
        seen = verdicts(path, 16000, 0.5) | verdicts(data, 16000, 0.5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert whole.startswith("truncated or corrupt audio data: the FLAC header says ")
    assert seen == {whole}
    with pytest.raises(BadFileError) as info:
        audio_info(path)
    assert info.value.reason == whole
    assert peak < 64 << 20  # nothing sized by the 36-bit claim (128 GiB of int16)


# --- WAV headers ----------------------------------------------------------------------------------
def wav(x: np.ndarray, rate: int = 16000, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    return encode(x, rate, fmt, subtype)


def with_data_size(data: bytes, size: int) -> bytes:
    out = bytearray(data)
    at = out.index(b"data") + 4
    struct.pack_into("<I", out, at, size)
    return bytes(out)


def rf64_claiming(data_bytes: int, samples: int) -> bytes:
    """A 1 s RF64 whose ds64 chunk claims ``data_bytes`` of data and ``samples`` frames."""
    out = bytearray(wav(tone(16000, 1.0), fmt="RF64"))
    at = out.index(b"ds64") + 8  # riff size, data size, sample count: three 64-bit sizes
    struct.pack_into("<QQ", out, at + 8, data_bytes, samples)
    return bytes(out)


def measured(fn, *args):
    """``(peak bytes traced while fn(*args) ran, what it returned)``."""
    tracemalloc.start()
    try:
        out = fn(*args)
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def outcome(src) -> np.ndarray | str:
    """The whole file decoded, or the reason it is bad (any other exception fails the test)."""
    try:
        return decode_audio(src, None, None)
    except BadFileError as exc:
        return exc.reason


HUGE_CLAIMS = {
    "16-bit, data size 2**32 - 1 (2**31 frames)": (with_data_size, "PCM_16", 2**32 - 1),
    "8-bit, data size 2**31 (2**31 frames)": (with_data_size, "PCM_U8", 2**31),
    "24-bit, data size 2**32 - 1": (with_data_size, "PCM_24", 2**32 - 1),
    "float, data size 2**32 - 1": (with_data_size, "FLOAT", 2**32 - 1),
}


@pytest.mark.parametrize("name", list(HUGE_CLAIMS))
def test_wav_claiming_2_31_frames_reads_what_the_file_holds(tmp_path, name):
    patch, subtype, size = HUGE_CLAIMS[name]
    x = tone(16000, 1.0)
    good = wav(x, subtype=subtype)
    data = patch(good, size)
    path = tmp_path / "huge.wav"
    path.write_bytes(data)
    expected = decode_audio(good, None, None)
    for src in (path, data):  # the WAV route and libsndfile's
        peak, got = measured(decode_audio, src, None, None)
        np.testing.assert_array_equal(got, expected)
        assert peak < 16 << 20, f"{peak / 2**20:.0f} MiB for a 1 s file"
        assert audio_info(src)["frames"] == 16000
        assert verdicts(src, 16000, 0.5) == {"ok"}


# libsndfile asks soundfile's virtual I/O to seek 2**63 bytes into the bytes, which BytesIO
# refuses with an OverflowError that cffi prints and ignores; the outcome is still checked
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize(
    ("data_bytes", "samples", "expected"),
    [
        (2**63, 2**63, "clip"),  # libsndfile caps the claim by the file's size
        (2**63 - 1, 2**62, "clip"),
        (2**64 - 1, 2**64 - 1, "not a readable audio file: Unspecified internal error"),
    ],
)
def test_rf64_claiming_2_63_frames_is_a_clip_or_a_bad_file(tmp_path, data_bytes, samples, expected):
    data = rf64_claiming(data_bytes, samples)
    path = tmp_path / "huge.rf64"
    path.write_bytes(data)
    for src in (path, data):
        peak, got = measured(outcome, src)
        assert peak < 16 << 20
        if expected == "clip":
            np.testing.assert_array_equal(got, decode_audio(wav(tone(16000, 1.0)), None, None))
            assert verdicts(src, 16000, 0.5) == {"ok"}
        else:
            assert got == expected
            assert verdicts(src, 16000, 0.5) == {expected}


def test_wav_claiming_more_data_than_it_holds_is_cut_for_every_window(tmp_path):
    data = wav(tone(16000, 3.0))[:40000]
    path = tmp_path / "cut.wav"
    path.write_bytes(data)
    whole = reason(path, sample_rate=None, duration=None)
    assert whole.startswith("truncated audio data: the WAV header says 96000 data bytes")
    assert verdicts(path, 16000, 0.5) == {whole}
    assert verdicts(data, 16000, 0.5) == {whole}  # bytes: libsndfile's route, the same check
    # file objects (what packed sources hand out), also read from where they stand
    assert reason(io.BytesIO(data), sample_rate=16000, duration=0.5) == whole
    with open(path, "rb") as fh:
        assert reason(fh, sample_rate=16000, duration=0.5) == whole
    later = io.BytesIO(b"skip" + data)
    later.seek(4)
    assert reason(later, sample_rate=16000, duration=0.5) == whole
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for src in (path, data, io.BytesIO(data)):
        with pytest.raises(BadFileError) as info:
            audio_info(src)
        assert info.value.reason == whole
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds  # the refused path's descriptor closed


@pytest.mark.parametrize("pad", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize(("subtype", "channels"), [("PCM_16", 1), ("PCM_16", 2), ("PCM_24", 2)])
def test_wav_with_a_data_chunk_of_odd_size(tmp_path, pad, subtype, channels):
    x = tone(16000, 0.5, channels)
    good = wav(x, subtype=subtype)
    block = channels * (2 if subtype == "PCM_16" else 3)
    frames = 4000
    odd = frames * block + 1  # the frames, then one byte of a frame that never came
    at = good.index(b"data") + 8
    body = good[at : at + odd] + (b"\x00" if pad else b"")  # chunks are padded to even sizes
    data = with_data_size(good[:at] + body, odd)
    data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    path = tmp_path / "odd.wav"
    path.write_bytes(data)
    by_route = [
        decode_audio(path, None, None, mono=False),
        decode_audio(data, None, None, mono=False),
    ]
    for out in by_route:
        assert out.shape == (frames, channels)
        np.testing.assert_array_equal(out, by_route[0])
        np.testing.assert_allclose(out, x[:frames], atol=2**-14)
    assert audio_info(path)["frames"] == frames


@pytest.mark.parametrize("rate", [0, 2**31, 2**32 - 1])
def test_wav_with_an_impossible_rate_gets_libsndfiles_verdict_on_both_routes(tmp_path, rate):
    out = bytearray(wav(tone(16000, 0.25)))
    at = out.index(b"fmt ") + 8
    struct.pack_into("<I", out, at + 4, rate)
    path = tmp_path / "rate.wav"
    path.write_bytes(bytes(out))
    by_path = reason(path, sample_rate=16000, duration=None)
    assert by_path == reason(bytes(out), sample_rate=16000, duration=None)
    assert by_path.startswith("not a readable audio file: ")
    assert verdicts(path, 16000, 0.1) == {by_path}


def test_wav_whose_rate_leaves_no_sample_at_the_output_rate(tmp_path):
    out = bytearray(wav(tone(16000, 0.25)))
    struct.pack_into("<I", out, out.index(b"fmt ") + 12, 2**31 - 1)  # 4000 frames in 2 us
    path = tmp_path / "fast.wav"
    path.write_bytes(bytes(out))
    expected = f"audio has no samples at 16000 Hz (the file says {2**31 - 1})"
    assert reason(path, sample_rate=16000, duration=None) == expected
    assert reason(bytes(out), sample_rate=16000, duration=None) == expected
    assert decode_audio(path, None, None).shape == (4000,)  # at its own rate it has samples


def test_wav_header_fields_at_their_extremes_never_escape_raw(tmp_path):
    """Every combination of extreme fmt fields and data sizes: a clip or a BadFileError,
    the same one for both routes, with little memory."""
    base = wav(tone(16000, 0.25))
    at = base.index(b"fmt ") + 8
    path = tmp_path / "x.wav"
    count = 0
    for tag in (1, 3, 0xFFFE):
        for channels in (0, 1, 2, 0xFFFF):
            for rate in (1, 16000, 2**31 - 1):
                for block in (0, 2, 0xFFFF):
                    for bits in (0, 8, 16, 0xFFFF):
                        for size in (0, 7999, 2**32 - 1):
                            out = bytearray(base)
                            struct.pack_into(
                                "<HHIIHH",
                                out,
                                at,
                                tag,
                                channels,
                                rate,
                                rate * block % 2**32,
                                block,
                                bits,
                            )
                            data = with_data_size(bytes(out), size)
                            path.write_bytes(data)
                            results = []
                            for src in (path, data):
                                try:
                                    clip = decode_audio(src, 16000, 0.25)
                                    results.append(("ok", clip.shape))
                                except BadFileError as exc:
                                    results.append(("bad", exc.reason))
                            assert results[0] == results[1], (
                                tag,
                                channels,
                                rate,
                                block,
                                bits,
                                size,
                            )
                            count += 1
    assert count == 3 * 4 * 3 * 3 * 4 * 3


# --- non-finite samples: found wherever they are --------------------------------------------------
def test_nan_far_from_the_start_gets_one_verdict_for_every_window(tmp_path):
    x = tone(16000, 4.0)
    x[-100] = np.nan  # only the last window holds it
    data = wav(x, subtype="FLOAT")
    path = tmp_path / "nan.wav"
    path.write_bytes(data)
    expected = "audio contains non-finite samples (NaN or Inf)"
    assert reason(path, sample_rate=None, duration=None) == expected
    assert verdicts(path, 16000, 0.5) == {expected}
    assert verdicts(data, 16000, 0.5) == {expected}


def test_finite_float_wav_crops_still_match_the_whole_file(tmp_path):
    x = tone(16000, 4.0)
    path = tmp_path / "f.wav"
    path.write_bytes(wav(x, subtype="FLOAT"))
    for s in range(5):
        clip = decode_audio(path, None, 0.5, crop="random", rng=np.random.default_rng(s))
        start = int(np.random.default_rng(s).integers(0, 64000 - 8000 + 1))
        np.testing.assert_array_equal(clip, x[start : start + 8000, 0])


# --- a format libsndfile cannot seek in ------------------------------------------------------------
def test_gsm_wav_windows_are_read_up_to_without_seeking(tmp_path):
    path = tmp_path / "gsm.wav"
    path.write_bytes(wav(tone(8000, 3.0), 8000, "GSM610"))
    with sf.SoundFile(path) as fh:
        assert not fh.seekable()
    full = decode_audio(path, None, None)
    for s in range(5):
        clip = decode_audio(path, None, 0.5, crop="random", rng=np.random.default_rng(s))
        start = int(np.random.default_rng(s).integers(0, len(full) - 4000 + 1))
        np.testing.assert_array_equal(clip, full[start : start + 4000])
    spare = len(full) - 4000
    center = decode_audio(path, None, 0.5, crop="center")
    np.testing.assert_array_equal(center, full[spare // 2 : spare // 2 + 4000])


# --- validate, evaluation and training agree -------------------------------------------------------
def hostile_folder(root: Path) -> tuple[set[str], set[str]]:
    """Files of every kind above in ``root``: (the names that decode, the names that do not)."""
    good: dict[str, bytes] = {
        "huge_claim.wav": with_data_size(wav(tone(16000, 1.2)), 2**32 - 1),
        "odd_rate_claim.rf64": rf64_claiming(2**63, 2**63),
    }
    if CAN_WRITE_MP3:
        for i, data in enumerate(overstated_mp3s().values()):
            good[f"overstated_{i}.mp3"] = data
    nan = tone(16000, 3.0)
    nan[-10] = np.inf
    bad = {
        "cut.flac": cut_flac(),
        "claims_2_36.flac": flac_claiming(2**36 - 1),
        "cut.wav": wav(tone(16000, 3.0))[:30000],
        "inf_at_the_end.wav": wav(nan, subtype="FLOAT"),
    }
    for name, data in {**good, **bad}.items():
        (root / name).write_bytes(data)
    return set(good), set(bad)


def test_validate_and_streams_agree_on_every_file_in_every_epoch(tmp_path):
    hostile, bad = hostile_folder(tmp_path)
    good = build_manifest(DATA / "audio", kind="audio", progress=False)
    paths = good.paths + [str(tmp_path / n) for n in sorted(hostile | bad)]
    labels = list(good.labels) + [0] * (len(hostile) + len(bad))
    manifest = Manifest(paths, labels, good.class_names, kind="audio")
    report = manifest.validate(progress=False)
    problems = {Path(p).name: r for p, r in report.problems}
    assert set(problems) == bad
    expected = set(good.paths) | {str(tmp_path / n) for n in hostile}

    tracemalloc.start()
    try:
        for seed in (0, 1):
            stream = audio_batches(
                manifest, 4, 16000, 1.0, shuffle=True, seed=seed, with_paths=True
            )
            for epoch in range(3):
                yielded: list[str] = []
                with pytest.warns(match="skipped"):
                    for x, _, batch_paths in stream:
                        assert x.shape[1:] == (16000,) and np.isfinite(x).all()
                        yielded += list(batch_paths)
                assert sorted(yielded) == sorted(expected)  # each good file once per epoch
                skipped = {Path(e.path).name: e.reason for e in stream.errors if e.epoch == epoch}
                assert skipped == problems, f"epoch {epoch}"
        evaluation = audio_batches(manifest, 4, 16000, 1.0, shuffle=False, with_paths=True)
        with pytest.warns(match="skipped"):
            yielded = [p for _, _, ps in evaluation for p in ps]
        assert sorted(yielded) == sorted(expected)
        assert {Path(e.path).name: e.reason for e in evaluation.errors} == problems
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 << 20, f"peak {peak / 2**20:.0f} MiB"
