"""The package's layout holds (issue 16): imports go one way.

- the collection (plugins/, roles/) never imports the ``hostops`` package: AWX needs only
  the collection;
- a domain module never imports a ``cli`` module: commands are thin, the work is in the
  domain modules, which any command (or a test) can use;
- no import circle between the package's modules (imports inside functions included).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "hostops"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE.parent)
        if "module_utils" in relative.parts:
            continue  # the collection's code, checked below
        name = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    return modules


def graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {
        name: {m for m in imports(path) if m in modules and m not in (name, "hostops")}
        for name, path in modules.items()
    }


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import circle, or []."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_package_is_found_by_domain() -> None:
    modules = package_modules()
    assert "hostops.cli" in modules and "hostops.orders.order" in modules  # the control
    domains = {name.split(".")[1] for name in modules if name.count(".") >= 2}
    assert {"core", "orders", "patching", "sla", "backup", "lab"} <= domains


def test_no_domain_module_imports_a_cli_module() -> None:
    edges = graph()
    found = [
        f"{name} imports {target}"
        for name, targets in sorted(edges.items())
        if not name.endswith(".cli") and not name.endswith("_cli") and name != "hostops.cli"
        for target in sorted(targets)
        if target.endswith(".cli") or target.endswith("_cli")
    ]
    assert found == []


def test_no_import_circle() -> None:
    assert cycle(graph()) == []


def test_the_circle_finder_finds_one() -> None:
    # the control: a circle of three is found, a chain is not
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_collection_never_imports_the_package() -> None:
    sources = [p for d in ("plugins", "roles") for p in (ROOT / d).rglob("*.py")]
    assert any(p.name == "order_rules.py" for p in sources)  # the control: found
    found = sorted(
        str(path.relative_to(ROOT))
        for path in sources
        if any(m == "hostops" or m.startswith("hostops.") for m in imports(path))
    )
    assert found == []
