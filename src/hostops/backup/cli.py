"""``hostops backup list | run | restore | verify``: a server's backups (contract §4.6).

Each verb runs one playbook (``playbooks/backup-<verb>.yml``) through
:class:`hostops.core.runner.PlaybookRun` against one server, which calls the backup script the
``backup`` role installed there (``hostops-backup``) and publishes its JSON result with
``set_stats``; this module checks the arguments before any host is touched and turns the
result into lines for people.

``restore --from-host LOST --host NEW`` restores a lost server's backups onto another
server: the playbook opens LOST's repository with LOST's credentials escrowed in the
controller's key store (``<state dir>/backup-keys/LOST``), written root-only on NEW for
that run only; nothing is asked of LOST itself.

A restore goes back to a backup point: what was written after it is lost. So ``restore``
always plans first (read-only: which snapshot, what would be replaced), prints what will
be lost, and replaces live data only with ``--yes``. Restoring under a new name
(``--as``) or into an empty directory touches no live data and needs no ``--yes``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from hostops.core.errors import HostopsError, UsageError
from hostops.core.options import add_inventory_or_lab
from hostops.core.runner import PlaybookRun, RunResult
from hostops.core.settings import new_run_dir
from hostops.core.targets import inventory_host, inventory_sources

PARIS = ZoneInfo("Europe/Paris")
KINDS = ("all", "dumps", "files")
ENGINES = ("mariadb", "postgresql")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})")
_DB_NAME = re.compile(r"[A-Za-z0-9_$-]{1,64}")
_SCRATCH_PREFIX = "hostops_verify_"
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(Z|[+-]\d{2}:\d{2})?")
# What the key store must hold for a server's backups to be restored without it.
ESCROW_FILES = ("restic-password", "rest-password", "repository.json", "ca.pem")
# Restoring over these would break the server itself: refused outright.
_PROTECTED = frozenset(
    [
        *("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin"),
        *("/sys", "/usr", "/var"),
    ]
)


# --- arguments ------------------------------------------------------------------------


def parse_at(text: str, now: dt.datetime | None = None) -> str:
    """Turn ``--at`` into what the server's script reads, or raise UsageError.

    Accepted: ``latest``; ``today`` and ``yesterday``; a date ``YYYY-MM-DD`` (the last
    backup of that day, Paris time); a date and time ``YYYY-MM-DD HH:MM[:SS]`` (the last
    backup at or before it), read in Paris time unless it ends with ``Z`` or an offset
    such as ``+01:00``. A time that does not exist or exists twice in Paris (the clock
    changes) needs an offset. Nothing in the future.
    """
    now = (now or dt.datetime.now(PARIS)).astimezone(PARIS)
    value = text.strip()
    lowered = value.lower()
    if lowered in ("latest", "last"):
        return "latest"
    if lowered in ("today", "yesterday"):
        day = now.date() - dt.timedelta(days=1 if lowered == "yesterday" else 0)
        return day.isoformat()
    if match := _DATE.fullmatch(value):
        try:
            day = dt.date(*(int(part) for part in match.groups()))
        except ValueError as err:
            raise UsageError(f"--at: {text!r} is not a date ({err})") from err
        if day > now.date():
            raise UsageError(f"--at: {text!r} is in the future (today is {now.date()} in Paris)")
        return day.isoformat()
    if match := _DATETIME.fullmatch(value):
        date_part, time_part, offset = match.groups()
        try:
            naive = dt.datetime.fromisoformat(f"{date_part}T{time_part}")
        except ValueError as err:
            raise UsageError(f"--at: {text!r} is not a date and time ({err})") from err
        try:
            if offset:
                moment = dt.datetime.fromisoformat(
                    f"{date_part}T{time_part}{'+00:00' if offset == 'Z' else offset}"
                )
            else:
                moment = _paris(naive, text)
            future = moment > now
        except (ValueError, OverflowError) as err:  # an offset of 24 h or more, year 1
            raise UsageError(f"--at: {text!r} is not a date and time ({err})") from err
        if future:
            raise UsageError(
                f"--at: {text!r} is in the future (it is {now:%Y-%m-%d %H:%M} in Paris)"
            )
        return moment.isoformat(timespec="seconds")
    raise UsageError(
        f"--at: {text!r} is not latest, today, yesterday, a date YYYY-MM-DD or a date "
        "and time YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
    )


def _paris(naive: dt.datetime, text: str) -> dt.datetime:
    """*naive* in Paris time; refuse the hour skipped and the hour repeated by DST."""
    first = naive.replace(tzinfo=PARIS, fold=0)
    second = naive.replace(tzinfo=PARIS, fold=1)
    back = first.astimezone(dt.UTC).astimezone(PARIS).replace(tzinfo=None)
    if back != naive:
        raise UsageError(
            f"--at: {text!r} does not exist in Paris (the clocks skip that hour); "
            "give an offset, e.g. +01:00"
        )
    if first.utcoffset() != second.utcoffset():
        raise UsageError(
            f"--at: {text!r} happens twice in Paris (the clocks go back); give the offset: "
            f"{first.isoformat()} or {second.isoformat()}"
        )
    return first


def check_absolute(value: str, flag: str) -> str | None:
    """A problem line for a path that is not absolute or has '..', else None."""
    if not value.startswith("/"):
        return f"{flag}: {value!r} is not an absolute path"
    if ".." in value.split("/"):
        return f"{flag}: {value!r} contains '..'; give the path itself"
    if any(ord(char) < 32 for char in value):
        return f"{flag}: {value!r} contains control characters"
    return None


def _normal(path: str) -> str:
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


@dataclass(frozen=True)
class RestoreRequest:
    """A validated ``restore``: a database or a path, and the backup point."""

    at: str
    database: str | None = None
    engine: str | None = None
    as_name: str | None = None
    path: str | None = None
    to: str | None = None
    from_host: str | None = None

    def extravars(self, *, snapshot: str | None, confirm: bool, replace: bool) -> dict[str, Any]:
        request: dict[str, Any] = {"confirm": confirm, "replace": replace}
        if self.from_host:
            request["from_host"] = self.from_host
        if snapshot:
            request["snapshot"] = snapshot
        else:
            request["at"] = self.at
        if self.database:
            request["database"] = self.database
            if self.engine:
                request["engine"] = self.engine
            if self.as_name:
                request["as"] = self.as_name
        else:
            request.update(path=self.path, to=self.to)
        variables: dict[str, Any] = {"hostops_backup_restore": request}
        if self.from_host:
            variables["backup_key_store"] = str(key_store())
        return variables


def key_store() -> Path:
    from hostops.orders.provision import backup_key_store  # noqa: PLC0415 - keeps this module light

    return backup_key_store()


def check_from_host(value: str | None, host: str) -> list[str]:
    """Problems with ``--from-host``: a host name, another server than --host, and its
    escrowed credentials in the key store."""
    if value is None:
        return []
    if not _HOST.fullmatch(value):
        return [f"--from-host: {value!r} is not a host name"]
    if value == host:
        return [f"--from-host: {value!r} is the --host itself; leave --from-host out"]
    folder = key_store() / value
    missing = [name for name in ESCROW_FILES if not (folder / name).is_file()]
    if missing:
        return [
            f"--from-host: no escrowed credentials for {value!r} in {folder} "
            f"(missing: {', '.join(missing)}); the backup role writes them there"
        ]
    return []


def restore_request(args: argparse.Namespace, now: dt.datetime | None = None) -> RestoreRequest:
    """Check ``restore``'s arguments together; every problem is a line of one UsageError."""
    problems: list[str] = []
    at = None
    try:
        at = parse_at(args.at, now)
    except UsageError as err:
        problems += err.problems
    if bool(args.database) == bool(args.path):
        problems.append(
            "restore: give either --database NAME (a database) or --path P --to DIR (files)"
        )
    if args.database:
        for flag, value in (("--database", args.database), ("--as", args.as_name)):
            if value is not None and not _DB_NAME.fullmatch(value):
                problems.append(
                    f"{flag}: {value!r} is not a database name (1 to 64 of A-Z a-z 0-9 _ $ -)"
                )
        if args.as_name and args.as_name.startswith(_SCRATCH_PREFIX):
            problems.append(f"--as: names starting with {_SCRATCH_PREFIX} are kept for verify")
        if args.to:
            problems.append("--to: only with --path (a database is restored with --as)")
    if args.path:
        if args.as_name or args.engine:
            problems.append("--as and --engine: only with --database")
        if not args.to:
            problems.append("--to: required with --path (where the files are restored)")
        for flag, value in (("--path", args.path), ("--to", args.to)):
            if value is not None and (problem := check_absolute(value, flag)):
                problems.append(problem)
        if args.to and not check_absolute(args.to, "--to") and _normal(args.to) in _PROTECTED:
            problems.append(f"--to: {args.to!r} is a system directory; restore elsewhere")
    from_host = getattr(args, "from_host", None)
    problems += check_from_host(from_host, args.host)
    if problems:
        raise UsageError(problems)
    assert at is not None
    if args.database:
        return RestoreRequest(
            at=at,
            database=args.database,
            engine=args.engine,
            as_name=args.as_name,
            from_host=from_host,
        )
    return RestoreRequest(at=at, path=_normal(args.path), to=_normal(args.to), from_host=from_host)


