"""hostops's own settings: one configuration file, with environment overrides.

The file is ``/etc/hostops/config.yml`` (another with ``HOSTOPS_CONFIG``); it is optional,
and every key has a default::

    state_dir: /var/lib/hostops        # orders, delivery notes, run artifacts, escrow
    inventories:                       # used when a command is given no --inventory/--lab
      - /etc/hostops/inventories/production
    monitoring_server: mon01.alteo.example

An environment variable wins over the file: ``HOSTOPS_STATE_DIR``. The file is read
once per command; a wrong key or value is a usage error (exit 2) that names the file,
the key and the value, before anything else is done.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hostops.core.errors import UsageError
from hostops.core.textfile import FileTooBig, NotRegularFile, read_regular

DEFAULT_CONFIG = Path("/etc/hostops/config.yml")
DEFAULT_STATE_DIR = Path("/var/lib/hostops")
KEYS = ("state_dir", "inventories", "monitoring_server")


@dataclass(frozen=True)
class Settings:
    state_dir: Path = DEFAULT_STATE_DIR
    inventories: tuple[Path, ...] = field(default_factory=tuple)
    monitoring_server: str | None = None
    source: Path | None = None  # the file read, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "config_file": str(self.source) if self.source else None,
            "state_dir": str(self.state_dir),
            "inventories": [str(p) for p in self.inventories],
            "monitoring_server": self.monitoring_server,
        }


def config_path() -> Path:
    return Path(os.environ.get("HOSTOPS_CONFIG") or DEFAULT_CONFIG)


def parse(data: Any, source: Path) -> Settings:
    """Settings from a loaded YAML document; every problem named at once."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise UsageError(f"{source}: must be a mapping of settings ({', '.join(KEYS)})")
    problems = [
        f"{source}: {key!r} is not a setting (known: {', '.join(KEYS)})"
        for key in data
        if key not in KEYS
    ]
    state = data.get("state_dir", str(DEFAULT_STATE_DIR))
    if not isinstance(state, str) or not state.startswith("/"):
        problems.append(f"{source}: state_dir: {state!r} must be an absolute path")
    inventories = data.get("inventories", [])
    if isinstance(inventories, str):
        inventories = [inventories]
    if not isinstance(inventories, list) or not all(isinstance(p, str) and p for p in inventories):
        problems.append(f"{source}: inventories: {inventories!r} must be a list of paths")
        inventories = []
    server = data.get("monitoring_server")
    if server is not None and (not isinstance(server, str) or not server.strip()):
        problems.append(f"{source}: monitoring_server: {server!r} must be a host name")
    if problems:
        raise UsageError(problems)
    return Settings(
        state_dir=Path(state),
        inventories=tuple(Path(p) for p in inventories),
        monitoring_server=server,
        source=source,
    )


@cache
def _from_file(path: Path) -> Settings:
    if not path.exists():
        if "HOSTOPS_CONFIG" in os.environ:
            raise UsageError(f"HOSTOPS_CONFIG: {str(path)!r} does not exist")
        return Settings()
    try:
        text = read_regular(path, 1 << 20).decode("utf-8")
    except NotRegularFile as err:
        raise UsageError(f"{path}: is {err.kind}, not a configuration file") from None
    except FileTooBig:
        raise UsageError(f"{path}: larger than 1 MiB, not a configuration file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: cannot be read ({err.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UsageError(f"{path}: not valid YAML{where}") from None
    return parse(data, path)


def settings() -> Settings:
    """The settings in force: the file's, then the environment's overrides."""
    found = _from_file(config_path())
    env_state = os.environ.get("HOSTOPS_STATE_DIR")
    if env_state:
        if not env_state.startswith("/"):
            raise UsageError(f"HOSTOPS_STATE_DIR: {env_state!r} must be an absolute path")
        found = Settings(
            state_dir=Path(env_state),
            inventories=found.inventories,
            monitoring_server=found.monitoring_server,
            source=found.source,
        )
    return found


def state_dir() -> Path:
    """Where the fleet's records live: never in a checkout."""
    return settings().state_dir


def inventories_or_default(given: list[Path]) -> list[Path]:
    """The --inventory options given, or else the configuration file's inventories."""
    return list(given) if given else list(settings().inventories)


RUN_STAMP = "%Y%m%dT%H%M%S%fZ"  # UTC, to the microsecond: run directories sort by time


def new_run_dir(*parts: str, kind: str | None = None, moment: datetime | None = None) -> Path:
    """A new, private (0700) directory for one run under the state directory:
    ``<state>/PARTS.../<UTC time>[-KIND]``; it never exists before."""
    stamp = (moment or datetime.now(UTC)).astimezone(UTC).strftime(RUN_STAMP)
    path = state_dir().joinpath(*parts, f"{stamp}-{kind}" if kind else stamp)
    path.mkdir(parents=True, mode=0o700)
    return path


def operator() -> str:
    """Who runs the command, for the records: the sudo caller, else the login (the
    environment, then the password database), else ``unknown``."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
