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
        with _kernel_environment():
            papermill.execute_notebook(
                str(src),
                str(out / src.name),
                parameters=params,
                kernel_name=kernel_name,
                cwd=str(src.parent),
                progress_bar=False,
                execution_timeout=timeout,
                extra_arguments=list(KERNEL_ARGS),
            )
    except Exception as exc:  # papermill saves the failing copy; report it
        if raise_on_error:
            raise
        error = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        )
    return NotebookRun(src.stem, out / src.name, results, time.perf_counter() - start, error)


#: The kernel's environment, set by ``run_notebook`` and by ``make lab``'s kernel spec
#: (``write_kernelspec``). TensorFlow's and gRPC's C++ runtimes log at start-up and while a
#: tf.data service runs; their warnings and errors stay (a value already in the environment
#: wins, so ``TF_CPP_MIN_LOG_LEVEL=0`` still debugs), their information lines go. Figures are
#: drawn into the notebook whatever ``MPLBACKEND`` the caller set (``Agg`` in CI would leave
#: the executed notebooks without them).
KERNEL_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "GRPC_VERBOSITY": "ERROR",
}
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

#: What the kernel is started with. Some of TensorFlow's C++ lines are written before its
#: logging reads ``TF_CPP_MIN_LOG_LEVEL`` ("All log messages before absl::InitializeLog()",
#: oneDNN, "Could not find cuda drivers" on a CPU machine): no setting silences them. With
#: ``capture_fd_output`` off, what native libraries write to the process's own stderr goes to
#: the terminal that started the kernel (papermill's, JupyterLab's) instead of into the
#: notebook; Python's ``sys.stderr`` (warnings, tracebacks) still reaches the notebook.
KERNEL_ARGS = ("--IPKernelApp.capture_fd_output=False",)


def kernel_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a notebook kernel gets: ``base`` (default ``os.environ``) with
    ``KERNEL_ENV``'s defaults filled in and the inline figure backend."""
    env = dict(os.environ if base is None else base)
    for name, value in KERNEL_ENV.items():
        env.setdefault(name, value)
    env["MPLBACKEND"] = INLINE_BACKEND
    return env


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """Set ``kernel_environment()`` in this process while a kernel starts (it inherits it)."""
    saved = dict(os.environ)
    os.environ.update(kernel_environment())
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def write_kernelspec(folder: str | os.PathLike, name: str = KERNEL_NAME) -> Path:
    """Write a Jupyter kernel spec ``folder/kernels/<name>/kernel.json`` that starts this
    interpreter's kernel the way ``run_notebook`` does (``KERNEL_ENV``, ``KERNEL_ARGS``).

    ``make lab`` writes it under ``build/jupyter`` and puts that folder first on
    ``JUPYTER_PATH``, so the notebooks (whose kernel is ``python3``) open on it. Returns the
    path of the ``kernel.json`` written.
    """
    import sys

    spec = {
        "argv": [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            *KERNEL_ARGS,
        ],
        "display_name": "Python 3 (bytefeed)",
        "language": "python",
        "env": {**KERNEL_ENV, "MPLBACKEND": INLINE_BACKEND},
        "metadata": {"debugger": True},
    }
    path = Path(folder) / "kernels" / name / "kernel.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return path


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
