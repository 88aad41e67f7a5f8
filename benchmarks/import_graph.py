"""Print the import graph of ``src/coreselect`` between its modules, and its cycles.

Reads every module with :mod:`ast` (nothing is imported). Two graphs:

* *at import time*: the imports at a module's top level (including inside a top-level
  ``if``/``try``), which run when the module is imported;
* *all imports*: those plus the imports made inside functions (run on first call). This is the
  graph ``lint-imports`` checks against the layers of ``.importlinter``; a cycle here is two
  modules that each need the other, whenever the import happens.

``if TYPE_CHECKING:`` imports never run and are left out of both. Exit status 1 when either
graph has a cycle.

Usage::

    python benchmarks/import_graph.py            # the cycles of both graphs
    python benchmarks/import_graph.py --lazy     # also list the imports made inside functions
    python benchmarks/import_graph.py --edges    # every edge (all imports), one a line
    python benchmarks/import_graph.py --packages # cycles between sub-packages / top modules too
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "coreselect"


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module) -> tuple[list[ast.stmt], list[ast.stmt]]:
    """(module-level import statements, imports inside functions/classes' methods)."""
    top: list[ast.stmt] = []
    lazy: list[ast.stmt] = []

    def walk(nodes: list[ast.stmt], in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                (lazy if in_function else top).append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                walk(node.body, True)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                walk(node.orelse, in_function)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        walk([c for c in children if isinstance(c, ast.stmt | ast.excepthandler)],
                             in_function)
                if isinstance(node, ast.excepthandler):
                    walk(node.body, in_function)

    walk(tree.body, False)
    return top, lazy


def _targets(node: ast.stmt, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The package's own modules an import statement loads (the most specific known name)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        names = [f"{stem}.{a.name}" for a in node.names] + [stem]
    out = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name.startswith(PACKAGE):
            out.add(name)
    return out


def graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level edges, function-level edges) between the package's own modules.

    ``from coreselect.x import y`` also imports ``coreselect.x``'s parents: a package's
    ``__init__`` runs first, so an edge to ``a.b`` implies one to ``a`` (added here).
    """
    modules = module_names(root)
    known = set(modules)
    top: dict[str, set[str]] = defaultdict(set)
    lazy: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        eager, late = _imports(tree)
        for edges, nodes in ((top, eager), (lazy, late)):
            for node in nodes:
                for target in _targets(node, name, is_package, known):
                    while target and target != PACKAGE:
                        if target != name and not name.startswith(target + "."):
                            edges[name].add(target)
                        target = target.rpartition(".")[0]
        top.setdefault(name, set())
    return dict(top), dict(lazy)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def shortest_cycle(edges: dict[str, set[str]], members: list[str]) -> list[str]:
    """One short cycle through the first member of a component (breadth first), for reading."""
    start, inside = members[0], set(members)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w == start:
                    return paths[v] + [start]
                if w in inside and w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return members


def package_of(module: str) -> str:
    """``coreselect.selection.kcenter`` -> ``selection``; ``coreselect.store`` -> ``store``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def collapse(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between sub-packages and top-level modules."""
    out: dict[str, set[str]] = defaultdict(set)
    for src, dsts in edges.items():
        out[package_of(src)]
        for dst in dsts:
            if package_of(dst) != package_of(src) and dst != PACKAGE:
                out[package_of(src)].add(package_of(dst))
    return dict(out)


def _print_cycles(title: str, edges: dict[str, set[str]], packages: bool) -> int:
    found = cycles(edges)
    print(f"{title}: {sum(map(len, edges.values()))} imports between {len(edges)} modules, "
          f"{len(found)} cycle(s)")
    for comp in found:
        print("  cycle: " + " -> ".join(shortest_cycle(edges, comp)) + f"   ({len(comp)} modules in it)")
    if packages:
        packs = collapse(edges)
        pc = cycles(packs)
        print(f"  {len(pc)} cycle(s) between sub-packages / top-level modules")
        for comp in pc:
            print("    cycle: " + " -> ".join(shortest_cycle(packs, comp)))
    return len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lazy", action="store_true", help="also list imports made inside functions")
    parser.add_argument("--edges", action="store_true", help="print every edge (all imports)")
    parser.add_argument("--packages", action="store_true", help="cycles between sub-packages too")
    args = parser.parse_args(argv)
    top, lazy = graph()
    full = {m: top[m] | lazy.get(m, set()) for m in top}
    if args.edges:
        for src in sorted(full):
            for dst in sorted(full[src]):
                print(f"{src} -> {dst}{'' if dst in top[src] else '   (inside a function)'}")
    n = _print_cycles("at import time", top, args.packages)
    n += _print_cycles("all imports (what lint-imports checks)", full, args.packages)
    if args.lazy:
        print(f"{sum(len(v - top[k]) for k, v in full.items())} import(s) made only inside functions:")
        for src in sorted(full):
            for dst in sorted(full[src] - top[src]):
                print(f"  {src} -> {dst}")
    return 1 if n else 0


if __name__ == "__main__":
    raise SystemExit(main())
