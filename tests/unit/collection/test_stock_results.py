"""What the read-first actions keep of each stock module they run: its warnings,
deprecations and diffs, after those of the stock modules run before it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

PATH = Path(__file__).resolve().parents[3] / "plugins" / "plugin_utils" / "stock_results.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostops_stock_results", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_warnings_deprecations_and_diffs_are_kept_in_order() -> None:
    pass_on = load().pass_on
    result: dict[str, Any] = {"changed": False}
    pass_on(result, {"changed": False})  # nothing to keep: the control
    assert result == {"changed": False}
    pass_on(result, {"warnings": ["one"], "diff": {"before": "a", "after": "b"}})
    pass_on(result, {"warnings": ["two"], "deprecations": [{"msg": "old"}],
                     "diff": [{"before": "c", "after": "d"}]})  # fmt: skip
    assert result == {
        "changed": False,
        "warnings": ["one", "two"],
        "deprecations": [{"msg": "old"}],
        "diff": [{"before": "a", "after": "b"}, {"before": "c", "after": "d"}],
    }
