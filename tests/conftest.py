"""Shared fixtures, among them ``run_nb``, the one notebook harness. Kept light: no
TensorFlow or Keras import at module top. Shared constants and helpers live in ``support``
(``from support import DATA``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import DATA, NOTEBOOKS, ExecutedNotebook

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def data_sample() -> Path:
    return DATA


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The one Jupyter kernel every notebook test runs on: this interpreter's own."""
    return "python3"


@pytest.fixture
def run_nb(tmp_path, kernel_name):
    """The one notebook harness: ``run_nb(name, **parameters)`` executes
    ``notebooks/<name>.ipynb`` with papermill into ``tmp_path`` (the notebook's results JSON
    and executed copy land there) and returns an ``ExecutedNotebook``: ``.results`` is what
    the notebook saved with ``save_results``, ``.count(mime)`` counts its cell outputs.

    A failing cell fails the test with papermill's error, which names the cell; so does any
    stderr line, the kit's own warnings too (``ExecutedNotebook.assert_quiet``).
    """
    from bytefeed_helpers.notebook.runner import run_notebook

    def run(name: str, **parameters) -> ExecutedNotebook:
        done = run_notebook(
            NOTEBOOKS / f"{name}.ipynb", tmp_path, parameters, kernel_name=kernel_name
        )
        executed = ExecutedNotebook(done.results(), done.output)
        executed.assert_quiet()  # every notebook test checks the stderr it leaves
        return executed

    return run


# Tests of about 5 s or more each: subprocesses that import TensorFlow or JAX, Grain's worker
# processes, whole CLI runs, a process killed mid-epoch. `make test` runs them; `make
# test-fast` (-m "not notebook and not slow") leaves them out to stay under a minute.
SLOW = (
    "unit/bench/test_baselines_peers.py::",
    "unit/bench/test_baselines.py::test_image_pipelines_read_every_file[grain]",
    "unit/bench/test_baselines.py::test_audio_pipelines[grain",
    "unit/bench/test_baselines.py::test_text_pipelines[grain]",
    "unit/bench/test_gil.py::test_bench_gil_cli",
    "unit/bench/test_comparison.py::test_compare_small",
    "unit/bench/test_scale.py::",
    "unit/test_backends.py::",
    "unit/test_install.py::",
    "unit/test_engine_padding.py::test_a_jax_fit",
    "unit/test_cache.py::test_killed_mid_epoch",
    "unit/test_hostile_files.py::test_streams_stay_small",
    # worker processes that import Keras (ImageAugment) or run several pools
    "unit/test_processes.py::test_same_batches_as_threads_with_augmentation",
    "unit/test_processes.py::test_whole_clips_and_text_through_shared_memory",
    "unit/bench/test_gil.py::test_the_process_route_is_measured_in_this_process",
)


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent
    for item in items:
        node = Path(item.path).relative_to(tests).as_posix() + "::" + item.name
        if node.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
