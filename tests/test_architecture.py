"""Imports go one way through the layers of the package, and no module imports itself back.

The layers, low to high (docs/architecture.md): a module imports only from its own
layer or a lower one, and the import graph has no circle. Imports inside functions count
as much as those at the top of a module: deferring one hides a circle, it does not remove
it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Low to high. A module belongs to the layer of the longest prefix that names it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("bayesclv._version", "bayesclv.exceptions", "bayesclv._math",
                    "bayesclv._params", "bayesclv._streams")),
    ("data", ("bayesclv.data", "bayesclv._dask", "bayesclv.covariates",
              "bayesclv.datasets")),
    ("segmentation", ("bayesclv.segmentation",)),
    ("models", ("bayesclv.priors", "bayesclv._laplace", "bayesclv._population",
                "bayesclv._hierarchy",
                "bayesclv.models", "bayesclv.families")),
    ("inference", ("bayesclv._callbacks", "bayesclv._flat", "bayesclv._nutpie",
                   "bayesclv._map", "bayesclv.diagnostics",
                   "bayesclv.comparison", "bayesclv.checks")),
    ("valuation", ("bayesclv.valuation",)),
    ("storage", ("bayesclv.storage",)),
    ("estimators", ("bayesclv._base", "bayesclv.estimator")),
    ("interfaces", ("bayesclv.io", "bayesclv.report", "bayesclv._html",
                    "bayesclv.plotting", "bayesclv.backtesting", "bayesclv.scoring",
                    "bayesclv.mlflow", "bayesclv.cli")),
    ("package", ("bayesclv",)),
]

#: Upward imports not yet removed, as (importer, imported). The list only shrinks.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (SRC / "bayesclv").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            # `from package import module` imports the module; `from module import name`
            # imports the module that defines the name.
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules
                       else module for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _layer(name: str) -> int:
    best, rank = -1, None
    for position, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), position
    if rank is None:
        raise AssertionError(f"module {name} is in no layer of LAYERS")
    return rank


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_every_module_is_in_a_layer(graph):
    for name in graph:
        _layer(name)


def test_no_import_circles(graph):
    assert _circles(graph) == []


def test_imports_never_go_up_a_layer(graph):
    upward = {(name, other) for name, imported in graph.items() for other in imported
              if _layer(other) > _layer(name)}
    assert upward - KNOWN_UPWARD == set(), "imports from a higher layer"
    assert KNOWN_UPWARD - upward == set(), "fixed: remove from KNOWN_UPWARD"


def test_the_checks_catch_a_circle_and_an_upward_import():
    # Negative control on a made-up graph.
    graph = {"bayesclv.data": {"bayesclv.valuation"}, "bayesclv.valuation": {"bayesclv.data"},
             "bayesclv._math": set()}
    assert _circles(graph) == [["bayesclv.data", "bayesclv.valuation"]]
    assert _layer("bayesclv.data") < _layer("bayesclv.valuation")


def test_test_folders_mirror_the_package():
    """Each folder of tests/ names a package of src/bayesclv/ (tests mirror src/)."""
    tests = Path(__file__).resolve().parent
    folders = [p.relative_to(tests) for p in tests.rglob("*") if p.is_dir()
               and not p.name.startswith((".", "__"))]
    assert folders, "tests/ has no folders"
    strays = [str(f) for f in folders if not (SRC / "bayesclv" / f / "__init__.py").exists()]
    assert not strays, f"test folders with no package of the same path in src/: {strays}"

