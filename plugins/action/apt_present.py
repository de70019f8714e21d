# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.apt_present: ansible.builtin.apt's state=present, after asking dpkg.

The module of the same name lists, from dpkg's database, which of the packages are not
installed (milliseconds); only then is ansible.builtin.apt run, with the task's own
options. A role's re-run thus skips opening apt's cache (about half a second a task) when
nothing is to be installed. Check mode: the query runs (it only reads), and apt predicts.

With hold_start, the module writes a policy-rc.d that refuses the maintainer scripts'
start of those daemons (the ones not installed yet) before apt runs, and removes it after
apt, whatever apt answered (not in check mode, and only when something is to be
installed). One left by an interrupted run is removed by the query of the next task on
the host, which then reports a change.

In check mode with update_cache, when something is to be installed, the package lists
are refreshed for real first (when older than cache_valid_time), so that apt predicts
from current lists: a cache, not configuration. A role thus needs no task of its own for
that, skipped in every real run.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

APT_OPTIONS = frozenset({"name", "update_cache", "cache_valid_time", "install_recommends", "state"})
MODULE = "alteo.hostops.apt_present"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = APT_OPTIONS | {"hold_start"}

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        units = args.pop("hold_start", None) or []
        query = self._execute_module(
            module_name=MODULE, module_args={**args, "hold_start": units}, task_vars=task_vars
        )
        if query.get("failed"):
            result.update(query)
            return result
        missing = list(query.get("missing") or [])
        # a policy-rc.d of the module's, left by an interrupted run, was removed
        stale = bool(query.get("released"))
        if not missing:
            msg = "all installed" + ("; a left policy-rc.d removed" if stale else "")
            result.update(changed=stale, missing=[], apt=False, held=[], msg=msg)
            return result
        if self._task.check_mode and args.get("update_cache"):
            refreshed = self._refresh_lists(args, task_vars)
            if refreshed.get("failed"):
                result.update(refreshed)
                return result
        held: list[str] = []
        if units and not self._task.check_mode:
            hold = self._step("hold", args, units, task_vars)
            if hold.get("failed"):
                result.update(hold)
                return result
            held = list(hold.get("held") or [])
        try:
            installed = self._execute_module(
                module_name="ansible.builtin.apt",
                module_args={**args, "state": "present"},
                task_vars=task_vars,
            )
        finally:
            released = self._step("release", args, units, task_vars) if held else {}
        result.update(installed)
        result.update(missing=missing, apt=True, held=held)
        if stale:
            result["changed"] = True
        if released.get("failed"):
            note = f"policy-rc.d not removed: {released.get('msg')}"
            before = installed.get("msg")
            result.update(failed=True, msg=f"{before}; {note}" if before else note)
        return result

    def _refresh_lists(self, args: dict[str, Any], task_vars: Any) -> dict[str, Any]:
        """In check mode, the package lists refreshed for real (when older than
        cache_valid_time) before apt predicts the installation: they are a cache, not
        configuration, and apt in check mode would predict from stale lists."""
        lists = {"update_cache": True}
        if args.get("cache_valid_time") is not None:
            lists["cache_valid_time"] = args["cache_valid_time"]
        check_mode, self._task.check_mode = self._task.check_mode, False
        try:
            answer: dict[str, Any] = self._execute_module(
                module_name="ansible.builtin.apt", module_args=lists, task_vars=task_vars
            )
        finally:
            self._task.check_mode = check_mode
        return answer

    def _step(
        self, step: str, args: dict[str, Any], units: list[str], task_vars: Any
    ) -> dict[str, Any]:
        answer: dict[str, Any] = self._execute_module(
            module_name=MODULE,
            module_args={**args, "hold_start": units, "hold_step": step},
            task_vars=task_vars,
        )
        return answer
