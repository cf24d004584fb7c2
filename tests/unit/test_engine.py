"""The batch engine and its Stream adapter, on a toy decoder: order, errors, state, shutdown."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support import assert_resume_matches

from bytefeed_helpers import BadFileError, Manifest
from bytefeed_helpers.engine import BatchEngine, stack
from bytefeed_helpers.errors import BytefeedWarning
from bytefeed_helpers.options import StreamOptions
from bytefeed_helpers.sources import FileSource
from bytefeed_helpers.stream import Stream

N = 23


def read_number(path: str) -> np.ndarray:
    """Toy decoder: the file holds its own row number; 'bad' files raise."""
    text = Path(path).read_text()
    if text == "bad":
        raise BadFileError("deliberately bad")
    return np.array([int(text)], dtype=np.int64)


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    paths = []
    for i in range(N):
        p = tmp_path / f"{i:03d}.num"
        p.write_text(str(i))
        paths.append(p)
    return Manifest(paths, [i % 3 for i in range(N)], ["a", "b", "c"])


def make(manifest, decode=read_number, **kw) -> Stream:
    kw.setdefault("batch_size", 5)
    kw.setdefault("seed", 7)
    with_paths = kw.pop("with_paths", False)
    name = kw.pop("name", "stream")
    engine = BatchEngine(FileSource(manifest), decode, stack, StreamOptions(**kw), name=name)
    return Stream(engine, kind="toy", with_paths=with_paths)


def epoch_rows(stream) -> list[int]:
    return [int(v) for x, _ in stream for v in x[:, 0]]


def test_each_row_once_per_epoch_and_reshuffled(manifest):
    s = make(manifest, shuffle=True)
    assert len(s) == 5
    e0, e1 = epoch_rows(s), epoch_rows(s)
    assert sorted(e0) == sorted(e1) == list(range(N))
    assert e0 != e1 and s.epoch == 2


def test_seed_reproduces_order_and_shuffle_false_keeps_order(manifest):
    assert epoch_rows(make(manifest, seed=1)) == epoch_rows(make(manifest, seed=1))
    assert epoch_rows(make(manifest, seed=1)) != epoch_rows(make(manifest, seed=2))
    assert epoch_rows(make(manifest, shuffle=False)) == list(range(N))


def test_labels_stay_aligned_under_parallel_shuffle(manifest):
    s = make(manifest, workers=4, prefetch=3, with_paths=True)
    for x, y, paths in s:
        assert y.dtype == np.int32 and y.shape == (len(x),)
        assert (y == x[:, 0] % 3).all()
        assert [int(Path(p).stem) for p in paths] == x[:, 0].tolist()


def test_drop_remainder_and_partial_batch(manifest):
    assert [len(x) for x, _ in make(manifest, shuffle=False)] == [5, 5, 5, 5, 3]
    kept = make(manifest, shuffle=False, drop_remainder=True)
    assert len(kept) == 4 and [len(x) for x, _ in kept] == [5] * 4


def test_bad_files_skipped_recorded_and_summarised(manifest, tmp_path):
    Path(manifest.paths[3]).write_text("bad")
    Path(manifest.paths[4]).unlink()
    s = make(manifest, shuffle=False)
    with pytest.warns(BytefeedWarning, match="skipped 2 bad file"):
        rows = epoch_rows(s)
    assert rows == [i for i in range(N) if i not in (3, 4)]
    assert [(e.path, e.reason, e.epoch) for e in s.errors] == [
        (manifest.paths[3], "deliberately bad", 0),
        (manifest.paths[4], "file not found", 0),
    ]
    with pytest.warns(BytefeedWarning):
        epoch_rows(s)
    assert len(s.errors) == 4 and s.errors[-1].epoch == 1  # once per file and epoch
    assert s.write_errors(tmp_path / "errors.csv") == 4
    assert (tmp_path / "errors.csv").read_text().splitlines()[0] == "path,reason,epoch"


def test_on_error_raise_names_file(manifest):
    Path(manifest.paths[2]).write_text("bad")
    with pytest.raises(BadFileError, match=r"002\.num: deliberately bad"):
        epoch_rows(make(manifest, shuffle=False, on_error="raise"))


def test_all_bad_batch_is_left_out_when_iterating(manifest):
    for i in range(5):
        Path(manifest.paths[i]).write_text("bad")
    s = make(manifest, shuffle=False)
    with pytest.warns(BytefeedWarning):
        batches = list(s)
    assert len(batches) == 4 and batches[0][0][0, 0] == 5


def keras_epoch(stream, order=None) -> list[tuple]:
    """Read one epoch the way Keras does: begin, ask every index (in ``order``), end."""
    stream.on_epoch_begin()
    got = [stream[i] for i in (order or range(len(stream)))]
    stream.on_epoch_end()
    return got


def test_keras_indexed_access_matches_iteration(manifest):
    a, b = make(manifest), make(manifest)
    peek = [a[0], a[1]]  # Keras looks at two batches first: the cursor stays put
    assert a.state()["position"] == 0
    a.on_epoch_end()  # as Keras' reset() does, outside an epoch: ignored
    by_keras = keras_epoch(a)
    by_iter = list(b)
    np.testing.assert_array_equal(peek[1][0], by_keras[1][0])
    for (xa, ya), (xb, yb) in zip(by_keras, by_iter, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert a.epoch == 1 and b.epoch == 1
    np.testing.assert_array_equal(a[2][0], list(b)[2][0])  # out of order works outside fit


def test_keras_shuffled_indices_still_get_the_stream_order(manifest):
    """fit(shuffle=True) reorders indices; the stream serves its own order and keeps
    prefetching, so nothing is repeated or lost."""
    a, b = make(manifest), make(manifest)
    got = keras_epoch(a, order=[3, 0, 4, 1, 2])
    for (xa, _), (xb, _) in zip(got, list(b), strict=True):
        np.testing.assert_array_equal(xa, xb)


def test_keras_resumed_mid_epoch_runs_on_into_the_next(manifest):
    full = make(manifest)
    expected = [r for _ in range(2) for x, _ in full for r in x[:, 0].tolist()]
    first = make(manifest)
    it = iter(first)
    head = [r for _ in range(2) for r in next(it)[0][:, 0].tolist()]
    resumed = make(manifest, seed=None, resume=first.state())
    rows = [r for _ in range(2) for x, _ in keras_epoch(resumed) for r in x[:, 0].tolist()]
    assert_resume_matches(expected, head, rows, rest="more")  # Keras asked into epoch 2
    assert resumed.state()["epoch"] == 2 and resumed.state()["position"] == 2


def test_keras_access_passes_over_all_bad_batch(manifest):
    for i in range(5):
        Path(manifest.paths[i]).write_text("bad")
    s = make(manifest, shuffle=False)
    x, _ = s[0]
    assert x[:, 0].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(IndexError):
        s[len(s)]
    with pytest.warns(BytefeedWarning):
        epoch = keras_epoch(s, order=range(4))  # Keras asks for 5 but 4 fill the epoch
    assert [int(x[0, 0]) for x, _ in epoch] == [5, 10, 15, 20]
    assert s.epoch == 1 and s.state()["position"] == 0


def test_break_stops_workers_and_keeps_cursor(manifest):
    def slow(path):
        time.sleep(0.01)
        return read_number(path)

    s = make(manifest, decode=slow, workers=3, name="breaking")
    for _ in s:
        break
    assert not [t for t in threading.enumerate() if t.name.startswith("bytefeed-breaking")]
    assert s.state()["position"] == 1 and s.epoch == 0
    rest = epoch_rows(s)  # iterating again continues the epoch
    assert len(rest) == N - 5
    s.close()


def test_state_is_json_and_resume_continues_exactly(manifest):
    full = make(manifest)
    expected = epoch_rows(full) + epoch_rows(full)
    for stop in (0, 2, 5, 7):  # mid-epoch, epoch boundary, into the second epoch
        first = make(manifest)
        head: list[int] = []
        it = iter(first)
        for _ in range(stop):
            try:
                x, _ = next(it)
            except StopIteration:
                it = iter(first)
                x, _ = next(it)
            head += x[:, 0].tolist()
        state = json.loads(json.dumps(first.state()))
        it.close()
        second = make(manifest, seed=None, resume=state)
        tail: list[int] = []
        while len(head) + len(tail) < len(expected):
            tail += epoch_rows(second)
        assert_resume_matches(expected, head, tail, label=f"stop {stop}")


def test_resume_rejects_other_stream(manifest):
    state = make(manifest).state()
    with pytest.raises(ValueError, match="batch_size"):
        make(manifest, batch_size=4, resume=state)


def test_shards_disjoint_union_and_balanced(manifest):
    shards = [make(manifest, shard=(i, 3)) for i in range(3)]
    parts = [epoch_rows(s) for s in shards]
    assert sorted(r for part in parts for r in part) == list(range(N))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError, match="seed"):
        make(manifest, seed=None, shard=(0, 2))
    with pytest.raises(ValueError, match="shard"):
        make(manifest, shard=(2, 2))


def test_augment_runs_only_on_training_streams(manifest):
    calls = []

    def augment(x, rng):
        calls.append(len(x))
        return x + 1000

    train = make(manifest, augment=augment)
    assert min(epoch_rows(train)) >= 1000 and train.augment_enabled
    evaluation = make(manifest, augment=augment, shuffle=False)
    assert max(epoch_rows(evaluation)) < N and not evaluation.augment_enabled
    train.augment_enabled = False
    assert max(epoch_rows(train)) < N


def test_bad_arguments(manifest):
    with pytest.raises(ValueError, match="on_error"):
        make(manifest, on_error="ignore")
    with pytest.raises(ValueError, match="batch_size"):
        make(manifest, batch_size=0)


def test_model_fit_on_a_stream(manifest):
    keras = pytest.importorskip("keras")

    def features(path):
        v = read_number(path).astype("float32")
        return np.concatenate([v % 3 == k for k in range(3)]).astype("float32")

    s = make(manifest, decode=features)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(
        s, epochs=2, validation_data=make(manifest, decode=features, shuffle=False), verbose=0
    )
    assert len(history.history["loss"]) == 2 and s.epoch == 2


def test_last_batches_are_split_between_workers_and_come_out_the_same(manifest):
    Path(manifest.paths[21]).write_text("bad")  # in the last batch with shuffle=False
    threads: dict[int, str] = {}

    def decode(path: str) -> np.ndarray:
        threads[int(Path(path).stem)] = threading.current_thread().name
        time.sleep(0.005)  # long enough for every worker to take a piece
        return read_number(path)

    augmented_on: set[str] = set()

    def augment(x, rng):
        augmented_on.add(threading.current_thread().name)
        return x + rng.integers(0, 1000, size=x.shape)

    def run(workers: int) -> tuple[list, list]:
        s = make(manifest, decode=decode, workers=workers, shuffle=False, training=True)
        s.engine.augment = augment
        with pytest.warns(BytefeedWarning):
            batches = [(x.tolist(), y.tolist()) for x, y in s]
        return batches, [(e.path, e.reason) for e in s.errors]

    whole = run(1)
    split = run(3)
    assert split == whole  # same rows, labels, augmentation and skipped files
    assert len(whole[0]) == 5 and len(whole[0][-1][0]) == 2  # rows 20 and 22; 21 was bad
    last = {threads[r] for r in (20, 21, 22)}
    first = {threads[r] for r in range(5)}
    assert len(last) > 1 and len(first) == 1  # the tail was shared, the head built whole
    assert threading.main_thread().name not in augmented_on  # joined pieces: on a worker too
