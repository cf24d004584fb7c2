"""decode_audio / audio_info / logmel: formats, windows, resampling, bad input, and the fast
route for 16-bit PCM WAV, which changes no output."""

from __future__ import annotations

import importlib
import io
import sys

import numpy as np
import pytest
import soundfile as sf
from support import SOURCE_KINDS, source_of

from bytefeed_helpers.decoders.audio import AUDIO_FORMATS, audio_info, decode_audio, logmel
from bytefeed_helpers.errors import BadFileError

# audioread (the fallback decoder) imports stdlib modules deprecated in Python 3.11
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:audioread")

CAN_WRITE_MP3 = "MP3" in sf.available_formats() and "MPEG_LAYER_III" in sf.available_subtypes("MP3")


def sine(freq: float = 440.0, rate: int = 16000, seconds: float = 1.0, amp: float = 0.5):
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ramp(frames: int) -> np.ndarray:
    """Sample i holds i / frames: a read window can be located from its values."""
    return (np.arange(frames) / frames).astype(np.float32)


def encode(x: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


# --- formats -------------------------------------------------------------------------------


def test_audio_formats_constant():
    assert {"WAV", "FLAC", "OGG"} <= set(AUDIO_FORMATS)


@pytest.mark.parametrize(
    ("fmt", "subtype", "tol"),
    [
        ("WAV", "PCM_U8", 1e-2),
        ("WAV", "PCM_16", 1e-4),
        ("WAV", "PCM_24", 1e-6),
        ("WAV", "PCM_32", 1e-6),
        ("WAV", "FLOAT", 0),
        ("WAV", "DOUBLE", 1e-7),
        ("FLAC", "PCM_16", 1e-4),
        ("FLAC", "PCM_24", 1e-6),
    ],
)
def test_lossless_formats_read_exactly(fmt, subtype, tol):
    x = sine(rate=16000, seconds=0.5)
    out = decode_audio(encode(x, 16000, fmt, subtype), 16000, 0.5)
    assert out.dtype == np.float32 and out.shape == (8000,)
    assert np.abs(out - x).max() <= tol


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [
        ("OGG", "VORBIS"),
        pytest.param(
            "MP3",
            "MPEG_LAYER_III",
            marks=pytest.mark.skipif(not CAN_WRITE_MP3, reason="libsndfile < 1.1: no MP3"),
        ),
    ],
)
def test_lossy_formats_keep_the_tone(fmt, subtype):
    x = sine(1000.0, rate=44100, seconds=1.0)
    out = decode_audio(encode(x, 44100, fmt, subtype), 16000, 1.0)
    assert out.shape == (16000,) and out.dtype == np.float32
    assert abs(peak_hz(out, 16000) - 1000.0) < 5
    assert 0.3 < np.abs(out).max() < 0.7


@pytest.mark.parametrize("kind", SOURCE_KINDS)
def test_every_source_kind(tmp_path, kind):
    data = encode(sine(seconds=0.25), 16000)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    src = source_of(kind, path, data)
    out = decode_audio(src, 16000, 0.25)
    assert np.allclose(out, sine(seconds=0.25), atol=1e-4)


def test_stereo_mixed_to_mono_and_kept_with_mono_false():
    left, right = sine(440, seconds=0.5), np.full(8000, 0.25, np.float32)
    data = encode(np.stack([left, right], 1), 16000, subtype="FLOAT")
    out = decode_audio(data, 16000, 0.5)
    assert out.shape == (8000,)
    assert np.allclose(out, (left + right) / 2, atol=1e-6)
    both = decode_audio(data, 16000, 0.5, mono=False)
    assert both.shape == (8000, 2) and both.flags.c_contiguous
    assert np.allclose(both[:, 0], left) and np.allclose(both[:, 1], right)
    resampled = decode_audio(data, 8000, 0.5, mono=False)
    assert resampled.shape == (4000, 2)


# --- rates and lengths ---------------------------------------------------------------------


def test_resample_44100_to_16000_keeps_frequency():
    out = decode_audio(encode(sine(1234.0, rate=44100, seconds=2.0), 44100), 16000, 1.0)
    assert out.shape == (16000,)
    assert abs(peak_hz(out, 16000) - 1234.0) < 2
    # a steady tone stays steady up to the clip's end: no fade from the cut window
    assert np.abs(out[-200:]).max() > 0.45


