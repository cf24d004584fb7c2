"""Manifests as columns (issue 16): paths and extra columns in Arrow arrays, CSV read by
pyarrow where it gives the same answer as Python's ``csv`` module (and by ``csv`` where it
does not), CSV written as ``csv.writer`` writes it, Parquet manifests, fingerprints hashed
once from the buffers, and folder scans that never stat a file.

The fast routes are checked against the row-by-row ones on every hostile input built here:
each file is read twice, once as ``read_manifest`` reads it and once with the pyarrow routes
switched off, and both must give the same manifest or the same error. Tests never time.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bytefeed_helpers import Manifest, ManifestError, build_manifest, read_manifest
from bytefeed_helpers import manifest as mf
from bytefeed_helpers.manifest import StringColumn


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- the column ---------------------------------------------------------------------------------
def test_string_column_reads_like_a_list():
    values = ["a.jpg", "dir/é.png", "", "x" * 300, "last"]
    col = StringColumn(values)
    assert len(col) == 5 and col[1] == "dir/é.png" and col[-1] == "last"
    assert col[np.int64(3)] == "x" * 300 and type(col[0]) is str
    assert list(col) == values and col.tolist() == values
    assert col == values and values == col and col == tuple(values) and col != values[:-1]
    assert col[1:3] == ["dir/é.png", ""] and isinstance(col[1:3], StringColumn)
    assert col[::2] == ["a.jpg", "", "last"] and col[::-1] == values[::-1]
    assert col.index("last") == 4 and "" in col and "nope" not in col
    assert col + ["more"] == [*values, "more"]  # noqa: RUF005  (``+`` is what is tested)
    assert ["first"] + col == ["first", *values]  # noqa: RUF005
    assert col.take([4, -5, 0]) == ["last", "a.jpg", "a.jpg"]
    assert sorted(col) == sorted(values) and set(col) == set(values)
    with pytest.raises(IndexError):
        col[5]
    with pytest.raises(IndexError):
        col.take([5])
    with pytest.raises(TypeError):
        StringColumn("one/path.jpg")  # one path, not a sequence of them
    with pytest.raises(TypeError):
        StringColumn([1, 2])
    with pytest.raises(TypeError):
        hash(col)
    assert "5 strings" in repr(col) and "'a.jpg'" in repr(col)
    assert StringColumn([]) == [] and len(StringColumn()) == 0 and list(StringColumn()) == []


def test_string_column_holds_bytes_not_python_objects():
    paths = [f"/data/train/class_{i % 7}/img_{i:07d}.jpg" for i in range(20_000)]
    col = StringColumn(paths)
    assert col.nbytes <= sum(len(p) + 8 for p in paths) + 64  # bytes plus one offset each
    assert isinstance(col.to_arrow(), pa.Array) and col.to_arrow().type == pa.large_string()
    assert StringColumn(col.to_arrow()) == col and StringColumn(pa.array(paths)) == col
    chunked = pa.chunked_array([pa.array(paths[:7]), pa.array(paths[7:])])
    assert StringColumn(chunked) == col
    assert StringColumn(pa.array(["a", None])) == ["a", ""]  # a missing value reads as ""
    assert StringColumn(np.array(["a", "b"])) == ["a", "b"]
    assert StringColumn([Path("/x/y"), b"/raw"]) == ["/x/y", "/raw"]


def test_string_column_keeps_names_that_are_not_utf8():
    odd = os.fsdecode(b"/d/caf\xe9.jpg")  # a Latin-1 name on a UTF-8 system
    col = StringColumn([odd, "/d/ok.jpg"])
    assert col[0] == odd and os.fsencode(col[0]) == b"/d/caf\xe9.jpg"
    assert col.to_arrow().type == pa.large_binary()  # kept as its raw bytes
    assert list(col) == [odd, "/d/ok.jpg"]


def test_string_column_pickles_and_copies():
    col = StringColumn(["a", "b", "c"])[1:]
    assert pickle.loads(pickle.dumps(col)) == ["b", "c"]
    assert copy.copy(col) is col and copy.deepcopy(col) is col  # immutable: shared


def test_manifest_holds_columns():
    m = Manifest(
        ["/a/1.jpg", "/a/2.jpg", "/b/3.jpg"], [0, -1, 1], ["a", "b"], columns={"n": [1, 2, 3]}
    )
    assert isinstance(m.paths, StringColumn) and isinstance(m.columns["n"], StringColumn)
    assert m.columns["n"] == ["1", "2", "3"]
    assert m.label_names() == ["a", "", "b"] and m.counts() == {"a": 1, "b": 1}
    sub = m.subset([-1, 0])
    assert sub.paths == ["/b/3.jpg", "/a/1.jpg"] and sub.labels.tolist() == [1, 0]
    assert sub.columns == {"n": ["3", "1"]}
    train, val = Manifest.from_labelled([f"/x/{i}.jpg" for i in range(10)], ["a"] * 10).split(0.3)
    assert len(train) + len(val) == 10 and not set(train.paths) & set(val.paths)


def test_python_whitespace_list_is_complete():
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == mf._PY_SPACE


# --- fingerprints -----------------------------------------------------------------------------
def _old_fingerprint(m: Manifest) -> str:
    """The row-by-row digest of earlier versions (states and caches keyed by it stay valid)."""
    h = hashlib.sha256()
    h.update("\0".join(m.class_names).encode())
    h.update(m.labels.tobytes())
    for p in m.paths:
        h.update(p.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def test_fingerprint_is_the_row_by_row_digest_hashed_from_buffers(monkeypatch):
    monkeypatch.setattr(mf, "_BLOCK_ROWS", 3)  # several blocks, one a short one
    paths = [f"/d/{i}/é{'x' * i}.jpg" for i in range(11)] + ["", os.fsdecode(b"/d/\xff")]
    m = Manifest(paths, [i % 2 for i in range(13)], ["a", "b"])
    assert m.fingerprint() == _old_fingerprint(m)
    assert Manifest([], None).fingerprint() == _old_fingerprint(Manifest([], None))
    sliced = Manifest(StringColumn(paths)[2:9], None)
    assert sliced.fingerprint() == _old_fingerprint(sliced)


def test_fingerprint_is_computed_once(monkeypatch):
    m = Manifest([f"/d/{i}.jpg" for i in range(50)], [0] * 50, ["a"])
    calls = []
    digest = mf.Manifest._digest
    monkeypatch.setattr(
        mf.Manifest, "_digest", lambda self, **k: calls.append(k) or digest(self, **k)
    )
    first = m.fingerprint()
    assert [m.fingerprint() for _ in range(100)] == [first] * 100
    assert calls == [{"stat": False}]
    m.fingerprint(stat=True)
    m.fingerprint(stat=True)  # files change: stat-ed on each call
    assert calls == [{"stat": False}, {"stat": True}, {"stat": True}]
    m.labels = np.zeros(50, np.int32)  # a new array (in-place edits are not allowed)
    m.class_names = ["b"]
    assert m.fingerprint() != first and len(calls) == 4


# --- reading CSV: the fast route gives the slow route's answer ---------------------------------
def _read_slow(path: Path, monkeypatch, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(mf, "_fast_csv", lambda *a, **k: None)
        patch.setattr(mf, "_fast_list", lambda *a, **k: None)
        return _outcome(path, **kwargs)


def _outcome(path: Path, **kwargs):
    try:
        m = read_manifest(path, **kwargs)
    except (ManifestError, ValueError, OSError) as exc:
        return type(exc).__name__, str(exc)
    return (
        m.paths.tolist(),
        m.labels.tolist(),
        m.class_names,
        {k: list(v) for k, v in m.columns.items()},
    )


HOSTILE = {
    "plain": b"path,label\na.jpg,cat\nb.jpg,dog\n",
    "bom_crlf": b"\xef\xbb\xbfpath,label\r\na.jpg,cat\r\nb.jpg,dog\r\n",
    "cr_only": b"path,label\ra.jpg,cat\rb.jpg,dog\r",
    "no_final_newline": b"path,label\na.jpg,cat\nb.jpg,dog",
    "quoted": b'path,label,note\n"a,b.jpg",cat,"x, ""y"" \r\nz"\n"c.jpg","dog",""\n',
    "quoted_header": b'"path","label"\n"a.jpg","cat"\n',
    "doubled_quotes": b'path,label\n"a""b.jpg",cat\n"""q""",dog\n',
    "stray_after_quote": b'path,label\n"a"b.jpg,cat\n',
    "quote_then_space": b'path,label\n"a.jpg" ,cat\n',
    "quote_inside_field": b'path,label\na"b.jpg,cat\nc.jpg,dog\n',
    "quote_two_inside": b'path,label\na""b.jpg,cat\n',
    "unclosed_at_end": b'path,label\na.jpg,"cat\n',
    "unclosed_middle": b'path,label\n"a.jpg,cat\nb.jpg,dog\n',
    "blank_lines": b"path,label\n\na.jpg,cat\n\n\nb.jpg,dog\n\n",
    "spaces_line": b"path,label\na.jpg,cat\n   \nb.jpg,dog\n",
    "commas_line": b"path,label\na.jpg,cat\n,\nb.jpg,dog\n",
    "empty_path": b"path,label\na.jpg,cat\n,dog\n",
    "spaces_path": b"path,label\n  ,dog\n",
    "extra_field": b"path,label\na.jpg,cat,more\n",
    "missing_field": b"path,label\na.jpg\n",
    "not_utf8": b"path,label\na.jpg,cat\ncaf\xe9.jpg,dog\n",
    "header_only": b"path,label\n",
    "leading_blank": b"\n\npath,label\na.jpg,cat\n",
    "leading_spaces_line": b"  \npath,label\na.jpg,cat\n",
    "header_case_spaces": b" Path , LABEL ,Note\n a b.jpg , cat ,  keep  \n",
    "duplicate_header": b"path,Path\na.jpg,b.jpg\n",
    "tabs": b"path\tlabel\ta,b\na.jpg\tcat\tx,y\n",
    "semicolons": b"path;label\na.jpg;cat\n",
    "int_labels": b"path,label\na.jpg,10\nb.jpg,9\nc.jpg,\nd.jpg,0\n",
    "unicode_spaces": "path,label\n\u3000a.jpg\u2003,\xa0cat\u2028\n".encode(),
    "control_in_field": b"path,label\na\x0bb.jpg,c\x1fat\nc\x00.jpg,dog\n",
    "line_separator_in_field": "path,label\na\u2028b.jpg,cat\n".encode(),
    "odd_paths": b"path,label\n./a.jpg,x\nsub/../b.jpg,x\nsub//c.jpg,x\nd/,x\n.hidden/e.jpg,x\n..,x\n",
    "absolute": b"path,label\n/abs/a.jpg,x\n/abs/../b.jpg,x\nrel.jpg,y\n",
    "suffixes": b"path,label\nISIC_1,x\nISIC_2.JPG,x\nISIC_3.jpg,y\n",
    "other_columns": b"image_id,dx,age\nISIC_1,bkl,80.0\nISIC_2,nv,\n",
    "one_column": b"path\na.jpg\nb.jpg\n",
    "multiline_header": b'"pa\nth",label\na.jpg,x\n',
    "list": b"x/a.wav\n\n  b.wav  \r\nc d.wav\n",
    "list_with_quotes": b'"a.wav"\nb"c.wav\n',
    "list_with_commas": b"a,b.wav\nc.wav\n",
    "list_vertical_tab": b"a.wav\x0bb.wav\nc.wav\n",
    "list_line_separator": "a.wav\u2028b.wav\nc.wav\n".encode(),
    "list_next_line": "a.wav\x85b.wav\nc.wav\n".encode(),
    "list_unit_separator": b"a\x1f.wav\nb\x01.wav\nc.wav\n",
    "list_not_utf8": b"a.wav\nb\xff.wav\n",
    "list_bom_cr": b"\xef\xbb\xbfa.wav\rb.wav\r",
    "list_spaces_only": b"   \n\t\n",
    "empty": b"",
}
OPTIONS = [
    {},
    {"suffix": ".jpg"},
    {"label_column": None},
    {"path_column": "image_id", "label_column": "dx", "suffix": ".JPG"},
    {"class_names": ["cat", "dog"]},
]


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("small_blocks", [False, True])
def test_fast_and_slow_routes_agree(tmp_path: Path, monkeypatch, name: str, small_blocks: bool):
    path = _touch(tmp_path / "lists" / f"{name}.csv", HOSTILE[name])
    if small_blocks:  # every block boundary the readers have, a few bytes apart
        monkeypatch.setattr(mf, "_SCAN_BYTES", 3)
        monkeypatch.setattr(mf, "_CSV_BLOCK", 16)
        monkeypatch.setattr(mf._Head, "SIZE", 24)
    for options in OPTIONS:
        slow = _read_slow(path, monkeypatch, **options)
        assert _outcome(path, **options) == slow, (name, options)


def test_malformed_rows_still_name_the_line(tmp_path: Path):
    cases = {
        "stray_after_quote": (2, "malformed"),
        "unclosed_at_end": (2, "malformed"),
        "empty_path": (3, "empty path"),
        "extra_field": (2, "expected 2 fields"),
        "not_utf8": (3, "not UTF-8"),
    }
    for name, (line, what) in cases.items():
        path = _touch(tmp_path / f"{name}.csv", HOSTILE[name])
        with pytest.raises(ManifestError) as info:
            read_manifest(path)
        assert f"{name}.csv:{line}" in str(info.value) and what in str(info.value), name


def test_a_well_formed_csv_never_takes_the_row_by_row_route(tmp_path: Path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("read row by row")

    monkeypatch.setattr(mf, "_read_csv", refuse)
    monkeypatch.setattr(mf, "_read_list", refuse)
    for name in ("plain", "bom_crlf", "quoted", "doubled_quotes", "tabs", "odd_paths", "list"):
        read_manifest(_touch(tmp_path / f"{name}.csv", HOSTILE[name]))
    pandas_style = "path,label\n" + "".join(f'"{i}, x.jpg",c{i % 3}\n' for i in range(500))
    m = read_manifest(_touch(tmp_path / "pandas.csv", pandas_style.encode()))
    assert len(m) == 500 and m.paths[7] == str(tmp_path / "7, x.jpg")


def test_random_csvs_agree_with_csv_module(tmp_path: Path, monkeypatch):
    rng = random.Random(16)
    monkeypatch.setattr(mf, "_SCAN_BYTES", 97)
    monkeypatch.setattr(mf, "_CSV_BLOCK", 256)
    alphabet = ["a", "b", "/", ".", " ", ",", '"', "\n", "\r", "é", "\t", "x"]
    for trial in range(40):
        rows = []
        for _ in range(rng.randint(0, 60)):
            cells = ["".join(rng.choices(alphabet, k=rng.randint(0, 6))) for _ in range(3)]
            rows.append(cells)
        out = io.StringIO()
        csv.writer(out, quoting=rng.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])).writerows(
            [["path", "label", "note"], *rows]
        )
        text = out.getvalue()
        if rng.random() < 0.3 and text:  # now and then a stray quote or a cut
            cut = rng.randrange(len(text))
            text = text[:cut] + rng.choice(['"', "", "\n,", 'x"']) + text[cut:]
        path = _touch(tmp_path / f"r{trial}.csv", text.encode())
        assert _outcome(path) == _read_slow(path, monkeypatch), text


def test_many_blocks_of_a_bigger_csv(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(mf, "_CSV_BLOCK", 4096)
    body = "path,label,n\n" + "".join(f"c{i % 5}/f_{i}.png,c{i % 5},{i}\n" for i in range(20_000))
    path = _touch(tmp_path / "m.csv", body.encode())
    m = read_manifest(path)
    assert len(m) == 20_000 and m.paths[12_345] == str(tmp_path / "c0" / "f_12345.png")
    assert m.labels[12_345] == 0 and m.columns["n"][19_999] == "19999"
    assert _outcome(path) == _read_slow(path, monkeypatch)


# --- resolving and writing, vectorised against the per-row functions ---------------------------
def test_resolving_matches_resolve_one(tmp_path: Path):
    base = str(tmp_path / "base")
    paths = [
        "a.jpg", "sub/b.JPG", "./c", "d/../e", "f//g", "h/", ".hidden", "..", "../up.jpg",
        "/abs/x.jpg", "/abs/../y", "é/ü.png", "x.jpg.JPG", "no_ext",
    ]  # fmt: skip
    for suffix in ("", ".jpg", ".JPG"):
        block = pa.array(paths, pa.large_string())
        got = mf._resolve([block], base, suffix)
        assert got == [mf._resolve_one(p, base, suffix) for p in paths], suffix
    assert mf._resolve([pa.array(["x"], pa.large_string())], "/", "") == ["/x"]


def test_relative_paths_match_relative_to(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = str(tmp_path / "lists" / "deep")
    paths = [
        f"{base}/a.jpg", f"{base}/sub/b.jpg", str(tmp_path / "lists" / "c.jpg"),
        str(tmp_path / "data" / "d.jpg"), "/", "/top.jpg", base, str(tmp_path / "lists"),
        f"{base}/../e.jpg", f"{base}/./f.jpg", f"{base}//g.jpg", f"{base}/h/", "rel/i.jpg",
        f"{base}x/j.jpg", f"{base}/é.jpg", os.fsdecode(os.fsencode(base) + b"/\xff.jpg"),
    ]  # fmt: skip
    col = StringColumn(paths)
    got = StringColumn(mf._relative_block(col._block(0, len(col)), base))
    assert got == [mf._relative_to(p, base) for p in paths]


def _csv_writer_bytes(m: Manifest, out: Path) -> bytes:
    """What the previous ``Manifest.write`` (``csv.writer``, row by row) wrote."""
    base = os.path.abspath(out.parent)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(["path", "label", *m.columns])
    names = m.label_names()
    for i, p in enumerate(m.paths):
        writer.writerow([mf._relative_to(p, base), names[i], *(v[i] for v in m.columns.values())])
    return buf.getvalue().encode("utf-8")


def test_csv_written_as_csv_writer_writes_it(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(mf, "_BLOCK_ROWS", 4)
    out = tmp_path / "lists" / "m.csv"
    odd = ["a,b.jpg", 'q"uote.jpg', "new\nline.jpg", "cr\rx.jpg", " sp .jpg", "é.jpg", "plain.jpg"]
    paths = [str(tmp_path / "data" / p) for p in odd] + ["/elsewhere/x.jpg", "rel.jpg"]
    notes = ["", "a,b", '"', "x\r\ny", "  ", "ü", "n", "m", "o"]
    m = Manifest(paths, [0, 1, -1, 0, 1, 0, 1, -1, 0], ["cat", "d,og"], columns={"note, 1": notes})
    monkeypatch.chdir(tmp_path)
    m.write(out)
    assert out.read_bytes() == _csv_writer_bytes(m, out)
    back = read_manifest(out, class_names=m.class_names)
    assert back.paths == [os.path.abspath(p) for p in m.paths]
    assert back.labels.tolist() == m.labels.tolist() and back.columns == m.columns
    empty = Manifest([], None)
    empty.write(tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_bytes() == b"path,label\r\n"


def test_a_path_that_is_not_utf8_cannot_go_into_a_csv(tmp_path: Path):
    m = Manifest([os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.jpg")])
    with pytest.raises(ManifestError, match=r"not valid UTF-8.*write a \.parquet manifest"):
        m.write(tmp_path / "m.csv")
    m.write(tmp_path / "m.parquet")
    assert read_manifest(tmp_path / "m.parquet") == m


# --- Parquet ----------------------------------------------------------------------------------
def test_parquet_round_trip_keeps_everything(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(mf, "_BLOCK_ROWS", 5)  # several row groups
    files = [str(tmp_path / "data" / f"c{i % 3}" / f"{i}.jpg") for i in range(23)]
    labels = [i % 3 if i % 7 else -1 for i in range(23)]
    m = Manifest(
        files, labels, ["a", "b", "c", "empty"], columns={"n": [str(i) for i in range(23)]},
        kind="image",
    )  # fmt: skip
    out = m.write(tmp_path / "lists" / "m.parquet")
    assert out.read_bytes()[:4] == b"PAR1"
    back = read_manifest(out)
    assert back == m and back.kind == "image" and back.class_names[-1] == "empty"
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.column("path")[0].as_py() == "../data/c0/0.jpg"  # relative, as in CSV
    assert table.column("label").null_count == 4
    # the same file under another name is still Parquet
    (tmp_path / "lists" / "m.bin").write_bytes(out.read_bytes())
    assert read_manifest(tmp_path / "lists" / "m.bin") == m
    # class_names given wins over the stored ones
    assert read_manifest(out, class_names=["c", "b", "a"]).label_names() == m.label_names()


def test_parquet_from_pandas_with_the_column_options(tmp_path: Path):
    pd = pytest.importorskip("pandas")
    images = tmp_path / "images"
    ids = ["ISIC_1", "ISIC_2.JPG", "ISIC_3", "ISIC_4"]
    df = pd.DataFrame(
        {
            "image_id": ids,
            "dx": pd.array([3, None, 0, 3], "Int64"),
            "age": [80.0, np.nan, 75.5, 1e3],
            "ok": [True, False, True, True],
        }
    )
    df.to_parquet(tmp_path / "meta.parquet")
    with pytest.raises(ManifestError, match=r"path_column='image_id'"):
        read_manifest(tmp_path / "meta.parquet")
    images.mkdir()
    m = read_manifest(
        tmp_path / "meta.parquet", path_column="Image_ID", label_column="dx", root=images,
        suffix=".jpg",
    )  # fmt: skip
    assert m.paths == [str(images / "ISIC_1.jpg"), str(images / "ISIC_2.JPG"),
                       str(images / "ISIC_3.jpg"), str(images / "ISIC_4.jpg")]  # fmt: skip
    assert m.class_names == ["0", "3"] and m.labels.tolist() == [1, -1, 0, 1]
    assert m.columns["age"] == ["80", "", "75.5", "1000"] and m.columns["ok"][1] == "False"
    from_df = Manifest.from_dataframe(
        df, path_column="image_id", label_column="dx", root=images, suffix=".jpg"
    )
    assert from_df == m  # the same reading as a DataFrame's
    with pytest.raises(ManifestError, match="no 'species' column"):
        read_manifest(tmp_path / "meta.parquet", path_column="image_id", label_column="species")
    pd.DataFrame({"path": ["a.jpg", None]}).to_parquet(tmp_path / "gap.parquet")
    with pytest.raises(ManifestError, match=r"row 1: empty path"):
        read_manifest(tmp_path / "gap.parquet")
    _touch(tmp_path / "fake.parquet", b"PAR1 but not really PAR1")
    with pytest.raises(ManifestError, match="not a readable Parquet file"):
        read_manifest(tmp_path / "fake.parquet")


def test_parquet_paths_may_be_binary(tmp_path: Path):
    import pyarrow.parquet as pq

    raw = [b"a.jpg", b"caf\xe9.jpg"]
    pq.write_table(pa.table({"path": pa.array(raw, pa.binary())}), tmp_path / "b.parquet")
    m = read_manifest(tmp_path / "b.parquet")
    assert [os.fsencode(p) for p in m.paths] == [os.fsencode(tmp_path) + b"/" + r for r in raw]


# --- other users of the columns -----------------------------------------------------------------
def test_a_manifest_with_columns_packs(tmp_path: Path):
    from bytefeed_helpers.packed import pack, read_packed

    files = [_touch(tmp_path / f"{i}.txt", f"doc {i}".encode()) for i in range(3)]
    m = Manifest(files, [0, 1, 0], ["a", "b"], columns={"note": ["x", "y", "z"]}, kind="text")
    source = read_packed(pack(m, tmp_path / "packed", progress=False).root)
    assert source.manifest == m and json.loads(Path(source.index.path).read_text())["columns"]


def test_the_scan_stats_no_file(tmp_path: Path, monkeypatch):
    for i in range(300):
        _touch(tmp_path / f"c{i % 3}" / f"sub{i % 2}" / f"{i}.jpg", b"")
    (tmp_path / "c0" / "link.jpg").symlink_to(tmp_path / "c1" / "sub1" / "1.jpg")
    calls = []
    real_stat, real_lstat = os.stat, os.lstat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: calls.append(p) or real_stat(p, *a, **k))
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: calls.append(p) or real_lstat(p, *a, **k))
    m = build_manifest(tmp_path, kind="image", progress=False)
    assert len(m) == 301
    folders = 1 + 3 + 6
    # one per folder (its identity), one for root being a folder, one for the link
    assert len(calls) <= folders + 2
    assert not [c for c in calls if str(c).endswith(".jpg") and "link" not in str(c)]


def test_relative_paths_share_the_folder_once(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(mf, "_CSV_BLOCK", 64)  # several chunks
    monkeypatch.setattr(mf, "_BLOCK_ROWS", 7)
    body = "path,label\n" + "".join(f"c{i % 3}/{i}.jpg,c{i % 3}\n" for i in range(40))
    m = read_manifest(_touch(tmp_path / "lists" / "m.csv", body.encode()))
    expected = [str(tmp_path / "lists" / f"c{i % 3}" / f"{i}.jpg") for i in range(40)]
    folder = os.fsencode(tmp_path / "lists") + b"/"
    assert m.paths._prefix == folder  # kept once, not once per row
    assert m.paths._chunks.num_chunks > 1
    assert m.paths == expected and list(m.paths) == expected and m.paths[-1] == expected[-1]
    assert m.paths == StringColumn(expected) and StringColumn(expected) == m.paths
    assert m.paths[5:9] == expected[5:9] and m.paths.take([39, 0]) == [expected[39], expected[0]]
    assert pickle.loads(pickle.dumps(m.paths)) == expected
    assert m.paths.to_arrow().to_pylist() == expected and StringColumn(m.paths) == expected
    assert (
        m.fingerprint()
        == _old_fingerprint(m)
        == Manifest(expected, m.labels, m.class_names).fingerprint()
    )
    assert m.paths.nbytes < sum(len(p) for p in expected)  # the folder is not repeated
    # written back beside itself: the same bytes; elsewhere: relative to the new folder
    again = m.write(tmp_path / "lists" / "again.csv")
    assert again.read_bytes() == (tmp_path / "lists" / "m.csv").read_bytes().replace(b"\n", b"\r\n")
    other = m.write(tmp_path / "elsewhere" / "m.csv")
    assert read_manifest(other) == m and b"../lists/c0/0.jpg" in other.read_bytes()
    # one absolute or not-normal path: every path is stored whole
    mixed = read_manifest(_touch(tmp_path / "mixed.csv", (body + "/abs/x.jpg,c0\n").encode()))
    assert mixed.paths._prefix == b"" and mixed.paths[-1] == "/abs/x.jpg"
    dotted = read_manifest(_touch(tmp_path / "dotted.csv", (body + "./y.jpg,c0\n").encode()))
    assert dotted.paths._prefix == b"" and dotted.paths[-1] == str(tmp_path / "y.jpg")
