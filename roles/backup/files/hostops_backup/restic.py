"""restic and the repository: its REST server, the password and URL files, snapshots."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
import subprocess
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from .common import INCOMPLETE_PREFIX, INCOMPLETE_TAG, KINDS, TAG, CommandFailed, Failure
from .config import Config
from .process import run, run_until, tail_lines

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
                f"{proc.returncode}): {tail_lines(proc.stderr)}"
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
                f"of retrying for 15 minutes, no snapshot was made: {tail_lines(answer)}"
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
                f"{'; ' + reason if reason else ''}): {tail_lines(proc.stderr)}"
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
