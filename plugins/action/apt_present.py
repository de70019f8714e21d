# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.apt_present: ansible.builtin.apt's state=present, after asking dpkg.

The module of the same name lists, from dpkg's database, which of the packages are not
installed (milliseconds); only then is ansible.builtin.apt run, with the task's own
options. A role's re-run thus skips opening apt's cache (about half a second a task) when
nothing is to be installed. Check mode: the query runs (it only reads), and apt predicts.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

APT_OPTIONS = frozenset({"name", "update_cache", "cache_valid_time", "install_recommends", "state"})


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = APT_OPTIONS

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        query = self._execute_module(
            module_name="alteo.hostops.apt_present", module_args=args, task_vars=task_vars
        )
        if query.get("failed"):
            result.update(query)
            return result
        missing = list(query.get("missing") or [])
        if not missing:
            result.update(changed=False, missing=[], apt=False, msg="all installed")
            return result
        installed = self._execute_module(
            module_name="ansible.builtin.apt",
            module_args={**args, "state": "present"},
            task_vars=task_vars,
        )
        result.update(installed)
        result.update(missing=missing, apt=True)
        return result
