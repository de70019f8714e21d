"""Every module's documentation is YAML that ansible-doc can read (the collection's
sanity run in tests/integration/test_collection.py reads it too, only later): a plain
scalar with ': ' in it, a classic mistake, fails here first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

NAMES = ("DOCUMENTATION", "EXAMPLES", "RETURN")
PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
MODULES = sorted((PLUGINS / "modules").glob("*.py"))


def blocks(path: Path) -> dict[str, str]:
    """The module's DOCUMENTATION, EXAMPLES and RETURN strings."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in NAMES:
                    found[target.id] = str(node.value.value)
    return found


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_the_modules_documentation_is_yaml(path: Path) -> None:
    docs = blocks(path)
    assert "DOCUMENTATION" in docs, path
    for name, text in docs.items():
        parsed = yaml.safe_load(text)
        assert parsed, (path.name, name)
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    assert documentation["short_description"]


# the other plugins that document themselves (strategy, filters, tests, lookups...)
OTHERS = sorted(
    path
    for path in PLUGINS.glob("*/*.py")
    if path.parent.name != "modules" and "DOCUMENTATION" in blocks(path)
)


@pytest.mark.parametrize("path", OTHERS, ids=[f"{p.parent.name}/{p.stem}" for p in OTHERS])
def test_the_other_plugins_documentation_is_yaml(path: Path) -> None:
    documentation = yaml.safe_load(blocks(path)["DOCUMENTATION"])
    if path.parent.name in ("filter", "test"):  # a file of several, documented by one
        assert isinstance(documentation["name"], str), path
    else:
        assert documentation["name"] == path.stem, path
    assert documentation["short_description"] and documentation["description"]
