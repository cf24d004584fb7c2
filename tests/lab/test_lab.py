"""Every notebook as a person sees it in JupyterLab: opened in a headless Chromium, Run All,
no red output, every widget drawn, a slider that moves the figure, nothing left printing.

The papermill tests (tests/notebooks) prove the numbers but never draw a widget: a widget
whose front end fails shows "Error displaying widget" or its text repr only in a browser.
Here JupyterLab serves copies of the notebooks and data_sample/ in a temporary folder (the
notebooks write their outputs beside them, so notebooks/ is never touched), on the kernel
``make lab`` uses (``runner.write_kernelspec``: TensorFlow's C++ start-up lines go to the
server log, not into cells), on their default parameters, as a person runs them.

Screenshots of each notebook after Run All, and of each explorer before and after its slider
moved, go to build/lab/ with the server's log (jupyter-server.log). Needs Debian's
``chromium`` and ``chromium-driver`` (``.ci/run`` installs them) and Selenium; without them
the tests skip and say so. Run with ``make test-lab`` (``pytest tests/lab -m lab``); a plain
``pytest`` skips them (tests/lab/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import DATA, NOTEBOOKS, ROOT

pytestmark = pytest.mark.lab

ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
SHOTS = ROOT / "build" / "lab"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WINDOW = (1280, 1000)  # the issue: the explorer's controls must fit a 1280 px wide window
RUN_TIMEOUT_S = 1500  # Run All of one notebook on its default parameters, on two cores
QUIET_S = 5  # after the last cell: how long the outputs must stay as they are
FIGURE_TIMEOUT_S = 180  # a moved slider: the kernel rebuilds the batch and redraws
MAX_SHOT_HEIGHT = 16000  # px: a whole-notebook screenshot is cut there

#: A notebook "has widgets" when a code cell calls the kit's explorer or uses ipywidgets.
WIDGET_SOURCE = re.compile(r"\bexplore\(|\bipywidgets\b|\binteract(ive)?\(")
#: What JupyterLab shows instead of a widget when its front end is missing or fails.
WIDGET_FALLBACK = re.compile(
    r"Error displaying widget|Loading widget|run the notebook to use the explorer"
    r"|^\w*(Box|Explorer|Slider|Output)\((children|value)="
)
# The red outputs: stderr streams and tracebacks (JupyterLab draws both as stderr).
RED = ("application/vnd.jupyter.stderr", "application/vnd.jupyter.error")

# JupyterLab's settings for the test's own profile: no news or update toast over the cells,
# and every cell kept in the page (the default windowing leaves cells off screen unlaid out,
# which would hide them from the checks and the screenshots).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

# --- what the page shows, read with JavaScript ------------------------------------------------
# The widget manager's renderer sets no data-mime-type: a widget output is the one holding a
# widget view (.jupyter-widgets), or its own "Loading widget..." / "Error displaying widget".
MIME_JS = """
const mimeOf = (o) => o.dataset.mimeType
  || ((o.classList.contains('jupyter-widgets') || o.querySelector('.jupyter-widgets')
       || /^(Loading widget|Error displaying widget)/.test(o.textContent)) ? 'widget' : '');
"""
CELLS_JS = (
    MIME_JS
    + """
const nb = document.querySelector('.jp-NotebookPanel .jp-Notebook');
if (!nb) return null;
return Array.from(nb.querySelectorAll('.jp-Cell')).map((cell) => ({
  code: cell.classList.contains('jp-CodeCell'),
  prompt: (cell.querySelector('.jp-InputPrompt') || {innerText: ''}).innerText.trim(),
  outputs: Array.from(cell.querySelectorAll('.jp-OutputArea-output')).map((o) => ({
    mime: mimeOf(o),
    nested: !!o.parentElement.closest('.jupyter-widgets'),
    text: o.innerText.slice(0, 1500),
    length: o.innerText.length,
    images: Array.from(o.querySelectorAll('img')).map((i) => i.src.length).join(','),
  })),
}));
"""
)
STATUS_JS = """
const s = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
return s ? s.dataset.status || '' : '';
"""
# Each top-level widget output: its cell, text, root element, whether a widget view was
# drawn and which of its parts stick out of the output area (the outermost only).
WIDGETS_JS = (
    MIME_JS
    + """
