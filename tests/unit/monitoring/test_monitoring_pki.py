"""playbooks/tasks/monitoring-tls.yml and the lookup alteo.hostops.monitoring_pki: the
making tasks run when a file is missing or not what they would leave, and not when
everything is current (the lookup hands the same PEM texts over). Real runs of the
task file on this controller (the certificates are made on the controller anyway)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hostops.core.runner import repo_root, run_environment

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
HOST = "web01.example.com"
SANS = ["DNS:localhost", f"DNS:{HOST}", "IP:192.0.2.7", "IP:127.0.0.1"]
MAKING = "Make this host's key"


def load_lookup() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "monitoring_pki", ROOT / "plugins" / "lookup" / "monitoring_pki.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply(secrets: Path, address: str = "192.0.2.7") -> tuple[list[str], dict[str, str]]:
    """The task file for the inventory host 'localhost' (FQDN HOST); the names of the
    tasks that ran, and the PEM texts handed over."""
    secrets.parent.mkdir(parents=True, exist_ok=True)
    out = secrets.parent / "pki.json"
    playbook = secrets.parent / "play.yml"
    playbook.write_text(
        f"""
- hosts: localhost
  gather_facts: false
  vars:
    __hostops_monitor_secrets_dir: {secrets}
    hostops_fqdn: {HOST}
    hostops_monitor_address: {address}
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - ansible.builtin.include_tasks: {ROOT}/playbooks/tasks/monitoring-tls.yml
    - ansible.builtin.copy:
        content: "{{{{ __hostops_monitor_pki | to_json }}}}"
        dest: {out}
        mode: "0600"
"""
    )
    env = run_environment(repo_root())
    env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(
        [str(PLAYBOOK), "-i", "localhost,", "-c", "local", str(playbook)],
        capture_output=True, text=True, check=False, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    ran = [t["task"]["name"] for t in tasks if not t["hosts"].get("localhost", {}).get("skipped")]
    return ran, json.loads(out.read_text())


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict[str, str]]:
    secrets = tmp_path_factory.mktemp("pki") / "secrets"
    ran, pki = apply(secrets)
    return secrets, ran, pki


def test_a_first_run_makes_the_files_and_hands_them_over(
    made: tuple[Path, list[str], dict[str, str]],
) -> None:
    secrets, ran, pki = made
    assert MAKING in ran
    assert pki["cert"] == (secrets / "hosts" / "localhost.crt").read_text().rstrip()
    assert pki["ca"] == (secrets / "ca.crt").read_text().rstrip()


def test_current_files_are_handed_over_without_the_making_tasks(
    made: tuple[Path, list[str], dict[str, str]],
) -> None:
    secrets, _, first = made
    copy = secrets.parent / "again" / "secrets"
    shutil.copytree(secrets, copy)
    ran, pki = apply(copy)
    assert MAKING not in ran, ran
    assert pki == first  # the same texts as the file lookups of the making path


def test_the_lookup_says_current_only_for_the_names_the_tasks_would_use(
    made: tuple[Path, list[str], dict[str, str]],
) -> None:
    secrets, _, pki = made
    current = load_lookup().current_pki
    assert current(str(secrets), "localhost", HOST, SANS) == pki
    assert current(str(secrets), "localhost", HOST, [*SANS[:2], "IP:192.0.2.8", SANS[3]]) == {}
    assert current(str(secrets), "localhost", "other.example.com", SANS) == {}
    assert current(str(secrets), "absent", HOST, SANS) == {}
    assert current(str(secrets.parent / "nowhere"), "localhost", HOST, SANS) == {}


def test_a_changed_mode_or_a_foreign_certificate_sends_the_run_to_the_tasks(
    made: tuple[Path, list[str], dict[str, str]], tmp_path: Path
) -> None:
    secrets, _, _ = made
    current = load_lookup().current_pki
    loose = tmp_path / "loose"
    shutil.copytree(secrets, loose)
    os.chmod(loose / "hosts" / "localhost.key", 0o644)
    assert current(str(loose), "localhost", HOST, SANS) == {}
    foreign = tmp_path / "foreign"
    shutil.copytree(secrets, foreign)
    # a certificate signed by another CA: the CA's files replaced by another one's
    other = tmp_path / "other" / "secrets"
    apply(other)
    for name in ("ca.key", "ca.crt"):
        shutil.copy2(other / name, foreign / name)
    assert current(str(foreign), "localhost", HOST, SANS) == {}


def test_a_new_address_makes_a_new_certificate(
    made: tuple[Path, list[str], dict[str, str]], tmp_path: Path
) -> None:
    secrets, _, first = made
    copy = tmp_path / "moved" / "secrets"
    shutil.copytree(secrets, copy)
    ran, pki = apply(copy, address="192.0.2.9")
    assert MAKING in ran
    assert pki["cert"] != first["cert"] and pki["ca"] == first["ca"]
