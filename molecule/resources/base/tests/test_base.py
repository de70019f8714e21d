"""What every managed server gets (alteo.hostops.base), checked on the converged host."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

OPS_KEY_COMMENT = "ops-molecule"

# What the hardened sshd must offer, per release (issue 14, item 5): Debian 13's OpenSSH 10
# has ML-KEM, Debian 12's 9.2 stops at sntrup761.
KEX = {
    "trixie": [
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
    ],
    "bookworm": [
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group18-sha512",
    ],
}
CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
MACS = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
]

SYSCTL_FILE = "/etc/sysctl.d/60-hostops-hardening.conf"
SYSCTLS = {
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.default.rp_filter": "1",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv6.conf.all.accept_source_route": "0",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.unprivileged_bpf_disabled": "1",
    "net.core.bpf_jit_harden": "2",
    "kernel.yama.ptrace_scope": "1",
    "fs.protected_hardlinks": "1",
    "fs.protected_symlinks": "1",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
    "fs.suid_dumpable": "0",
}
# Keys a kernel may lack: Yama (a build option), bpf_jit_harden outside the host's own
# network namespace (a container). sysctl -e skips them.
MAY_BE_ABSENT = {"kernel.yama.ptrace_scope", "net.core.bpf_jit_harden"}
SSH_TEST_USER = "hostops-sshtest"
BLACKLIST = [
    "cramfs",
    "freevxfs",
    "hfs",
    "hfsplus",
    "jffs2",
    "udf",
    "dccp",
    "sctp",
    "rds",
    "tipc",
    "usb-storage",
    "firewire-core",
    "firewire-ohci",
]


def sshd_settings(host: Any) -> dict[str, str]:
    out = host.check_output("sshd -T")
    settings = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        settings[key] = value
    return settings


def test_sshd_accepts_keys_only(host: Any) -> None:
    settings = sshd_settings(host)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["pubkeyauthentication"] == "yes"
    assert settings["permitrootlogin"] == "without-password"
    assert settings["maxauthtries"] == "3"
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_sshd_offers_modern_algorithms_only(host: Any) -> None:
    settings = sshd_settings(host)
    release = host.ansible.get_variables()["hostops_lab_release"]
    assert settings["kexalgorithms"].split(",") == KEX[release]
    assert settings["ciphers"].split(",") == CIPHERS
    assert settings["macs"].split(",") == MACS
    host_keys = settings["hostkeyalgorithms"].split(",")
    assert "ssh-ed25519" in host_keys
    assert "rsa-sha2-512" in host_keys
    assert not {"ssh-rsa", "ssh-rsa-cert-v01@openssh.com", "ssh-dss"} & set(host_keys)
    assert settings["maxstartups"] == "10:30:60"
    assert settings["logingracetime"] == "30"
    assert settings["x11forwarding"] == "no"
    assert settings["allowagentforwarding"] == "no"
    # the drop-in says why root keeps its key login: Ansible connects as root
    conf = host.file("/etc/ssh/sshd_config.d/10-hostops.conf")
    assert conf.contains("^PermitRootLogin prohibit-password$")
    assert conf.contains("Ansible connects as root")


@pytest.fixture(scope="module")
def ssh_login(host: Any) -> Iterator[Callable[..., str]]:
    """A throw-away account with its own key, for real logins to the host's own sshd."""
    host.run(f"userdel -r {SSH_TEST_USER} 2>/dev/null")
    key = "/root/.ssh/hostops-sshtest"
    host.check_output(
        f"useradd -m -s /bin/bash {SSH_TEST_USER} && install -d -m 0700 /root/.ssh"
        f" && rm -f {key} {key}.pub && ssh-keygen -q -t ed25519 -N '' -f {key}"
        f" && install -d -m 0700 -o {SSH_TEST_USER} -g {SSH_TEST_USER} /home/{SSH_TEST_USER}/.ssh"
        f" && install -m 0600 -o {SSH_TEST_USER} -g {SSH_TEST_USER} {key}.pub"
        f" /home/{SSH_TEST_USER}/.ssh/authorized_keys"
    )

    def login(options: str = "", command: str = "echo connected") -> str:
        # a new connection each time (no multiplexing); ssh's exit status is printed,
        # since 255 would read as a lost connection to testinfra
        return host.check_output(
            f"ssh -i {key} -o BatchMode=yes -o StrictHostKeyChecking=no"
            " -o UserKnownHostsFile=/dev/null -o ControlMaster=no -o ControlPath=none"
            f" -o ConnectTimeout=5 {options} {SSH_TEST_USER}@127.0.0.1 '{command}' 2>&1;"
            " echo rc=$?"
        )

    yield login
    host.run(f"userdel -r {SSH_TEST_USER}; rm -f {key} {key}.pub")


