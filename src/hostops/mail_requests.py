"""The mailbox ticket request (contract §4.1.1 level 4, §4.4) as data for the request CLI.

``hostops request mailbox --host H --address A`` creates a mailbox (on a transactional
relay, §4.5, an SMTP account) with a generated password, shown once. It is a
:class:`hostops.requests.Verb`: the framework checks the arguments with the validators
below before any host is touched (exit 2, one line per problem), generates the password,
runs ``playbooks/request-mailbox.yml`` and reads the outcome the playbook publishes with
``set_stats`` under ``hostops_request``: ``{address, created, status, message}``, also
under the host's name. An existing mailbox keeps its password (``status: exists``,
``created: false``): the generated one is then not the mailbox's and is not shown.

The playbook takes the password from the extra variable :data:`PASSWORD_VAR` (how
:mod:`hostops.requests` hands secrets over) or from the controller's environment variable
:data:`PASSWORD_ENV` (AWX, and callers that keep secrets out of extra variables).

The address rule is an allow-list, the same as the mail role's (``roles/mail/vars/main.yml``,
``__mail_local_pattern`` and ``__mail_domain_pattern``; tests/unit/test_mail_requests.py
keeps the two equal): the address reaches Postfix's tables, Dovecot's passwd-file and a
directory name under /var/vmail, so nothing that could separate fields (``:``, spaces),
climb directories (``..``, ``/``) or be read by a template gets through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from hostops.requests import HOST, Argument, Secret, Verb

PASSWORD_VAR: Final = "mail_mailbox_password"  # noqa: S105 - a name, not a password
PASSWORD_ENV: Final = "HOSTOPS_REQUEST_PASSWORD"  # noqa: S105 - a name, not a password
STATS_KEY: Final = "hostops_request"

MAX_ADDRESS_LENGTH: Final = 254  # RFC 5321's path limit, less the angle brackets
# Anchored with "^" and "\\Z", never "$" (which also matches before a final newline), so
# that re.match here and Jinja's 'match' in the role read them alike.
# Local part: lowercase letters, digits, '.', '_', '-'; a letter or digit first; no '..',
# no final '.'; 64 at most (RFC 5321). No '+': it is the recipient delimiter
# (alice+news@ is delivered to alice@).
LOCAL_PATTERN: Final = r"^(?=.{1,64}\Z)[a-z0-9]([a-z0-9_-]|\.(?!\.))*(?<!\.)\Z"
# Domain: RFC 1123 host name, lowercase, two labels at least, the last one not numeric.
DOMAIN_PATTERN: Final = (
    r"^(?=.{4,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]\Z"
)
_LOCAL_RE: Final = re.compile(LOCAL_PATTERN)
_DOMAIN_RE: Final = re.compile(DOMAIN_PATTERN)
# Addresses every domain needs for itself (RFC 2142, RFC 5321) or that name daemons.
RESERVED_LOCALS: Final = frozenset({"postmaster", "abuse", "root", "mailer-daemon"})


def check_address(value: str) -> str | None:
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
    if not _DOMAIN_RE.match(domain):
        return f"domain {domain!r} is not a lowercase domain name (labels of a-z, 0-9, '-')"
    return None


def _variables(args: Mapping[str, str]) -> dict[str, Any]:
    return {"request_address": args["address"]}


MAILBOX: Final = Verb(
    name="mailbox",
    help="add a mailbox (an SMTP account on a transactional relay); its password is shown once",
    playbook="request-mailbox.yml",
    arguments=(
        HOST,
        Argument(
            "--address",
            "the mailbox's address, LOCAL@DOMAIN in lowercase (the domain is added to the "
            "server's mail domains)",
            check_address,
            metavar="A",
        ),
    ),
    variables=_variables,
    describe=lambda args: f"mailbox {args['address']}",
    secret=Secret(
        var=PASSWORD_VAR,
        vault_path=lambda args: (args["host"], "mailboxes", args["address"]),
    ),
)

VERBS: Final[tuple[Verb, ...]] = (MAILBOX,)
