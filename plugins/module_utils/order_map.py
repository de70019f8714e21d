# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How an order reaches the roles: which roles it asks for, the contract's defaults the
roles start from, and the backup inputs' rule (issue 16).

``playbooks/vars/order.yml`` is the one map from an order's variables (``hostops_*``,
:data:`order_rules.ORDER_VARS`) to the roles' documented inputs; it reads this module
through the filters of ``plugins/filter/order_map.py``. The roles' own defaults read
:func:`contract_default` too, so a contract default (the dumps at 22:00, 28 days kept) is
written once, in ``order_rules``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from .order_rules import (
    DEFAULT_OS,
    MAX_RETENTION_DAYS,
    SHARED_HOSTING_RETENTION_DAYS,
    Backups,
    Stack,
    backup_path_problem,
)

# The roles of a custom managed stack (contract §4.1.1, level 4), in the order the
# playbooks apply them; MongoDB has no role (order validate refuses it).
STACK_ROLES: Final[tuple[str, ...]] = ("web", "ftp", "mariadb", "postgresql", "mail", "webmail")
DATABASE_ROLES: Final[tuple[str, ...]] = ("mariadb", "postgresql")
# Levels whose servers the provider watches for security flaws (§4.1.1): the security
# watch (debsecan) goes with the node metrics.
WATCHED_LEVELS: Final[tuple[str, ...]] = ("supervision", "plesk", "custom")

_DEFAULTS: Final[Mapping[str, object]] = {
    "backups.enabled": Backups().enabled,
    "backups.time": Backups().time,
    "backups.retention_days": Backups().retention_days,
    "backups.paths": list(Backups().paths),
    "stack.mail_profile": Stack().mail_profile,
    "os": DEFAULT_OS,
}
_CLOCK = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")


def contract_default(name: str) -> object:
    """The contract's default for the order field *name* (``backups.time``, ...)."""
    try:
        value = _DEFAULTS[name]
    except KeyError:
        raise ValueError(
            f"no contract default is named {name!r}; known: {', '.join(sorted(_DEFAULTS))}"
        ) from None
    return list(value) if isinstance(value, list) else value


def order_backups(section: object, service: object) -> dict[str, object]:
    """An order's ``backups`` section with the contract's defaults filled in (an AWX job
    may give part of it; ``hostops order apply`` gives all of it): 7 days kept for shared
    hosting, 28 otherwise (§4.6)."""
    given = section if isinstance(section, Mapping) else {}
    days = (
        SHARED_HOSTING_RETENTION_DAYS if service == "shared_hosting" else Backups().retention_days
    )
    defaults: dict[str, object] = {
        "enabled": Backups().enabled,
        "time": Backups().time,
        "retention_days": days,
        "paths": list(Backups().paths),
    }
    return {
        key: given[key] if given.get(key) is not None else default
        for key, default in defaults.items()
    }


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def order_roles(level: object, stack: object, by_hand: Iterable[str] = STACK_ROLES) -> list[str]:
    """The roles an order asks for beyond those every server gets (base, backups,
    monitoring and the firewall by level).

    *level* and *stack* are the order's ``hostops_managed_level`` and ``hostops_stack``;
    level None means no order (a playbook run by hand): then *by_hand*, the playbook's own
    part. Level custom: the stack's roles; level plesk: ``plesk``; then, at the watched
    levels (:data:`WATCHED_LEVELS`), ``security_watch``.
    """
    if level is None or level == "":
        return list(by_hand)
    watch = ["security_watch"] if level in WATCHED_LEVELS else []
    if level == "plesk":
        return ["plesk", *watch]
    if level != "custom":
        return watch
    parts = stack if isinstance(stack, Mapping) else {}
    roles = []
    if parts.get("web") is not None:
        roles.append("web")
    if _flag(parts.get("ftp")):
        roles.append("ftp")
    databases = parts.get("databases") or []
    if isinstance(databases, list | tuple):
        roles.extend(role for role in DATABASE_ROLES if role in databases)
    roles.extend(role for role in ("mail", "webmail") if _flag(parts.get(role)))
    return roles + watch


def _days_problem(value: object) -> str | None:
    if isinstance(value, bool):
        return f"{value!r} is not a number of days"
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int):
        return f"{value!r} is not a whole number of days"
    if not 1 <= value <= MAX_RETENTION_DAYS:
        return (
            f"{value} is out of range 1..{MAX_RETENTION_DAYS} "
            "(restic would read 0 as 'keep everything')"
        )
    return None


def backup_problems(inputs: Mapping[str, object]) -> list[str]:
    """What is wrong with the backup role's inputs, one line each (``NAME: WHY``).

    The same rules as an order's ``backups`` section: keys ending in ``_time`` are
    ``HH:MM`` clocks, ``*retention_days`` 1 to :data:`MAX_RETENTION_DAYS`, ``*paths`` a
    list of paths :func:`backup_path_problem` accepts.
    """
    problems = []
    for name, value in inputs.items():
        if name.endswith("_time"):
            if not (isinstance(value, str) and _CLOCK.fullmatch(value)):
                problems.append(f"{name}: {value!r} is not a time HH:MM (00:00 to 23:59)")
        elif name.endswith("retention_days"):
            why = _days_problem(value)
            if why is not None:
                problems.append(f"{name}: {why}")
        elif name.endswith("paths"):
            if isinstance(value, str) or not isinstance(value, list | tuple):
                problems.append(f"{name}: expected a list of paths, got {value!r}")
                continue
            for path in value:
                why = backup_path_problem(str(path))
                if why is not None:
                    problems.append(f"{name}: {str(path)!r} {why}")
    return problems
