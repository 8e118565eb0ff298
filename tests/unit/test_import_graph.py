"""No import circle anywhere in pipeline/, counting imports inside functions (issue 15).

A circle hidden in a function works until someone moves the import to the top; then a module
sees the other half-initialised. Walking the source with `ast` finds every `import` and
`from ... import` wherever it stands (only `if TYPE_CHECKING:` blocks, never run, are skipped).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "pipeline"


def _module(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, modules: set[str], here: str, is_pkg: bool) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = here.split(".") if is_pkg else here.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != here:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    graph = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        # a package's __init__ is imported with each submodule: count it as imported by none of them
        edges = _imports(tree, modules, mod, path.name == "__init__.py")
        graph[mod] = {e for e in edges if not mod.startswith(e + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walker_sees_function_level_imports():
    graph = import_graph()
    assert "pipeline.engine.lbfgs" in graph["pipeline.engine.optim"]  # imported inside make_optimizer
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_in_pipeline():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


LOWER = ("pipeline.engine", "pipeline.models", "pipeline.io", "pipeline.methods", "pipeline.config",
         "pipeline.pixels", "pipeline.schema", "pipeline.errors", "pipeline.version", "pipeline.slurm_env")
UPPER = ("pipeline.run", "pipeline.tasks", "pipeline.cli", "pipeline.api", "pipeline.report", "pipeline.bench",
         "pipeline.slurm")


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_no_arrow_runs_back_up_the_layers():
    """engine, models, io, methods and config never import the layers that use them, and no module
    imports the package root (it hands out the API: a lower layer would depend on the top)."""
    graph = import_graph()
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() if _within(m, LOWER)
                    for d in deps if _within(d, UPPER))
    assert upward == []
    assert root_imports() == []


def root_imports() -> list[str]:
    """`from pipeline import NAME` where NAME is an attribute of the root, not a submodule."""
    submodules = {p.stem for p in PKG.glob("*.py")} | {p.name for p in PKG.iterdir() if p.is_dir()}
    found = []
    for path in PKG.rglob("*.py"):
        if path == PKG / "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "pipeline" and not node.level:
                found += [f"{_module(path)}: {a.name}" for a in node.names if a.name not in submodules]
    return sorted(found)


def test_the_root_check_sees_an_attribute_import(tmp_path, monkeypatch):
    fake = tmp_path / "pipeline"
    (fake / "run" / "folder").mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = '0'\n")
    (fake / "version.py").write_text("")
    (fake / "run" / "folder" / "plan.py").write_text("from pipeline import __version__, version\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", fake)
    assert root_imports() == ["pipeline.run.folder.plan: __version__"]


def test_methods_know_no_files():
    """Algorithms take tensors and give tensors: methods/ imports nothing from io/."""
    graph = import_graph()
    assert sorted(f"{m} -> {d}" for m, deps in graph.items() if _within(m, ("pipeline.methods",))
                  for d in deps if _within(d, ("pipeline.io",))) == []
