"""The web and FTP stack (alteo.hostops.web, alteo.hostops.ftp) with vhosts and an FTP
account made by the ticket request playbooks, checked on the converged host and from
the controller over the lab network: HTTP, HTTPS, FTPS."""

from __future__ import annotations

import base64
import ftplib
import http.client
import io
import re
import socket
import ssl
import uuid
from typing import Any

import pytest

DOMAIN = "shop.martin.example"
USER = "w_shop_martin_example"
OTHER_DOMAIN = "blog.dupont.example"
OTHER_USER = "w_blog_dupont_example"
DOCROOT = f"/var/www/{DOMAIN}/htdocs"
OTHER_DOCROOT = f"/var/www/{OTHER_DOMAIN}/htdocs"
FTP_USER = "martin"
FTP_PASSWORD = "molecule-ftp-Pa55word"  # noqa: S105 - the converge's fixture, not a secret
PASSIVE_PORTS = range(40000, 40101)

WHO_PHP = """<?php
$who = posix_getpwuid(posix_geteuid())['name'];
echo 'user=', $who, ' https=', $_SERVER['HTTPS'] ?? 'off', "\\n";
"""
PEEK_PHP = f"""<?php
$other = @file_get_contents('{OTHER_DOCROOT}/index.html');
echo $other === false ? 'denied' : 'read', "\\n";
"""

RUN_PHP = """<?php
$out = [];
foreach (['shell_exec', 'exec', 'system', 'passthru', 'proc_open', 'popen'] as $f) {
    $out[] = $f . '=' . (function_exists($f) ? 'yes' : 'no');
}
$ran = function_exists('shell_exec') ? trim(shell_exec('id -un')) : '-';
echo implode(' ', $out), ' ran=', $ran, "\n";
"""


def put(host: Any, path: str, content: str, owner: str) -> None:
    """Write a file as the vhost's user would (root writes it, then gives it away)."""
    encoded = base64.b64encode(content.encode()).decode()
    host.check_output(
        f"echo {encoded} | base64 -d > {path} && chown {owner}:www-data {path} && chmod 0640 {path}"
    )


@pytest.fixture(scope="module")
def address(host: Any) -> str:
    return host.ansible.get_variables()["ansible_host"]


@pytest.fixture(scope="module")
def pages(host: Any) -> None:
    put(host, f"{DOCROOT}/who.php", WHO_PHP, USER)
    put(host, f"{DOCROOT}/peek.php", PEEK_PHP, USER)
    put(host, f"{OTHER_DOCROOT}/who.php", WHO_PHP, OTHER_USER)
    put(host, f"{DOCROOT}/run.php", RUN_PHP, USER)
    put(host, f"{OTHER_DOCROOT}/run.php", RUN_PHP, OTHER_USER)


def http_get(address: str, domain: str, path: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(address, 80, timeout=10)
    conn.request("GET", path, headers={"Host": domain})
    return conn.getresponse()


def https_get(
    address: str, domain: str, path: str, cadata: str
) -> tuple[http.client.HTTPResponse, Any]:  # getpeercert: a dict, or None
    """GET over TLS with SNI, trusting only the vhost's own certificate."""
    context = ssl.create_default_context(cadata=cadata)
    raw = socket.create_connection((address, 443), timeout=10)
    tls = context.wrap_socket(raw, server_hostname=domain)
    conn = http.client.HTTPSConnection(domain, 443, context=context, timeout=10)
    conn.sock = tls
    conn.request("GET", path, headers={"Host": domain})
    return conn.getresponse(), tls.getpeercert()


class SessionReusingFTPS(ftplib.FTP_TLS):
    """FTPS whose data connections reuse the control connection's TLS session, as the
    server requires (ProFTPD's default, against data connection theft)."""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - wrapped in TLS below
        if self._prot_p:  # type: ignore[attr-defined]  # ftplib private, not in typeshed
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session  # type: ignore[union-attr]  # connected
            )
        return conn, size


def ftps(address: str, user: str = FTP_USER, password: str = FTP_PASSWORD) -> SessionReusingFTPS:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed; the web tests check certificates
    client = SessionReusingFTPS(context=context, timeout=10)
    client.connect(address, 21)
    client.login(user, password)
    client.prot_p()
    return client


