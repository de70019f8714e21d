"""STAND-IN TEST of the Plesk back end: a RECORDING STAND-IN replaces ``plesk`` and Plesk's
installer. A real Plesk install was NOT verified here, and nothing in this module claims it.

Plesk's installer downloads from Plesk's servers, which our machines cannot reach. So on a
real Debian 12 lab host (prefix ``plesk-std-``) this module installs
``tests/integration/plesk_standin/plesk`` at /usr/local/bin/plesk and serves
``tests/integration/plesk_standin/plesk-installer`` (plus a placeholder installer binary)
from the host's own loopback as the "installer source". Both record every call (argv, the
environment variables hostops sets, secrets by name only, and whether a secret was visible
in the host's process list) and the stand-in ``plesk`` answers ``--info`` and the other
queries from a small state file, so that idempotence can be exercised.

What this verifies, through the real role and playbooks run by ansible-runner over SSH:
the exact command lines (arguments, environment, idempotence guards) that the plesk role
and the Plesk request playbook produce; that second runs record no new create; that the
secrets (administrator password, license key, request passwords) reach the stand-in where
they should (their SHA-256 in its state) and appear in no recorded argv, in no file of the
ansible-runner runs, and in no command line of the host's processes while they are in
flight. What it does not verify: that Plesk accepts these command lines, installs, or
behaves as its documentation says (docs/plesk.md lists what was and was not verified).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
from plesk_lab import (
    ADMIN_EMAIL,
    GROUP,
    ROOT,
    LabHost,
    Secrets,
    boot,
    fingerprint,
    read_json_lines,
    role_vars,
    run_playbook,
    ssh,
    write_vault_secrets,
)

from hostops import plesk_commands
from hostops.runner import repo_root, run_environment

pytestmark = pytest.mark.lab

STANDIN = ROOT / "tests" / "integration" / "plesk_standin"
PREFIX = "plesk-std-"
MIRROR = "http://127.0.0.1:8089"
CALL_LOG = "/var/log/plesk-standin/calls.jsonl"
STATE = "/var/lib/plesk-standin/state.json"
INSTALLER_BINARY = "parallels_installer_Debian_12.0_x86_64"
WRAPPER = list(plesk_commands.SECRET_ENV_WRAPPER)
UNSET = {"PSA_PASSWORD": "unset"}
SET = {"PSA_PASSWORD": "set"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plesk-standin")


@pytest.fixture(scope="module")
def host(workdir: Path) -> Iterator[LabHost]:
    yield from boot(PREFIX, "bookworm", workdir)


@pytest.fixture(scope="module")
def vault(host: LabHost, workdir: Path) -> Iterator[Secrets]:
    saved = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    yield write_vault_secrets(host, workdir)
    if saved is None:
        os.environ.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    else:
        os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = saved


@pytest.fixture(scope="module")
def standin(host: LabHost) -> LabHost:
    """Put the recording stand-in on the host and serve the stand-in installer."""
    ssh(host, "install -d -m 0755 /srv/plesk-mirror/Parallels_Installer")
    ssh(host, "cat > /usr/local/bin/plesk && chmod 0755 /usr/local/bin/plesk",
        (STANDIN / "plesk").read_bytes())
    ssh(host, "cat > /srv/plesk-mirror/plesk-installer", (STANDIN / "plesk-installer").read_bytes())
    binary = f"/srv/plesk-mirror/Parallels_Installer/{INSTALLER_BINARY}"
    ssh(host, f"echo 'stand-in, not an installer' > {binary}")
    ssh(
        host,
        "systemd-run --unit=plesk-standin-mirror /usr/bin/python3 -m http.server 8089"
        " --bind 127.0.0.1 --directory /srv/plesk-mirror"
        " && for i in $(seq 50); do python3 -c \"import urllib.request as u;"
        f" u.urlopen('{MIRROR}/plesk-installer')\" 2>/dev/null && exit 0; sleep 0.2; done; exit 1",
    )
    return host


def calls(host: LabHost) -> list[dict[str, Any]]:
    return read_json_lines(ssh(host, f"cat {CALL_LOG} 2>/dev/null || true"))


def state(host: LabHost) -> dict[str, Any]:
    return json.loads(ssh(host, f"cat {STATE}"))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def plesk_call(*argv: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    return {"program": "plesk", "argv": ["plesk", *argv], "env": env or UNSET,
            "secret_in_process_list": False}


# Secrets made during the module, checked at the end against every recorded place.
REQUEST_PASSWORDS: list[str] = []
RUN_DIRS: list[Path] = []


def test_check_mode_on_a_fresh_host_changes_nothing_and_runs_nothing(standin, workdir, vault):  # type: ignore[no-untyped-def]
    before = fingerprint(standin)
    run = run_playbook("plesk.yml", standin, workdir, secrets_=vault,
                       extravars=role_vars(plesk_installer_source=MIRROR), check=True)
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    assert run.result.changed > 0, run.explain()  # it predicts the download and the install
    assert calls(standin) == []  # neither the installer nor plesk ran
    assert fingerprint(standin) == before


def test_the_role_records_exactly_these_command_lines(standin, workdir, vault):  # type: ignore[no-untyped-def]
    run = run_playbook("plesk.yml", standin, workdir, secrets_=vault,
                       extravars=role_vars(plesk_installer_source=MIRROR, plesk_install_poll=2))
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    components = ["panel", "nginx", "webservers", "phpgroup", "mysqlgroup", "postfix",
                  "dovecot", "proftpd", "roundcube", "spamassassin"]
    installer_argv = ["plesk-installer", "--select-product-id", "plesk", "--select-release-latest",
                      "--source", MIRROR]
    for component in components:
        installer_argv += ["--install-component", component]
    assert calls(standin) == [
        {
            "program": "plesk-installer",
            "argv": installer_argv,
            "path": "/root/plesk-installer",
            "env": {
                "SKIP_DEFAULT_INSTALLER_DOWNLOAD_SOURCE": "1",
                "DEBIAN_FRONTEND": "noninteractive",
            },
        },
        plesk_call("bin", "license", "--install", "/root/.hostops-plesk-license.xml"),
        plesk_call("bin", "init_conf", "--check-configured"),
        plesk_call("bin", "init_conf", "--init", "-email", ADMIN_EMAIL, "-passwd", "",
                   "-name", "Alteo hostops", "-hostname", standin.fqdn,
                   "-license_agreed", "true", "-admin_info_not_required", "true", env=SET),
        plesk_call("sbin", "nginxmng", "--status"),
        plesk_call("sbin", "nginxmng", "--enable"),
        plesk_call("bin", "server_pref", "-u", "-autoupdates", "false",
                   "-autoupdates-third-party", "false"),
        plesk_call("bin", "mailserver", "--set-max-letter-size", "25M"),
        plesk_call("bin", "spamassassin", "--update-server", "-status", "true", "-hits", "5"),
        plesk_call("version"),
    ]
    recorded = state(standin)
    # the secrets arrived where they belong: the password through PSA_PASSWORD, the key
    # through a root-only file that is gone afterwards
    assert recorded["admin"] == {
        "email": ADMIN_EMAIL, "password_sha256": sha256(vault.admin_password)
    }
    assert recorded["license"] == {"sha256": sha256(vault.license_key), "file_mode": "0o600",
                                   "file_uid": 0}
    assert ssh(standin, "ls /root/.hostops-plesk-license.xml 2>&1 || true").strip().endswith(
        "No such file or directory")
    fact = ssh(standin, "cat /etc/ansible/facts.d/plesk.fact")
    assert f'"ip": "{standin.address}"' in fact
    assert '"version": "Plesk Obsidian 18.0.99 (recording stand-in)"' in fact


def test_a_second_role_run_changes_nothing_and_only_asks(standin, workdir, vault):  # type: ignore[no-untyped-def]
    before = len(calls(standin))
    run = run_playbook("plesk.yml", standin, workdir, secrets_=vault,
                       extravars=role_vars(plesk_installer_source=MIRROR))
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    assert run.result.changed == 0, run.explain()
    assert calls(standin)[before:] == [
        plesk_call("bin", "init_conf", "--check-configured"),
        plesk_call("sbin", "nginxmng", "--status"),
        plesk_call("version"),
    ]


REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("vhost", {"domain": "www.rousseau.example", "php": "8.2"}),
    ("database", {"engine": "mariadb", "name": "shop_db", "domain": "www.rousseau.example"}),
    ("db-user", {"engine": "mariadb", "database": "shop_db", "user": "shop"}),
    ("ftp-account", {"domain": "www.rousseau.example", "user": "marc"}),
    ("mailbox", {"address": "marc@www.rousseau.example"}),
]


def run_request(
    host: LabHost, workdir: Path, vault: Secrets, verb: str, args: dict[str, str], *,
    password: str | None, check: bool = False,
) -> tuple[Any, dict[str, Any]]:
    password_file = None
    if password is not None:
        password_file = workdir / f"password-{verb}"  # outside every run directory
        password_file.write_text(password)
        password_file.chmod(0o600)
    playbook, extravars = plesk_commands.request_run(verb, args, password_file)
    run = run_playbook(playbook, host, workdir, secrets_=vault,
                       extravars={**extravars, "hostops_targets": GROUP}, check=check)
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    return run, run.result.artifacts["hostops_request"][host.name]


def test_each_request_records_its_guard_then_its_create(standin, workdir, vault):  # type: ignore[no-untyped-def]
    for verb, args in REQUESTS:
        request = plesk_commands.build_request(verb, args)
        password = "Req-" + secrets.token_urlsafe(15) if request.needs_password else None
        if password:
            REQUEST_PASSWORDS.append(password)
        before = len(calls(standin))
        run, result = run_request(standin, workdir, vault, verb, args, password=password)
        assert result == {"verb": verb, "target": request.target, "status": "created"}
        assert run.result.changed == 1, run.explain()
        create = list(request.create.argv)
        if request.create.append_server_ip:
            create += ["-ip", standin.address]
        assert calls(standin)[before:] == [
            plesk_call(*request.guard.argv[1:]),
            plesk_call(*create[1:], env=SET if password else UNSET),
        ], verb
    # the passwords that arrived in PSA_PASSWORD are the ones the requests set
    recorded = state(standin)
    vhost, db_user, ftp, mailbox = REQUEST_PASSWORDS
    assert recorded["subscriptions"]["www.rousseau.example"] == {
        "owner": "admin", "plan": "Default Domain", "login": "w_www_rousseau_example",
        "ip": standin.address, "php_handler_id": "plesk-php82-fpm",
        "password_sha256": sha256(vhost),
    }
    assert recorded["databases"]["shop_db"]["users"]["shop"] == {"password_sha256": sha256(db_user)}
    assert recorded["ftp"]["marc"]["password_sha256"] == sha256(ftp)
    assert recorded["mail"]["marc@www.rousseau.example"]["password_sha256"] == sha256(mailbox)


def test_second_requests_create_nothing(standin, workdir, vault):  # type: ignore[no-untyped-def]
    before = len(calls(standin))
    for verb, args in REQUESTS:
        request = plesk_commands.build_request(verb, args)
        password = "Other-" + secrets.token_urlsafe(12) if request.needs_password else None
        if password:
            REQUEST_PASSWORDS.append(password)
        run, result = run_request(standin, workdir, vault, verb, args, password=password)
        assert result["status"] == "exists", verb
        assert run.result.changed == 0, run.explain()
    new = calls(standin)[before:]
    assert [c["argv"] for c in new] == [
        list(plesk_commands.build_request(verb, args).guard.argv) for verb, args in REQUESTS
    ]
    assert not any(arg in ("--create", "--update", "--init", "--install")
                   for call in new for arg in call["argv"])


def test_a_request_in_check_mode_predicts_and_creates_nothing(standin, workdir, vault):  # type: ignore[no-untyped-def]
    before = len(calls(standin))
    password = "Chk-" + secrets.token_urlsafe(12)
    REQUEST_PASSWORDS.append(password)
    _, result = run_request(standin, workdir, vault, "mailbox",
                            {"address": "new@www.rousseau.example"}, password=password,
                            check=True)
    assert result["status"] == "created"  # would be: check mode, as the other requests say it
    assert [c["argv"] for c in calls(standin)[before:]] == [
        ["plesk", "bin", "mail", "--info", "new@www.rousseau.example"]
    ]


def test_no_secret_in_recorded_argv_runner_files_or_process_list(standin, vault):  # type: ignore[no-untyped-def]
    values = vault.values() + REQUEST_PASSWORDS
    assert len(REQUEST_PASSWORDS) == 9 and len(RUN_DIRS) >= 14  # everything above ran
    recorded = calls(standin)
    for call in recorded:
        assert call.get("secret_in_process_list", False) is False, call
        for value in values:
            assert all(value not in arg for arg in call["argv"]), call
    scanned = 0
    for run_dir in RUN_DIRS:
        for path in run_dir.rglob("*"):
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                for value in values:
                    assert value.encode() not in data, f"a secret is in {path}"
    events = [p for d in RUN_DIRS for p in d.rglob("job_events/*.json")]
    assert len(events) > 200 and scanned > len(events)  # the runs' events and files were read
    log = ssh(standin, f"cat {CALL_LOG} {STATE}")
    for value in values:
        assert value not in log


def test_control_the_process_list_check_sees_a_password_in_the_environment_keyword(  # type: ignore[no-untyped-def]
    standin, workdir, vault
):
    """Control for the check above: ansible-core writes an environment: keyword's values
    into the remote command line (the reason hostops passes PSA_PASSWORD on stdin), and
    the stand-in does see it there."""
    password = "Ctl-" + secrets.token_urlsafe(12)
    os.environ["ANSIBLE_VAULT_PASSWORD_FILE"] = str(vault.vault_password_file)
    private = workdir / "control-run"
    private.mkdir()
    run = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(repo_root()),
        playbook=str(STANDIN / "environment-keyword.yml"),
        inventory=[str(standin.inventory)],
        extravars={"hostops_targets": GROUP, "control_password": password},
        envvars=run_environment(repo_root()),
        quiet=True,
    )
    assert run.status == "successful"
    last = calls(standin)[-1]
    assert last["argv"] == ["plesk", "version"]
    assert last["env"] == SET
    assert last["secret_in_process_list"] is True
