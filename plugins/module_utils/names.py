"""Names in ticket requests (databases, database users): checked before anything runs.

A name reaches SQL statements, configuration files and shells on the client's server, so
it is held to an allow-list, never cleaned up: lowercase ASCII letters, digits and the
underscore, a letter first (``^[a-z][a-z0-9_]*$``). Nothing that could quote, comment,
escape or look like another letter (Cyrillic U+0430 for ``a``, fullwidth letters, a
trailing newline) gets through, and the engines' limits are enforced rather than left to silent
truncation:

* MariaDB: database names up to 64 characters (the identifier limit). User names up to
  32: MariaDB 10.6 and later (Debian 12 ships 10.11, Debian 13 11.8) accept 80, but
  MySQL, which the Plesk back end of the same requests may run, stops at 32; a name that
  works on one back end works on the other.
* PostgreSQL: 63 bytes (NAMEDATALEN - 1) for databases and roles alike. PostgreSQL
  truncates longer names with a mere notice, so two long names sharing their first 63
  bytes would silently be the same object; they are refused instead. The names are
  ASCII, so bytes and characters count the same.

Reserved names are refused for both engines and both kinds, so that a name valid on
one engine is valid on the other: the engines' own databases and accounts, the ``test``
database that the MariaDB role removes, and the words PostgreSQL or pg_hba.conf give a
meaning to (``public``, ``all``, ``samerole``, ...). In PostgreSQL a database's owner
role carries the database's name (the access rule ``samerole`` relies on it, see
roles/postgresql), so role-name rules such as the reserved ``pg_`` prefix apply to
database names too.

The same rules are enforced again inside the roles' request entry points (for runs that
do not come through this command, such as AWX); tests/unit/collection/test_names.py keeps
the two copies equal.

Each function returns problems as ``ARG: VALUE: REASON`` lines for
:class:`problems.InputProblems` (the CLI's ``UsageError``), an empty list when the value
is acceptable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal

Engine = Literal["mariadb", "postgresql"]
Kind = Literal["database", "user"]

ENGINES: Final[tuple[Engine, ...]] = ("mariadb", "postgresql")
NAME_RULE: Final = "^[a-z][a-z0-9_]*$"
# fullmatch, never match with "$": "$" also matches before a final newline.
NAME_PATTERN: Final = re.compile(r"[a-z][a-z0-9_]*")

MAX_LENGTH: Final[Mapping[tuple[Engine, Kind], int]] = {
    ("mariadb", "database"): 64,
    ("mariadb", "user"): 32,
    ("postgresql", "database"): 63,
    ("postgresql", "user"): 63,
}

RESERVED_NAMES: Final = frozenset(
    {
        # MariaDB's own databases, accounts and the test database the role removes
        "information_schema",
        "mysql",
        "performance_schema",
        "sys",
        "test",
        "root",
        # PostgreSQL's own databases and superuser
        "postgres",
        "template0",
        "template1",
        # words with a meaning in role specifications, grants and pg_hba.conf
        "public",
        "none",
        "all",
        "replication",
        "samerole",
        "samegroup",
        "sameuser",
        "current_role",
        "current_user",
        "session_user",
        "user",
    }
)
# PostgreSQL refuses role names starting with pg_ (they are its predefined roles).
RESERVED_PREFIXES: Final[tuple[str, ...]] = ("pg_",)

_SHOWN_MAX = 70

# -- Domain names and mail addresses: the one rule for orders, requests and the roles
# (the roles read it through the tests alteo.hostops.domain_name and mail_address).
# Anchored with "^" and "\\Z", never "$" (which also matches before a final newline).
# Domain: RFC 1123 host name, lowercase, two labels at least, the last one a letter first.
DOMAIN_PATTERN: Final = (
    r"^(?=.{4,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]\Z"
)
# Local part: lowercase letters, digits, '.', '_', '-'; a letter or digit first; no '..',
# no final '.'; 64 at most (RFC 5321). No '+': it is the recipient delimiter
# (alice+news@ is delivered to alice@).
LOCAL_PATTERN: Final = r"^(?=.{1,64}\Z)[a-z0-9]([a-z0-9_-]|\.(?!\.))*(?<!\.)\Z"
MAX_ADDRESS_LENGTH: Final = 254  # RFC 5321's path limit, less the angle brackets
# Addresses every domain needs for itself (RFC 2142, RFC 5321) or that name daemons.
RESERVED_LOCALS: Final = frozenset({"postmaster", "abuse", "root", "mailer-daemon"})
_DOMAIN_RE: Final = re.compile(DOMAIN_PATTERN)
_LOCAL_RE: Final = re.compile(LOCAL_PATTERN)


def is_domain_name(value: str) -> bool:
    """A lowercase domain (or host) name: labels of a-z, 0-9 and '-', two at least."""
    return bool(_DOMAIN_RE.match(value))


def mail_address_problem(value: str) -> str | None:
    """The problem with a mailbox address, or None: LOCAL@DOMAIN, lowercase, allow-listed."""
    if len(value) > MAX_ADDRESS_LENGTH:
        return f"longer than {MAX_ADDRESS_LENGTH} characters"
    if value.count("@") != 1:
        return "not LOCAL@DOMAIN (exactly one '@')"
    local, domain = value.split("@")
    if not _LOCAL_RE.match(local):
        return (
            f"local part {local!r} is not 1 to 64 lowercase letters, digits, '.', '_', '-' "
            "(a letter or digit first, no '..', no final '.')"
        )
    if local in RESERVED_LOCALS:
        return f"local part {local!r} is reserved ({', '.join(sorted(RESERVED_LOCALS))})"
    if not is_domain_name(domain):
        return f"domain {domain!r} is not a lowercase domain name (labels of a-z, 0-9, '-')"
    return None


# A customer's contact address (orders, inventories, --contact): anything a mail system
# delivers to, upper case and '+' included; not the stricter rule of the mailboxes we make.
CONTACT_ADDRESS: Final = re.compile(
    r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def is_contact_address(value: str) -> bool:
    """An email address a customer's contact may have (at most 254 characters)."""
    return len(value) <= MAX_ADDRESS_LENGTH and bool(CONTACT_ADDRESS.fullmatch(value))


