"""Listing the snapshots and choosing the one to restore."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from .common import MANIFEST, ConfigError, Failure
from .config import Config
from .dumps import manifest_databases
from .restic import SNAPSHOT_ID, Restic, Snapshot


def read_manifest(cfg: Config, restic: Restic, snapshot: Snapshot) -> dict[str, Any]:
    raw = restic.read(snapshot.id, str(cfg.dump_dir / MANIFEST))
    try:
        manifest: dict[str, Any] = json.loads(raw)
    except ValueError as err:
        raise Failure(f"snapshot {snapshot.short_id}: unreadable manifest ({err})") from err
    return manifest


def cmd_snapshots(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    restic = Restic(cfg)
    snapshots = restic.snapshots()
    latest_dumps = [s for s in snapshots if s.kind == "dumps"]
    databases: list[str] = []
    if latest_dumps:
        databases = manifest_databases(read_manifest(cfg, restic, latest_dumps[-1]))
    state: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        state = json.loads(cfg.state_file.read_text())
    return {
        "host": cfg.host,
        "repository": cfg.repository,
        "retention_days": cfg.retention_days,
        "timezone": cfg.timezone,
        "snapshots": [s.to_json(cfg.zone) for s in snapshots],
        "latest_dumps_databases": databases,
        "state": state,
    }


def pick_snapshot(snapshots: Sequence[Snapshot], at: str, zone: ZoneInfo, kind: str) -> Snapshot:
    """The snapshot of *kind* to restore for *at*: 'latest'; a date YYYY-MM-DD (the last
    snapshot of that day in *zone*); an ISO 8601 date and time (the last snapshot at or
    before it; without an offset it is read in *zone*); or a snapshot id (prefix)."""
    candidates = sorted((s for s in snapshots if s.kind == kind), key=lambda s: s.time)
    if not candidates:
        raise Failure(f"there is no {kind} snapshot in the repository")
    if at == "latest":
        return candidates[-1]
    if SNAPSHOT_ID.fullmatch(at) and not re.fullmatch(r"\d{8}", at):
        found = [s for s in candidates if s.id.startswith(at)]
        if len(found) == 1:
            return found[0]
        raise Failure(f"{at}: {'no' if not found else 'more than one'} {kind} snapshot has this id")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", at):
        day = dt.date.fromisoformat(at)
        same_day = [s for s in candidates if s.time.astimezone(zone).date() == day]
        if not same_day:
            days = sorted({s.time.astimezone(zone).date().isoformat() for s in candidates})
            raise Failure(
                f"no {kind} snapshot on {at}; there are snapshots on {', '.join(days[-10:])}"
            )
        return same_day[-1]
    try:
        moment = dt.datetime.fromisoformat(at)
    except ValueError as err:
        raise ConfigError(f"--at: {at!r} is not latest, a date, a date and time or an id") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    before = [s for s in candidates if s.time <= moment]
    if not before:
        first = candidates[0].time.astimezone(zone).isoformat(timespec="seconds")
        raise Failure(f"no {kind} snapshot at or before {at}; the oldest is from {first}")
    return before[-1]


def resolve_snapshot(cfg: Config, restic: Restic, args: argparse.Namespace, kind: str) -> Snapshot:
    return pick_snapshot(restic.snapshots(kind), args.snapshot or args.at, cfg.zone, kind)
