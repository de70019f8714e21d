"""The client's word on major updates (contract §4.1.3): approvals, refusals, held majors.

Majors are "planned with the client": ``hostops patch approve`` records the client's
agreement to one major update of one package on one server (who recorded it, when, the
client's reference: ticket, email, signed quote), ``hostops patch refuse`` its refusal (a
client refusing a fix carries the consequences, so the refusal is kept). The next patch
run inside the window applies exactly the approved majors (to the approved version, or
the archive's candidate) and marks each approval ``applied``: it expires. The file also
remembers since when each major has been seen held, so plans and reports give ages.

One JSON file, ``<state>/patch-agreements.json``, one record per server and package,
written atomically (a temporary file renamed over it); the record it replaces is kept in
its ``history``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from hostops.core import settings
from hostops.core.errors import HostopsError
from hostops.core.settings import state_dir
from hostops.module_utils.versions import parse_version

FORMAT: Final = 1
# Debian policy §5.6.1: package names (as 'hostops updates classify')
PACKAGE_NAME: Final = re.compile(r"[a-z0-9][a-z0-9+.-]+")
MAX_REFERENCE: Final = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
APPROVED, REFUSED = "approved", "refused"
PENDING, APPLIED = "pending", "applied"


def path() -> Path:
    return state_dir() / "patch-agreements.json"


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def key(host: str, package: str) -> str:
    return f"{host}/{package}"


# -- checks ---------------------------------------------------------------------------


def package_problems(package: str, option: str = "--package") -> list[str]:
    if PACKAGE_NAME.fullmatch(package):
        return []
    return [
        f"{option}: {package!r} is not a Debian package name (two or more of a-z, 0-9, "
        "'+', '-', '.', starting with a letter or digit)"
    ]


def version_problems(version: str | None, option: str = "--version") -> list[str]:
    if version is None:
        return []
    try:
        parse_version(version)
    except ValueError as err:
        return [f"{option}: {version!r} is not a Debian version ({err})"]
    return []


def reference_problems(reference: str | None, option: str = "--reference") -> list[str]:
    text = (reference or "").strip()
    if not text:
        return [f"{option}: {reference!r} is empty: name the client's agreement (ticket, email)"]
    if _CONTROL.search(text):
        return [f"{option}: {reference!r} contains control characters"]
    if len(text) > MAX_REFERENCE:
        return [f"{option}: {text[:40]!r}... is longer than {MAX_REFERENCE} characters"]
    return []


def operator(by: str | None = None) -> str:
    return by or settings.operator()


# -- the file -------------------------------------------------------------------------


def load(file: Path | None = None) -> dict[str, Any]:
    file = file or path()
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        return {"format": FORMAT, "agreements": {}, "held": {}}
    except (OSError, ValueError) as err:
        raise HostopsError(f"{file}: cannot read the client agreements: {err}") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise HostopsError(f"{file}: not a client agreements file of format {FORMAT}")
    data.setdefault("agreements", {})
    data.setdefault("held", {})
    return data


def save(data: Mapping[str, Any], file: Path | None = None) -> None:
    """Write atomically: a temporary file in the same directory renamed over the old one."""
    file = file or path()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(prefix=".patch-agreements.", dir=file.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def record(
    *,
    decision: str,
    host: str,
    package: str,
    version: str | None,
    reference: str,
    by: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Store the client's decision for one server and package; returns the new record."""
    data = load()
    entry: dict[str, Any] = {
        "host": host,
        "package": package,
        "decision": decision,
        "version": version,
        "reference": reference.strip(),
        "by": by,
        "at": iso(at or now()),
        "status": PENDING if decision == APPROVED else None,
    }
    previous = data["agreements"].get(key(host, package))
    if previous is not None:
        history = previous.pop("history", [])
        entry["history"] = [*history, previous]
    data["agreements"][key(host, package)] = entry
    save(data)
    return entry


