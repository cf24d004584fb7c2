"""The pip route (pyproject.toml) and the conda route (environment.yml) name the same packages."""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return {_name(r): r.replace(" ", "") for r in reqs}


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {_name(r): r.replace(" ", "") for r in pip if not r.startswith("-")}


def test_same_packages_both_routes():
    assert set(_environment()) == set(_pyproject())


def test_same_version_ranges_both_routes():
    assert _environment() == _pyproject()


def test_environment_pins_python_311_and_installs_the_kit():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert "python=3.11" in text and "--editable ." in text
