"""Epoch order and elastic resume: a state saved on N shards continues on M shards.

The global order of an epoch depends on ``(seed, epoch)`` only; a state records, besides
the shard's own batch, the global position in samples that all shards reached together
(shards step together in data-parallel training). Restored on another number of shards, the
rest of the epoch is dealt afresh, so together the new shards take every remaining sample
once: nothing repeated or lost (Grain's ``ElasticIterator``, Mosaic's "elastic determinism").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bytefeed_helpers as bf
from bytefeed_helpers import order
from bytefeed_helpers.engine import BatchEngine, stack
from bytefeed_helpers.options import StreamOptions
from bytefeed_helpers.sources import FileSource
from bytefeed_helpers.stream import Stream

N = 50
BAD = {7, 19, 33}  # rows whose files are missing
BATCH = 4


@pytest.fixture
def numbers(tmp_path: Path) -> bf.Manifest:
    paths = []
    for i in range(N):
        path = tmp_path / f"{i:03d}.num"
        if i not in BAD:
            path.write_text(str(i))
        paths.append(path)
    return bf.Manifest(paths, [i % 2 for i in range(N)], ["even", "odd"])


def read_number(path) -> np.ndarray:
    return np.array([int(Path(path).read_text())], dtype=np.int64)


def shard_stream(manifest, shard, **kw) -> Stream:
    options = StreamOptions(batch_size=BATCH, seed=5, shard=shard, workers=2, **kw)
    return Stream(BatchEngine(FileSource(manifest), read_number, stack, options))


def take(stream: Stream, batches: int | None = None) -> list[int]:
    rows: list[int] = []
    it = iter(stream)
    for i, (x, _) in enumerate(it):
        rows += [int(v) for v in x[:, 0]]
        if batches is not None and i + 1 == batches:
            break
    it.close()
    return rows


GOOD = sorted(set(range(N)) - BAD)


def test_the_global_order_does_not_depend_on_the_shard_count(numbers):
    orders = {count: shard_stream(numbers, (0, count)).engine.epoch_order(3) for count in (1, 2, 5)}
    assert all(np.array_equal(orders[1], o) for o in orders.values())
    # every shard layout deals out the same epoch: the union of its shards, once each
    for count in (1, 3, 4):
        rows = sorted(r for i in range(count) for r in take(shard_stream(numbers, (i, count))))
        assert rows == GOOD


@pytest.mark.parametrize(("before", "after", "steps"), [(4, 3, 2), (2, 5, 3), (3, 1, 1), (1, 4, 5)])
def test_a_state_saved_on_n_shards_continues_on_m_shards(numbers, before, after, steps):
    old = [shard_stream(numbers, (i, before)) for i in range(before)]
    head = [r for s in old for r in take(s, steps)]  # every shard trains `steps` batches
    states = [s.state() for s in old]
    assert len({st["samples"] for st in states}) == 1  # all shards agree where they are
    assert states[0]["samples"] == steps * before * BATCH
    state = json.loads(json.dumps(states[0]))  # what a checkpoint file holds
    new = [shard_stream(numbers, (j, after), resume=state) for j in range(after)]
    tail = [r for s in new for r in take(s)]
    assert sorted(head + tail) == GOOD  # nothing repeated, nothing lost
    assert all(s.epoch == 1 and s.engine.position == 0 for s in new)
    # the next epoch is an ordinary one of M shards
    assert sorted(r for s in new for r in take(s)) == GOOD


def test_elastic_resume_keeps_every_bad_file_recorded_once_per_epoch(numbers):
    old = [shard_stream(numbers, (i, 4)) for i in range(4)]
    for s in old:
        take(s, 2)
    state = old[0].state()
    new = [shard_stream(numbers, (j, 3), resume=state) for j in range(3)]
    for s in new:
        take(s)
    bad_paths = {str(numbers.paths[i]) for i in BAD}
    seen = [e.path for s in old + new for e in s.errors if e.epoch == 0]
    assert sorted(seen) == sorted(bad_paths)  # each bad file of the epoch once, old or new


def test_a_state_at_the_end_of_an_epoch_starts_the_next_on_any_count(numbers):
    old = [shard_stream(numbers, (i, 2)) for i in range(2)]
    for s in old:
        take(s)
    state = old[1].state()
    assert state["epoch"] == 1 and state["samples"] == 0
    new = [shard_stream(numbers, (j, 3), resume=state) for j in range(3)]
    assert all(s.epoch == 1 and s.engine.position == 0 for s in new)
    assert sorted(r for s in new for r in take(s)) == GOOD


def test_the_same_count_resumes_shard_by_shard(numbers):
    old = shard_stream(numbers, (1, 3))
    take(old, 1)
    with pytest.raises(ValueError, match="each resumes its own state"):
        shard_stream(numbers, (0, 3), resume=old.state())


def test_elastic_resume_through_stream_checkpoint_in_fit(numbers, tmp_path):
    keras = pytest.importorskip("keras")
    from bytefeed_helpers.checkpoint import load_state

    def as_float(path):
        return read_number(path).astype("float32")

    def stream_of(shard, **kw):
        options = StreamOptions(batch_size=BATCH, seed=5, shard=shard, workers=2, **kw)
        return Stream(BatchEngine(FileSource(numbers), as_float, stack, options))

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # two shards in lockstep; shard 0's checkpoint after 3 trained batches is where the job
    # stops (Keras reads batches ahead of training: the state is what was trained)
    first = stream_of((0, 2))
    ckpt = bf.StreamCheckpoint(first, tmp_path / "stream-{batch}.json", save_freq=3)
    model.fit(first, epochs=1, verbose=0, callbacks=[ckpt])
    head = take(stream_of((0, 2)), 3) + take(stream_of((1, 2)), 3)
    state = load_state(tmp_path / "stream-3.json")
    assert state["samples"] == 3 * 2 * BATCH
    rest = [r for j in range(3) for r in take(stream_of((j, 3), resume=state))]
    assert sorted(head + rest) == GOOD


def test_shard_rows_counts_what_each_shard_reads():
    for rows, batch, drop in ((50, 4, False), (50, 4, True), (7, 8, False), (0, 3, False)):
        for count in (1, 2, 3, 5):
            total = sum(order.shard_rows(rows, batch, drop, (i, count)) for i in range(count))
            expected = (rows // batch) * batch if drop else rows
            assert total == expected
