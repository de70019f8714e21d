# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.services: systemd units kept enabled and running, systemd asked first.

The module of the same name asks systemd about every unit in one ``systemctl show``; a unit
found exactly in the state asked is left alone, unchanged. Only the others are given to
ansible.builtin.systemd_service with the task's options, one call each, in order; it then
decides, as a task of its own would. A role's daemons are kept running on every run, and
the stock module asks systemd two or three times a unit even when nothing is to be done.
Check mode: the query runs (it only reads), and the stock module predicts.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.alteo.hostops.plugins.plugin_utils.stock_results import StockRuns

OPTIONS = frozenset({"name", "enabled", "state", "daemon_reload"})
MODULE = "alteo.hostops.services"
STOCK = "ansible.builtin.systemd_service"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = OPTIONS

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        runs = StockRuns(self, task_vars, super().run(tmp, task_vars))
        args = dict(self._task.args)
        query = runs.read(MODULE, args)
        if query is None:
            return runs.result
        units: list[dict[str, Any]] = list(query.get("units") or [])
        # the module has checked the options; a string such as "no" is read as it reads it
        reload = boolean(args.get("daemon_reload") or False, strict=False)
        options = {key: args[key] for key in ("enabled", "state") if args.get(key) is not None}
        for unit in units:
            if unit["settled"]:
                continue
            args = {"name": unit["name"], **options, "daemon_reload": reload}
            runs.run(unit, unit["name"], STOCK, args)
            reload = False  # once, before the first unit
        return runs.finish(any(unit["changed"] for unit in units), units=units)
