"""The resample_quality knob's decoder side: every soxr filter, its output as soxr's, and the
speed/error table (whose times are never asserted)."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from bytefeed_helpers.decoders._resample import (
    QUALITIES,
    check_quality,
    probe_signals,
    resample,
    resample_quality_table,
)


@pytest.mark.parametrize("quality", QUALITIES)
def test_each_quality_is_soxrs_output(quality):
    x = probe_signals(22050, 0.25)["chirp 0.1-7 kHz"]
    want = soxr.resample(x, 22050, 16000, quality=quality)
    got = resample(x, 22050, 16000, quality)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert np.array_equal(resample(x, 22050, 16000, quality), want)  # the kept resampler again


def test_default_is_hq_and_qualities_do_not_share_a_resampler():
    x = probe_signals(44100, 0.25)["white noise"]
    hq = resample(x, 44100, 16000)
    assert np.array_equal(hq, soxr.resample(x, 44100, 16000, quality="HQ"))
    assert not np.array_equal(resample(x, 44100, 16000, "QQ"), hq)
    assert np.array_equal(resample(x, 44100, 16000), hq)


def test_unknown_quality_is_refused_in_keras_style():
    with pytest.raises(ValueError, match=r"Received: resample_quality='hq'"):
        check_quality("hq")
    with pytest.raises(ValueError, match="resample_quality must be one of QQ, LQ, MQ, HQ, VHQ"):
        resample(np.zeros(100, np.float32), 44100, 16000, "best")


def test_quality_table_shape():
    rows = resample_quality_table(repeats=1)
    assert [r["quality"] for r in rows] == list(QUALITIES)
    hq = rows[QUALITIES.index("HQ")]
    assert hq["max_abs_error"] == 0.0 and hq["rms_error"] == 0.0
    assert all(r["clips_per_s"] > 0 and r["rms_error"] <= r["max_abs_error"] for r in rows)
