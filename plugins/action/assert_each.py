# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.assert_each: a role's checks in one task, each with its own message.

As a row of ansible.builtin.assert tasks with quiet: true, in one task (issue 20: each
task of a run costs its own worker process, about 40 ms for an assert that reads no
host): the checks are evaluated in order, and the first check with a false condition
fails the task with that check's message, rendered then. A check's message is rendered
only when it fails, so that it may use what the checks before it made sure of.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

CHECK_KEYS = frozenset({"that", "fail_msg", "when"})


def _conditions(value: Any, where: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items or any(not isinstance(item, (str, bool)) for item in items):
        raise AnsibleActionFail(f"{where} must be a condition or a list of conditions")
    return items


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"checks"})
    _requires_connection = False

    @classmethod
    def finalize_task_arg(cls, name: str, value: Any, templar: Any, context: Any) -> Any:
        if name == "checks":  # conditions and messages are evaluated in run(), in order
            return value
        return super().finalize_task_arg(name, value, templar, context)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        checks = self._task.args.get("checks")
        if not isinstance(checks, list) or not checks:
            raise AnsibleActionFail("checks must be a non-empty list of checks")
        for index, check in enumerate(checks, start=1):
            where = f"checks[{index}]"
            if not isinstance(check, dict) or "that" not in check or "fail_msg" not in check:
                raise AnsibleActionFail(f"{where} must be a mapping with that and fail_msg")
            unknown = sorted(set(check) - CHECK_KEYS)
            if unknown:
                raise AnsibleActionFail(f"{where} has unknown keys: {', '.join(unknown)}")
            if "when" in check and not all(
                self._templar.evaluate_conditional(conditional=condition)
                for condition in _conditions(check["when"], f"{where}.when")
            ):
                continue
            for condition in _conditions(check["that"], f"{where}.that"):
                if not self._templar.evaluate_conditional(conditional=condition):
                    result.update(
                        failed=True,
                        evaluated_to=False,
                        assertion=condition,
                        msg=self._templar.template(check["fail_msg"]),
                    )
                    return result
        result.update(changed=False, msg=f"All {len(checks)} checks passed")
        return result
