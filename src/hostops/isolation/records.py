"""What an isolation or a bandwidth cap leaves behind and tells: the events log and current
state in the state directory (``<state>/isolation/HOST/``, ``<state>/bandwidth/HOST/``), the
customer notices (isolated, reconnected, the 72 hours' notice of §3.2.4) and their
delivery (``--no-send`` keeps the .eml only)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from hostops.core.settings import state_dir
from hostops.maintenance.notices import PARIS, Notice, deliver, french_date

NOTICE_HOURS = 72  # §3.2.4: bandwidth above the cap is throttled after 72 hours' notice


def append_event(folder: Path, event: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (folder / "events.jsonl").open("a") as log:
        log.write(json.dumps(event, ensure_ascii=False) + "\n")


def paris_time(moment: datetime) -> str:
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def deliver_notice(notice: Notice, path: Path, no_send: bool) -> dict[str, Any]:
    delivery = deliver(notice, path, send=not no_send)
    return {**delivery.as_dict(), "describe": delivery.describe()}


def isolation_notice(
    to: list[str], host: str, moment: datetime, reason: str | None, *, isolate: bool
) -> Notice:
    local = moment.astimezone(PARIS)
    when = f"{french_date(local)} à {local:%H:%M} (heure de Paris)"
    if isolate:
        subject = f"Serveur {host} isolé du réseau"
        lines = [
            "Bonjour,",
            "",
            f"Votre serveur {host} a été isolé d'Internet le {when}, conformément aux",
            "articles 3.1.2 et 3.1.4 des conditions générales : il ne reçoit et n'émet plus",
            "aucun trafic, hormis l'accès de nos administrateurs et de la supervision.",
            "",
            f"Motif : {reason}",
            "",
            "Il sera reconnecté une fois le problème corrigé. Pour toute question, répondez",
            "à ce message ou ouvrez un ticket.",
        ]
    else:
        subject = f"Serveur {host} reconnecté au réseau"
        lines = [
            "Bonjour,",
            "",
            f"Votre serveur {host} est de nouveau relié à Internet depuis le {when}.",
        ]
        if reason:
            lines += ["", f"Motif : {reason}"]
    lines += ["", "L'équipe infogérance Alixans"]
    return Notice(tuple(to), subject, "\n".join(lines) + "\n")


def bandwidth_folder(host: str) -> Path:
    return state_dir() / "bandwidth" / host


def bandwidth_notice(to: list[str], host: str, mbps: int, allowed: datetime) -> Notice:
    """The 72 hours' notice of §3.2.4: the cap and from when it applies."""
    local = allowed.astimezone(PARIS)
    return Notice(
        tuple(to),
        f"Préavis de limitation de la bande passante de {host}",
        "\n".join(
            [
                "Bonjour,",
                "",
                f"La consommation de bande passante de votre serveur {host} dépasse",
                "le plafond de votre contrat. Conformément à l'article 3.2.4 des conditions",
                f"générales, son débit sortant sera limité à {mbps} Mbit/s à partir du",
                f"{french_date(local)} à {local:%H:%M} (heure de Paris), soit 72 heures après",
                "ce préavis, sauf régularisation d'ici là.",
                "",
                "L'équipe infogérance Alixans",
            ]
        )
        + "\n",
    )
