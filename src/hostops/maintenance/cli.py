"""``hostops maintenance announce``: the customer email for planned (or emergency) work.

The contract (§5.5) announces planned work affecting the service by email at least
**8 calendar days** before, with its date, start time and duration; emergencies may run
at shorter notice, the client informed as soon as possible (§4.1.3). This module builds
those emails (in French, the customers' language, times in Paris time), keeps each as
an ``.eml`` file, and sends it when an SMTP relay is configured:

* ``HOSTOPS_SMTP_HOST`` (and ``HOSTOPS_SMTP_PORT``, default 25): the relay; without it
  nothing is sent and the ``.eml`` file is what an operator forwards;
* ``HOSTOPS_MAIL_FROM``: the sender (default ``infogerance@alixans.example``).
* ``HOSTOPS_SMTP_HELO``: the name this machine greets the relay with (default: Python's
  idea of the machine's FQDN, which a relay that wants a FQDN may refuse).

``hostops patch run --emergency`` uses the same builder for its emergency notice.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from hostops.core.errors import UsageError
from hostops.core.settings import state_dir
from hostops.module_utils.maintenance_window import DEFAULT_CONFIG, check_window, parse_at

PARIS = ZoneInfo("Europe/Paris")
NOTICE_DAYS = 8  # §5.5: planned work is announced at least 8 calendar days before
MAX_DURATION_MINUTES = 7 * 24 * 60
DEFAULT_SENDER = "infogerance@alixans.example"
EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def now() -> datetime:
    """The current time (a function, so that tests can fix it)."""
    return datetime.now(UTC)


def french_date(moment: datetime) -> str:
    """``mardi 12 janvier 2027``, in Paris time."""
    local = moment.astimezone(PARIS)
    return f"{_DAYS_FR[local.weekday()]} {local.day} {_MONTHS_FR[local.month - 1]} {local.year}"


def french_duration(minutes: int) -> str:
    """``45 minutes``, ``1 heure``, ``2 heures 30``."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} minute{'s' if rest > 1 else ''}"
    text = f"{hours} heure{'s' if hours > 1 else ''}"
    return f"{text} {rest:02d}" if rest else text


def calendar_days_until(start: datetime, reference: datetime) -> int:
    """Calendar days from ``reference`` to ``start``, both read as Paris dates."""
    return (start.astimezone(PARIS).date() - reference.astimezone(PARIS).date()).days


def check_contacts(contacts: Sequence[str], option: str = "--contact") -> list[str]:
    return [
        f"{option}: {contact!r} is not an email address"
        for contact in contacts
        if not EMAIL.fullmatch(contact)
    ]


@dataclass(frozen=True)
class Notice:
    """One email to one customer contact."""

    to: tuple[str, ...]
    subject: str
    body: str
    # (file name, MIME type, content): the report's PNG and JSON, the note's JSON
    attachments: tuple[tuple[str, str, bytes], ...] = ()

    def message(self, sent_at: datetime | None = None) -> EmailMessage:
        sender = os.environ.get("HOSTOPS_MAIL_FROM", DEFAULT_SENDER)
        message = EmailMessage(policy=SMTP)
        message["From"] = sender
        message["To"] = ", ".join(self.to)
        message["Subject"] = self.subject
        message["Date"] = format_datetime((sent_at or now()).astimezone(PARIS))
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content(self.body)
        for name, mime, content in self.attachments:
            maintype, subtype = mime.split("/", 1)
            message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
        return message


@dataclass(frozen=True)
class Delivery:
    """What became of a notice: the file kept, and whether it was sent."""

    path: Path
    to: tuple[str, ...]
    sent: bool
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"file": str(self.path), "to": list(self.to), "sent": self.sent, "error": self.error}

    def describe(self) -> str:
        if self.sent:
            return f"sent to {', '.join(self.to)} (copy: {self.path})"
        if self.error:
            return f"NOT SENT to {', '.join(self.to)} ({self.error}): forward {self.path}"
        return f"written for {', '.join(self.to)}: {self.path} (no HOSTOPS_SMTP_HOST: not sent)"


