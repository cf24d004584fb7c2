"""One cursor, guarded; an error budget; Ctrl-C stops a stream and its threads.

Keras's PyDataset has ``workers`` and ``use_multiprocessing`` knobs; set on a stream they
would read its batches out of order, or give each process its own cursor (duplicated and
missing samples). Two live iterators over one stream would share its cursor and hand out the
same batches twice. An epoch in which most files fail must not pass silently. The scenarios
follow Keras's ``py_dataset_adapter_test.py`` (workers / use_multiprocessing / max_queue_size
on a PyDataset, fit over it) with bytefeed's documented answer to each.
"""

from __future__ import annotations

import _thread
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support import DATA

import bytefeed_helpers as bf
from bytefeed_helpers.errors import TooManyBadFiles
from bytefeed_helpers.options import StreamOptions
from bytefeed_helpers.sources import FileSource
from bytefeed_helpers.stream import Stream

N = 24


@pytest.fixture
def numbers(tmp_path: Path) -> bf.Manifest:
    """``N`` tiny files, each holding its own row number."""
    paths = []
    for i in range(N):
        path = tmp_path / f"{i:03d}.num"
        path.write_text(str(i))
        paths.append(path)
    return bf.Manifest(paths, [i % 2 for i in range(N)], ["even", "odd"])


def read_number(path) -> np.ndarray:
    return np.array([int(Path(path).read_text())], dtype=np.int64)


def toy(manifest: bf.Manifest, decode=read_number, **kw) -> Stream:
    from bytefeed_helpers.engine import BatchEngine, stack

    kw = {"batch_size": 4, "seed": 1, "workers": 2, **kw}
    return Stream(BatchEngine(FileSource(manifest), decode, stack, StreamOptions(**kw)))


def rows_of(batches) -> list[int]:
    return [int(v) for x, *_ in batches for v in x[:, 0]]


def bytefeed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bytefeed-")]


# --- one cursor ----------------------------------------------------------------------------------
def test_a_second_live_iterator_raises_instead_of_repeating_batches(numbers):
    stream = toy(numbers)
    first = iter(stream)
    seen = rows_of([next(first)])
    with pytest.raises(RuntimeError, match="already being iterated"):
        iter(stream)
    seen += rows_of(first)  # the first iterator is unharmed and finishes the epoch
    assert sorted(seen) == list(range(N))
    assert sorted(rows_of(stream)) == list(range(N))  # once it is done, a new one is fine


def test_an_iterator_never_started_is_superseded_not_shared(numbers):
    stream = toy(numbers)
    unused = iter(stream)  # tqdm.auto makes one it never uses, then iterates again
    newer = iter(stream)
    assert sorted(rows_of(newer)) == list(range(N))
    with pytest.raises(RuntimeError, match="superseded"):
        next(unused)


def test_a_closed_iterator_frees_the_cursor(numbers):
    stream = toy(numbers)
    it = iter(stream)
    head = rows_of([next(it)])
    it.close()
    rest = rows_of(stream)  # continues where the closed one stopped: nothing twice
    assert sorted(head + rest) == list(range(N))


def test_tqdm_auto_over_a_stream_yields_every_sample_once(numbers):
    from tqdm.auto import tqdm

    stream = toy(numbers)
    assert sorted(rows_of(tqdm(stream, total=len(stream), disable=True))) == list(range(N))
    assert sorted(rows_of(tqdm(stream, total=len(stream)))) == list(range(N))


# --- Keras's own knobs ---------------------------------------------------------------------------
def test_keras_workers_and_multiprocessing_are_refused_before_any_batch(numbers):
    stream = toy(numbers)
    with pytest.raises(ValueError, match=r"workers must stay 1.*Received: workers=2"):
        stream.workers = 2
    with pytest.raises(ValueError, match=r"use_multiprocessing must stay False"):
        stream.use_multiprocessing = True
    stream.workers = 1  # what Keras itself may set
    stream.use_multiprocessing = False
    assert stream.workers == 1 and stream.use_multiprocessing is False
    assert stream.engine.workers == 2  # the stream's own threads are untouched
    assert stream.engine.position == 0  # nothing was read


def test_fit_reads_every_batch_in_order_with_keras_defaults(numbers):
    keras = pytest.importorskip("keras")
    stream = toy(numbers, shuffle=False, decode=lambda p: read_number(p).astype("float32"))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seen: list[int] = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(batch)

    model.fit(stream, epochs=2, verbose=0, callbacks=[Record()])
    assert seen == list(range(len(stream))) * 2
    assert stream.epoch == 2 and stream.engine.position == 0


