"""Helpers of the lab test modules (not a test module): the lab hosts a module owns, and
playbooks run on them the way an operator runs them.

``with owned_prefixes(cli, "req-"):`` in a module fixture: hosts left under those
prefixes by an earlier run are taken down first, and the module's hosts are taken down
afterwards, also when the fixture's setup fails half-way (a host booted, then a
playbook or a download failed) -- never anyone else's hosts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


# Debian's apt timers run 'apt-get update' (and unattended upgrades where installed) at
# times of their own, soon after a fresh host's first boot too (Persistent=true): a
# test's own apt or dpkg command on the host would then find the lists or dpkg lock
# taken. Tests that run apt themselves stop them first on their own hosts (the stop
# waits for a run in progress to end).
QUIET_APT = (
    "systemctl stop apt-daily.timer apt-daily-upgrade.timer"
    " apt-daily.service apt-daily-upgrade.service"
)


@contextmanager
def owned_prefixes(cli: Callable[..., Any], *prefixes: str) -> Iterator[None]:
    for prefix in prefixes:
        cli("lab", "down", "--prefix", prefix, check=True)
    try:
        yield
    finally:
        for prefix in prefixes:
            cli("lab", "down", "--prefix", prefix, check=True)


@contextmanager
def one_lab_host(cli: Callable[..., Any], prefix: str, inventory: Path) -> Iterator[Path]:
    """A fresh Debian 13 lab host of the prefix (owned as owned_prefixes owns it), its
    inventory written to ``inventory``: ``with one_lab_host(cli, "svc-", path):``."""
    with owned_prefixes(cli, prefix):
        cli(
            "lab", "up", "--hosts", "1", "--release", "trixie", "--prefix", prefix,
            "--inventory", str(inventory), check=True,
        )  # fmt: skip
        yield inventory


def ansible_playbook(inventory: Path, playbook: str, *args: str) -> None:
    """``ansible-playbook -i INVENTORY playbooks/PLAYBOOK ARGS`` from the repository root;
    AssertionError with the end of its output when it fails."""
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), f"playbooks/{playbook}", *args],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def monitoring_server(cli: Callable[..., Any], prefix: str, inventory: Path, *args: str) -> None:
    """Boot the lab host PREFIX1 as the group monitoring_servers of INVENTORY and set it up
    with playbooks/monitoring-server.yml (ARGS: more ansible-playbook arguments)."""
    cli(
        "lab", "up", "--hosts", "1", "--release", "trixie", "--prefix", prefix,
        "--inventory", str(inventory), "--group", "monitoring_servers", check=True,
    )  # fmt: skip
    ansible_playbook(inventory, "monitoring-server.yml", *args)


def pip_installed_hostops(
    tmp_path_factory: Any,
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``hostops`` as an operator gets it: ``pip install`` of the clone into a fresh
    virtual environment (not editable), run from a directory outside the clone. It shares
    the test's lab and state directory (HOSTOPS_STATE_DIR, read when it runs)."""
    from hostops.lab.nspawn import LabPaths  # noqa: PLC0415 - the checkout's own rule

    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", ROOT],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    lab_inventory = LabPaths.default().inventory

    def run(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            # the same lab inventory as the checkout's hostops (one lab, one inventory)
            "HOSTOPS_LAB_INVENTORY": str(lab_inventory),
        }
        return subprocess.run(
            [str(venv / "bin" / "hostops"), *args],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )

    return run
