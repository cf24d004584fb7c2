"""Hostile files: FIFOs, sockets, devices, folders, huge sparse files and lying headers.

Each gets a stable, readable reason at once, from the decoders and from streams over a CSV
manifest that mixes them with good files: nothing blocks, nothing is read whole before it is
checked, and every good file is still yielded exactly once. The inputs are built here, in
tmp_path (FIFOs with ``os.mkfifo``, sparse files with ``os.truncate``).

Run as a script (``python test_hostile_files.py FOLDER``) it streams such a mix of each kind
and prints what it saw and its peak RSS as JSON: ``test_streams_stay_small`` measures it in
a process of its own.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from bytefeed_helpers.decoders import _fileio
from bytefeed_helpers.decoders._fileio import (
    DirectoryError,
    NotRegularFileError,
    check_max_file_mb,
    read_file,
)
from bytefeed_helpers.decoders.audio import audio_info, decode_audio
from bytefeed_helpers.decoders.image import decode_image, image_info
from bytefeed_helpers.decoders.text import decode_text
from bytefeed_helpers.errors import BadFileError, reason_of, stable_reason

DATA = Path(__file__).resolve().parents[2] / "data_sample"
GiB = 1 << 30

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not hasattr(socket, "AF_UNIX"), reason="POSIX special files"
)

FIFO = "not a regular file (fifo)"
SOCKET = "not a regular file (socket)"
DEVICE = "not a regular file (character device)"
DIRECTORY = "not a regular file (directory)"
NOT_AUDIO = "not a readable audio file: Format not recognised"
CANNOT_IDENTIFY = "cannot identify image file"


def too_large(limit_mb: int | str, size: str = "2048.0") -> str:
    return f"file too large: {size} MB, over the limit of {limit_mb} MB (max_file_mb)"


def _unix_socket(path: Path) -> None:
    """A socket file at ``path`` (bound from its folder: socket paths hold ~100 bytes)."""
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path.name)  # the file stays after the socket closes
    finally:
        os.chdir(here)


def _sparse(path: Path, size: int) -> Path:
    path.write_bytes(b"")
    os.truncate(path, size)  # no blocks on disk: reads as zeros
    return path


def make_hostile(folder: Path) -> dict[str, dict[str, str]]:
    """Build every hostile input in ``folder``: ``{path: {kind: the reason expected}}``."""
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, dict[str, str]] = {}

    def every_kind(name: str, reason: str) -> None:
        found[str(folder / name)] = {"image": reason, "audio": reason, "text": reason}

    for name in ("fifo.jpg", "fifo.wav", "fifo.txt"):
        os.mkfifo(folder / name)
        every_kind(name, FIFO)
    if os.path.exists("/dev/zero"):
        for name in ("zero.jpg", "zero.wav", "zero.txt"):
            os.symlink("/dev/zero", folder / name)
            every_kind(name, DEVICE)
    for name in ("socket.jpg", "socket.wav", "socket.txt"):
        _unix_socket(folder / name)
        every_kind(name, SOCKET)
    for name in ("x.jpg", "x.wav", "x.txt"):
        (folder / name).mkdir()
        every_kind(name, DIRECTORY)
    for name in ("huge.jpg", "huge.wav", "huge.txt"):
        _sparse(folder / name, 2 * GiB)
        # 2048.0 MB is not over audio's 2048: libsndfile reads its first bytes and gives up
        found[str(folder / name)] = {
            "image": too_large(256),
            "audio": NOT_AUDIO,
            "text": too_large(64),
        }
    (folder / "lying.png").write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(3000))
    found[str(folder / "lying.png")] = {"image": f"corrupt PNG data: {CANNOT_IDENTIFY}"}
    (folder / "lying.jpg").write_bytes(b"\xff\xd8\xff" + bytes(5000))
    found[str(folder / "lying.jpg")] = {
        "image": f"corrupt JPEG data: {CANNOT_IDENTIFY}",
        "text": "holds NUL bytes: not text",
    }
    # an ID3 tag and noise, and an MPEG frame sync and zeros: libsndfile says "possibly a pipe?"
    (folder / "tagged.mp3").write_bytes(
        b"ID3\x04" + bytes(6) + np.random.default_rng(1).bytes(5000)
    )
    (folder / "synced.mp3").write_bytes(b"\xff\xfb\x90\x00" + bytes(4000))
    found[str(folder / "tagged.mp3")] = {"audio": NOT_AUDIO}
    found[str(folder / "synced.mp3")] = {"audio": NOT_AUDIO}
    return found


# Strange files that are fine: legacy encodings, UTF-16 without BOM, an MP3 whose header
# overstates its length, a WAV whose header claims 2**31 frames. A stream must yield them.
RUSSIAN = (
    "Все люди рождаются свободными и равными в своем достоинстве и правах. Они наделены "
    "разумом и совестью и должны поступать в отношении друг друга в духе братства."
)
JAPANESE = (
    "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。"
    "人間は、理性と良心とを授けられており、互いに同胞の精神をもって行動しなければならない。"
)
ENGLISH = "All human beings are born free and equal in dignity and rights. " * 3


def make_strange(folder: Path) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """Strange good files ``{kind: [path]}`` and strange bad ones ``{path: {kind: reason}}``
    (the reason as the decoder gives it once: a stream must record the same, every epoch)."""
    import struct

    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    good: dict[str, list[str]] = {"image": [], "audio": [], "text": []}
    for name, text, codec in (
        ("ru_cp1251.txt", RUSSIAN, "cp1251"),
        ("ru_koi8r.txt", RUSSIAN, "koi8_r"),
        ("ja_shift_jis.txt", JAPANESE, "shift_jis"),
        ("en_utf16le_no_bom.txt", ENGLISH, "utf-16-le"),
        ("ja_utf32be_no_bom.txt", JAPANESE, "utf-32-be"),
    ):
        (folder / name).write_bytes(text.encode(codec))
        good["text"].append(str(folder / name))
    rate = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)).astype(np.float32)
    mp3 = io.BytesIO()
    sf.write(mp3, tone, rate, format="MP3")
    data = bytearray(mp3.getvalue())
    at = data.find(b"Xing") if b"Xing" in data[:400] else data.find(b"Info")
    if at >= 0 and struct.unpack_from(">I", data, at + 4)[0] & 1:  # a frame count to inflate
        struct.pack_into(">I", data, at + 8, 10 * struct.unpack_from(">I", data, at + 8)[0])
    (folder / "overstated.mp3").write_bytes(bytes(data))
    good["audio"].append(str(folder / "overstated.mp3"))
    wav = io.BytesIO()
    sf.write(wav, tone, rate, format="WAV", subtype="PCM_16")
    claim = bytearray(wav.getvalue())
    struct.pack_into("<I", claim, claim.find(b"data") + 4, 2**32 - 2)  # 2**31 frames of 2 bytes
    (folder / "claims_2_31.wav").write_bytes(bytes(claim))
    good["audio"].append(str(folder / "claims_2_31.wav"))
    bad: dict[str, dict[str, str]] = {}
    flac = io.BytesIO()
    sf.write(flac, tone, rate, format="FLAC")
    (folder / "cut.flac").write_bytes(flac.getvalue()[: len(flac.getvalue()) * 6 // 10])
    short = "Принимая во внимание, что признание достоинства".encode("cp1251")
    (folder / "short_cp1251.txt").write_bytes(short)
    for name, kind, decode in (
        ("cut.flac", "audio", lambda p: decode_audio(p, 16000, 0.5)),
        ("short_cp1251.txt", "text", decode_text),
    ):
        reason = reason_for(decode, folder / name)
        assert reason != "decoded", name
        bad[str(folder / name)] = {kind: reason}
    return good, bad


def good_files(kind: str) -> list[str]:
    folder = {"image": "images", "audio": "audio", "text": "text"}[kind]
    return sorted(str(p) for p in (DATA / folder).rglob("*") if p.is_file())


DECODERS = {"image": decode_image, "audio": decode_audio, "text": decode_text}


def reason_for(decode, src, **kwargs) -> str:
    try:
        decode(src, **kwargs)
    except Exception as exc:  # the reason a stream would record
        return reason_of(exc)
    return "decoded"


@pytest.fixture
def hostile(tmp_path):
    return make_hostile(tmp_path / "hostile")


@pytest.fixture
def bytes_read(monkeypatch):
    """The bytes Python's own reads return from here on (libsndfile's C reads not counted)."""
    total = [0]

    def counted(fn):
        def call(*args):
            out = fn(*args)
            total[0] += out if isinstance(out, int) else len(out)
            return out

        return call

    for name in ("read", "pread", "readv"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, counted(getattr(os, name)))
    return total


# --- decoders ------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_every_decoder_refuses_hostile_files_at_once_with_stable_reasons(hostile):
    for path, expected in hostile.items():
        for kind, reason in expected.items():
            first = reason_for(DECODERS[kind], path)
            assert first == reason, (path, kind, first)
            assert reason_for(DECODERS[kind], path) == first  # the same in every run
            assert "0x" not in first and "pipe" not in first


@pytest.mark.timeout(20)
def test_info_functions_refuse_special_files_without_blocking(hostile):
    specials = {p: r["image"] for p, r in hostile.items() if r.get("image", "").startswith("not a")}
    assert len(specials) >= 9
    for path, reason in specials.items():
        assert reason_for(image_info, path) == reason
        assert reason_for(audio_info, path) == reason


@pytest.mark.timeout(20)
def test_special_files_raise_not_regular_file_errors(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")
    with pytest.raises(NotRegularFileError, match=r"not a regular file \(fifo\)") as info:
        decode_audio(tmp_path / "pipe.wav")
    assert isinstance(info.value, BadFileError) and info.value.path.endswith("pipe.wav")
    (tmp_path / "d.jpg").mkdir()
    with pytest.raises(DirectoryError) as info:
        decode_image(tmp_path / "d.jpg")
    assert isinstance(info.value, IsADirectoryError)  # what open() raised before
    assert reason_of(info.value) == DIRECTORY


@pytest.mark.timeout(20)
def test_a_fifo_with_a_writer_waiting_is_refused_unread(tmp_path):
    fifo = tmp_path / "fed.txt"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # holds the pipe open, as a writer would
    try:
        os.write(writer, b"some text")
        assert reason_for(decode_text, fifo) == FIFO
        assert os.read(writer, 100) == b"some text"  # nobody took the bytes
    finally:
        os.close(writer)


def test_huge_sparse_files_are_judged_by_their_first_bytes(tmp_path, bytes_read):
    image = _sparse(tmp_path / "huge.jpg", 2 * GiB)
    text = _sparse(tmp_path / "huge.txt", 2 * GiB)
    assert reason_for(decode_image, image) == too_large(256)  # by fstat: nothing read
    assert reason_for(decode_text, text) == too_large(64)
    assert bytes_read[0] == 0
    # with no size limit, the first bytes tell: 2 GiB of zeros is no image and no text
    assert (
        reason_for(decode_image, image, max_file_mb=None) == "not an image (unrecognised content)"
    )
    assert reason_for(decode_text, text, max_file_mb=None) == "holds NUL bytes: not text"
    assert bytes_read[0] <= 2 * _fileio.HEAD_SIZE
    audio = _sparse(tmp_path / "huge.wav", 2 * GiB)
    assert reason_for(decode_audio, audio, max_file_mb=None) == NOT_AUDIO
    assert reason_for(decode_audio, audio, duration=None) == NOT_AUDIO
    assert reason_for(decode_audio, audio, max_file_mb=1024) == too_large(1024)
    assert bytes_read[0] <= 2 * _fileio.HEAD_SIZE + (1 << 20)  # the WAV route's first read


@pytest.mark.parametrize("kind", ["image", "audio", "text"])
def test_files_over_max_file_mb_are_refused_before_reading(kind, bytes_read):
    path = good_files(kind)[0]
    size = os.path.getsize(path)
    assert reason_for(DECODERS[kind], path) == "decoded"
    before = bytes_read[0]
    reason = reason_for(DECODERS[kind], path, max_file_mb=0.0001)
    assert reason == too_large("0.0001", f"{size / 2**20:.3g}") and bytes_read[0] == before
    with open(path, "rb") as fh:
        data = fh.read()
    assert reason_for(DECODERS[kind], data, max_file_mb=0.0001) == reason  # bytes: same verdict
    streamed = reason_for(DECODERS[kind], io.BytesIO(data), max_file_mb=0.0001)
    assert streamed.startswith("file too large: ")  # the size is unknown before reading
    assert reason_for(DECODERS[kind], path, max_file_mb=None) == "decoded"
    assert reason_for(DECODERS[kind], path, max_file_mb=float("inf")) == "decoded"


@pytest.mark.parametrize("kind", ["image", "audio", "text"])
@pytest.mark.parametrize("bad", [0, -1, "64", True, float("nan"), [64]])
def test_max_file_mb_must_be_a_positive_number_or_none(kind, bad):
    with pytest.raises(ValueError, match=r"max_file_mb must be a number of MB > 0, or None"):
        DECODERS[kind](good_files(kind)[0], max_file_mb=bad)


def test_check_max_file_mb_gives_bytes():
    assert check_max_file_mb(None) is None and check_max_file_mb(float("inf")) is None
    assert check_max_file_mb(256) == 256 << 20 and check_max_file_mb(0.5) == 1 << 19
    with pytest.raises(ValueError, match=r"Received: max_file_mb=-2"):
        check_max_file_mb(-2)


@pytest.mark.parametrize(
    "data, reason",
    [
        (
            b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(3000),
            f"corrupt PNG data: {CANNOT_IDENTIFY}",
        ),
        (b"\x89PNG\r\n\x1a\n" + b"\x00\x01garbage" * 50, "corrupt PNG data: Truncated File Read"),
        (b"\xff\xd8\xff" + bytes(5000), f"corrupt JPEG data: {CANNOT_IDENTIFY}"),
        (b"GIF89a" + bytes(100), f"corrupt GIF data: {CANNOT_IDENTIFY}"),
    ],
)
def test_lying_headers_get_the_same_reason_from_paths_bytes_and_streams(tmp_path, data, reason):
    path = tmp_path / "lying.img"
    path.write_bytes(data)
    for make in (lambda: path, lambda: str(path), lambda: data, lambda: bytearray(data)):
        assert reason_for(decode_image, make()) == reason
        assert reason_for(image_info, make()) == reason  # no "<_io.BufferedReader name=4>"
    assert reason_for(decode_image, io.BytesIO(data)) == reason
    assert reason_for(image_info, io.BytesIO(data)) == reason


def test_broken_mp3_is_not_called_a_pipe(tmp_path):
    data = b"\xff\xfb\x90\x00" + bytes(4000)
    path = tmp_path / "broken.mp3"
    path.write_bytes(data)
    for make in (lambda: path, lambda: data, lambda: io.BytesIO(data)):
        assert reason_for(decode_audio, make()) == NOT_AUDIO
        assert reason_for(audio_info, make()) == NOT_AUDIO


def test_reasons_never_carry_object_addresses():
    assert stable_reason("cannot identify image file <_io.BytesIO object at 0x7f3a2c1b0>") == (
        CANNOT_IDENTIFY
    )
    assert (
        stable_reason("Error opening <cdata 'SNDFILE *' 0x55d0c3a1e2f0>: x") == "Error opening: x"
    )
    assert (
        stable_reason("cannot identify image file <_io.BufferedReader name=7>") == CANNOT_IDENTIFY
    )
    assert stable_reason("bad marker 0xd9 in scan") == "bad marker 0xd9 in scan"  # data, kept
    assert BadFileError("broken <Foo object at 0xdeadbeef> here").reason == "broken here"
    assert reason_of(OSError("handle <_io.FileIO name=3 mode='rb'> lost")) == "OSError: handle lost"


def test_read_file_reads_files_whose_size_fstat_does_not_know():
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc")
    assert os.stat("/proc/self/status").st_size == 0  # a regular file that says it is empty
    assert b"Name:" in read_file("/proc/self/status")
    with pytest.raises(BadFileError, match="file too large: over the limit of"):
        read_file("/proc/self/status", max_bytes=10)


# --- streams -------------------------------------------------------------------------------


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return path


def _stream(kind: str, manifest):
    import bytefeed_helpers as bf

    if kind == "image":
        return bf.image_batches(manifest, 8, (32, 32), shuffle=False, with_paths=True)
    if kind == "audio":
        return bf.audio_batches(manifest, 8, 16000, 0.5, shuffle=False, with_paths=True)
    return bf.text_batches(manifest, 8, max_length=64, shuffle=False, with_paths=True)


def run_streams(folder: Path, epochs: int = 2) -> dict:
    """Stream a CSV manifest of good and hostile files of each kind for ``epochs`` epochs."""
    import bytefeed_helpers as bf
    from bytefeed_helpers.errors import BytefeedWarning

    hostile = make_hostile(folder / "hostile")
    strange_good, strange_bad = make_strange(folder / "strange")
    hostile.update(strange_bad)
    report = {}
    for kind in ("image", "audio", "text"):
        good = good_files(kind) + strange_good[kind]
        bad = {p: r[kind] for p, r in hostile.items() if kind in r}
        rows = [(p, "good") for p in good] + [(p, "bad") for p in bad]
        rows = rows[::2] + rows[1::2]  # bad files among good ones
        stream = _stream(kind, bf.read_manifest(_write_csv(folder / f"{kind}.csv", rows)))
        seen = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BytefeedWarning)
            for _ in range(epochs):
                for *_, paths in stream:
                    seen.extend(os.fspath(p) for p in paths)
        report[kind] = {
            "good": good,
            "bad": bad,
            "seen": seen,
            "errors": [(e.path, e.reason, e.epoch) for e in stream.errors],
        }
    return report


def _check_report(report: dict, epochs: int) -> None:
    for kind, got in report.items():
        good_errors = [e for e in got["errors"] if e[0] not in got["bad"]]
        assert not good_errors, (kind, good_errors)  # no good file is skipped
        assert sorted(got["seen"]) == sorted(got["good"] * epochs), kind  # each once an epoch
        for epoch in range(epochs):
            reasons = {p: r for p, r, e in got["errors"] if e == epoch}
            assert reasons == got["bad"], (kind, epoch)  # each bad file, its stable reason


@pytest.mark.timeout(120)
def test_streams_over_hostile_csv_manifests_yield_each_good_file_once(tmp_path):
    _check_report(run_streams(tmp_path, epochs=2), epochs=2)


@pytest.mark.timeout(300)
def test_streams_stay_small(tmp_path):
    """Peak RSS of a process streaming every hostile mix (three 2 GiB sparse files included).

    The process runs Keras on its NumPy backend: the streams need Keras's PyDataset, not
    TensorFlow, whose import alone takes 850-900 MB here (and more under load), which would
    make a 1 GB bound measure TensorFlow rather than the streams.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "numpy"}
    out = subprocess.run(
        [sys.executable, __file__, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    _check_report(result["report"], epochs=1)
    print(f"peak RSS {result['peak_mb']:.0f} MB, {result['before_mb']:.0f} MB before streaming")
    assert result["peak_mb"] < 1024  # the bound, the whole process
    assert result["peak_mb"] - result["before_mb"] < 256  # no 2 GiB file was read whole


def _main(folder: str) -> None:

    import keras  # noqa: F401  (the streams' import, so 'before' holds what it costs)
    import psutil

    before = psutil.Process().memory_info().rss / 2**20
    report = run_streams(Path(folder), epochs=1)
    # VmHWM: this process image's own peak. (ru_maxrss would not do: Linux carries a forking
    # parent's peak into the child across exec, so under pytest it reports pytest's.)
    status = Path("/proc/self/status").read_text()
    peak = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmHWM"))) / 1024
    print(json.dumps({"report": report, "peak_mb": peak, "before_mb": before}))


if __name__ == "__main__":
    _main(sys.argv[1])


@pytest.mark.timeout(30)
def test_pack_refuses_special_files_instead_of_blocking(tmp_path):
    """``pack()`` reads every file of a manifest: a FIFO must not block it, /dev/zero must not
    be read forever; both are packed as bad rows with the decoders' reasons."""
    import bytefeed_helpers as bf
    from bytefeed_helpers.packed import read_packed

    good = sorted((DATA / "images" / "cat").glob("*.jpg"))[:2]
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    manifest = bf.Manifest([*good, fifo, zero], [0, 0, 0, 0], ["cat"], kind="image")
    index = bf.pack(manifest, tmp_path / "packed", progress=False)
    stream = bf.image_batches(read_packed(tmp_path / "packed"), 4, 16, shuffle=False)
    x, _ = next(iter(stream))
    assert len(x) == 2 and len(index) == 4
    reasons = sorted(e.reason for e in stream.errors)
    assert reasons == ["not a regular file (character device)", "not a regular file (fifo)"]


@pytest.mark.timeout(60)
def test_to_tf_dataset_leaves_special_files_out_instead_of_blocking(tmp_path):
    pytest.importorskip("tensorflow")
    import bytefeed_helpers as bf

    good = sorted((DATA / "images" / "cat").glob("*.jpg"))[:3]
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    manifest = bf.Manifest([*good, fifo, zero], [0] * 5, ["cat"], kind="image")
    stream = bf.image_batches(manifest, 8, 16, shuffle=False, max_error_rate=None)
    with pytest.warns(UserWarning, match="2 files are not regular files"):
        ds = stream.to_tf_dataset()
    (x, _), *rest = list(ds.as_numpy_iterator())
    assert not rest and x.shape == (3, 16, 16, 3)
