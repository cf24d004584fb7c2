"""errors: BadFileError's reason and path survive pickling; reasons read well."""

from __future__ import annotations

import pickle

from bytefeed_helpers.errors import BadFileError, reason_of


def test_bad_file_error_pickles_with_its_path():
    # what crosses a process boundary (multiprocessing, Keras workers) keeps the file's name
    err = pickle.loads(pickle.dumps(BadFileError("truncated JPEG data", "a/b.jpg")))
    assert (err.reason, err.path, str(err)) == (
        "truncated JPEG data",
        "a/b.jpg",
        "a/b.jpg: truncated JPEG data",
    )
    bare = pickle.loads(pickle.dumps(BadFileError("empty file")))
    assert (bare.reason, bare.path) == ("empty file", None)


def test_reason_of_names_common_errors():
    assert reason_of(FileNotFoundError(2, "No such file")) == "file not found"
    assert reason_of(BadFileError("empty file", "x")) == "empty file"
    assert reason_of(ValueError("bad\nsecond line")) == "ValueError: bad"
