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


class Answers:
    """The action's module runs, answered in order (what _execute_module returns)."""

    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def _execute_module(self, module_name: str, module_args: dict[str, Any], task_vars: Any) -> Any:
        self.asked.append((module_name, module_args))
        return self.answers.pop(0)


def test_a_failed_read_is_the_tasks_failure() -> None:
    runs = load().StockRuns(Answers({"failed": True, "msg": "cannot read"}), {}, {})
    assert runs.read("alteo.hostops.x", {"a": 1}) is None
    assert runs.result == {"failed": True, "msg": "cannot read"}


def test_the_stock_runs_changes_and_failures_are_the_tasks() -> None:
    action = Answers(
        {"entries": []},
        {"changed": True, "warnings": ["w"]},
        {"failed": True, "msg": "no such unit"},
    )
    runs = load().StockRuns(action, {}, {})
    assert runs.read("alteo.hostops.x", {}) == {"entries": []}
    first: dict[str, Any] = {"name": "a"}
    second: dict[str, Any] = {"name": "b"}
    runs.run(first, "a", "stock", {"name": "a"})
    runs.run(second, "b", "stock", {"name": "b"})
    assert first == {"name": "a", "changed": True}
    assert second == {"name": "b", "changed": False, "failed": True}
    assert action.asked == [
        ("alteo.hostops.x", {}),
        ("stock", {"name": "a"}),
        ("stock", {"name": "b"}),
    ]
    result = runs.finish(True, entries=[first, second])
    assert result == {
        "warnings": ["w"],
        "changed": True,
        "entries": [first, second],
        "failed": True,
        "msg": "b: no such unit",
    }
    # without a failure the result is not failed (the control)
    calm = load().StockRuns(Answers({"changed": False}), {}, {})
    calm.run({}, "c", "stock", {})
    assert calm.finish(False) == {"changed": False}
