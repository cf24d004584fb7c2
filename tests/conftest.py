"""Shared fixtures. Kept light: no TensorFlow or Keras import at module top."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data_sample"
NOTEBOOKS = ROOT / "notebooks"

#: Every kind of ``src`` the decoders take, for ``source_of``.
SOURCE_KINDS = ("str", "path", "bytes", "bytearray", "memoryview", "fileobj")


def source_of(kind: str, path: Path, data: bytes):
    """``data`` (already written to ``path``) as a decoder source of ``kind``."""
    return {
        "str": str(path),
        "path": Path(path),
        "bytes": data,
        "bytearray": bytearray(data),
        "memoryview": memoryview(data),
        "fileobj": io.BytesIO(data),
    }[kind]


@pytest.fixture(scope="session")
def data_sample() -> Path:
    return DATA


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The one Jupyter kernel every notebook test runs on: this interpreter's own."""
    return "python3"


@pytest.fixture
def run_nb(tmp_path, kernel_name):
    """Execute ``notebooks/<name>.ipynb`` into ``tmp_path`` and return its recorded results."""
    from bytefeed_helpers.notebook.runner import run_notebook

    def run(name: str, **parameters):
        result = run_notebook(
            NOTEBOOKS / f"{name}.ipynb", tmp_path, parameters, kernel_name=kernel_name
        )
        return result.results()

    return run
