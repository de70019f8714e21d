#!/usr/bin/python3
"""hostops-backup: database dumps and file backups to a restic repository, and their restore.

Installed by the alteo.hostops.backup role as /usr/local/sbin/hostops-backup and run by
its systemd timers (dumps at the order's time, files nightly, a weekly repository check)
and by the ``hostops backup`` command through playbooks. Standard library only: it runs
on Debian 12 (Python 3.11, restic 0.14) and Debian 13 (Python 3.13, restic 0.18).

What a run guarantees, whatever restic's version does on its own:

* a snapshot is complete or ignored: a configured path that does not exist fails the run
  before restic starts (restic 0.14 skips it with exit status 0), restic's exit status 3
  ("some source data could not be read") fails the run and the incomplete snapshot is
  marked as such (a marker snapshot tagged ``hostops-incomplete``: the repository is
  append-only from here, so the backup host forgets it), and a database dump that fails
  uploads nothing;
* the repository is reached through restic's REST server in append-only mode: this
  server adds snapshots and can never remove any; retention (forget, prune) and the
  repository's checks run on the backup host (hostops-backup-server);
* one run at a time on the host (flock), and stale restic locks left by a killed run on
  this host are removed before the next one (``restic unlock`` removes only stale locks);
* every run publishes its result for node_exporter's textfile collector, written
  atomically; a run killed outright is recorded by the unit's ExecStopPost (``finish``).

The repository password is read by restic from a root-only file (RESTIC_PASSWORD_FILE),
and so is the repository's URL, which carries this server's REST credentials
(RESTIC_REPOSITORY_FILE): neither appears in arguments, the environment of other
processes or logs. The backup host's certificate is checked against its CA (--cacert).

Exit status: 0 success, 1 failure, 2 bad configuration or arguments, 4 refused (the
restore would replace live data and --replace was not given), 75 busy (another run
holds the lock).
"""

# SQL here is built from names the server itself listed, always quoted with quote_mariadb,
# quote_pg or quote_literal below: there is no user input to inject (ruff's S608).
# ruff: noqa: S608

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

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
MARIADB_SYSTEM_SCHEMAS = ("information_schema", "performance_schema", "mysql", "sys")
MARIADB_DUMP_TRAILER = b"-- Dump completed"
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
SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")
# The REST server's answer when the backup host's disk is full. restic retries a failed
# upload for 15 minutes: a full disk does not free itself meanwhile, so the run stops at
# the first such answer and says why.
DISK_FULL = re.compile(rb"\b507 Insufficient Storage\b")
_RESTIC_MESSAGES = {
    # exit statuses restic gives from 0.17 on (0.14 reports these as 1)
    10: "the repository does not exist",
    11: "the repository is locked",
    12: "wrong repository password",
}


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


# --- configuration -------------------------------------------------------------------


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


# --- running commands -----------------------------------------------------------------


