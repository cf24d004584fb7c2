"""The comparison pipelines: every one reads the manifest's files and yields one epoch."""

from __future__ import annotations

import os

import numpy as np
import pytest
from support import DATA

from bytefeed_helpers import build_manifest
from bytefeed_helpers.bench.baselines import (
    PIPELINES,
    Settings,
    SkippedPipeline,
    class_folders,
    make_pipeline,
    manifest_csv,
    pipeline_names,
)
from bytefeed_helpers.bench.data import make_audio_set


@pytest.fixture(scope="module")
def images():
    m = build_manifest(DATA / "images", kind="image", progress=False)
    return m.subset(np.arange(0, len(m), 3))  # 24 files, every format, three classes


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    # 16-bit PCM WAVs: TensorFlow's decode_wav reads no other kind (the sample set mixes them)
    return make_audio_set(tmp_path_factory.mktemp("wav"), 12, 22050, 0.75, progress=False)


@pytest.fixture(scope="module")
def docs():
    m = build_manifest(DATA / "text", kind="text", progress=False)

    def utf8(path: str) -> bool:  # the article's generator reads UTF-8 only, and crashes
        try:
            with open(path, encoding="utf-8") as fh:
                fh.read()
        except UnicodeDecodeError:
            return False
        return True

    return m.subset([i for i, p in enumerate(m.paths) if utf8(p)])


def built(name, manifest, settings, work):
    """``make_pipeline``, skipping the test where a peer's package is not installed (torch)."""
    try:
        return make_pipeline(name, manifest, settings, work)
    except SkippedPipeline as exc:
        pytest.skip(str(exc))


def epoch(pipeline) -> tuple[int, list]:
    pipeline.prepare()
    shapes, labels = [], []
    for batch in pipeline.batches():
        x, y = batch
        shapes.append(tuple(int(d) for d in x.shape))
        labels += np.asarray(y).tolist()
    pipeline.close()
    return sum(s[0] for s in shapes), shapes, labels


def test_names_per_kind():
    assert pipeline_names("image")[0] == "bytefeed"
    assert {"article", "preload", "tf.data", "keras", "bytefeed+cache"} <= set(PIPELINES["image"])
    assert "keras@native" in pipeline_names("audio")
    with pytest.raises(ValueError, match="kind"):
        pipeline_names("video")


def test_unknown_pipeline(images, tmp_path):
    with pytest.raises(ValueError, match="unknown image pipeline"):
        make_pipeline("dali", images, Settings("image"), tmp_path)


def test_class_folders_link_exactly_the_manifest(images, tmp_path):
    root = class_folders(images, tmp_path)
    found = {c.name: sorted(os.listdir(c)) for c in root.iterdir()}
    assert sorted(found) == images.class_names
    assert {c: len(v) for c, v in found.items()} == images.counts()
    one = root / "cat" / found["cat"][0]
    assert one.read_bytes() == open(images.paths[0], "rb").read()  # noqa: SIM115
    wav = class_folders(
        build_manifest(DATA / "audio", kind="audio", progress=False), tmp_path, (".wav",)
    )
    assert all(n.endswith(".wav") for c in wav.iterdir() for n in os.listdir(c))


def test_manifest_csv_is_what_the_article_reads(images, tmp_path):
    from bytefeed_helpers.bench.article import _read_rows

    paths, labels = _read_rows(manifest_csv(images, tmp_path))
    assert [os.path.realpath(p) for p in paths] == [os.path.realpath(p) for p in images.paths]
    assert labels == images.labels.tolist()


@pytest.mark.parametrize("name", PIPELINES["image"])
def test_image_pipelines_read_every_file(images, tmp_path, name):
    n, shapes, labels = epoch(built(name, images, Settings("image", size=32), tmp_path))
    assert n == len(images)
    assert all(s[1:] == (32, 32, 3) for s in shapes)
    assert sorted(labels) == sorted(images.labels.tolist())


@pytest.mark.parametrize("name", PIPELINES["audio"])
def test_audio_pipelines(clips, tmp_path, name):
    s = Settings("audio", batch_size=8, duration=0.5)
    n, shapes, _ = epoch(built(name, clips, s, tmp_path))
    assert n == len(clips)
    want = 11025 if name.endswith("@native") else 8000  # 0.5 s at 22.05 kHz or at 16 kHz
    assert all(shape[1] == want for shape in shapes)  # Keras keeps a channel axis: [B, N, 1]


@pytest.mark.parametrize("name", PIPELINES["text"])
def test_text_pipelines(docs, tmp_path, name):
    n, shapes, _ = epoch(built(name, docs, Settings("text", size=50), tmp_path))
    assert n == len(docs)
    if name != "article":  # the article pads to each batch's longest document
        assert all(s[1:] == (50,) for s in shapes)


def test_cache_pipeline_times_a_warm_epoch(images, tmp_path):
    p = make_pipeline("bytefeed+cache", images, Settings("image", size=32), tmp_path)
    p.prepare()  # the first epoch fills the cache
    stream = p.batches.__closure__[0].cell_contents
    assert stream.cache.complete
    assert sum(len(x) for x, _ in p.batches()) == len(images)
    assert stream.cache.hits >= len(images)
