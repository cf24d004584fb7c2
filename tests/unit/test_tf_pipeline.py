"""to_tf_dataset: the stream rebuilt from TensorFlow ops; the tf.data service delivers it once."""

from __future__ import annotations

import gc
import hashlib
import warnings

import numpy as np
import pytest
from support import assert_resume_matches

import bytefeed_helpers as bf
from bytefeed_helpers import build_manifest, read_manifest
from bytefeed_helpers.decoders import decode_text
from bytefeed_helpers.packed import pack

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def images(data_sample):
    return build_manifest(data_sample / "images", kind="image", progress=False)


@pytest.fixture(scope="module")
def tf_images(images):
    """The sample photos TensorFlow reads the same way (no TIFF, no EXIF rotation)."""
    keep = [i for i, p in enumerate(images.paths) if not p.endswith((".tif", "_rotated.jpg"))]
    return images.subset(keep)


def as_numpy(ds) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in ds]


def flat(batches) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def digests(x: np.ndarray) -> list[str]:
    return sorted(hashlib.sha1(sample.tobytes()).hexdigest() for sample in x)


@pytest.mark.parametrize("fit", ["stretch", "crop", "pad"])
def test_images_match_the_stream(tf_images, fit):
    stream = bf.image_batches(tf_images, 8, (40, 56), fit=fit, seed=5)
    ds = stream.to_tf_dataset()
    assert ds.element_spec[0].shape.as_list() == [None, 40, 56, 3]
    got, want = as_numpy(ds), list(stream)
    assert [len(x) for x, _ in got] == [len(x) for x, _ in want]
    (xg, yg), (xw, yw) = flat(got), flat(want)
    assert xg.dtype == xw.dtype == np.uint8 and xg.shape == xw.shape
    np.testing.assert_array_equal(yg, yw)  # the same rows in the same shuffled order
    # different JPEG decoders and resampling kernels: close, not equal
    diff = np.abs(xg.astype(np.float32) - xw).mean(axis=(1, 2, 3))
    assert np.median(diff) < 5 and diff.max() < 15, diff


def test_image_options_grayscale_float(tf_images):
    stream = bf.image_batches(tf_images, 16, (24, 24), channels=1, dtype="float32", seed=1)
    x, _ = next(iter(stream.to_tf_dataset()))
    assert x.shape == (16, 24, 24, 1) and x.dtype.name == "float32"
    values = x.numpy()
    assert values.max() <= 255 and np.array_equal(values, np.round(values))


def test_next_epoch_and_rest_of_epoch(tf_images):
    stream = bf.image_batches(tf_images, 8, (16, 16), seed=2)
    epochs = [flat(list(stream))[1] for _ in range(2)]
    fresh = bf.image_batches(tf_images, 8, (16, 16), seed=2)
    np.testing.assert_array_equal(flat(as_numpy(fresh.to_tf_dataset(epoch=1)))[1], epochs[1])
    it = iter(fresh)
    head = flat([next(it), next(it)])[1]
    it.close()  # two batches read: the dataset holds the rest of the epoch
    rest = flat(as_numpy(fresh.to_tf_dataset()))[1]
    np.testing.assert_array_equal(rest, epochs[0][16:])
    assert_resume_matches(list(epochs[0]), list(head), list(rest))


def test_unsupported_formats_raise_or_are_left_out(images):
    stream = bf.image_batches(images, 8, (16, 16), seed=0)
    with pytest.raises(ValueError, match=r"3 of \d+ files .*TIFF"):
        stream.to_tf_dataset()
    with pytest.warns(UserWarning, match="left out"):
        ds = stream.to_tf_dataset(unsupported="skip")
    assert sum(len(x) for x, _ in ds) == len(images) - 3
    with pytest.raises(ValueError, match="unsupported"):
        stream.to_tf_dataset(unsupported="ignore")


def test_bad_files_are_skipped_or_raise(data_sample):
    tf = pytest.importorskip("tensorflow")
    broken = read_manifest(data_sample / "broken" / "images.csv", kind="image")
    stream = bf.image_batches(broken, 4, (16, 16), shuffle=False)
    with pytest.warns(UserWarning):
        good = sum(len(x) for x, _ in stream)
    ds = stream.to_tf_dataset()
    assert sum(len(x) for x, _ in ds) == good  # the same files dropped, batches refilled
    with pytest.raises(tf.errors.OpError):
        for _ in stream.to_tf_dataset(on_error="raise"):
            pass