def test_default_client_connects(host: Any, ssh_login: Callable[..., str]) -> None:
    """The positive control: a current client with the server's strongest key exchange."""
    release = host.ansible.get_variables()["hostops_lab_release"]
    out = ssh_login(f"-o KexAlgorithms={KEX[release][0]}")
    assert out.endswith("connected\nrc=0"), out
    assert ssh_login().endswith("connected\nrc=0")


# A MAC is negotiated only with a cipher that has none of its own (not an AEAD one).
NON_AEAD = "-o Ciphers=aes256-ctr"


def test_default_client_connects_with_a_separate_mac(ssh_login: Callable[..., str]) -> None:
    out = ssh_login(f"{NON_AEAD} -o MACs=hmac-sha2-256-etm@openssh.com")
    assert out.endswith("connected\nrc=0"), out


@pytest.mark.parametrize(
    ("option", "weak", "refusal"),
    [
        ("Ciphers", "aes128-cbc", "no matching cipher found"),
        ("Ciphers", "3des-cbc", "no matching cipher found"),
        ("KexAlgorithms", "diffie-hellman-group14-sha1", "no matching key exchange method"),
        ("KexAlgorithms", "ecdh-sha2-nistp256", "no matching key exchange method"),
        ("MACs", "hmac-sha1", "no matching MAC found"),
        ("MACs", "hmac-sha2-256", "no matching MAC found"),
        ("HostKeyAlgorithms", "ssh-rsa", "no matching host key type found"),
    ],
)
def test_weak_client_is_refused(
    host: Any, ssh_login: Callable[..., str], option: str, weak: str, refusal: str
) -> None:
    # the client can offer it: the refusal is the server's
    kind = {"Ciphers": "cipher", "KexAlgorithms": "kex", "MACs": "mac"}.get(option, "key")
    assert weak in host.check_output(f"ssh -Q {kind}").split()
    extra = NON_AEAD if option == "MACs" else ""
    out = ssh_login(f"{extra} -o {option}={weak}")
    assert out.endswith("rc=255"), out
    assert refusal in out, out
    assert "connected" not in out


def test_core_dumps_are_off(host: Any, ssh_login: Callable[..., str]) -> None:
    # a fresh login: pam_limits reads limits.d for the new session
    out = ssh_login(command="ulimit -Hc; ulimit -Sc")
    assert out.endswith("0\n0\nrc=0"), out
    limits = host.file("/etc/security/limits.d/60-hostops-coredump.conf")
    assert limits.mode == 0o644
    assert limits.contains(r"^\* hard core 0$")
    assert limits.contains("^root hard core 0$")
    coredump = host.file("/etc/systemd/coredump.conf.d/60-hostops.conf")
    assert coredump.contains("^Storage=none$")
    assert host.file(SYSCTL_FILE).contains("^fs.suid_dumpable = 0$")


def test_login_umask(host: Any, ssh_login: Callable[..., str]) -> None:
    assert host.check_output(f"su - {SSH_TEST_USER} -c umask") == "0027"
    # root keeps Debian's 022, in login shells and in Ansible's sessions
    assert host.check_output("bash -lc umask") == "0022"
    assert host.check_output("umask") == "0022"


def test_password_login_is_refused_on_the_wire(host: Any) -> None:
    """Ask sshd which methods it offers: publickey only."""
    # (ssh's own exit status 255 would read as a lost connection to testinfra: print it)
    out = host.check_output(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PreferredAuthentications=none -o ConnectTimeout=5 nobody@127.0.0.1 true 2>&1;"
        " echo rc=$?"
    )
    assert out.endswith("rc=255")
    assert "Permission denied (publickey)" in out


def test_timezone_is_paris(host: Any) -> None:
    assert host.file("/etc/localtime").linked_to.endswith("Europe/Paris")
    offset = host.check_output("date +%Z")
    assert offset in ("CET", "CEST")