# --- the error budget ----------------------------------------------------------------------------
def with_missing(manifest: bf.Manifest, bad: int) -> bf.Manifest:
    paths = [*manifest.paths[: N - bad], *[f"/nowhere/missing_{i}.num" for i in range(bad)]]
    return bf.Manifest(paths, manifest.labels.tolist(), manifest.class_names)


def test_an_epoch_of_mostly_bad_files_stops_with_the_commonest_reasons(numbers):
    stream = toy(with_missing(numbers, 20), shuffle=False)
    with pytest.raises(TooManyBadFiles) as info:
        list(stream)
    message = str(info.value)
    assert "of the 24 files of epoch 0 failed" in message and "max_error_rate=0.5" in message
    assert "Most common reasons: 'file not found' x " in message  # named, with a count


def test_a_share_under_the_budget_is_skipped_and_recorded(numbers):
    stream = toy(with_missing(numbers, 10), shuffle=False)  # 10 of 24 < half
    assert rows_of(stream) == list(range(N - 10))
    assert len(stream.errors) == 10


def test_no_budget_skips_any_number_and_zero_budget_stops_at_the_first(numbers):
    lenient = toy(with_missing(numbers, 20), shuffle=False, max_error_rate=None)
    assert rows_of(lenient) == list(range(N - 20)) and len(lenient.errors) == 20
    strict = toy(with_missing(numbers, 1), shuffle=False, max_error_rate=0.0)
    with pytest.raises(TooManyBadFiles, match="1 of the 24 files"):
        list(strict)


def test_the_budget_stops_fit_too(numbers):
    keras = pytest.importorskip("keras")
    stream = toy(with_missing(numbers, 20), decode=lambda p: read_number(p).astype("float32"))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # (the TensorFlow backend wraps errors raised while it reads a dataset in its own type)
    with pytest.raises(Exception, match=r"TooManyBadFiles: stream: \d+ of the 24 files"):
        model.fit(stream, epochs=1, verbose=0)


def test_the_default_budget_lets_the_sample_broken_folder_through():
    for kind, build in (("image", lambda m: bf.image_batches(m, 4, 16, shuffle=False)),):
        manifest = bf.read_manifest(DATA / "broken" / f"{kind}s.csv", kind=kind)
        stream = build(manifest)
        good = sum(len(x) for x, _ in stream)
        assert good + len(stream.errors) == len(manifest) and good > len(stream.errors)


# --- Ctrl-C --------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_ctrl_c_in_a_loop_stops_the_stream_and_its_threads_within_a_second(numbers):
    def slow(path):
        time.sleep(0.05)
        return read_number(path)

    many = bf.Manifest([*numbers.paths] * 20, numbers.labels.tolist() * 20, numbers.class_names)
    stream = toy(many, decode=slow, workers=2, batch_size=4)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            for _ in stream:
                pass
        interrupted = time.perf_counter()
    finally:
        timer.cancel()
    while bytefeed_threads() and time.perf_counter() - interrupted < 1.0:
        time.sleep(0.02)
    assert not bytefeed_threads(), bytefeed_threads()
    assert 0 < stream.engine.position < len(stream)  # stopped mid-epoch, cursor kept


@pytest.mark.timeout(60)
def test_ctrl_c_in_fit_stops_the_streams_threads_within_a_second(numbers):
    keras = pytest.importorskip("keras")

    def slow(path):
        time.sleep(0.01)
        return read_number(path).astype("float32")

    many = bf.Manifest([*numbers.paths] * 40, numbers.labels.tolist() * 40, numbers.class_names)
    stream = toy(many, decode=slow, workers=2, batch_size=4)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    started = threading.Event()

    class Started(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                started.set()

    def interrupt_once_training() -> None:
        if started.wait(30):
            _thread.interrupt_main()

    threading.Thread(target=interrupt_once_training, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        model.fit(stream, epochs=1, verbose=0, callbacks=[Started()])
    interrupted = time.perf_counter()
    # TensorFlow keeps its hold on the stream's prefetching generator after the interrupt;
    # the stream's threads end on their own once idle
    while bytefeed_threads() and time.perf_counter() - interrupted < 1.0:
        time.sleep(0.02)
    assert not bytefeed_threads(), bytefeed_threads()