const cells = Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell'));
const found = [];
cells.forEach((cell, index) => {
  for (const o of cell.querySelectorAll('.jp-OutputArea-output')) {
    if (o.parentElement.closest('.jupyter-widgets')) continue;
    if (mimeOf(o) !== 'widget') continue;
    o.scrollIntoView({block: 'center'});
    const box = o.getBoundingClientRect();
    const sticking = [];
    for (const el of o.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      if (r.right <= box.right + 1 && r.left >= box.left - 1) continue;
      if (sticking.some((s) => s.el.contains(el))) continue;
      const name = el.tagName.toLowerCase() + '.' + Array.from(el.classList).slice(0, 3).join('.');
      const what = (el.innerText || el.getAttribute('aria-label') || '').trim().slice(0, 40);
      sticking.push({el, text: `${name} "${what}" spans x ${Math.round(r.left)}-` +
        `${Math.round(r.right)}, the output area ${Math.round(box.left)}-${Math.round(box.right)}`});
    }
    found.push({
      cell: index,
      root: o,
      text: o.innerText.slice(0, 300),
      drawn: !!o.querySelector('.jupyter-widgets') && box.height > 20
        && !/Error displaying widget/.test(o.textContent),
      sticking: sticking.map((s) => s.text),
      scroll: o.scrollWidth > o.clientWidth + 1 ? `scrolls ${o.scrollWidth} > ${o.clientWidth} px` : '',
      viewport: box.right > window.innerWidth + 1 ? `ends at x ${box.right} > ${window.innerWidth}` : '',
    });
  }
});
return found;
"""
)
# A slider handle of the widget ``arguments[0]`` that can move (not disabled, a range), with
# the figure it drives: the first image in the widget.
SLIDER_JS = """
const root = arguments[0];
const handles = Array.from(root.querySelectorAll('.noUi-handle')).filter((h) => {
  const target = h.closest('.noUi-target');
  return !target.hasAttribute('disabled') && !h.closest('.mod-disabled')
    && Number(h.getAttribute('aria-valuemax')) > Number(h.getAttribute('aria-valuemin'));
});
return handles.map((h) => ({
  handle: h,
  track: h.closest('.noUi-target').getBoundingClientRect().width,
  min: Number(h.getAttribute('aria-valuemin')),
  max: Number(h.getAttribute('aria-valuemax')),
  label: (h.closest('.widget-slider') || h).innerText.trim().split('\\n')[0],
}));
"""
FIGURE_JS = """
const img = arguments[0].querySelector('img');
return img ? img.src : '';
"""
# Scroll the notebook to its top; how much taller than its visible part its cells are (px).
SCROLLER_JS = """
const s = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
if (!s) return 0;
s.scrollTop = 0;
return s.querySelector('.jp-WindowedPanel-viewport').offsetHeight - s.clientHeight;
"""


# --- JupyterLab and the browser ----------------------------------------------------------------
@dataclass
class Lab:
    """A JupyterLab server on 127.0.0.1 serving ``work`` (copies of notebooks/, data_sample/)."""

    port: int
    token: str
    work: Path
    log: Path

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{path}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def sessions(self, notebook: str) -> list[dict]:
        return [s for s in self.api("sessions") if s["path"] == f"notebooks/{notebook}"]

    def kernel_state(self, notebook: str) -> str:
        """``idle``, ``busy``, ``starting``, ``dead``... or ``none`` (no kernel yet)."""
        found = self.sessions(notebook)
        return found[0]["kernel"]["execution_state"] if found else "none"

    def shut_down(self, notebook: str) -> None:
        """Stop the notebook's kernel: one TensorFlow kernel at a time on a small machine."""
        for s in self.sessions(notebook):
            self.api(f"sessions/{s['id']}", method="DELETE")