# -- services --------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["nginx", "apache2", "php8.4-fpm", "proftpd"])
def test_services_run(host: Any, service: str) -> None:
    assert host.service(service).is_running
    assert host.service(service).is_enabled


def test_nginx_in_front_apache_on_loopback_only(host: Any, address: str) -> None:
    assert host.socket("tcp://0.0.0.0:80").is_listening
    assert host.socket("tcp://0.0.0.0:443").is_listening
    assert host.socket("tcp://127.0.0.1:8080").is_listening
    assert not host.socket("tcp://0.0.0.0:8080").is_listening
    with pytest.raises(OSError):
        socket.create_connection((address, 8080), timeout=5).close()
    assert "event" in host.check_output("apache2ctl -V | grep -i '^Server MPM'").lower()


@pytest.mark.parametrize(
    "command",
    ["nginx -t", "apache2ctl configtest", "php-fpm8.4 --test", "proftpd --configtest"],
)
def test_configurations_pass_their_own_tests(host: Any, command: str) -> None:
    assert host.run(command).rc == 0


# -- vhosts over HTTP and HTTPS -------------------------------------------------------------


def test_vhost_layout(host: Any) -> None:
    account = host.user(USER)
    assert account.shell == "/usr/sbin/nologin"
    assert account.gecos == f"hostops vhost {DOMAIN}"
    docroot = host.file(DOCROOT)
    assert docroot.user == USER
    assert docroot.group == "www-data"
    assert docroot.mode == 0o2750
    pool = host.file(f"/etc/php/8.4/fpm/pool.d/hostops-{USER}.conf")
    assert pool.contains(f"^user = {USER}$")


def test_http_page_rendered_by_the_vhosts_own_pool(host: Any, address: str, pages: None) -> None:
    response = http_get(address, DOMAIN, "/who.php")
    assert response.status == 200
    assert response.read().decode().strip() == f"user={USER} https=off"
    # the pool's worker, started on demand, runs as the vhost's user. It exits after 30 s
    # idle: the page is requested again on the host and ps looks in the same command
    request = (
        "import urllib.request as u; u.urlopen(u.Request('http://127.0.0.1/who.php', "
        f"headers={{'Host': '{DOMAIN}'}}), timeout=10).read()"
    )
    workers = host.check_output(f'python3 -c "{request}" && ps -o user= -C php-fpm8.4').split()
    assert USER in workers


def test_https_page_rendered_with_the_vhosts_certificate(
    host: Any, address: str, pages: None
) -> None:
    certificate = host.file(f"/etc/ssl/hostops/{DOMAIN}.crt").content_string
    response, peer = https_get(address, DOMAIN, "/who.php", certificate)
    assert response.status == 200
    # PHP sees HTTPS (nginx tells Apache the scheme)
    assert response.read().decode().strip() == f"user={USER} https=on"
    assert ("DNS", DOMAIN) in peer["subjectAltName"]
    hsts = response.getheader("Strict-Transport-Security") or ""
    assert re.fullmatch(r"max-age=\d+", hsts)


def test_each_vhost_runs_as_its_own_user(address: str, pages: None) -> None:
    response = http_get(address, OTHER_DOMAIN, "/who.php")
    assert response.read().decode().strip() == f"user={OTHER_USER} https=off"


def test_a_vhosts_php_cannot_read_another_vhost(host: Any, address: str, pages: None) -> None:
    assert http_get(address, DOMAIN, "/peek.php").read().decode().strip() == "denied"
    # and not only because of open_basedir: the file system says no as well
    check = host.run(f"runuser -u {USER} -- cat {OTHER_DOCROOT}/index.html")
    assert check.rc != 0


def test_php_cannot_run_programs_unless_the_vhost_allows_it(address: str, pages: None) -> None:
    """disable_functions per pool: shop's PHP has none of the functions that run programs;
    blog's request allowed shell_exec (positive control: it runs, as blog's user) and
    nothing else."""
    shop = http_get(address, DOMAIN, "/run.php").read().decode().strip()
    assert shop == (
        "shell_exec=no exec=no system=no passthru=no proc_open=no popen=no ran=-"
    ), shop
    blog = http_get(address, OTHER_DOMAIN, "/run.php").read().decode().strip()
    assert blog == (
        f"shell_exec=yes exec=no system=no passthru=no proc_open=no popen=no ran={OTHER_USER}"
    ), blog


