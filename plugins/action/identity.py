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
from ansible_collections.alteo.hostops.plugins.plugin_utils.stock_results import StockRuns

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
        runs = StockRuns(self, task_vars, super().run(tmp, task_vars))
        args = dict(self._task.args)
        query = runs.read(MODULE, args)
        if query is None:
            return runs.result
        found = {key: query[key] for key in STOCK if query.get(key) is not None}
        for key, entry in found.items():
            if entry["settled"]:
                continue
            stock, options = STOCK[key]
            answer = runs.run(entry, key, stock, {"name": args[key], **options})
            if answer.get("ansible_facts"):
                runs.result.setdefault("ansible_facts", {}).update(answer["ansible_facts"])
        return runs.finish(any(entry["changed"] for entry in found.values()), **found)