def run_until(
    argv: Sequence[str], *, env: dict[str, str], stop_on: re.Pattern[bytes]
) -> tuple[subprocess.CompletedProcess[bytes], bool]:
    """Run a command, its output captured; stop it (SIGTERM: restic removes its lock) the
    moment a line of its standard error matches *stop_on*. Returns the completed process
    and whether it was stopped so."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",
    )
    stdout, stderr = proc.stdout, proc.stderr
    if stdout is None or stderr is None:  # never: both are pipes
        raise Failure(f"{argv[0]}: no output pipes")
    out: list[bytes] = []
    drain = threading.Thread(target=lambda: out.append(stdout.read()))
    drain.start()
    err: list[bytes] = []
    stopped = False
    try:
        for line in stderr:
            err.append(line)
            if not stopped and stop_on.search(line):
                stopped = True
                proc.terminate()
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        drain.join()
    done = subprocess.CompletedProcess(argv, proc.returncode, b"".join(out), b"".join(err))
    return done, stopped


def _tail(text: str | bytes, lines: int = 4) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " / ".join(kept)


def run(
    argv: Sequence[str],
    *,
    what: str,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    user: str | None = None,
    env: dict[str, str] | None = None,
    ok: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run a command; a status outside *ok* is a Failure naming *what* and stderr's tail."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            user=user,
            cwd="/",
            check=False,
        )
    except FileNotFoundError as err:
        raise Failure(f"{what}: {argv[0]} is not installed") from err
    if proc.returncode not in ok:
        detail = _tail(proc.stderr) or _tail(proc.stdout or b"")
        raise CommandFailed(
            f"{what} failed (exit status {proc.returncode}): {detail}", proc.returncode
        )
    return proc


# --- restic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    id: str
    short_id: str
    time: dt.datetime
    kind: str
    paths: tuple[str, ...]
    host: str

    def to_json(self, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "id": self.id,
            "short_id": self.short_id,
            "time": self.time.astimezone(zone).isoformat(timespec="seconds"),
            "kind": self.kind,
            "paths": list(self.paths),
        }


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_restic_time(text: str) -> dt.datetime:
    """restic writes nanoseconds and 'Z'; Python 3.11 reads at most microseconds."""
    text = _FRACTION.sub(r"\1", text.strip(), count=1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value


def incomplete_ids(items: Sequence[dict[str, Any]]) -> set[str]:
    """Snapshots marked incomplete (full ids, or the short ones restic 0.14 reports),
    and the markers themselves."""
    found: set[str] = set()
    for item in items:
        tags = item.get("tags") or []
        if INCOMPLETE_TAG in tags:
            found.add(str(item.get("id")))
            found.update(
                t[len(INCOMPLETE_PREFIX) :] for t in tags if t.startswith(INCOMPLETE_PREFIX)
            )
    return found


def snapshot_from_json(item: dict[str, Any]) -> Snapshot | None:
    tags = item.get("tags") or []
    kinds = [kind for kind in KINDS if kind in tags]
    if TAG not in tags or len(kinds) != 1:
        return None
    return Snapshot(
        id=str(item["id"]),
        short_id=str(item.get("short_id") or item["id"][:8]),
        time=parse_restic_time(str(item["time"])),
        kind=kinds[0],
        paths=tuple(item.get("paths") or ()),
        host=str(item.get("hostname", "")),
    )


class Restic:
    """restic with the configured repository; the password comes from a root-only file."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TZ": cfg.timezone,
            "RESTIC_PASSWORD_FILE": str(cfg.password_file),
        }
        self.base = ["restic", "--cache-dir", str(cfg.cache_dir)]
        if cfg.repository_file is not None:
            self.env["RESTIC_REPOSITORY_FILE"] = str(cfg.repository_file)
        else:
            self.base += ["--repo", cfg.repository]
        if cfg.cacert is not None:
            self.base += ["--cacert", str(cfg.cacert)]

    def command(self, args: Sequence[str]) -> list[str]:
        return [*self.base, *args]

    def run(
        self,
        args: Sequence[str],
        *,
        what: str,
        ok: Sequence[int] = (0,),
        stdout: IO[bytes] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            return run(self.command(args), what=what, env=self.env, ok=ok, stdout=stdout)
        except CommandFailed as err:
            if err.code in _RESTIC_MESSAGES:
                raise CommandFailed(f"{err} ({_RESTIC_MESSAGES[err.code]})", err.code) from err
            raise

    def version(self) -> str:
        out = run(["restic", "version"], what="restic version", env=self.env).stdout
        match = re.search(rb"restic (\d+\.\d+\.\d+)", out)
        return match.group(1).decode() if match else "unknown"

    def reach(self) -> None:
        """Connect to the REST server once: restic itself retries an unreachable backup
        host for 15 minutes before it fails."""
        location = urllib.parse.urlsplit(self.cfg.repository.removeprefix("rest:"))
        if location.scheme not in ("http", "https") or not location.hostname:
            return
        port = location.port or (443 if location.scheme == "https" else 80)
        try:
            socket.create_connection((location.hostname, port), timeout=20).close()
        except OSError as err:
            reason = err.strerror or str(err)
            raise Failure(
                f"cannot reach the backup host {location.hostname} port {port}: {reason}"
            ) from err

    def unlock(self) -> None:
        """Remove stale locks (from this host's dead processes, or older than 30 min).
        This is also the first contact with the repository: it fails early when the
        backup host cannot be reached or the password is wrong."""
        self.reach()
        self.run(["unlock"], what="restic unlock (reaching the repository)")

    def snapshots(self, kind: str | None = None) -> list[Snapshot]:
        """This host's snapshots (of *kind*), oldest first, without those marked incomplete."""
        out = self.run(
            ["snapshots", "--json", "--no-lock", "--host", self.cfg.host],
            what="restic snapshots",
        ).stdout
        items = json.loads(out or b"[]") or []
        incomplete = incomplete_ids(items)
        found = [
            s
            for s in (snapshot_from_json(i) for i in items)
            if s is not None
            and not any(s.id.startswith(i) for i in incomplete)
            and (kind is None or s.kind == kind)
        ]
        return sorted(found, key=lambda s: s.time)

    def mark_incomplete(self, snapshot: str) -> None:
        """The repository is append-only from here: an incomplete snapshot cannot be
        forgotten, so a marker snapshot names it; the backup host's retention run
        forgets both, and listings and restores skip it meanwhile."""
        args = ["backup", "--quiet", "--host", self.cfg.host, "--tag", INCOMPLETE_TAG]
        args += ["--tag", INCOMPLETE_PREFIX + snapshot, "--stdin", "--stdin-filename"]
        args += ["hostops-incomplete"]
        proc = subprocess.run(
            self.command(args),
            input=f"{snapshot}\n".encode(),
            capture_output=True,
            env=self.env,
            cwd="/",
            check=False,
        )
        if proc.returncode != 0:
            raise Failure(
                f"could not mark snapshot {snapshot[:8]} as incomplete (exit status "
                f"{proc.returncode}): {_tail(proc.stderr)}"
            )

    def backup(self, paths: Sequence[str], kind: str, extra: Sequence[str] = ()) -> dict[str, Any]:
        """Back up *paths*; return restic's summary. Exit status 3 is a failure here, and
        so is the backup host's disk being full (restic is stopped at once)."""
        args = ["backup", "--json", "--quiet", "--host", self.cfg.host]
        args += ["--tag", TAG, "--tag", kind, *extra, "--", *paths]
        proc, disk_full = run_until(self.command(args), env=self.env, stop_on=DISK_FULL)
        if disk_full:
            answer = next(
                (line for line in proc.stderr.splitlines() if DISK_FULL.search(line)), b""
            )
            raise Failure(
                f"restic backup of {', '.join(paths)}: the backup host's disk is full (the "
                "REST server answers 507 Insufficient Storage); restic was stopped instead "
                f"of retrying for 15 minutes, no snapshot was made: {_tail(answer)}"
            )
        summary: dict[str, Any] = {}
        errors: list[str] = []
        output = proc.stdout + b"\n" + proc.stderr  # restic 0.14 and 0.18 differ on which
        for line in output.decode("utf-8", "replace").splitlines():
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if message.get("message_type") == "summary":
                    summary = message
                elif message.get("message_type") == "error":
                    error = message.get("error", {})
                    reason = error.get("message") or error.get("Err") or error
                    if isinstance(reason, int):  # restic 0.14: an errno
                        reason = f"{error.get('Op', 'access')}: {os.strerror(reason)}"
                    errors.append(f"{message.get('item', '?')}: {reason}")
        if proc.returncode == 3:
            snapshot = summary.get("snapshot_id")
            if snapshot:
                # Incomplete: never let it count as a day's backup nor be restored.
                self.mark_incomplete(str(snapshot))
            raise Failure(
                f"restic backup of {', '.join(paths)}: some files could not be read "
                f"(exit status 3; the incomplete snapshot is marked and ignored): "
                f"{'; '.join(errors[:5])}"
            )
        if proc.returncode != 0 or not summary.get("snapshot_id"):
            code = proc.returncode
            reason = _RESTIC_MESSAGES.get(code, "")
            raise Failure(
                f"restic backup of {', '.join(paths)} failed (exit status {code}"
                f"{'; ' + reason if reason else ''}): {_tail(proc.stderr)}"
            )
        return summary

    def dump(self, snapshot: str, path: str, out: IO[bytes]) -> None:
        self.run(["dump", snapshot, path], what=f"restic dump {path}", stdout=out)

    def read(self, snapshot: str, path: str) -> bytes:
        return self.run(["dump", "--no-lock", snapshot, path], what=f"restic dump {path}").stdout

    def restore(self, snapshot: str, target: Path, include: str) -> None:
        self.run(
            ["restore", snapshot, "--target", str(target), "--include", include],
            what=f"restic restore {include}",
        )


# --- lock, state and metrics ----------------------------------------------------------


@contextlib.contextmanager
def exclusive(cfg: Config, wait: float) -> Iterator[None]:
    """One run at a time on this host. The kernel releases the lock when the process
    dies, even by SIGKILL, so a killed run never blocks the next one."""
    cfg.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.lock_file, "a+") as lock:
        deadline = time.monotonic() + max(wait, 0)
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock.seek(0)
                    holder = lock.read().strip() or "?"
                    raise Busy(
                        f"another hostops-backup run holds {cfg.lock_file} (pid {holder}); "
                        "try again when it has finished"
                    ) from None
                time.sleep(1)
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class State:
    """Results per kind of run, kept in a JSON file; the metrics are rendered from it."""

    FIELDS = (
        (
            "last_success",
            "hostops_backup_last_success_timestamp_seconds",
            "gauge",
            "When the last successful run of this kind finished (Unix time).",
        ),
        (
            "last_start",
            "hostops_backup_last_start_timestamp_seconds",
            "gauge",
            "When the last run of this kind started (Unix time).",
        ),
        (
            "last_end",
            "hostops_backup_last_end_timestamp_seconds",
            "gauge",
            "When the last run of this kind ended, successfully or not (Unix time).",
        ),
        (
            "duration",
            "hostops_backup_last_duration_seconds",
            "gauge",
            "How long the last run of this kind took.",
        ),
        (
            "size",
            "hostops_backup_last_size_bytes",
            "gauge",
            "Bytes the last successful run backed up (dumps: their size; files: the paths).",
        ),
        (
            "added",
            "hostops_backup_last_added_bytes",
            "gauge",
            "Bytes the last successful run added to the repository.",
        ),
        (
            "failed",
            "hostops_backup_last_run_failed",
            "gauge",
            "1 when the last run of this kind failed, else 0.",
        ),
        (
            "running",
            "hostops_backup_running",
            "gauge",
            "1 while a run of this kind is in progress (stays 1 if a run was killed).",
        ),
        (
            "snapshots",
            "hostops_backup_snapshots",
            "gauge",
            "Snapshots of this kind in the repository after the last run.",
        ),
    )

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, dict[str, Any]]]:
        path = self.cfg.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data: dict[str, dict[str, Any]] = {}
            with contextlib.suppress(FileNotFoundError, ValueError):
                data = json.loads(path.read_text())
            yield data
            _write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)
            self.publish(data)

    def update(self, kind: str, **values: Any) -> None:
        with self.edit() as data:
            data.setdefault(kind, {}).update(values)

    def publish(self, data: dict[str, dict[str, Any]]) -> None:
        lines = []
        for key, metric, kind_, help_text in self.FIELDS:
            samples = [
                f'{metric}{{kind="{kind}"}} {_number(values[key])}'
                for kind, values in sorted(data.items())
                if values.get(key) is not None
            ]
            if samples:
                lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind_}", *samples]
        lines += [
            "# HELP hostops_backup_retention_days Daily snapshots kept of each kind.",
            "# TYPE hostops_backup_retention_days gauge",
            f"hostops_backup_retention_days {self.cfg.retention_days}",
        ]
        _write_atomic(self.cfg.metrics_file, "\n".join(lines) + "\n", 0o644)


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.3f}"


