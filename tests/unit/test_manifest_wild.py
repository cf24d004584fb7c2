"""Manifests from the wild (issue 14, items 2 and 3): CSVs whose header does not say ``path``,
ids without extensions, tables from pandas, and folder trees with links, loops and odd entries.

Every input is built here (tmp_path, os.symlink, os.mkfifo); each test checks the outcome and
that every good file is listed exactly once.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bytefeed_helpers import BytefeedWarning, Manifest, ManifestError, build_manifest, read_manifest
from bytefeed_helpers.cli import main as cli
from bytefeed_helpers.folders import (
    BROKEN_LINK,
    FOLDER_SEEN,
    LINK_LOOP,
    LINK_NOT_FOLLOWED,
    NOT_REGULAR,
)


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _once(paths: list[str], expected: list[str | Path]) -> None:
    """``paths`` lists exactly the files ``expected``, each once."""
    counts = Counter(paths)
    assert [p for p, n in counts.items() if n > 1] == []
    assert sorted(counts) == sorted(os.fspath(p) for p in expected)


def _reasons(m: Manifest) -> dict[str, str]:
    return {s.path: s.reason for s in m.skipped}


# --- CSVs whose header does not say `path` ----------------------------------------------------
def test_filename_label_header_is_an_error_naming_the_columns(tmp_path: Path):
    files = [_touch(tmp_path / f"img_{i}.jpg") for i in range(3)]
    csv = tmp_path / "train.csv"
    csv.write_text("filename,label\nimg_0.jpg,cat\nimg_1.jpg,dog\nimg_2.jpg,cat\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(csv)
    msg = str(info.value)
    assert "['filename', 'label']" in msg and "no 'path' column" in msg
    assert "path_column='filename'" in msg and "label_column='label'" in msg
    assert "train.csv:1" in msg  # which file, which line
    m = read_manifest(csv, path_column="filename")
    assert m.paths == [str(f) for f in files]  # the header row is never a path
    assert m.class_names == ["cat", "dog"] and m.labels.tolist() == [0, 1, 0]
    _once(m.paths, files)


def test_ham10000_shape_with_id_suffix_and_extra_columns(tmp_path: Path):
    # HAM10000_metadata.csv: ids without extension, labels in `dx`, images in another folder
    images = tmp_path / "HAM10000_images"
    ids = ["ISIC_0027419", "ISIC_0025030", "ISIC_0026769", "ISIC_0025661"]
    files = [_touch(images / f"{i}.jpg") for i in ids]
    csv = tmp_path / "meta" / "HAM10000_metadata.csv"
    rows = [
        "lesion_id,image_id,dx,dx_type,age,sex,localization",
        "HAM_0000118,ISIC_0027419,bkl,histo,80.0,male,scalp",
        "HAM_0000118,ISIC_0025030,bkl,histo,80.0,male,scalp",
        'HAM_0002730,ISIC_0026769,nv,"follow_up",,female,"back, upper"',
        "HAM_0001466,ISIC_0025661,mel,histo,75.0,male,ear",
    ]
    _touch(csv, ("\n".join(rows) + "\n").encode())
    with pytest.raises(ManifestError) as info:
        read_manifest(csv)
    msg = str(info.value)
    assert "['lesion_id', 'image_id', 'dx', 'dx_type', 'age', 'sex', 'localization']" in msg
    assert "pass path_column='image_id' (and label_column='dx')" in msg
    m = read_manifest(csv, path_column="image_id", label_column="dx", root=images, suffix=".jpg")
    assert m.paths == [str(f) for f in files]
    assert m.label_names() == ["bkl", "bkl", "nv", "mel"]
    assert m.class_names == ["bkl", "mel", "nv"]
    assert m.columns["age"] == ["80.0", "80.0", "", "75.0"]
    assert m.columns["localization"][2] == "back, upper"
    assert set(m.columns) == {"lesion_id", "dx_type", "age", "sex", "localization"}
    _once(m.paths, files)


def test_id_label_with_suffix_and_integer_labels(tmp_path: Path):
    # `id,label` as in many competitions: ids with no extension, labels 0..11 as integers
    n = 24
    files = [_touch(tmp_path / "train" / f"{i:04d}.png") for i in range(n)]
    body = "id,label\n" + "".join(f"{i:04d},{i % 12}\n" for i in range(n))
    _touch(tmp_path / "train.csv", body.encode())
    m = read_manifest(
        tmp_path / "train.csv", path_column="id", root=tmp_path / "train", suffix=".png"
    )
    # integers sort numerically, so each id is the integer written in the CSV
    assert m.class_names == [str(i) for i in range(12)]
    assert m.labels.tolist() == [i % 12 for i in range(n)]
    _once(m.paths, files)
    # a suffix already present is not added twice
    _touch(tmp_path / "mixed.csv", b"id\n0000.png\n0001\n")
    mixed = read_manifest(
        tmp_path / "mixed.csv", path_column="id", root=tmp_path / "train", suffix=".PNG"
    )
    assert mixed.paths == [str(files[0]), str(files[1])[: -len(".png")] + ".PNG"]


def test_string_labels_sort_as_strings(tmp_path: Path):
    _touch(tmp_path / "m.csv", b"path,label\na.wav,yes\nb.wav,10\nc.wav,9\nd.wav,\n")
    m = read_manifest(tmp_path / "m.csv")
    assert m.class_names == ["10", "9", "yes"]
    assert m.label_names() == ["yes", "10", "9", ""]
    assert m.labels.tolist() == [2, 0, 1, -1]


def test_header_with_bom_spaces_and_case(tmp_path: Path):
    files = [_touch(tmp_path / "a b.jpg"), _touch(tmp_path / "c.jpg")]
    body = "\ufeff Filename , Label ,Note\r\n a b.jpg ,cat,x\r\n\r\nc.jpg, dog ,y\r\n"
    _touch(tmp_path / "m.csv", body.encode("utf-8"))
    m = read_manifest(tmp_path / "m.csv", path_column="filename")
    assert m.paths == [str(f) for f in files]
    assert m.label_names() == ["cat", "dog"] and m.columns == {"Note": ["x", "y"]}
    _touch(tmp_path / "p.csv", "\ufeff PATH \r\nc.jpg\r\n".encode())
    assert read_manifest(tmp_path / "p.csv").paths == [str(files[1])]


def test_tab_separated_common_voice_shape(tmp_path: Path):
    clips = [_touch(tmp_path / "clips" / f"common_voice_en_{i}.mp3") for i in range(3)]
    rows = ["client_id\tpath\tsentence\tup_votes"]
    rows += [f"c{i}\tcommon_voice_en_{i}.mp3\tHello, world number {i}.\t{i}" for i in range(3)]
    _touch(tmp_path / "train.tsv", ("\n".join(rows) + "\n").encode())
    m = read_manifest(tmp_path / "train.tsv", root=tmp_path / "clips", label_column=None)
    assert m.paths == [str(c) for c in clips] and not m.class_names
    assert m.columns["sentence"][1] == "Hello, world number 1."
    _once(m.paths, clips)


def test_explicit_label_column_must_exist(tmp_path: Path):
    _touch(tmp_path / "m.csv", b"image,diagnosis\na.jpg,x\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(tmp_path / "m.csv", path_column="image", label_column="dx")
    msg = str(info.value)
    assert "['image', 'diagnosis']" in msg and "no 'dx' column" in msg
    assert "label_column=None" in msg
    # the default label column may be absent: an unlabelled manifest
    m = read_manifest(tmp_path / "m.csv", path_column="image", label_column=None)
    assert m.paths == [str(tmp_path / "a.jpg")] and m.columns == {"diagnosis": ["x"]}


def test_headerless_rows_with_fields_are_an_error_not_paths(tmp_path: Path):
    _touch(tmp_path / "m.csv", b"a.jpg,cat\nb.jpg,dog\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(tmp_path / "m.csv")
    assert "['a.jpg', 'cat']" in str(info.value) and "add a header row" in str(info.value)


def test_single_column_header_is_recognised(tmp_path: Path):
    files = [_touch(tmp_path / "x" / f"{i}.txt") for i in range(2)]
    _touch(tmp_path / "list.csv", b"filename\nx/0.txt\nx/1.txt\n")
    with pytest.raises(ManifestError, match=r"\['filename'\].*path_column='filename'"):
        read_manifest(tmp_path / "list.csv")
    m = read_manifest(tmp_path / "list.csv", path_column="filename")
    assert m.paths == [str(f) for f in files]


def test_headerless_lists_keep_working(tmp_path: Path):
    # ids without extension (files exist with the suffix), a first path holding a comma
    ids = [_touch(tmp_path / f"clip{i}.wav") for i in range(3)]
    _touch(tmp_path / "ids.txt", b"clip0\nclip1\nclip2\n")
    m = read_manifest(tmp_path / "ids.txt", suffix=".wav")
    assert m.paths == [str(p) for p in ids] and (m.labels == -1).all()
    comma = _touch(tmp_path / "a,b.wav")
    _touch(tmp_path / "list.txt", b"a,b.wav\nclip0.wav\n")
    assert read_manifest(tmp_path / "list.txt").paths == [str(comma), str(ids[0])]
    # paths to files that do not exist yet are still paths when they look like paths
    _touch(tmp_path / "later.txt", b"later/one.wav\nlater/two.wav\n")
    assert read_manifest(tmp_path / "later.txt").paths == [
        str(tmp_path / "later" / "one.wav"),
        str(tmp_path / "later" / "two.wav"),
    ]


def test_root_default_and_errors(tmp_path: Path, monkeypatch):
    data = tmp_path / "data"
    f = _touch(data / "cat" / "a.jpg")
    _touch(tmp_path / "lists" / "m.csv", b"path,label\ncat/a.jpg,cat\n")
    default = read_manifest(tmp_path / "lists" / "m.csv")
    assert default.paths == [str(tmp_path / "lists" / "cat" / "a.jpg")]  # the CSV's folder
    assert read_manifest(tmp_path / "lists" / "m.csv", root=data).paths == [str(f)]
    _touch(tmp_path / "lists" / "list.txt", b"cat/a.jpg\n")
    assert read_manifest(tmp_path / "lists" / "list.txt", root=data).paths == [str(f)]
    monkeypatch.chdir(tmp_path)
    assert read_manifest("lists/m.csv", root="data").paths == [str(f)]  # relative root: cwd
    with pytest.raises(ValueError, match="root must be an existing folder"):
        read_manifest(tmp_path / "lists" / "m.csv", root=tmp_path / "nope")


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"path_column": ""}, "path_column must be a non-empty column name"),
        ({"path_column": 3}, "path_column must be"),
        ({"label_column": "Path"}, "must name different columns"),
        ({"label_column": ""}, "label_column must be"),
        ({"suffix": None}, "suffix must be a str"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, what: str):
    _touch(tmp_path / "m.csv", b"path,label\na.jpg,x\n")
    with pytest.raises(ValueError, match=what):
        read_manifest(tmp_path / "m.csv", **kwargs)


@pytest.mark.parametrize(
    ("body", "line", "what"),
    [
        ("filename,label\na.jpg,cat\nb.jpg,dog,extra\n", 3, "expected 2 fields"),
        ("\n\nfilename,label\na.jpg,cat\n,dog\n", 5, "empty path"),
        ('filename,label\na.jpg,cat\n"b.jpg,dog\n', 3, "malformed"),
    ],
)
def test_malformed_rows_under_another_path_column(tmp_path: Path, body: str, line: int, what: str):
    (tmp_path / "bad.csv").write_text(body, encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        read_manifest(tmp_path / "bad.csv", path_column="filename")
    assert f"bad.csv:{line}" in str(info.value) and what in str(info.value)


# --- pandas DataFrames -------------------------------------------------------------------------
def test_from_dataframe_ham10000(tmp_path: Path):
    pd = pytest.importorskip("pandas")
    ids = ["ISIC_0027419", "ISIC_0025030", "ISIC_0026769"]
    files = [_touch(tmp_path / f"{i}.jpg") for i in ids]
    df = pd.DataFrame({"image_id": ids, "dx": ["bkl", "nv", "bkl"], "age": [80.0, np.nan, 75.0]})
    with pytest.raises(ManifestError) as info:
        Manifest.from_dataframe(df)
    assert "['image_id', 'dx', 'age']" in str(info.value)
    assert "path_column='image_id' (and label_column='dx')" in str(info.value)
    m = Manifest.from_dataframe(
        df, path_column="image_id", label_column="dx", root=tmp_path, suffix=".jpg", kind="image"
    )
    assert m.paths == [str(f) for f in files] and m.kind == "image"
    assert m.label_names() == ["bkl", "nv", "bkl"]
    assert m.columns == {"age": ["80", "", "75"]}
    _once(m.paths, files)


def test_from_dataframe_integer_labels_and_gaps():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        {
            "path": [Path("/d/a.jpg"), "/d/b.jpg", "/d/c.jpg", "/d/d.jpg"],
            "label": [2, 10, 0, 1],
        }
    )
    m = Manifest.from_dataframe(df)
    assert m.class_names == ["0", "1", "2", "10"] and m.label_names() == ["2", "10", "0", "1"]
    # an int column with a gap becomes floats with NaN in pandas: still integers, one unlabelled
    gaps = pd.DataFrame({"path": ["a.jpg", "b.jpg", "c.jpg"], "label": [1, None, 0]})
    assert gaps["label"].dtype.kind == "f"
    g = Manifest.from_dataframe(gaps)
    assert g.paths == ["a.jpg", "b.jpg", "c.jpg"]  # no root: kept as given
    assert g.class_names == ["0", "1"] and g.labels.tolist() == [1, -1, 0]
    nullable = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "label": pd.array([3, None], "Int64")})
    assert Manifest.from_dataframe(nullable).label_names() == ["3", ""]
    assert Manifest.from_dataframe(df, label_column=None).columns == {
        "label": ["2", "10", "0", "1"]
    }


def test_from_dataframe_errors():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ManifestError, match="row 1: empty path"):
        Manifest.from_dataframe(pd.DataFrame({"path": ["a.jpg", None]}))
    with pytest.raises(ManifestError, match="no 'species' column"):
        Manifest.from_dataframe(pd.DataFrame({"path": ["a.jpg"]}), label_column="species")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        Manifest.from_dataframe([("a.jpg", "cat")])
    with pytest.raises(ManifestError, match="not in class_names"):
        Manifest.from_dataframe(pd.DataFrame({"path": ["a"], "label": ["x"]}), class_names=["y"])


def test_from_dataframe_matches_read_manifest(tmp_path: Path):
    pd = pytest.importorskip("pandas")
    files = [_touch(tmp_path / f"{i}.txt") for i in range(4)]
    body = "File,Class\n" + "".join(f"{i}.txt,{'ab'[i % 2]}\n" for i in range(4))
    _touch(tmp_path / "m.csv", body.encode())
    from_csv = read_manifest(tmp_path / "m.csv", path_column="file", label_column="class")
    df = pd.read_csv(tmp_path / "m.csv")
    from_df = Manifest.from_dataframe(df, path_column="file", label_column="class", root=tmp_path)
    assert from_df == from_csv
    _once(from_df.paths, files)


# --- folders and links -------------------------------------------------------------------------
def _nested_classes(root: Path, count: int = 25) -> list[Path]:
    """Keras's nested layout (image_dataset_utils_test._prepare_directory, nested_dirs=True)."""
    folders = []
    for c in range(2):
        base = Path(f"class_{c}")
        folders += [base, base / "subfolder_1", base / "subfolder_2", base / "subfolder_1" / "sub"]
    return [_touch(root / folders[i % len(folders)] / f"image_{i}.jpg") for i in range(count)]


