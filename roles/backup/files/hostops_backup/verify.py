"""verify: the latest dumps restored into scratch databases and compared with the source."""

from __future__ import annotations

import argparse
from typing import Any

from .common import SCRATCH_PREFIX, Failure, ReportedFailure, log, now_utc
from .config import Config
from .dumps import manifest_databases
from .engines.base import scratch_name
from .engines.mariadb import MariaDB
from .engines.postgresql import PostgreSQL
from .lock import exclusive
from .metrics import recorded
from .restic import Restic
from .restore import Located, locate_database, restore_database
from .snapshots import read_manifest, resolve_snapshot


def compare_tables(expected: dict[str, Any], got: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per table: ok, mismatch, missing, extra, or changed-during-dump (a table
    written while it was dumped has no reference value; its rows are still restored)."""
    rows = []
    for table in sorted(set(expected) | set(got)):
        want, have = expected.get(table), got.get(table)
        row: dict[str, Any] = {"table": table}
        if want is None:
            row.update(status="extra", got=have)
        elif have is None:
            row.update(status="missing", expected=want.get("checksum"))
        else:
            row.update(
                expected=want.get("checksum"),
                got=have.get("checksum"),
                rows=have.get("rows"),
                expected_rows=want.get("rows"),
            )
            if not want.get("stable", True):
                row["status"] = "changed-during-dump"
            elif want.get("checksum") == have.get("checksum") and want.get("rows") == have.get(
                "rows"
            ):
                row["status"] = "ok"
            else:
                row["status"] = "mismatch"
        rows.append(row)
    return rows


def cmd_verify(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Restore the dumps of a snapshot (default: the latest) into scratch databases,
    compare per-table checksums with those recorded at dump time, drop the scratch."""
    with exclusive(cfg, args.lock_wait), recorded(cfg, "verify") as recorded_result:
        restic = Restic(cfg)
        snapshot = resolve_snapshot(cfg, restic, args, "dumps")
        manifest = read_manifest(cfg, restic, snapshot)
        age_hours = (now_utc() - snapshot.time).total_seconds() / 3600
        report: dict[str, Any] = {
            "snapshot": snapshot.to_json(cfg.zone),
            "age_hours": round(age_hours, 1),
            "databases": [],
            "skipped": manifest.get("skipped", {}),
        }
        problems = []
        if args.snapshot is None and args.at == "latest" and age_hours > cfg.verify_max_age_hours:
            problems.append(
                f"the latest dump is {age_hours:.0f} hours old (more than "
                f"{cfg.verify_max_age_hours}): the nightly dumps are not running"
            )
        if "mongodb" in manifest.get("engines", {}):
            report["skipped"]["mongodb"] = "dumped but not verified (no restore test for MongoDB)"
        for name in sorted(manifest_databases(manifest)):
            engine, database = name.split(":", 1)
            located = locate_database(manifest, database, engine)
            scratch = scratch_name(database)
            entry: dict[str, Any] = {"engine": engine, "database": database, "scratch": scratch}
            try:
                _drop_scratch(located, scratch)
                restore_database(
                    cfg, restic, snapshot, located, target=scratch, replace=False, owners=False
                )
                got = _checksums(located, scratch)
                entry["tables"] = compare_tables(located.entry.get("tables", {}), got)
                bad = [
                    t["table"]
                    for t in entry["tables"]
                    if t["status"] not in ("ok", "changed-during-dump")
                ]
                entry["ok"] = not bad
                if bad:
                    problems.append(f"{engine} {database}: tables differ: {', '.join(bad)}")
            except Failure as err:
                entry.update(ok=False, error=str(err))
                problems.append(f"{engine} {database}: {err}")
            finally:
                try:
                    _drop_scratch(located, scratch)
                except Failure as err:
                    problems.append(f"{engine} {database}: scratch database not removed: {err}")
            report["databases"].append(entry)
        report["ok"] = not problems
        report["problems"] = problems
        if problems:
            raise ReportedFailure("verify: " + "; ".join(problems), report)
        recorded_result.update(tables=sum(len(d.get("tables", [])) for d in report["databases"]))
        log(f"verify: snapshot {snapshot.short_id}: {len(report['databases'])} databases OK")
        return report


def _drop_scratch(located: Located, scratch: str) -> None:
    if not scratch.startswith(SCRATCH_PREFIX):
        raise Failure(f"refusing to drop {scratch}: not a scratch database")
    if located.engine == "mariadb":
        MariaDB().drop(scratch)
    else:
        assert located.cluster is not None
        PostgreSQL().drop(located.cluster, scratch)


def _checksums(located: Located, database: str) -> dict[str, dict[str, Any]]:
    if located.engine == "mariadb":
        return MariaDB().checksums(database)
    assert located.cluster is not None
    return PostgreSQL().checksums(located.cluster, database)
