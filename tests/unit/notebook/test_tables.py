"""html_table: rows of numbers as an HTML table in a notebook, aligned text elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bytefeed_helpers.notebook import HTMLTable, html_table
from bytefeed_helpers.notebook.tables import FONT_SIZE, format_value

ROWS = [
    {"pipeline": "bytefeed", "samples/s": 1230.0, "ratio": 1.0, "note": ""},
    {"pipeline": "article", "samples/s": 412.0, "ratio": 3.0, "note": "one core"},
    {"pipeline": "decode bound", "samples/s": 2500, "ratio": None, "note": "16 cores x 156/s"},
]


def test_numbers_are_printed_as_rounded_and_blanks_stay_blank():
    assert format_value(1230.0) == "1,230" and format_value(1234567) == "1,234,567"
    assert format_value(0.48) == "0.48" and format_value(12345.6) == "12,345.6"
    assert format_value(None) == "" and format_value(math.nan) == ""
    assert format_value(True) == "True" and format_value("words") == "words"
    assert format_value(np.int64(1234)) == "1,234" and format_value(np.float32(0.5)) == "0.5"


def test_a_format_spec_gives_a_column_fixed_decimals():
    rows = [{"MB": 40.0, "x": 1.0}, {"MB": 0.3, "x": 0.094}, {"MB": None, "x": 12.0}]
    t = html_table(rows, formats={"MB": ",.1f"})
    assert [t.cell(r, "MB") for r in t.rows] == ["40.0", "0.3", ""]
    assert [t.cell(r, "x") for r in t.rows] == ["1", "0.094", "12"]  # each its shortest form


def test_html_has_a_real_table_numbers_right_words_left():
    t = html_table(ROWS, caption="bench: 48 files", notes=["machine: 2 cores"])
    assert isinstance(t, HTMLTable) and t.columns == ["pipeline", "samples/s", "ratio", "note"]
    assert [t.numeric(c) for c in t.columns] == [False, True, True, False]
    h = t._repr_html_()
    assert h.startswith("<table") and h.count("<tr>") == 4 and "<caption" in h
    assert f"font-size: {FONT_SIZE}" in h and int(FONT_SIZE.removesuffix("px")) >= 12
    assert '<td style="text-align: right; padding: 2px 8px">1,230</td>' in h
    assert '<td style="text-align: left; padding: 2px 8px">decode bound</td>' in h
    assert "machine: 2 cores" in h


def test_text_is_aligned_and_is_the_plain_repr():
    t = html_table(ROWS, columns=["pipeline", "samples/s"], caption="bench")
    lines = str(t).splitlines()
    assert lines[0] == "bench" and lines[1].split() == ["pipeline", "samples/s"]
    assert lines[3].endswith("1,230") and lines[5].endswith("2,500")
    assert len({len(line) for line in lines[1:]}) == 1  # right-aligned numbers end together
    assert repr(t) == str(t)


def test_markup_is_escaped_formats_apply_and_columns_are_checked():
    t = html_table([{"a": "<b>", "ms": 0.0123}], formats={"ms": lambda v: f"{1000 * v:.1f} ms"})
    assert "&lt;b&gt;" in t._repr_html_() and "12.3 ms" in t._repr_html_()
    with pytest.raises(ValueError, match="columns must be keys of the rows"):
        html_table(ROWS, columns=["pipeline", "nope"])
    assert "<tbody></tbody>" in html_table([])._repr_html_()  # no rows: an empty table
