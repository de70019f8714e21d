"""Drive playbooks through ansible-runner: the one place that builds a run.

A run gets its own private data directory (ansible-runner keeps the ``envvars`` of its
first call in that directory and silently reuses them, so directories are never shared),
an explicit inventory, the extra variables, and an allow-list of environment variables.
Progress is printed from runner events as hosts finish tasks, and the result carries
per-host counts and the failed tasks, for the summary table and for callers.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import ansible_runner

from hostops.core.errors import HostopsError, UsageError
from hostops.core.settings import state_dir

# Environment variables a run may inherit from the operator's shell; everything else
# the run needs is set here explicitly.
ENV_ALLOW_LIST = (
    "HOME",
    "LANG",
    "LC_ALL",
    "PATH",
    "SSH_AUTH_SOCK",
    "USER",
    "ANSIBLE_VAULT_PASSWORD_FILE",
    # where the playbooks keep the monitoring's CA and passwords (playbooks/vars/monitoring.yml)
    "HOSTOPS_STATE_DIR",
)

# Results worth a progress line (skips are counted in the summary, not printed).
_RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "FAILED",
    "runner_on_unreachable": "UNREACHABLE",
    "runner_item_on_failed": "FAILED",
}


# 'hostops -v ...': each run prints Ansible's own output of its tasks; -vv and more are
# also passed on to ansible-playbook. Set once by the command line (hostops.cli).
VERBOSITY = 0


def set_verbosity(level: int) -> None:
    global VERBOSITY  # noqa: PLW0603 - one setting for the whole command
    VERBOSITY = max(0, level)


# The strategy of every run: Mitogen's linear strategy, a persistent interpreter on each
# host, by default (a no-op task costs ~35 ms instead of ~200 ms); the stock 'linear' one
# setting away. Runs of hostops, ansible.cfg and molecule name the collection's strategy
# alteo.hostops.mitogen_linear (plugins/strategy/): Mitogen's classes over stock linear,
# plus loading once per run what each task's worker would load again.
STRATEGY_ENV = "HOSTOPS_ANSIBLE_STRATEGY"
STRATEGIES = ("mitogen", "linear")
DEFAULT_STRATEGY = "mitogen"
MITOGEN_STRATEGY = "alteo.hostops.mitogen_linear"


def strategy_name() -> str:
    """The strategy chosen by HOSTOPS_ANSIBLE_STRATEGY (mitogen, the default, or linear);
    UsageError (exit 2) for another value, and HostopsError when Mitogen is chosen but
    not installed (the collection's strategy would fall back to stock linear)."""
    value = os.environ.get(STRATEGY_ENV, "").strip() or DEFAULT_STRATEGY
    if value not in STRATEGIES:
        raise UsageError(
            f"{STRATEGY_ENV}: {value!r} is not a strategy (one of: {', '.join(STRATEGIES)})"
        )
    if value == "mitogen" and importlib.util.find_spec("ansible_mitogen") is None:
        raise HostopsError(
            f"{STRATEGY_ENV}: the strategy 'mitogen' needs the Python package 'mitogen'"
            f" (pip install mitogen), or set {STRATEGY_ENV}=linear"
        )
    return value


def strategy_environment() -> dict[str, str]:
    """The variables that give a run its strategy."""
    if strategy_name() == "linear":
        return {"ANSIBLE_STRATEGY": "linear"}
    return {"ANSIBLE_STRATEGY": MITOGEN_STRATEGY}


# Where a wheel puts the collection inside the package (setup.py's build hook).
PACKAGED_COLLECTION = Path("collection", "ansible_collections", "alteo", "hostops")


def collections_dir(root: Path) -> Path:
    """The directory to give Ansible as its collections path for the collection at ROOT:
    a checkout's collections/ (scripts/setup links the checkout in), or the
    ansible_collections tree the collection sits in."""
    if root.parent.parent.name == "ansible_collections":
        return root.parents[2]
    return root / "collections"


def repo_root() -> Path:
    """The collection's root: where ansible.cfg, playbooks/ and roles/ are."""
    env = os.environ.get("HOSTOPS_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "galaxy.yml").exists() and (parent / "playbooks").is_dir():
            return parent  # a checkout (or an editable install of one)
    packaged = here.parents[1] / PACKAGED_COLLECTION  # hostops/collection, beside core/
    if (packaged / "galaxy.yml").exists():
        return packaged  # installed from a wheel, which carries the collection (setup.py)
    cwd = Path.cwd()
    if (cwd / "galaxy.yml").exists():
        return cwd
    raise HostopsError("cannot find the hostops collection (galaxy.yml); set HOSTOPS_ROOT")


@dataclass
class TaskFailure:
    host: str
    task: str
    message: str

    @property
    def line(self) -> str:
        """How the commands report it after a run."""
        return f"FAILED on {self.host}, task '{self.task}': {self.message}"


@dataclass
class RunResult:
    status: str
    rc: int
    artifact_dir: Path
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    # what the playbook published with ansible.builtin.set_stats
    artifacts: dict[str, Any] = field(default_factory=dict)
    # Ansible's own words when the run failed before any task (a playbook that does not
    # load, a role not found, a bad inventory): the end of its output
    error: str = ""

    @property
    def failure_lines(self) -> list[str]:
        """What to print after a failed run: each failed task, or Ansible's own error."""
        lines = [failure.line for failure in self.failures]
        if not lines and not self.ok:
            lines = [f"ansible-playbook: {line}" for line in self.error.splitlines()] or [
                f"ansible-playbook failed (status {self.status}, exit status {self.rc}); "
                f"its output: {self.artifact_dir / 'stdout'}"
            ]
        return lines

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    @property
    def changed(self) -> int:
        return sum(counts.get("changed", 0) for counts in self.hosts.values())

    def report(self, out: TextIO, what: str, run_dir: Path, *, table: bool = True) -> bool:
        """The one way commands report a run: the hosts' table (unless *table* is false),
        then, when the run failed, each failure and where its artifacts are. True when the
        run succeeded."""
        if table:
            print("", file=out)
            print(self.summary_table(), file=out)
        if self.ok:
            return True
        for line in self.failure_lines:
            print(line, file=out)
        print(
            f"{what}: the run failed; re-run the same command once the cause is fixed "
            f"(artifacts: {run_dir})",
            file=out,
        )
        return False

    def summary_table(self) -> str:
        columns = ("ok", "changed", "failed", "unreachable", "skipped")
        rows = [("HOST", *(c.upper() for c in columns))]
        for host in sorted(self.hosts):
            counts = self.hosts[host]
            rows.append((host, *(str(counts.get(c, 0)) for c in columns)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )


@dataclass
class PlaybookRun:
    """Everything one ansible-playbook run needs."""

    playbook: str
    inventory: list[Path]
    run_dir: Path
    extravars: Mapping[str, Any] = field(default_factory=dict)
    limit: str | None = None
    check: bool = False
    diff: bool = False
    tags: str | None = None
    verbosity: int = 0
    quiet: bool = False
    out: TextIO = sys.stdout

    def execute(self) -> RunResult:
        root = repo_root()
        playbook = root / "playbooks" / self.playbook
        if not playbook.exists():
            raise HostopsError(f"no such playbook: {playbook}")
        if self.run_dir.exists() and any(self.run_dir.iterdir()):
            raise HostopsError(f"{self.run_dir}: a run directory is never reused")
        self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        cmdline = []
        if self.check:
            cmdline.append("--check")
        if self.diff:
            cmdline.append("--diff")
        verbosity = self.verbosity or VERBOSITY
        progress = _Progress(self.out, self.quiet, verbose=verbosity > 0)
        runner = ansible_runner.run(
            private_data_dir=str(self.run_dir),
            project_dir=str(root),
            playbook=str(playbook),
            inventory=[str(path.resolve()) for path in self.inventory],
            extravars=dict(self.extravars),
            limit=self.limit,
            tags=self.tags,
            cmdline=" ".join(cmdline) or None,
            envvars=run_environment(root),
            # -v itself prints Ansible's output (below); -vv and more reach Ansible
            verbosity=max(verbosity - 1, 0) or None,
            ident="run",
            quiet=True,
            event_handler=progress,
            settings={"suppress_ansible_output": True, "job_timeout": 3600},
        )
        stats = runner.stats or {}
        hosts: dict[str, dict[str, int]] = {}
        keys = {
            "ok": "ok",
            "changed": "changed",
            "failures": "failed",
            "dark": "unreachable",
            "skipped": "skipped",
        }
        for key, label in keys.items():
            for host, count in (stats.get(key) or {}).items():
                hosts.setdefault(host, {})[label] = int(count)
        result = RunResult(
            status=str(runner.status),
            rc=int(runner.rc if runner.rc is not None else 1),
            artifact_dir=Path(runner.config.artifact_dir),
            hosts=hosts,
            failures=progress.failures,
            artifacts=progress.artifacts,
        )
        if not result.ok and not result.failures:
            result.error = ansible_error(result.artifact_dir / "stdout")
        return result


def ansible_error(stdout: Path, lines: int = 15) -> str:
    """The end of a run's output, where ansible-playbook says why it stopped before any
    task; from its first line starting ERROR when there is one."""
    try:
        text = stdout.read_text(errors="replace")
    except OSError:
        return ""
    tail = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    for index, line in enumerate(tail):
        if line.startswith(("ERROR", "[ERROR]")):
            return "\n".join(tail[index:])
    return "\n".join(tail)


def run_environment(root: Path) -> dict[str, str]:
    env = {key: os.environ[key] for key in ENV_ALLOW_LIST if key in os.environ}
    # The ansible-playbook of this Python's environment, even when called by full path.
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env["ANSIBLE_CONFIG"] = str(root / "ansible.cfg")
    # the playbooks keep controller-side secrets (monitoring CA, passwords) under it
    env["HOSTOPS_STATE_DIR"] = str(state_dir())
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collections_dir(root))
    env.update(strategy_environment())
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Progress:
    """Event handler: a line per host and task as results arrive."""

    def __init__(self, out: TextIO, quiet: bool, verbose: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.verbose = verbose
        self.failures: list[TaskFailure] = []
        self.artifacts: dict[str, Any] = {}

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        if kind == "playbook_on_stats":
            self.artifacts.update(event.get("event_data", {}).get("artifact_data") or {})
        if self.verbose and event.get("stdout"):
            # Ansible's own text of the event (secrets are censored by no_log as in its log)
            print(event["stdout"], file=self.out, flush=True)
        if kind not in _RESULT_EVENTS:
            return True
        data = event.get("event_data", {})
        res = data.get("res") or {}
        if isinstance(res, dict) and data.get("ignore_errors") and kind == "runner_on_failed":
            return True
        host = str(data.get("host", "?"))
        task = str(data.get("task", "?"))
        label = _RESULT_EVENTS[kind]
        if label == "ok" and isinstance(res, dict) and res.get("changed"):
            label = "changed"
        elif label == "ok" and str(event.get("stdout", "")).lstrip().startswith("changed:"):
            label = "changed"  # a no_log result is censored, its 'changed' key with it
        if label in ("FAILED", "UNREACHABLE"):
            message = _failure_message(res)
            self.failures.append(TaskFailure(host, task, message))
            # the progress line is kept short; the failures listed after the run say it all
            shown = message if len(message) <= SHORT else message[:SHORT] + " [...]"
            line = f"  {host:<16} {label:<11} {task}: {shown}"
        else:
            line = f"  {host:<16} {label:<11} {task}"
        if self.verbose:
            return True  # Ansible's own output said it
        if not self.quiet or label not in ("ok",):
            stamp = datetime.now(UTC).astimezone().strftime("%H:%M:%S")
            print(f"{stamp}{line}", file=self.out, flush=True)
        return True


# Characters of a failure message: in the progress lines, and kept for the report.
SHORT = 500
LONG = 4000


def _failure_message(res: Any) -> str:
    if not isinstance(res, dict):
        return str(res)[:300]
    if res.get("censored"):
        return str(res["censored"])
    message = res.get("msg") or res.get("stderr") or res.get("module_stderr") or "failed"
    # whole, so that a preflight's list of problems is read in full; bounded, for a
    # command that printed pages
    return " ".join(str(message).split())[:LONG]
