"""The mailbox ticket request (contract §4.1.1 level 4, §4.4) as data for the request CLI.

``hostops request mailbox --host H --address A`` creates a mailbox (on a transactional
relay, §4.5, an SMTP account) with a generated password, shown once. It is a
:class:`hostops.requests.verbs.Verb`: the framework checks the arguments with the validators
below before any host is touched (exit 2, one line per problem), generates the password,
runs ``playbooks/request-mailbox.yml`` and reads the outcome the playbook publishes with
``set_stats`` under ``hostops_request``: ``{address, created, status, message}``, also
under the host's name. An existing mailbox keeps its password (``status: exists``,
``created: false``): the generated one is then not the mailbox's and is not shown.

The playbook takes the password from the extra variable :data:`PASSWORD_VAR` (how
:mod:`hostops.requests.verbs` hands secrets over) or from the controller's environment variable
:data:`PASSWORD_ENV` (AWX, and callers that keep secrets out of extra variables).

The address rule is an allow-list, the same as the mail role's (``roles/mail/vars/main.yml``,
``__mail_local_pattern`` and ``__mail_domain_pattern``; tests/unit/requests/test_mail_requests.py
keeps the two equal): the address reaches Postfix's tables, Dovecot's passwd-file and a
directory name under /var/vmail, so nothing that could separate fields (``:``, spaces),
climb directories (``..``, ``/``) or be read by a template gets through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hostops.module_utils.names import (
    mail_address_problem,
)
from hostops.requests.verbs import HOST, Argument, Secret, Verb

PASSWORD_VAR: Final = "mail_mailbox_password"  # noqa: S105 - a name, not a password
PASSWORD_ENV: Final = "HOSTOPS_REQUEST_PASSWORD"  # noqa: S105 - a name, not a password
STATS_KEY: Final = "hostops_request"

# The rule itself is the collection's (plugins/module_utils/names.py), which the mail
# role's preflight applies too (the test alteo.hostops.mail_address).
check_address = mail_address_problem


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
