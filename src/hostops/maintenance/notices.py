"""The customer notices for planned and emergency work, in French, kept as .eml files and sent.

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

Used by ``hostops maintenance announce``, ``hostops patch run --emergency``, the isolation
and bandwidth notices, mass-mail suspension and the SLA report's mailing.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from hostops.module_utils.names import is_contact_address

PARIS = ZoneInfo("Europe/Paris")
NOTICE_DAYS = 8  # §5.5: planned work is announced at least 8 calendar days before
MAX_DURATION_MINUTES = 7 * 24 * 60
DEFAULT_SENDER = "infogerance@alixans.example"
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


# A reason told to the customer (isolation, maintenance): one line of printable text,
# bounded.
MAX_REASON = 500


def check_reason(value: str | None, option: str, *, required: bool) -> tuple[str | None, list[str]]:
    text = (value or "").strip()
    if not text:
        return None, [f"{option}: required (recorded, and told to the client)"] if required else []
    if len(text) > MAX_REASON or any(ord(c) < 32 or ord(c) == 127 for c in text):
        shown = repr(text) if len(text) <= 60 else f"{text[:40]!r}..."
        return None, [f"{option}: {shown} must be one line of at most {MAX_REASON} characters"]
    return text, []


def check_contacts(contacts: Sequence[str], option: str = "--contact") -> list[str]:
    return [
        f"{option}: {contact!r} is not an email address"
        for contact in contacts
        if not is_contact_address(contact)
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
    held: str | None = None  # why it was kept unsent on purpose (--no-send)

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "file": str(self.path),
            "to": list(self.to),
            "sent": self.sent,
            "error": self.error,
        }
        if self.held:
            data["held"] = self.held
        return data

    def describe(self) -> str:
        if self.sent:
            return f"sent to {', '.join(self.to)} (copy: {self.path})"
        if self.held:
            return f"written for {', '.join(self.to)}: {self.path} (not sent: {self.held})"
        if self.error:
            return f"NOT SENT to {', '.join(self.to)} ({self.error}): forward {self.path}"
        return f"written for {', '.join(self.to)}: {self.path} (no HOSTOPS_SMTP_HOST: not sent)"


def deliver(notice: Notice, path: Path, *, send: bool = True) -> Delivery:
    """Write the notice as an .eml file, then send it if an SMTP relay is configured
    (never with ``send=False``: the operator's ``--no-send``)."""
    message = notice.message()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(message.as_bytes())
    if not send:
        return Delivery(path, notice.to, sent=False, held="--no-send")
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
