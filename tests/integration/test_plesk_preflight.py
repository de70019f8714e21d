"""The plesk role's preflight on real lab hosts: it fails before changing anything.

No stand-in here: real Debian hosts (prefix ``plesk-pre-``) with no Plesk and no
installer source. The role must stop in its preflight with a message that names the
source (or the release), and the host must be left exactly as it was: the same files
under /etc, the same packages (``dpkg -l``), accounts and enabled units, and no Plesk
installer, Plesk directory or hostops state on it. Plesk itself is never installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import host_state
import pytest
from plesk_lab import (
    LabHost,
    Secrets,
    boot,
    failure_messages,
    fingerprint,
    role_vars,
    run_playbook,
    write_vault_secrets,
)

from hostops.lab.nspawn import Lab, LabState

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plesk-preflight")


@pytest.fixture(scope="module")
def bookworm(workdir: Path) -> Iterator[LabHost]:
    yield from boot("plesk-pre-", "bookworm", workdir / "bookworm")


@pytest.fixture(scope="module")
def trixie(workdir: Path) -> Iterator[LabHost]:
    yield from boot("plesk-pre13-", "trixie", workdir / "trixie")


@pytest.fixture(autouse=True)
def vault_env() -> Iterator[None]:
    saved = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    yield
    if saved is None:
        os.environ.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    else:
        os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = saved


@pytest.fixture(scope="module")
def bookworm_vault(bookworm: LabHost, workdir: Path) -> Secrets:
    return write_vault_secrets(bookworm, workdir / "bookworm")


@pytest.mark.parametrize(
    "source",
    [
        "http://127.0.0.1:9",  # the host's own discard port: nothing listens
        "http://{bridge}:9",  # the lab bridge's address, nothing listening there
    ],
)
def test_an_unreachable_installer_source_stops_the_role_before_any_change(
    bookworm: LabHost, bookworm_vault: Secrets, workdir: Path, source: str
) -> None:
    source = source.format(bridge=LabState.load(Lab().paths.state_file).bridge_address)
    before = fingerprint(bookworm)
    run = run_playbook(
        "plesk.yml", bookworm, workdir, secrets_=bookworm_vault,
        extravars=role_vars(plesk_installer_source=source),
    )
    assert not run.result.ok
    assert len(run.result.failures) == 1, run.explain()
    assert run.result.failures[0].task == "Assert nothing stands in the way of Plesk"
    [message] = failure_messages(run)
    assert message.startswith(f"Plesk cannot be installed on {bookworm.name}, nothing was changed:")
    assert f"the installer source {source} cannot be reached from {bookworm.name}" in message
    assert f"{source}/plesk-installer answered -1 (Request failed: <urlopen error" in message
    binary = f"{source}/Parallels_Installer/parallels_installer_Debian_12.0_x86_64"
    assert f"{binary} answered -1" in message
    assert "Connection refused" in message
    # that was the only problem: the host and the inputs are fine
    assert ";" not in message, message
    assert run.result.changed == 0
    after = fingerprint(bookworm)
    assert host_state.differences(before, after) == []
    assert len(after["plesk"]) == 3, after["plesk"]
    assert all("No such file or directory" in line for line in after["plesk"]), after["plesk"]


def test_debian_13_is_refused_and_every_problem_is_listed_at_once(
    trixie: LabHost, workdir: Path
) -> None:
    no_secrets = write_vault_secrets(trixie, workdir / "trixie", with_secrets=False)
    before = fingerprint(trixie)
    run = run_playbook(
        "plesk.yml", trixie, workdir, secrets_=no_secrets,
        extravars=role_vars(plesk_installer_source="http://127.0.0.1:9", plesk_eula_accepted=False),
    )
    assert not run.result.ok
    [message] = failure_messages(run)
    assert message.count(";") == 4, message  # five problems, all at once
    for expected in (
        "it runs Debian 13",
        "hostops installs Plesk on Debian 12 only",
        "plesk_admin_password is not set",
        "plesk_eula_accepted is false",
        "the vault variable 'vault_plesk_license' is undefined",
        "the installer source http://127.0.0.1:9 cannot be reached",
    ):
        assert expected in message, message
    assert host_state.differences(before, fingerprint(trixie)) == []
