"""The package layout (STYLE.md, "Package layout"): imports flow one way.

Every module of ``src/scaling_ladder`` is parsed with :mod:`ast` (nothing is imported) and
its imports of the package are resolved, relative ones included; ``from pkg import name``
points at ``pkg.name`` when that is a module, else at ``pkg``. An import is *module-level*
when it runs on import (module body, class bodies, ``if``/``try`` blocks); one inside a
function is *deferred*; ``if TYPE_CHECKING:`` blocks never run and are ignored.

Checked:

(a) no import cycle between modules, and none between the top-level packages. A deferred
    import does not create a cycle at import time, but it is still a dependency, so a cycle
    through one is allowed only where it is listed in ``DEFERRED`` with its reason; any other
    cycle, module-level or deferred, fails.
(b) nothing imports ``scaling_ladder.cli``.
(c) only ``train/`` imports torch at module level (the analysis side must not need it).
(d) the flow: sources -> observations -> laws -> compare -> evaluate -> report, with errors,
    files, format, names and units beneath everything, and beside the flow (DESIGN.md) data
    (token files, no statistics), plan (laws.compute for FLOPs, data for a tokenizer), train
    (plan, data, laws.compute) and monitor (a run against its laws). ``ALLOWED`` says what
    each package may import; deferred imports count too, except those listed in ``BACKWARD``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "scaling_ladder"

BASE = {"errors", "files", "format", "names", "units"}
ALLOWED = {
    "errors": set(),
    "files": set(),
    "format": set(),
    "units": set(),
    "names": {"errors"},
    "observations": BASE,
    "laws": BASE | {"observations"},
    "data": BASE,
    "plan": BASE | {"laws", "data"},
    "train": BASE | {"laws", "data", "plan"},
    "compare": BASE | {"observations", "laws"},
    "monitor": BASE | {"observations", "laws"},
    "evaluate": BASE | {"observations", "laws", "compare"},
    "report": BASE | {"observations", "laws", "compare", "evaluate", "monitor"},
    "demo": BASE | {"observations", "laws", "data", "plan", "train", "compare", "monitor",
                    "evaluate", "report"},
    "cli": BASE | {"observations", "laws", "data", "plan", "train", "compare", "monitor",
                   "evaluate", "report", "demo"},
}
PACKAGES = ("observations", "laws", "plan", "data", "train", "compare", "evaluate", "monitor",
            "report", "cli")

# deferred imports that close a cycle, each decided on purpose
DEFERRED = {
    ("scaling_ladder.laws.forms", "scaling_ladder.laws.fit"):
        "Law.fit is the lmfit-style convenience law.fit(obs) over the estimator, which "
        "imports the forms",
    ("scaling_ladder.observations.table", "scaling_ladder.laws.compute"):
        "the 6ND default of the flops column is the one FLOPs formula, laws.compute.flops_6nd",
}
# deferred imports against the flow, each decided on purpose
BACKWARD = {
    ("scaling_ladder.observations.table", "scaling_ladder.laws.compute"):
        DEFERRED[("scaling_ladder.observations.table", "scaling_ladder.laws.compute")],
}


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_package(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def _targets(mod: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        pkg = mod if _is_package(mod) else mod.rpartition(".")[0]
        for _ in range(node.level - 1):
            pkg = pkg.rpartition(".")[0]
        base = f"{pkg}.{base}" if base else pkg
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(mod: str) -> Iterator[tuple[str, bool, int]]:
    """(imported module, module-level?, line) for every import in ``mod``."""
    def walk(node: ast.AST, top: bool):
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(mod, child):
                    yield target, top, child.lineno
            else:
                inner = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                yield from walk(child, top and not inner)

    yield from walk(ast.parse(MODULES[mod].read_text(encoding="utf-8")), True)


EDGES = [(mod, target, top, line) for mod in MODULES for target, top, line in _imports(mod)]
OWN = [(m, t, top, line) for m, t, top, line in EDGES
       if t.startswith("scaling_ladder") and t != m]


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _graph(edges) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    return graph


def _module_cycles() -> list[list[str]]:
    return _cycles(_graph((m, t) for m, t, top, _ in OWN
                          if top or (m, t) not in DEFERRED))


def test_the_walk_sees_the_package():
    assert {"scaling_ladder.files", "scaling_ladder.format", "scaling_ladder.laws.fit",
            "scaling_ladder.observations.table", "scaling_ladder.cli.common"} <= set(MODULES)
    assert ("scaling_ladder.laws.fit", "scaling_ladder.laws.forms", True) in {
        (m, t, top) for m, t, top, _ in OWN}
    assert set(PACKAGES) <= {_package(m) for m in MODULES}


def test_no_import_cycle_between_modules():
    cycles = _module_cycles()
    assert cycles == [], f"import cycles: {cycles}"


def test_the_deferred_imports_listed_exist_and_are_deferred():
    deferred = {(m, t) for m, t, top, _ in OWN if not top}
    module_level = {(m, t) for m, t, top, _ in OWN if top}
    for pair in {**DEFERRED, **BACKWARD}:
        assert pair in deferred and pair not in module_level, pair


def test_no_import_cycle_between_packages():
    edges = [(_package(m), _package(t)) for m, t, top, _ in OWN
             if _package(m) != _package(t) and (m, t) not in DEFERRED
             and t != "scaling_ladder"]
    assert _cycles(_graph(edges)) == []


def test_nothing_imports_the_cli():
    bad = [f"{m}:{line}" for m, t, _, line in OWN
           if _package(t) == "cli" and _package(m) != "cli"]
    assert bad == []


def test_only_train_imports_torch_at_module_level():
    bad = [f"{m}:{line}" for m, t, top, line in EDGES
           if top and t.split(".")[0] == "torch" and _package(m) != "train"]
    assert bad == []


def test_nothing_imports_the_root_package_at_module_level():
    # scaling_ladder/__init__.py imports the stages; a stage importing it back is a cycle
    bad = [f"{m}:{line}" for m, t, top, line in OWN if t == "scaling_ladder" and top]
    assert bad == []


def test_imports_follow_the_flow():
    bad = []
    for m, t, _, line in OWN:
        src, dst = _package(m), _package(t)
        if src == dst or src == "scaling_ladder" or t == "scaling_ladder" or (m, t) in BACKWARD:
            continue
        if dst not in ALLOWED.get(src, set()):
            bad.append(f"{m}:{line} imports {t} ({src} may import "
                       f"{', '.join(sorted(ALLOWED.get(src, ()))) or 'nothing'})")
    assert bad == [], "\n".join(bad)


def test_every_module_belongs_to_a_known_place():
    assert {_package(m) for m in MODULES} - {"scaling_ladder"} <= set(ALLOWED)