@contextlib.contextmanager
def recorded(cfg: Config, kind: str) -> Iterator[dict[str, Any]]:
    """Record a run of *kind*: running while it goes, then success or failure."""
    state = State(cfg)
    started = time.time()
    state.update(kind, running=1, last_start=started)
    result: dict[str, Any] = {}
    try:
        yield result
    except BaseException as err:
        message = str(err) or err.__class__.__name__
        if isinstance(err, Terminated | KeyboardInterrupt):
            message = "terminated before the end (stop request or start timeout)"
        state.update(
            kind,
            running=0,
            failed=1,
            last_end=time.time(),
            duration=time.time() - started,
            message=message[:500],
        )
        raise
    ended = time.time()
    state.update(
        kind,
        running=0,
        failed=0,
        last_end=ended,
        last_success=ended,
        duration=ended - started,
        message="ok",
        **result,
    )


# --- database engines -----------------------------------------------------------------


def file_name(name: str) -> str:
    """A database name as a file name: names are not restricted like file names are."""
    return urllib.parse.quote(name, safe="") or "_"


def quote_mariadb(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_pg(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def scratch_name(database: str) -> str:
    name = SCRATCH_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", database)
    if len(name) > 63:
        digest = hashlib.sha256(database.encode()).hexdigest()[:8]
        name = name[: 63 - 9] + "_" + digest
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class MariaDB:
    """MariaDB as root over the local socket (Debian's unix_socket authentication)."""

    engine = "mariadb"

    @staticmethod
    def installed() -> bool:
        return any(Path(p).exists() for p in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld"))

    @staticmethod
    def dump_tool() -> str:
        return shutil.which("mariadb-dump") or shutil.which("mysqldump") or "mariadb-dump"

    def query(self, sql: str, database: str | None = None) -> list[list[str]]:
        argv = ["mariadb", "--batch", "--skip-column-names", "--raw", "--execute", sql]
        if database is not None:
            argv.insert(1, f"--database={database}")
        out = run(argv, what="mariadb query").stdout.decode("utf-8", "replace")
        return [line.split("\t") for line in out.splitlines() if line]

    def version(self) -> str:
        return self.query("SELECT VERSION()")[0][0]

    def databases(self) -> list[str]:
        excluded = ",".join(quote_literal(s) for s in MARIADB_SYSTEM_SCHEMAS)
        rows = self.query(
            "SELECT schema_name FROM information_schema.schemata "
            f"WHERE schema_name NOT IN ({excluded}) AND schema_name NOT LIKE "
            f"{quote_literal(SCRATCH_PREFIX + '%')} ORDER BY schema_name"
        )
        return [row[0] for row in rows]

    def exists(self, database: str) -> bool:
        rows = self.query(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = "
            + quote_literal(database)
        )
        return rows[0][0] == "1"

    def info(self, database: str) -> dict[str, str]:
        row = self.query(
            "SELECT default_character_set_name, default_collation_name "
            "FROM information_schema.schemata WHERE schema_name = " + quote_literal(database)
        )[0]
        return {"charset": row[0], "collation": row[1]}

    def tables(self, database: str) -> list[str]:
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"{quote_literal(database)} AND table_type = 'BASE TABLE' ORDER BY table_name"
        )
        return [row[0] for row in rows]

    def checksums(self, database: str) -> dict[str, dict[str, Any]]:
        """Per table: CHECKSUM TABLE ... EXTENDED (reads every row) and the row count."""
        tables = self.tables(database)
        if not tables:
            return {}
        listed = ", ".join(f"{quote_mariadb(database)}.{quote_mariadb(t)}" for t in tables)
        # one row per table, in the order asked
        checked = self.query(f"CHECKSUM TABLE {listed} EXTENDED")
        if len(checked) != len(tables):
            raise Failure(f"CHECKSUM TABLE in {database}: {len(checked)} rows for {len(tables)}")
        sums = {table: row[-1] for table, row in zip(tables, checked, strict=True)}
        counts = self.query(
            " UNION ALL ".join(
                f"SELECT {quote_literal(t)}, COUNT(*) FROM {quote_mariadb(database)}."
                f"{quote_mariadb(t)}"
                for t in tables
            )
        )
        rows = {name: int(count) for name, count in counts}
        return {t: {"checksum": sums.get(t, "NULL"), "rows": rows.get(t, 0)} for t in tables}

    def dump(self, database: str, target: Path) -> None:
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as out:
            run(
                [
                    self.dump_tool(),
                    "--single-transaction",
                    "--routines",
                    "--events",
                    "--triggers",
                    "--hex-blob",
                    "--default-character-set=utf8mb4",
                    "--",
                    database,
                ],
                what=f"mariadb-dump {database}",
                stdout=out,
            )
        with open(partial, "rb") as dumped:
            dumped.seek(max(partial.stat().st_size - 200, 0))
            if MARIADB_DUMP_TRAILER not in dumped.read():
                raise Failure(f"mariadb-dump {database}: the dump is truncated (no trailer)")
        partial.rename(target)

    def dump_users(self, target: Path) -> None:
        with open(target, "wb") as out:
            run(
                [self.dump_tool(), "--system=users"],
                what="mariadb-dump --system=users",
                stdout=out,
            )

    def create(self, database: str, info: dict[str, str]) -> None:
        options = ""
        if info.get("charset"):
            options += f" CHARACTER SET {info['charset']}"
        if info.get("collation"):
            options += f" COLLATE {info['collation']}"
        self.query(f"CREATE DATABASE {quote_mariadb(database)}{options}")

    def drop(self, database: str) -> None:
        self.query(f"DROP DATABASE IF EXISTS {quote_mariadb(database)}")

    def load(self, database: str, dump: Path) -> None:
        with open(dump, "rb") as stream:
            run(
                ["mariadb", "--batch", f"--database={database}"],
                what=f"loading the dump into {database}",
                stdin=stream,
            )


@dataclass(frozen=True)
class Cluster:
    version: str
    name: str
    port: str

    @property
    def label(self) -> str:
        return f"{self.version}/{self.name}"

    @property
    def directory(self) -> str:
        return f"{self.version}-{self.name}"


class PostgreSQL:
    """PostgreSQL as the postgres user (peer authentication), per cluster."""

    engine = "postgresql"
    SEP = "\x1f"

    @staticmethod
    def installed() -> bool:
        return shutil.which("pg_lsclusters") is not None and bool(PostgreSQL.all_clusters())

    @staticmethod
    def all_clusters() -> list[tuple[Cluster, str]]:
        out = run(["pg_lsclusters", "--no-header"], what="pg_lsclusters").stdout.decode()
        clusters = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 4:
                clusters.append((Cluster(parts[0], parts[1], parts[2]), parts[3]))
        return clusters

    def clusters(self) -> list[Cluster]:
        found = self.all_clusters()
        down = [c.label for c, status in found if not status.startswith("online")]
        if down:
            raise Failure(f"postgresql: cluster(s) {', '.join(down)} are not running")
        return [cluster for cluster, _state in found]

    def env(self, cluster: Cluster) -> dict[str, str]:
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "PGCLUSTER": cluster.label,
            "LANG": "C.UTF-8",
            "PGAPPNAME": "hostops-backup",
        }

    def query(self, cluster: Cluster, sql: str, database: str = "postgres") -> list[list[str]]:
        argv = ["psql", "-X", "-q", "-A", "-t", "-F", self.SEP, "-v", "ON_ERROR_STOP=1"]
        argv += ["-d", database, "-c", sql]
        out = run(argv, what="psql", user="postgres", env=self.env(cluster)).stdout
        return [line.split(self.SEP) for line in out.decode("utf-8", "replace").splitlines()]

    def version(self, cluster: Cluster) -> str:
        return self.query(cluster, "SHOW server_version")[0][0]

    def databases(self, cluster: Cluster) -> list[str]:
        rows = self.query(
            cluster,
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate "
            f"AND datname NOT LIKE {quote_literal(SCRATCH_PREFIX + '%')} ORDER BY 1",
        )
        return [row[0] for row in rows if row and row[0]]

    def exists(self, cluster: Cluster, database: str) -> bool:
        rows = self.query(
            cluster, f"SELECT count(*) FROM pg_database WHERE datname = {quote_literal(database)}"
        )
        return rows[0][0] == "1"

    def info(self, cluster: Cluster, database: str) -> dict[str, str]:
        row = self.query(
            cluster,
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, "
            f"datctype FROM pg_database WHERE datname = {quote_literal(database)}",
        )[0]
        return {"owner": row[0], "encoding": row[1], "collate": row[2], "ctype": row[3]}

    def tables(self, cluster: Cluster, database: str) -> list[tuple[str, str]]:
        rows = self.query(
            cluster,
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema') ORDER BY 1, 2",
            database,
        )
        return [(row[0], row[1]) for row in rows if len(row) == 2]

    def checksums(self, cluster: Cluster, database: str) -> dict[str, dict[str, Any]]:
        """Per table: md5 over the rows' md5s in a fixed (C collation) order, and the count."""
        tables = self.tables(cluster, database)
        if not tables:
            return {}
        parts = []
        for schema, table in tables:
            label = quote_literal(f"{schema}.{table}")
            source = f"{quote_pg(schema)}.{quote_pg(table)}"
            parts.append(
                f"SELECT {label}, count(*), md5(coalesce(string_agg(h, '' ORDER BY h COLLATE "
                f"\"C\"), '')) FROM (SELECT md5(t::text) AS h FROM ONLY {source} AS t) AS s"
            )
        rows = self.query(cluster, " UNION ALL ".join(parts), database)
        return {row[0]: {"rows": int(row[1]), "checksum": row[2]} for row in rows if len(row) == 3}

    def dump(self, cluster: Cluster, database: str, target: Path) -> None:
        partial = target.with_name(target.name + ".part")
        with open(partial, "wb") as out:
            # -Z0: restic compresses and deduplicates; a compressed dump defeats both
            run(
                ["pg_dump", "-Fc", "-Z0", "-d", database],
                what=f"pg_dump {database} ({cluster.label})",
                stdout=out,
                user="postgres",
                env=self.env(cluster),
            )
        partial.rename(target)

    def dump_globals(self, cluster: Cluster, target: Path) -> None:
        with open(target, "wb") as out:
            run(
                ["pg_dumpall", "--globals-only"],
                what=f"pg_dumpall --globals-only ({cluster.label})",
                stdout=out,
                user="postgres",
                env=self.env(cluster),
            )

    def create(self, cluster: Cluster, database: str, info: dict[str, str], owner: bool) -> None:
        sql = f"CREATE DATABASE {quote_pg(database)} TEMPLATE template0"
        if info.get("encoding"):
            sql += f" ENCODING {quote_literal(info['encoding'])}"
        if info.get("collate") and info.get("ctype"):
            sql += f" LC_COLLATE {quote_literal(info['collate'])}"
            sql += f" LC_CTYPE {quote_literal(info['ctype'])}"
        if owner and info.get("owner"):
            sql += f" OWNER {quote_pg(info['owner'])}"
        self.query(cluster, sql)

    def drop(self, cluster: Cluster, database: str) -> None:
        self.query(cluster, f"DROP DATABASE IF EXISTS {quote_pg(database)} WITH (FORCE)")

    def load(self, cluster: Cluster, database: str, dump: Path, owners: bool) -> None:
        argv = ["pg_restore", "--exit-on-error", "--single-transaction", "-d", database]
        if not owners:
            argv[1:1] = ["--no-owner", "--no-acl"]
        with open(dump, "rb") as stream:  # read as root, fed to pg_restore as postgres
            run(
                argv,
                what=f"pg_restore into {database}",
                stdin=stream,
                user="postgres",
                env=self.env(cluster),
            )


def mongodb_state() -> tuple[bool, str]:
    """(dump it?, why not). The MongoDB code path is not tested: Debian ships neither the
    server nor the database tools, so no lab host can have them."""
    dump = shutil.which("mongodump")
    server = shutil.which("mongod") or Path("/usr/bin/mongod").exists()
    if dump:
        return True, ""
    if server:
        raise Failure("mongodb: mongod is installed but mongodump is not; install the tools")
    return False, "mongodump is not installed"


# --- dumps ----------------------------------------------------------------------------


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
                manifest["engines"]["mongodb"] = _dump_mongodb(cfg)
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
            "sha256": _sha256(target),
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
                "sha256": _sha256(target),
                **pg.info(cluster, name),
                "tables": _stable(before, after),
            }
            log(f"postgresql {cluster.label}: dumped {name} ({len(after)} tables)")
        globals_file = folder / "_globals.sql"
        pg.dump_globals(cluster, globals_file)
        entry["globals_file"] = str(globals_file.relative_to(cfg.dump_dir))
        result["clusters"][cluster.label] = entry
    return result


