"""A dumps run: every database of every engine into the dump directory, with a manifest."""

from __future__ import annotations

import json
import shutil
from typing import Any

from .common import ENGINES, MANIFEST, MANIFEST_FORMAT, Failure, log, now_utc
from .config import Config
from .engines.base import file_name, sha256_file
from .engines.mariadb import MariaDB
from .engines.mongodb import dump_mongodb, mongodb_state
from .engines.postgresql import PostgreSQL


def prepare_dump_dir(cfg: Config) -> None:
    if cfg.dump_dir.exists():
        shutil.rmtree(cfg.dump_dir)
    cfg.dump_dir.mkdir(parents=True, mode=0o700)


def dump_databases(cfg: Config) -> dict[str, Any]:
    """Dump every database of every engine on the host into cfg.dump_dir, with a manifest
    of per-table checksums. Checksums are taken before and after each dump: a table whose
    two values agree did not change during the dump, so its value is the dump's."""
    prepare_dump_dir(cfg)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "host": cfg.host,
        "started_at": now_utc().isoformat(timespec="seconds"),
        "engines": {},
        "skipped": {},
    }
    failures: list[str] = []
    for engine in ENGINES:
        try:
            present = _engine_present(engine)
        except Failure as err:
            failures.append(str(err))
            continue
        if not present:
            why = "not installed" if engine != "mongodb" else mongodb_state()[1]
            if engine in cfg.engines_required:
                failures.append(f"{engine}: required by the order but {why}")
            else:
                log(f"notice: {engine}: {why}; skipped")
                manifest["skipped"][engine] = why
            continue
        try:
            if engine == "mariadb":
                manifest["engines"]["mariadb"] = _dump_mariadb(cfg, failures)
            elif engine == "postgresql":
                manifest["engines"]["postgresql"] = _dump_postgresql(cfg, failures)
            else:
                manifest["engines"]["mongodb"] = dump_mongodb(cfg)
        except Failure as err:
            failures.append(str(err))
    if failures:
        raise Failure("database dumps failed, nothing uploaded: " + "; ".join(failures))
    manifest["finished_at"] = now_utc().isoformat(timespec="seconds")
    (cfg.dump_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _engine_present(engine: str) -> bool:
    if engine == "mariadb":
        return MariaDB.installed()
    if engine == "postgresql":
        return PostgreSQL.installed()
    return mongodb_state()[0]


def _stable(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    tables = {}
    for table, value in after.items():
        tables[table] = {**value, "stable": before.get(table) == value}
    return tables


def _dump_mariadb(cfg: Config, failures: list[str]) -> dict[str, Any]:
    db = MariaDB()
    folder = cfg.dump_dir / "mariadb"
    folder.mkdir(mode=0o700)
    result: dict[str, Any] = {"version": db.version(), "databases": {}}
    for name in db.databases():
        target = folder / f"{file_name(name)}.sql"
        try:
            before = db.checksums(name)
            db.dump(name, target)
            after = db.checksums(name)
        except Failure as err:
            failures.append(str(err))
            continue
        result["databases"][name] = {
            "file": str(target.relative_to(cfg.dump_dir)),
            "bytes": target.stat().st_size,
            "sha256": sha256_file(target),
            **db.info(name),
            "tables": _stable(before, after),
        }
        log(f"mariadb: dumped {name} ({len(after)} tables)")
    users = folder / "_users.sql"
    db.dump_users(users)
    result["users_file"] = str(users.relative_to(cfg.dump_dir))
    return result


def _dump_postgresql(cfg: Config, failures: list[str]) -> dict[str, Any]:
    pg = PostgreSQL()
    result: dict[str, Any] = {"clusters": {}}
    for cluster in pg.clusters():
        folder = cfg.dump_dir / "postgresql" / cluster.directory
        folder.mkdir(parents=True, mode=0o700)
        entry: dict[str, Any] = {"version": pg.version(cluster), "port": cluster.port}
        entry["databases"] = {}
        for name in pg.databases(cluster):
            target = folder / f"{file_name(name)}.dump"
            try:
                before = pg.checksums(cluster, name)
                pg.dump(cluster, name, target)
                after = pg.checksums(cluster, name)
            except Failure as err:
                failures.append(str(err))
                continue
            entry["databases"][name] = {
                "file": str(target.relative_to(cfg.dump_dir)),
                "bytes": target.stat().st_size,
                "sha256": sha256_file(target),
                **pg.info(cluster, name),
                "tables": _stable(before, after),
            }
            log(f"postgresql {cluster.label}: dumped {name} ({len(after)} tables)")
        globals_file = folder / "_globals.sql"
        pg.dump_globals(cluster, globals_file)
        entry["globals_file"] = str(globals_file.relative_to(cfg.dump_dir))
        result["clusters"][cluster.label] = entry
    return result


def dump_size(cfg: Config) -> int:
    return sum(p.stat().st_size for p in cfg.dump_dir.rglob("*") if p.is_file())


def manifest_databases(manifest: dict[str, Any]) -> list[str]:
    engines = manifest.get("engines", {})
    names = [f"mariadb:{n}" for n in engines.get("mariadb", {}).get("databases", {})]
    for cluster in engines.get("postgresql", {}).get("clusters", {}).values():
        names += [f"postgresql:{n}" for n in cluster.get("databases", {})]
    return names
