"""``hostops request VERB``: the ticket requests of a managed server (§4.1.1): custom or Plesk.

The verbs and their arguments are declared as data (:class:`hostops.requests.verbs.Verb`):
the framework's own (vhost, ftp-account, and the database verbs of
:mod:`hostops.requests.database`) and those of the modules named in ``VERB_MODULES``. This
module only turns each into a sub-command with the options every request shares.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from hostops.core.options import add_inventory_or_lab
from hostops.requests.verbs import Verb, run_request

# Modules exposing VERBS, a tuple of hostops.requests.verbs.Verb; a new kind of request adds
# its module here.
VERB_MODULES: tuple[str, ...] = ("hostops.requests.verbs", "hostops.requests.mail")


def all_verbs() -> tuple[Verb, ...]:
    verbs: list[Verb] = []
    for name in VERB_MODULES:
        verbs += importlib.import_module(name).VERBS
    return tuple(verbs)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    request = subparsers.add_parser(
        "request", help="ticket requests: vhost, FTP account, database, database user"
    )
    verbs = request.add_subparsers(dest="request_verb", metavar="VERB", required=True)
    for verb in all_verbs():
        parser = verbs.add_parser(verb.name, help=verb.help, description=verb.help)
        for argument in verb.arguments:
            parser.add_argument(
                argument.flag,
                dest=argument.dest,
                metavar=argument.metavar,
                required=argument.required,
                help=argument.help + ("" if argument.required else " (optional)"),
            )
        add_inventory_or_lab(
            parser,
            inventory_help="the operator's inventory holding the host (repeatable)",
            lab_help="the host is a lab host (inventories/lab/hosts.yml)",
        )
        if verb.secrets():
            parser.add_argument(
                "--vault-file",
                type=Path,
                metavar="PATH",
                help="store the generated password in this Ansible Vault file "
                "(default: show it once, store it nowhere)",
            )
            parser.add_argument(
                "--vault-password-file",
                type=Path,
                metavar="FILE",
                help="the vault's password file (default: $ANSIBLE_VAULT_PASSWORD_FILE)",
            )
        parser.add_argument(
            "--check", action="store_true", help="predict the changes, change nothing"
        )
        parser.set_defaults(func=cmd_request, request=verb)


def cmd_request(args: argparse.Namespace) -> int:
    verb: Verb = args.request
    raw = {argument.dest: getattr(args, argument.dest) for argument in verb.arguments}
    return run_request(
        verb,
        raw,
        lab=args.lab,
        inventories=args.inventory,
        vault_file=getattr(args, "vault_file", None),
        vault_password=getattr(args, "vault_password_file", None),
        check=args.check,
    )
