"""The package's shape: its own imports run one way (no cycles, core never imports the notebook
or benchmark support, each layer only imports the layers below it), and ``import
bytefeed_helpers`` stays light with a short ``__all__``.

The import graph is read from the source with ``ast``: imports at module level, inside
functions and under ``if TYPE_CHECKING:`` alike, relative ones resolved, and constant
``importlib.import_module("...")`` calls too. Importing ``a.b.c`` from outside ``a.b`` also
runs ``a/b/__init__.py``, so that counts as an import of ``a.b`` (the root package's
``__init__`` is lazy and is not counted that way).
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import NOTEBOOK_MODULES, PACKAGE

ROOT_PACKAGE = "bytefeed_helpers"

# Layers, lowest first. A module may import only modules of a lower layer (nothing of its own
# layer): errors/options/stages (and workers, the engine's thread pool) -> decoders -> manifest
# -> packed -> sources/order -> engine -> cache -> stream -> front-ends -> the rest. Names are relative to the package; "decoders",
# "notebook" and "bench" are those subpackages' __init__; "" is the package's own __init__.
# A new module must be placed here.
LAYERS: list[set[str]] = [
    {"errors", "options", "stages", "workers", "processes"},
    {"decoders._fileio", "decoders._resample", "decoders._scratch"},
    {"decoders.image", "decoders.audio", "decoders.text"},
    {"decoders"},
    {"manifest"},
    {"folders"},
    {"packed"},
    {"sources", "order"},
    {"engine"},
    {"cache"},
    {"stream"},
    {"images", "audio", "text"},
    # the rest: what a training job may use beyond the streams ...
    {"augment", "checkpoint", "directory", "tf_pipeline", "training"},
    # ... the notebook and benchmark support ...
    {
        "notebook.plots",
        "notebook.curves",
        "notebook.messages",
        "notebook.runner",
        "notebook.tables",
    },
    {"bench.article", "bench.data", "bench.profiling", "bench.scale", "bench.speed"},
    {"notebook.widgets", "bench.baselines", "bench.batch_size"},
    {"bench.comparison"},
    {"bench.gil"},  # the GIL ceiling: reuses comparison's machine info and page-cache warming
    {"notebook", "bench"},
    # ... and the entry points
    {"cli"},
    {"__main__"},
    {""},
]

# Imports against the layers, each with why it is allowed. Every one must still exist.
UPWARD: dict[tuple[str, str], str] = {
    ("stream", "tf_pipeline"): (
        "Stream.to_tf_dataset hands the stream to the tf.data adapter, imported on call"
    ),
}

#: Not core: the notebook and benchmark support, and the command line (which drives both).
NOT_CORE_PACKAGES = ("notebook", "bench")
NOT_CORE_MODULES = ("cli", "__main__")


@dataclass(frozen=True)
class Edge:
    importer: str  # relative module names, as in LAYERS
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{_absolute(self.importer)}:{self.line} imports {_absolute(self.imported)}"


def _absolute(name: str) -> str:
    return f"{ROOT_PACKAGE}.{name}" if name else ROOT_PACKAGE


def _relative(absolute: str) -> str:
    return absolute[len(ROOT_PACKAGE) + 1 :] if absolute != ROOT_PACKAGE else ""


def package_modules() -> dict[str, Path]:
    """Every module of the package: relative dotted name -> file."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = package_modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _targets(name: str, base: str, names: list[str] | None) -> Iterator[str]:
    """Modules that ``from base import names`` (or ``import base``) loads: a submodule where a
    name is one, else ``base`` itself. ``base`` is absolute."""
    if base != ROOT_PACKAGE and not base.startswith(ROOT_PACKAGE + "."):
        return
    rel = _relative(base)
    if rel not in MODULES:
        raise AssertionError(f"{_absolute(name)} imports {base}, which is no module of the package")
    rest = not names  # `import base`, or a name that base's module itself defines
    for imported in names or []:
        sub = f"{rel}.{imported}" if rel else imported
        if sub in MODULES:
            yield sub
        else:
            rest = True
    if rest:
        yield rel


def _resolve(name: str, module: str | None, level: int) -> str:
    """The absolute name ``from <level dots><module> import ...`` means inside ``name``."""
    if level == 0:
        return module or ""
    package = name if _is_package(name) else name.rpartition(".")[0]
    parts = _absolute(package).split(".")
    if level - 1 >= len(parts):
        raise AssertionError(f"{_absolute(name)}: relative import beyond the top package")
    base = ".".join(parts[: len(parts) - (level - 1)])
    return f"{base}.{module}" if module else base


