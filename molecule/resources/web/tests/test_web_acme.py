"""ACME certificates of a vhost (tls acme), obtained and renewed on the server by certbot
against a real ACME CA: Debian's pebble (a test CA), run on the lab machine as a fixture of
this module, on the lab bridge's address where the host reaches it.

Pebble validates for real: its VA asks the pebble-challtestsrv started beside it (as its
DNS server, answering every name with the host's lab address) where the vhost lives, then
fetches the http-01 token from the host's port 80, which nginx serves from the webroot
certbot wrote it to. Nothing is set to "always valid", so a renewal that did not publish
its token through nginx would fail. PEBBLE_AUTHZREUSE=0 makes orders, renewals included,
validate again (but 1 in 100, pebble's own rounding: the renewal is then forced again).

Checked from this machine over the lab network, as any browser would: the served
certificate chains to pebble's root; the request run again changes nothing; certbot's
timer is on; the unit the timer starts renews nothing before the certificate is due
(control), and with certbot's force option (certbot's own configuration file, read by the
unchanged unit) obtains a new certificate: a new challenge fetched from port 80, then a
new serial served by nginx, reloaded by the deploy hook.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

INVENTORY = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ".")) / "lab-hosts.yml"
ROOT = Path(__file__).resolve().parents[4]
DOMAIN = "acme.martin.example"
EMAIL = "ops@alteo.example"
ACCESS_LOG = f"/var/log/nginx/{DOMAIN}.access.log"
CHALLENGE = "GET /.well-known/acme-challenge/"
TRUST = "/usr/local/share/ca-certificates/hostops-test-acme.crt"
CLI_INI = "/etc/letsencrypt/cli.ini"


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def https_identity(workdir: Path, address: str) -> bytes:
    """A CA and a certificate for the address pebble's API listens on (its own test
    certificate names only localhost). Returns the CA certificate (PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostops lab ACME API CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (workdir / "api.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (workdir / "api.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca.public_bytes(serialization.Encoding.PEM)


def wait_for_port(address: str, port: int, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited ({proc.returncode})"
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{what} does not listen on {address}:{port}")


@pytest.fixture(scope="module")
def acme_ca(host: Any) -> Iterator[dict[str, Any]]:
    """pebble and pebble-challtestsrv on the lab bridge, their API trusted by the host."""
    bridge = host.check_output("printenv SSH_CONNECTION").split()[0]
    target = str(host.ansible.get_variables()["ansible_host"])
    workdir = Path(tempfile.mkdtemp(prefix="hostops-pebble-"))
    api_ca = https_identity(workdir, bridge)
    api, management, dns, dns_management = (free_port(bridge) for _ in range(4))
    (workdir / "pebble.json").write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"{bridge}:{api}",
                    "managementListenAddress": f"{bridge}:{management}",
                    "certificate": str(workdir / "api.crt"),
                    "privateKey": str(workdir / "api.key"),
                    "httpPort": 80,
                    "tlsPort": 443,
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    env = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",  # validate at once
        "PEBBLE_WFE_NONCEREJECT": "0",  # no random bad nonces
        "PEBBLE_AUTHZREUSE": "0",  # every order validates again, renewals too
    }
    dns_log = (workdir / "challtestsrv.log").open("wb")
    dns_proc = subprocess.Popen(
        [
            "pebble-challtestsrv",
            "-defaultIPv4",
            target,
            "-defaultIPv6",
            "",
            "-dns01",
            f"{bridge}:{dns}",
            "-management",
            f"{bridge}:{dns_management}",
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
        ],
        stdout=dns_log,
        stderr=subprocess.STDOUT,
    )
    pebble_log = (workdir / "pebble.log").open("wb")
    pebble = subprocess.Popen(
        ["pebble", "-config", str(workdir / "pebble.json"), "-dnsserver", f"{bridge}:{dns}"],
        stdout=pebble_log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=workdir,
    )
    try:
        wait_for_port(bridge, dns_management, "pebble-challtestsrv", dns_proc)
        wait_for_port(bridge, api, "pebble", pebble)
        encoded = base64.b64encode(api_ca).decode()
        host.check_output(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y -q ca-certificates >/dev/null"
            f" && echo {encoded} | base64 -d > {TRUST} && update-ca-certificates >/dev/null"
        )
        context = ssl.create_default_context(cadata=api_ca.decode())
        with urllib.request.urlopen(
            f"https://{bridge}:{management}/roots/0", context=context, timeout=10
        ) as answer:
            root = answer.read().decode()
        yield {
            "directory": f"https://{bridge}:{api}/dir",
            "root": root,
            "address": target,
            "log": workdir / "pebble.log",
        }
    finally:
        host.run(f"rm -f {TRUST} && update-ca-certificates --fresh >/dev/null")
        for proc in (pebble, dns_proc):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        pebble_log.close()
        dns_log.close()


def request(host: Any, directory: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The vhost request as a ticket makes it (playbooks/request-vhost.yml), tls acme."""
    name = str(host.ansible.get_variables()["inventory_hostname"])
    variables = {
        "hostops_request_host": name,
        "web_vhost_domain": DOMAIN,
        "web_vhost_tls": "acme",
        "web_acme_directory": directory,
        "web_acme_email": EMAIL,
        "web_acme_terms_agreed": True,
    }
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--inventory",
            str(INVENTORY),
            "--extra-vars",
            json.dumps(variables),
            *extra,
            str(ROOT / "playbooks" / "request-vhost.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def served(address: str, root: str) -> x509.Certificate:
    """The vhost's certificate as nginx serves it by SNI, verified against pebble's root
    and for the vhost's name (the chain nginx sends must lead there)."""
    context = ssl.create_default_context(cadata=root)
    with (
        socket.create_connection((address, 443), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def challenges(host: Any) -> int:
    """http-01 token fetches nginx answered with 200 on the vhost's port 80."""
    out = host.run(f"grep -c '{CHALLENGE}[^ ]* HTTP/1.1\" 200 ' {ACCESS_LOG}")
    return int(out.stdout.strip() or 0)


def log_count(log: Path, text: str) -> int:
    """Lines of pebble's log that contain *text*."""
    return sum(text in line for line in log.read_text().splitlines())


def force_renewal(host: Any, issued: dict[str, Any], before: x509.Certificate) -> x509.Certificate:
    """certbot's timer unit run with force-renewal set in cli.ini (put back after); the
    certificate nginx serves once it changed (or after 30 s)."""
    original = host.run(f"cat {CLI_INI}").stdout if host.file(CLI_INI).exists else None
    try:
        host.check_output(f"echo force-renewal = True >> {CLI_INI}")
        host.check_output("systemctl start certbot.service")
    finally:
        if original is None:
            host.run(f"rm -f {CLI_INI}")
        else:
            encoded = base64.b64encode(original.encode()).decode()
            host.run(f"echo {encoded} | base64 -d > {CLI_INI}")
    # nginx's reload (the deploy hook's) swaps its workers after systemctl returns: the new
    # certificate is served within seconds
    for _ in range(30):
        after = served(issued["address"], issued["root"])
        if after.serial_number != before.serial_number:
            break
        time.sleep(1)
    return after


def output(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout + proc.stderr)[-4000:]


@pytest.fixture(scope="module")
def issued(host: Any, acme_ca: dict[str, Any]) -> dict[str, Any]:
    proc = request(host, acme_ca["directory"])
    assert proc.returncode == 0, output(proc)
    return acme_ca


def test_the_vhost_serves_the_ca_certificate(host: Any, issued: dict[str, Any]) -> None:
    cert = served(issued["address"], issued["root"])
    assert "Pebble" in cert.issuer.rfc4514_string()
    assert cert.issuer != cert.subject  # not the placeholder (self-signed)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [DOMAIN]
    # the CA fetched the token from the host's port 80 (through nginx, from the webroot)
    assert challenges(host) >= 1
    # what nginx serves is what the deploy hook put where the vhost's configuration reads it
    on_disk = x509.load_pem_x509_certificate(
        host.file(f"/etc/ssl/hostops/{DOMAIN}.crt").content_string.encode()
    )
    assert on_disk.serial_number == cert.serial_number
    key = host.file(f"/etc/ssl/hostops/{DOMAIN}.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o600)


@pytest.mark.parametrize("mode", [[], ["--check"]], ids=["run", "check"])
def test_the_request_again_changes_nothing(
    host: Any, issued: dict[str, Any], mode: list[str]
) -> None:
    proc = request(host, issued["directory"], *mode)
    assert proc.returncode == 0, output(proc)
    recap = proc.stdout[proc.stdout.rindex("PLAY RECAP") :]
    assert " changed=0 " in recap, recap


def test_certbot_renews_on_its_timer_with_the_webroot_and_the_hook(
    host: Any, issued: dict[str, Any]
) -> None:
    timer = host.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert "certbot -q renew" in host.check_output("systemctl cat certbot.service")
    assert host.check_output("systemctl show -P NextElapseUSecRealtime certbot.timer")
    renewal = host.file(f"/etc/letsencrypt/renewal/{DOMAIN}.conf")
    assert renewal.contains("^authenticator = webroot$")
    assert renewal.contains(f"^server = {issued['directory']}$")
    assert renewal.contains("^renew_hook = /usr/local/sbin/hostops-acme-deploy$")
    assert renewal.contains(f"^{DOMAIN} = /var/www/_acme$")  # the webroot nginx serves


def test_the_timer_unit_renews_and_nginx_serves_the_new_certificate(
    host: Any, issued: dict[str, Any]
) -> None:
    before = served(issued["address"], issued["root"])
    fetched = challenges(host)

    # Control: the unit the timer starts, while the certificate is not due, renews nothing.
    host.check_output("systemctl start certbot.service")
    assert served(issued["address"], issued["root"]).serial_number == before.serial_number
    assert challenges(host) == fetched

    # Due now: certbot's force option, through its own configuration file, read by the
    # same unit. A new order, validated again over port 80, then the deploy hook. Pebble
    # reuses the account's valid authorization 1 time in 100 even with PEBBLE_AUTHZREUSE=0
    # (it makes a new one when rand.Intn(100) > the percentage): then the order needs no
    # challenge, its log shows no new validation, and the renewal is forced once more.
    for _ in range(3):
        validations = log_count(issued["log"], " validations.")
        after = force_renewal(host, issued, before)
        assert after.serial_number != before.serial_number
        assert "Pebble" in after.issuer.rfc4514_string()
        if challenges(host) > fetched or log_count(issued["log"], " validations.") > validations:
            break
        before = after
    assert challenges(host) > fetched
    journal = host.check_output("journalctl -u certbot.service --no-pager -n 50 -o cat")
    assert "Failed" not in journal, journal
