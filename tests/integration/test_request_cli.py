"""Ticket requests driven through the real CLI against a Debian 13 lab host (needs root).

The host is booted with ``hostops lab up --prefix req-`` and given the web and FTP stack
with playbooks/stack-web.yml; then, in order, as one story: the host's fingerprint
(tests/integration/host_state.py) stays the same while the host's own timers fire and
changes when its configuration does; hostile names are refused
with exit 2 and touch nothing; check mode predicts and changes nothing; a vhost is
created and served; asking again changes nothing; an FTP account is created, its
password shown once and working over FTPS; asking again changes nothing and keeps the
password; a password asked to be stored goes to the vault file only; no password is left
anywhere else (run directories, the host's journal and logs); a server at the Plesk level
is refused for now.
"""

from __future__ import annotations

import ftplib
import http.client
import io
import re
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import host_state
import pytest
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret
from lab_helpers import ansible_playbook, owned_prefixes

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFIX = "req-"
HOST = "req-1"
DOMAIN = "shop.martin.example"
VHOST_USER = "w_shop_martin_example"
VAULT_PASSWORD = "correct horse battery staple"  # noqa: S105 - the test's own vault
PASSWORD_LINE = re.compile(r"^password \(shown once, stored nowhere\): (\S+)$", re.MULTILINE)


# Every password the story generated, for the last checks.
PASSWORDS: dict[str, str] = {}


@pytest.fixture(scope="module")
def stack_host(
    cli: Any, root_user: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    inventory = tmp_path_factory.mktemp("inventory") / "req.yml"
    with owned_prefixes(cli, PREFIX):
        cli(
            "lab", "up", "--hosts", "1", "--release", "trixie", "--prefix", PREFIX,
            "--inventory", str(inventory), "--group", "req_hosts", check=True,
        )  # fmt: skip
        ansible_playbook(inventory, "stack-web.yml", "-e", "hostops_targets=req_hosts")
        address = yaml.safe_load(inventory.read_text())["all"]["children"]["lab"]["hosts"][HOST]
        yield address["ansible_host"]


def on_host(cli: Any, command: str) -> str:
    return cli("lab", "ssh", HOST, "--", command, check=True).stdout


def fingerprint(cli: Any) -> dict[str, list[str]]:
    """What a request could change (tests/integration/host_state.py): files under /etc
    and /var/www, accounts (the FTP server's virtual users are under /etc), enabled
    units, packages, databases."""
    return host_state.fingerprint(lambda text: on_host(cli, text))


def changes(stdout: str) -> int:
    found = re.findall(r"(\d+) change\(s\)", stdout)
    assert found, stdout
    return int(found[-1])


class SessionReusingFTPS(ftplib.FTP_TLS):
    """Data connections reuse the control connection's TLS session (ProFTPD requires it)."""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - TLS below
        if self._prot_p:  # type: ignore[attr-defined]  # ftplib private, not in typeshed
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session  # type: ignore[union-attr]  # connected
            )
        return conn, size


def ftps_upload(address: str, user: str, password: str, name: str, data: bytes) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's certificate is self-signed
    client = SessionReusingFTPS(context=context, timeout=10)
    client.connect(address, 21)
    try:
        client.login(user, password)
        client.prot_p()
        client.storbinary(f"STOR {name}", io.BytesIO(data))
    finally:
        client.close()


def http_get(address: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, 80, timeout=10)
    conn.request("GET", path, headers={"Host": DOMAIN})
    response = conn.getresponse()
    return response.status, response.read().decode()


# Services that timers start on their own schedule (php-common, apt, dpkg, systemd):
# the fingerprint must not see them run.
TIMER_SERVICES = (
    "phpsessionclean.service",
    "apt-daily.service",
    "dpkg-db-backup.service",
    "systemd-tmpfiles-clean.service",
)