@pytest.mark.parametrize(("rate", "out_rate"), [(8000, 16000), (22050, 16000), (48000, 22050)])
def test_resampled_length_is_exact(rate, out_rate):
    out = decode_audio(encode(sine(300, rate=rate, seconds=1.5), rate), out_rate, 0.37)
    assert out.shape == (round(out_rate * 0.37),)


def test_native_rate_with_none():
    out = decode_audio(encode(sine(rate=22050, seconds=1.0), 22050), None, 0.5)
    assert out.shape == (11025,)
    assert np.allclose(out, sine(rate=22050, seconds=0.5), atol=1e-4)


def test_duration_none_keeps_whole_clip():
    x = sine(rate=16000, seconds=1.3)
    assert decode_audio(encode(x, 16000), 16000, None).shape == (20800,)
    assert decode_audio(encode(x, 16000), 8000, None).shape == (10400,)


def test_short_clip_is_zero_padded_at_end():
    x = sine(rate=16000, seconds=0.25)
    out = decode_audio(encode(x, 16000, subtype="FLOAT"), 16000, 1.0)
    assert out.shape == (16000,)
    assert np.array_equal(out[:4000], x) and np.all(out[4000:] == 0)


# --- crops ---------------------------------------------------------------------------------


def test_crop_start_and_center():
    data = encode(ramp(48000), 16000, subtype="FLOAT")
    start = decode_audio(data, 16000, 1.0, crop="start")
    assert start[0] == 0 and np.allclose(start, ramp(48000)[:16000])
    center = decode_audio(data, 16000, 1.0, crop="center")
    assert np.allclose(center, ramp(48000)[16000:32000])


def test_crop_random_reproducible_and_in_bounds():
    x = ramp(48000)
    data = encode(x, 16000, subtype="FLOAT")
    first = decode_audio(data, 16000, 0.5, crop="random", rng=np.random.default_rng(7))
    again = decode_audio(data, 16000, 0.5, crop="random", rng=np.random.default_rng(7))
    assert np.array_equal(first, again)
    starts = set()
    for seed in range(20):
        out = decode_audio(data, 16000, 0.5, crop="random", rng=np.random.default_rng(seed))
        start = round(float(out[0]) * 48000)
        assert 0 <= start <= 48000 - 8000
        assert np.allclose(out, x[start : start + 8000])
        starts.add(start)
    assert len(starts) > 10


def test_crop_with_resampling_matches_full_decode():
    """The filter margin read around a window makes it match the same cut of the whole file."""
    x = sine(700, rate=44100, seconds=3.0) + sine(3100, rate=44100, seconds=3.0, amp=0.2)
    data = encode(x, 44100, subtype="FLOAT")
    whole = decode_audio(data, 16000, None)
    out = decode_audio(data, 16000, 1.0, crop="center")
    start = round((len(x) - 44100) // 2 * 16000 / 44100)
    assert np.abs(out - whole[start : start + 16000]).max() < 1e-4


def test_crop_random_needs_rng():
    with pytest.raises(ValueError, match="rng"):
        decode_audio(encode(sine(), 16000), crop="random")


@pytest.mark.parametrize(
    "kwargs",
    [{"crop": "middle"}, {"sample_rate": 0}, {"sample_rate": 16000.5}, {"duration": 0}],
)
def test_invalid_arguments(kwargs):
    with pytest.raises(ValueError, match="must be"):
        decode_audio(encode(sine(), 16000), **kwargs)


# --- WAV headers ---------------------------------------------------------------------------


def test_other_wavs_decode_and_cut_wavs_name_the_damage(tmp_path):
    x = sine(rate=16000)
    for subtype in ("PCM_U8", "PCM_24", "FLOAT"):  # not 16-bit: libsndfile's
        path = tmp_path / f"{subtype}.wav"
        path.write_bytes(encode(x, 16000, subtype=subtype))
        assert np.abs(decode_audio(path, 16000, 1.0) - x).max() < 0.01
    for subtype in ("PCM_16", "PCM_24"):  # the data chunk says more than the file holds
        path = tmp_path / f"cut_{subtype}.wav"
        path.write_bytes(encode(sine(rate=16000, seconds=2.0), 16000, subtype=subtype)[:30000])
        with pytest.raises(BadFileError, match="truncated audio data: the WAV header says"):
            decode_audio(path, 16000, 0.5)  # even when the part asked for is there


def test_wav_of_unknown_length_is_read_as_far_as_it_goes(tmp_path):
    wav = bytearray(encode(sine(rate=16000, seconds=0.5), 16000, subtype="PCM_16"))
    at = wav.index(b"data") + 4
    wav[at : at + 4] = (0xFFFFFFFF).to_bytes(4, "little")  # as a recorder killed mid-way leaves it
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(wav))
    out = decode_audio(path, 16000, 1.0)
    assert np.abs(out[:8000] - sine(rate=16000, seconds=0.5)).max() < 1e-3
    assert np.all(out[8000:] == 0)