def _import_module_target(name: str, call: ast.Call) -> str | None:
    """The module of a constant ``importlib.import_module("x", package)`` call, if any."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called != "import_module" or not call.args:
        return None
    first = call.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None  # a computed name (the root's lazy exports) cannot be followed statically
    target = first.value
    if target.startswith("."):
        level = len(target) - len(target.lstrip("."))
        return _resolve(name, target.lstrip(".") or None, level)
    return target


def direct_imports(name: str) -> list[Edge]:
    """The package-internal imports written in module ``name``, wherever they sit."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"), filename=str(MODULES[name]))
    edges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                edges += [Edge(name, t, node.lineno) for t in _targets(name, alias.name, None)]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, node.module, node.level)
            names = [a.name for a in node.names]
            edges += [Edge(name, t, node.lineno) for t in _targets(name, base, names)]
        elif isinstance(node, ast.Call):
            target = _import_module_target(name, node)
            if target is not None:
                edges += [Edge(name, t, node.lineno) for t in _targets(name, target, None)]
    return edges


def _parents(name: str) -> list[str]:
    """The subpackages above ``name`` whose __init__ runs first (not the root package)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@functools.cache
def import_graph() -> tuple[Edge, ...]:
    """Every import edge of the package, with the implicit imports of subpackages' __init__."""
    edges = []
    for name in MODULES:
        for edge in direct_imports(name):
            for parent in _parents(edge.imported):
                # importing a.b.c from outside a.b runs a/b/__init__.py first
                if not (name == parent or name.startswith(parent + ".")):
                    edges.append(Edge(name, parent, edge.line))
            edges.append(edge)
    return tuple(e for e in edges if e.importer != e.imported)


