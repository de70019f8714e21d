# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.identity: the host's name and time zone, the files read first.

The module of the same name reads /etc/hostname, the kernel's host name and the link
/etc/localtime; what is found exactly as asked is left alone, unchanged. The rest goes to
ansible.builtin.hostname (its debian strategy, hostnamectl) and community.general.timezone
with the task's values; they then decide, as tasks of their own would, and their
warnings and diffs are the task's. The stock modules ask systemd over D-Bus and resolve
the FQDN even when nothing is to be done.
Check mode: the files are read (only read), and the stock modules predict.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.alteo.hostops.plugins.plugin_utils.stock_results import pass_on

MODULE = "alteo.hostops.identity"
# each option's stock module and the options it is given besides the value as name
STOCK: dict[str, tuple[str, dict[str, str]]] = {
    "hostname": ("ansible.builtin.hostname", {"use": "debian"}),
    "timezone": ("community.general.timezone", {}),
}


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(STOCK)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        query = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
        if query.get("failed"):
            result.update(query)
            return result
        failures: list[str] = []
        for key, (stock, options) in STOCK.items():
            found: dict[str, Any] | None = query.get(key)
            if found is None:
                continue
            result[key] = found
            if found["settled"]:
                continue
            answer = self._execute_module(
                module_name=stock, module_args={"name": args[key], **options}, task_vars=task_vars
            )
            pass_on(result, answer)
            found["changed"] = bool(answer.get("changed"))
            if answer.get("ansible_facts"):
                result.setdefault("ansible_facts", {}).update(answer["ansible_facts"])
            if answer.get("failed"):
                found["failed"] = True
                failures.append(f"{key}: {answer.get('msg', 'failed')}")
        result["changed"] = any(result.get(key, {}).get("changed") for key in STOCK)
        if failures:
            result.update(failed=True, msg="; ".join(failures))
        return result
