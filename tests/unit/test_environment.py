"""The declared dependencies: the pip route (pyproject.toml) and the conda route
(environment.yml) name the same packages; the core names no notebook package; every package
that the kit and its tests import is declared where it is needed."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import yaml
from support import ROOT

PROJECT = "bytefeed-helpers"
#: What the ``notebooks`` extra is for: none of these may be a core dependency.
NOTEBOOK_PACKAGES = {"jupyterlab", "ipykernel", "ipywidgets", "papermill", "nbformat", "matplotlib"}
#: The tools ``make test`` runs (and ``yaml``, which this file imports).
DEV_TOOLS = {"pytest", "pytest-timeout", "ruff", "mypy", "pyyaml"}


def _name(requirement: str) -> str:
    name = re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _extras_of(requirement: str) -> list[str]:
    match = re.search(r"\[([^\]]*)\]", requirement)
    return [e.strip() for e in match.group(1).split(",")] if match else []


def _requirements(*extras: str) -> list[str]:
    """The core requirements plus those of ``extras``, with the project's references to its
    own extras (``bytefeed-helpers[notebooks]``) followed instead of listed."""
    project = _project()
    out = list(project["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in project["optional-dependencies"][extra]:
            if _name(req) == PROJECT:
                todo.extend(_extras_of(req))
            else:
                out.append(req)
    return out


def _by_name(requirements: list[str]) -> dict[str, str]:
    return {_name(r): r.replace(" ", "") for r in requirements}


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return _by_name([r for r in pip if not r.startswith("-")])


# --- the two routes -------------------------------------------------------------------------------
def test_same_packages_both_routes():
    assert set(_environment()) == set(_by_name(_requirements("dev")))


def test_same_version_ranges_both_routes():
    assert _environment() == _by_name(_requirements("dev"))


def test_environment_pins_python_311_and_installs_the_kit():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert "python=3.11" in text and "--editable ." in text


def test_no_package_is_named_twice():
    for extra in ("notebooks", "dev"):
        names = [_name(r) for r in _requirements(extra)]
        assert len(names) == len(set(names)), extra


# --- the split: core, notebooks, dev --------------------------------------------------------------
def test_core_dependencies_name_no_notebook_package():
    assert not NOTEBOOK_PACKAGES & set(_by_name(_project()["dependencies"]))


def test_notebooks_extra_adds_the_notebook_packages():
    assert set(_by_name(_project()["optional-dependencies"]["notebooks"])) >= NOTEBOOK_PACKAGES


def test_dev_is_the_notebooks_extra_plus_the_tools():
    dev = _project()["optional-dependencies"]["dev"]
    assert any(_name(r) == PROJECT and "notebooks" in _extras_of(r) for r in dev)
    assert set(_by_name(_requirements("dev"))) >= DEV_TOOLS | NOTEBOOK_PACKAGES


def test_license_is_an_spdx_string_and_setuptools_reads_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["license"] == "MIT"
    # setuptools reads a `license` string (PEP 639) from 77 on; older ones reject it
    (backend,) = pyproject["build-system"]["requires"]
    assert _name(backend) == "setuptools"
    low = re.search(r">=\s*(\d+)", backend)
    assert low and int(low.group(1)) >= 77


def test_the_package_ships_py_typed():
    assert (ROOT / "bytefeed_helpers" / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]
    assert "py.typed" in package_data["bytefeed_helpers"]


# --- every imported package is declared -----------------------------------------------------------
def _imports(tree: ast.AST, *, import_time_only: bool) -> set[str]:
    """Top-level names of the absolute imports in ``tree``; with ``import_time_only``, only
    those that run when the module is imported (not inside a function body)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if import_time_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name.split(".")[0] for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.add(child.module.split(".")[0])
            visit(child)

    visit(tree)
    return found


def _third_party(files: list[Path], local: set[str], *, import_time_only: bool = False):
    """``{module: [files]}`` of the third-party modules that ``files`` import."""
    out: dict[str, list[str]] = {}
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"), str(f))
        for module in _imports(tree, import_time_only=import_time_only):
            if module not in sys.stdlib_module_names and module not in local:
                out.setdefault(module, []).append(str(f.relative_to(ROOT)))
    return out


def _undeclared(modules: dict[str, list[str]], requirements: list[str]) -> dict[str, list[str]]:
    """The modules of ``modules`` that no distribution in ``requirements`` provides (a module
    not installed here counts as undeclared: nothing declared put it here)."""
    declared = set(_by_name(requirements))
    providers = importlib.metadata.packages_distributions()
    return {
        module: files
        for module, files in modules.items()
        if not {_name(d) for d in providers.get(module, [])} & declared
    }


def _package_files(*, notebook_side: bool) -> list[Path]:
    files = sorted((ROOT / "bytefeed_helpers").rglob("*.py"))
    side = ("notebook", "bench")
    return [f for f in files if (f.relative_to(ROOT).parts[1] in side) == notebook_side]


def test_core_imports_only_core_dependencies_at_import_time():
    modules = _third_party(
        _package_files(notebook_side=False), {"bytefeed_helpers"}, import_time_only=True
    )
    assert _undeclared(modules, _requirements()) == {}


def test_every_package_the_kit_imports_is_declared():
    # a core module may import a notebook package inside a function (a plot method): then
    # only that function needs the extra; notebook/ and bench/ may need it anywhere
    files = _package_files(notebook_side=False) + _package_files(notebook_side=True)
    modules = _third_party(files, {"bytefeed_helpers"})
    assert _undeclared(modules, _requirements("notebooks")) == {}


def test_every_package_the_tests_import_is_declared():
    tests = ROOT / "tests"
    files = sorted(tests.rglob("*.py"))
    local = {"bytefeed_helpers"} | {f.stem for f in files} | {p.name for p in tests.rglob("*")}
    modules = _third_party(files, local)
    assert "yaml" in modules  # this file's own import: the check sees the tests' imports
    assert _undeclared(modules, _requirements("dev")) == {}
