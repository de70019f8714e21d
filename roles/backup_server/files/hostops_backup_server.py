#!/usr/bin/python3
"""hostops-backup-server: retention, checks and metrics of the restic repositories on a
backup host.

Installed by the alteo.hostops.backup_server role as /usr/local/sbin/hostops-backup-server
and run by its systemd timers. The managed servers write to their repositories through
restic's REST server in append-only mode: they can add snapshots, never remove any. So
what removes data runs here, and only here:

* ``prune``: per repository and kind of snapshot (dumps, files), ``restic forget
  --keep-daily N`` with N the order's retention (28 days, 7 for shared hosting), then
  ``restic prune`` when something was forgotten. Snapshots a server marked incomplete
  (restic's exit status 3: some files could not be read) are forgotten first.
* ``check``: ``restic check --read-data-subset=n/N``, n rotating by ISO week, so that all
  the data is read every N weeks.
* ``metrics``: per repository the last snapshot of each kind, the number of snapshots,
  the size on disk, and the results of the last prune and check, with the free space of
  the repositories' file system, for node_exporter's textfile collector.

Each repository is described by the backup role in ``repos/<name>.json`` (its retention)
and ``keys/<name>`` (its restic password, root only). restic runs as the REST server's
user, so that the files it writes stay readable and removable by the server; the password
reaches it on its standard input, never in arguments, environment or files it can read.

Standard library only. Exit status: 0 success, 1 failure, 2 bad configuration or
arguments, 75 busy (another run holds the lock).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

CONFIG_FILE = Path("/etc/hostops-backup-server/server.json")
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUSY = 75
KINDS = ("dumps", "files")
TAG = "hostops"
INCOMPLETE_TAG = "hostops-incomplete"
INCOMPLETE_PREFIX = "incomplete:"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
# a full snapshot id, or the short one restic 0.14's backup summary gives
SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")


class Failure(Exception):
    status = EXIT_FAILED


class ConfigError(Failure):
    status = EXIT_USAGE


class Busy(Failure):
    status = EXIT_BUSY


class Terminated(Exception):
    """SIGTERM (systemd's stop or a start timeout)."""


def log(message: str) -> None:
    print(f"hostops-backup-server: {message}", file=sys.stderr, flush=True)


def _tail(text: bytes, lines: int = 4) -> str:
    kept = [ln.strip() for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
    return " / ".join(kept[-lines:])


# --- configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    root: Path
    repos_dir: Path
    keys_dir: Path
    user: str
    timezone: str
    check_subset_parts: int = 4
    legacy_root: Path = Path("/srv/restic")
    state_file: Path = Path("/var/lib/hostops-backup-server/state.json")
    cache_dir: Path = Path("/var/cache/hostops-backup-server")
    metrics_file: Path = Path("/var/lib/prometheus/node-exporter/hostops_backup_server.prom")
    lock_file: Path = Path("/run/lock/hostops-backup-server.lock")


def parse_config(data: Any) -> Config:
    if not isinstance(data, dict):
        raise ConfigError("the configuration is not a JSON object")
    known = set(Config.__dataclass_fields__)
    unknown = sorted(k for k in set(data) - known if not k.startswith("_"))
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    for key in ("root", "repos_dir", "keys_dir", "user", "timezone"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{key}: required text, got {data.get(key)!r}")
    try:
        ZoneInfo(data["timezone"])
    except (KeyError, ValueError) as err:
        raise ConfigError(f"timezone: unknown time zone {data['timezone']!r}") from err
    parts = data.get("check_subset_parts", 4)
    if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
        raise ConfigError(f"check_subset_parts: expected a whole number >= 1, got {parts!r}")
    values: dict[str, Any] = {
        "user": data["user"],
        "timezone": data["timezone"],
        "check_subset_parts": parts,
    }
    for key in (
        "root",
        "repos_dir",
        "keys_dir",
        "legacy_root",
        "state_file",
        "cache_dir",
        "metrics_file",
        "lock_file",
    ):
        if key in data:
            values[key] = Path(data[key])
    return Config(**values)


def load_config(path: Path) -> Config:
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the configuration ({err.strerror})") from err
    except ValueError as err:
        raise ConfigError(f"{path}: not JSON ({err})") from err
    return parse_config(data)


@dataclass(frozen=True)
class Repo:
    name: str
    retention_days: int
    path: Path
    key_file: Path


def parse_repo(name: str, data: Any, cfg: Config) -> Repo:
    if not NAME.fullmatch(name):
        raise ConfigError(f"repository {name!r}: not a repository name")
    if not isinstance(data, dict):
        raise ConfigError(f"repository {name}: its description is not a JSON object")
    days = data.get("retention_days")
    # bool is an int in Python; restic reads --keep-daily 0 as "no policy": keep all
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
        raise ConfigError(f"repository {name}: retention_days must be 1 to 3650, got {days!r}")
    return Repo(name, days, cfg.root / name, cfg.keys_dir / name)


def repositories(cfg: Config, only: Sequence[str] = ()) -> list[Repo]:
    found = []
    for path in sorted(cfg.repos_dir.glob("*.json")):
        name = path.name[: -len(".json")]
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: unreadable ({err})") from err
        found.append(parse_repo(name, data, cfg))
    if only:
        unknown = sorted(set(only) - {r.name for r in found})
        if unknown:
            raise ConfigError(f"--repo: no repository {', '.join(unknown)} on this host")
        found = [r for r in found if r.name in only]
    return found


# --- restic ---------------------------------------------------------------------------


class Restic:
    """restic on one local repository, as the REST server's user, password on stdin."""

    def __init__(self, cfg: Config, repo: Path, key_file: Path, name: str) -> None:
        self.cfg = cfg
        self.repo = repo
        self.name = name
        try:
            self.password = key_file.read_bytes().strip()
        except OSError as err:
            raise Failure(f"{name}: no restic password at {key_file} ({err.strerror})") from err
        try:
            self.account = pwd.getpwnam(cfg.user)
        except KeyError as err:
            raise ConfigError(f"user: {cfg.user!r} does not exist") from err

    def command(self, args: Sequence[str]) -> list[str]:
        cache = self.cfg.cache_dir
        return ["restic", "--repo", str(self.repo), "--cache-dir", str(cache), *args]

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.cfg.cache_dir),
            "LANG": "C.UTF-8",
            "TZ": self.cfg.timezone,
        }

    def run(self, args: Sequence[str], *, what: str, capture: bool = True) -> bytes:
        """Run restic; a non-zero status is a Failure naming *what* and stderr's tail."""
        proc = subprocess.run(
            self.command(args),
            input=self.password + b"\n",
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            env=self.env(),
            user=self.account.pw_uid,
            group=self.account.pw_gid,
            extra_groups=[],
            umask=0o027,
            cwd="/",
            check=False,
        )
        if proc.returncode != 0:
            detail = _tail(proc.stderr or b"") if capture else "see above"
            raise Failure(f"{self.name}: {what} failed (exit status {proc.returncode}): {detail}")
        return proc.stdout or b""

    def snapshots(self) -> list[dict[str, Any]]:
        out = self.run(["snapshots", "--json", "--no-lock"], what="restic snapshots")
        items = json.loads(out or b"[]") or []
        return [item for item in items if isinstance(item, dict)]


def for_repo(cfg: Config, repo: Repo) -> Restic:
    return Restic(cfg, repo.path, repo.key_file, repo.name)


def parse_time(text: str) -> dt.datetime:
    text = re.sub(r"(\.\d{1,6})\d*", r"\1", text.strip(), count=1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def incomplete_ids(items: Sequence[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(snapshots marked incomplete by their server, the markers themselves)."""
    marked: set[str] = set()
    markers: set[str] = set()
    for item in items:
        tags = item.get("tags") or []
        if INCOMPLETE_TAG in tags:
            markers.add(str(item["id"]))
            for tag in tags:
                if tag.startswith(INCOMPLETE_PREFIX):
                    snapshot = tag[len(INCOMPLETE_PREFIX) :]
                    if SNAPSHOT_ID.fullmatch(snapshot):
                        marked.add(snapshot)
    return marked, markers


# --- lock, state, metrics ---------------------------------------------------------------


@contextlib.contextmanager
def exclusive(cfg: Config, wait: float) -> Iterator[None]:
    cfg.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cfg.lock_file, "a+") as lock:
        deadline = time.monotonic() + max(wait, 0)
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(f"another hostops-backup-server run holds {cfg.lock_file}") from None
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


@contextlib.contextmanager
def state_edit(cfg: Config) -> Iterator[dict[str, Any]]:
    path = cfg.state_file
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            data = json.loads(path.read_text())
        data.setdefault("repos", {})
        data.setdefault("runs", {})
        yield data
        _write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)
        publish(cfg, data)


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.3f}"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


# (state key, metric, help); per repository, and per kind where the value is a mapping
REPO_METRICS = (
    (
        "last_snapshot",
        "hostops_backup_repository_last_snapshot_timestamp_seconds",
        "Time of the newest snapshot of this kind in the repository (Unix time).",
    ),
    ("snapshots", "hostops_backup_repository_snapshots", "Snapshots of this kind."),
    ("size", "hostops_backup_repository_size_bytes", "Bytes the repository takes on disk."),
    ("retention_days", "hostops_backup_repository_retention_days", "Daily snapshots kept."),
    (
        "check_failed",
        "hostops_backup_repository_check_failed",
        "1 when the last restic check of the repository failed, else 0.",
    ),
    (
        "last_check",
        "hostops_backup_repository_last_check_timestamp_seconds",
        "When the last restic check of the repository ended (Unix time).",
    ),
    (
        "prune_failed",
        "hostops_backup_repository_prune_failed",
        "1 when the last retention run (forget, prune) of the repository failed, else 0.",
    ),
    (
        "last_prune",
        "hostops_backup_repository_last_prune_timestamp_seconds",
        "When the last retention run of the repository ended (Unix time).",
    ),
    (
        "metrics_failed",
        "hostops_backup_repository_metrics_failed",
        "1 when the repository could not be read for these metrics, else 0.",
    ),
)
RUN_METRICS = (
    ("failed", "hostops_backup_server_run_failed", "1 when the last run of this kind failed."),
    ("running", "hostops_backup_server_running", "1 while a run of this kind is in progress."),
    (
        "last_success",
        "hostops_backup_server_last_success_timestamp_seconds",
        "When the last successful run of this kind ended (Unix time).",
    ),
)


def publish(cfg: Config, data: dict[str, Any]) -> None:
    lines: list[str] = []
    for key, metric, help_text in REPO_METRICS:
        samples = []
        for name, values in sorted(data["repos"].items()):
            value = values.get(key)
            if isinstance(value, dict):
                samples += [
                    f'{metric}{{repository="{_label(name)}",kind="{kind}"}} {_number(v)}'
                    for kind, v in sorted(value.items())
                    if v is not None
                ]
            elif value is not None:
                samples.append(f'{metric}{{repository="{_label(name)}"}} {_number(value)}')
        if samples:
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge", *samples]
    for key, metric, help_text in RUN_METRICS:
        samples = [
            f'{metric}{{kind="{kind}"}} {_number(values[key])}'
            for kind, values in sorted(data["runs"].items())
            if values.get(key) is not None
        ]
        if samples:
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge", *samples]
    with contextlib.suppress(OSError):
        fs = os.statvfs(cfg.root)
        lines += [
            "# HELP hostops_backup_server_disk_free_bytes Free bytes of the repositories' "
            "file system (for unprivileged users).",
            "# TYPE hostops_backup_server_disk_free_bytes gauge",
            f"hostops_backup_server_disk_free_bytes {fs.f_bavail * fs.f_frsize}",
            "# HELP hostops_backup_server_disk_size_bytes Size of the repositories' file system.",
            "# TYPE hostops_backup_server_disk_size_bytes gauge",
            f"hostops_backup_server_disk_size_bytes {fs.f_blocks * fs.f_frsize}",
        ]
    _write_atomic(cfg.metrics_file, "\n".join(lines) + "\n", 0o644)


@contextlib.contextmanager
def recorded(cfg: Config, kind: str) -> Iterator[None]:
    with state_edit(cfg) as data:
        data["runs"].setdefault(kind, {}).update(running=1, last_start=time.time())
    try:
        yield
    except BaseException as err:
        message = str(err) or err.__class__.__name__
        with state_edit(cfg) as data:
            data["runs"][kind].update(
                running=0, failed=1, last_end=time.time(), message=message[:500]
            )
        raise
    with state_edit(cfg) as data:
        now = time.time()
        data["runs"][kind].update(running=0, failed=0, last_end=now, last_success=now)
        data["runs"][kind]["message"] = "ok"


def update_repo(cfg: Config, name: str, **values: Any) -> None:
    with state_edit(cfg) as data:
        data["repos"].setdefault(name, {}).update(values)


def disk_usage(path: Path) -> int:
    total = 0
    for folder, _subdirs, files in os.walk(path):
        for file in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, file)).st_size
    return total


# --- the verbs ------------------------------------------------------------------------


def observe(cfg: Config, repo: Repo, restic: Restic) -> dict[str, Any]:
    """What the metrics say about one repository: last snapshot and count per kind, size."""
    items = restic.snapshots()
    marked, _rest = incomplete_ids(items)
    last: dict[str, float] = {}
    counts: dict[str, int] = dict.fromkeys(KINDS, 0)
    for item in items:
        tags = item.get("tags") or []
        kinds = [k for k in KINDS if k in tags]
        if TAG not in tags or len(kinds) != 1 or item.get("id") in marked:
            continue
        if item.get("hostname") != repo.name:
            continue
        kind = kinds[0]
        counts[kind] += 1
        moment = parse_time(str(item["time"])).timestamp()
        last[kind] = max(last.get(kind, 0.0), moment)
    return {
        "last_snapshot": last,
        "snapshots": counts,
        "size": disk_usage(repo.path),
        "retention_days": repo.retention_days,
        "metrics_failed": 0,
    }


def cmd_metrics(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    problems = []
    report: dict[str, Any] = {}
    with exclusive(cfg, args.lock_wait), recorded(cfg, "metrics"):
        for repo in repositories(cfg, args.repo):
            if not (repo.path / "config").exists():
                report[repo.name] = {"initialised": False}
                continue
            try:
                values = observe(cfg, repo, for_repo(cfg, repo))
            except Failure as err:
                problems.append(str(err))
                update_repo(cfg, repo.name, metrics_failed=1, size=disk_usage(repo.path))
                continue
            update_repo(cfg, repo.name, **values)
            report[repo.name] = values
        if problems:
            raise Failure("; ".join(problems))
    return {"ok": True, "repositories": report}


def prune_repo(cfg: Config, repo: Repo) -> dict[str, Any]:
    restic = for_repo(cfg, repo)
    # Removes only stale locks: a run of this host killed outright (kill -9) left its own.
    restic.run(["unlock"], what="restic unlock")
    items = restic.snapshots()
    marked, markers = incomplete_ids(items)
    present = {str(item["id"]) for item in items}
    doomed = sorted({i for i in present if any(i.startswith(m) for m in marked)} | markers)
    removed = 0
    if doomed:
        restic.run(["forget", *doomed], what="restic forget (incomplete snapshots)")
        removed += len(doomed)
    kept: dict[str, int] = {}
    for kind in KINDS:
        args = ["forget", "--json", "--retry-lock", "30m", "--host", repo.name]
        args += ["--tag", f"{TAG},{kind}", "--group-by", "host,tags"]
        args += ["--keep-daily", str(repo.retention_days)]
        out = restic.run(args, what=f"restic forget --keep-daily {repo.retention_days} ({kind})")
        groups = json.loads(out or b"[]") or []
        kept[kind] = sum(len(group.get("keep") or []) for group in groups)
        removed += sum(len(group.get("remove") or []) for group in groups)
    # every time: also frees what was forgotten by hand, or by a prune that was killed
    restic.run(["prune", "--retry-lock", "30m"], what="restic prune")
    log(f"{repo.name}: kept {kept}, forgot {removed} snapshot(s)")
    return {"kept": kept, "removed": removed}


def each_repo(cfg: Config, args: argparse.Namespace, kind: str, action: Any) -> dict[str, Any]:
    """Run *action* on every repository; one failing does not stop the others."""
    problems = []
    report: dict[str, Any] = {}
    with exclusive(cfg, args.lock_wait), recorded(cfg, kind):
        for repo in repositories(cfg, args.repo):
            if not (repo.path / "config").exists():
                report[repo.name] = {"initialised": False}
                continue
            try:
                report[repo.name] = action(cfg, repo)
                update_repo(cfg, repo.name, **{f"{kind}_failed": 0, f"last_{kind}": time.time()})
            except Failure as err:
                problems.append(str(err))
                report[repo.name] = {"ok": False, "error": str(err)}
                log(f"{repo.name}: {kind} FAILED: {err}")
                update_repo(cfg, repo.name, **{f"{kind}_failed": 1, f"last_{kind}": time.time()})
            with contextlib.suppress(Failure):
                update_repo(cfg, repo.name, **observe(cfg, repo, for_repo(cfg, repo)))
        if problems:
            raise Failure("; ".join(problems))
    return {"ok": True, "repositories": report}


def cmd_prune(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    return each_repo(cfg, args, "prune", prune_repo)


def cmd_check(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    parts = cfg.check_subset_parts
    week = dt.date.today().isocalendar().week
    subset = args.subset or f"{week % parts + 1}/{parts}"

    def check(cfg: Config, repo: Repo) -> dict[str, Any]:
        restic = for_repo(cfg, repo)
        restic.run(["unlock"], what="restic unlock")
        restic.run(
            ["check", "--retry-lock", "30m", f"--read-data-subset={subset}"],
            what=f"restic check ({subset})",
        )
        log(f"{repo.name}: repository OK (data subset {subset})")
        return {"ok": True, "subset": subset}

    return each_repo(cfg, args, "check", check)


def cmd_finish(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """ExecStopPost: a run that died without recording its end is recorded as failed."""
    result = os.environ.get("SERVICE_RESULT", "success")
    with state_edit(cfg) as data:
        entry = data["runs"].setdefault(args.kind, {})
        died = bool(entry.get("running"))
        if died or (result != "success" and not entry.get("failed")):
            entry.update(running=0, failed=1, last_end=time.time())
            entry["message"] = f"the unit ended with result {result!r}" + (
                " while the run was in progress" if died else ""
            )
            log(f"{args.kind}: recorded as failed: {entry['message']}")
    return {"kind": args.kind, "service_result": result}


def cmd_restic(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """restic on one repository, as the REST server's user: for operators and tests."""
    (repo,) = repositories(cfg, [args.name])
    restic = for_repo(cfg, repo)
    proc = subprocess.run(
        restic.command(args.restic_args),
        input=restic.password + b"\n",
        env=restic.env(),
        user=restic.account.pw_uid,
        group=restic.account.pw_gid,
        extra_groups=[],
        umask=0o027,
        cwd="/",
        check=False,
    )
    raise SystemExit(proc.returncode)


def cmd_migrate(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    """Copy the snapshots of an old shared-SFTP repository into the server's new one
    (restic copy: idempotent, snapshots already copied are skipped)."""
    (repo,) = repositories(cfg, [args.name])
    source = cfg.legacy_root / (args.source or repo.name)
    if not (source / "config").exists():
        raise ConfigError(f"--source: no restic repository at {source}")
    if not (repo.path / "config").exists():
        raise Failure(f"{repo.name}: the new repository is not initialised yet (run the role)")
    restic = for_repo(cfg, repo)
    try:
        legacy_password = Path(args.legacy_password_file).read_bytes().strip()
    except OSError as err:
        raise ConfigError(f"--legacy-password-file: {err.strerror}") from err
    # The old repository belongs to the old SFTP user: let the REST server's group read it
    # (it is out of every server's reach now), since restic runs as that user.
    for folder, _subdirs, files in os.walk(source):
        for entry in [folder, *(os.path.join(folder, f) for f in files)]:
            os.chown(entry, -1, restic.account.pw_gid)
            mode = os.lstat(entry).st_mode
            if os.path.isdir(entry):
                # restic copy locks the source too: its lock directory must be writable
                extra = 0o070 if os.path.basename(entry) == "locks" else 0o050
            else:
                extra = 0o040
            os.chmod(entry, (mode | extra) & ~0o002)
    # restic reads the source repository's password from a file: one the server's user
    # can read for this run only, removed afterwards.
    with tempfile.TemporaryDirectory(dir=cfg.cache_dir.parent) as folder:
        os.chown(folder, restic.account.pw_uid, restic.account.pw_gid)
        os.chmod(folder, 0o700)
        secret = Path(folder) / "legacy-password"
        secret.write_bytes(legacy_password + b"\n")
        os.chown(secret, restic.account.pw_uid, restic.account.pw_gid)
        os.chmod(secret, 0o400)
        restic.run(
            [
                "copy",
                "--from-repo",
                str(source),
                "--from-password-file",
                str(secret),
                "--host",
                repo.name,
            ],
            what=f"restic copy from {source}",
        )
    copied = [s for s in restic.snapshots() if TAG in (s.get("tags") or [])]
    log(f"{repo.name}: {len(copied)} snapshot(s) in the new repository after the copy")
    return {"ok": True, "source": str(source), "snapshots": len(copied)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostops-backup-server", description=(__doc__ or "").split("\n", maxsplit=1)[0]
    )
    parser.add_argument("--config", type=Path, default=CONFIG_FILE)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    verbs = parser.add_subparsers(dest="verb", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--repo", action="append", default=[], help="only this repository")
        p.add_argument("--lock-wait", type=float, default=0, metavar="SECONDS")

    p = verbs.add_parser("prune", help="apply each repository's retention (forget, prune)")
    common(p)
    p.set_defaults(func=cmd_prune)
    p = verbs.add_parser("check", help="restic check, reading a part of the data in turn")
    common(p)
    p.add_argument("--subset", help="read this data subset instead (n/t, x%%, or a size)")
    p.set_defaults(func=cmd_check)
    p = verbs.add_parser("metrics", help="refresh the repositories' metrics")
    common(p)
    p.set_defaults(func=cmd_metrics)
    p = verbs.add_parser("finish", help="ExecStopPost: record a run that died as failed")
    p.add_argument("--kind", choices=("prune", "check", "metrics"), required=True)
    p.set_defaults(func=cmd_finish)
    p = verbs.add_parser("migrate", help="copy an old SFTP repository's snapshots (restic copy)")
    p.add_argument("name", help="the server's repository")
    p.add_argument("--source", help="the old repository's name (default: the same)")
    p.add_argument("--legacy-password-file", required=True, help="the old repository's password")
    p.set_defaults(func=cmd_migrate)
    p = verbs.add_parser("restic", help="run restic on one repository as the server's user")
    p.add_argument("name")
    p.add_argument("restic_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_restic)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.umask(0o077)
    try:
        cfg = load_config(args.config)
        os.environ["TZ"] = cfg.timezone
        time.tzset()
        report = args.func(cfg, args)
        status = 0
    except Failure as err:
        log(f"ERROR: {err}")
        report, status = {"ok": False, "error": str(err)}, err.status
    except Terminated:
        log("ERROR: terminated (stop request or start timeout)")
        report, status = {"ok": False, "error": "terminated"}, 143
    if args.json or status == 0:
        print(json.dumps(report, indent=2, sort_keys=True))
    return status


if __name__ == "__main__":
    sys.exit(main())
