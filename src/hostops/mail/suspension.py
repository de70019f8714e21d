"""One account's sending suspended or resumed on a mail server (contract §3.1.2): the options
checked, the customer's contact found (--contact, the inventory, the order kept here),
playbooks/mail-suspend.yml run, the record kept and the customer told."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from hostops.core.errors import UsageError
from hostops.core.runner import PlaybookRun
from hostops.core.settings import new_run_dir, operator
from hostops.core.targets import CONTACT_VAR, Inventory
from hostops.maintenance import notices
from hostops.module_utils.names import mail_address_problem
from hostops.orders import fleet
from hostops.requests.verbs import check_host, resolve_inventory

PLAYBOOK = "mail-suspend.yml"
STATS_KEY = "hostops_mail_suspend"
REASON_MAX = 300
# Printable text only, and nothing a template engine would read ({ } %): the reason goes
# to Ansible as an extra variable, into a JSON record and an email.
_REASON_BAD = re.compile(r"[\x00-\x1f\x7f{}%]")


def check_reason(reason: str) -> list[str]:
    text = reason.strip()
    if not text:
        return [f"--reason: {reason!r}: empty (it is recorded and told to the customer)"]
    if len(text) > REASON_MAX:
        return [f"--reason: {text[:40]!r}...: longer than {REASON_MAX} characters"]
    if _REASON_BAD.search(text):
        return [f"--reason: {text!r}: control characters, braces and '%' are not allowed"]
    return []


def inventory_contacts(inventories: list[Path], host: str) -> list[str]:
    inventory = Inventory.open(inventories)
    found = inventory.host(host)
    if found is None:
        return []
    emails, problems = inventory.contacts(found)
    if problems:
        raise UsageError(problems)
    return emails


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
    to = list(contacts) or inventory_contacts(inventory, host) or fleet.server_contacts(host)
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