def test_fingerprint_ignores_timers_and_sees_changes(cli: Any, stack_host: str) -> None:
    """The fingerprint that proves "nothing changed" below: the same while the host's timers
    fire (while their services run and after they ran), different after a change a
    request could make (positive control), the same again once it is undone."""
    units = " ".join(TIMER_SERVICES)
    listed = on_host(cli, f"systemctl list-unit-files --no-legend {units}")
    assert all(unit in listed for unit in TIMER_SERVICES), listed  # real units, not nothing
    before = fingerprint(cli)
    on_host(cli, f"systemctl start --no-block {units}")
    assert host_state.differences(before, fingerprint(cli)) == []  # while they may run
    on_host(cli, f"systemctl start {units}")  # waits until each has run to its end
    journal = on_host(cli, "journalctl --no-pager -o cat -u phpsessionclean.service")
    assert journal.strip(), "phpsessionclean.service did not run"
    assert host_state.differences(before, fingerprint(cli)) == []

    probe = "/etc/hostops-fingerprint-probe"
    try:
        on_host(cli, f"echo probe > {probe} && chmod 0600 {probe} && chmod o+w /var/www")
        changed = host_state.differences(before, fingerprint(cli))
        assert any(probe in line and line.startswith("files: +") for line in changed), changed
        assert any(probe in line and line.startswith("modes: +f 600") for line in changed), changed
        assert any(line.startswith("modes: +d 757 ") and "/var/www" in line for line in changed)
    finally:
        on_host(cli, f"rm -f {probe} && chmod o-w /var/www")
    assert host_state.differences(before, fingerprint(cli)) == []


def test_hostile_names_exit_2_and_touch_nothing(cli: Any, stack_host: str, state_dir: Path) -> None:
    before = fingerprint(cli)
    attempts = [
        (
            ["vhost", "--host", HOST, "--domain", "a.example;rm -rf /"],
            "--domain: 'a.example;rm -rf /'",
        ),
        (
            ["ftp-account", "--host", HOST, "--domain", DOMAIN, "--user", "x'; DROP"],
            '--user: "x\'; DROP"',
        ),
        (["vhost", "--host", f"{HOST};id", "--domain", DOMAIN], f"--host: '{HOST};id'"),
        (
            ["vhost", "--host", HOST, "--domain", "{{ lookup('pipe', 'id') }}"],
            "--domain: \"{{ lookup('pipe', 'id') }}\"",
        ),
        (["vhost", "--host", "nothere-1", "--domain", DOMAIN], "--host: 'nothere-1' is not a host"),
    ]
    for argv, expected in attempts:
        proc = cli("request", *argv, "--lab")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert expected in proc.stderr, proc.stderr
        assert proc.stdout == ""  # nothing ran
    assert not (state_dir / "requests").exists()
    assert host_state.differences(before, fingerprint(cli)) == []