# --- where the server is ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    host: str
    inventories: list[Path]


def resolve_target(args: argparse.Namespace) -> Target:
    """The server and the inventories it is in; UsageError before any host is touched."""
    problems: list[str] = []
    if not _HOST.fullmatch(args.host):
        problems.append(f"--host: {args.host!r} is not a host name")
    try:
        inventories = inventory_sources(lab=args.lab, inventories=args.inventory or [])
    except UsageError as err:
        raise UsageError(problems + err.problems) from None
    if problems:
        raise UsageError(problems)
    return Target(inventory_host(args.host, inventories, lab=args.lab), inventories)


def run_dir(host: str, action: str) -> Path:
    return new_run_dir("backups", host, "runs", kind=action)


def run_playbook(
    target: Target, playbook: str, action: str, extravars: Mapping[str, Any], out: TextIO
) -> tuple[RunResult, dict[str, Any]]:
    """Run *playbook* on the target; return the run and what the host published."""
    run = PlaybookRun(
        playbook=playbook,
        inventory=target.inventories,
        run_dir=run_dir(target.host, action) / "runner",
        extravars={**extravars, "hostops_targets": target.host},
        limit=target.host,
        quiet=True,
        out=out,
    )
    result = run.execute()
    published = result.artifacts.get("hostops_backup", {}).get(target.host)
    if not result.ok and not published:
        lines = [f"{f.host}: {f.task}: {f.message}" for f in result.failures]
        lines = lines or result.failure_lines
        raise HostopsError("\n".join([*lines, f"(artifacts: {result.artifact_dir})"]))
    return result, dict(published or {})


