# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared steps of the read-first actions (alteo.hostops.services, apache_modules,
identity, debconf_answers): their module reads the host, then each entry not as asked
goes to a stock module, whose changed, failure, warnings, deprecations and diffs become
the task's, as they would have been the stock task's own."""

from __future__ import annotations

from typing import Any


def pass_on(result: dict[str, Any], answer: dict[str, Any]) -> None:
    """Add the stock module's warnings, deprecations and diff (one diff, or a list of
    them) to the task's result, after those of the stock modules run before it."""
    for key in ("warnings", "deprecations"):
        if answer.get(key):
            result.setdefault(key, []).extend(answer[key])
    diff = answer.get("diff")
    if diff:
        result.setdefault("diff", []).extend(diff if isinstance(diff, list) else [diff])


class StockRuns:
    """One task's read, then its stock modules' runs, into the task's result."""

    def __init__(self, action: Any, task_vars: dict[str, Any] | None, result: dict[str, Any]):
        self.action = action
        self.task_vars = task_vars
        self.result = result
        self.failures: list[str] = []

    def read(self, module: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """The read-first module's answer; None when it failed (its failure is the task's)."""
        query: dict[str, Any] = self.action._execute_module(
            module_name=module, module_args=args, task_vars=self.task_vars
        )
        if query.get("failed"):
            self.result.update(query)
            return None
        return query

    def run(
        self, entry: dict[str, Any], label: str, module: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """The stock module for an entry not as asked: its changed and failure noted in
        the entry (a failure named by the label), the rest passed on; its answer."""
        answer: dict[str, Any] = self.action._execute_module(
            module_name=module, module_args=args, task_vars=self.task_vars
        )
        pass_on(self.result, answer)
        entry["changed"] = bool(answer.get("changed"))
        if answer.get("failed"):
            entry["failed"] = True
            self.failures.append(f"{label}: {answer.get('msg', 'failed')}")
        return answer

    def finish(self, changed: bool, **entries: Any) -> dict[str, Any]:
        """The task's result: changed when a stock module changed something, failed (every
        failure named) when one failed."""
        self.result.update(changed=changed, **entries)
        if self.failures:
            self.result.update(failed=True, msg="; ".join(self.failures))
        return self.result
