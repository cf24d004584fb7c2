"""Every notebook is committed clean and follows the kit's conventions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support import NOTEBOOKS

ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_notebooks_exist_and_are_numbered():
    assert ALL, "no notebooks found"
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", nb.name) for nb in ALL)
    assert ALL[0].name == "01_build_manifests.ipynb"


@pytest.mark.parametrize("nb", ALL, ids=lambda p: p.stem)
def test_committed_without_outputs(nb):
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    dirty = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, (
        f"{nb.name}: cells {dirty} hold outputs; strip them (executed copies go to build/)"
    )


@pytest.mark.parametrize("nb", ALL, ids=lambda p: p.stem)
def test_first_code_cell_is_parameters(nb):
    data = json.loads(nb.read_text(encoding="utf-8"))
    code = [c for c in data["cells"] if c["cell_type"] == "code"]
    first = code[0]
    assert "parameters" in first.get("metadata", {}).get("tags", [])
    source = "".join(first["source"])
    names = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=", source, flags=re.M)
    assert names and all(n.isupper() for n in names), names
    assert "RESULTS_JSON" in names
    assert data["cells"][0]["cell_type"] == "markdown"  # a notebook opens by saying why


@pytest.mark.parametrize("nb", ALL, ids=lambda p: p.stem)
def test_imports_the_installed_package(nb):
    text = "".join(
        "".join(c["source"]) for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]
    )
    assert "sys.path" not in text
    assert "bytefeed_helpers" in text
    assert "save_results(" in text


def test_each_notebook_has_its_own_test_file():
    """One test file per notebook, named after it, running it through the ``run_nb`` harness."""
    here = Path(__file__).parent
    for nb in ALL:
        test_file = here / f"test_{nb.stem}.py"
        assert test_file.is_file(), f"{nb.name} has no {test_file.name}"
        text = test_file.read_text(encoding="utf-8")
        runs = re.search(rf'run_nb\(\s*"{nb.stem}"', text)
        assert runs and "pytest.mark.notebook" in text, test_file.name
    stray = {p.stem[len("test_") :] for p in here.glob("test_[0-9]*.py")} - {nb.stem for nb in ALL}
    assert not stray, f"test files for no notebook: {sorted(stray)}"


@pytest.mark.parametrize("nb", ALL, ids=lambda p: p.stem)
def test_draws_figures_inline_whatever_the_backend(nb):
    """A notebook that plots says ``%matplotlib inline`` before it does, so papermill or a lab
    started with ``MPLBACKEND=Agg`` (common in CI) still records its figures."""
    code = [
        "".join(c["source"])
        for c in json.loads(nb.read_text(encoding="utf-8"))["cells"]
        if c["cell_type"] == "code"
    ]
    plots = [i for i, src in enumerate(code) if "matplotlib" in src or "plt." in src]
    if not plots:
        pytest.skip(f"{nb.name} draws no figure")
    inline = [i for i, src in enumerate(code) if re.search(r"^%matplotlib inline$", src, re.M)]
    assert inline and inline[0] <= plots[0], (
        f"{nb.name}: no %matplotlib inline before cell {plots[0]}"
    )


@pytest.mark.notebook
def test_figures_recorded_under_agg(tmp_path, monkeypatch, kernel_name):
    """The README's own command, ``papermill notebooks/01_build_manifests.ipynb out.ipynb``,
    with ``MPLBACKEND=Agg`` in the environment (not through the kit's runner): the executed
    copy holds its figures."""
    import papermill
    from support import ExecutedNotebook

    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / "01_build_manifests.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / "01_build_manifests.ipynb"),
        str(out),
        parameters={"RESULTS_JSON": str(tmp_path / "01.json"), "OUT_DIR": str(tmp_path / "m")},
        kernel_name=kernel_name,
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    assert ExecutedNotebook({}, out).count("image/png") >= 1
