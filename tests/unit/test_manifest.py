"""Manifests: building from folders, reading CSVs and lists, splitting, validating, CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bytefeed_helpers import Manifest, ManifestError, build_manifest, read_manifest
from bytefeed_helpers.cli import main as cli

CLASSES = ["b", "A", "_x", "10", "9", "é", "a b"]


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _jpeg(path: Path, color=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), color).save(path, "JPEG")
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for i, name in enumerate(CLASSES):
        for j in range(2):
            _jpeg(root / name / f"img_{j}.jpg", (20 * i, 10 * j, 100))
    _jpeg(root / "b" / "nested" / "deep.jpg")
    _jpeg(root / "b" / ".hidden.jpg")
    _jpeg(root / ".cache" / "x.jpg")
    _touch(root / "A" / "notes.txt")
    (root / "empty_class").mkdir()
    return root


def test_build_manifest_labels_and_order(tree: Path):
    m = build_manifest(tree, kind="image", progress=False)
    assert m.class_names == sorted([*CLASSES, "empty_class"])
    assert len(m) == 2 * len(CLASSES) + 1  # hidden files and folders and .txt skipped
    assert all(p.endswith(".jpg") for p in m.paths)
    assert not any("/." in p for p in m.paths)
    for path, label in zip(m.paths, m.labels, strict=True):
        assert Path(path).relative_to(tree).parts[0] == m.class_names[label]
    assert m.counts()["b"] == 3 and m.counts()["empty_class"] == 0
    assert build_manifest(tree, kind="image", progress=False) == m  # deterministic
    assert m.labels.dtype == np.int32


def test_class_ids_match_keras(tree: Path):
    keras = pytest.importorskip("keras")
    ds = keras.utils.image_dataset_from_directory(
        tree, image_size=(8, 8), batch_size=4, shuffle=False, verbose=False
    )
    m = build_manifest(tree, kind="image", progress=False)
    assert m.class_names == ds.class_names
    # every file both list gets the same label id (Keras also lists hidden files; we skip them)
    keras_labels = dict(
        zip(ds.file_paths, np.concatenate([y for _, y in ds]).tolist(), strict=True)
    )
    assert set(m.paths) <= set(keras_labels)
    assert all(
        keras_labels[p] == label for p, label in zip(m.paths, m.labels.tolist(), strict=True)
    )


def test_extensions_override_and_unlabelled(tmp_path: Path):
    _touch(tmp_path / "a.TXT")
    _touch(tmp_path / "b.md")
    _touch(tmp_path / "c.jpg")
    m = build_manifest(tmp_path, extensions=["txt", ".md"], progress=False)
    assert [Path(p).name for p in m.paths] == ["a.TXT", "b.md"]
    assert m.class_names == [] and (m.labels == -1).all() and not m.labelled
    assert len(build_manifest(tmp_path, progress=False)) == 3


def test_loose_files_beside_class_folders_warn(tmp_path: Path):
    _touch(tmp_path / "cls" / "a.txt")
    _touch(tmp_path / "loose.txt")
    with pytest.warns(UserWarning, match="1 files lie directly"):
        m = build_manifest(tmp_path, kind="text", progress=False)
    assert len(m) == 1


def test_build_manifest_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        build_manifest(tmp_path / "nope")
    with pytest.raises(ValueError, match="kind"):
        build_manifest(tmp_path, kind="video")


def test_scan_does_not_open_files(tmp_path: Path, monkeypatch):
    for i in range(200):
        _touch(tmp_path / f"c{i % 3}" / f"{i}.jpg", b"")
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    m = build_manifest(tmp_path, kind="image", progress=False)
    assert len(m) == 200 and opened == []


def test_write_read_round_trip(tree: Path, tmp_path: Path):
    m = build_manifest(tree, kind="image", progress=False)
    out = m.write(tmp_path / "sub" / "m.csv")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("path,label")
    assert str(tree) not in text  # relative paths
    back = read_manifest(out, class_names=m.class_names)
    assert back.paths == [os.path.normpath(p) for p in m.paths]
    assert back.labels.tolist() == m.labels.tolist()


def test_read_csv_edge_cases(tmp_path: Path):
    content = (
        "\ufeffpath,label,note\r\n"
        "a.jpg,cat,plain\r\n"
        "\r\n"
        '"b,with,commas.jpg",dog,"quoted, note"\r\n'
        '"c.jpg",cat,"multi\r\nline"\r\n'
        "/abs/d.jpg,dog,x\r\n"
        ",,\r\n"
    )
    (tmp_path / "m.csv").write_bytes(content.encode("utf-8"))
    m = read_manifest(tmp_path / "m.csv")
    assert m.paths == [
        str(tmp_path / "a.jpg"),
        str(tmp_path / "b,with,commas.jpg"),
        str(tmp_path / "c.jpg"),
        "/abs/d.jpg",
    ]
    assert m.class_names == ["cat", "dog"]
    assert m.labels.tolist() == [0, 1, 0, 1]
    assert m.columns["note"] == ["plain", "quoted, note", "multi\r\nline", "x"]


def test_read_plain_list(tmp_path: Path):
    (tmp_path / "list.txt").write_text("x/a.wav\n\n  b.wav  \r\n", encoding="utf-8")
    m = read_manifest(tmp_path / "list.txt")
    assert m.paths == [str(tmp_path / "x" / "a.wav"), str(tmp_path / "b.wav")]
    assert (m.labels == -1).all()


@pytest.mark.parametrize(
    ("body", "line", "what"),
    [
        ("path,label\na.jpg,cat\nb.jpg,dog,extra\n", 3, "expected 2 fields"),
        ("path,label\na.jpg,cat\n\n,dog\n", 4, "empty path"),
        ('path,label\na.jpg,cat\n"b.jpg,dog\n', 3, "malformed"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path: Path, body: str, line: int, what: str):
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert f"bad.csv:{line}" in str(info.value) and what in str(info.value)


def test_non_utf8_manifest(tmp_path: Path):
    (tmp_path / "m.csv").write_bytes(b"path,label\ncaf\xe9.jpg,x\n")
    with pytest.raises(ManifestError, match=r"m.csv:2: manifest is not UTF-8"):
        read_manifest(tmp_path / "m.csv")


def test_unknown_class_name(tmp_path: Path):
    (tmp_path / "m.csv").write_text("path,label\na.jpg,cat\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="not in class_names"):
        read_manifest(tmp_path / "m.csv", class_names=["dog"])


def _labelled(n_per_class=(30, 10, 5)) -> Manifest:
    paths, names = [], []
    for c, n in enumerate(n_per_class):
        paths += [f"/d/{c}/{i}.jpg" for i in range(n)]
        names += [f"c{c}"] * n
    return Manifest.from_labelled(paths, names)


def test_split_deterministic_disjoint_stratified():
    m = _labelled()
    train, val, test = m.split(val=0.2, test=0.2, seed=3)
    again = m.split(val=0.2, test=0.2, seed=3)
    assert (train, val, test) == again
    assert m.split(val=0.2, test=0.2, seed=4) != (train, val, test)
    parts = [set(p.paths) for p in (train, val, test)]
    assert sum(map(len, parts)) == len(m) and set.union(*parts) == set(m.paths)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert val.counts() == {"c0": 6, "c1": 2, "c2": 1}
    assert test.counts() == {"c0": 6, "c1": 2, "c2": 1}
    assert train.class_names == m.class_names
    assert train.paths == sorted(train.paths, key=m.paths.index)  # manifest order kept


def test_split_two_parts_and_bad_fractions():
    train, val = _labelled().split(0.25, seed=0, stratify=False)
    assert len(val) == 11 and len(train) == 34
    with pytest.raises(ValueError):
        _labelled().split(0.7, 0.4)


def test_fingerprint_changes_with_content(tmp_path: Path):
    f = _touch(tmp_path / "a.txt", b"1")
    m = Manifest([f])
    fp = m.fingerprint(stat=True)
    assert m.fingerprint(stat=True) == fp
    os.utime(f, ns=(1, 1))
    assert m.fingerprint(stat=True) != fp
    assert Manifest([f], [0], ["x"]).fingerprint() != m.fingerprint()


def test_validate_reports_problems(tmp_path: Path):
    good = _jpeg(tmp_path / "c" / "good.jpg")
    trunc = _touch(tmp_path / "c" / "trunc.jpg", good.read_bytes()[:200])
    empty = _touch(tmp_path / "c" / "empty.jpg", b"")
    fake = _touch(tmp_path / "c" / "fake.png", b"hello, I am text")
    m = Manifest([good, trunc, empty, fake, tmp_path / "missing.jpg"], kind="image")
    report = m.validate(progress=False, workers=2)
    reasons = dict(report.problems)
    assert not report.ok and report.checked == 5
    assert set(reasons) == {str(trunc), str(empty), str(fake), str(tmp_path / "missing.jpg")}
    assert reasons[str(tmp_path / "missing.jpg")] == "file not found"
    assert "empty" in reasons[str(empty)]
    assert "4 with problems" in report.summary()


def test_cli_manifest_and_validate(tree: Path, tmp_path: Path, capsys):
    out = tmp_path / "m.csv"
    assert cli(["manifest", str(tree), "-o", str(out), "--kind", "image"]) == 0
    assert "15 files, 8 classes" in capsys.readouterr().out
    assert cli(["validate", str(out), "--kind", "image"]) == 0
    assert "0 with problems" in capsys.readouterr().out
    _touch(tree / "b" / "broken.jpg", b"\xff\xd8\xff")
    assert cli(["manifest", str(tree), "-o", str(out), "--kind", "image"]) == 0
    assert cli(["validate", str(out), "--kind", "image"]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert "1 with problems" in lines[-2] and lines[-1].startswith(str(tree / "b" / "broken.jpg"))


def test_module_entry_point(tree: Path, tmp_path: Path):
    out = tmp_path / "m.csv"
    run = subprocess.run(
        [sys.executable, "-m", "bytefeed_helpers", "manifest", str(tree), "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert out.exists()
