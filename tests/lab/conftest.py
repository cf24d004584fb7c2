"""The browser tests run only when asked for: ``make test-lab`` (``pytest tests/lab -m lab``).

A plain ``pytest`` (``make test``) collects them but skips them with a message, so its time
stays what it was and a machine without Chromium passes; any ``-m`` expression naming
``lab`` runs them (``-m "not lab"`` deselects them as usual).
"""

from __future__ import annotations

import re

import pytest


def pytest_collection_modifyitems(config, items):
    if re.search(r"\blab\b", config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="browser test of the notebooks: run it with `make test-lab`")
    for item in items:
        if item.get_closest_marker("lab"):
            item.add_marker(skip)
