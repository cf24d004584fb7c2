"""Notebook 12 (tf.data service): every sample exactly once through the service, a fit on it,
and a teardown that leaves no client heartbeating to a stopped dispatcher."""

from __future__ import annotations

import queue
import time
from pathlib import Path

import pytest
from support import NOTEBOOKS

pytestmark = pytest.mark.notebook

N_SMALL = 240


def test_12_tf_data_service(run_nb, tmp_path):
    n = N_SMALL
    nb = run_nb("12_tf_data_service", N_SMALL=n, OUT_DIR=str(tmp_path / "work"))
    r = nb.results
    assert r["n_small"] == n and r["shards"] >= 1
    assert r["service_exactly_once"] and r["service_samples"] == {"loose": n, "packed": n}
    assert r["service_fit_epochs"] == 1


def run_in_live_kernel(
    notebook: Path, parameters: dict, workdir: Path, *, linger: float = 6.0
) -> tuple[list[str], str]:
    """Execute ``notebook``'s code cells in a kernel started as ``run_notebook`` starts one, with
    ``parameters`` set after its parameters cell; then, the kernel still alive, listen to its
    iopub channel for ``linger`` seconds before shutting it down.

    Returns the text of every stream output (stdout or stderr) that arrived while listening,
    and everything the kernel process wrote to its own stderr (native libraries write there:
    ``KERNEL_ARGS`` turns ``capture_fd_output`` off). papermill cannot see output that comes
    after the last cell: it shuts the kernel down as soon as the last cell finishes.
    """
    import nbformat
    from jupyter_client.manager import KernelManager

    from bytefeed_helpers.notebook.runner import KERNEL_ARGS, kernel_environment

    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    assert "parameters" in cells[0].metadata.get("tags", [])
    injected = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    sources = [cells[0].source, injected, *(c.source for c in cells[1:])]

    # The runner's kernel environment, but for its two logging settings: the client's "Failed
    # to heartbeat to dispatcher" line is a TensorFlow WARNING, hidden by TF_CPP_MIN_LOG_LEVEL 2
    # or 3 and, process-wide, by GRPC_VERBOSITY=ERROR (gRPC sets the log level of absl, which
    # TensorFlow logs through). With them the test would prove nothing; without them the kernel
    # logs warnings as a kernel started without the kit's settings does (the case).
    env = kernel_environment()
    env["TF_CPP_MIN_LOG_LEVEL"] = "1"
    env.pop("GRPC_VERBOSITY", None)
    native = workdir / "kernel-stderr.txt"
    km = KernelManager(kernel_name="python3")
    with open(native, "wb") as err:
        km.start_kernel(
            extra_arguments=list(KERNEL_ARGS), env=env, cwd=str(notebook.parent), stderr=err
        )
    late: list[str] = []
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        for i, source in enumerate(sources):
            reply = kc.execute_interactive(source, timeout=900, output_hook=lambda msg: None)
            assert reply["content"]["status"] == "ok", (
                f"code cell {i}: {reply['content'].get('ename')}: {reply['content'].get('evalue')}"
            )
        deadline = time.monotonic() + linger
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                break
            if msg["msg_type"] == "stream":
                late.append(msg["content"]["text"])
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    return late, native.read_text(encoding="utf-8", errors="replace")


def test_12_no_client_left_heartbeating(tmp_path):
    """Issue #18: after the cell that stops the service, a client left behind printed "Failed
    to heartbeat to dispatcher ... Connection refused" once a second into the last cell for as
    long as the kernel lived. In a kernel that outlives the last cell nothing arrives."""
    work = tmp_path / "work"
    parameters = {
        "N_SMALL": N_SMALL,
        "OUT_DIR": str(work),
        "RESULTS_JSON": str(tmp_path / "12_tf_data_service.json"),
    }
    late, native = run_in_live_kernel(NOTEBOOKS / "12_tf_data_service.ipynb", parameters, tmp_path)
    assert not late, f"output after the last cell: {late}"
    assert "Failed to heartbeat" not in native, native[-2000:]
    assert "Failed to send heartbeat" not in native, native[-2000:]  # a worker left behind
