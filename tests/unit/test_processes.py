"""parallelism="processes": worker processes build the same batches as threads, in the same
order, with the same errors and state; failures (a bad file, a bug, a killed worker, an
unpicklable decoder) are errors, never hangs; no process or shared-memory file outlives a
stream.

Ported scenarios: PyTorch's DataLoader tests (a worker killed mid-epoch raises instead of
hanging; an exception in a worker reaches the caller; workers end when the iterator is
dropped) and Keras's ``py_dataset_adapter_test`` (multiprocessing workers give every batch
once and in order, epoch after epoch).
"""

from __future__ import annotations

import functools
import glob
import multiprocessing
import os

import numpy as np
import pytest
import support
from support import DATA, assert_resume_matches, assert_same

import bytefeed_helpers as bf
from bytefeed_helpers.engine import BatchEngine, Decoder, stack
from bytefeed_helpers.options import StreamOptions
from bytefeed_helpers.processes import ProcessWorkers, WorkerDied
from bytefeed_helpers.sources import FileSource

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def images():
    return bf.build_manifest(DATA / "images", kind="image", progress=False)


def shm_files() -> set[str]:
    return set(glob.glob("/dev/shm/bytefeed-*"))


def epochs(stream, n=2):
    return [[tuple(np.copy(a) for a in batch) for batch in stream] for _ in range(n)]


def test_same_batches_as_threads_with_augmentation(images):
    before = shm_files()
    kw = {"batch_size": 8, "image_size": (48, 48), "seed": 3, "workers": 2}
    aug = bf.ImageAugment(rotation=0.1, brightness=0.2)
    threads = bf.image_batches(images, augment=aug, **kw)
    procs = bf.image_batches(images, augment=aug, parallelism="processes", **kw)
    want, got = epochs(threads), epochs(procs)
    assert_same(got, want)
    assert sum(len(b[0]) for b in got[0]) == len(images)
    assert procs.state() == threads.state()
    procs.close()
    assert procs.engine._processes is None
    assert shm_files() <= before  # every buffer unlinked


def test_broken_files_recorded_as_threads_record_them():
    broken = bf.read_manifest(DATA / "broken" / "images.csv")
    kw = {"batch_size": 3, "image_size": (32, 32), "seed": 0, "shuffle": True, "workers": 2}
    threads = bf.image_batches(broken, max_error_rate=None, **kw)
    procs = bf.image_batches(broken, max_error_rate=None, parallelism="processes", **kw)
    with procs:
        assert_same(epochs(procs), epochs(threads))
        assert [(e.path, e.reason, e.epoch) for e in procs.errors] == [
            (e.path, e.reason, e.epoch) for e in threads.errors
        ]
        assert procs.errors  # the folder has bad files


def test_on_error_raise_names_the_file():
    broken = bf.read_manifest(DATA / "broken" / "images.csv")
    stream = bf.image_batches(
        broken, 3, (32, 32), shuffle=False, on_error="raise", parallelism="processes", workers=2
    )
    with pytest.raises(bf.BadFileError) as info, stream:
        for _ in stream:
            pass
    assert info.value.path and info.value.path in broken.paths
    assert stream.engine._processes is None  # the epoch ended early: its workers stopped


def test_resume_mid_epoch(images):
    kw = {"batch_size": 8, "image_size": (32, 32), "seed": 9, "workers": 2}
    full = epochs(bf.image_batches(images, **kw), 1)[0]
    stream = bf.image_batches(images, parallelism="processes", **kw)
    first = []
    for batch in stream:
        first.append(tuple(np.copy(a) for a in batch))
        if len(first) == 4:
            break
    state = stream.state()
    stream.close()
    resumed = bf.image_batches(images, parallelism="processes", resume=state, **kw)
    with resumed:
        assert_resume_matches(full, first, [tuple(np.copy(a) for a in b) for b in resumed])


