"""Every role's defaults and argument spec agree (STYLE.md: guard what drifts).

Each public input in ``defaults/main.yml`` is described in ``meta/argument_specs.yml``
(in one of its entry points) with the same default, and each option of the spec has a
default or is required.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.exists() else None


@pytest.mark.parametrize("role", sorted(p.name for p in ROLES.iterdir() if p.is_dir()))
def test_defaults_and_argument_spec_agree(role: str) -> None:
    defaults = load(ROLES / role / "defaults" / "main.yml") or {}
    spec = load(ROLES / role / "meta" / "argument_specs.yml")
    assert spec is not None, f"{role}: meta/argument_specs.yml is missing"
    # the options of every entry point (main, and tasks_from ones such as web's vhost)
    options = {
        name: option
        for entry in spec["argument_specs"].values()
        for name, option in (entry.get("options") or {}).items()
    }
    assert sorted(set(defaults) - set(options)) == [], f"{role}: defaults not in the spec"
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{role}: {name}"
    no_default = [
        name
        for name, option in options.items()
        if name not in defaults and not option.get("required") and "default" not in option
    ]
    assert no_default == [], f"{role}: options neither required nor with a default"