def test_audio_matches_the_stream(data_sample):
    manifest = build_manifest(data_sample / "audio", kind="audio", progress=False)
    stream = bf.audio_batches(manifest, 8, 16000, 1.0, shuffle=False, with_paths=True)
    with pytest.raises(ValueError, match="16-bit PCM WAV"):
        stream.to_tf_dataset()
    with pytest.warns(UserWarning, match="PCM_24"):
        (xg, yg) = flat(as_numpy(stream.to_tf_dataset(unsupported="skip")))
    rows = [r for r in stream]
    paths = np.concatenate([p for _, _, p in rows])
    wav16 = [i for i, p in enumerate(paths) if _is_pcm16(p)]
    xw, yw = np.concatenate([x for x, _, _ in rows])[wav16], np.concatenate([y for _, y, _ in rows])
    assert xg.shape == (len(wav16), 16000) and xg.dtype == np.float32
    np.testing.assert_array_equal(yg, yw[wav16])
    native = [k for k, i in enumerate(wav16) if _rate(paths[i]) == 16000]
    assert native  # files at the target rate decode to the very same samples
    np.testing.assert_allclose(xg[native], xw[native], atol=1e-6)
    # FFT resampling instead of soxr: the same sound, not the same samples
    assert np.abs(xg - xw).mean() < 0.01


def _is_pcm16(path: str) -> bool:
    import soundfile as sf

    info = sf.info(path)
    return info.format == "WAV" and info.subtype == "PCM_16"


def _rate(path: str) -> int:
    import soundfile as sf

    return sf.info(path).samplerate


