"""No import cycles between the modules of ``tinywindow`` and ``actors`` (STYLE rule 16).

``lint-imports`` (``make lint``) keeps the layers and refuses cycles between sibling
packages; this test refuses every cycle between single modules too, a module that imports
its own package (whose ``__init__`` imports it back) included.  Imports inside functions
count: a lazy import is still a tie.

A second check looks for circular imports at run time: importing ``a.b.c`` also runs the
``__init__`` of ``a.b`` (unless the importer is inside it), so that counts as importing the
package too (a section imported by the root config must not pull its package's ``__init__``
back round to the config), while imports under ``if TYPE_CHECKING:`` never run.
"""

from __future__ import annotations

import sys

import grimp

PACKAGES = ("tinywindow", "actors")


def import_cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), sorted."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(modules) + 100))
    try:
        for m in sorted(modules):
            if m not in index:
                visit(m)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def with_package_inits(graph: grimp.ImportGraph, modules: set[str]) -> grimp.ImportGraph:
    """``graph`` plus an import of every package whose ``__init__`` an import runs."""
    for importer in modules:
        own = _ancestors(importer) | {importer}
        for imported in graph.find_modules_directly_imported_by(importer) & modules:
            for package in _ancestors(imported) - own:
                if package in modules:
                    graph.add_import(importer=importer, imported=package)
    return graph


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_import_cycles_are_found_and_named() -> None:
    graph = grimp.ImportGraph()
    for m in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(m)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg")  # c imports its package ...
    graph.add_import(importer="pkg", imported="pkg.c")  # ... whose __init__ imports c
    assert import_cycles(graph, set(graph.modules)) == [["pkg", "pkg.c"], ["pkg.a", "pkg.b"]]


def test_importing_a_submodule_runs_its_package_init() -> None:
    graph = grimp.ImportGraph()
    for m in ("root", "root.config", "root.x", "root.x.config", "root.x.state", "root.y"):
        graph.add_module(m)
    graph.add_import(importer="root.config", imported="root.x.config")  # runs root.x's __init__
    graph.add_import(importer="root.x", imported="root.x.state")
    graph.add_import(importer="root.x.state", imported="root.y")
    graph.add_import(importer="root.y", imported="root.config")
    modules = set(graph.modules)
    assert import_cycles(graph, modules) == []
    assert import_cycles(with_package_inits(graph, modules), modules) == [
        ["root.config", "root.x", "root.x.state", "root.y"]
    ]


def _graph(*, exclude_type_checking_imports: bool = False) -> tuple[grimp.ImportGraph, set[str]]:
    graph = grimp.build_graph(
        *PACKAGES, cache_dir=None, exclude_type_checking_imports=exclude_type_checking_imports
    )
    return graph, {m for m in graph.modules if m.split(".")[0] in PACKAGES}


def _report(cycles: list[list[str]]) -> str:
    return "import cycles (STYLE rule 16):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycles_in_tinywindow_and_actors() -> None:
    graph, modules = _graph()
    cycles = import_cycles(graph, modules)
    assert not cycles, _report(cycles)


def test_no_circular_imports_at_run_time() -> None:
    graph, modules = _graph(exclude_type_checking_imports=True)
    cycles = import_cycles(with_package_inits(graph, modules), modules)
    assert not cycles, _report(cycles)