def _dump_mongodb(cfg: Config) -> dict[str, Any]:
    """Untested here (no MongoDB in Debian): a whole-instance archive with mongodump."""
    folder = cfg.dump_dir / "mongodb"
    folder.mkdir(mode=0o700)
    target = folder / "all.archive"
    run(["mongodump", f"--archive={target}"], what="mongodump")
    log("mongodb: dumped the instance (this code path is not covered by the lab tests)")
    return {"file": str(target.relative_to(cfg.dump_dir)), "bytes": target.stat().st_size}


def dump_size(cfg: Config) -> int:
    return sum(p.stat().st_size for p in cfg.dump_dir.rglob("*") if p.is_file())


# --- runs -----------------------------------------------------------------------------


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
            databases = sorted(_manifest_databases(manifest))
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
    kinds = KINDS if args.kind == "all" else (args.kind,)
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


def _manifest_databases(manifest: dict[str, Any]) -> list[str]:
    engines = manifest.get("engines", {})
    names = [f"mariadb:{n}" for n in engines.get("mariadb", {}).get("databases", {})]
    for cluster in engines.get("postgresql", {}).get("clusters", {}).values():
        names += [f"postgresql:{n}" for n in cluster.get("databases", {})]
    return names


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
        databases = _manifest_databases(read_manifest(cfg, restic, latest_dumps[-1]))
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