def test_check_mode_predicts_and_changes_nothing(
    cli: Any, stack_host: str, state_dir: Path
) -> None:
    before = fingerprint(cli)
    proc = cli("request", "vhost", "--host", HOST, "--domain", DOMAIN, "--lab", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "would be created" in proc.stdout
    assert changes(proc.stdout) > 0
    assert host_state.differences(before, fingerprint(cli)) == []


def test_vhost_request_creates_a_served_vhost(cli: Any, stack_host: str, state_dir: Path) -> None:
    proc = cli("request", "vhost", "--host", HOST, "--domain", DOMAIN, "--lab")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"request vhost {DOMAIN} on {HOST}: created" in proc.stdout
    assert f"user {VHOST_USER}" in proc.stdout
    status, body = http_get(stack_host, "/")
    assert status == 200
    assert f"{DOMAIN} is ready" in body


def test_second_vhost_request_changes_nothing(
    cli: Any, stack_host: str, state_dir: Path, tmp_path: Path
) -> None:
    # --vault-file is accepted (a vhost on a Plesk server has a password), and on this
    # custom stack there is nothing to store: it says so, and writes no file
    password_file = tmp_path / "vault-pass"
    password_file.write_text(VAULT_PASSWORD + "\n")
    vault_file = tmp_path / "secrets.yml"
    proc = cli(
        "request", "vhost", "--host", HOST, "--domain", DOMAIN, "--lab",
        "--vault-file", str(vault_file), "--vault-password-file", str(password_file),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"request vhost {DOMAIN} on {HOST}: exists" in proc.stdout
    assert changes(proc.stdout) == 0
    assert f"nothing stored in {vault_file}: no password on this server" in proc.stdout
    assert not vault_file.exists()
    assert not PASSWORD_LINE.search(proc.stdout)


def test_ftp_account_request_shows_the_password_once(
    cli: Any, stack_host: str, state_dir: Path
) -> None:
    proc = cli(
        "request", "ftp-account", "--host", HOST, "--domain", DOMAIN, "--user", "martin", "--lab"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ftp-account martin" in proc.stdout and ": created" in proc.stdout
    shown = PASSWORD_LINE.findall(proc.stdout)
    assert len(shown) == 1
    PASSWORDS["martin"] = shown[0]
    assert proc.stdout.count(shown[0]) == 1  # shown once, in that line only
    # the account works: an FTPS upload lands in the vhost and is served
    ftps_upload(stack_host, "martin", shown[0], "ticket.txt", b"uploaded by ticket\n")
    assert http_get(stack_host, "/ticket.txt") == (200, "uploaded by ticket\n")
    owner = on_host(cli, f"stat -c %U /var/www/{DOMAIN}/htdocs/ticket.txt").strip()
    assert owner == VHOST_USER


def test_second_ftp_request_keeps_the_password(cli: Any, stack_host: str, state_dir: Path) -> None:
    entry = "grep '^martin:' /etc/proftpd/hostops.passwd | cut -d: -f2"
    hash_before = on_host(cli, entry)
    proc = cli(
        "request", "ftp-account", "--host", HOST, "--domain", DOMAIN, "--user", "martin", "--lab"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exists, password unchanged" in proc.stdout
    assert changes(proc.stdout) == 0
    assert not PASSWORD_LINE.search(proc.stdout)
    assert "password stored" not in proc.stdout
    assert on_host(cli, entry) == hash_before
    ftps_upload(stack_host, "martin", PASSWORDS["martin"], "again.txt", b"still works\n")


def test_password_stored_in_the_vault_file_only(
    cli: Any, stack_host: str, state_dir: Path, tmp_path: Path
) -> None:
    password_file = tmp_path / "vault-pass"
    password_file.write_text(VAULT_PASSWORD + "\n")
    vault_file = tmp_path / "secrets.yml"
    proc = cli(
        "request", "ftp-account", "--host", HOST, "--domain", DOMAIN, "--user", "paul", "--lab",
        "--vault-file", str(vault_file), "--vault-password-file", str(password_file),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"password stored in {vault_file} under {HOST}/ftp_accounts/paul" in proc.stdout
    assert not PASSWORD_LINE.search(proc.stdout)
    vault = VaultLib([("default", VaultSecret(VAULT_PASSWORD.encode()))])
    stored = yaml.safe_load(vault.decrypt(vault_file.read_bytes()))
    password = stored[HOST]["ftp_accounts"]["paul"]["password"]
    PASSWORDS["paul"] = password
    assert password not in proc.stdout and password not in proc.stderr
    assert password.encode() not in vault_file.read_bytes()
    ftps_upload(stack_host, "paul", password, "paul.txt", b"from the vault\n")


def test_no_password_left_anywhere_else(cli: Any, stack_host: str, state_dir: Path) -> None:
    assert set(PASSWORDS) == {"martin", "paul"}
    runs = list((state_dir / "requests").rglob("*"))
    assert any(p.name == "extravars" for p in runs)  # the run directories were kept
    for path in runs:
        if path.is_file():
            content = path.read_bytes()
            for user, password in PASSWORDS.items():
                assert password.encode() not in content, f"{user}'s password is in {path}"
    pattern = "|".join(re.escape(p) for p in PASSWORDS.values())
    hits = on_host(
        cli,
        f"{{ journalctl --no-pager -o cat; cat /var/log/proftpd/*.log /var/log/nginx/*.log"
        f" /var/log/apache2/*.log 2>/dev/null; }} | grep -cE -e '{pattern}' || true",
    )
    assert hits.strip() == "0"


def test_a_server_recorded_as_plesk_without_plesk_is_refused_unchanged(
    cli: Any, stack_host: str, state_dir: Path
) -> None:
    """The level says Plesk, so Plesk's back end is chosen; but Plesk is not there (the
    plesk role's fact is missing): the request stops before anything runs."""
    fact = "/etc/ansible/facts.d/hostops.fact"
    on_host(cli, f'mkdir -p /etc/ansible/facts.d && echo \'{{"managed_level": "plesk"}}\' > {fact}')
    try:
        before = fingerprint(cli)
        proc = cli("request", "vhost", "--host", HOST, "--domain", "other.example", "--lab")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"Cannot serve vhost on {HOST}: it must be a Plesk server" in proc.stdout
        assert not PASSWORD_LINE.search(proc.stdout)
        assert host_state.differences(before, fingerprint(cli)) == []
    finally:
        on_host(cli, f"rm -f {fact}")
