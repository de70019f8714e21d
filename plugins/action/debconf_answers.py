# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.debconf_answers: a package's debconf answers, debconf's database read first.

The module of the same name reads /var/cache/debconf/config.dat once for every answer; an
answer found there with the value asked is left alone, unchanged. Only the others are given
to ansible.builtin.debconf, one call each, in order; it then decides, as a task of its own
would, and its warnings and diffs are the task's. The stock module runs debconf-show
(Perl) for every answer even when nothing is to be done. Check mode: the database is read
(only read), and the stock module predicts.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.alteo.hostops.plugins.plugin_utils.stock_results import pass_on

MODULE = "alteo.hostops.debconf_answers"
STOCK = "ansible.builtin.debconf"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"name", "answers"})

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        query = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        if query.get("failed"):
            result.update(query)
            return result
        answers: list[dict[str, Any]] = list(query.get("answers") or [])
        failures: list[str] = []
        # the answers as given (the module returns no values: a password's is a secret)
        for answer, given in zip(answers, args["answers"], strict=True):
            if answer["settled"]:
                continue
            reply = self._execute_module(
                module_name=STOCK,
                module_args={
                    "name": args["name"],
                    "question": given["question"],
                    "vtype": given["vtype"],
                    "value": given["value"],
                },
                task_vars=task_vars,
            )
            pass_on(result, reply)
            answer["changed"] = bool(reply.get("changed"))
            if reply.get("failed"):
                answer["failed"] = True
                failures.append(f"{answer['question']}: {reply.get('msg', 'failed')}")
        result.update(changed=any(answer["changed"] for answer in answers), answers=answers)
        if failures:
            result.update(failed=True, msg="; ".join(failures))
        return result
