"""Resume and shards on real image, audio and text streams, shuffled, with bad files present."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import assert_resume_matches, assert_same

import bytefeed_helpers as bf
from bytefeed_helpers import Manifest, build_manifest, read_manifest

pytestmark = pytest.mark.filterwarnings("ignore:.*skipped \\d+ bad file")


def _broken_plus_good(data_sample, kind: str, folder: str, csv: str, every: int) -> Manifest:
    """The broken sample manifest (missing, empty, truncated files) plus some good files."""
    broken = read_manifest(data_sample / "broken" / csv, kind=kind)
    good = build_manifest(data_sample / folder, kind=kind, progress=False)
    good = good.subset(np.arange(0, len(good), every))
    assert broken.class_names == good.class_names
    labels = np.concatenate([broken.labels, good.labels])
    return Manifest(broken.paths + good.paths, labels, broken.class_names, kind=kind)


@pytest.fixture(scope="module")
def manifests(data_sample) -> dict[str, Manifest]:
    return {
        "image": _broken_plus_good(data_sample, "image", "images", "images.csv", 6),
        "audio": _broken_plus_good(data_sample, "audio", "audio", "audio.csv", 4),
        "text": _broken_plus_good(data_sample, "text", "text", "text.csv", 3),
    }


def make(kind: str, manifest: Manifest, **kw) -> bf.Stream:
    """A shuffled training stream of ``kind`` (random audio crops), yielding paths too."""
    kw.setdefault("seed", 21)
    common = {"with_paths": True, "workers": 2, **kw}
    if kind == "image":
        return bf.image_batches(manifest, 4, (24, 24), **common)
    if kind == "audio":
        return bf.audio_batches(manifest, 3, 8000, 0.25, crop="random", **common)
    return bf.text_batches(manifest, 3, max_length=12, **common)


def batches(stream, count: int | None = None) -> list[tuple]:
    """The next ``count`` batches (crossing into new epochs), or the rest of this epoch."""
    out: list[tuple] = []
    it = iter(stream)
    while count is None or len(out) < count:
        try:
            out.append(next(it))
        except StopIteration:
            if count is None:
                break
            it = iter(stream)
    it.close()
    return out


KINDS = ["image", "audio", "text"]


def test_the_resume_assertion_catches_repeats_losses_and_reorders():
    full = [(np.array([i, i + 1]), f"p{i}") for i in range(5)]
    assert_resume_matches(full, full[:2], full[2:])
    assert_resume_matches(full, [], full)
    assert_resume_matches(full, full[:2], full[2:4], rest="part")
    assert_resume_matches(full, full[:2], full[2:] + full[:1], rest="more")
    wrong = {
        "a batch repeated": (full[:2], full[1:]),
        "a batch lost": (full[:2], full[3:]),
        "two batches swapped": (full[:2], [full[3], full[2], full[4]]),
        "one value changed": (full[:2], [*full[2:4], (np.array([4, 6]), "p4")]),
        "a path changed": (full[:2], [*full[2:4], (np.array([4, 5]), "p5")]),
        "the first part off": (full[1:3], full[3:]),
    }
    for what, (first, resumed) in wrong.items():
        with pytest.raises(AssertionError):
            assert_resume_matches(full, first, resumed)
            raise ValueError(f"not caught: {what}")
    with pytest.raises(AssertionError):
        assert_resume_matches(full, full[:2], [], rest="part")  # nothing resumed
    with pytest.raises(AssertionError):
        assert_resume_matches(full, full[:2], full[2:4], rest="more")  # stopped short


@pytest.mark.parametrize("kind", KINDS)
def test_resume_continues_exactly_mid_epoch_and_at_boundaries(kind, manifests):
    manifest = manifests[kind]
    full = make(kind, manifest)
    epochs = [batches(full) for _ in range(3)]
    expected = [b for epoch in epochs for b in epoch]
    n0 = len(epochs[0])
    assert full.errors and n0 >= 4  # bad files were met, and the epoch has room to stop in
    # stop: at the start, mid-epoch, just before and at the epoch boundary, in epoch 1
    for stop in sorted({0, 1, n0 // 2, n0 - 1, n0, n0 + 2}):
        first = make(kind, manifest)
        head = batches(first, stop)
        state = json.loads(json.dumps(first.state()))
        second = make(kind, manifest, seed=None, resume=state)  # seed from the state
        tail = []
        while len(head) + len(tail) < len(expected):
            tail += batches(second)
        assert_resume_matches(expected, head, tail, label=f"{kind}, stop {stop}")
        errors = [tuple(e) for e in first.errors + second.errors]
        assert errors == [tuple(e) for e in full.errors], stop  # every skip recorded once


@pytest.mark.parametrize("kind", KINDS)
def test_state_after_a_whole_epoch_starts_the_next(kind, manifests):
    manifest = manifests[kind]
    reference = make(kind, manifest)
    first_epoch = batches(reference)
    second_epoch = batches(reference)
    stream = make(kind, manifest)
    head = batches(stream)  # the loop ran to its end: the stream moved on to epoch 1
    state = stream.state()
    assert (state["epoch"], state["position"]) == (1, 0)
    resumed = batches(make(kind, manifest, resume=state))
    assert_resume_matches(first_epoch + second_epoch, head, resumed)
    assert_same(resumed, second_epoch)


@pytest.mark.parametrize("kind", KINDS)
def test_shards_are_disjoint_whole_and_balanced(kind, manifests):
    manifest = manifests[kind]
    whole = make(kind, manifest)
    n = len(whole)
    for count in (2, 3):
        shards = [make(kind, manifest, shard=(i, count)) for i in range(count)]
        sizes = [len(s) for s in shards]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1
        for epoch in range(2):
            seen: list[str] = []
            for s in shards:
                seen += [p for _, _, paths in batches(s) for p in paths]
                seen += [e.path for e in s.errors if e.epoch == epoch]
            # every row once per epoch across the shards: decoded or recorded as skipped
            assert sorted(seen) == sorted(manifest.paths), (count, epoch)


def test_a_shard_resumes_as_itself(manifests):
    manifest = manifests["image"]
    reference = make("image", manifest, shard=(1, 3))
    expected = batches(reference) + batches(reference)
    first = make("image", manifest, shard=(1, 3))
    head = batches(first, 1)
    second = make("image", manifest, shard=(1, 3), resume=first.state())
    tail = []
    while len(head) + len(tail) < len(expected):
        tail += batches(second)
    assert_resume_matches(expected, head, tail)
    with pytest.raises(ValueError, match="shard"):
        make("image", manifest, shard=(0, 3), resume=first.state())


def test_resume_rejects_a_different_manifest(manifests):
    state = make("image", manifests["image"]).state()
    other = manifests["image"].subset(np.arange(len(manifests["image"]) - 1))
    with pytest.raises(ValueError, match=r"rows|source"):
        make("image", other, resume=state)


def recording_model(keras, trained: list) -> object:
    """A tiny compiled model that appends every batch it trains on to ``trained``."""

    class Record(keras.layers.Layer):
        def call(self, x):
            trained.append(np.asarray(x))
            return x

    model = keras.Sequential(
        [keras.Input((24, 24, 3)), Record(), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    model.compile("sgd", "sparse_categorical_crossentropy", run_eagerly=True)
    return model


def test_keras_fit_resumed_mid_epoch_trains_on_from_there(manifests):
    """fit on a stream resumed mid-epoch trains the rest of that epoch, then runs on into the
    next: what it trains is exactly the uninterrupted sequence, nothing repeated or lost."""
    keras = pytest.importorskip("keras")
    manifest = manifests["image"]
    reference = make("image", manifest, with_paths=False)
    expected = [x for x, _ in batches(reference)] + [x for x, _ in batches(reference)]
    first = make("image", manifest, with_paths=False)
    head = [x for x, _ in batches(first, 2)]
    resumed = make("image", manifest, with_paths=False, resume=first.state())
    trained: list[np.ndarray] = []
    model = recording_model(keras, trained)
    model.fit(resumed, epochs=1, verbose=0)  # fit's default shuffle=True changes nothing
    assert len(trained) == len(resumed)
    assert_resume_matches(expected, head, trained, rest="part")


def test_batches_read_ahead_by_keras_are_not_lost(manifests):
    """TensorFlow fetches the next epoch's first batches before fit ends; a later fit or loop
    still gets them, so two fits of one epoch train exactly two epochs of the sequence."""
    keras = pytest.importorskip("keras")
    manifest = manifests["image"]
    reference = make("image", manifest, with_paths=False)
    expected = [x for _ in range(3) for x, _ in batches(reference)]
    stream = make("image", manifest, with_paths=False)
    trained: list[np.ndarray] = []
    model = recording_model(keras, trained)
    model.fit(stream, epochs=1, verbose=0)
    model.fit(stream, epochs=1, verbose=0)
    assert stream.state()["epoch"] == 2 and stream.state()["position"] == 0
    trained += [x for x, _ in batches(stream)]  # and a plain loop carries on from there
    assert len(trained) == len(expected)
    for got, want in zip(trained, expected, strict=True):
        np.testing.assert_array_equal(got, want)
