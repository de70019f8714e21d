"""The runs (run, finish, check): dumps or files into the repository, recorded for monitoring."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from typing import Any

from .common import KINDS, Failure, ReportedFailure, log
from .config import Config
from .dumps import dump_databases, dump_size, manifest_databases, prepare_dump_dir
from .lock import exclusive
from .metrics import State, recorded
from .restic import Restic


def check_paths(cfg: Config) -> None:
    missing = [p for p in cfg.paths if not os.path.lexists(p)]
    if missing:
        raise Failure(
            f"backup path(s) missing: {', '.join(missing)}; nothing was backed up (restic "
            "would skip a missing path and report success). Fix the order's paths or "
            "restore the directories."
        )


def run_kind(cfg: Config, restic: Restic, kind: str) -> dict[str, Any]:
    with recorded(cfg, kind) as result:
        started = time.monotonic()
        if kind == "dumps":
            manifest = dump_databases(cfg)
            size = dump_size(cfg)
            summary = restic.backup([str(cfg.dump_dir)], "dumps")
            databases = sorted(manifest_databases(manifest))
        else:
            check_paths(cfg)
            summary = restic.backup(list(cfg.paths), "files", _exclude_args(cfg))
            size = int(summary.get("total_bytes_processed", 0))
            databases = []
        # the retention is the backup host's: this host cannot remove snapshots
        count = len(restic.snapshots(kind))
        if kind == "dumps" and not cfg.keep_local_dumps:
            prepare_dump_dir(cfg)  # the dumps are in the repository now
        result.update(size=size, added=int(summary.get("data_added", 0)), snapshots=count)
        report = {
            "kind": kind,
            "ok": True,
            "snapshot": summary.get("snapshot_id"),
            "size_bytes": size,
            "added_bytes": int(summary.get("data_added", 0)),
            "snapshots": count,
            "seconds": round(time.monotonic() - started, 1),
            "databases": databases,
        }
        log(
            f"{kind}: snapshot {summary.get('snapshot_id')} ({size} bytes, "
            f"{report['added_bytes']} added); {count} in the repository"
        )
        return report


def _exclude_args(cfg: Config) -> list[str]:
    args = []
    for pattern in cfg.excludes:
        args += ["--exclude", pattern]
    return args


def cmd_run(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    kinds: tuple[str, ...] = KINDS if args.kind == "all" else (args.kind,)
    if not cfg.paths:
        if "files" in kinds:
            log("files: no paths are configured; nothing to back up")
        kinds = tuple(k for k in kinds if k != "files")
    reports: list[dict[str, Any]] = []
    errors: list[str] = []
    with exclusive(cfg, args.lock_wait):
        restic = Restic(cfg)
        try:
            restic.unlock()
        except Failure as err:
            # the repository is out of reach: every kind of this run failed
            for kind in kinds:
                _record_failure(cfg, kind, str(err))
                reports.append({"kind": kind, "ok": False, "error": str(err)})
            raise ReportedFailure(str(err), {"ok": False, "runs": reports}) from err
        for kind in kinds:
            try:
                reports.append(run_kind(cfg, restic, kind))
            except Failure as err:
                errors.append(f"{kind}: {err}")
                reports.append({"kind": kind, "ok": False, "error": str(err)})
                log(f"{kind}: FAILED: {err}")
    result = {"ok": not errors, "runs": reports}
    if errors:
        raise ReportedFailure("; ".join(errors), result)
    return result


def _record_failure(cfg: Config, kind: str, message: str) -> None:
    now = time.time()
    State(cfg).update(
        kind, running=0, failed=1, last_start=now, last_end=now, message=message[:500]
    )


def cmd_finish(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """ExecStopPost of the units: a run that died without recording its end (SIGKILL,
    OOM, timeout) or that never started (busy) is recorded as failed, for monitoring."""
    result = os.environ.get("SERVICE_RESULT", "success")
    kind = args.kind
    with State(cfg).edit() as data:
        entry = data.setdefault(kind, {})
        died = bool(entry.get("running"))
        if died or (result != "success" and not entry.get("failed")):
            entry.update(running=0, failed=1, last_end=time.time())
            entry["message"] = (
                f"the unit ended with result {result!r} (exit "
                f"{os.environ.get('EXIT_CODE', '?')}={os.environ.get('EXIT_STATUS', '?')})"
                + (" while the run was in progress" if died else "")
            )
            log(f"{kind}: recorded as failed: {entry['message']}")
    return {"kind": kind, "service_result": result}


def cmd_check(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """restic check reading one part of the data in turn: all of it every N weeks."""
    parts = cfg.check_subset_parts
    week = dt.date.today().isocalendar().week
    subset = args.subset or f"{week % parts + 1}/{parts}"
    with exclusive(cfg, args.lock_wait), recorded(cfg, "check"):
        restic = Restic(cfg)
        restic.unlock()
        restic.run(["check", f"--read-data-subset={subset}"], what=f"restic check ({subset})")
        log(f"check: repository OK (data subset {subset})")
        return {"ok": True, "subset": subset}