def _missing_browser() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it is in the dev extra: pip install -e '.[dev]')"
    for path, variable in ((CHROMIUM, "CHROMIUM"), (CHROMEDRIVER, "CHROMEDRIVER")):
        if not os.access(path, os.X_OK):
            return (
                f"{path} not found: install Debian's chromium and chromium-driver "
                f"(apt-get install chromium chromium-driver; .ci/run does) or set {variable}"
            )
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    missing = _missing_browser()
    if missing:
        pytest.skip(missing)
    base = tmp_path_factory.mktemp("lab")
    work = base / "work"
    # The notebooks' relative paths (../data_sample, ../build/...) resolve inside the copy.
    shutil.copytree(NOTEBOOKS, work / "notebooks", ignore=shutil.ignore_patterns(".*"))
    shutil.copytree(DATA, work / "data_sample")
    # The kernel spec `make lab` writes, in a subprocess: importing the runner here would
    # load TensorFlow into the test process.
    code = "import sys; from bytefeed_helpers.notebook.runner import write_kernelspec as w; w(sys.argv[1])"
    wrote = subprocess.run(
        [sys.executable, "-c", code, str(base / "share")], capture_output=True, text=True
    )
    assert wrote.returncode == 0, f"write_kernelspec failed:\n{wrote.stderr}"
    config = base / "config"
    for name, values in LAB_SETTINGS.items():
        path = config / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = {
        **os.environ,
        "JUPYTER_PATH": str(base / "share"),  # first: its python3 kernel is the one used
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "IPYTHONDIR": str(base / "ipython"),
    }
    port, token = _free_port(), os.urandom(24).hex()
    SHOTS.mkdir(parents=True, exist_ok=True)
    log = SHOTS / "jupyter-server.log"
    args = [
        *(sys.executable, "-m", "jupyterlab", "--ServerApp.ip=127.0.0.1"),
        *(f"--ServerApp.port={port}", "--ServerApp.port_retries=0"),
        *(f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False"),
        f"--ServerApp.root_dir={work}",
        *(["--allow-root"] if os.getuid() == 0 else []),
    ]
    with open(log, "w", encoding="utf-8") as out:
        # its own session: the kernels it starts go with it at the end
        server = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    found = Lab(port, token, work, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}; see {log}")
            try:
                found.api("status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on port {port} in 120 s; see {log}")
                time.sleep(0.5)
        yield found
    finally:
        server.send_signal(signal.SIGINT)  # twice, as Control-C: shut down kernels, no prompt
        time.sleep(0.5)
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


@pytest.fixture
def browser(lab):
    """A fresh headless Chromium for each notebook (a page with unsaved changes would ask
    before it let the next notebook load)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=lab.work.parent)
    for arg in (
        "--headless",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",  # a container's /dev/shm is small
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver named explicitly: Selenium Manager then downloads nothing.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


# --- the test ----------------------------------------------------------------------------------
@pytest.mark.timeout(RUN_TIMEOUT_S + FIGURE_TIMEOUT_S + 300)
@pytest.mark.parametrize("notebook", ALL, ids=lambda p: p.stem)
def test_notebook_in_jupyterlab(lab, browser, notebook):
    import nbformat

    cells = nbformat.read(notebook, as_version=4).cells
    has_widgets = any(c.cell_type == "code" and WIDGET_SOURCE.search(c.source) for c in cells)
    for old in SHOTS.glob(f"{notebook.stem}*.png"):
        old.unlink()
    try:
        _open(browser, lab, notebook, len(cells))
        _run_all(browser)
        start = time.monotonic()
        shown = _wait_for_run(browser, lab, notebook.name)
        seconds = time.monotonic() - start
        _screenshot_notebook(browser, SHOTS / f"{notebook.stem}.png")
        problems = _cell_problems(shown, cells)
        if has_widgets:
            problems += _widget_problems(browser, cells)
        time.sleep(max(0.0, QUIET_S - (time.monotonic() - start - seconds)))
        later = browser.execute_script(CELLS_JS)
        if _signature(later) != _signature(shown):
            problems.append(_still_printing(shown, later, cells))
        if has_widgets:
            problems += _move_sliders(browser, notebook.stem)
            # what the moved widgets printed (a traceback in an explorer's output is red too)
            after = _cell_problems(browser.execute_script(CELLS_JS), cells)
            problems += [p for p in after if p not in problems]
        if problems:
            console = [
                e["message"] for e in browser.get_log("browser") if e.get("level") == "SEVERE"
            ]
            detail = "\n  ".join(problems)
            hint = "\nbrowser console errors:\n  " + "\n  ".join(console[:10]) if console else ""
            pytest.fail(
                f"{notebook.name} in JupyterLab (Run All took {seconds:.0f} s; screenshots in "
                f"{SHOTS}):\n  {detail}{hint}"
            )
        print(f"{notebook.name}: Run All took {seconds:.0f} s")
    finally:
        if not (SHOTS / f"{notebook.stem}.png").exists():  # stopped early: what the page shows
            browser.save_screenshot(str(SHOTS / f"{notebook.stem}-stopped.png"))
        lab.shut_down(notebook.name)


def _open(driver, lab: Lab, notebook: Path, n_cells: int) -> None:
    """Open the copy of ``notebook`` in a fresh workspace and wait until its cells are in the
    page and its kernel is idle."""
    driver.get(lab.url(f"lab/tree/notebooks/{notebook.name}?reset"))
    _wait(
        lambda: (
            len(driver.execute_script(CELLS_JS) or []) == n_cells
            and driver.execute_script(STATUS_JS) == "idle"
            and lab.kernel_state(notebook.name) == "idle"
        ),
        120,
        f"{notebook.name} did not open with {n_cells} cells and an idle kernel in 120 s",
    )


def _run_all(driver) -> None:
    """Run > Run All Cells, from the menu bar, as a person does."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, "//li[contains(@class, 'lm-MenuBar-item')][.='Run']").click()
    label = "//div[contains(@class, 'lm-Menu-itemLabel')][.='Run All Cells']"
    driver.find_element(By.XPATH, f"//li[contains(@class, 'lm-Menu-item')][.{label}]").click()


def _wait_for_run(driver, lab: Lab, name: str) -> list[dict]:
    """Wait until Run All is over: no cell queued or running (``[*]``), the kernel idle on
    three polls in a row. Returns the cells as the page shows them then."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    started, idle = False, 0
    while True:
        shown = driver.execute_script(CELLS_JS)
        prompts = [c["prompt"] for c in shown if c["code"]]
        busy = any("*" in p for p in prompts)
        started = started or busy or any(re.search(r"\d", p) for p in prompts)
        state = lab.kernel_state(name)
        if state in ("dead", "none"):
            pytest.fail(f"{name}: the kernel died during Run All (state {state!r}); see {lab.log}")
        quiet = started and not busy and state == "idle"
        idle = idle + 1 if quiet and driver.execute_script(STATUS_JS) == "idle" else 0
        if idle >= 3:
            return shown
        if time.monotonic() > deadline:
            running = [i for i, c in enumerate(shown) if c["code"] and "*" in c["prompt"]]
            pytest.fail(f"{name}: Run All still running after {RUN_TIMEOUT_S} s (cells {running})")
        time.sleep(1)


def _where(cells, index: int) -> str:
    first = next((line for line in cells[index].source.splitlines() if line.strip()), "")
    return f"cell {index + 1}/{len(cells)} ({first[:60]!r})"  # as JupyterLab's status bar counts


def _cell_problems(shown: list[dict], cells) -> list[str]:
    """Red outputs (stderr, tracebacks), widget fallbacks and cells Run All never reached."""
    problems = []
    for i, cell in enumerate(shown):
        if cell["code"] and not re.fullmatch(r"\[\d+\]:", cell["prompt"]):
            problems.append(f"{_where(cells, i)} did not run (prompt {cell['prompt']!r})")
        for out in cell["outputs"]:
            text = out["text"].strip()
            if out["mime"] in RED:
                problems.append(f"{_where(cells, i)} shows red output:\n    {_indent(text)}")
            elif not out["nested"] and WIDGET_FALLBACK.search(text):
                problems.append(f"{_where(cells, i)} shows no widget but {text[:200]!r}")
    return problems


def _indent(text: str, lines: int = 12) -> str:
    kept = text.splitlines()
    more = f"\n    ... {len(kept) - lines} more lines" if len(kept) > lines else ""
    return "\n    ".join(kept[:lines]) + more


def _widget_problems(driver, cells) -> list[str]:
    """Every widget output drew a widget view that fits the output area (and the window)."""
    found = driver.execute_script(WIDGETS_JS)
    if not found:
        return ["the notebook uses widgets but no widget output is in the page"]
    problems = []
    for w in found:
        where = _where(cells, w["cell"])
        if not w["drawn"]:
            problems.append(f"{where}: the widget was not drawn, it shows {w['text'][:200]!r}")
        for issue in [*w["sticking"], w["scroll"], w["viewport"]]:
            if issue:
                problems.append(f"{where}: the widget does not fit: {issue}")
    return problems


def _signature(shown: list[dict]) -> list:
    return [[(o["mime"], o["length"], o["images"]) for o in c["outputs"]] for c in shown]


def _still_printing(before: list[dict], after: list[dict], cells) -> str:
    changed = [
        i
        for i, (a, b) in enumerate(zip(before, after, strict=True))
        if _signature([a]) != _signature([b])
    ]
    tail = [after[i]["outputs"][-1]["text"][-200:] for i in changed if after[i]["outputs"]]
    return (
        f"outputs still changing {QUIET_S} s after the last cell, in "
        + ", ".join(_where(cells, i) for i in changed)
        + (f": {tail[0]!r}" if tail else "")
    )


def _screenshot_notebook(driver, path: Path) -> None:
    """The whole notebook in one picture: the window made as tall as the notebook, then put
    back. The width stays 1280 px, what the widgets must fit."""
    hidden = driver.execute_script(SCROLLER_JS)
    height = min(WINDOW[1] + max(0, hidden) + 40, MAX_SHOT_HEIGHT)
    driver.set_window_size(WINDOW[0], height)
    time.sleep(1)
    driver.save_screenshot(str(path))
    driver.set_window_size(*WINDOW)
    time.sleep(0.5)


def _screenshot_element(driver, element, path: Path) -> None:
    """One element (a widget) whole: the window made taller while it is taller than the
    window, then put back."""
    top = "arguments[0].scrollIntoView({block: 'start'});"
    height = driver.execute_script(
        top + "return arguments[0].getBoundingClientRect().height;", element
    )
    visible = ".jp-NotebookPanel .jp-WindowedPanel-outer"
    spare = driver.execute_script(f"return document.querySelector('{visible}').clientHeight;") - 40
    if height > spare:
        driver.set_window_size(WINDOW[0], min(WINDOW[1] + round(height - spare), MAX_SHOT_HEIGHT))
        time.sleep(1)
        driver.execute_script(top, element)
    element.screenshot(str(path))
    if height > spare:
        driver.set_window_size(*WINDOW)
        time.sleep(0.5)


def _move_sliders(driver, stem: str) -> list[str]:
    """In each widget with a slider: drag the first movable slider's handle with the mouse and
    wait for the widget's figure to change. Screenshots before and after."""
    from selenium.webdriver.common.action_chains import ActionChains

    problems, moved_any = [], False
    for k, w in enumerate(driver.execute_script(WIDGETS_JS)):
        root = w["root"]
        sliders = driver.execute_script(SLIDER_JS, root) if w["drawn"] else []
        if not sliders:
            continue
        moved_any = True
        slider = sliders[0]
        before = driver.execute_script(FIGURE_JS, root)
        if not before:
            problems.append(f"widget {k}: no figure to watch")
            continue
        value = slider["handle"].get_attribute("aria-valuenow")
        _screenshot_element(driver, root, SHOTS / f"{stem}-widget{k}-before.png")
        span = slider["max"] - slider["min"]
        # one step of an integer slider (the batch slider), a quarter of a long range
        dx = slider["track"] / span if span <= 20 else slider["track"] / 4
        ActionChains(driver).move_to_element(slider["handle"]).click_and_hold().move_by_offset(
            round(dx) + 1, 0
        ).release().perform()
        moved = slider["handle"].get_attribute("aria-valuenow")
        if moved == value:
            problems.append(f"widget {k}: dragging {slider['label']!r} left it at {value}")
            continue
        try:
            _wait(
                lambda root=root, before=before: (
                    driver.execute_script(FIGURE_JS, root) not in ("", before)
                ),
                FIGURE_TIMEOUT_S,
                "",
            )
        except AssertionError:
            problems.append(
                f"widget {k}: {slider['label']!r} moved {value} -> {moved} but the figure did "
                f"not change in {FIGURE_TIMEOUT_S} s"
            )
        time.sleep(0.5)
        _screenshot_element(driver, root, SHOTS / f"{stem}-widget{k}-after.png")
    if not moved_any:
        problems.append("no drawn widget has a slider that can move")
    return problems


def _wait(ready, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.5)
