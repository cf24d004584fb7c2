"""Every notebook is committed clean and follows the kit's conventions."""

from __future__ import annotations

import json
import re

import pytest
from conftest import NOTEBOOKS

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