def deliver(notice: Notice, path: Path) -> Delivery:
    """Write the notice as an .eml file, then send it if an SMTP relay is configured."""
    message = notice.message()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(message.as_bytes())
    host = os.environ.get("HOSTOPS_SMTP_HOST")
    if not host:
        return Delivery(path, notice.to, sent=False)
    port = int(os.environ.get("HOSTOPS_SMTP_PORT", "25"))
    try:
        helo = os.environ.get("HOSTOPS_SMTP_HELO") or None
        with smtplib.SMTP(host, port, timeout=30, local_hostname=helo) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as err:
        return Delivery(path, notice.to, sent=False, error=f"{host}:{port}: {err}")
    return Delivery(path, notice.to, sent=True)


def planned_notice(
    *,
    to: Sequence[str],
    hosts: Sequence[str],
    start: datetime,
    duration_minutes: int,
    emergency: bool,
    reason: str | None = None,
) -> Notice:
    """The announcement of maintenance starting at ``start`` for ``duration_minutes``."""
    local = start.astimezone(PARIS)
    end = (start + timedelta(minutes=duration_minutes)).astimezone(PARIS)
    kind = "Intervention d'urgence" if emergency else "Maintenance planifiée"
    subject = f"{kind} le {french_date(local)} à {local:%H:%M} (heure de Paris)"
    lines = [
        "Bonjour,",
        "",
        (
            "Une intervention d'urgence est nécessaire sur vos serveurs."
            if emergency
            else "Nous vous informons d'une opération de maintenance planifiée sur vos serveurs."
        ),
        "",
        f"Date : {french_date(local)}",
        f"Heure de début : {local:%H:%M} (heure de Paris)",
        f"Durée prévue : {french_duration(duration_minutes)} (fin prévue vers {end:%H:%M})",
        f"Serveurs concernés : {', '.join(hosts)}",
    ]
    if reason:
        lines.append(f"Motif : {reason}")
    lines += [
        "",
        "Le service peut être interrompu pendant cette période. Cette interruption planifiée",
        "n'est pas décomptée de la disponibilité garantie (article 5 des conditions",
        "particulières).",
        "",
        "Pour toute question, répondez à ce message ou ouvrez un ticket.",
        "",
        "L'équipe infogérance Alixans",
    ]
    return Notice(tuple(to), subject, "\n".join(lines) + "\n")


def emergency_patch_notice(
    *, to: Sequence[str], hosts: Sequence[str], started: datetime, reason: str
) -> Notice:
    """The notice of an emergency patch run outside the maintenance window (§4.1.3)."""
    local = started.astimezone(PARIS)
    subject = f"Intervention d'urgence en cours le {french_date(local)} à {local:%H:%M}"
    body = "\n".join(
        [
            "Bonjour,",
            "",
            "Nous appliquons en urgence des mises à jour sur vos serveurs, en dehors de la plage",
            "de maintenance habituelle (jours ouvrés, de 9 h à 16 h, heure de Paris).",
            "",
            f"Début : {french_date(local)} à {local:%H:%M} (heure de Paris)",
            f"Serveurs concernés : {', '.join(hosts)}",
            f"Motif : {reason}",
            "",
            "Seules les mises à jour mineures sont appliquées ; les mises à jour majeures restent",
            "planifiées avec vous. Les services concernés peuvent être redémarrés brièvement.",
            "Nous vous enverrons le compte rendu de l'intervention.",
            "",
            "L'équipe infogérance Alixans",
        ]
    )
    return Notice(tuple(to), subject, body + "\n")


