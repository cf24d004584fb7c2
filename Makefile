# The two commands of the README: `make demo` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= Agg

.PHONY: demo test test-fast test-notebooks test-lab lab lint format clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; run: make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m bytefeed_helpers demo --notebooks notebooks --out build/notebooks

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

# The unit tests alone (no notebook is executed, no test marked slow), on two processes
# (pytest-xdist): under a minute on two cores. `make test` runs everything.
test-fast: $(STAMP)
	$(PY) -m pytest tests/unit -m "not notebook and not slow" -q -n 2 --dist worksteal

# Each notebook executed with papermill on small parameters, plus the notebook conventions.
test-notebooks: $(STAMP)
	$(PY) -m pytest tests/notebooks

# Every notebook as a person sees it: JupyterLab on 127.0.0.1 and a headless Chromium (Debian's
# chromium and chromium-driver; the test skips without them), Run All, no red output, widgets
# drawn, a slider dragged. Screenshots in build/lab/. `make test` skips it.
test-lab: $(STAMP)
	$(PY) -m pytest tests/lab -m lab

# JupyterLab on the notebooks, its kernel started as the tests start it (runner.KERNEL_ENV and
# KERNEL_ARGS: TensorFlow's C++ start-up lines go to this terminal, not into the notebooks).
lab: $(STAMP)
	$(PY) -c "from bytefeed_helpers.notebook.runner import write_kernelspec as w; w('build/jupyter')"
	JUPYTER_PATH="$(CURDIR)/build/jupyter$${JUPYTER_PATH:+:$$JUPYTER_PATH}" \
		$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

lint: $(STAMP)
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf build .pytest_cache