def approvals_for(hosts: Iterable[str], data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """{host: {package: version or ''}}: the pending approvals, the playbook's input."""
    wanted = set(hosts)
    approved: dict[str, dict[str, str]] = {}
    for entry in data["agreements"].values():
        if (
            entry["host"] in wanted
            and entry["decision"] == APPROVED
            and entry.get("status") == PENDING
        ):
            approved.setdefault(entry["host"], {})[entry["package"]] = entry.get("version") or ""
    return approved


def after_run(
    reports: Mapping[str, Mapping[str, Any]], run_dir: Path, *, check: bool
) -> dict[str, Any]:
    """Update the file from a run's reports: approvals applied (they expire), held majors
    first and last seen. A plan (check mode) records sightings only."""
    data = load()
    moment = iso(now())
    for host, report in reports.items():
        result = report.get("result") or {}
        if not check:
            for outcome in result.get("approved") or []:
                entry = data["agreements"].get(key(host, outcome["name"]))
                if entry is None or entry.get("status") != PENDING:
                    continue
                if outcome.get("outcome") in ("applied", "up to date"):
                    entry.update(
                        status=APPLIED,
                        applied_at=moment,
                        applied_from=outcome.get("from"),
                        applied_version=outcome.get("to"),
                        applied_run=str(run_dir),
                    )
                else:
                    entry["last_attempt"] = {
                        "at": moment,
                        "outcome": outcome.get("outcome"),
                        "reason": outcome.get("reason"),
                        "run": str(run_dir),
                    }
        held_now = {
            entry["name"]: entry
            for entry in result.get("held") or []
            if entry.get("reason") == "major"
        }
        for name in [k for k, v in data["held"].items() if v["host"] == host]:
            package = data["held"][name]["package"]
            if package not in held_now and not report.get("error"):
                del data["held"][name]  # no longer held: applied, or no longer pending
        for name, entry in held_now.items():
            seen = data["held"].setdefault(
                key(host, name), {"host": host, "package": name, "first_seen": moment}
            )
            seen.update({"from": entry.get("from"), "to": entry.get("to"), "last_seen": moment})
    save(data)
    return data


# -- what plans and reports show ------------------------------------------------------


def age(since: str | None, moment: datetime | None = None) -> str:
    """'3 d', '5 h', '12 min': how long ago an ISO 8601 moment was."""
    if not since:
        return "?"
    try:
        then = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(0, int(((moment or now()) - then).total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400} d"
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def overview(hosts: Sequence[str], data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The held majors and the client's decisions about the given hosts, with their ages."""
    wanted = set(hosts)
    rows: list[dict[str, Any]] = []
    for entry in sorted(data["held"].values(), key=lambda e: (e["host"], e["package"])):
        if entry["host"] not in wanted:
            continue
        decision = data["agreements"].get(key(entry["host"], entry["package"])) or {}
        rows.append(
            {
                "kind": "held major",
                "host": entry["host"],
                "package": entry["package"],
                "from": entry.get("from"),
                "to": entry.get("to"),
                "since": entry["first_seen"],
                "age": age(entry["first_seen"]),
                "decision": decision.get("decision"),
            }
        )
    for entry in sorted(data["agreements"].values(), key=lambda e: (e["host"], e["package"])):
        if entry["host"] not in wanted:
            continue
        rows.append(
            {
                "kind": entry["decision"],
                "host": entry["host"],
                "package": entry["package"],
                "version": entry.get("version"),
                "status": entry.get("status"),
                "reference": entry["reference"],
                "by": entry["by"],
                "since": entry["at"],
                "age": age(entry["at"]),
                "applied_at": entry.get("applied_at"),
                "applied_version": entry.get("applied_version"),
                "last_attempt": entry.get("last_attempt"),
            }
        )
    return rows


def overview_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines: list[str] = []
    held = [row for row in rows if row["kind"] == "held major"]
    decisions = [row for row in rows if row["kind"] != "held major"]
    if held:
        lines += ["", "Majors held (age since first seen held), to plan with the client (§4.1.3):"]
        for row in held:
            said = f"; client {row['decision']}" if row["decision"] else "; no decision recorded"
            lines.append(
                f"  {row['host']}  {row['package']} {row['from']} -> {row['to']}  "
                f"held {row['age']}{said}"
            )
    if decisions:
        lines += ["", "The client's decisions on majors (§4.1.3):"]
        for row in decisions:
            if row["kind"] == APPROVED:
                what = f"APPROVED to {row['version'] or 'the candidate'}"
                if row["status"] == APPLIED:
                    what += f", applied ({row['applied_version']}, {age(row['applied_at'])} ago)"
                elif row.get("last_attempt"):
                    attempt = row["last_attempt"]
                    what += f", not applied yet ({attempt['outcome']}: {attempt['reason']})"
                else:
                    what += ", to apply at the next run in the window"
            else:
                what = "REFUSED: the client carries the consequences"
            lines.append(
                f"  {row['host']}  {row['package']}  {what}; ref {row['reference']!r}, "
                f"recorded by {row['by']} {row['age']} ago"
            )
    return lines
