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
from ansible_collections.alteo.hostops.plugins.plugin_utils.stock_results import StockRuns

MODULE = "alteo.hostops.debconf_answers"
STOCK = "ansible.builtin.debconf"
VALUE = ("question", "vtype", "value")  # an answer as ansible.builtin.debconf takes it


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"name", "answers"})

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        runs = StockRuns(self, task_vars, super().run(tmp, task_vars))
        args = dict(self._task.args)
        query = runs.read(MODULE, args)
        if query is None:
            return runs.result
        answers: list[dict[str, Any]] = list(query.get("answers") or [])
        # the answers as given (the module returns no values: a password's is a secret)
        for answer, given in zip(answers, args["answers"], strict=True):
            if answer["settled"]:
                continue
            stock_args = {"name": args["name"], **{key: given[key] for key in VALUE}}
            runs.run(answer, answer["question"], STOCK, stock_args)
        return runs.finish(any(answer["changed"] for answer in answers), answers=answers)