def test_security_headers_and_no_versions(address: str) -> None:
    response = http_get(address, DOMAIN, "/")
    assert response.status == 200
    assert DOMAIN in response.read().decode()  # the placeholder page
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    assert response.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert response.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"
    assert response.getheader("Server") == "nginx"
    assert response.getheader("X-Powered-By") is None
    assert response.getheader("Strict-Transport-Security") is None  # HTTPS only


def test_unknown_names_get_nothing(address: str) -> None:
    with pytest.raises(http.client.RemoteDisconnected):
        http_get(address, "unknown.example", "/")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, 443), timeout=10) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="unknown.example")


def test_no_directory_listing(host: Any, address: str) -> None:
    host.check_output(f"install -d -o {USER} -g www-data -m 2750 {DOCROOT}/empty")
    assert http_get(address, DOMAIN, "/empty/").status == 403


# -- FTPS ------------------------------------------------------------------------------


def test_ftps_upload_lands_in_the_docroot_and_is_served(host: Any, address: str) -> None:
    name = f"upload-{uuid.uuid4().hex[:8]}.php"
    client = ftps(address)
    try:
        client.storbinary(f"STOR {name}", io.BytesIO(WHO_PHP.encode()))
    finally:
        client.quit()
    uploaded = host.file(f"{DOCROOT}/{name}")
    assert uploaded.exists
    assert uploaded.user == USER  # written as the vhost's user
    assert uploaded.group == "www-data"
    assert uploaded.mode == 0o640
    # served over HTTP, and run by the vhost's pool
    response = http_get(address, DOMAIN, f"/{name}")
    assert response.status == 200
    assert response.read().decode().strip() == f"user={USER} https=off"


def test_ftps_account_cannot_leave_its_root(host: Any, address: str) -> None:
    client = ftps(address)
    try:
        assert client.pwd() == "/"
        listing = set(client.nlst())
        assert "index.html" in listing
        client.cwd("/")
        assert client.pwd() == "/"
        client.cwd("..")
        assert client.pwd() == "/"
        assert set(client.nlst()) == listing  # still the document root
        assert not {"etc", "var", "htdocs", "tmp"} & listing
        for outside in ("/etc", "/var/www", f"/var/www/{OTHER_DOMAIN}"):
            with pytest.raises(ftplib.error_perm):
                client.cwd(outside)
        with pytest.raises(ftplib.error_perm):
            client.retrbinary("RETR ../../../../etc/passwd", lambda _data: None)
    finally:
        client.quit()


def test_ftp_passive_ports_in_range(address: str) -> None:
    client = ftps(address)
    try:
        reply = client.sendcmd("PASV")
        numbers = [int(n) for n in re.findall(r"\d+", reply.split("(", 1)[1])]
        assert numbers[4] * 256 + numbers[5] in PASSIVE_PORTS
    finally:
        client.quit()


def test_plain_ftp_and_anonymous_are_refused(address: str) -> None:
    plain = ftplib.FTP(address, timeout=10)  # noqa: S321 - plain FTP, to see it refused
    try:
        with pytest.raises(ftplib.error_perm, match="TLS required"):
            plain.login(FTP_USER, FTP_PASSWORD)
    finally:
        plain.close()
    for user, password in (("anonymous", "guest@example.com"), ("ftp", "x"), ("root", "x")):
        with pytest.raises(ftplib.error_perm, match="530"):
            ftps(address, user, password)
    with pytest.raises(ftplib.error_perm, match="530"):
        ftps(address, FTP_USER, "not-the-password")


def test_virtual_users_file_is_private(host: Any) -> None:
    passwd = host.file("/etc/proftpd/hostops.passwd")
    assert passwd.mode == 0o600
    assert passwd.user == "root"
    fields = passwd.content_string.strip().split(":")
    assert fields[0] == FTP_USER
    assert fields[1].startswith("$6$")  # hashed, never the password itself
    assert FTP_PASSWORD not in passwd.content_string
    assert fields[5] == DOCROOT


def test_stack_facts_published(host: Any) -> None:
    local = host.ansible("setup", "filter=ansible_local gather_subset=local")
    facts = local["ansible_facts"]["ansible_local"]
    assert facts["web"]["php_version"] == "8.4"
    assert facts["web"]["www_root"] == "/var/www"
    assert facts["ftp"]["passwd_file"] == "/etc/proftpd/hostops.passwd"  # noqa: S105 - a path
