# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.assert_each: a role's checks in one task, each with its own message.

As a row of ansible.builtin.assert tasks with quiet: true, in one task (issue 20: each
task of a run costs its own worker process, about 40 ms for an assert that reads no
host): the checks are evaluated in order, and the first check with a false condition
fails the task with that check's message, rendered then. A check's message is rendered
only when it fails, so that it may use what the checks before it made sure of.

With gather_subset, the facts a role's checks need are gathered first (the setup module,
that subset) when one of gather_unless (default: distribution_major_version) is not
among the host's facts yet; the checks then see them, and they are the host's facts for
the tasks after (as the setup task before the checks did, in the same task: a role run
after the run's first play has them, and pays nothing for a task of its own that would
be skipped).
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.vars.clean import namespace_facts
from ansible_collections.alteo.hostops.plugins.plugin_utils.gathering import gathers

CHECK_KEYS = frozenset({"that", "fail_msg", "when"})


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise AnsibleActionFail(f"{where} must be a non-empty list of names")
    return [str(v) for v in value]


def _conditions(value: Any, where: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items or any(not isinstance(item, (str, bool)) for item in items):
        raise AnsibleActionFail(f"{where} must be a condition or a list of conditions")
    return items


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"checks", "gather_subset", "gather_unless"})

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
        templar = self._templar
        gathered = self._gather(dict(task_vars or {}))
        if gathered is not None:
            if gathered.get("failed"):
                result.update(gathered)
                result["msg"] = f"gathering the facts failed: {gathered.get('msg', '')}"
                return result
            facts = gathered.get("ansible_facts") or {}
            result["ansible_facts"] = facts
            variables = dict(task_vars or {})
            variables["ansible_facts"] = {
                **(variables.get("ansible_facts") or {}),
                **namespace_facts(facts)["ansible_facts"],
            }
            if "ansible_local" in facts:  # Ansible publishes it at the top level too
                variables["ansible_local"] = facts["ansible_local"]
            templar = self._templar.copy_with_new_env(available_variables=variables)
        for index, check in enumerate(checks, start=1):
            where = f"checks[{index}]"
            if not isinstance(check, dict) or "that" not in check or "fail_msg" not in check:
                raise AnsibleActionFail(f"{where} must be a mapping with that and fail_msg")
            unknown = sorted(set(check) - CHECK_KEYS)
            if unknown:
                raise AnsibleActionFail(f"{where} has unknown keys: {', '.join(unknown)}")
            if "when" in check and not all(
                templar.evaluate_conditional(conditional=condition)
                for condition in _conditions(check["when"], f"{where}.when")
            ):
                continue
            for condition in _conditions(check["that"], f"{where}.that"):
                if not templar.evaluate_conditional(conditional=condition):
                    result.update(
                        failed=True,
                        evaluated_to=False,
                        assertion=condition,
                        msg=templar.template(check["fail_msg"]),
                    )
                    return result
        result.update(changed=False, msg=f"All {len(checks)} checks passed")
        return result

    def _gather(self, task_vars: dict[str, Any]) -> dict[str, Any] | None:
        """The setup module's result, when gather_subset is given and one of gather_unless
        is not among the host's facts; else None (nothing gathered)."""
        args = self._task.args
        if args.get("gather_subset") is None:
            if "gather_unless" in args:
                raise AnsibleActionFail("gather_unless needs gather_subset")
            return None
        subset = _names(args["gather_subset"], "gather_subset")
        try:
            if not gathers(args, task_vars.get("ansible_facts")):
                return None
        except ValueError as error:
            raise AnsibleActionFail(str(error)) from error
        gathered: dict[str, Any] = self._execute_module(
            module_name="ansible.builtin.setup",
            module_args={"gather_subset": subset},
            task_vars=task_vars,
        )
        return gathered