# --- choosing a snapshot ----------------------------------------------------------------


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


def _resolve(cfg: Config, restic: Restic, args: argparse.Namespace, kind: str) -> Snapshot:
    return pick_snapshot(restic.snapshots(kind), args.snapshot or args.at, cfg.zone, kind)


# --- restore ----------------------------------------------------------------------------


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
        known = ", ".join(_manifest_databases(manifest)) or "none"
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
        snapshot = _resolve(cfg, restic, args, "dumps")
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
        _restore_database(cfg, restic, snapshot, located, target=target, replace=exists)
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


def _restore_database(
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
        if _sha256(dump) != entry.get("sha256", _sha256(dump)):
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
        snapshot = _resolve(cfg, restic, args, "files")
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


# --- verify -----------------------------------------------------------------------------


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
        snapshot = _resolve(cfg, restic, args, "dumps")
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
        for name in sorted(_manifest_databases(manifest)):
            engine, database = name.split(":", 1)
            located = locate_database(manifest, database, engine)
            scratch = scratch_name(database)
            entry: dict[str, Any] = {"engine": engine, "database": database, "scratch": scratch}
            try:
                _drop_scratch(located, scratch)
                _restore_database(
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


# --- command line -----------------------------------------------------------------------


def cmd_restic(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """restic with the configured repository, for operators: hostops-backup restic snapshots"""
    restic = Restic(cfg)
    proc = subprocess.run(restic.command(args.restic_args), env=restic.env, check=False)
    raise SystemExit(proc.returncode)


def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n", maxsplit=1)[0]
    parser = argparse.ArgumentParser(prog="hostops-backup", description=summary)
    parser.add_argument("--config", type=Path, default=CONFIG_FILE)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    verbs = parser.add_subparsers(dest="verb", required=True)

    def lock_wait(p: argparse.ArgumentParser, default: float = 0) -> None:
        p.add_argument(
            "--lock-wait",
            type=float,
            default=default,
            metavar="SECONDS",
            help="wait this long for another run to finish (default: fail at once)",
        )

    p = verbs.add_parser("run", help="back up now: dumps, files or both")
    p.add_argument("--kind", choices=("all", *KINDS), default="all")
    lock_wait(p)
    p.set_defaults(func=cmd_run)

    p = verbs.add_parser("finish", help="ExecStopPost: record a run that died as failed")
    p.add_argument("--kind", choices=(*KINDS, "check"), required=True)
    p.set_defaults(func=cmd_finish)

    p = verbs.add_parser("check", help="restic check, reading a part of the data in turn")
    p.add_argument("--subset", help="read this data subset instead (n/t, x%%, or a size)")
    lock_wait(p)
    p.set_defaults(func=cmd_check)

    p = verbs.add_parser("snapshots", help="list the snapshots and the last dumps' databases")
    p.set_defaults(func=cmd_snapshots)

    def when(p: argparse.ArgumentParser, default: str | None) -> None:
        group = p.add_mutually_exclusive_group(required=default is None)
        group.add_argument("--at", default=default, help="latest, YYYY-MM-DD or ISO 8601 time")
        group.add_argument("--snapshot", help="a snapshot id")

    p = verbs.add_parser("restore-db", help="restore a database from a dumps snapshot")
    p.add_argument("--database", required=True)
    p.add_argument("--engine", choices=("mariadb", "postgresql"))
    p.add_argument("--as", dest="as_name", help="restore under this name instead")
    when(p, None)
    p.add_argument("--plan", action="store_true", help="only say what would be done")
    p.add_argument("--replace", action="store_true", help="allow replacing a live database")
    lock_wait(p)
    p.set_defaults(func=cmd_restore_db)

    p = verbs.add_parser("restore-files", help="restore a path from a files snapshot")
    p.add_argument("--path", required=True)
    p.add_argument("--to", required=True, help="where the path is restored (it becomes it)")
    when(p, None)
    p.add_argument("--plan", action="store_true", help="only say what would be done")
    p.add_argument("--replace", action="store_true", help="allow replacing live files")
    lock_wait(p)
    p.set_defaults(func=cmd_restore_files)

    p = verbs.add_parser("verify", help="restore the dumps into scratch databases and compare")
    when(p, "latest")
    lock_wait(p)
    p.set_defaults(func=cmd_verify)

    p = verbs.add_parser("restic", help="run restic on the configured repository")
    p.add_argument("restic_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_restic)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.umask(0o077)
    report: dict[str, Any]
    try:
        cfg = load_config(args.config)
        os.environ["TZ"] = cfg.timezone
        time.tzset()
        report = args.func(cfg, args)
        status = 0
    except Failure as err:
        log(f"ERROR: {err}")
        report = getattr(err, "report", None) or {"ok": False}
        report.setdefault("error", str(err))
        report["ok"] = False
        status = err.status
    except Terminated:
        log("ERROR: terminated (stop request or start timeout)")
        report, status = {"ok": False, "error": "terminated"}, 143
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    elif report.get("error") is None:
        print(json.dumps(report, indent=2, sort_keys=True) if args.verb != "finish" else "ok")
    return status


if __name__ == "__main__":
    sys.exit(main())