def test_hostname_and_fqdn(host: Any) -> None:
    fqdn = host.ansible.get_variables()["hostops_fqdn"]
    assert host.check_output("hostname") == fqdn.split(".")[0]
    assert host.check_output("hostname -f") == fqdn


def test_locale(host: Any) -> None:
    locales = host.check_output("locale -a")
    assert "fr_FR.utf8" in locales
    assert "en_US.utf8" in locales
    assert host.file("/etc/default/locale").contains("^LANG=en_US.UTF-8$")


def test_time_sync_configured(host: Any) -> None:
    conf = host.file("/etc/systemd/timesyncd.conf.d/hostops.conf")
    assert conf.mode == 0o644
    assert conf.contains("^NTP=0.debian.pool.ntp.org ")
    assert host.service("systemd-timesyncd").is_enabled


def test_admin_account(host: Any) -> None:
    admin = host.user("opsadmin")
    assert admin.exists
    assert "sudo" in admin.groups
    keys = host.file("/home/opsadmin/.ssh/authorized_keys")
    assert keys.user == "opsadmin"
    assert keys.mode == 0o600
    assert keys.content_string.strip().endswith(OPS_KEY_COMMENT)
    assert not host.user("formerops").exists
    sudoers = host.file("/etc/sudoers.d/hostops-admins")
    assert sudoers.mode == 0o440
    assert host.run("visudo -cf /etc/sudoers.d/hostops-admins").rc == 0


def test_unattended_upgrades_off(host: Any) -> None:
    assert not host.package("unattended-upgrades").is_installed
    conf = host.file("/etc/apt/apt.conf.d/20auto-upgrades")
    assert conf.contains('APT::Periodic::Unattended-Upgrade "0";')


def test_apt_proxy_from_inventory(host: Any) -> None:
    proxy = host.ansible.get_variables()["hostops_apt_proxy"]
    assert host.file("/etc/apt/apt.conf.d/02hostops-proxy").contains(proxy)


def test_logrotate_compresses_into_the_archive(host: Any) -> None:
    conf = host.file("/etc/logrotate.conf")
    assert conf.contains("^compress$")
    assert conf.contains("^olddir /var/log/archive$")
    assert conf.contains("^rotate 26$")
    archive = host.file("/var/log/archive")
    assert archive.is_directory
    assert archive.mode == 0o750
    assert archive.group == "adm"
    # logrotate accepts the whole configuration (all packages' files included)
    assert host.run("logrotate --debug /etc/logrotate.conf").rc == 0


def test_logrotate_really_archives(host: Any) -> None:
    """Force a rotation of a test log: it lands compressed in the archive directory."""
    host.run("rm -f /var/log/archive/hostops-test.log*")
    host.check_output("head -c 20000 /dev/zero | tr '\\\\0' x > /var/log/hostops-test.log")
    # the host's global settings (olddir, dateext, compress) and the test's log alone:
    # forcing the whole configuration would rotate every log again, racing logrotate.timer
    # and failing on the archives its run already made today ("already exists")
    host.check_output(
        "grep -v '^include' /etc/logrotate.conf > /tmp/lr.conf && "
        "printf '/var/log/hostops-test.log {\\n  rotate 2\\n  nodelaycompress\\n}\\n'"
        " >> /tmp/lr.conf"
    )
    try:
        host.check_output("logrotate --force --state /tmp/lr.state /tmp/lr.conf")
        archived = host.check_output("ls /var/log/archive/")
        assert any(
            name.startswith("hostops-test.log-") and name.endswith(".gz")
            for name in archived.split()
        ), archived
    finally:
        host.run(
            "rm -f /tmp/lr.conf /var/log/hostops-test.log* "
            "/var/log/archive/hostops-test.log* /tmp/lr.state"
        )


def test_journald_retention(host: Any) -> None:
    conf = host.file("/etc/systemd/journald.conf.d/hostops.conf")
    assert conf.contains("^SystemMaxUse=1G$")
    assert conf.contains("^MaxRetentionSec=3month$")


