"""The configuration file the role writes (/etc/hostops-backup/backup.json), checked at each run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .common import CONFIG_FILE, ENGINES, ConfigError


@dataclass(frozen=True)
class Config:
    host: str
    repository: str
    password_file: Path
    retention_days: int
    timezone: str
    paths: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    # the repository's URL with its credentials, root only; *repository* is then only
    # what people are shown
    repository_file: Path | None = None
    cacert: Path | None = None
    cache_dir: Path = Path("/var/cache/hostops-backup/restic")
    dump_dir: Path = Path("/var/backups/hostops/dumps")
    work_dir: Path = Path("/var/backups/hostops/work")
    state_file: Path = Path("/var/lib/hostops-backup/state.json")
    metrics_file: Path = Path("/var/lib/prometheus/node-exporter/hostops_backup.prom")
    lock_file: Path = Path("/run/lock/hostops-backup.lock")
    engines_required: tuple[str, ...] = ()
    check_subset_parts: int = 4
    verify_max_age_hours: int = 36
    keep_local_dumps: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _positive_int(data: dict[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    # bool is an int in Python: true must not pass for a retention of one day
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if value < 1:
        raise ConfigError(
            f"{key}: {value} is below 1 (restic would read 0 as 'no policy' and keep "
            "everything, or remove everything on a negative value)"
        )
    return value


def parse_config(data: Any) -> Config:
    """Validate the role-written configuration; every problem is a ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration is not a JSON object")
    known = set(Config.__dataclass_fields__)
    unknown = sorted(k for k in set(data) - known if not k.startswith("_"))  # _: comments
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    for key in ("host", "repository", "password_file", "timezone"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{key}: required text, got {data.get(key)!r}")
    retention = _positive_int(data, "retention_days")
    if retention > 3650:
        raise ConfigError(f"retention_days: {retention} is more than ten years")
    try:
        ZoneInfo(data["timezone"])
    except (KeyError, ValueError) as err:
        raise ConfigError(f"timezone: unknown time zone {data['timezone']!r}") from err
    paths = data.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError("paths: expected a list of absolute paths")
    for path in paths:
        if not path.startswith("/") or "\n" in path:
            raise ConfigError(f"paths: {path!r} is not an absolute path")
    engines = data.get("engines_required", [])
    if not isinstance(engines, list) or any(e not in ENGINES for e in engines):
        raise ConfigError(f"engines_required: expected a list of {', '.join(ENGINES)}")
    excludes = data.get("excludes", [])
    if not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes):
        raise ConfigError("excludes: expected a list of patterns")
    values: dict[str, Any] = {
        "host": data["host"],
        "repository": data["repository"],
        "password_file": Path(data["password_file"]),
        "retention_days": retention,
        "timezone": data["timezone"],
        "paths": tuple(paths),
        "excludes": tuple(excludes),
        "engines_required": tuple(engines),
        "check_subset_parts": _positive_int(data, "check_subset_parts", 4),
        "verify_max_age_hours": _positive_int(data, "verify_max_age_hours", 36),
        "keep_local_dumps": bool(data.get("keep_local_dumps", False)),
    }
    for key in ("repository_file", "cacert"):
        if data.get(key) is not None:
            if not isinstance(data[key], str) or not data[key].startswith("/"):
                raise ConfigError(f"{key}: expected an absolute path, got {data[key]!r}")
            values[key] = Path(data[key])
    for key in ("cache_dir", "dump_dir", "work_dir", "state_file", "metrics_file", "lock_file"):
        if key in data:
            values[key] = Path(data[key])
    return Config(**values)


def load_config(path: Path = CONFIG_FILE) -> Config:
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the configuration ({err.strerror})") from err
    except ValueError as err:
        raise ConfigError(f"{path}: not JSON ({err})") from err
    return parse_config(data)
