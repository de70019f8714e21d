"""``hostops mail suspend | resume``: one account's sending stopped and restored (§3.1.2).

Spam is forbidden by the contract and mass sending may get an account's mail suspended.
The mail servers publish each account's outgoing mail over the last hour
(``hostops_mail_sent_messages``, the mail role's sending metrics) and the monitoring
server alerts above its threshold (``MailMassSending``); ops then decide:

* ``hostops mail suspend --host H --address A --reason TEXT`` lists the account in the
  server's suspension table: Postfix's submission service refuses its mail (every
  ``RCPT TO`` answered ``554 5.7.1 ... suspended``), nothing of it is queued; the account
  still logs in, receives mail and reads it over IMAP. Who, when and why are kept on the
  server (``/var/lib/hostops/mail-suspensions/A.json``) and here, in
  ``<state>/mail-suspensions/H/<time>-suspend/record.json``; the customer's contact is
  emailed (the ``.eml`` is kept there; ``--no-send`` skips it);
* ``hostops mail resume --host H --address A`` removes it from the table: the account
  sends again; recorded and emailed the same way.

The contact is ``--contact EMAIL``, else the host's ``hostops_customer_email`` in the
inventory, else the contact of the delivered order whose servers include the host.
Every option is checked before any host is touched (exit 2 naming the option and the
value).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from hostops.core.errors import UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.runner import PlaybookRun
from hostops.core.settings import new_run_dir, operator, state_dir
from hostops.core.targets import Inventory
from hostops.maintenance import notices
from hostops.module_utils.names import mail_address_problem
from hostops.requests.verbs import check_host, resolve_inventory

PLAYBOOK = "mail-suspend.yml"
CONTACT_VAR = "hostops_customer_email"
STATS_KEY = "hostops_mail_suspend"
REASON_MAX = 300
# Printable text only, and nothing a template engine would read ({ } %): the reason goes
# to Ansible as an extra variable, into a JSON record and an email.
_REASON_BAD = re.compile(r"[\x00-\x1f\x7f{}%]")


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


def check_reason(reason: str) -> list[str]:
    text = reason.strip()
    if not text:
        return [f"--reason: {reason!r}: empty (it is recorded and told to the customer)"]
    if len(text) > REASON_MAX:
        return [f"--reason: {text[:40]!r}...: longer than {REASON_MAX} characters"]
    if _REASON_BAD.search(text):
        return [f"--reason: {text!r}: control characters, braces and '%' are not allowed"]
    return []


def order_contacts(host: str) -> list[str]:
    """The contact of each delivered order whose servers include HOST (state directory)."""
    found: list[str] = []
    root = state_dir() / "orders"
    for path in sorted(root.glob("*/order.json")) if root.is_dir() else []:
        try:
            order = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        names = {str(s.get("hostname")) for s in order.get("hostops_servers") or []}
        email = ((order.get("hostops_customer") or {}).get("contact") or {}).get("email")
        if host in names and isinstance(email, str) and email not in found:
            found.append(email)
    return found


def inventory_contacts(inventories: list[Path], host: str) -> list[str]:
    inventory = Inventory.open(inventories)
    found = inventory.host(host)
    if found is None:
        return []
    value = inventory.host_vars(found).get(CONTACT_VAR)
    values = [value] if isinstance(value, str) else list(value or [])
    bad = [v for v in values if not notices.EMAIL.fullmatch(str(v))]
    if bad:
        raise UsageError(f"{host}: {CONTACT_VAR} {bad[0]!r} is not an email address")
    return [str(v) for v in values]


def notice(*, to: list[str], host: str, address: str, state: str, reason: str) -> notices.Notice:
    now = notices.now()
    when = f"{notices.french_date(now)} à {now:%H:%M} (heure de Paris)"
    if state == "suspended":
        subject = f"Envoi de courriel suspendu pour {address}"
        lines = [
            "Bonjour,",
            "",
            f"L'envoi de courriel du compte {address} (serveur {host}) est suspendu depuis le "
            f"{when}.",
            f"Motif : {reason}",
            "",
            "Les conditions générales interdisent l'envoi de courriels non sollicités (spam) ;",
            "un envoi massif peut entraîner la suspension de l'envoi (article 3.1.2). Le compte",
            "continue de recevoir ses messages et de les consulter ; seul l'envoi est refusé.",
            "",
            "Pour rétablir l'envoi, répondez à ce message ou ouvrez un ticket en nous",
            "indiquant la cause (compte compromis, mot de passe changé, envoi légitime)",
            "et les mesures prises.",
        ]
    else:
        subject = f"Envoi de courriel rétabli pour {address}"
        lines = [
            "Bonjour,",
            "",
            f"L'envoi de courriel du compte {address} (serveur {host}) est rétabli depuis le "
            f"{when}.",
        ]
    lines += ["", "L'équipe infogérance Alixans"]
    return notices.Notice(tuple(to), subject, "\n".join(lines) + "\n")


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


def run(
    *,
    state: str,
    host: str,
    address: str,
    reason: str | None,
    contacts: list[str],
    no_send: bool,
    lab: bool,
    inventories: list[Path],
    check: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Suspend (state ``suspended``) or resume (``active``) ADDRESS on HOST."""
    problems = []
    host_problem = check_host(host)
    if host_problem:
        problems.append(f"--host: {host!r}: {host_problem}")
    address_problem = mail_address_problem(address)
    if address_problem:
        problems.append(f"--address: {address!r}: {address_problem}")
    if state == "suspended":
        problems += check_reason(reason or "")
    problems += notices.check_contacts(contacts)
    if problems:
        raise UsageError(problems)
    reason = (reason or "").strip()
    if lab:
        from hostops.lab.nspawn import lab_host_name  # noqa: PLC0415 - lab only

        host = lab_host_name(host)
    inventory = resolve_inventory(host, lab=lab, inventories=inventories)
    to = list(contacts) or inventory_contacts(inventory, host) or order_contacts(host)
    if not to and not no_send:
        raise UsageError(
            f"--contact: {host} has no customer contact ({CONTACT_VAR} in the inventory, "
            "or a delivered order); give --contact EMAIL, or --no-send"
        )
    verb = "suspend" if state == "suspended" else "resume"
    moment = datetime.now(UTC).astimezone(notices.PARIS).isoformat(timespec="seconds")
    mode = "check mode, nothing is changed" if check else "applying"
    print(f"mail {verb} {address} on {host} ({mode})", file=out)
    run_dir = new_run_dir("mail-suspensions", host, kind=verb)
    record: dict[str, Any] = {
        "action": verb,
        "host": host,
        "address": address,
        "reason": reason or None,
        "by": operator(),
        "at": moment,
        "check": check,
        "contacts": to,
    }
    result = PlaybookRun(
        playbook=PLAYBOOK,
        inventory=inventory,
        run_dir=run_dir / "runner",
        extravars={
            "hostops_request_host": host,
            "mail_suspend_address": address,
            "hostops_mail_suspend_state": state,
            "hostops_mail_suspend_reason": reason,
            "hostops_mail_suspend_by": record["by"],
            "hostops_mail_suspend_at": moment,
        },
        limit=host,
        check=check,
        out=out,
    ).execute()
    print("", file=out)
    print(result.summary_table(), file=out)
    details = dict((result.artifacts.get(STATS_KEY) or {}).get(host) or {})
    record["status"] = str(details.get("status") or ("failed" if not result.ok else "unknown"))
    record["record_on_host"] = details.get("record") or None
    record["changed"] = result.changed
    if not result.ok:
        _write(run_dir / "record.json", record)
        result.report(out, f"mail {verb} {address} on {host}", run_dir, table=False)
        return 1
    status = record["status"].strip()
    if check:
        _write(run_dir / "record.json", record)
        print(
            f"mail {verb} {address} on {host}: check mode predicts {result.changed} "
            f"change(s) ({status})",
            file=out,
        )
        return 0
    if status in ("suspended", "resumed") and to:
        delivery = notices.deliver(
            notice(to=to, host=host, address=address, state=state, reason=reason),
            run_dir / "notice.eml",
            send=not no_send,
        )
        record["notice"] = delivery.as_dict()
        print(f"notice {delivery.describe()}", file=out)
    _write(run_dir / "record.json", record)
    print(
        f"mail {verb} {address} on {host}: {status}, {result.changed} change(s) "
        f"(record: {run_dir / 'record.json'})",
        file=out,
    )
    return 0


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
