"""The stream options issue 15 adds for Keras users, on the Python stream and on
``to_tf_dataset``: RGBA images, Keras's interpolation names and ``data_format``; whole audio
clips padded per batch (``duration=None``) with their lengths, the ``max_duration`` guard and
Keras's ``[B, N, 1]``; raw text (``output="text"``)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

import bytefeed_helpers as bf
from bytefeed_helpers.decoders import decode_audio, decode_image, decode_text
from bytefeed_helpers.training import decode_files


# --- images -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pictures(tmp_path_factory) -> bf.Manifest:
    """Two classes: RGBA PNGs with an alpha ramp, and JPEGs (no alpha)."""
    root = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(0)
    for name in ("png", "jpg"):
        (root / name).mkdir()
    for i in range(6):
        rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
        rgba[..., 3] = np.linspace(0, 255, 30).astype(np.uint8)
        Image.fromarray(rgba).save(root / "png" / f"{i}.png")
        Image.fromarray(rgba[..., :3]).save(root / "jpg" / f"{i}.jpg", quality=95)
    return bf.build_manifest(root, kind="image", progress=False)


def all_x(stream) -> np.ndarray:
    return np.concatenate([x for x, _ in stream])


def test_rgba_streams_keep_alpha_or_make_it_opaque(pictures):
    stream = bf.image_batches(pictures, 4, (20, 30), channels=4, shuffle=False, workers=1)
    x, y = all_x(stream), np.concatenate([y for _, y in stream])
    assert x.shape == (12, 20, 30, 4) and x.dtype == np.uint8
    jpg, png = x[y == stream.class_names.index("jpg")], x[y == stream.class_names.index("png")]
    assert (jpg[..., 3] == 255).all()  # no alpha in the file: opaque
    ramp = np.linspace(0, 255, 30).astype(np.uint8)
    assert all(np.array_equal(a[..., 3], np.tile(ramp, (20, 1))) for a in png)  # as stored


def test_channels_first_is_the_transposed_batch_and_augmentation_sees_channels_last(pictures):
    seen = []

    def record(batch, rng):
        seen.append(batch.shape)
        return batch

    kw = {"shuffle": False, "workers": 1, "channels": 4}
    last = all_x(bf.image_batches(pictures, 4, 16, **kw))
    stream = bf.image_batches(pictures, 4, 16, data_format="channels_first", augment=record,
                              training=True, **kw)  # fmt: skip
    first = all_x(stream)
    assert first.shape == (12, 4, 16, 16) and first.flags.c_contiguous
    assert np.array_equal(first, last.transpose(0, 3, 1, 2))
    assert seen and all(s[1:] == (16, 16, 4) for s in seen)  # [B, H, W, C] before the transpose
    assert decode_files(stream, pictures.paths[:2]).shape == (2, 4, 16, 16)  # as the batches
    settings = {"kind": "image", **stream.options}
    assert decode_files(settings, pictures.paths[:2]).shape == (2, 4, 16, 16)


@pytest.mark.parametrize("interpolation", ["nearest", "area", "lanczos3", "mitchellcubic"])
def test_the_interpolation_reaches_every_file(pictures, interpolation):
    stream = bf.image_batches(pictures, 4, (9, 13), interpolation=interpolation, shuffle=False,
                              workers=1)  # fmt: skip
    want = np.stack([decode_image(p, (9, 13), interpolation=interpolation) for p in pictures.paths])
    assert np.array_equal(all_x(stream), want)
    assert stream.options["interpolation"] == interpolation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interpolation": "lanczos7"}, "interpolation must be one of 'bilinear', 'nearest'"),
        ({"data_format": "channels_middle"}, "data_format must be one of 'channels_last'"),
        ({"channels": 2}, r"channels must be 1, 3 or 4"),
    ],
)
def test_wrong_image_options_raise_at_once(pictures, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bf.image_batches(pictures, 4, 16, **kwargs)


def test_tf_pipeline_rgba_channels_first_and_interpolation(pictures):
    pytest.importorskip("tensorflow")
    kw = {"channels": 4, "shuffle": False, "workers": 1, "data_format": "channels_first"}
    stream = bf.image_batches(pictures, 4, (20, 30), interpolation="nearest", **kw)
    ds = stream.to_tf_dataset()
    assert ds.element_spec[0].shape.as_list() == [None, 4, 20, 30]
    x = np.concatenate([b.numpy() for b, _ in ds])
    want = all_x(stream)
    assert x.shape == want.shape
    png = stream.engine.source.labels == stream.class_names.index("png")
    assert np.array_equal(x[png], want[png])  # lossless files, no resize: the same pixels
    assert (x[~png][:, 3] == 255).all()  # JPEGs made opaque in the graph too
    assert np.abs(x[~png].astype(int) - want[~png]).mean() < 2  # libjpeg-turbo both


# --- audio: whole clips --------------------------------------------------------------------------
RATE = 8000
LENGTHS = [800, 1200, 400, 1000, 600, 16000]  # the last one 2 s long


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> bf.Manifest:
    root = tmp_path_factory.mktemp("clips")
    (root / "a").mkdir()
    rng = np.random.default_rng(1)
    for i, n in enumerate(LENGTHS):
        sf.write(root / "a" / f"{i}.wav", rng.uniform(-0.5, 0.5, n), RATE, subtype="PCM_16")
    return bf.build_manifest(root, kind="audio", progress=False)


def whole(clips, **kw):
    kw.setdefault("shuffle", False)
    kw.setdefault("workers", 1)
    return bf.audio_batches(clips, 2, RATE, None, **kw)


def test_whole_clips_are_padded_to_each_batchs_longest(clips):
    batches = list(whole(clips, max_duration=None))
    assert [x.shape for x, _ in batches] == [(2, 1200), (2, 1000), (2, 16000)]
    for b, (x, _) in enumerate(batches):
        for r, row in enumerate(x):
            clip = decode_audio(clips.paths[2 * b + r], RATE, None)
            assert np.array_equal(row[: len(clip)], clip) and not row[len(clip) :].any()


def test_lengths_come_as_a_second_input(clips):
    stream = whole(clips, lengths=True, channel_axis=True, max_duration=None)
    x, y = stream[0]
    assert set(x) == {"audio", "lengths"} and y.shape == (2,)
    assert x["audio"].shape == (2, 1200, 1) and x["lengths"].tolist() == LENGTHS[:2]
    assert x["lengths"].dtype == np.int32
    logmel = whole(clips, lengths=True, features="logmel", hop_length=100, max_duration=None)
    x, _ = logmel[0]
    assert x["audio"].shape == (2, 1 + 1200 // 100, 64)
    assert x["lengths"].tolist() == [1 + n // 100 for n in LENGTHS[:2]]  # in frames
    got = decode_files(stream, clips.paths[2:4])  # predicting files: the same inputs
    assert got["audio"].shape == (2, 1000, 1) and got["lengths"].tolist() == LENGTHS[2:4]


def test_padding_rows_of_the_pad_policy_have_length_zero(clips):
    stream = bf.audio_batches(clips, 4, RATE, None, lengths=True, batch_policy="pad",
                              shuffle=False, workers=1, max_duration=None)  # fmt: skip
    (x, _, w), (x2, _, w2) = list(stream)
    assert x["lengths"].tolist() == LENGTHS[:4] and w.tolist() == [1, 1, 1, 1]
    assert x2["lengths"].tolist() == [*LENGTHS[4:], 0, 0] and w2.tolist() == [1, 1, 0, 0]


def test_channel_axis_on_fixed_clips_is_keras_shape(clips):
    x, _ = bf.audio_batches(clips, 3, RATE, 0.1, channel_axis=True, shuffle=False)[0]
    assert x.shape == (3, 800, 1)


def test_a_clip_over_max_duration_is_skipped_before_it_is_read(clips, monkeypatch):
    import bytefeed_helpers.audio as front

    decoded = []
    real = front.decode_checked

    def spy(src, *args, **kw):
        decoded.append(str(src))
        return real(src, *args, **kw)

    monkeypatch.setattr(front, "decode_checked", spy)
    stream = whole(clips, max_duration=1)
    assert sum(len(x) for x, _ in stream) == 5
    (error,) = stream.errors
    assert error.path == clips.paths[5]
    assert error.reason == "clip too long: 2.0 s, over the limit of 1 s (max_duration)"
    assert clips.paths[5] not in decoded  # refused from its header
    # the default guard (60 s) lets a 2 s clip through
    assert sum(len(x) for x, _ in whole(clips)) == 6


def test_max_duration_on_packed_rows(clips, tmp_path):
    bf.pack(clips, tmp_path / "packed", progress=False)
    stream = whole(tmp_path / "packed", max_duration=1)
    assert [x.shape[1] for x, _ in stream] == [1200, 1000, 600]  # header read, then the clip
    assert [e.reason.split(":")[0] for e in stream.errors] == ["clip too long"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration": 1.0, "lengths": True}, "lengths=True needs duration=None"),
        ({"crop": "random"}, "crop needs a duration"),
        ({"cache": "somewhere"}, "cache= stores clips of one duration"),
        ({"max_duration": 0}, "max_duration must be a number of seconds > 0 or None"),
        ({"max_duration": float("inf")}, "max_duration must be a number of seconds > 0 or None"),
        ({"channel_axis": 1}, "channel_axis must be True or False"),
        ({"sample_rate": None, "features": "logmel"}, "features='logmel' needs one sample_rate"),
    ],
)
def test_wrong_audio_options_raise_at_once(clips, kwargs, message):
    kwargs = {"sample_rate": RATE, "duration": None, **kwargs}
    with pytest.raises(ValueError, match=message):
        bf.audio_batches(clips, 2, **kwargs)


def test_tf_pipeline_pads_whole_clips_and_gives_their_lengths(clips):
    pytest.importorskip("tensorflow")
    stream = whole(clips, lengths=True, channel_axis=True, max_duration=1, on_error="skip")
    ds = stream.to_tf_dataset()
    tf_batches = [(x["audio"].numpy(), x["lengths"].numpy()) for x, _ in ds]
    py = [(x["audio"], x["lengths"]) for x, _ in whole(clips, lengths=True, channel_axis=True)]
    # 16-bit WAVs at the stream's rate: no resampling, the same samples (the 2 s clip left
    # out in the graph, so the last batch differs)
    assert [lengths.tolist() for _, lengths in tf_batches] == [[800, 1200], [400, 1000], [600]]
    for (a, la), (b, lb) in zip(tf_batches[:2], py[:2], strict=True):
        assert np.array_equal(la, lb) and np.array_equal(a, b)


# --- text: raw strings ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> bf.Manifest:
    root = tmp_path_factory.mktemp("notes")
    texts = {"a": ["Ça va très bien\r\nmerci", "naïve café"], "b": ["plain ascii", ""]}
    for name, docs in texts.items():
        (root / name).mkdir()
        for i, doc in enumerate(docs):
            (root / name / f"{i}.txt").write_bytes(doc.encode("utf-8"))
    return bf.build_manifest(root, kind="text", progress=False)


def strings(x) -> list[str]:
    return [s.decode("utf-8") for s in x.numpy()]


def test_raw_text_is_the_decoded_documents(notes):
    tf = pytest.importorskip("tensorflow")
    stream = bf.text_batches(notes, 4, output="text", shuffle=False, workers=1)
    assert stream.tokenizer is None  # no vocabulary pass
    x, y = stream[0]
    assert x.dtype == tf.string and x.shape == (4,) and y.tolist() == [0, 0, 1, 1]
    assert strings(x) == [decode_text(p) for p in notes.paths]
    assert strings(x)[0] == "Ça va très bien\nmerci"  # line ends as decode_text makes them


def test_raw_text_max_length_counts_characters(notes):
    pytest.importorskip("tensorflow")
    stream = bf.text_batches(notes, 4, output="text", max_length=4, shuffle=False)
    assert strings(stream[0][0]) == ["Ça v", "naïv", "plai", ""]
    ds = stream.to_tf_dataset()
    assert strings(next(iter(ds))[0]) == ["Ça v", "naïv", "plai", ""]  # the same in the graph
    settings = {"kind": "text", **stream.options}  # no tokenizer needed to predict files
    assert strings(decode_files(settings, notes.paths[:1])) == ["Ça v"]


def test_raw_text_label_modes(notes):
    pytest.importorskip("tensorflow")
    x, y = bf.text_batches(notes, 4, output="text", label_mode="categorical")[0]
    assert y.shape == (4, 2) and y.dtype == np.float32 and x.shape == (4,)
    x = bf.text_batches(notes, 4, output="text", label_mode=None)[0]
    assert x.shape == (4,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tokenizer": str.split}, "output='text' yields the documents as strings"),
        ({"cache": "somewhere"}, "output='text' streams are not cached"),
        ({"batch_policy": "pad"}, "batch_policy='pad' pads x with zeros"),
        ({"output": "ids"}, "output must be one of 'tokens', 'text'"),
    ],
)
def test_wrong_text_options_raise_at_once(notes, kwargs, message):
    kwargs = {"output": "text", **kwargs}
    with pytest.raises(ValueError, match=message):
        bf.text_batches(notes, 4, **kwargs)