def _failed(result: RunResult, report: Mapping[str, Any], what: str) -> HostopsError:
    message = report.get("error") or "; ".join(f.message for f in result.failures) or "failed"
    return HostopsError(f"{what}: {message}")


# --- showing results ----------------------------------------------------------------------


def _when(text: str | None) -> str:
    """An ISO 8601 time from the server, shown in Paris time."""
    if not text:
        return "-"
    moment = dt.datetime.fromisoformat(text).astimezone(PARIS)
    return moment.strftime("%a %Y-%m-%d %H:%M:%S %Z")


def _stamp(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        return "never"
    return dt.datetime.fromtimestamp(value, PARIS).strftime("%Y-%m-%d %H:%M:%S %Z")


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _size(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def describe_plan(host: str, plan: Mapping[str, Any]) -> list[str]:
    """What a restore will do and, when it replaces live data, what is lost."""
    snapshot = plan["snapshot"]
    point = _when(snapshot["time"])
    if plan["action"] == "restore-database":
        what = f"{plan['engine']} database {plan['database']!r}"
        target = f"database {plan['target']!r}"
    else:
        what = f"{plan['path']}"
        target = f"{plan['to']}"
    source = f" of {plan['from_host']}" if plan.get("from_host") else ""
    lines = [
        f"{host}: restore {what} from the backup{source} of {point} "
        f"(snapshot {snapshot['short_id']})"
    ]
    if plan["replaces_live_data"]:
        lines.append(
            f"  This REPLACES the live {target}: everything written to it after {point} is lost."
        )
    else:
        lines.append(f"  into {target}, which does not exist yet (no live data is touched)")
    return lines


# --- the verbs ------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    target = resolve_target(args)
    as_json = getattr(args, "json", False)
    # with --json, stdout carries the JSON document only; progress goes to stderr
    result, report = run_playbook(
        target, "backup-list.yml", "list", {}, sys.stderr if as_json else out
    )
    if not result.ok:
        raise _failed(result, report, f"{target.host}: cannot list the backups")
    snapshots = report.get("snapshots", [])
    if as_json:
        document = {
            "host": target.host,
            "repository": report.get("repository"),
            "retention_days": report.get("retention_days"),
            "snapshots": snapshots,
            "latest_dumps_databases": report.get("latest_dumps_databases", []),
            "runs": report.get("state", {}),
        }
        print(json.dumps(document, indent=2, ensure_ascii=False, default=str), file=out)
        return 0
    print(
        f"{target.host}: {len(snapshots)} snapshot(s) in {report.get('repository')}, "
        f"{report.get('retention_days')} daily kept of each kind",
        file=out,
    )
    if snapshots:
        rows = [("TIME (Paris)", "KIND", "SNAPSHOT", "PATHS")]
        rows += [
            (_when(s["time"]), s["kind"], s["short_id"], " ".join(s["paths"])) for s in snapshots
        ]
        print(table(rows), file=out)
    databases = report.get("latest_dumps_databases", [])
    print(f"databases in the latest dumps: {', '.join(databases) or 'none'}", file=out)
    state = report.get("state", {})
    if state:
        rows = [("RUN", "LAST SUCCESS", "LAST RESULT", "SIZE")]
        for kind in sorted(state):
            entry = state[kind]
            result_text = (
                "FAILED: " + str(entry.get("message", "")) if entry.get("failed") else "ok"
            )
            rows.append(
                (
                    kind,
                    _stamp(entry.get("last_success")),
                    result_text[:90],
                    _size(entry.get("size")),
                )
            )
        print(table(rows), file=out)
    return 0


def cmd_run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    target = resolve_target(args)
    print(f"{target.host}: backing up now ({args.kind})", file=out)
    result, report = run_playbook(
        target, "backup-run.yml", "run", {"hostops_backup_kind": args.kind}, out
    )
    for run in report.get("runs", []):
        if run.get("ok"):
            print(
                f"  {run['kind']}: snapshot {str(run.get('snapshot'))[:8]}, "
                f"{_size(run.get('size_bytes'))} ({_size(run.get('added_bytes'))} new), "
                f"{run.get('snapshots')} kept, {run.get('seconds')} s",
                file=out,
            )
        else:
            print(f"  {run['kind']}: FAILED: {run.get('error')}", file=out)
    if not result.ok:
        raise _failed(result, report, f"{target.host}: the backup failed")
    return 0


def cmd_restore(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    request = restore_request(args)
    target = resolve_target(args)
    result, report = run_playbook(
        target,
        "backup-restore.yml",
        "restore-plan",
        request.extravars(snapshot=None, confirm=False, replace=False),
        out,
    )
    if not result.ok:
        raise _failed(result, report, f"{target.host}: cannot plan the restore")
    plan = report["plan"]
    if request.from_host:
        plan["from_host"] = request.from_host
    for line in describe_plan(target.host, plan):
        print(line, file=out)
    if plan["replaces_live_data"] and not args.yes:
        raise HostopsError(
            "not restored: this replaces live data; re-run with --yes to confirm "
            "(or restore under another name with --as / into another directory with --to)"
        )
    result, report = run_playbook(
        target,
        "backup-restore.yml",
        "restore",
        request.extravars(
            snapshot=plan["snapshot"]["id"], confirm=True, replace=bool(plan["replaces_live_data"])
        ),
        out,
    )
    if not result.ok:
        raise _failed(result, report, f"{target.host}: the restore failed")
    done = report["plan"]
    where = f"database {done['target']!r}" if "target" in done else done["to"]
    print(
        f"{target.host}: restored {where} to the backup of {_when(done['snapshot']['time'])}",
        file=out,
    )
    return 0


def cmd_verify(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    at = parse_at(args.at)
    target = resolve_target(args)
    print(f"{target.host}: restoring the dumps into scratch databases to compare them", file=out)
    result, report = run_playbook(
        target, "backup-verify.yml", "verify", {"hostops_backup_at": at}, out
    )
    snapshot = report.get("snapshot") or {}
    if snapshot:
        print(
            f"dumps of {_when(snapshot.get('time'))} (snapshot {snapshot.get('short_id')}, "
            f"{report.get('age_hours')} h old)",
            file=out,
        )
    rows = [("ENGINE", "DATABASE", "TABLES", "IDENTICAL", "RESULT")]
    tables_total = identical_total = 0
    for database in report.get("databases", []):
        tables = database.get("tables", [])
        identical = sum(1 for t in tables if t["status"] == "ok")
        tables_total += len(tables)
        identical_total += identical
        result_text = "ok" if database.get("ok") else "FAILED"
        if database.get("error"):
            result_text = f"FAILED: {database['error']}"[:90]
        rows.append(
            (
                database["engine"],
                database["database"],
                str(len(tables)),
                str(identical),
                result_text,
            )
        )
        for row in tables:
            if row["status"] != "ok":
                print(
                    f"  {database['engine']} {database['database']}.{row['table']}: "
                    f"{row['status']} (expected {row.get('expected')}, got {row.get('got')})",
                    file=out,
                )
    if len(rows) > 1:
        print(table(rows), file=out)
    for engine, why in (report.get("skipped") or {}).items():
        print(f"  {engine}: not verified ({why})", file=out)
    if not result.ok:
        raise _failed(result, report, f"{target.host}: the backups did NOT verify")
    print(
        f"{target.host}: backups verified: {identical_total} of {tables_total} tables restored "
        "identical to the source at dump time; scratch databases removed",
        file=out,
    )
    return 0


# --- the parser -----------------------------------------------------------------------------


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, metavar="HOST", help="the server")
    add_inventory_or_lab(
        parser,
        inventory_help="inventory holding the server (repeatable)",
        lab_help="the server is a lab host",
        required=True,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser(
        "backup", help="list, run, restore and verify a server's backups"
    )
    verbs = backup.add_subparsers(dest="backup_command", metavar="VERB", required=True)

    listing = verbs.add_parser("list", help="the snapshots, the databases, the last runs")
    _where(listing)
    listing.add_argument("--json", action="store_true", help="as JSON on stdout")
    listing.set_defaults(func=cmd_list)

    run = verbs.add_parser("run", help="back up now, as the nightly timers do")
    _where(run)
    run.add_argument("--kind", choices=KINDS, default="all", help="dumps, files or all")
    run.set_defaults(func=cmd_run)

    restore = verbs.add_parser(
        "restore",
        help="restore a database or files to a backup point (what came after is lost)",
        description=(
            "Restore a database (--database NAME [--as NEW_NAME]) or a path "
            "(--path P --to DIR, DIR becomes P as it was) to a backup point. Replacing live "
            "data needs --yes; what will be lost is shown first."
        ),
    )
    _where(restore)
    restore.add_argument(
        "--at",
        required=True,
        metavar="WHEN",
        help="latest, today, yesterday, YYYY-MM-DD (last backup that day, Paris time) "
        "or YYYY-MM-DDTHH:MM[:SS][+HH:MM] (last backup at or before)",
    )
    restore.add_argument("--database", metavar="NAME", help="the database to restore")
    restore.add_argument("--engine", choices=ENGINES, help="when both engines have NAME")
    restore.add_argument("--as", dest="as_name", metavar="NEW_NAME", help="restore as NEW_NAME")
    restore.add_argument("--path", metavar="P", help="a backed-up file or directory")
    restore.add_argument("--to", metavar="DIR", help="where P is restored (DIR becomes P)")
    restore.add_argument("--yes", action="store_true", help="confirm replacing live data")
    restore.add_argument(
        "--from-host",
        metavar="LOST",
        help="restore the backups of LOST (a lost server) onto --host, with LOST's "
        "credentials escrowed in the key store",
    )
    restore.set_defaults(func=cmd_restore)

    verify = verbs.add_parser(
        "verify", help="restore the dumps into scratch databases and compare checksums"
    )
    _where(verify)
    verify.add_argument("--at", default="latest", metavar="WHEN", help="default: latest")
    verify.set_defaults(func=cmd_verify)
