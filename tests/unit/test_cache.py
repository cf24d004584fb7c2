"""The decoded-sample cache: same samples, later epochs from disk, invalidation, crash safety."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from support import DATA, ROOT

from bytefeed_helpers import (
    ImageAugment,
    audio_batches,
    build_manifest,
    image_batches,
    read_manifest,
    text_batches,
)
from bytefeed_helpers.cache import META, SAMPLES, SampleCache, cache_key, clear_cache
from bytefeed_helpers.errors import BytefeedWarning

SIZE = (24, 32)


@pytest.fixture(scope="module")
def images():
    return build_manifest(DATA / "images", kind="image", progress=False)


def by_path(stream) -> dict[str, np.ndarray]:
    """One epoch of a ``with_paths`` stream as ``{path: sample}``."""
    return {p: x for xb, _, pb in stream for x, p in zip(xb, pb, strict=True)}


def partials(folder) -> list:
    return [p for p in folder.iterdir() if p.name.startswith(".partial-")]


def completes(folder) -> list:
    return [p for p in folder.iterdir() if (p / META).exists() and not p.name.startswith(".")]


def test_later_epochs_read_the_cache_and_match_decoding(images, tmp_path):
    plain = by_path(image_batches(images, 16, SIZE, seed=1, with_paths=True))
    s = image_batches(images, 16, SIZE, seed=1, with_paths=True, cache=tmp_path)
    first = by_path(s)
    assert s.cache.misses == len(images) and s.cache.complete
    second = by_path(s)
    assert s.cache.hits == len(images)
    assert plain.keys() == first.keys() == second.keys()
    for p in plain:
        assert np.array_equal(plain[p], first[p]) and np.array_equal(plain[p], second[p])
    # a new stream (another process, another day) finds the complete cache at once
    again = image_batches(images, 16, SIZE, seed=1, with_paths=True, cache=tmp_path)
    assert again.cache.complete
    assert all(np.array_equal(x, plain[p]) for p, x in by_path(again).items())
    assert again.cache.misses == 0


def test_whole_cached_batches_equal_decoded_ones_labels_and_paths_too(images, tmp_path):
    plain = image_batches(images, 16, SIZE, seed=3, with_paths=True)
    cached = image_batches(images, 16, SIZE, seed=3, with_paths=True, cache=tmp_path)
    for _ in zip(plain, cached, strict=True):  # epoch 0 decodes and fills the cache
        pass
    for (x, y, p), (cx, cy, cp) in zip(plain, cached, strict=True):  # epoch 1: batch reads
        assert np.array_equal(x, cx) and np.array_equal(y, cy) and list(p) == list(cp)
        assert cx.dtype == x.dtype and cy.dtype == y.dtype and cx.flags.writeable
    assert cached.cache.hits == len(images)


def _worker_threads_seen(stream) -> int:
    """Batches of one epoch of ``stream`` during which a decoding thread of its own was alive
    (other tests' streams may still have threads winding down)."""
    before = set(threading.enumerate())

    def own_workers() -> bool:
        return any(t.name.startswith("bytefeed-") for t in set(threading.enumerate()) - before)

    return sum(own_workers() for _ in stream)


def test_complete_cache_is_read_in_the_calling_thread_unless_augmenting(images, tmp_path):
    s = image_batches(images, 16, SIZE, seed=2, cache=tmp_path, training=False)
    assert _worker_threads_seen(s) == len(s)  # epoch 0 decodes files on the workers
    assert _worker_threads_seen(s) == 0  # whole stored batches: no hand-off to threads
    augmented = image_batches(images, 16, SIZE, seed=2, cache=tmp_path, augment=ImageAugment())
    assert augmented.cache.complete
    assert _worker_threads_seen(augmented) == len(augmented)  # augmentation stays parallel


def test_small_rows_read_through_a_map_equal_positioned_reads(images, tmp_path, monkeypatch):
    import bytefeed_helpers.cache as cache_module

    def epoch(stream) -> list:
        return [(x.copy(), y.copy(), list(p)) for x, y, p in stream]

    s = image_batches(images, 16, SIZE, seed=4, with_paths=True, cache=tmp_path)
    epoch(s)  # fills the cache
    mapped = epoch(s)
    assert s.cache._mapped is not None  # 2.3 KB rows: read through the map
    monkeypatch.setattr(cache_module, "_MAP_ROWS_UNDER", 0)
    again = image_batches(images, 16, SIZE, seed=4, with_paths=True, cache=tmp_path)
    list(again)  # epoch 0
    read = epoch(again)  # epoch 1, as ``mapped`` was: the same order
    assert again.cache._mapped is None
    for (x, y, p), (x2, y2, p2) in zip(mapped, read, strict=True):
        assert np.array_equal(x, x2) and np.array_equal(y, y2) and p == p2


def _resident_kb(path) -> int:
    """Resident kB of this process' mappings of ``path`` (Linux /proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"[0-9a-f]+-[0-9a-f]+ ", line):  # a mapping's first line
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads /proc/self/smaps")
def test_mapped_reads_keep_resident_memory_flat(images, tmp_path, monkeypatch):
    import bytefeed_helpers.cache as cache_module

    s = image_batches(images, 16, SIZE, seed=5, cache=tmp_path)
    for _ in s:
        pass
    samples = s.cache.path / SAMPLES
    for _ in s:  # without releases the map's pages stay resident
        pass
    assert _resident_kb(samples) > 0
    monkeypatch.setattr(cache_module, "_MAP_RELEASE", 1)  # release after every batch
    for _ in s:
        pass
    assert _resident_kb(samples) == 0


def test_a_cache_file_cut_under_a_reader_is_decoded_again_not_a_crash(images, tmp_path):
    plain = by_path(image_batches(images, 16, SIZE, seed=6, with_paths=True))
    s = image_batches(images, 16, SIZE, seed=6, with_paths=True, cache=tmp_path)
    by_path(s)
    by_path(s)
    assert s.cache._mapped is not None  # reading through a map when the file is cut
    samples = s.cache.path / SAMPLES
    os.truncate(samples, samples.stat().st_size // 2)
    cut = by_path(s)
    assert cut.keys() == plain.keys()
    assert all(np.array_equal(cut[p], plain[p]) for p in plain)


def test_cache_file_is_a_memory_mappable_npy(images, tmp_path):
    s = image_batches(images, 32, SIZE, cache=tmp_path)
    for _ in s:
        pass
    [folder] = completes(tmp_path)
    samples = np.load(folder / SAMPLES, mmap_mode="r")
    assert samples.shape == (len(images), *SIZE, 3) and samples.dtype == np.uint8
    meta = json.loads((folder / META).read_text())
    assert meta["rows"] == len(images) and meta["shape"] == [*SIZE, 3]
    assert s.cache.nbytes == samples[0].nbytes * len(images)


def test_state_and_errors_are_unchanged_by_caching(images, tmp_path):
    plain = image_batches(images, 16, SIZE, seed=3)
    cached = image_batches(images, 16, SIZE, seed=3, cache=tmp_path)
    assert plain.state() == cached.state()
    assert cached.engine.source.path(5) == images.paths[5]


@pytest.mark.parametrize(
    "change",
    ["image_size", "channels", "subset", "touch"],
)
def test_a_change_makes_a_new_cache(images, tmp_path, change):
    files = tmp_path / "files"
    files.mkdir()
    paths = []
    for p in images.paths[:6]:
        dst = files / os.path.basename(p)
        with open(p, "rb") as fh:
            dst.write_bytes(fh.read())
        paths.append(str(dst))
    m = type(images)(paths, images.labels[:6], images.class_names, kind="image")
    cache = tmp_path / "cache"
    s = image_batches(m, 4, SIZE, cache=cache)
    for _ in s:
        pass
    key = s.cache.key
    kwargs = {"image_size": SIZE}
    if change == "image_size":
        kwargs["image_size"] = (16, 16)
    elif change == "channels":
        kwargs["channels"] = 1
    elif change == "subset":
        m = m.subset([0, 1, 2])
    else:  # a file rewritten in place: same path, new size and mtime
        os.utime(paths[0], ns=(1, 1))
    again = image_batches(m, 4, cache=cache, **kwargs)
    assert again.cache.key != key and not again.cache.complete
    for _ in again:
        pass
    assert again.cache.complete and len(completes(cache)) == 2


def test_key_depends_on_decoder_settings_not_identity(images):
    from bytefeed_helpers.sources import as_source

    src = as_source(images, "image")
    a = image_batches(images, 8, SIZE)
    b = image_batches(images, 8, SIZE)
    assert cache_key(src, a.engine.decoder, "image", a.options) == cache_key(
        src, b.engine.decoder, "image", b.options
    )


def test_failed_rows_are_remembered_with_their_reasons(tmp_path):
    broken = read_manifest(DATA / "broken" / "images.csv", kind="image")
    s = image_batches(broken, 4, SIZE, shuffle=False, cache=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BytefeedWarning)
        for _ in s:
            pass
        first = {(e.path, e.reason) for e in s.errors if e.epoch == 0}
        assert first and s.cache.complete
        for _ in s:
            pass
    second = {(e.path, e.reason) for e in s.errors if e.epoch == 1}
    assert second == first  # skipped again, for the same reasons, not silently lost
    assert s.cache.misses == len(broken)  # only the first epoch opened the files
    # a new stream reads the failures from disk, and raises for them when asked to
    strict = image_batches(broken, 4, SIZE, shuffle=False, on_error="raise", cache=tmp_path)
    assert strict.cache.complete
    with pytest.raises(Exception) as info:
        for _ in strict:
            pass
    assert (info.value.path, info.value.reason) in first


def test_partial_epoch_serves_stored_rows_then_completes(images, tmp_path):
    s = image_batches(images, 8, SIZE, seed=0, cache=tmp_path)
    for i, _ in enumerate(s):
        if i == 2:
            break
    assert not s.cache.complete and partials(tmp_path) and not completes(tmp_path)
    for _ in s:  # the rest of the epoch
        pass
    assert s.cache.complete and not partials(tmp_path) and len(completes(tmp_path)) == 1


CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from bytefeed_helpers import build_manifest, image_batches
    m = build_manifest(sys.argv[1], kind="image", progress=False)
    s = image_batches(m, 8, (24, 32), seed=0, cache=sys.argv[2], workers=1, prefetch=1)
    for i, _ in enumerate(s):
        if i == 3:
            print("killing", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_mid_epoch_is_never_read_as_complete(images, tmp_path):
    cache = tmp_path / "cache"
    proc = subprocess.run(
        [sys.executable, "-c", CRASH, str(DATA / "images"), str(cache)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert partials(cache) and not completes(cache)
    s = image_batches(images, 8, SIZE, seed=0, cache=cache)
    assert not s.cache.complete
    assert not partials(cache)  # the dead process' leftovers were removed
    for _ in s:
        pass
    assert s.cache.complete and s.cache.misses == len(images)


def test_folder_without_meta_is_not_complete(images, tmp_path):
    s = image_batches(images, 8, SIZE, cache=tmp_path)
    (tmp_path / s.cache.key).mkdir()  # e.g. copied half-way
    (tmp_path / s.cache.key / SAMPLES).write_bytes(b"\x93NUMPY garbage")
    again = image_batches(images, 8, SIZE, cache=tmp_path)
    assert not again.cache.complete
    for _ in again:
        pass
    assert again.cache.complete  # the broken folder was replaced by a good one
    fresh = SampleCache(tmp_path, s.cache.key, len(images))
    assert fresh.complete


def test_meta_of_another_size_is_not_trusted(images, tmp_path):
    s = image_batches(images, 8, SIZE, cache=tmp_path)
    for _ in s:
        pass
    assert not SampleCache(tmp_path, s.cache.key, len(images) + 1).complete


def test_write_failure_warns_and_streams_uncached(images, tmp_path, monkeypatch):
    import bytefeed_helpers.cache as cache_module

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module, "_pwrite", full)
    s = image_batches(images, 16, SIZE, cache=tmp_path)
    with pytest.warns(BytefeedWarning, match="sample cache off"):
        n = sum(len(x) for x, _ in s)
    assert n == len(images) and s.cache.disabled and not completes(tmp_path)


def test_audio_random_crops_are_not_cached(tmp_path):
    clips = build_manifest(DATA / "audio", kind="audio", progress=False)
    with pytest.warns(BytefeedWarning, match="random crops"):
        s = audio_batches(clips, 8, crop="random", cache=tmp_path)
    assert s.cache is None


def test_audio_fixed_crops_are_cached(tmp_path):
    clips = build_manifest(DATA / "audio", kind="audio", progress=False)
    plain = by_path(audio_batches(clips, 8, shuffle=False, with_paths=True))
    s = audio_batches(clips, 8, shuffle=False, with_paths=True, cache=tmp_path)
    by_path(s)
    cached = by_path(s)
    assert s.cache.hits == len(clips)
    assert all(np.array_equal(cached[p], plain[p]) for p in plain)


def test_text_is_cached_with_max_length_and_keeps_lengths(tmp_path):
    docs = build_manifest(DATA / "text", kind="text", progress=False)
    plain = text_batches(docs, 8, shuffle=False, max_length=40)
    s = text_batches(
        docs, 8, shuffle=False, max_length=40, tokenizer=plain.tokenizer, cache=tmp_path
    )
    want = [x for x, _ in plain]
    for _ in s:
        pass
    got = [x for x, _ in s]
    assert s.cache.hits == len(docs)
    assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))
    with pytest.warns(BytefeedWarning, match="max_length"):
        assert text_batches(docs, 8, tokenizer=plain.tokenizer, cache=tmp_path).cache is None


def test_clear_cache(images, tmp_path):
    s = image_batches(images, 32, SIZE, cache=tmp_path)
    for _ in s:
        pass
    (tmp_path / "unrelated.txt").write_text("keep me")
    assert clear_cache(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["unrelated.txt"]
    assert clear_cache(tmp_path / "missing") == 0
