"""The package's import graph, read from the source (every import, top-level or inside a function).

No import cycle anywhere; the model layer loads models and never reaches up into training or the
recipes (a model that has to be trained first is made by `visurf.recipes` before it is loaded).
"""

from __future__ import annotations

import ast
from pathlib import Path

import visurf

PACKAGE = Path(visurf.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The visurf modules `path` imports (`from a import b` counts b when b is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import visurf.a.b` names module visurf.a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert {"visurf.recipes.train", "visurf.models.loading", "visurf.recipes.base_model"} <= graph.keys()
    assert "visurf.models.loading" in graph["visurf.recipes.train"]  # a top-level import
    assert "visurf.recipes.train" in graph["visurf.recipes.base_model"]
    assert "visurf.models.adapters" in graph["visurf.recipes.train"]  # imported inside build_run()


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    # Imports inside functions count: the cycle this test was written against ran through them.
    assert cycle is None, f"import cycle {' -> '.join(cycle)}; move what both need into a module of its own"


def test_the_model_layer_imports_nothing_from_training_or_recipes():
    graph = import_graph()
    for module, targets in graph.items():
        if module.startswith("visurf.models"):
            upward = {t for t in targets if t.startswith(("visurf.training", "visurf.recipes"))}
            assert not upward, f"{module} imports {sorted(upward)}"


def test_loading_an_unbuilt_base_refuses_instead_of_training(tmp_path, monkeypatch):
    from visurf.config.compose import compose_config
    from visurf.models.loading import ModelNotFoundError, resolve_model_dir

    monkeypatch.setenv("VISURF_CACHE", str(tmp_path))
    try:
        resolve_model_dir(compose_config([]).model)
    except ModelNotFoundError as err:
        assert "visurf.recipes.base_model" in str(err)
    else:
        raise AssertionError("an unbuilt base model was resolved")
    assert not (tmp_path / "models").exists()  # nothing was built
