# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Debian releases each role supports: the one table of it.

Read by the roles' preflights (``'web' | alteo.hostops.supported_releases``, in each
role's ``vars/main.yml``) and by ``hostops order validate`` (:func:`order_problems`), so
that an order the roles would refuse on its hosts is refused before any host is touched,
naming the field and the value. A role gains a release here, with the tests that show it
works there (its molecule scenario on that release), and nowhere else.
"""

from __future__ import annotations

# Debian major versions ("12" bookworm, "13" trixie) each role is tested on.
ROLE_RELEASES: dict[str, tuple[str, ...]] = {
    "backup": ("12", "13"),
    "backup_server": ("13",),  # restic's REST server is packaged from Debian 13 on
    "base": ("12", "13"),
    "fail2ban": ("12", "13"),
    "firewall": ("12", "13"),
    "ftp": ("13",),
    "mail": ("13",),
    "mariadb": ("12", "13"),
    "monitoring_agent": ("12", "13"),
    "monitoring_server": ("13",),
    "patching": ("12", "13"),
    "plesk": ("12",),  # the release Plesk's installer supports (docs/plesk.md)
    "postgresql": ("12", "13"),
    "security_watch": ("12", "13"),
    "web": ("13",),
    "webmail": ("13",),
}

# An order's os field as a Debian major version.
OS_MAJOR: dict[str, str] = {"debian12": "12", "debian13": "13"}


def supported_releases(role: str) -> list[str]:
    """The Debian major versions ROLE supports; KeyError for an unknown role."""
    return list(ROLE_RELEASES[role])


def describe(role: str) -> str:
    """'Debian 13 only' or 'Debian 12 and 13'."""
    versions = ROLE_RELEASES[role]
    if len(versions) == 1:
        return f"Debian {versions[0]} only"
    return "Debian " + " and ".join(versions)


def order_problems(os_release: str, roles: dict[str, str]) -> list[tuple[str, str]]:
    """(field, message) for each role of ROLES ({field: role}, the order's fields that
    install it) that does not support OS_RELEASE (an order's os value)."""
    major = OS_MAJOR.get(os_release)
    if major is None:
        return []
    return [
        (
            field,
            f"not available on os '{os_release}' (the {role} role supports "
            f"{describe(role)}; see README, 'Debian releases')",
        )
        for field, role in roles.items()
        if major not in ROLE_RELEASES[role]
    ]
