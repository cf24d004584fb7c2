"""fileio: whole files in few system calls, with open()'s errors."""

from __future__ import annotations

import io
import os

import pytest

from bytefeed_helpers.decoders._fileio import open_fd, read_at, read_bytes, read_file


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 300_000])
def test_read_file_returns_every_byte(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert read_file(path) == data
    assert read_file(str(path)) == data


def test_read_file_raises_what_open_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_file(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        read_file(tmp_path)


def test_read_at_reads_a_range_and_stops_at_the_end(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(100)))
    with open_fd(path) as fd:
        assert read_at(fd, 10, 5) == bytes(range(5, 15))
        assert read_at(fd, 10, 95) == bytes(range(95, 100))


def test_read_bytes_takes_every_source_kind(tmp_path):
    data = b"\x89PNG some bytes"
    path = tmp_path / "f.png"
    path.write_bytes(data)
    assert read_bytes(data) is data
    assert read_bytes(bytearray(data)) == data
    assert read_bytes(memoryview(data)) == data
    stream = io.BytesIO(b"xx" + data)
    stream.read(2)
    assert read_bytes(stream) == data  # from where the stream stands
    assert read_bytes(path) == data


@pytest.mark.parametrize("size", [20_000, 300_000])
def test_read_file_reads_past_short_reads_to_the_end(tmp_path, monkeypatch, size):
    # Some network and FUSE file systems return short reads before the end. (A FIFO showed
    # this here before; FIFOs are now refused unread: tests/unit/test_hostile_files.py.)
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda fd, n: real_read(fd, min(n, 7000)))
    if hasattr(os, "readv"):
        real_readv = os.readv
        monkeypatch.setattr(os, "readv", lambda fd, bufs: real_readv(fd, [bufs[0][:7000]]))
    assert read_file(path) == data


def test_read_at_reads_on_after_short_reads(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(200)))
    real = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, n, at: real(fd, min(n, 7), at))  # 7 at a time
    with open_fd(path) as fd:
        assert read_at(fd, 50, 100) == bytes(range(100, 150))
        assert read_at(fd, 500, 190) == bytes(range(190, 200))