@pytest.mark.parametrize("package", ["openssh-server", "systemd", "logrotate"])
def test_software_inventory_fact(host: Any, package: str) -> None:
    fact = host.file("/etc/ansible/facts.d/hostops_inventory.fact")
    assert fact.mode == 0o755
    inventory = json.loads(host.check_output("/etc/ansible/facts.d/hostops_inventory.fact"))
    version = host.check_output(f"dpkg-query -W -f '${{Version}}' {package}")
    assert inventory["packages"][package]["version"] == version
    assert inventory["package_count"] > 100
    release = host.ansible.get_variables()["hostops_lab_release"]
    assert inventory["os"]["codename"] == release
    local = host.ansible("setup", "filter=ansible_local gather_subset=local")
    facts = local["ansible_facts"]["ansible_local"]["hostops_inventory"]
    assert facts["packages"][package]["version"] == version


def test_hardening_sysctls_file(host: Any) -> None:
    conf = host.file(SYSCTL_FILE)
    assert conf.user == "root"
    assert conf.mode == 0o644
    lines = [line for line in conf.content_string.splitlines() if line and not line.startswith("#")]
    written = dict(line.split(" = ", 1) for line in lines)
    for key, value in SYSCTLS.items():
        assert written.get(key) == value, key
    # every key names a real setting of this kernel (a typo would be skipped silently)
    for key in written:
        path = "/proc/sys/" + key.replace(".", "/")
        assert host.file(path).exists or key in MAY_BE_ABSENT, key
    # and systemd-sysctl loads it at boot
    assert SYSCTL_FILE in host.check_output("systemd-analyze cat-config sysctl.d")


def test_module_blacklist(host: Any) -> None:
    conf = host.file("/etc/modprobe.d/hostops-blacklist.conf")
    assert conf.mode == 0o644
    for module in BLACKLIST:
        assert conf.contains(f"^install {module} /bin/false$"), module


def test_sudo_is_logged(host: Any) -> None:
    marker = f"hostops-sudo-{uuid.uuid4().hex}"
    host.check_output(f"sudo -u nobody /bin/echo {marker}")
    log = host.file("/var/log/sudo.log")
    assert log.user == "root"
    assert log.mode & 0o077 == 0
    assert marker in log.content_string
    assert f"USER=nobody ; COMMAND=/bin/echo {marker}" in " ".join(log.content_string.split())
    assert host.run("visudo -c").rc == 0
    assert host.file("/etc/sudoers.d/hostops-logging").mode == 0o440


SECURITY_PACKAGES = [
    "libpam-tmpdir",
    "needrestart",
    "debsums",
    "libpam-passwdqc",
    "apt-listchanges",
    "sysstat",
    "chkrootkit",
    "aide",
    "aide-common",
]


def test_security_tools_are_installed_and_set_up(host: Any) -> None:
    for package in SECURITY_PACKAGES:
        assert host.package(package).is_installed, package
    assert host.file("/etc/needrestart/conf.d/60-hostops.conf").contains(
        r"^\$nrconf{restart} = 'l';$"
    )
    assert host.file("/etc/default/debsums").contains("^CRON_CHECK=weekly$")
    assert host.file("/etc/login.defs").contains("^SHA_CRYPT_MIN_ROUNDS 65536$")
    listchanges = host.file("/etc/apt/listchanges.conf").content_string.split()
    for setting in ("frontend=mail", "email_address=root", "which=news", "confirm=false"):
        assert setting in listchanges, setting
    assert host.file("/etc/default/sysstat").contains('^ENABLED="true"$')
    for timer in ("chkrootkit.timer", "dailyaidecheck.timer"):
        assert host.service(timer).is_enabled, timer


def test_aide_reports_a_file_added_after_its_database(host: Any) -> None:
    probe = f"/etc/hostops-aide-probe-{uuid.uuid4().hex}"
    check = f"aide --config /etc/aide/aide.conf --check --limit '^{probe}'"
    assert host.file("/var/lib/aide/aide.db").exists
    try:
        # control: nothing there yet, nothing reported
        clean = host.run(check)
        assert clean.rc == 0, clean.stdout + clean.stderr
        host.check_output(f"echo tampered > {probe}")
        found = host.run(check)
        assert found.rc == 1, found.stdout + found.stderr  # 1: new files
        assert probe in found.stdout
    finally:
        host.run(f"rm -f {probe}")


def test_only_root_runs_the_assembler(host: Any, ssh_login: Callable[..., str]) -> None:
    assembler = host.check_output("readlink -f $(command -v as)")
    assert host.file(assembler).mode == 0o750
    assert assembler in host.check_output("dpkg-statoverride --list")
    # control: root still assembles
    assert "GNU assembler" in host.check_output("as --version")
    refused = host.run(f"su -s /bin/sh {SSH_TEST_USER} -c 'as --version'")
    assert refused.rc != 0
    assert "Permission denied" in refused.stderr + refused.stdout


