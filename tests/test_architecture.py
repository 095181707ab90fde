"""The shape of the code, checked statically (docs/architecture.md §2).

- no import cycle between leadscore's modules (imports at any depth, TYPE_CHECKING aside);
- the pure layers (features/, models/) and the synthetic CRM import neither Prefect nor
  MLflow nor the glue or serving layers;
- every import names the installed namespace (``leadscore.features``), never the bare
  top-level folder (``features``), which would load a second copy of a module;
- small modules: none over 400 lines but the TreeSHAP kernel.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("features", "models", "pipelines", "serving", "synthetic")
PURE = ("features", "models", "synthetic")
FORBIDDEN_IN_PURE = ("prefect", "mlflow", "leadscore.pipelines", "leadscore.serving")
MAX_LINES = 400
LONGER_ALLOWED = {"models/treeshap.py"}


def _modules() -> dict[str, Path]:
    """Dotted module name (``leadscore.models.gate``) -> file, for every code module."""
    found = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(["leadscore", *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[str, list[str]]]:
    """(module, imported names) of every import in the tree, TYPE_CHECKING blocks aside."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(ast.Module(body=node.orelse, type_ignores=[]), package)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            yield base, [a.name for a in node.names]
        else:
            yield from _imports(node, package)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = set()
        for module, names in _imports(tree, package):
            for target in [f"{module}.{n}" for n in names] + [module]:
                if target in modules and target != name:
                    edges.add(target)
                    break
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    graph = _graph()
    assert "leadscore.models.gate" in graph and graph["leadscore.pipelines.train_flow"]
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_pure_layers_import_no_orchestration_tracking_or_serving() -> None:
    offences = []
    for name, path in _modules().items():
        if name.split(".")[1] not in PURE:
            continue
        for module, _ in _imports(ast.parse(path.read_text(encoding="utf-8")), name):
            if any(module == f or module.startswith(f + ".") for f in FORBIDDEN_IN_PURE):
                offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offences, "\n".join(offences)


def test_imports_use_the_installed_namespace() -> None:
    bare = []
    folders = [*(ROOT / d for d in (*LAYERS, "bench", "tests"))]
    for folder in folders:
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for module, _ in _imports(tree, "tests"):
                if module.split(".")[0] in LAYERS:
                    bare.append(f"{path.relative_to(ROOT)}: {module}")
    assert not bare, "import the installed names (leadscore.<layer>):\n" + "\n".join(bare)


def test_modules_stay_small() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not {k: v for k, v in long.items() if k not in LONGER_ALLOWED}, long


def test_everything_installs_under_the_leadscore_namespace() -> None:
    """No generic top-level name (``features``, ``models``) is installed, and no folder
    named like the package sits at the root to shadow the installed one."""
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    assert all(p.startswith("leadscore.") for p in setup["packages"]), setup["packages"]
    assert setup["package-dir"] == {f"leadscore.{layer}": layer for layer in LAYERS}
    packages = {name for name, path in _modules().items() if path.name == "__init__.py"}
    data_only = set(setup.get("package-data", {})) - packages  # e.g. the page's templates
    assert packages | data_only == set(setup["packages"]), "pyproject must list every package"
    assert not (ROOT / "leadscore").exists()