def test_whole_clips_and_text_through_shared_memory():
    clips = bf.build_manifest(DATA / "audio", kind="audio", progress=False)
    kw = {"batch_size": 8, "sample_rate": 8000, "duration": None, "seed": 1, "workers": 2}
    a = epochs(bf.audio_batches(clips, **kw), 1)
    with bf.audio_batches(clips, parallelism="processes", **kw) as p:
        b = epochs(p, 1)
    assert_same(b, a)
    assert len({x.shape[1] for x, _ in a[0]}) > 1  # the batches differ in length
    docs = bf.build_manifest(DATA / "text", kind="text", progress=False)
    tkw = {"batch_size": 8, "max_length": 40, "seed": 2, "workers": 2}
    t = bf.text_batches(docs, **tkw)
    with bf.text_batches(docs, tokenizer=t.tokenizer, parallelism="processes", **tkw) as tp:
        assert_same(epochs(tp, 1), epochs(t, 1))


def test_a_killed_worker_is_an_error_not_a_hang(images):
    victim = os.path.basename(images.paths[5])
    decode = functools.partial(support.decode_or_die, die_on=victim)
    engine = BatchEngine(
        FileSource(images),
        Decoder(decode),
        stack,
        StreamOptions(batch_size=4, shuffle=False, workers=2, parallelism="processes"),
    )
    with pytest.raises(WorkerDied, match=r"worker process \d ended \(exit code -9\)"):
        list(engine.batches())
    assert engine._processes is None
    assert not [p for p in multiprocessing.active_children() if "process-" in p.name]


def test_an_exception_in_a_worker_reaches_the_caller(images):
    decode = functools.partial(support.decode_or_fail, fail_on=os.path.basename(images.paths[9]))
    options = StreamOptions(batch_size=4, shuffle=False, workers=2, parallelism="processes")
    engine = BatchEngine(FileSource(images), Decoder(decode), stack, options)
    # a bug is not a bad file: "skip" records it by its reason, as threads do
    rows = sum(len(b.y) for b in engine.batches())
    assert rows == len(images) - 1
    assert [e.reason for e in engine.errors] == [
        "ZeroDivisionError: integer division or modulo by zero"
    ]
    engine.close_processes()


def test_an_unpicklable_decoder_is_refused_with_a_clear_message(images):
    options = StreamOptions(batch_size=4, workers=1, parallelism="processes")
    engine = BatchEngine(FileSource(images), Decoder(lambda src: np.zeros(1)), stack, options)
    with pytest.raises(ValueError, match=r"parallelism='processes' sends .* must pickle"):
        next(engine.batches())


def test_arguments_are_checked_when_built(images):
    with pytest.raises(ValueError, match=r"parallelism must be one of 'threads', 'processes'"):
        bf.image_batches(images, parallelism="gpus")
    with pytest.raises(ValueError, match=r"Received: parallelism='processes' with cache="):
        bf.image_batches(images, parallelism="processes", cache="somewhere")


def test_breaking_off_stops_the_workers_and_the_next_loop_starts_new_ones(images):
    stream = bf.image_batches(images, 4, (32, 32), seed=0, workers=2, parallelism="processes")
    for _ in stream:
        break
    assert stream.engine._processes is None
    assert sum(len(x) for x, _ in stream) == len(images) - 4
    assert stream.engine._processes is not None  # kept for the next epoch
    stream.close()


def test_results_come_back_in_submission_order():
    pool = ProcessWorkers(support.sleepy_square, 3, "order")
    try:
        for i in range(12):
            pool.submit(i)
        got = [pool.result() for _ in range(12)]
    finally:
        pool.close()
    assert [meta for _, meta in got] == list(range(12))
    assert all(np.array_equal(x, np.full((i % 4 + 1, 3), i * i)) for i, (x, _) in enumerate(got))


def test_fit_trains_on_a_process_stream(images):
    import keras

    stream = bf.image_batches(images, 16, (32, 32), seed=0, workers=2, parallelism="processes")
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(stream, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert stream.engine.epoch == 2
    stream.close()


def test_ctrl_c_in_the_loop_stops_the_workers(images):
    """Ctrl-C (KeyboardInterrupt) while a loop holds a process stream: the workers ignore
    the signal themselves, and the stream stops them; no worker process is left."""
    stream = bf.image_batches(images, 4, (32, 32), seed=0, workers=2, parallelism="processes")
    with pytest.raises(KeyboardInterrupt):
        for i, _ in enumerate(stream):
            if i == 2:
                raise KeyboardInterrupt
    assert stream.engine._processes is None
    assert not [p for p in multiprocessing.active_children() if "process-" in p.name]
    assert sum(len(x) for x, _ in stream) == len(images) - 12  # the cursor stayed after 3
    stream.close()