@pytest.mark.parametrize("follow_links", [False, True])
def test_nested_folders_listed_either_way(tmp_path: Path, follow_links: bool):
    files = _nested_classes(tmp_path)
    m = build_manifest(tmp_path, kind="image", follow_links=follow_links, progress=False)
    assert m.class_names == ["class_0", "class_1"] and not m.skipped
    _once(m.paths, files)
    for path, label in zip(m.paths, m.labels.tolist(), strict=True):
        assert Path(path).relative_to(tmp_path).parts[0] == m.class_names[label]


def _linked_tree(tmp_path: Path) -> tuple[Path, dict[str, list[Path]]]:
    """A class folder holding a link to a folder outside, a linked file, a class that is a link."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    own = [_touch(root / "cat" / "own.jpg"), _touch(root / "cat" / "deep" / "d.jpg")]
    _touch(outside / "far_1.jpg")
    _touch(outside / "sub" / "far_2.jpg")
    (root / "cat" / "linked").symlink_to(outside, target_is_directory=True)
    (root / "cat" / "file_link.jpg").symlink_to(_touch(tmp_path / "elsewhere" / "target.jpg"))
    dogs = _touch(tmp_path / "dogs_store" / "dog_1.jpg")
    (root / "dog").symlink_to(dogs.parent, target_is_directory=True)
    return root, {
        "own": [*own, root / "cat" / "file_link.jpg"],
        "far": [
            root / "cat" / "linked" / "far_1.jpg",
            root / "cat" / "linked" / "sub" / "far_2.jpg",
        ],
        "dog": [root / "dog" / "dog_1.jpg"],
    }


def test_links_not_followed_by_default(tmp_path: Path):
    root, files = _linked_tree(tmp_path)
    with pytest.warns(BytefeedWarning, match="1 link to a folder, not followed"):
        m = build_manifest(root, kind="image", progress=False)
    assert m.class_names == ["cat", "dog"]
    _once(m.paths, files["own"] + files["dog"])  # a class that is a link is listed, as in Keras
    assert _reasons(m) == {str(root / "cat" / "linked"): LINK_NOT_FOLLOWED}
    # a linked file keeps its own path, never its target's
    assert str(root / "cat" / "file_link.jpg") in m.paths
    assert m.label_names()[m.paths.index(str(root / "dog" / "dog_1.jpg"))] == "dog"


def test_links_followed_once(tmp_path: Path):
    root, files = _linked_tree(tmp_path)
    m = build_manifest(root, kind="image", follow_links=True, progress=False)
    assert not m.skipped
    _once(m.paths, files["own"] + files["far"] + files["dog"])
    names = dict(zip(m.paths, m.label_names(), strict=True))
    assert {names[str(p)] for p in files["far"]} == {"cat"}


@pytest.mark.parametrize("follow_links", [False, True])
def test_same_files_as_keras(tmp_path: Path, follow_links: bool):
    keras = pytest.importorskip("keras")
    from PIL import Image

    root, files = _linked_tree(tmp_path)
    for group in files.values():
        for p in group:
            Image.new("RGB", (4, 4)).save(p.resolve(), "JPEG")
    ds = keras.utils.image_dataset_from_directory(
        root, image_size=(4, 4), shuffle=False, follow_links=follow_links, verbose=False
    )
    if follow_links:
        m = build_manifest(root, kind="image", follow_links=True, progress=False)
    else:
        with pytest.warns(BytefeedWarning, match="not followed"):
            m = build_manifest(root, kind="image", progress=False)
    assert m.class_names == ds.class_names
    assert sorted(m.paths) == sorted(ds.file_paths)


@pytest.mark.parametrize("follow_links", [False, True])
def test_link_loop_never_followed_twice(tmp_path: Path, follow_links: bool):
    root = tmp_path / "root"
    files = [_touch(root / "a" / "one.txt"), _touch(root / "a" / "b" / "two.txt")]
    (root / "a" / "b" / "back").symlink_to(root / "a", target_is_directory=True)  # a/b/back -> a
    (root / "a" / "self").symlink_to(".", target_is_directory=True)  # a/self -> a
    (root / "loop").symlink_to(root, target_is_directory=True)  # a class that is root itself
    with pytest.warns(BytefeedWarning):
        m = build_manifest(root, kind="text", follow_links=follow_links, progress=False)
    assert m.class_names == ["a", "loop"] and m.counts() == {"a": 2, "loop": 0}
    _once(m.paths, files)
    reason = FOLDER_SEEN if follow_links else LINK_NOT_FOLLOWED
    assert _reasons(m) == {
        str(root / "a" / "b" / "back"): reason,
        str(root / "a" / "self"): reason,
        str(root / "loop"): FOLDER_SEEN,
    }


def test_link_into_another_class_keeps_the_real_label(tmp_path: Path):
    root = tmp_path / "root"
    b_files = [_touch(root / "b" / "shared" / f"{i}.jpg") for i in range(3)]
    a_files = [_touch(root / "a" / "mine.jpg")]
    (root / "a" / "borrowed").symlink_to(root / "b" / "shared", target_is_directory=True)
    ext = tmp_path / "ext"
    _touch(ext / "e.jpg")
    (root / "a" / "x1").symlink_to(ext, target_is_directory=True)
    (root / "a" / "x2").symlink_to(ext, target_is_directory=True)  # a second link to it
    with pytest.warns(BytefeedWarning, match="2 folder already listed"):
        m = build_manifest(root, kind="image", follow_links=True, progress=False)
    _once(m.paths, [*a_files, *b_files, root / "a" / "x1" / "e.jpg"])
    assert m.counts() == {"a": 2, "b": 3}
    assert _reasons(m) == {
        str(root / "a" / "borrowed"): FOLDER_SEEN,
        str(root / "a" / "x2"): FOLDER_SEEN,
    }


def test_broken_links_loops_and_special_files_are_recorded(tmp_path: Path):
    root = tmp_path / "root"
    good = [_touch(root / "c" / "good.jpg"), _touch(root / "c" / "sub" / "good2.jpg")]
    (root / "c" / "gone.jpg").symlink_to(tmp_path / "missing.jpg")
    (root / "c" / "gone_dir").symlink_to(tmp_path / "missing_dir", target_is_directory=True)
    (root / "c" / "self.jpg").symlink_to("self.jpg")
    (root / "c" / "x.jpg").symlink_to("y.jpg")
    (root / "c" / "y.jpg").symlink_to("x.jpg")
    os.mkfifo(root / "c" / "pipe.jpg")
    (root / "c" / "zero.jpg").symlink_to("/dev/zero")
    (root / "c" / "gone.txt").symlink_to(tmp_path / "missing.txt")  # not an image: ignored
    (root / "c" / ".hidden_gone.jpg").symlink_to(tmp_path / "missing.jpg")  # hidden: ignored
    with pytest.warns(BytefeedWarning, match=r"left out 6 entries .*3 link loop; 2 not a regular"):
        m = build_manifest(root, kind="image", progress=False)  # never blocks on the FIFO
    _once(m.paths, good)
    c = root / "c"
    assert _reasons(m) == {
        str(c / "gone.jpg"): BROKEN_LINK,
        str(c / "self.jpg"): LINK_LOOP,
        str(c / "x.jpg"): LINK_LOOP,
        str(c / "y.jpg"): LINK_LOOP,
        str(c / "pipe.jpg"): NOT_REGULAR,
        str(c / "zero.jpg"): NOT_REGULAR,
    }
    # with every extension wanted, the broken folder link is recorded too (a file for all we know)
    with pytest.warns(BytefeedWarning):
        everything = build_manifest(root, progress=False)
    assert _reasons(everything)[str(c / "gone_dir")] == BROKEN_LINK
    assert _reasons(everything)[str(c / "gone.txt")] == BROKEN_LINK
    _once(everything.paths, good)


def test_unreadable_folder_is_skipped(tmp_path: Path, monkeypatch):
    root = tmp_path / "root"
    good = [_touch(root / "a" / "ok.wav"), _touch(root / "b" / "ok.wav")]
    locked = root / "a" / "locked"
    _touch(locked / "secret.wav")
    real_scandir = os.scandir

    def scandir(path):  # root may read anything: deny the way a locked folder does
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.warns(BytefeedWarning, match="cannot list folder: permission denied"):
        m = build_manifest(root, kind="audio", progress=False)
    _once(m.paths, good)
    assert _reasons(m) == {str(locked): "cannot list folder: permission denied"}
    monkeypatch.setattr(
        os, "scandir", lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission denied", p))
    )
    with pytest.raises(PermissionError, match="cannot list the folder"):
        build_manifest(root, kind="audio", progress=False)


def test_unreadable_folder_for_real(tmp_path: Path):
    good = _touch(tmp_path / "a" / "ok.txt")
    locked = tmp_path / "a" / "locked"
    _touch(locked / "secret.txt")
    locked.chmod(0)
    try:
        try:
            os.listdir(locked)
        except PermissionError:
            pass
        else:
            pytest.skip("this user reads folders whatever their mode (root)")
        with pytest.warns(BytefeedWarning):
            m = build_manifest(tmp_path, kind="text", progress=False)
    finally:
        locked.chmod(stat.S_IRWXU)
    _once(m.paths, [good])
    assert _reasons(m) == {str(locked): "cannot list folder: permission denied"}


def test_follow_links_must_be_a_bool(tmp_path: Path):
    with pytest.raises(ValueError, match="follow_links must be True or False"):
        build_manifest(tmp_path, follow_links="yes")


# --- writing keeps links --------------------------------------------------------------------------
def test_write_read_round_trip_keeps_linked_paths(tmp_path: Path):
    root, files = _linked_tree(tmp_path)
    m = build_manifest(root, kind="image", follow_links=True, progress=False)
    out = m.write(tmp_path / "lists" / "m.csv")
    text = out.read_text()
    assert "../root/cat/file_link.jpg" in text and "target.jpg" not in text
    assert "../root/cat/linked/far_1.jpg" in text and "outside" not in text
    assert "../root/dog/dog_1.jpg" in text and "dogs_store" not in text
    back = read_manifest(out, class_names=m.class_names)
    assert back.paths == m.paths and back.labels.tolist() == m.labels.tolist()
    _once(back.paths, files["own"] + files["far"] + files["dog"])


def test_round_trip_through_a_linked_csv_folder(tmp_path: Path):
    # the CSV's folder is a link to a folder elsewhere: `..` must not be taken physically
    files = [_touch(tmp_path / "data" / "c" / f"{i}.jpg") for i in range(2)]
    (tmp_path / "real_lists" / "deep").mkdir(parents=True)
    (tmp_path / "lists").symlink_to(tmp_path / "real_lists" / "deep", target_is_directory=True)
    m = Manifest.from_labelled(files, ["c", "c"])
    out = m.write(tmp_path / "lists" / "m.csv")
    assert "../data/c/0.jpg" in out.read_text()
    assert read_manifest(out).paths == [str(f) for f in files]
    # a manifest file that is itself a link reads from its target's folder
    (tmp_path / "alias.csv").symlink_to(tmp_path / "real_lists" / "deep" / "m.csv")
    assert read_manifest(tmp_path / "alias.csv").paths == [
        os.path.normpath(tmp_path / "real_lists" / "deep" / "../data/c" / f"{i}.jpg")
        for i in range(2)
    ]


def test_relative_paths_written_relative(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _touch(tmp_path / "x" / "a.txt")
    (tmp_path / "x" / "l.txt").symlink_to("a.txt")
    m = Manifest(["x/a.txt", "x/l.txt"])
    out = m.write("out/m.csv")
    assert out.read_text().splitlines()[1:] == ["../x/a.txt,", "../x/l.txt,"]
    assert read_manifest(out).paths == [
        str(tmp_path / "x" / "a.txt"),
        str(tmp_path / "x" / "l.txt"),
    ]


# --- the command line ------------------------------------------------------------------------------
def test_cli_follow_links_and_columns(tmp_path: Path, capsys):
    root, _ = _linked_tree(tmp_path)
    out = tmp_path / "m.csv"
    with pytest.warns(BytefeedWarning):
        assert cli(["manifest", str(root), "-o", str(out), "--kind", "image"]) == 0
    assert "4 files, 2 classes" in capsys.readouterr().out
    assert cli(["manifest", str(root), "-o", str(out), "--kind", "image", "--follow-links"]) == 0
    assert "6 files, 2 classes" in capsys.readouterr().out
    _touch(tmp_path / "meta.csv", b"image_id,dx\nown,cat\n")
    assert cli(["validate", str(tmp_path / "meta.csv"), "--kind", "text"]) == 2
    err = capsys.readouterr().err
    assert "['image_id', 'dx']" in err and "path_column='image_id'" in err
    args = ["--path-column", "image_id", "--label-column", "dx", "--suffix", ".txt"]
    _touch(tmp_path / "docs" / "own.txt", b"plain words")
    argv = [
        "validate",
        str(tmp_path / "meta.csv"),
        "--kind",
        "text",
        *args,
        "--root",
        str(tmp_path / "docs"),
    ]
    assert cli(argv) == 0
    assert "1 text files checked, 0 with problems" in capsys.readouterr().out
    assert cli(["validate", str(tmp_path / "meta.csv"), "--root", str(tmp_path / "nope")]) == 2
    assert "root must be an existing folder" in capsys.readouterr().err


def test_cli_bench_reports_a_header_without_path(tmp_path: Path, capsys):
    _touch(tmp_path / "meta.csv", b"filename,label\na.jpg,cat\n")
    assert cli(["bench", str(tmp_path / "meta.csv")]) == 2
    assert "path_column='filename'" in capsys.readouterr().err
    assert (
        cli(["bench", str(tmp_path / "meta.csv"), "--path-column", "filename", "--root", "nope"])
        == 2
    )
    assert "root must be an existing folder" in capsys.readouterr().err