def show(value: str) -> str:
    """A name as a message shows it: quoted, non-ASCII escaped (look-alikes show), clipped."""
    text = ascii(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 4] + "...'"


def engine_problems(engine: str, arg: str = "--engine") -> list[str]:
    """Problems with a database engine's name: one of :data:`ENGINES`."""
    if engine in ENGINES:
        return []
    return [f"{arg}: {show(engine)}: must be one of {', '.join(ENGINES)}"]


def database_name_problems(engine: str, name: str, arg: str = "--name") -> list[str]:
    """Problems with a database name on ``engine`` (its length is checked when the engine
    is known; :func:`engine_problems` reports an unknown one)."""
    return _name_problems(engine, "database", name, arg)


def user_name_problems(engine: str, name: str, arg: str = "--user") -> list[str]:
    """Problems with a database user name on ``engine``."""
    return _name_problems(engine, "user", name, arg)


def _name_problems(engine: str, kind: Kind, name: str, arg: str) -> list[str]:
    shown = show(name)
    if not name:
        return [f"{arg}: {shown}: a {kind} name is required"]
    problems = []
    if not NAME_PATTERN.fullmatch(name):
        problems.append(
            f"{arg}: {shown}: must match {NAME_RULE} "
            "(lowercase ASCII letters, digits and _, starting with a letter)"
        )
    limit = MAX_LENGTH.get((engine, kind), 0) if engine in ENGINES else 0
    size = len(name.encode("utf-8"))
    if limit and size > limit:
        problems.append(
            f"{arg}: {shown}: {size} bytes long; {engine} {kind} names are at most {limit}"
        )
    if name in RESERVED_NAMES:
        problems.append(f"{arg}: {shown}: reserved name")
    elif name.startswith(RESERVED_PREFIXES):
        prefixes = ", ".join(RESERVED_PREFIXES)
        problems.append(f"{arg}: {shown}: names starting with {prefixes} are reserved")
    return problems