def test_password_ages_spare_the_key_only_administrators(
    host: Any, ssh_login: Callable[..., str]
) -> None:
    defs = host.file("/etc/login.defs")
    for line in ("PASS_MIN_DAYS\t1", "PASS_MAX_DAYS\t365", "PASS_WARN_AGE\t14"):
        assert defs.contains(f"^{line}$"), line
    # an account made after the role (the test's own, by useradd) gets the ages ...
    made_later = host.check_output(f"getent shadow {SSH_TEST_USER}").split(":")
    assert made_later[3:6] == ["1", "365", "14"], made_later
    # ... the administrator keeps no maximum, so its key login never expires
    admin = host.check_output("getent shadow opsadmin").split(":")
    assert admin[1] == "!" and admin[4] == "", admin


def test_login_sessions_time_out_and_get_their_own_tmp(host: Any) -> None:
    out = host.check_output(
        f"su - {SSH_TEST_USER} -c 'echo tmout=$TMOUT tmpdir=$TMPDIR; (TMOUT=0) 2>&1; ulimit -Sc'"
    )
    uid = host.check_output(f"id -u {SSH_TEST_USER}")
    lines = out.splitlines()
    assert lines[0] == f"tmout=900 tmpdir=/tmp/user/{uid}", out
    assert "TMOUT: readonly variable" in lines[1], out  # a user cannot switch it off
    assert lines[2] == "0", out
    # non-login shells (Ansible's, cron's) have no timeout
    assert host.check_output("bash -c 'echo tmout=${TMOUT:-none}'") == "tmout=none"


def test_sshd_logs_key_fingerprints_and_banners_are_legal(host: Any) -> None:
    settings = sshd_settings(host)
    assert settings["loglevel"] == "VERBOSE"
    assert settings["tcpkeepalive"] == "no"
    for banner in ("/etc/issue", "/etc/issue.net"):
        assert host.file(banner).contains(
            "^Authorized access only. Unauthorized access is prohibited"
        )


def test_tcp_forwarding_is_local_only(host: Any, ssh_login: Callable[..., str]) -> None:
    settings = sshd_settings(host)
    assert settings["allowtcpforwarding"] == "local"
    assert settings["maxsessions"] == "2"
    client = (
        "ssh -i /root/.ssh/hostops-sshtest -o BatchMode=yes -o StrictHostKeyChecking=no"
        " -o UserKnownHostsFile=/dev/null -o ControlMaster=no -o ControlPath=none"
        " -o ConnectTimeout=5"
    )
    # control: a local forward (what ssh -L opens) reaches a loopback service, sshd itself
    local = host.run(f"timeout 20 {client} -W 127.0.0.1:22 {SSH_TEST_USER}@127.0.0.1 </dev/null")
    assert local.stdout.startswith("SSH-2.0-"), local.stdout + local.stderr
    # a remote forward (a port opened on the server) is refused
    remote = ssh_login("-o ExitOnForwardFailure=yes -R 127.0.0.1:0:127.0.0.1:22")
    assert "remote port forwarding failed" in remote and remote.endswith("rc=255"), remote


def test_shared_memory_runs_no_programs(host: Any) -> None:
    options = host.check_output("findmnt -no OPTIONS /dev/shm").split(",")
    for option in ("nosuid", "nodev", "noexec"):
        assert option in options, options
    fstab = [line.split() for line in host.file("/etc/fstab").content_string.splitlines()]
    assert ["tmpfs", "/dev/shm", "tmpfs", "rw,nosuid,nodev,noexec", "0", "0"] in fstab, fstab  # noqa: S108
    try:
        # control: the same program runs from /tmp
        host.check_output("install -m 0755 /bin/true /tmp/hostops-exec && /tmp/hostops-exec")
        refused = host.run(
            "install -m 0755 /bin/true /dev/shm/hostops-exec && /dev/shm/hostops-exec"
        )
        assert refused.rc != 0 and "Permission denied" in refused.stderr, refused
    finally:
        host.run("rm -f /tmp/hostops-exec /dev/shm/hostops-exec")
