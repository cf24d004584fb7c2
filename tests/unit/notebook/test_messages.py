"""print_kit_warnings: the kit's warnings printed as plain lines, every other warning handed on
(bytefeed_helpers.notebook.messages)."""

from __future__ import annotations

import warnings

import pytest
from support import DATA, broken_files

import bytefeed_helpers as bf
from bytefeed_helpers.errors import BytefeedWarning, warn
from bytefeed_helpers.notebook import print_kit_warnings


def test_a_kit_warning_becomes_a_line_on_stdout_and_leaves_stderr_alone(capsys):
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with print_kit_warnings() as shown:
            warn("image_batches: skipped 2 bad file(s) in epoch 0")
            assert shown == []  # filled when the block ends
    assert outside == []  # nothing reached the warnings machinery around the block
    assert shown == ["image_batches: skipped 2 bad file(s) in epoch 0"]
    out, err = capsys.readouterr()
    assert out == "warning: image_batches: skipped 2 bad file(s) in epoch 0\n" and err == ""


def test_each_warning_is_printed_once_as_python_would_show_it(capsys):
    with print_kit_warnings() as shown:
        for _ in range(3):  # the same message from the same line: one line
            warn("same stream, same epoch")
        warn("same stream, same epoch")  # the same text from another line: shown again
        warn("epoch 1")
    assert shown == ["same stream, same epoch", "same stream, same epoch", "epoch 1"]
    assert capsys.readouterr().out.splitlines() == [f"warning: {m}" for m in shown]


def test_a_warning_shown_or_hidden_outside_is_still_recorded(capsys):
    def raise_it() -> None:
        warn("from one line")

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("default")
        raise_it()  # shown once already: Python's registry remembers the line
        warnings.simplefilter("ignore", BytefeedWarning)
        with print_kit_warnings() as shown:
            raise_it()
    assert shown == ["from one line"]
    assert capsys.readouterr().out == "warning: from one line\n"


def test_a_subclass_of_the_kit_warning_is_printed_too(capsys):
    class CacheWarning(BytefeedWarning):
        pass

    with print_kit_warnings() as shown:
        warnings.warn("sample cache off", CacheWarning, stacklevel=1)
    assert shown == ["sample cache off"]
    assert capsys.readouterr().out == "warning: sample cache off\n"


def test_other_warnings_pass_through_as_they_were_in_order(capsys):
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with print_kit_warnings() as shown:
            warnings.warn("old API", DeprecationWarning, stacklevel=1)
            warn("kit summary")
            warnings.warn("a library's note", UserWarning, stacklevel=1)
    assert shown == ["kit summary"]
    assert [(w.category, str(w.message)) for w in outside] == [
        (DeprecationWarning, "old API"),
        (UserWarning, "a library's note"),
    ]
    assert all(w.filename == __file__ for w in outside)  # still pointing at these lines
    assert outside[0].lineno < outside[1].lineno
    assert capsys.readouterr().out == "warning: kit summary\n"  # never printed as lines


def test_a_filter_that_makes_another_warning_an_error_still_raises():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(DeprecationWarning, match="old API"), print_kit_warnings():
            warnings.warn("old API", DeprecationWarning, stacklevel=1)


def test_the_lines_are_printed_when_the_block_raises_and_the_error_goes_on(capsys):
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with pytest.raises(ZeroDivisionError), print_kit_warnings() as shown:
            warn("skipped 1 bad file(s) in epoch 0")
            warnings.warn("a library's note", UserWarning, stacklevel=1)
            _ = 1 / 0
    assert shown == ["skipped 1 bad file(s) in epoch 0"]
    assert capsys.readouterr().out == "warning: skipped 1 bad file(s) in epoch 0\n"
    assert [str(w.message) for w in outside] == ["a library's note"]


def test_the_filters_are_as_before_after_the_block():
    before = list(warnings.filters)
    with print_kit_warnings():
        assert warnings.filters[0][2] is BytefeedWarning  # "always", for the block only
    assert warnings.filters == before


def test_a_stream_over_broken_files_prints_its_epoch_summary(capsys):
    rows = bf.read_manifest(DATA / "broken" / "images.csv")
    stream = bf.image_batches(rows, 4, (16, 16), shuffle=False, workers=2)
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with print_kit_warnings() as shown:
            decoded = sum(len(x) for _ in range(2) for x, _ in stream)  # epochs 0 and 1
    n = len(broken_files("images"))
    assert decoded == 2 * (len(rows) - n) and outside == []
    assert len(shown) == 2 and all(f"skipped {n} bad file(s)" in m for m in shown)
    assert "in epoch 0" in shown[0] and "in epoch 1" in shown[1]
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"warning: {m}" for m in shown]
