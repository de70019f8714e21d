"""Restoring a database (restore-db) or a path (restore-files) from a snapshot."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import DB_NAME, PROTECTED, SCRATCH_PREFIX, ConfigError, Failure, Refused, log
from .config import Config
from .dumps import manifest_databases
from .engines.base import sha256_file
from .engines.mariadb import MariaDB
from .engines.postgresql import Cluster, PostgreSQL
from .lock import exclusive
from .restic import Restic, Snapshot
from .snapshots import read_manifest, resolve_snapshot


@dataclass
class Located:
    engine: str
    cluster: Cluster | None
    entry: dict[str, Any]
    globals_file: str | None = None


def locate_database(manifest: dict[str, Any], name: str, engine: str | None) -> Located:
    engines = manifest.get("engines", {})
    found: list[Located] = []
    if engine in (None, "mariadb"):
        entry = engines.get("mariadb", {}).get("databases", {}).get(name)
        if entry:
            found.append(Located("mariadb", None, entry))
    if engine in (None, "postgresql"):
        for label, cluster in engines.get("postgresql", {}).get("clusters", {}).items():
            entry = cluster.get("databases", {}).get(name)
            if entry:
                version, cname = label.split("/", 1)
                where = Cluster(version, cname, str(cluster.get("port", "")))
                found.append(Located("postgresql", where, entry, cluster.get("globals_file")))
    if not found:
        known = ", ".join(manifest_databases(manifest)) or "none"
        raise Failure(f"database {name!r} is not in this snapshot (it has: {known})")
    if len(found) > 1:
        engines_found = ", ".join(f.engine for f in found)
        raise Failure(f"database {name!r} exists in {engines_found}; choose one with --engine")
    return found[0]


def target_cluster(located: Located) -> Located:
    """The cluster of this host to restore a PostgreSQL database into: the one of the
    dump's version and name, or this host's only cluster (a restore onto another server,
    of another PostgreSQL version: pg_restore reads older dumps)."""
    if located.engine != "postgresql" or located.cluster is None:
        return located
    clusters = PostgreSQL().clusters()
    for cluster in clusters:
        if cluster.label == located.cluster.label:
            return Located(located.engine, cluster, located.entry, located.globals_file)
    if len(clusters) == 1:
        return Located(located.engine, clusters[0], located.entry, located.globals_file)
    labels = ", ".join(c.label for c in clusters) or "none"
    raise Failure(
        f"the dump is from PostgreSQL cluster {located.cluster.label}; this host has {labels}"
    )


_ROLE_LINE = re.compile(r'(?:CREATE|ALTER) ROLE ("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)[ ;]')


def roles_to_create(globals_sql: str, existing: set[str]) -> list[str]:
    """The CREATE ROLE and ALTER ROLE lines of pg_dumpall --globals-only for the roles
    that *existing* lacks (memberships and grants are left out)."""
    lines = []
    for line in globals_sql.splitlines():
        match = _ROLE_LINE.match(line)
        if not match:
            continue
        name = match.group(1)
        if name.startswith('"'):
            name = name[1:-1].replace('""', '"')
        if name not in existing:
            lines.append(line)
    return lines


def ensure_roles(cfg: Config, restic: Restic, snapshot: Snapshot, located: Located) -> None:
    """Create the dumped server's PostgreSQL roles missing here (a restore onto another
    server): the database's owner and privileges refer to them. Existing roles are left
    as they are."""
    if located.cluster is None or not located.globals_file:
        return
    pg = PostgreSQL()
    existing = {row[0] for row in pg.query(located.cluster, "SELECT rolname FROM pg_roles")}
    if located.entry.get("owner") in existing:
        return
    dumped = restic.read(snapshot.id, str(cfg.dump_dir / located.globals_file))
    lines = roles_to_create(dumped.decode("utf-8", "replace"), existing)
    if lines:
        pg.query(located.cluster, "\n".join(lines))
        log(f"postgresql {located.cluster.label}: created {len(lines)} role statement(s)")


def _exists(located: Located, name: str) -> bool:
    if located.engine == "mariadb":
        return MariaDB().exists(name)
    assert located.cluster is not None
    return PostgreSQL().exists(located.cluster, name)


def cmd_restore_db(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    for value, flag in ((args.database, "--database"), (args.as_name, "--as")):
        if value is not None and not DB_NAME.fullmatch(value):
            raise ConfigError(f"{flag}: {value!r} is not a database name ([A-Za-z0-9_$-], 1-64)")
    if args.as_name and args.as_name.startswith(SCRATCH_PREFIX):
        raise ConfigError(f"--as: names starting with {SCRATCH_PREFIX} are kept for verify")
    with exclusive(cfg, args.lock_wait):
        restic = Restic(cfg)
        snapshot = resolve_snapshot(cfg, restic, args, "dumps")
        manifest = read_manifest(cfg, restic, snapshot)
        located = target_cluster(locate_database(manifest, args.database, args.engine))
        target = args.as_name or args.database
        exists = _exists(located, target)
        plan = {
            "action": "restore-database",
            "engine": located.engine,
            "cluster": located.cluster.label if located.cluster else None,
            "database": args.database,
            "target": target,
            "target_exists": exists,
            "replaces_live_data": exists,
            "snapshot": snapshot.to_json(cfg.zone),
            "tables": sorted(located.entry.get("tables", {})),
        }
        if args.plan:
            return {"ok": True, "plan": plan, "done": False}
        if exists and not args.replace:
            raise Refused(
                f"{located.engine} database {target!r} exists: restoring the snapshot of "
                f"{plan['snapshot']['time']} over it loses everything written to it since; "
                "confirm with --replace"
            )
        restic.unlock()
        ensure_roles(cfg, restic, snapshot, located)
        restore_database(cfg, restic, snapshot, located, target=target, replace=exists)
        log(
            f"restored {located.engine} database {args.database} from snapshot "
            f"{snapshot.short_id} ({plan['snapshot']['time']}) as {target}"
        )
        return {"ok": True, "plan": plan, "done": True}


@contextlib.contextmanager
def work_file(cfg: Config, name: str) -> Iterator[Path]:
    cfg.work_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = Path(tempfile.mkdtemp(dir=cfg.work_dir, prefix="restore-"))
    try:
        yield folder / name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def restore_database(
    cfg: Config,
    restic: Restic,
    snapshot: Snapshot,
    located: Located,
    *,
    target: str,
    replace: bool,
    owners: bool = True,
) -> None:
    entry = located.entry
    with work_file(cfg, "dump") as dump:
        with open(dump, "wb") as out:
            restic.dump(snapshot.id, str(cfg.dump_dir / entry["file"]), out)
        if sha256_file(dump) != entry.get("sha256", sha256_file(dump)):
            raise Failure(f"{entry['file']}: the restored dump does not match its checksum")
        if located.engine == "mariadb":
            db = MariaDB()
            if replace:
                db.drop(target)
            db.create(target, entry)
            db.load(target, dump)
        else:
            assert located.cluster is not None
            pg = PostgreSQL()
            if replace:
                pg.drop(located.cluster, target)
            pg.create(located.cluster, target, entry, owner=owners)
            pg.load(located.cluster, target, dump, owners=owners)


def _tree_is_empty(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and not any(path.iterdir()))


def cmd_restore_files(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    source = os.path.normpath(args.path)
    target = Path(os.path.normpath(args.to))
    if not source.startswith("/") or not str(target).startswith("/"):
        raise ConfigError("--path and --to must be absolute paths")
    if str(target) in PROTECTED:
        raise ConfigError(f"--to: refusing to replace {target} (a system directory)")
    if not target.parent.is_dir():
        raise ConfigError(f"--to: the parent directory {target.parent} does not exist")
    with exclusive(cfg, args.lock_wait):
        restic = Restic(cfg)
        snapshot = resolve_snapshot(cfg, restic, args, "files")
        if not any(source == p or source.startswith(p.rstrip("/") + "/") for p in snapshot.paths):
            raise Failure(
                f"{source} is not in snapshot {snapshot.short_id} "
                f"(it holds {', '.join(snapshot.paths)})"
            )
        live = not _tree_is_empty(target)
        plan = {
            "action": "restore-files",
            "path": source,
            "to": str(target),
            "target_exists": target.exists(),
            "replaces_live_data": live,
            "snapshot": snapshot.to_json(cfg.zone),
        }
        if args.plan:
            return {"ok": True, "plan": plan, "done": False}
        if live and not args.replace:
            raise Refused(
                f"{target} exists and is not empty: restoring the snapshot of "
                f"{plan['snapshot']['time']} replaces it, losing every change made since; "
                "confirm with --replace"
            )
        restic.unlock()
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.restore-"))
        try:
            restic.restore(snapshot.id, staging, source)
            restored = staging / source.lstrip("/")
            if not os.path.lexists(restored):
                raise Failure(f"{source}: restic restored nothing")
            # swap: same file system, so both renames are atomic
            aside = None
            if os.path.lexists(target):
                aside = target.with_name(f".{target.name}.before-restore-{os.getpid()}")
                os.rename(target, aside)
            os.rename(restored, target)
            if aside is not None:
                if aside.is_dir() and not aside.is_symlink():
                    shutil.rmtree(aside)
                else:
                    aside.unlink()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log(f"restored {source} from snapshot {snapshot.short_id} to {target}")
        return {"ok": True, "plan": plan, "done": True}
