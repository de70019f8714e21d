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
import ipaddress
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ansible_runner
import host_state
import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret
from plesk_lab import (
    ADMIN_EMAIL,
    GROUP,
    ROOT,
    LabHost,
    Secrets,
    boot,
    failure_messages,
    fingerprint,
    hostops,
    read_json_lines,
    role_vars,
    run_playbook,
    ssh,
    write_vault_secrets,
)

from hostops.core.runner import repo_root, run_environment
from hostops.module_utils import plesk_commands

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
    # What playbooks/provision.yml records on a server of an order of level plesk: the
    # ticket requests read it to choose Plesk's back end.
    ssh(host, "install -d /etc/ansible/facts.d && echo '{\"managed_level\": \"plesk\"}'"
        " > /etc/ansible/facts.d/hostops.fact")
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


def test_check_mode_on_a_fresh_host_changes_nothing_and_runs_nothing(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
    before = fingerprint(standin)
    run = run_playbook("plesk.yml", standin, workdir, secrets_=vault,
                       extravars=role_vars(plesk_installer_source=MIRROR), check=True)
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    assert run.result.changed > 0, run.explain()  # it predicts the download and the install
    assert calls(standin) == []  # neither the installer nor plesk ran
    assert host_state.differences(before, fingerprint(standin)) == []


def test_the_role_records_exactly_these_command_lines(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
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


def test_a_second_role_run_changes_nothing_and_only_asks(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
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



# -- The host firewall through Plesk's firewall extension (playbooks/firewall.yml) -------
# The stand-in keeps the rules as the extension's CLI is described and never filters a
# packet: what is checked is which rules hostops leaves in force, read from the stand-in's
# active configuration and evaluated top-down as Plesk's firewall evaluates them.
NODE_SOURCE = "192.0.2.5"  # the monitoring server, given as the inventory gives it
STRANGER = "192.0.2.77"
FIREWALL_EXTRA = [{"name": "node-exporter", "ports": [9100], "proto": "tcp",
                   "sources": [NODE_SOURCE]}]
PLESK_PORTS = [8443, 80, 443, 25, 465, 587, 110, 143, 993, 995, 21, 49152, 65535]


def firewall_vars(controller: str, **overrides: Any) -> dict[str, Any]:
    return role_vars(**{"hostops_managed_level": "plesk", "plesk_installer_source": MIRROR,
                        "firewall_ssh_sources": [controller],
                        "hostops_firewall_extra_openings": FIREWALL_EXTRA, **overrides})


def let_in(config: dict[str, Any], address: str, port: int) -> bool:
    """Whether Plesk's firewall lets a TCP connection from *address* in on *port*: the first
    incoming rule that matches decides (the system policy matches everything)."""
    if not config["enabled"]:
        return True
    for rule in config["rules"]:
        if rule["direction"] != "input":
            continue
        ranges = [p.split("/")[0].split("-") for p in rule["ports"].split(",") if p
                  if p.endswith("/tcp")]
        if rule["ports"] and not any(int(r[0]) <= port <= int(r[-1]) for r in ranges):
            continue
        sources = [s for s in rule["from"].split(",") if s]
        if sources and not any(ipaddress.ip_address(address) in ipaddress.ip_network(s)
                               for s in sources):
            continue
        return bool(rule["action"] == "allow")
    return False


@pytest.fixture(scope="module")
def controller(standin: LabHost) -> str:
    """The address Ansible's SSH connections to the host come from."""
    return ssh(standin, "echo $SSH_CONNECTION").split()[0]


def test_firewall_check_mode_predicts_and_changes_no_rule(
    standin: LabHost, workdir: Path, vault: Secrets, controller: str
) -> None:
    before = len(calls(standin))
    run = run_playbook("firewall.yml", standin, workdir, secrets_=vault,
                       extravars=firewall_vars(controller), check=True)
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    assert run.result.changed > 0, run.explain()
    assert [c["argv"] for c in calls(standin)[before:]] == [["plesk", "ext", "firewall",
                                                            "--list-json"]]
    assert state(standin)["firewall"]["active"]["enabled"] is False


def test_firewall_denies_all_but_plesk_services_ssh_and_node_exporter(
    standin: LabHost, workdir: Path, vault: Secrets, controller: str
) -> None:
    before = len(calls(standin))
    run = run_playbook("firewall.yml", standin, workdir, secrets_=vault,
                       extravars=firewall_vars(controller))
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    argv = [c["argv"][3:] for c in calls(standin)[before:]]
    assert argv[0] == ["--list-json"]
    created = [a[2] for a in argv if a[:2] == ["--set-rule", "-name"]]
    assert created == ["hostops ssh", "hostops panel", "hostops web", "hostops smtp",
                       "hostops imap-pop3", "hostops ftp", "hostops node-exporter"]
    assert ["--set-rule", "-name", "hostops ssh", "-direction", "input", "-action", "allow",
            "-ports", "22/tcp", "-remote-addresses", controller] in argv
    denied = [a for a in argv if a[-2:] == ["-action", "deny"]]
    assert len(denied) == 11  # every predefined incoming rule and the incoming policy
    # put in force only through apply, then a confirmation from the new connection
    assert argv[-3:] == [["--enable"], ["--apply"], ["--confirm"]]
    firewall = state(standin)["firewall"]
    active = firewall["active"]
    assert active == firewall["pending"] and firewall["applying"] is False
    # what must be let in (positive controls) ...
    for port in PLESK_PORTS:
        assert let_in(active, STRANGER, port), port
    assert let_in(active, controller, 22)
    assert let_in(active, NODE_SOURCE, 9100)
    # ... and what must not: SSH and the node exporter from elsewhere, the databases,
    # DNS, Plesk's HTTP panel port, anything else
    for address, port in [(STRANGER, 22), (STRANGER, 9100), (STRANGER, 3306),
                          (STRANGER, 5432), (STRANGER, 53), (STRANGER, 8880),
                          (NODE_SOURCE, 22), (controller, 3306), (STRANGER, 12345)]:
        assert not let_in(active, address, port), (address, port)
    # a fresh Plesk let all of it in: the control that let_in can say yes to these
    fresh = {**active, "enabled": True,
             "rules": [r for r in active["rules"] if not r["name"].startswith("hostops ")]}
    fresh["rules"] = [{**r, "action": "allow"} for r in fresh["rules"]]
    assert let_in(fresh, STRANGER, 3306) and let_in(fresh, STRANGER, 22)


def test_firewall_second_run_only_reads_the_rules(
    standin: LabHost, workdir: Path, vault: Secrets, controller: str
) -> None:
    before = len(calls(standin))
    run = run_playbook("firewall.yml", standin, workdir, secrets_=vault,
                       extravars=firewall_vars(controller))
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    assert run.result.changed == 0, run.explain()
    assert [c["argv"] for c in calls(standin)[before:]] == [["plesk", "ext", "firewall",
                                                            "--list-json"]]


def test_firewall_rule_set_that_locks_ops_out_is_refused(
    standin: LabHost, workdir: Path, vault: Secrets, controller: str
) -> None:
    before = len(calls(standin))
    run = run_playbook("firewall.yml", standin, workdir, secrets_=vault,
                       extravars=firewall_vars(controller, firewall_ssh_sources=[STRANGER]))
    RUN_DIRS.append(run.run_dir)
    assert not run.result.ok, run.explain()
    assert any(m.startswith(f"Refused: Plesk's firewall would not let in SSH from {controller}")
               for m in failure_messages(run)), run.explain()
    assert calls(standin)[before:] == []
    assert let_in(state(standin)["firewall"]["active"], controller, 22)


def test_firewall_component_dropped_removes_its_rule(
    standin: LabHost, workdir: Path, vault: Secrets, controller: str
) -> None:
    components = ["panel", "nginx", "webservers", "phpgroup", "mysqlgroup", "postfix",
                  "dovecot", "roundcube", "spamassassin"]  # no proftpd
    before = len(calls(standin))
    run = run_playbook("firewall.yml", standin, workdir, secrets_=vault,
                       extravars=firewall_vars(controller, plesk_components=components))
    RUN_DIRS.append(run.run_dir)
    assert run.result.ok, run.explain()
    argv = [c["argv"][3:] for c in calls(standin)[before:]]
    ftp_id = [str(r["id"]) for r in state(standin)["firewall"]["active"]["rules"]
              if r["name"] == "hostops ftp"]
    assert ftp_id == []
    assert argv[1][:2] == ["--remove-rules", "-ids"] and len(argv) == 5, argv
    active = state(standin)["firewall"]["active"]
    assert not let_in(active, STRANGER, 21) and let_in(active, STRANGER, 8443)

# The ticket requests as an operator types them: `hostops request VERB --host H ...`,
# with the Plesk server's own inventory. The server's level (plesk) is on the host, in
# the fact provisioning records; the playbooks choose Plesk's back end from it.
REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("vhost", {"domain": "www.rousseau.example", "php": "8.2"}),
    ("database", {"engine": "mariadb", "name": "shop_db", "domain": "www.rousseau.example"}),
    ("db-user", {"engine": "mariadb", "database": "shop_db", "user": "shop"}),
    ("ftp-account", {"domain": "www.rousseau.example", "user": "marc"}),
    ("mailbox", {"address": "marc@www.rousseau.example"}),
]
PASSWORD_LINE = re.compile(r"^password \(shown once, stored nowhere\): (\S+)$", re.MULTILINE)


def request_cli(host: LabHost, workdir: Path, verb: str, args: dict[str, str],
                *extra: str) -> subprocess.CompletedProcess[str]:
    flags = [item for key, value in args.items() for item in (f"--{key}", value)]
    return hostops(
        "request", verb, "--host", host.name, *flags, "--inventory", str(host.inventory), *extra,
        env={"HOSTOPS_STATE_DIR": str(workdir / "state")},
    )


def test_each_request_records_its_guard_then_its_create(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
    for verb, args in REQUESTS:
        request = plesk_commands.build_request(verb, args)
        before = len(calls(standin))
        proc = request_cli(standin, workdir, verb, args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        details = ", ".join(f"{k} {v}" for k, v in request.details.items())
        assert f": created, 1 change(s) ({details})" in proc.stdout, proc.stdout
        shown = PASSWORD_LINE.findall(proc.stdout)
        assert len(shown) == (1 if request.needs_password else 0), proc.stdout
        REQUEST_PASSWORDS.extend(shown)
        create = list(request.create.argv)
        if request.create.append_server_ip:
            create += ["-ip", standin.address]
        assert calls(standin)[before:] == [
            plesk_call(*request.guard.argv[1:]),
            plesk_call(*create[1:], env=SET if request.needs_password else UNSET),
        ], verb
    # the passwords that arrived in PSA_PASSWORD are the ones hostops showed, once
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


def test_second_requests_create_nothing_and_show_no_password(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
    before = len(calls(standin))
    for verb, args in REQUESTS:
        request = plesk_commands.build_request(verb, args)
        proc = request_cli(standin, workdir, verb, args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        unchanged = "password unchanged, " if request.needs_password else ""
        assert f": exists, {unchanged}0 change(s)" in proc.stdout, proc.stdout
        assert not PASSWORD_LINE.search(proc.stdout)
    new = calls(standin)[before:]
    assert [c["argv"] for c in new] == [
        list(plesk_commands.build_request(verb, args).guard.argv) for verb, args in REQUESTS
    ]
    assert not any(arg in ("--create", "--update", "--init", "--install")
                   for call in new for arg in call["argv"])


def test_a_request_in_check_mode_predicts_and_creates_nothing(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
    before = len(calls(standin))
    proc = request_cli(standin, workdir, "mailbox", {"address": "new@www.rousseau.example"},
                       "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "check mode predicts 1 change(s); would be created" in proc.stdout, proc.stdout
    assert not PASSWORD_LINE.search(proc.stdout)
    assert [c["argv"] for c in calls(standin)[before:]] == [
        ["plesk", "bin", "mail", "--info", "new@www.rousseau.example"]
    ]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"engine": "mariadb", "name": "orders"},
         "--domain: required for 'database' on a Plesk server"),
        ({"engine": "postgresql", "name": "orders", "domain": "www.rousseau.example"},
         "--engine: 'postgresql': a Plesk server has MySQL/MariaDB only"),
    ],
)
def test_a_request_plesk_cannot_serve_is_bad_input_and_runs_nothing(
    standin: LabHost, workdir: Path, vault: Secrets, args: dict[str, str], problem: str
) -> None:
    before = len(calls(standin))
    proc = request_cli(standin, workdir, "database", args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    refusal = f"{standin.name} is a Plesk server, and the request cannot be served there"
    assert refusal in proc.stderr, proc.stderr
    assert problem in proc.stderr, proc.stderr
    assert calls(standin)[before:] == []


def test_a_password_can_go_to_a_vault_file_instead(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
    vault_file = workdir / "requests.vault.yml"
    args = {"domain": "shop.rousseau.example"}
    proc = request_cli(standin, workdir, "vhost", args, "--vault-file", str(vault_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    key = f"{standin.name}/subscriptions/shop.rousseau.example"
    assert f"password stored in {vault_file} under {key}" in proc.stdout
    assert not PASSWORD_LINE.search(proc.stdout)
    secret = VaultSecret(vault.vault_password_file.read_text().strip().encode())
    stored = yaml.safe_load(VaultLib([("default", secret)]).decrypt(vault_file.read_bytes()))
    password = stored[standin.name]["subscriptions"]["shop.rousseau.example"]["password"]
    REQUEST_PASSWORDS.append(password)
    assert state(standin)["subscriptions"]["shop.rousseau.example"]["password_sha256"] == sha256(
        password
    )


@pytest.mark.parametrize(
    ("verb", "args"),
    [
        ("database", {"engine": "mariadb", "name": "shop_db", "domain": "shop.rousseau.example"}),
        ("ftp-account", {"domain": "shop.rousseau.example", "user": "marc"}),
    ],
)
def test_a_name_taken_in_another_subscription_fails_and_creates_nothing(
    standin: LabHost, workdir: Path, vault: Secrets, verb: str, args: dict[str, Any]
) -> None:
    """shop_db and marc belong to www.rousseau.example: asked for shop.rousseau.example
    (made by the vault test above), they are not "exists", and nothing is created."""
    before = len(calls(standin))
    proc = request_cli(standin, workdir, verb, args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    target = args.get("name") or args["user"]
    assert (
        f"FAILED on {standin.name}, task 'Refuse a name taken in another subscription': "
        f"{verb} {target} already exists on {standin.name}, in www.rousseau.example, "
        "not in shop.rousseau.example: nothing was changed"
    ) in proc.stdout, proc.stdout
    assert [c["argv"] for c in calls(standin)[before:]] == [
        list(plesk_commands.build_request(verb, args).guard.argv)
    ]
    assert not PASSWORD_LINE.search(proc.stdout)


def test_no_secret_in_recorded_argv_runner_files_or_process_list(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
    values = vault.values() + REQUEST_PASSWORDS
    assert len(REQUEST_PASSWORDS) == 5 and len(RUN_DIRS) >= 3  # everything above ran
    RUN_DIRS.extend(sorted((workdir / "state" / "requests").glob("*/*")))
    assert len(RUN_DIRS) >= 3 + 16
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


def test_control_the_process_list_check_sees_a_password_in_the_environment_keyword(
    standin: LabHost, workdir: Path, vault: Secrets
) -> None:
    """Control for the check above: ansible-core writes an environment: keyword's values
    into the remote command line (the reason hostops passes PSA_PASSWORD on stdin), and
    the stand-in does see it there. Under ansible-core's stock strategy: Mitogen (hostops'
    default) sets the environment inside its interpreter, where no command line shows it."""
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
        envvars={**run_environment(repo_root()), "ANSIBLE_STRATEGY": "linear"},
        quiet=True,
    )
    assert run.status == "successful"
    last = calls(standin)[-1]
    assert last["argv"] == ["plesk", "version"]
    assert last["env"] == SET
    assert last["secret_in_process_list"] is True