def test_audio_logmel_and_random_crop(data_sample):
    manifest = build_manifest(data_sample / "audio", kind="audio", progress=False)
    native = manifest.subset(
        [i for i, p in enumerate(manifest.paths) if _is_pcm16(p) and _rate(p) == 16000]
    )
    stream = bf.audio_batches(native, 4, 16000, 0.5, features="logmel", shuffle=False)
    xg, _ = flat(as_numpy(stream.to_tf_dataset()))
    xw, _ = flat(list(stream))
    assert xg.shape == xw.shape == (len(native), 1 + 8000 // 160, 64)
    np.testing.assert_allclose(xg, xw, atol=0.05)  # librosa's mel filters and dB scale
    train = bf.audio_batches(native, 4, 16000, 0.25, crop="random", seed=3)
    a, b = flat(as_numpy(train.to_tf_dataset()))[0], flat(as_numpy(train.to_tf_dataset()))[0]
    np.testing.assert_array_equal(a, b)  # random crops, reproducible from the seed
    assert a.shape == (len(native), 4000)


def test_text_with_text_vectorization_matches_the_stream(data_sample):
    keras = pytest.importorskip("keras")
    manifest = build_manifest(data_sample / "text", kind="text", progress=False)
    layer = keras.layers.TextVectorization(max_tokens=300)
    layer.adapt([decode_text(p) for p in manifest.paths])
    for max_length in (None, 24):
        stream = bf.text_batches(manifest, 8, tokenizer=layer, max_length=max_length, seed=4)
        got, want = as_numpy(stream.to_tf_dataset()), list(stream)
        assert len(got) == len(want)
        for (xg, yg), (xw, yw) in zip(got, want, strict=True):
            assert xg.dtype == np.int32
            np.testing.assert_array_equal(xg, xw)  # cp1252 fallback and CRLF included
            np.testing.assert_array_equal(yg, yw)
    plain = bf.text_batches(manifest, 8, max_length=8)
    with pytest.raises(TypeError, match="TextVectorization"):
        plain.to_tf_dataset()


def test_text_bad_files_are_dropped(data_sample):
    keras = pytest.importorskip("keras")
    broken = read_manifest(data_sample / "broken" / "text.csv", kind="text")
    layer = keras.layers.TextVectorization(max_tokens=100)
    layer.adapt(["a few words"])
    stream = bf.text_batches(broken, 4, tokenizer=layer, max_length=8, shuffle=False)
    with pytest.warns(UserWarning):
        good = sum(len(x) for x, _ in stream)
    assert sum(len(x) for x, _ in stream.to_tf_dataset()) == good == len(broken) - 2


def test_packed_source_gives_the_same_samples(tf_images, tmp_path):
    pack(tf_images, tmp_path / "packed", shard_mb=0.3, progress=False)
    loose = flat(as_numpy(bf.image_batches(tf_images, 8, (16, 16), seed=1).to_tf_dataset()))
    packed = bf.image_batches(str(tmp_path / "packed"), 8, (16, 16), seed=1)
    got = flat(as_numpy(packed.to_tf_dataset()))
    assert digests(got[0]) == digests(loose[0])  # shard order, not the stream's: same samples
    assert np.bincount(got[1]).tolist() == np.bincount(loose[1]).tolist()
    parts = [
        flat(as_numpy(bf.image_batches(packed.engine.source, 8, (16, 16), seed=1, shard=(i, 2))
                      .to_tf_dataset()))[0]
        for i in range(2)
    ]  # fmt: skip
    assert sorted(digests(parts[0]) + digests(parts[1])) == digests(loose[0])
    assert not set(digests(parts[0])) & set(digests(parts[1]))


def test_a_cached_stream_still_reads_its_files(tf_images, tmp_path):
    pack(tf_images, tmp_path / "packed", shard_mb=0.3, progress=False)
    kw = {"seed": 1, "cache": tmp_path / "cache"}
    stream = bf.image_batches(str(tmp_path / "packed"), 8, (16, 16), **kw)
    assert stream.cache is not None and stream.engine.store is stream.cache
    plain = bf.image_batches(str(tmp_path / "packed"), 8, (16, 16), seed=1)
    got = flat(as_numpy(stream.to_tf_dataset()))[0]
    assert digests(got) == digests(flat(as_numpy(plain.to_tf_dataset()))[0])


def test_a_damaged_record_ends_only_its_own_shard(tf_images, tmp_path):
    tf = pytest.importorskip("tensorflow")
    index = pack(tf_images, tmp_path / "packed", shard_mb=0.15, progress=False)
    assert len(index.shards) >= 3
    row = int(np.flatnonzero(index.shard == 1)[0])  # the first record of the second shard
    with open(index.shard_path(1), "r+b") as fh:
        fh.seek(int(index.offset[row]) + 5)
        byte = fh.read(1)
        fh.seek(int(index.offset[row]) + 5)
        fh.write(bytes([byte[0] ^ 0xFF]))
    stream = bf.image_batches(str(tmp_path / "packed"), 8, (16, 16), seed=1)
    got = sum(len(x) for x, _ in stream.to_tf_dataset())
    assert got == len(tf_images) - int((index.shard == 1).sum())  # the other shards all came
    with pytest.raises(tf.errors.DataLossError):
        for _ in stream.to_tf_dataset(on_error="raise"):
            pass


def test_shards_of_loose_files_are_disjoint_and_whole(tf_images):
    whole = digests(flat(list(bf.image_batches(tf_images, 5, (16, 16), seed=9)))[0])
    parts = [
        digests(flat(as_numpy(
            bf.image_batches(tf_images, 5, (16, 16), seed=9, shard=(i, 3)).to_tf_dataset()
        ))[0])
        for i in range(3)
    ]  # fmt: skip
    assert sorted(d for part in parts for d in part) == digests(
        flat(as_numpy(bf.image_batches(tf_images, 5, (16, 16), seed=9).to_tf_dataset()))[0]
    )
    assert len(whole) == sum(len(p) for p in parts)


# --- the tf.data service, on loopback ------------------------------------------------------------
@pytest.fixture(scope="module")
def service():
    """A dispatcher and two workers on localhost ports the OS picks; stopped afterwards."""
    tf = pytest.importorskip("tensorflow")
    svc = tf.data.experimental.service
    dispatcher = svc.DispatchServer(svc.DispatcherConfig(port=0))
    address = dispatcher.target.split("://")[1]
    workers = [
        svc.WorkerServer(svc.WorkerConfig(dispatcher_address=address, port=0)) for _ in range(2)
    ]
    try:
        yield dispatcher, workers
    finally:
        gc.collect()  # frees finished iterators now, so no worker waits on their jobs to stop
        for worker in workers:
            worker._stop()
        dispatcher._stop()


def distributed(ds, dispatcher):
    tf = pytest.importorskip("tensorflow")
    return ds.apply(
        tf.data.experimental.service.distribute(
            processing_mode="distributed_epoch", service=dispatcher.target
        )
    )


def test_service_delivers_every_index_exactly_once(service):
    tf = pytest.importorskip("tensorflow")
    dispatcher, workers = service
    ds = tf.data.Dataset.range(500).map(lambda i: i * 3).batch(7)
    got = np.concatenate([b.numpy() for b in distributed(ds, dispatcher)])
    assert sorted(got.tolist()) == list(range(0, 1500, 3))
    assert all(worker._num_tasks() >= 1 for worker in workers)  # both workers took part


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_service_runs_the_image_pipeline_exactly_once(service, tf_images, tmp_path, packed):
    dispatcher, _ = service
    source = pack(tf_images, tmp_path / "p", shard_mb=0.2, progress=False).root if packed else None
    stream = bf.image_batches(source or tf_images, 6, (20, 20), seed=3, on_error="raise")
    local = flat(as_numpy(stream.to_tf_dataset()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left out: every file is readable
        remote = flat(as_numpy(distributed(stream.to_tf_dataset(prefetch=False), dispatcher)))
    assert len(remote[0]) == len(tf_images)
    assert digests(remote[0]) == digests(local[0])  # each sample once, decoded identically
    assert np.bincount(remote[1]).tolist() == np.bincount(local[1]).tolist()
