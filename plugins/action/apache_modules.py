# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.apache_modules: Apache's modules enabled and disabled, the links read first.

The module of the same name reads the links a2enmod makes in /etc/apache2/mods-enabled for
every module asked; a module found exactly as asked is left alone, unchanged. Only the
others are given to community.general.apache2_module, the MPMs first (the disabled before
the enabled: an MPM goes before another comes), then the others, the disabled first, one
call each (ignore_configcheck for the MPMs only); it then decides, as a task of its own
would, and its warnings and diffs are the task's.
The stock module runs ``apache2ctl -M`` (Apache's whole configuration read) for every
module even when nothing is to be done. Check mode: the links are read (only read), and
the stock module predicts.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible_collections.alteo.hostops.plugins.plugin_utils.stock_results import StockRuns

OPTIONS = frozenset({"present", "absent", "ignore_configcheck"})
MODULE = "alteo.hostops.apache_modules"
STOCK = "community.general.apache2_module"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = OPTIONS

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        runs = StockRuns(self, task_vars, super().run(tmp, task_vars))
        args = dict(self._task.args)
        query = runs.read(MODULE, args)
        if query is None:
            return runs.result
        modules: list[dict[str, Any]] = list(query.get("modules") or [])
        # the module has checked the option; a string such as "no" is read as it reads it
        ignore = boolean(args.get("ignore_configcheck") or False, strict=False)
        for entry in modules:
            if entry["settled"]:
                continue
            stock_args = {
                "name": entry["name"],
                "state": entry["state"],
                "ignore_configcheck": ignore and entry["name"].startswith("mpm_"),
            }
            runs.run(entry, entry["name"], STOCK, stock_args)
            if entry.get("failed"):
                break  # a later module may depend on this one (an MPM, proxy)
        return runs.finish(any(entry["changed"] for entry in modules), modules=modules)