def find_cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) through each strongly connected group of modules."""
    edges = list(edges)
    after: dict[str, set[str]] = {}
    for e in edges:
        after.setdefault(e.importer, set()).add(e.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm; the package is small enough to recurse
        index[v] = low[v] = len(index)
        on_stack.append(v)
        for w in sorted(after.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = on_stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted({e.importer for e in edges} | {e.imported for e in edges}):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:  # the shortest way round from the group's first module back to it
        start, members = group[0], set(group)
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(after.get(v, set()) & members):
                    if w == start:
                        cycle = [*paths[v], start]
                        break
                    if w not in paths:
                        paths[w] = [*paths[v], w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle or [*group, start])
    return cycles


def is_core(name: str) -> bool:
    return name.split(".")[0] not in NOT_CORE_PACKAGES and name not in NOT_CORE_MODULES


def rank_of() -> dict[str, int]:
    return {name: i for i, layer in enumerate(LAYERS) for name in layer}


# --- the graph reader itself ------------------------------------------------------------------
def test_the_reader_sees_imports_everywhere_and_resolves_them():
    edges = {(e.importer, e.imported) for e in import_graph()}
    assert ("decoders._fileio", "stages") in edges  # from .. import stages: the submodule
    assert ("manifest", "decoders.image") in edges  # inside a function
    assert ("manifest", "decoders") in edges  # ... which runs decoders/__init__.py first
    assert ("decoders.audio", "decoders") not in edges  # already running: its own package
    assert ("", "stream") in edges  # under if TYPE_CHECKING:
    assert ("cli", "notebook.runner") in edges and ("cli", "notebook") in edges
    cycles = find_cycles(
        [Edge("a", "b", 1), Edge("b", "c", 1), Edge("c", "a", 1), Edge("c", "d", 1)]
    )
    assert cycles == [["a", "b", "c", "a"]]


# --- the rules --------------------------------------------------------------------------------
def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(
        " -> ".join(_absolute(m) for m in c) for c in cycles
    )


def test_core_never_imports_the_notebook_or_bench_support():
    bad = [
        str(e)
        for e in import_graph()
        if is_core(e.importer) and e.imported.split(".")[0] in NOT_CORE_PACKAGES
    ]
    assert not bad, "core modules import notebook/ or bench/:\n" + "\n".join(bad)


def test_every_module_has_a_layer_and_every_layer_entry_a_module():
    placed = [name for layer in LAYERS for name in layer]
    assert len(placed) == len(set(placed)), "a module is in two layers"
    assert not set(MODULES) - set(placed), (
        f"place these modules in LAYERS: {sorted(set(MODULES) - set(placed))}"
    )
    assert not set(placed) - set(MODULES), f"no such modules: {sorted(set(placed) - set(MODULES))}"


def test_each_layer_imports_only_the_layers_below():
    rank = rank_of()
    bad = [
        f"{e} (layer {rank[e.importer]} -> {rank[e.imported]})"
        for e in import_graph()
        if {e.importer, e.imported} <= rank.keys()  # the test above names unplaced modules
        and rank[e.imported] >= rank[e.importer]
        and (e.importer, e.imported) not in UPWARD
    ]
    assert not bad, "imports against the layers:\n" + "\n".join(sorted(set(bad)))


def test_every_allowed_upward_import_still_exists():
    edges = {(e.importer, e.imported) for e in import_graph()}
    rank = rank_of()
    for (importer, imported), why in UPWARD.items():
        assert (importer, imported) in edges, f"gone, drop it from UPWARD: {importer} -> {imported}"
        assert rank[imported] >= rank[importer] and why


# --- import bytefeed_helpers ------------------------------------------------------------------
def _run(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_is_free_of_tensorflow_and_keras():
    loaded = _run(
        "import json, sys; import bytefeed_helpers as b;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in"
        " {'tensorflow', 'keras', 'tf_keras'})))"
    )
    assert loaded == []


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_imports(body: list[ast.stmt]) -> Iterator[tuple[str, int]]:
    """``(module, line)`` of every import that runs when the module is imported: at module
    level and in class bodies, not inside functions nor under ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.module, node.lineno
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from import_time_imports(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from import_time_imports([n for n in inner if isinstance(n, ast.stmt)])
                    for handler in inner:
                        if isinstance(handler, ast.ExceptHandler):
                            yield from import_time_imports(handler.body)


def test_the_import_time_reader_skips_functions_and_type_checking():
    tree = ast.parse(
        "import a\nif TYPE_CHECKING:\n    import b\nelse:\n    import c\n"
        "try:\n    import d\nexcept ImportError:\n    import e\n"
        "class K:\n    import f\ndef g():\n    import h\n"
    )
    assert [m for m, _ in import_time_imports(tree.body)] == ["a", "c", "d", "e", "f"]


def test_core_modules_need_the_notebooks_extra_only_inside_functions():
    """``pip install bytefeed-helpers`` without the ``notebooks`` extra imports every core
    module: a plot a core object offers (``Manifest.plot``) imports matplotlib on call."""
    bad = []
    for name, path in MODULES.items():
        if not is_core(name):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += [
            f"{_absolute(name)}:{line} imports {module}"
            for module, line in import_time_imports(tree.body)
            if module.split(".")[0] in NOTEBOOK_MODULES
        ]
    assert not bad, "core modules import the notebooks extra when imported:\n" + "\n".join(bad)


def test_all_is_short_and_every_name_resolves():
    import bytefeed_helpers

    names = bytefeed_helpers.__all__
    assert len(names) <= 20, names
    assert len(set(names)) == len(names)
    missing = [n for n in names if getattr(bytefeed_helpers, n, None) is None]
    assert not missing
    assert set(names) <= set(dir(bytefeed_helpers))
    with pytest.raises(AttributeError, match="no attribute 'image_batch'"):
        bytefeed_helpers.image_batch  # noqa: B018  (a typo is an AttributeError, not a None)


# --- the tests mirror the package -------------------------------------------------------------
#: Test files about a theme that crosses modules, not about one module.
THEMED_TESTS = {
    "test_backends",  # every stream's fit on every Keras backend
    "test_environment",
    "test_hostile_files",
    "test_install",
    "test_keras_options",  # the Keras options of issue 15, across the three front-ends
    "test_keras_parity",  # Keras's own loader and PyDataset tests, ported
    "test_label_mode",
    "test_layout",
    "test_resume",
}


def test_unit_test_files_mirror_the_modules():
    """``tests/unit/<sub>/test_<module>.py`` tests ``bytefeed_helpers/<sub>/<module>.py`` (or
    the private ``_<module>.py``); ``test_<module>_<theme>.py`` holds more tests of that module
    (``test_manifest_wild.py``); a test file about a theme that crosses modules is listed in
    THEMED_TESTS."""
    unit = Path(__file__).parent
    strays = []
    for path in sorted(unit.rglob("test_*.py")):
        folder = path.parent.relative_to(unit).parts
        stem = path.stem[len("test_") :]
        heads = [stem] + [stem[:i] for i, c in enumerate(stem) if c == "_" and i]
        mirrors = {".".join([*folder, p + h]) for h in heads for p in ("", "_")}
        themed = not folder and path.stem in THEMED_TESTS
        if not (mirrors & set(MODULES) or themed):
            strays.append(str(path.relative_to(unit)))
    assert not strays, f"name these after their module, or add them to THEMED_TESTS: {strays}"


def test_conftest_and_support_stay_light():
    """Collecting any test imports these two; neither may pull in TensorFlow or Keras."""
    tests = Path(__file__).parents[1]
    loaded = _run(
        f"import json, sys; sys.path.insert(0, {str(tests)!r}); import conftest, support;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in"
        " {'tensorflow', 'keras', 'tf_keras'})))"
    )
    assert loaded == []
