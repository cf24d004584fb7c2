"""resample: soxr's HQ output, bit for bit, from resamplers kept per thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soxr

from bytefeed_helpers.decoders import _resample as resample_module
from bytefeed_helpers.decoders._resample import resample


def _noise(frames: int, channels: int | None, seed: int) -> np.ndarray:
    shape = (frames,) if channels is None else (frames, channels)
    return (np.random.default_rng(seed).standard_normal(shape) * 0.2).astype(np.float32)


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "channels"),
    [(44100, 16000, None), (48000, 16000, None), (22050, 16000, 2), (8000, 16000, None)],
)
def test_equals_soxr_oneshot_call_after_call(in_rate, out_rate, channels):
    for seed, frames in enumerate((in_rate, in_rate // 3, 17)):  # the kept one is cleared between
        clip = _noise(frames, channels, seed)
        expected = soxr.resample(clip, in_rate, out_rate, quality="HQ")
        got = resample(clip, in_rate, out_rate)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_takes_non_contiguous_and_float64_input():
    stereo = _noise(8000, 2, 1).astype(np.float64)
    left = stereo[:, 0]  # a strided view
    expected = soxr.resample(np.ascontiguousarray(left, np.float32), 8000, 16000, quality="HQ")
    np.testing.assert_array_equal(resample(left, 8000, 16000), expected)


def test_keeps_a_bounded_number_of_resamplers():
    rates = [8000 + 1000 * i for i in range(resample_module._KEPT + 4)]
    for rate in rates:
        resample(_noise(rate // 10, None, rate), rate, 16000)
    assert len(resample_module._LOCAL.kept) == resample_module._KEPT
    clip = _noise(4410, None, 3)  # an evicted rate pair is made again, same output
    np.testing.assert_array_equal(
        resample(clip, rates[0], 16000), soxr.resample(clip, rates[0], 16000, quality="HQ")
    )


def test_threads_interleaving_rates_get_their_own_output():
    clips = {rate: _noise(rate, None, rate) for rate in (22050, 44100, 48000)}
    expected = {rate: soxr.resample(c, rate, 16000, quality="HQ") for rate, c in clips.items()}
    failures: list[int] = []

    def work(order: list[int]) -> None:
        for _ in range(20):
            for rate in order:
                if not np.array_equal(resample(clips[rate], rate, 16000), expected[rate]):
                    failures.append(rate)

    threads = [
        threading.Thread(target=work, args=(o,)) for o in ([22050, 44100, 48000], [48000, 22050])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
