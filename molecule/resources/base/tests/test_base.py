"""What every managed server gets (alteo.hostops.base), checked on the converged host."""

from __future__ import annotations

import json

import pytest

OPS_KEY_COMMENT = "ops-molecule"


def sshd_settings(host) -> dict[str, str]:
    out = host.check_output("sshd -T")
    settings = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        settings[key] = value
    return settings


def test_sshd_accepts_keys_only(host):
    settings = sshd_settings(host)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["pubkeyauthentication"] == "yes"
    assert settings["permitrootlogin"] == "without-password"
    assert settings["maxauthtries"] == "3"
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_password_login_is_refused_on_the_wire(host):
    """Ask sshd which methods it offers: publickey only."""
    # (ssh's own exit status 255 would read as a lost connection to testinfra: print it)
    out = host.check_output(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PreferredAuthentications=none -o ConnectTimeout=5 nobody@127.0.0.1 true 2>&1;"
        " echo rc=$?"
    )
    assert out.endswith("rc=255")
    assert "Permission denied (publickey)" in out


def test_timezone_is_paris(host):
    assert host.file("/etc/localtime").linked_to.endswith("Europe/Paris")
    offset = host.check_output("date +%Z")
    assert offset in ("CET", "CEST")


def test_hostname_and_fqdn(host):
    fqdn = host.ansible.get_variables()["hostops_fqdn"]
    assert host.check_output("hostname") == fqdn.split(".")[0]
    assert host.check_output("hostname -f") == fqdn


def test_locale(host):
    locales = host.check_output("locale -a")
    assert "fr_FR.utf8" in locales
    assert "en_US.utf8" in locales
    assert host.file("/etc/default/locale").contains("^LANG=en_US.UTF-8$")


def test_time_sync_configured(host):
    conf = host.file("/etc/systemd/timesyncd.conf.d/hostops.conf")
    assert conf.mode == 0o644
    assert conf.contains("^NTP=0.debian.pool.ntp.org ")
    assert host.service("systemd-timesyncd").is_enabled


def test_admin_account(host):
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


def test_unattended_upgrades_off(host):
    assert not host.package("unattended-upgrades").is_installed
    conf = host.file("/etc/apt/apt.conf.d/20auto-upgrades")
    assert conf.contains('APT::Periodic::Unattended-Upgrade "0";')


def test_apt_proxy_from_inventory(host):
    proxy = host.ansible.get_variables()["hostops_apt_proxy"]
    assert host.file("/etc/apt/apt.conf.d/02hostops-proxy").contains(proxy)


def test_logrotate_compresses_into_the_archive(host):
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


def test_logrotate_really_archives(host):
    """Force a rotation of a test log: it lands compressed in the archive directory."""
    host.run("rm -f /var/log/archive/hostops-test.log*")
    host.check_output("head -c 20000 /dev/zero | tr '\\\\0' x > /var/log/hostops-test.log")
    host.check_output(
        "printf '/var/log/hostops-test.log {\\n  rotate 2\\n  nodelaycompress\\n}\\n'"
        " > /etc/logrotate.d/hostops-test"
    )
    try:
        host.check_output("logrotate --force --state /tmp/lr.state /etc/logrotate.conf")
        archived = host.check_output("ls /var/log/archive/")
        assert any(
            name.startswith("hostops-test.log-") and name.endswith(".gz")
            for name in archived.split()
        ), archived
    finally:
        host.run(
            "rm -f /etc/logrotate.d/hostops-test /var/log/hostops-test.log* "
            "/var/log/archive/hostops-test.log* /tmp/lr.state"
        )


def test_journald_retention(host):
    conf = host.file("/etc/systemd/journald.conf.d/hostops.conf")
    assert conf.contains("^SystemMaxUse=1G$")
    assert conf.contains("^MaxRetentionSec=3month$")


@pytest.mark.parametrize("package", ["openssh-server", "systemd", "logrotate"])
def test_software_inventory_fact(host, package):
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
