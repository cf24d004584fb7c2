"""Packed TFRecord shards: byte-exact round trip, checksums, corruption reports, stream parity."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from support import assert_resume_matches

from bytefeed_helpers import BadFileError, Manifest, read_manifest
from bytefeed_helpers.engine import stack
from bytefeed_helpers.options import StreamOptions
from bytefeed_helpers.packed import (
    INDEX_NAME,
    PackedSource,
    is_packed,
    pack,
    read_index,
    read_packed,
    verify_pack,
)
from bytefeed_helpers.stream import make_stream

SIZES = [0, 1, 7, 100, 5000, 70000, 3, 250000, 12, 40000, 999, 64, 180000, 2, 33333]


@pytest.fixture
def files(tmp_path: Path) -> Manifest:
    """Files of random bytes (empty, tiny, large) with labels; one is missing."""
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate(SIZES):
        p = tmp_path / "src" / f"c{i % 3}" / f"f{i:02d}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        paths.append(str(p))
    paths.append(str(tmp_path / "src" / "gone.bin"))
    labels = [i % 3 for i in range(len(SIZES))] + [1]
    return Manifest(paths, labels, ["c0", "c1", "c2"], kind="image")


def test_round_trip_is_byte_exact_with_checksums(files, tmp_path):
    index = pack(files, tmp_path / "packed", shard_mb=0.1, progress=False)
    assert len(index.shards) > 2  # small shards: the records spread over several
    assert read_index(tmp_path / "packed").to_json() == index.to_json()
    source = read_packed(tmp_path / "packed")
    assert len(source) == len(files) and source.class_names == files.class_names
    np.testing.assert_array_equal(source.labels, files.labels)
    for row, path in enumerate(files.paths[:-1]):
        original = Path(path).read_bytes()
        assert source.path(row) == path
        assert source.read(row) == original
        assert source.open(row).read() == original
        assert index.sha256[row] == hashlib.sha256(original).hexdigest()
    report = source.verify(progress=False)
    assert report.ok and report.records == len(SIZES), str(report)
    source.close()


def test_missing_file_is_kept_as_a_bad_record(files, tmp_path):
    index = pack(files, tmp_path / "packed", progress=False)
    assert index.error[-1] == "file not found" and index.shard[-1] == -1
    with pytest.raises(BadFileError, match=r"gone\.bin: file not found"):
        read_packed(tmp_path / "packed").read(len(files) - 1)
    assert verify_pack(tmp_path / "packed", progress=False).ok


def test_shards_are_tfrecords_of_examples(files, tmp_path):
    tf = pytest.importorskip("tensorflow")
    index = pack(files, tmp_path / "packed", shard_mb=0.1, progress=False)
    spec = {
        "data": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "path": tf.io.FixedLenFeature([], tf.string),
    }
    seen = []
    for record in tf.data.TFRecordDataset(index.shard_paths):
        ex = tf.io.parse_single_example(record, spec)
        path = ex["path"].numpy().decode()
        row = files.paths.index(path)
        assert ex["data"].numpy() == Path(path).read_bytes()
        assert ex["label"].numpy() == files.labels[row]
        seen.append(row)
    assert seen == list(range(len(SIZES)))  # manifest order, the missing file left out


def _flip_byte(path: str, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_corrupted_record_is_reported_and_skipped(files, tmp_path):
    index = pack(files, tmp_path / "packed", shard_mb=0.1, progress=False)
    row = SIZES.index(70000)
    bad_shard = index.shards[index.shard[row]]
    _flip_byte(index.shard_path(index.shard[row]), int(index.offset[row]) + 1234)
    source = read_packed(tmp_path / "packed")
    with pytest.raises(BadFileError, match="checksum mismatch") as caught:
        source.read(row)
    assert caught.value.path == files.paths[row]
    others = [r for r in range(len(SIZES)) if r != row]
    assert all(source.read(r) == Path(files.paths[r]).read_bytes() for r in others)
    report = verify_pack(tmp_path / "packed", progress=False)
    assert not report.ok and report.bad_shards == [bad_shard]
    reasons = " | ".join(r for _, _, r in report.problems)
    assert "checksum mismatch" in reasons and "TFRecord framing" in reasons  # CRC32C caught it
    assert (bad_shard, files.paths[row]) in [(s, p) for s, p, _ in report.problems]
    assert bad_shard in str(report)
    # check=False trusts the bytes: the corruption then reaches the decoder unnoticed
    assert read_packed(tmp_path / "packed", check=False).read(row) != source.read(others[0])


def test_truncated_and_missing_shards_are_reported(files, tmp_path):
    index = pack(files, tmp_path / "packed", shard_mb=0.1, progress=False)
    cut = int(np.flatnonzero(index.shard == len(index.shards) - 1)[-1])
    with open(index.shard_path(len(index.shards) - 1), "r+b") as fh:
        fh.truncate(int(index.offset[cut] + index.length[cut] // 2))  # into the last file's bytes
    os.remove(index.shard_path(0))
    report = verify_pack(tmp_path / "packed", progress=False)
    assert report.bad_shards == [index.shards[0], index.shards[-1]]
    text = str(report)
    assert "shard unreadable" in text and "bytes, the index says" in text
    source = read_packed(tmp_path / "packed")
    first = int(np.flatnonzero(index.shard == 0)[0])
    with pytest.raises(BadFileError, match=r"packed shard shard-00000\.tfrecord unreadable"):
        source.read(first)
    with pytest.raises(BadFileError, match="cut short"):
        source.read(cut)


def test_pack_refuses_to_overwrite_unless_asked(files, tmp_path):
    pack(files, tmp_path / "packed", shard_mb=0.05, progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        pack(files, tmp_path / "packed", progress=False)
    index = pack(files.subset([0, 1, 2]), tmp_path / "packed", overwrite=True, progress=False)
    assert sorted(os.listdir(tmp_path / "packed")) == sorted([INDEX_NAME, *index.shards])
    assert len(read_packed(tmp_path / "packed")) == 3


def test_bad_arguments_and_not_a_pack(files, tmp_path):
    with pytest.raises(ValueError, match="shard_mb"):
        pack(files, tmp_path / "p", shard_mb=0, progress=False)
    with pytest.raises(ValueError, match="empty"):
        pack(Manifest([]), tmp_path / "p", progress=False)
    with pytest.raises(FileNotFoundError, match="no packed index"):
        read_packed(tmp_path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / INDEX_NAME).write_text("{not json")
    with pytest.raises(ValueError, match="not a packed index"):
        read_packed(tmp_path / "junk")
    (tmp_path / "junk" / INDEX_NAME).write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="version"):
        read_packed(tmp_path / "junk")
    assert not is_packed(tmp_path) and is_packed(tmp_path / "junk")


def test_gfile_urls_work_for_shards(files):
    pytest.importorskip("tensorflow")
    url = f"ram://bytefeed-test-{os.getpid()}/packed"  # TensorFlow's in-memory filesystem
    pack(files, url, shard_mb=0.1, progress=False)
    assert is_packed(url)
    source = read_packed(url)
    assert type(source._shards).__name__ == "_GFileShards"
    for row in (0, 5, 7, 14):
        assert source.read(row) == Path(files.paths[row]).read_bytes()
    assert verify_pack(url, progress=False).ok


# --- streams read a pack as they read the manifest ----------------------------------------------
def _number(src) -> np.ndarray:
    """Toy decoder for path or file object: the file holds its row number; 'bad' raises."""
    data = Path(src).read_bytes() if isinstance(src, str) else src.read()
    if data == b"bad":
        raise BadFileError("deliberately bad")
    return np.array([int(data)], dtype=np.int64)


@pytest.fixture
def numbers(tmp_path: Path) -> Manifest:
    paths = []
    for i in range(23):
        p = tmp_path / "num" / f"{i:03d}.num"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"bad" if i == 6 else str(i).encode())
        paths.append(str(p))
    paths.append(str(tmp_path / "num" / "missing.num"))
    return Manifest(paths, [i % 2 for i in range(24)], ["even", "odd"])


def _epochs(manifest_or_pack, epochs=2, **kw):
    stream = make_stream(
        manifest_or_pack, _number, stack, StreamOptions(batch_size=4, seed=3, **kw), kind="toy"
    )
    out = []
    for _ in range(epochs):
        with pytest.warns(UserWarning, match="skipped 2 bad"):
            out += [(x[:, 0].tolist(), y.tolist()) for x, y in stream]
    return out, [(e.path, e.reason, e.epoch) for e in stream.errors], stream


def test_stream_over_pack_equals_stream_over_manifest(numbers, tmp_path):
    pack(numbers, tmp_path / "packed", shard_mb=0.0001, progress=False)
    loose, loose_errors, _ = _epochs(numbers)
    packed, packed_errors, stream = _epochs(str(tmp_path / "packed"))  # a directory works too
    assert isinstance(stream.engine.source, PackedSource)
    assert packed == loose and packed_errors == loose_errors
    assert {r for _, r, _ in packed_errors} == {"deliberately bad", "file not found"}


@pytest.mark.filterwarnings("ignore:toy_batches. skipped")
def test_state_saved_on_loose_files_resumes_on_the_pack(numbers, tmp_path):
    source = read_packed(pack(numbers, tmp_path / "packed", progress=False).root)
    assert source.fingerprint() == numbers.fingerprint()
    loose = make_stream(numbers, _number, stack, StreamOptions(batch_size=4, seed=3), kind="toy")
    it = iter(loose)
    head = [next(it)[0][:, 0].tolist() for _ in range(3)]
    state = loose.state()
    it.close()
    rest = make_stream(
        source, _number, stack, StreamOptions(batch_size=4, resume=state), kind="toy"
    )
    tail = [x[:, 0].tolist() for x, _ in rest]
    full = make_stream(numbers, _number, stack, StreamOptions(batch_size=4, seed=3), kind="toy")
    assert_resume_matches([x[:, 0].tolist() for x, _ in full], head, tail)


@pytest.mark.parametrize("kind", ["image", "audio", "text"])
def test_real_streams_from_pack_match_loose_files(kind, data_sample, tmp_path):
    """The broken sample manifests: same batches, same skipped files and reasons."""
    import bytefeed_helpers as bf

    csv = {"image": "images.csv", "audio": "audio.csv", "text": "text.csv"}[kind]
    manifest = read_manifest(data_sample / "broken" / csv, kind=kind)
    packed = read_packed(pack(manifest, tmp_path / kind, progress=False).root)
    front = {
        "image": lambda m: bf.image_batches(m, 4, (32, 32), seed=1),
        "audio": lambda m: bf.audio_batches(m, 4, 8000, 0.5, seed=1),
        "text": lambda m: bf.text_batches(m, 4, max_length=16, seed=1),
    }[kind]
    loose, from_pack = front(manifest), front(packed)
    with pytest.warns(UserWarning, match="skipped"):
        a = list(loose)
    with pytest.warns(UserWarning, match="skipped"):
        b = list(from_pack)
    assert len(a) == len(b) and len(a) > 1
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert [tuple(e) for e in loose.errors] == [tuple(e) for e in from_pack.errors]
    assert len(loose.errors) >= 2  # missing plus at least one undecodable file
