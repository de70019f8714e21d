"""What a lab host's configuration is, to prove that a run or a request changed nothing.

Not a test module. ``fingerprint(run)`` runs one shell script on the host (``run`` takes a
command and returns its standard output: ``lab ssh`` through the CLI, or plain ssh) and
returns its sections by name; ``differences(before, after)`` names every line that came or
went, section by section, so a failing assertion says what changed.

It looks only at what a run, a request or a check-mode pass could change:

- ``files``: the content of every regular file and the target of every link under the
  trees (``/etc``, the administrators' homes, and the document roots by default);
- ``modes``: the kind, mode, owner and group of everything under those trees (a file
  made world-readable is a change, its content unchanged);
- ``packages``: the installed packages, their versions and dpkg states;
- ``accounts``: users and groups;
- ``units``: the enabled unit files (what starts at boot, the timers included);
- ``databases``: MariaDB's schemas and users, PostgreSQL's databases and roles, when the
  engine is installed (through SQL: their data files change on their own);
- ``mailboxes``: Dovecot's users, when Dovecot is installed.

What the host does on its own is left out on purpose, by rule: which units are running
(timers start oneshot services such as phpsessionclean, apt-daily, logrotate, man-db and
systemd-tmpfiles-clean at times of their own, and each SSH login of the test starts and
stops a ``user@0.service`` and a session scope), timestamps (a directory's mtime, a file's
atime), logs, caches and spools (outside the trees). Inside the trees, ``EXCLUDED`` lists
what a running service writes by itself, with the reason.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# The trees a run or a request writes its configuration and content to.
TREES = ("/etc", "/home", "/var/www")

# Paths under the trees that services write while they run, not configuration:
# a vhost's PHP sessions and logs (/var/www/DOMAIN/tmp, /var/www/DOMAIN/logs): PHP-FPM
# writes them on each request and phpsessionclean empties the sessions every 30 minutes.
EXCLUDED = ("/var/www/*/tmp", "/var/www/*/logs")

_SECTIONS = {
    "packages": "dpkg-query -W -f '${db:Status-Abbrev} ${Package}:${Architecture} ${Version}\\n'",
    "accounts": "getent passwd; getent group",
    "units": "systemctl list-unit-files --state=enabled --no-legend --no-pager",
    "databases": (
        "if command -v mariadb >/dev/null 2>&1; then"
        " mariadb -NB -e 'SELECT schema_name FROM information_schema.schemata;"
        " SELECT CONCAT(user, \"@\", host) FROM mysql.user' 2>&1; fi;"
        " if command -v psql >/dev/null 2>&1 && id postgres >/dev/null 2>&1; then"
        " (cd / && runuser -u postgres -- psql -AtX -c 'SELECT datname FROM pg_database'"
        " -c 'SELECT rolname FROM pg_roles') 2>&1; fi"
    ),
    "mailboxes": "if command -v doveadm >/dev/null 2>&1; then doveadm user '*' 2>&1; fi",
}


def script(trees: Iterable[str] = TREES, excluded: Iterable[str] = EXCLUDED) -> str:
    """The shell script that prints the sections, each line sorted the same way."""
    roots = " ".join(shlex.quote(t) for t in trees)
    prune = " -o ".join(f"-path {shlex.quote(p)}" for p in excluded) or "-false"
    find = f"find {roots} -xdev \\( {prune} \\) -prune -o"
    parts = [
        "export LC_ALL=C",
        "echo '== files'",
        f"{{ {find} -type f -print0 2>/dev/null | xargs -0 -r sha256sum 2>&1;"
        f" {find} -type l -printf '%p -> %l\\n' 2>/dev/null; }} | sort",
        "echo '== modes'",
        f"{find} -printf '%y %m %u %g %p\\n' 2>/dev/null | sort",
    ]
    for name, command in _SECTIONS.items():
        parts += [f"echo '== {name}'", f"{{ {command}; }} | sort"]
    return "\n".join(parts)


def parse(output: str) -> dict[str, list[str]]:
    """The sections of the script's output, by name."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith("== "):
            current = sections.setdefault(line[3:], [])
        elif current is not None:
            current.append(line)
    return sections


def fingerprint(
    run: Callable[[str], str],
    trees: Iterable[str] = TREES,
    excluded: Iterable[str] = EXCLUDED,
    extra: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """The host's configuration, by section. ``extra``: more sections (name: command)."""
    text = script(trees, excluded)
    for name, command in (extra or {}).items():
        text += f"\necho '== {name}'\n{{ {command}; }} 2>&1 | LC_ALL=C sort"
    sections = parse(run(text))
    missing = {"files", "modes", *_SECTIONS, *(extra or {})} - set(sections)
    if missing or not sections["files"] or not sections["packages"]:
        raise AssertionError(f"the fingerprint script did not run whole: {sorted(missing)}")
    return sections


def of_lab_host(
    cli: Callable[..., Any],
    host: str,
    trees: Iterable[str] = TREES,
    excluded: Iterable[str] = EXCLUDED,
) -> dict[str, list[str]]:
    """``fingerprint`` of the lab host HOST, reached with ``hostops lab ssh``."""
    return fingerprint(
        lambda text: str(cli("lab", "ssh", host, "--", text, check=True).stdout), trees, excluded
    )


def differences(
    before: Mapping[str, list[str]], after: Mapping[str, list[str]], limit: int = 40
) -> list[str]:
    """Every line that went (``-``) or came (``+``), as ``section: -line``; [] when equal."""
    found: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, []), after.get(name, [])
        old_set, new_set = set(old), set(new)
        found += [f"{name}: -{line}" for line in old if line not in new_set]
        found += [f"{name}: +{line}" for line in new if line not in old_set]
    return found[:limit] + ([f"... and {len(found) - limit} more"] if len(found) > limit else [])