# -- the command ----------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hostops maintenance announce``."""
    maintenance = subparsers.add_parser(
        "maintenance", help="announce planned maintenance to customers (§5.5)"
    )
    verbs = maintenance.add_subparsers(dest="maintenance_command", metavar="VERB", required=True)
    announce = verbs.add_parser(
        "announce",
        help="build (and send) the customer email for planned work",
        description="Planned work is announced at least 8 calendar days before its start "
        "(contract §5.5), with its date, start time (Paris) and duration; --emergency "
        "allows shorter notice. The email is kept as an .eml file and sent when "
        "HOSTOPS_SMTP_HOST names an SMTP relay.",
    )
    announce.add_argument(
        "--hosts",
        nargs="+",
        required=True,
        metavar="HOST",
        help="the servers concerned (space or comma separated)",
    )
    announce.add_argument(
        "--start", required=True, metavar="ISO8601", help="start, with a UTC offset or Z"
    )
    announce.add_argument(
        "--duration", required=True, type=int, metavar="MINUTES", help="expected duration"
    )
    announce.add_argument(
        "--contact",
        action="append",
        default=[],
        metavar="EMAIL",
        help="the customer contact to write to (repeatable; required)",
    )
    announce.add_argument(
        "--emergency", action="store_true", help="urgent work: less than 8 days' notice"
    )
    announce.add_argument("--reason", metavar="TEXT", help="why (required with --emergency)")
    announce.set_defaults(func=cmd_announce)


def cmd_announce(args: argparse.Namespace) -> int:
    hosts = [name for value in args.hosts for name in value.split(",") if name.strip()]
    problems = check_contacts(args.contact)
    if not args.contact:
        problems.append("--contact: required: the customer contact to write to")
    if not hosts:
        problems.append("--hosts: no host named")
    if not 0 < args.duration <= MAX_DURATION_MINUTES:
        problems.append(f"--duration: {args.duration} is not 1..{MAX_DURATION_MINUTES} minutes")
    if args.emergency and not (args.reason or "").strip():
        problems.append("--reason: required with --emergency (the client is told why)")
    reference = now()
    try:
        start = parse_at(args.start)
    except ValueError as err:
        problems.append(f"--start: {err}")
    else:
        days = calendar_days_until(start, reference)
        if start <= reference:
            problems.append(f"--start: {args.start} is in the past")
        elif days < NOTICE_DAYS and not args.emergency:
            problems.append(
                f"--start: {args.start} is {days} calendar day(s) away; planned work is "
                f"announced at least {NOTICE_DAYS} calendar days before (contract §5.5): "
                f"start on {(reference.astimezone(PARIS) + timedelta(days=NOTICE_DAYS)):%Y-%m-%d} "
                "or later, or use --emergency with --reason"
            )
    if problems:
        raise UsageError(problems)

    notice = planned_notice(
        to=args.contact,
        hosts=hosts,
        start=start,
        duration_minutes=args.duration,
        emergency=args.emergency,
        reason=(args.reason or "").strip() or None,
    )
    stamp = reference.strftime("%Y%m%dT%H%M%S%fZ")
    folder = state_dir() / "maintenance" / stamp
    delivery = deliver(notice, folder / "announce.eml")
    window = check_window(start, DEFAULT_CONFIG)
    record = {
        "announced_at": reference.astimezone(PARIS).isoformat(timespec="seconds"),
        "start": start.astimezone(PARIS).isoformat(timespec="minutes"),
        "duration_minutes": args.duration,
        "hosts": hosts,
        "emergency": args.emergency,
        "reason": (args.reason or "").strip() or None,
        "notice_days": calendar_days_until(start, reference),
        "start_in_window": window.open,
        "notice": delivery.as_dict(),
    }
    (folder / "announce.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(notice.subject)
    print(f"notice {delivery.describe()}")
    if not window.open:
        print(
            f"note: the start is outside the maintenance window ({window.reason}); "
            "the contract runs maintenance on working days and hours"
        )
    return 1 if delivery.error else 0