# --- bad input -----------------------------------------------------------------------------


def test_empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    for src in (path, b"", io.BytesIO()):
        with pytest.raises(BadFileError, match="empty file"):
            decode_audio(src)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        decode_audio(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError):
        audio_info(tmp_path / "nope.wav")
    with pytest.raises(IsADirectoryError):  # Python's own error, not libsndfile's "System error"
        decode_audio(tmp_path)


@pytest.mark.parametrize("cut", [4, 20, 40])
def test_cut_header(tmp_path, cut):
    path = tmp_path / "cut.wav"
    path.write_bytes(encode(sine(), 16000)[:cut])
    with pytest.raises(BadFileError, match="not a readable audio file: ") as info:
        decode_audio(path)
    assert "Error opening" not in info.value.reason  # libsndfile's words, not a repr
    with pytest.raises(BadFileError, match="not a readable audio file"):
        audio_info(path)


def test_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is text, not sound\n" * 20)
    with pytest.raises(BadFileError, match="not a readable audio file"):
        decode_audio(path)


def test_no_samples():
    with pytest.raises(BadFileError, match="audio has no samples"):
        decode_audio(encode(np.zeros(0, np.float32), 16000))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(bad):
    x = sine(seconds=0.5)
    x[100] = bad
    with pytest.raises(BadFileError, match=r"audio contains non-finite samples \(NaN or Inf\)"):
        decode_audio(encode(x, 16000, subtype="FLOAT"), 16000, 0.5)


