"""``build_manifest`` lists files exactly as Keras's ``index_directory`` (issue 15): the same
order (so a Keras ``labels=[...]`` list lines up), ``labels=None`` over any tree, and
``class_names`` picking and ordering folders. Every tree is built here; each is checked
against Keras itself (``keras.src.utils.dataset_utils.index_directory``, ``shuffle=False``).

Deliberate differences, asserted as such: hidden files are never listed (Keras lists a
hidden file inside a class folder), and a folder reached twice through links is listed once.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from bytefeed_helpers import BytefeedWarning, Manifest, build_manifest

dataset_utils = pytest.importorskip("keras.src.utils.dataset_utils")

FORMATS = (".png", ".jpg")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def _keras(root: Path, labels: str | None = "inferred", **kwargs) -> tuple[list, list, list]:
    paths, ids, names = dataset_utils.index_directory(
        str(root), labels, FORMATS, shuffle=False, verbose=False, **kwargs
    )
    return list(paths), [] if ids is None else np.asarray(ids).tolist(), list(names or [])


def _ours(root: Path, **kwargs) -> Manifest:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BytefeedWarning)
        return build_manifest(root, extensions=FORMATS, progress=False, **kwargs)


def _same_as_keras(root: Path, *, follow_links: bool = False, **kwargs) -> Manifest:
    m = _ours(root, follow_links=follow_links, **kwargs)
    labels = kwargs.get("labels", "inferred")
    extra = {"class_names": kwargs["class_names"]} if "class_names" in kwargs else {}
    paths, ids, names = _keras(root, labels, follow_links=follow_links, **extra)
    assert m.paths.tolist() == paths  # the same files, in the same order
    if labels is None:
        assert (m.labels == -1).all() and m.class_names == []
    else:
        assert m.labels.tolist() == ids and m.class_names == names
    return m


def _tricky(root: Path) -> list[Path]:
    """Names that sort differently by path string and by path components."""
    names = [
        "a/sub/x.png",  # in a subfolder named like the start of a file of its parent
        "a/sub-x.png",
        "a/sub.png",
        "a/sub/deeper/y.png",
        "a/sub-dir/z.png",
        "a/sub_/w.png",
        "a/Sub/upper.png",  # mixed case: upper case sorts first
        "a/b.PNG",  # an upper-case extension is taken
        "a/B.png",
        "a/é/e.png",  # unicode: composed é
        "a/e\u0301/e2.png",  # decomposed é: another name
        "a/z/1/2/3/deep.png",
        "a/a b/space.png",
        "a/x.jpg",
        "a/notes.txt",  # not an image: ignored by both
        "b/only.png",
        "c d/one.png",
    ]
    return [_touch(root / n) for n in names]


def test_order_matches_keras_on_tricky_names(tmp_path: Path):
    _tricky(tmp_path)
    m = _same_as_keras(tmp_path)
    rel = [os.path.relpath(p, tmp_path) for p in m.paths]
    # a file of `a` comes before every file of a subfolder of `a` (Keras walks folder by folder)
    assert rel.index("a/sub-x.png") < rel.index("a/sub/x.png")
    assert rel.index("a/sub.png") < rel.index("a/sub/x.png")
    # folders by path string: "a/sub" < "a/sub-dir" < "a/sub/deeper" < "a/sub_"
    order = [rel.index(f"a/{f}") for f in ("sub/x.png", "sub-dir/z.png", "sub/deeper/y.png")]
    assert order == sorted(order)
    assert rel.index("a/sub/deeper/y.png") < rel.index("a/sub_/w.png")
    assert m.class_names == ["a", "b", "c d"]


def test_order_matches_keras_with_nested_classes(tmp_path: Path):
    # Keras's own nested layout (image_dataset_utils_test._prepare_directory, nested_dirs=True)
    for i in range(30):
        c = f"class_{i % 2}"
        sub = ["", "subfolder_1", "subfolder_2", "subfolder_1/sub"][i % 4]
        _touch(tmp_path / c / sub / f"image_{i}.png")
    _same_as_keras(tmp_path)


@pytest.mark.parametrize("follow_links", [False, True])
def test_order_matches_keras_with_links(tmp_path: Path, follow_links: bool):
    root = tmp_path / "root"
    _tricky(root)
    outside = tmp_path / "outside"
    _touch(outside / "far.png")
    _touch(outside / "inner" / "far2.png")
    (root / "a" / "sub" / "linked").symlink_to(outside, target_is_directory=True)
    (root / "a" / "link-first").symlink_to(outside / "inner", target_is_directory=False)
    (root / "b" / "file_link.png").symlink_to(root / "b" / "only.png")
    store = tmp_path / "store"
    _touch(store / "s.png")
    (root / "linked_class").symlink_to(store, target_is_directory=True)
    # with follow_links, `outside/inner` is reached twice (a/link-first, a/sub/linked/inner):
    # Keras lists its file twice, bytefeed once; everything else is Keras's list, in order
    m = _ours(root, follow_links=follow_links)
    paths, ids, names = _keras(root, follow_links=follow_links)
    assert m.class_names == names
    if not follow_links:
        assert m.paths.tolist() == paths and m.labels.tolist() == ids
        return

    def real(p: str) -> str:  # the file in its real folder (a linked file stays itself)
        return os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))

    reals = [real(p) for p in paths]
    twice = [p for p, r in zip(paths, reals, strict=True) if reals.count(r) > 1]
    assert len(twice) == 2 and {Path(p).name for p in twice} == {"far2.png"}
    ours = m.paths.tolist()
    assert len(ours) == len(paths) - 1 and len({real(p) for p in ours}) == len(ours)
    kept = [p for p in paths if p in ours]
    assert kept == ours  # a subsequence of Keras's list: the same order
    assert m.labels.tolist() == [ids[paths.index(p)] for p in ours]
    assert any(p.startswith(str(root / "linked_class")) for p in ours)  # a class link


def test_labels_none_lists_every_file_at_any_depth(tmp_path: Path):
    files = _tricky(tmp_path)
    _touch(tmp_path / "loose.png")
    _touch(tmp_path / "Loose2.png")
    m = _same_as_keras(tmp_path, labels=None)
    images = [f for f in files if f.suffix.lower() in FORMATS]
    assert len(m) == len(images) + 2 and str(tmp_path / "loose.png") in m.paths
    assert m.paths[0] == str(tmp_path / "Loose2.png")  # root's own files first, by name
    assert not m.labelled and m.counts() == {}


def test_labels_none_on_a_flat_folder(tmp_path: Path):
    for name in ["b.png", "a.png", "C.png"]:
        _touch(tmp_path / name)
    m = _same_as_keras(tmp_path, labels=None)
    assert [Path(p).name for p in m.paths] == ["C.png", "a.png", "b.png"]


def test_class_names_pick_and_order_folders(tmp_path: Path):
    _tricky(tmp_path)
    _touch(tmp_path / "loose.png")
    with pytest.warns(UserWarning, match=r"files lie outside the folders of class_names") as rec:
        m = build_manifest(tmp_path, extensions=FORMATS, class_names=["c d", "a"], progress=False)
    messages = [str(w.message) for w in rec if "class_names" in str(w.message)]
    assert len(messages) == 1  # one warning, counting every file left out
    assert "2 files" in messages[0] and "1 directly in" in messages[0] and "1 in 'b'" in messages[0]
    assert m.class_names == ["c d", "a"]
    assert m.counts()["c d"] == 1 and m.labels[0] == 0
    paths, ids, names = _keras(tmp_path, class_names=["c d", "a"])
    assert m.paths.tolist() == paths and m.labels.tolist() == ids and names == ["c d", "a"]
    assert not any("/b/" in p or p.endswith("loose.png") for p in m.paths)


def test_class_names_errors(tmp_path: Path):
    _touch(tmp_path / "a" / "x.png")
    _touch(tmp_path / "b" / "y.png")
    with pytest.raises(ValueError, match=r"Expected: \['a', 'b'\].*class_names=\['a', 'zebra'\]"):
        build_manifest(tmp_path, class_names=["a", "zebra"], progress=False)
    with pytest.raises(ValueError, match="each once"):
        build_manifest(tmp_path, class_names=["a", "a"], progress=False)
    with pytest.raises(ValueError, match="at least one"):
        build_manifest(tmp_path, class_names=[], progress=False)
    with pytest.raises(ValueError, match="list of folder names"):
        build_manifest(tmp_path, class_names="a", progress=False)
    with pytest.raises(ValueError, match="needs labels='inferred'"):
        build_manifest(tmp_path, labels=None, class_names=["a"], progress=False)
    with pytest.raises(ValueError, match="labels must be 'inferred' or None"):
        build_manifest(tmp_path, labels="folders", progress=False)
    with pytest.raises(ValueError, match="labels must be 'inferred' or None"):
        build_manifest(tmp_path, labels=[0, 1], progress=False)
    # Keras refuses the same names
    with pytest.raises(ValueError):
        _keras(tmp_path, class_names=["a", "zebra"])


def test_hidden_files_are_the_one_difference(tmp_path: Path):
    _touch(tmp_path / "a" / "x.png")
    _touch(tmp_path / "a" / ".hidden.png")
    _touch(tmp_path / "a" / ".cache" / "y.png")
    m = _ours(tmp_path)
    paths, _, _ = _keras(tmp_path)
    assert m.paths.tolist() == [p for p in paths if "/." not in p]
    assert len(paths) == 3 and len(m) == 1


def test_labels_none_skips_bad_entries_and_records_them(tmp_path: Path):
    good = [_touch(tmp_path / "x" / "a.png"), _touch(tmp_path / "b.png")]
    (tmp_path / "x" / "gone.png").symlink_to(tmp_path / "missing.png")
    (tmp_path / "x" / "loop").symlink_to(tmp_path, target_is_directory=True)
    with pytest.warns(BytefeedWarning, match="left out 2 entries"):
        m = build_manifest(tmp_path, extensions=FORMATS, labels=None, progress=False)
    assert sorted(m.paths) == sorted(str(g) for g in good)
    assert {s.reason for s in m.skipped} == {
        "broken link",
        "link to a folder, not followed (pass follow_links=True)",
    }
    with pytest.warns(BytefeedWarning, match="folder already listed"):
        again = build_manifest(
            tmp_path, extensions=FORMATS, labels=None, follow_links=True, progress=False
        )
    assert sorted(again.paths) == sorted(str(g) for g in good)  # the loop is not followed


def test_labels_none_root_must_be_listable(tmp_path: Path, monkeypatch):
    _touch(tmp_path / "a.png")
    real = os.scandir

    def scandir(path):
        if os.fspath(path) == str(tmp_path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(PermissionError, match="cannot list the folder"):
        build_manifest(tmp_path, labels=None, progress=False)


def test_a_file_name_that_is_not_utf8(tmp_path: Path):
    _touch(tmp_path / "a" / "ok.png")
    raw = os.path.join(os.fsencode(tmp_path / "a"), b"caf\xe9.png")  # Latin-1, not UTF-8
    with open(raw, "wb") as fh:
        fh.write(b"x")
    m = _same_as_keras(tmp_path)
    assert os.fsdecode(raw) in m.paths and os.path.exists(m.paths[0])
