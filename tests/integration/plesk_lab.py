"""Helpers shared by the Plesk lab tests: a Debian 12 lab host, Ansible Vault secrets, runs.

Not a test module. Used by test_plesk_standin.py (the recording stand-in) and
test_plesk_preflight.py (the failure path on a real lab host with no installer source).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import host_state
import yaml

from hostops.core.runner import PlaybookRun, RunResult
from hostops.lab.nspawn import Lab

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GROUP = "plesk_lab"
ADMIN_EMAIL = "ops@alteo.example"
LICENSE_VAR = "vault_plesk_license"

# Where Plesk's installer and the role leave their marks (a section of the fingerprint).
PLESK_MARKS = ("/usr/local/psa", "/root/plesk-installer", "/var/lib/hostops-plesk")


@dataclass
class LabHost:
    name: str
    address: str
    fqdn: str
    inventory: Path


@dataclass
class Run:
    result: RunResult
    run_dir: Path
    output: str

    def explain(self) -> str:
        return f"{self.result.status} rc={self.result.rc}\n{self.output}"


def hostops(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``hostops`` command from the repository root, with ENV on top of ours."""
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [str(BIN / "hostops"), *args], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PATH": path, **(env or {})}, timeout=1200, check=False,
    )


def hostops_cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = hostops(*args)
    if proc.returncode != 0:
        raise AssertionError(f"hostops {' '.join(args)}: {proc.stdout}\n{proc.stderr}")
    return proc


def boot(prefix: str, release: str, workdir: Path) -> Iterator[LabHost]:
    """Boot one fresh lab host PREFIX1 (after removing any left by an earlier run)."""
    if os.geteuid() != 0:
        raise AssertionError("the lab tests need root (they boot systemd-nspawn hosts)")
    inventory = workdir / "inventory" / "hosts.yml"
    hostops_cli("lab", "down", "--prefix", prefix)
    hostops_cli(
        "lab", "up", "--hosts", "1", "--release", release, "--prefix", prefix,
        "--inventory", str(inventory), "--group", GROUP,
    )
    data = yaml.safe_load(inventory.read_text())
    name = f"{prefix}1"
    host = data["all"]["children"]["lab"]["hosts"][name]
    try:
        yield LabHost(name, host["ansible_host"], host["hostops_fqdn"], inventory)
    finally:
        hostops_cli("lab", "down", "--prefix", prefix)


def ssh(host: LabHost, command: str, data: bytes | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        Lab().ssh_command(host.name, [command]), input=data, capture_output=True, timeout=120,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{host.name}: {command}: {proc.stderr.decode()}")
    return proc.stdout.decode()


def fingerprint(host: LabHost) -> dict[str, list[str]]:
    """The host's configuration (tests/integration/host_state.py) and Plesk's marks."""
    marks = " ".join(PLESK_MARKS)
    return host_state.fingerprint(lambda text: ssh(host, text), extra={"plesk": f"ls -d {marks}"})


@dataclass
class Secrets:
    admin_password: str
    license_key: str
    vault_password_file: Path

    def values(self) -> list[str]:
        return [self.admin_password, self.license_key, self.license_token]

    @property
    def license_token(self) -> str:
        return self.license_key.split(">")[2].split("<")[0]  # the key's distinctive body


def write_vault_secrets(host: LabHost, workdir: Path, with_secrets: bool = True) -> Secrets:
    """The inventory's group_vars for the host's group, encrypted with Ansible Vault, as
    production keeps plesk_admin_password and the license key file."""
    vault_password = workdir / "vault-password"
    vault_password.write_text(secrets.token_urlsafe(24) + "\n")
    vault_password.chmod(0o600)
    token = "STANDIN-" + secrets.token_hex(20).upper()
    found = Secrets(
        admin_password="Adm-" + secrets.token_urlsafe(18),
        license_key=(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<plesk-key xmlns="http://parallels.com/schemas/keys/core/3">{token}</plesk-key>\n'
        ),
        vault_password_file=vault_password,
    )
    group_vars = host.inventory.parent / "group_vars" / f"{GROUP}.yml"
    group_vars.parent.mkdir(exist_ok=True)
    content = (
        {"plesk_admin_password": found.admin_password, LICENSE_VAR: found.license_key}
        if with_secrets
        else {"plesk_lab_no_secrets": True}
    )
    group_vars.write_text(yaml.safe_dump(content))
    subprocess.run(
        [str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(vault_password),
         str(group_vars)],
        check=True, capture_output=True,
    )
    return found


def role_vars(**overrides: Any) -> dict[str, Any]:
    """What an order and the operator's inventory give the plesk role (no secrets)."""
    return {
        "hostops_targets": GROUP,
        "hostops_plesk": {"license_vault_var": LICENSE_VAR},
        "plesk_admin_email": ADMIN_EMAIL,
        "plesk_eula_accepted": True,
        **overrides,
    }


def run_playbook(
    playbook: str, host: LabHost, workdir: Path, *, secrets_: Secrets,
    extravars: dict[str, Any], check: bool = False,
) -> Run:
    os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(secrets_.vault_password_file)
    run_dir = workdir / "runs" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    out = io.StringIO()
    result = PlaybookRun(
        playbook=playbook, inventory=[host.inventory], run_dir=run_dir, extravars=extravars,
        check=check, out=out,
    ).execute()
    return Run(result, run_dir, out.getvalue() + "\n" + result.summary_table())


def failure_messages(run: Run) -> list[str]:
    """The full messages of the failed tasks, from the run's events (the progress lines
    shorten them)."""
    messages = []
    for path in sorted((run.result.artifact_dir / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "runner_on_failed":
            messages.append(str(event["event_data"]["res"].get("msg", "")))
    return messages


def read_json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
