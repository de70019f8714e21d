"""Constants, errors and the log shared by every part of hostops-backup."""

from __future__ import annotations

import datetime as dt
import re
import sys
from pathlib import Path
from typing import Any

CONFIG_FILE = Path("/etc/hostops-backup/backup.json")

EXIT_FAILED = 1

EXIT_USAGE = 2

EXIT_REFUSED = 4

EXIT_BUSY = 75

KINDS = ("dumps", "files")

ENGINES = ("mariadb", "postgresql", "mongodb")

TAG = "hostops"

INCOMPLETE_TAG = "hostops-incomplete"

INCOMPLETE_PREFIX = "incomplete:"

MANIFEST = "manifest.json"

MANIFEST_FORMAT = 1

SCRATCH_PREFIX = "hostops_verify_"

MAX_NAME = 64  # MariaDB's identifier limit; PostgreSQL's is 63 bytes

DB_NAME = re.compile(r"[A-Za-z0-9_$-]{1,64}")

PROTECTED = frozenset(
    (
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib64",
        "/proc",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var",
    )
)


class Failure(Exception):
    """The operation failed; the message says why, for the log and the operator."""

    status = EXIT_FAILED


class ReportedFailure(Failure):
    """A failure that still has a report to print (which kinds failed, which worked)."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class ConfigError(Failure):
    status = EXIT_USAGE


class Refused(Failure):
    status = EXIT_REFUSED


class Busy(Failure):
    status = EXIT_BUSY


class CommandFailed(Failure):
    """A command exited with a status it should not have."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Terminated(Exception):
    """SIGTERM (systemd's stop or a start timeout): record the failure, then exit."""


def log(message: str) -> None:
    print(f"hostops-backup: {message}", file=sys.stderr, flush=True)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
