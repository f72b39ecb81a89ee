"""The package's import graph: no cycle, and every import points down the
declared layers (from the CLI to the expression graph); its size: no
module over 500 lines, no function over 60; and one source of its version.

The graph is read from the source (module-level and function-level imports;
imports under `if TYPE_CHECKING:` are annotations only and do not count), so
a lazy import inside a function cannot hide a cycle.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "matcalc"

# Bottom to top: a module may import modules of its own layer or below. A
# layer is a list of packages (every module in them) and modules.
LAYERS = [
    ("foundation", ["matcalc._version", "matcalc.errors", "matcalc.hooks"]),
    ("ir", ["matcalc.ir"]),                 # the typed expression graph and shapes
    ("ops", ["matcalc.ops"]),               # what each operator is; the builders
    ("passes", ["matcalc.passes"]),         # rewrite rules, programs, lowering
    ("ad", ["matcalc.ad"]),                 # differentiation and its results
    ("targets", ["matcalc.targets"]),       # text, LaTeX, Unicode, NumPy code
    ("frontend", ["matcalc.frontend"]),     # text to graph
    ("checks", ["matcalc.checks", "matcalc.bridges"]),  # numerical checks, SymPy
    ("api", ["matcalc.api"]),
    ("top", ["matcalc.cli", "matcalc"]),
]


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def layer_of(module: str) -> int:
    """The index of the layer `module` belongs to (the longest match)."""
    best = max(((len(m), i) for i, (_, members) in enumerate(LAYERS) for m in members
                if module == m or module.startswith(m + ".")), default=None)
    assert best is not None, f"{module} has no layer"
    return best[1]


def _module_name(path: Path) -> str:
    parts = ["matcalc", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The import nodes under `if TYPE_CHECKING:`."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            out |= {n for s in node.body for n in ast.walk(s)}
    return out


def _imported(node, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The package's modules one import statement loads."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name in modules}
    base = module if is_package else module.rpartition(".")[0]
    if node.level:
        base = ".".join(base.split(".")[:len(base.split(".")) - node.level + 1])
        base = ".".join(filter(None, [base, node.module]))
    else:
        base = node.module or ""
    out = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
    if len(out) < len(node.names) and base in modules:
        out.add(base)  # a name defined in `base` itself, not a submodule
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_only(tree)
        graph[module] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in skip:
                graph[module] |= _imported(node, module, path.name == "__init__.py",
                                           set(paths)) - {module}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module):
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = 2
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, lines from `def` to its end) of every function and
    method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + node.name
            if not isinstance(node, ast.ClassDef):
                yield name, node.end_lineno - node.lineno + 1
            yield from _functions(node, name + ".")
        else:
            yield from _functions(node, prefix)


def oversized(source: str, where: str) -> set[str]:
    """`where` if the module is over MAX_MODULE_LINES, and `where:function`
    for each function over MAX_FUNCTION_LINES."""
    out = {where} if len(source.splitlines()) > MAX_MODULE_LINES else set()
    return out | {f"{where}:{name}" for name, lines in _functions(ast.parse(source))
                  if lines > MAX_FUNCTION_LINES}


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_import_cycle():
    assert _cycle(import_graph()) is None


def test_imports_point_down_the_layers():
    level = {m: layer_of(m) for m in import_graph()}
    upward = sorted(f"{m} ({LAYERS[level[m]][0]}) imports {t} ({LAYERS[level[t]][0]})"
                    for m, targets in import_graph().items() for t in targets
                    if level[t] > level[m])
    assert upward == []


def test_the_check_finds_a_cycle_and_an_upward_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    from ..targets.text import to_text\n")
    node = tree.body[0].body[0]
    assert _imported(node, "matcalc.ir.expr", False,
                     {"matcalc.targets.text", "matcalc.targets"}) == {"matcalc.targets.text"}


def test_no_module_over_500_lines_and_no_function_over_60():
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        found |= oversized(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE).as_posix())
    assert sorted(found) == [], "over the limits"


def test_the_size_check_counts_modules_functions_and_methods():
    body = "".join(f"    x{i} = {i}\n" for i in range(59))
    short = "def f():\n" + body
    assert oversized(short, "m.py") == set()
    long = "def f():\n    y = 0\n" + body
    nested = ("class C:\n    def g(self):\n        def h():\n"
              + textwrap.indent("    y = 0\n" + body, " " * 8) + "        return h\n")
    assert oversized(long, "m.py") == {"m.py:f"}
    assert oversized(nested, "m.py") == {"m.py:C.g", "m.py:C.g.h"}
    assert oversized("x = 1\n" * 501, "m.py") == {"m.py"}
    assert oversized("x = 1\n" * 500, "m.py") == set()


def test_the_version_has_one_source():
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "matcalc._version.__version__"}
