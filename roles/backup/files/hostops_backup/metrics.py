"""Results per kind of run and their textfile metrics for node_exporter."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import Terminated
from .config import Config


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
