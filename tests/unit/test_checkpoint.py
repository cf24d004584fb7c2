"""StreamCheckpoint and load_state: the stream's position saved with the model, resumed exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import assert_resume_matches

from bytefeed_helpers import Manifest
from bytefeed_helpers.checkpoint import StreamCheckpoint, load_state, save_state
from bytefeed_helpers.engine import BatchEngine, stack
from bytefeed_helpers.options import StreamOptions
from bytefeed_helpers.sources import FileSource
from bytefeed_helpers.stream import Stream

N, BATCH = 23, 5


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    paths = []
    for i in range(N):
        p = tmp_path / f"{i:03d}.num"
        p.write_text(str(i))
        paths.append(p)
    return Manifest(paths, [i % 3 for i in range(N)], ["a", "b", "c"])


def make(manifest, **kw) -> Stream:
    kw.setdefault("seed", 11)

    def decode(path):
        return np.array([float(Path(path).read_text())], np.float32)

    return Stream(
        BatchEngine(FileSource(manifest), decode, stack, StreamOptions(batch_size=BATCH, **kw))
    )


def rows_of(stream) -> list[list[int]]:
    return [x[:, 0].astype(int).tolist() for x, _ in stream]


def fit_recording(stream, callbacks, epochs):
    """``model.fit`` on ``stream``; returns the batches of rows the model trained on."""
    import keras

    seen: list[list[int]] = []

    class Record(keras.layers.Layer):
        def call(self, x):
            seen.append(np.asarray(x)[:, 0].astype(int).tolist())
            return x

    model = keras.Sequential([keras.Input((1,)), Record(), keras.layers.Dense(3)])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss, run_eagerly=True)
    model.fit(stream, epochs=epochs, callbacks=callbacks, shuffle=False, verbose=0)
    return seen


def test_save_and_load_state_round_trip(tmp_path):
    state = {"seed": 3, "epoch": 2, "position": 4, "shard": [0, 1]}
    path = save_state(state, tmp_path / "deep" / "state.json")
    assert load_state(path) == state
    assert not list((tmp_path / "deep").glob("*.tmp"))  # written beside, then renamed
    with pytest.raises(FileNotFoundError):
        load_state(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not JSON"):
        load_state(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"seed": 1}))
    with pytest.raises(ValueError, match="missing epoch, position"):
        load_state(tmp_path / "other.json")


def test_state_urls_go_through_gfile():
    pytest.importorskip("tensorflow")
    url = "ram://bytefeed-checkpoint/state.json"
    save_state({"seed": 1, "epoch": 0, "position": 2}, url)
    assert load_state(url)["position"] == 2


def test_checkpoint_each_epoch_resumes_the_next_epoch(manifest, tmp_path):
    reference = make(manifest)
    expected = [rows_of(reference) for _ in range(3)]
    stream = make(manifest)
    cb = StreamCheckpoint(stream, tmp_path / "stream-{epoch:02d}.json")
    trained = fit_recording(stream, [cb], epochs=2)
    assert trained == expected[0] + expected[1]
    assert [Path(p).name for p in cb.saved] == ["stream-01.json", "stream-02.json"]
    state = load_state(cb.saved[0])
    assert (state["epoch"], state["position"]) == (1, 0)  # after epoch 0's last batch
    assert (load_state(cb.saved[1])["epoch"], load_state(cb.saved[1])["position"]) == (2, 0)
    resumed = make(manifest, seed=None, resume=state)  # the seed comes from the state
    # whole epochs: the first trained epoch, then the resumed stream's next two
    epochs_trained = [trained[: len(expected[0])]]
    assert_resume_matches(expected, epochs_trained, [rows_of(resumed), rows_of(resumed)])


def test_checkpoint_mid_epoch_counts_trained_batches_not_prefetched(manifest, tmp_path):
    reference = make(manifest)
    expected = rows_of(reference) + rows_of(reference)
    stream = make(manifest)
    cb = StreamCheckpoint(stream, tmp_path / "state.json", save_freq=2)
    trained = fit_recording(stream, [cb], epochs=1)
    assert trained == expected[:5]
    saved = [load_state(p) for p in cb.saved]
    assert [(s["epoch"], s["position"]) for s in saved[-1:]] == [(1, 0)]
    assert len(cb.saved) == 3 and len(set(cb.saved)) == 1  # two mid-epoch saves, then the end
    # resume from the first mid-epoch save (after 2 batches), replayed by hand
    mid = {**saved[-1], "epoch": 0, "position": 2}
    resumed = make(manifest, resume=mid)
    assert_resume_matches(expected, trained[:2], rows_of(resumed) + rows_of(resumed))


def test_mid_epoch_state_is_what_was_trained(manifest, tmp_path):
    stream = make(manifest)
    states = []

    class Spy(StreamCheckpoint):
        def _save(self, state):
            states.append((state["epoch"], state["position"]))

    fit_recording(stream, [Spy(stream, tmp_path / "s.json", save_freq=1)], epochs=1)
    # Keras reads ahead (and peeks at two batches first): the stream's own cursor runs ahead
    assert states == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 0), (1, 0)]


def test_bad_save_freq(manifest, tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        StreamCheckpoint(make(manifest), tmp_path / "s.json", save_freq=0)
