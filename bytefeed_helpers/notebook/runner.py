"""Run the kit's notebooks with papermill and collect what they prove.

``make demo`` runs every notebook on ``data_sample/`` through ``run_notebooks``; the tests run
each one through ``run_notebook`` with small parameters. A notebook records its numbers with
``save_results`` in its last cell: a JSON file beside the executed copy, which the tests read.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_NAME = "python3"


@dataclass
class NotebookRun:
    """One executed notebook: where its copy and results went, and how it went."""

    name: str
    output: Path
    results_path: Path
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def results(self) -> dict:
        """The JSON the notebook saved with ``save_results``."""
        return json.loads(self.results_path.read_text(encoding="utf-8"))


def run_notebook(
    notebook: str | os.PathLike,
    out_dir: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    kernel_name: str = KERNEL_NAME,
    timeout: int = 1200,
    raise_on_error: bool = True,
) -> NotebookRun:
    """Execute ``notebook`` with papermill into ``out_dir``, in the notebook's own folder.

    ``RESULTS_JSON`` is injected (``out_dir/<name>.json``) with ``parameters`` on top, so
    relative paths in the parameters cell (``../data_sample``) keep working.
    """
    import papermill

    src = Path(notebook).resolve()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = out / f"{src.stem}.json"
    params = {"RESULTS_JSON": str(results), **(parameters or {})}
    start = time.perf_counter()
    error = None
    try:
        with _inline_figures():
            papermill.execute_notebook(
                str(src),
                str(out / src.name),
                parameters=params,
                kernel_name=kernel_name,
                cwd=str(src.parent),
                progress_bar=False,
                execution_timeout=timeout,
            )
    except Exception as exc:  # papermill saves the failing copy; report it
        if raise_on_error:
            raise
        error = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    return NotebookRun(src.stem, out / src.name, results, time.perf_counter() - start, error)


@contextlib.contextmanager
def _inline_figures() -> Iterator[None]:
    """Let the kernel draw figures into the notebook, whatever MPLBACKEND the caller set.

    The kernel inherits this process's environment; a headless ``MPLBACKEND=Agg`` there would
    leave the executed notebooks without their figures.
    """
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved


def run_notebooks(
    notebooks: Iterable[str | os.PathLike], out_dir: str | os.PathLike, **kwargs: Any
) -> list[NotebookRun]:
    """Run each notebook in turn (failures recorded, not raised) and return the runs."""
    return [run_notebook(nb, out_dir, raise_on_error=False, **kwargs) for nb in notebooks]


def format_runs(runs: Iterable[NotebookRun]) -> str:
    """A plain-text table: notebook, status, seconds."""
    runs = list(runs)
    width = max([len("notebook"), *(len(r.name) for r in runs)])
    lines = [f"{'notebook':<{width}}  status  seconds", f"{'-' * width}  ------  -------"]
    for r in runs:
        lines.append(f"{r.name:<{width}}  {'ok' if r.ok else 'FAILED':<6}  {r.seconds:7.1f}")
        if r.error:
            lines.append(f"{'':<{width}}  {r.error}")
    return "\n".join(lines)


def save_results(path: str | os.PathLike | None, **numbers: Any) -> dict:
    """Write the numbers a notebook proves as JSON at ``path`` (skipped when path is None).

    NumPy scalars and arrays become plain JSON numbers and lists. Returns the dict written.
    """
    clean = json.loads(json.dumps(numbers, default=_plain))
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(clean, indent=2, sort_keys=True), encoding="utf-8")
    return clean


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot save {type(value).__name__} as JSON")
