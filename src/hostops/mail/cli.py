"""``hostops mail suspend | resume``: one account's sending stopped and restored (§3.1.2).

Spam is forbidden by the contract and mass sending may get an account's mail suspended.
The mail servers publish each account's outgoing mail over the last hour
(``hostops_mail_sent_messages``, the mail role's sending metrics) and the monitoring
server alerts above its threshold (``MailMassSending``); ops then decide:

* ``hostops mail suspend --host H --address A --reason TEXT`` lists the account in the
  server's suspension table: Postfix's submission service refuses its mail, nothing of it
  is queued; the account still logs in, receives mail and reads it over IMAP;
* ``hostops mail resume --host H --address A`` removes it from the table.

What a suspension does, records and tells is :mod:`hostops.mail.suspension`.
"""

from __future__ import annotations

import argparse

from hostops.core.options import add_inventory_or_lab
from hostops.mail.suspension import REASON_MAX, run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hostops mail suspend`` and ``hostops mail resume``."""
    mail = subparsers.add_parser(
        "mail", help="suspend or resume an account's outgoing mail (§3.1.2, mass sending)"
    )
    verbs = mail.add_subparsers(dest="mail_command", metavar="VERB", required=True)
    suspend = verbs.add_parser(
        "suspend",
        help="stop an account's sending (submission refused); the customer is emailed",
        description="Stop an account's sending: its mail submitted on 587 is refused "
        "(554 5.7.1 at RCPT TO); receiving and IMAP go on. Records who, when and why, "
        "and emails the customer's contact (HOSTOPS_SMTP_HOST).",
    )
    resume = verbs.add_parser(
        "resume",
        help="let a suspended account send again; the customer is emailed",
        description="Remove an account from the suspension table: it sends again.",
    )
    for parser, state in ((suspend, "suspended"), (resume, "active")):
        parser.add_argument("--host", required=True, metavar="H", help="the mail server")
        parser.add_argument(
            "--address", required=True, metavar="A", help="the account, LOCAL@DOMAIN"
        )
        if state == "suspended":
            parser.add_argument(
                "--reason",
                required=True,
                metavar="TEXT",
                help=f"why (recorded, told to the customer; {REASON_MAX} characters at most)",
            )
        parser.add_argument(
            "--contact",
            action="append",
            default=[],
            metavar="EMAIL",
            help="the customer's contact to email (default: the host's hostops_customer_email, "
            "or its order's contact)",
        )
        parser.add_argument(
            "--no-send", action="store_true", help="write the email, do not send it"
        )
        add_inventory_or_lab(
            parser,
            inventory_help="the operator's inventory holding the host (repeatable)",
            lab_help="the host is a lab host (inventories/lab/hosts.yml)",
        )
        parser.add_argument(
            "--check", action="store_true", help="predict the changes, change nothing"
        )
        parser.set_defaults(func=cmd_mail, mail_state=state)


def cmd_mail(args: argparse.Namespace) -> int:
    return run(
        state=args.mail_state,
        host=args.host,
        address=args.address,
        reason=getattr(args, "reason", None),
        contacts=args.contact,
        no_send=args.no_send,
        lab=args.lab,
        inventories=args.inventory,
        check=args.check,
    )