def test_truncated_flac():
    data = encode(sine(seconds=2.0) + 0.01 * ramp(32000), 16000, "FLAC")
    with pytest.raises(BadFileError, match="truncated or corrupt audio data"):
        decode_audio(data[: len(data) // 2], 16000, 2.0)


def test_truncated_ogg():
    data = encode(sine(seconds=2.0), 16000, "OGG", "VORBIS")
    with pytest.raises(BadFileError, match="not a readable audio file"):
        decode_audio(data[: len(data) // 2], 16000, 2.0)


@pytest.mark.skipif(not CAN_WRITE_MP3, reason="libsndfile < 1.1: no MP3")
def test_truncated_mp3_is_the_audio_that_decodes():
    # An MP3's length (here its Xing count) is an estimate: a cut file holds what decodes,
    # zero-padded like any short clip, in every window (more in test_audio_lengths.py).
    data = encode(sine(rate=44100, seconds=2.0), 44100, "MP3", "MPEG_LAYER_III")
    cut = data[: len(data) // 2]
    held = len(decode_audio(cut, None, None))
    out = decode_audio(cut, 44100, 2.0)
    assert 0 < held < 88200 and out.shape == (88200,)
    assert abs(peak_hz(out[:held], 44100) - 440.0) < 5 and not out[held:].any()


def test_audioread_fallback_for_formats_libsndfile_cannot_open(tmp_path, monkeypatch):
    import audioread
    from audioread.rawread import RawAudioFile

    class CodecBackend(RawAudioFile):
        """Stands in for FFmpeg/GStreamer (absent here): reads WAV with the stdlib."""

    path = tmp_path / "a.wav"
    x = sine(rate=8000, seconds=0.5)
    sf.write(path, x, 8000, subtype="PCM_16")

    def refuse(*args, **kwargs):
        raise sf.LibsndfileError(1, prefix="Error opening: ")

    monkeypatch.setattr(sf, "SoundFile", refuse)
    # the stand-in is a 16-bit WAV, which the stdlib route would read before libsndfile
    monkeypatch.setattr(sys.modules[decode_audio.__module__], "_decode_pcm16_wav", lambda *a: None)
    monkeypatch.setattr(audioread, "available_backends", lambda: [RawAudioFile, CodecBackend])
    out = decode_audio(path, 16000, 1.0)
    assert out.shape == (16000,)
    assert abs(peak_hz(out[:8000], 16000) - 440.0) < 5 and np.all(out[8000:] == 0)
    with pytest.raises(BadFileError, match="not a readable audio file"):
        decode_audio(path.read_bytes())  # bytes cannot go through audioread
    monkeypatch.setattr(audioread, "available_backends", lambda: [RawAudioFile])
    with pytest.raises(BadFileError, match="not a readable audio file"):
        decode_audio(path)  # no codec backend: libsndfile's verdict stands


# --- audio_info ----------------------------------------------------------------------------


def test_audio_info():
    data = encode(np.zeros((22050, 2), np.float32), 44100, "FLAC", "PCM_24")
    assert audio_info(data) == {
        "samplerate": 44100,
        "channels": 2,
        "frames": 22050,
        "duration": 0.5,
        "format": "FLAC",
        "subtype": "PCM_24",
    }


def test_audio_info_empty():
    with pytest.raises(BadFileError, match="empty file"):
        audio_info(b"")


# --- logmel --------------------------------------------------------------------------------


def test_logmel_single_and_batch():
    x = sine(1000.0, seconds=1.0)
    single = logmel(x)
    assert single.shape == (1 + 16000 // 160, 64)
    assert single.dtype == np.float32 and single.flags.c_contiguous
    assert np.isfinite(single).all()
    batch = logmel(np.stack([x, 0.5 * x, np.zeros_like(x)]), n_mels=40, hop_length=256)
    assert batch.shape == (3, 1 + 16000 // 256, 40)
    assert np.isfinite(batch).all()
    assert np.allclose(logmel(x, n_mels=40, hop_length=256), batch[0], atol=1e-3)
    # the 1 kHz tone's band is loudest; top_db floors each clip at its own peak - 80 dB
    assert single.mean(0).argmax() == np.argmax(single.max(0))
    assert batch[0].max() - batch[0].min() <= 80 + 1e-3
    assert np.all(batch[2] == batch[2].flat[0])  # silence is flat at its own floor


def test_logmel_without_top_db_goes_down_to_amin():
    out = logmel(np.zeros(1600, np.float32), top_db=None)
    assert np.allclose(out, -100.0)


def test_logmel_rejects_3d():
    with pytest.raises(ValueError, match="waveform"):
        logmel(np.zeros((2, 2, 100), np.float32))


# --- audio: 16-bit PCM WAV read in one go, without libsndfile ------------------------------------
def wav(path, channels: int = 1, rate: int = 44100, seconds: float = 1.3, subtype="PCM_16"):
    import soundfile as sf

    t = np.arange(int(rate * seconds)) / rate
    x = np.stack([np.sin(2 * np.pi * 440 * t * (c + 1)) * 0.5 for c in range(channels)], -1)
    sf.write(path, x, rate, subtype=subtype)
    return path


def libsndfile_only(monkeypatch):
    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    monkeypatch.setattr(audio, "_decode_pcm16_wav", lambda *args: None)


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("crop", ["start", "center", "random"])
def test_wav_route_equals_libsndfile(tmp_path, monkeypatch, channels, crop):
    from bytefeed_helpers.decoders.audio import decode_audio

    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    path = wav(tmp_path / "a.wav", channels)
    kwargs = {"crop": crop, "rng": np.random.default_rng(7)}
    assert (
        audio._decode_pcm16_wav(path, 16000, 1.0, crop, np.random.default_rng(7), True) is not None
    )
    fast = [decode_audio(path, 16000, 1.0, **kwargs), decode_audio(path, None, None, mono=False)]
    libsndfile_only(monkeypatch)
    kwargs["rng"] = np.random.default_rng(7)
    slow = [decode_audio(path, 16000, 1.0, **kwargs), decode_audio(path, None, None, mono=False)]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))


@pytest.mark.parametrize("quality", ["QQ", "HQ", "VHQ"])
def test_wav_route_scaling_last_is_bit_identical_to_libsndfile(tmp_path, monkeypatch, quality):
    # the WAV route scales 16-bit samples by 2**-15 after resampling, cropping and padding;
    # libsndfile scales on reading: full-scale noise (every bit of every sample in play),
    # resampled, kept at its rate, padded and read whole, must come out the same to the bit
    import soundfile as sf

    from bytefeed_helpers.decoders.audio import decode_audio

    ints = np.random.default_rng(5).integers(-32768, 32768, (30_001, 2), dtype=np.int16)
    path = tmp_path / "noise.wav"
    sf.write(path, ints, 44100, subtype="PCM_16")
    cases = [
        (rate, seconds, mono)
        for rate in (16000, 22050, None)
        for seconds in (0.5, 2.0, None)  # a crop, a zero-padded clip, the whole file
        for mono in (True, False)
    ]

    def decode_all():
        return [
            decode_audio(path, rate, seconds, mono=mono, resample_quality=quality)
            for rate, seconds, mono in cases
        ]

    fast = decode_all()
    libsndfile_only(monkeypatch)
    slow = decode_all()
    for case, a, b in zip(cases, fast, slow, strict=True):
        assert a.dtype == b.dtype == np.float32 and a.flags.c_contiguous, case
        np.testing.assert_array_equal(a, b, err_msg=str(case))
    assert np.abs(fast[-1]).max() > 0.99  # the whole stereo file at its rate: as written


def test_wav_route_declines_other_files_and_keeps_the_rng(tmp_path):
    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    for name, subtype in [("u8.wav", "PCM_U8"), ("f.wav", "FLOAT"), ("p24.wav", "PCM_24")]:
        path = wav(tmp_path / name, subtype=subtype)
        assert audio._decode_pcm16_wav(path, 16000, 1.0, "start", None, True) is None
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    assert audio._decode_pcm16_wav(path, 16000, 1.0, "random", rng, True) is None
    assert rng.bit_generator.state == before  # libsndfile will draw the same crop
    cut = tmp_path / "cut.wav"
    data = wav(tmp_path / "whole.wav").read_bytes()
    cut.write_bytes(data[: len(data) // 3])  # the header promises more frames than remain
    with pytest.raises(BadFileError, match="truncated audio data"):
        audio._decode_pcm16_wav(cut, 16000, 1.0, "start", None, True)


def with_chunk_before_data(data: bytes, body: bytes) -> bytes:
    """A WAV with a ``LIST`` chunk of ``body`` (padded to even length) before its data."""
    at = data.index(b"data")
    chunk = b"LIST" + len(body).to_bytes(4, "little") + body + b"\x00" * (len(body) % 2)
    out = data[:at] + chunk + data[at:]
    return out[:4] + (len(out) - 8).to_bytes(4, "little") + out[8:]


@pytest.mark.parametrize(("rate", "seconds"), [(16000, 1.0), (48000, 6.0)])
def test_wav_route_reads_past_odd_chunks_and_beyond_its_first_read(
    tmp_path, monkeypatch, rate, seconds
):
    from bytefeed_helpers.decoders.audio import decode_audio

    audio = importlib.import_module("bytefeed_helpers.decoders.audio")
    path = wav(tmp_path / "a.wav", 2, rate, seconds)
    path.write_bytes(with_chunk_before_data(path.read_bytes(), b"odd"))
    assert audio._decode_pcm16_wav(path, 16000, 0.5, "center", None, True) is not None
    fast = [decode_audio(path, 16000, 0.5, crop="center"), decode_audio(path, None, None)]
    libsndfile_only(monkeypatch)
    slow = [decode_audio(path, 16000, 0.5, crop="center"), decode_audio(path, None, None)]
    assert all(np.array_equal(a, b) for a, b in zip(fast, slow, strict=True))
