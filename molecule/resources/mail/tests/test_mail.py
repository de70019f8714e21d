"""The mail stack as its users meet it: SMTP, submission, IMAP and webmail over the network.

Host 1 is a mailbox server with the antispam option and the webmail (contract §4.4),
host 2 a transactional relay (§4.5). Every check talks to a host's lab address from this
machine, with Python's own smtplib, imaplib and urllib, as a mail client or another mail
server would; the hosts' own files are read only to learn which certificate to trust and
to look at what the checks left behind.
"""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import functools
import http.client
import http.cookiejar
import imaplib
import io
import json
import os
import re
import shlex
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import dkim
import pytest
import testinfra
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

SCENARIO = os.environ.get("MOLECULE_SCENARIO_NAME", "mail-trixie")
INVENTORY = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ".")) / "lab-hosts.yml"
PASSWORD = os.environ["HOSTOPS_REQUEST_PASSWORD"]  # the converge's mailbox password

DOMAIN = "lab-mail.example"
ALICE = f"alice@{DOMAIN}"
RELAY_ACCOUNT = "app@relay-client.example"
OUTSIDER = "sender@test-sender.example"  # another mail server's user, not ours
CLIENT_NAME = "client.test-sender.example"  # our EHLO name: a FQDN, as Postfix wants
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
MIB = 1024 * 1024
TRANSACTIONAL_LIMIT = 2097152  # contract §4.5: 2 MB, headers and attachments included
# seconds for a message to reach a mailbox: SpamAssassin's first scans on a loaded lab
# host take well over a minute
DELIVERY_TIMEOUT = 180


# -- The hosts ---------------------------------------------------------------------


class Server:
    """A lab host, seen from this machine."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.host = testinfra.get_host(f"ansible://{name}", ansible_inventory=str(INVENTORY))
        variables = self.host.ansible.get_variables()
        self.address: str = variables["ansible_host"]
        self.fqdn: str = variables["hostops_fqdn"]

    def fact(self, name: str) -> dict[str, Any]:
        data = json.loads(self.host.file(f"/etc/ansible/facts.d/{name}.fact").content_string)
        assert isinstance(data, dict)
        return data

    def tls_context(self, fact: str, key: str, check_hostname: bool) -> ssl.SSLContext:
        """Trust exactly the certificate the host's role says it shows (self-signed)."""
        pem = self.host.file(self.fact(fact)[key]).content_string
        context = ssl.create_default_context(cadata=pem)
        # Mail is reached by address here (no DNS): the name is checked on the
        # certificate itself (test_mail_certificate_names_the_server).
        context.check_hostname = check_hostname
        return context


@pytest.fixture(scope="module")
def mailbox_server() -> Server:
    return Server(f"{SCENARIO}-1")


@pytest.fixture(scope="module")
def relay() -> Server:
    return Server(f"{SCENARIO}-2")


@pytest.fixture(scope="module")
def mail_tls(mailbox_server: Server) -> ssl.SSLContext:
    return mailbox_server.tls_context("mail", "tls_certificate", check_hostname=False)


# -- Helpers -------------------------------------------------------------------------


def token() -> str:
    return uuid.uuid4().hex[:12]


def message(
    subject: str, tag: str, sender: str = OUTSIDER, to: str = ALICE, body: str = ""
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{tag}@{CLIENT_NAME}>"
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["X-Hostops-Test"] = tag
    msg.set_content(body or f"A test message ({tag}).\n")
    return msg


def sized_message(size: int, sender: str, to: str) -> bytes:
    """A message of exactly SIZE bytes as sent (headers and a base64 attachment included)."""
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: size test {size}\r\n"
        f"Message-ID: <{token()}@{CLIENT_NAME}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
    body = line * ((size - len(head)) // len(line))
    pad = size - len(head) - len(body)
    raw = head + body + b"A" * max(pad - 2, 0) + b"\r\n"[: max(pad, 0)]
    assert len(raw) == size
    return raw


def smtp(server: Server, port: int) -> smtplib.SMTP:
    client = smtplib.SMTP(server.address, port, local_hostname=CLIENT_NAME, timeout=30)
    client.ehlo()
    return client


def submission(server: Server, context: ssl.SSLContext, login: str, password: str) -> smtplib.SMTP:
    client = smtp(server, 587)
    client.starttls(context=context)
    client.ehlo()
    client.login(login, password)
    return client


def imap(server: Server, context: ssl.SSLContext, login: str, password: str) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL(server.address, 993, ssl_context=context, timeout=30)
    client.login(login, password)
    return client


def find(client: imaplib.IMAP4, mailbox: str, tag: str) -> Message | None:
    status, _ = client.select(f'"{mailbox}"', readonly=True)
    assert status == "OK", mailbox
    _, data = client.search(None, "HEADER", "X-Hostops-Test", tag)
    numbers = data[0].split()
    if not numbers:
        return None
    _, fetched = client.fetch(numbers[-1], "(RFC822)")
    raw = fetched[0][1]  # type: ignore[index]  # imaplib is loosely typed: a (head, body) pair
    assert isinstance(raw, bytes)
    return email.message_from_bytes(raw, policy=email.policy.default)


def find_raw(client: imaplib.IMAP4, mailbox: str, tag: str) -> bytes:
    """The message as stored, byte for byte (for signatures), once it has arrived."""
    wait_for(client, mailbox, tag)
    client.select(f'"{mailbox}"', readonly=True)
    _, data = client.search(None, "HEADER", "X-Hostops-Test", tag)
    _, fetched = client.fetch(data[0].split()[-1], "(BODY.PEEK[])")
    raw = fetched[0][1]  # type: ignore[index]  # imaplib is loosely typed: a (head, body) pair
    assert isinstance(raw, bytes)
    return raw


def wait_for(client: imaplib.IMAP4, mailbox: str, tag: str) -> Message:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while True:
        found = find(client, mailbox, tag)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"message {tag} did not reach {mailbox} in {DELIVERY_TIMEOUT}s")
        time.sleep(1)


@pytest.fixture
def alice_imap(mailbox_server: Server, mail_tls: ssl.SSLContext) -> Iterator[imaplib.IMAP4_SSL]:
    client = imap(mailbox_server, mail_tls, ALICE, PASSWORD)
    yield client
    client.logout()


# -- The mailbox server: services and files --------------------------------------------


@pytest.mark.parametrize("port", [25, 587, 143, 993])
def test_mailbox_server_listens(mailbox_server: Server, port: int) -> None:
    with socket.create_connection((mailbox_server.address, port), timeout=10):
        pass


def test_mail_certificate_names_the_server(mailbox_server: Server) -> None:
    cert = mailbox_server.fact("mail")["tls_certificate"]
    text = mailbox_server.host.check_output(f"openssl x509 -noout -ext subjectAltName -in {cert}")
    assert f"DNS:{mailbox_server.fqdn}" in text


def test_passwords_are_stored_hashed(mailbox_server: Server) -> None:
    users = mailbox_server.host.file("/etc/dovecot/hostops-users")
    assert (users.user, users.group, users.mode) == ("root", "dovecot", 0o640)
    line = next(li for li in users.content_string.splitlines() if li.startswith(f"{ALICE}:"))
    assert line.split(":")[1].startswith("{ARGON2ID}$argon2id$")
    assert PASSWORD not in users.content_string


def setup_output(log: str, package: str) -> str:
    """What a package's maintainer scripts printed as dpkg set it up and processed its
    triggers (apt's term.log; Postfix's trigger is what starts it)."""
    assert f"Setting up {package} (" in log, package
    sections = re.split(r"^(?=Setting up |Processing triggers for |Log ended)", log, flags=re.M)
    heads = (f"Setting up {package} (", f"Processing triggers for {package} (")
    return "".join(section for section in sections if section.startswith(heads))


def test_the_daemons_were_started_by_the_role_not_by_their_packages(
    mailbox_server: Server,
) -> None:
    # apt's log of the installations (dpkg's output, maintainer scripts included): the
    # packages' scripts were refused the start of these daemons (deb-systemd-invoke for a
    # systemd unit, invoke-rc.d for spamass-milter's init script), which never ran with
    # Debian's defaults (Dovecot's lets the system accounts log in over IMAP); the role
    # started them once configured.
    log = mailbox_server.host.check_output("cat /var/log/apt/term.log")
    held = {
        "postfix": "postfix",
        "dovecot": "dovecot-core",
        "opendkim": "opendkim",
        "opendmarc": "opendmarc",
        "spamd": "spamd",
        "spamass-milter": "spamass-milter",
    }
    for unit, package in held.items():
        output = setup_output(log, package)
        assert re.search(
            rf"not running '(re)?start {re.escape(unit)}\.service'"
            r"|invoke-rc\.d: policy-rc\.d denied execution of (re)?start\.",
            output,
        ), output
        assert mailbox_server.host.service(unit).is_running, unit
    # positive control: nginx's package (the webmail's, not held) started it as Debian does
    assert "policy-rc.d" not in setup_output(log, "nginx")
    assert not mailbox_server.host.file("/usr/sbin/policy-rc.d").exists


def test_submission_to_a_mailbox_is_read_over_imap(
    mailbox_server: Server, mail_tls: ssl.SSLContext, alice_imap: imaplib.IMAP4_SSL
) -> None:
    """Authenticated submission on 587 (STARTTLS, SASL through Dovecot), IMAP on 993."""
    tag = token()
    with submission(mailbox_server, mail_tls, ALICE, PASSWORD) as client:
        client.send_message(message(f"Hello {tag}", tag, sender=ALICE))
    got = wait_for(alice_imap, "INBOX", tag)
    assert got["Subject"] == f"Hello {tag}"
    assert tag in got.get_content()  # type: ignore[attr-defined]  # parsed as an EmailMessage
    # it came in authenticated, over TLS (the last hop is Dovecot's LMTP)
    assert any("with ESMTPSA" in str(hop) for hop in got.get_all("Received", []))
    maildir = mailbox_server.host.file(f"/var/vmail/{DOMAIN}/alice/Maildir")
    assert maildir.is_directory
    assert maildir.user == "vmail"


def test_imap_on_143_needs_starttls_before_login(
    mailbox_server: Server, mail_tls: ssl.SSLContext
) -> None:
    client = imaplib.IMAP4(mailbox_server.address, 143, timeout=30)
    assert "LOGINDISABLED" in client.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        client.login(ALICE, PASSWORD)
    client.starttls(ssl_context=mail_tls)
    assert client.login(ALICE, PASSWORD)[0] == "OK"
    client.logout()


def test_imap_refuses_a_wrong_password(mailbox_server: Server, mail_tls: ssl.SSLContext) -> None:
    client = imaplib.IMAP4_SSL(mailbox_server.address, 993, ssl_context=mail_tls, timeout=30)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(ALICE, PASSWORD + "x")


def test_unauthenticated_relaying_is_refused(mailbox_server: Server) -> None:
    with smtp(mailbox_server, 25) as client:
        assert client.mail(OUTSIDER)[0] == 250
        code, reply = client.rcpt("someone@outside.example")
    assert code == 554
    assert b"Relay access denied" in reply


def test_submission_needs_tls_then_authentication(
    mailbox_server: Server, mail_tls: ssl.SSLContext
) -> None:
    with smtp(mailbox_server, 587) as client:
        code, reply = client.mail(ALICE)
        assert (code, b"STARTTLS" in reply) == (530, True)
        client.starttls(context=mail_tls)
        client.ehlo()
        assert client.mail(ALICE)[0] == 250
        code, reply = client.rcpt("someone@outside.example")
    assert code == 554
    assert b"Access denied" in reply


def test_submission_refuses_another_users_sender_address(
    mailbox_server: Server, mail_tls: ssl.SSLContext
) -> None:
    with submission(mailbox_server, mail_tls, ALICE, PASSWORD) as client:
        assert client.mail(f"ceo@{DOMAIN}")[0] == 250
        code, reply = client.rcpt("someone@outside.example")
    assert code == 553
    assert b"not owned by user" in reply


def test_unknown_mailboxes_are_refused(mailbox_server: Server) -> None:
    with smtp(mailbox_server, 25) as client:
        client.mail(OUTSIDER)
        code, reply = client.rcpt(f"nobody@{DOMAIN}")
    assert code == 550
    assert b"User unknown" in reply


# -- The antispam option (contract §4.4) -------------------------------------------------


def test_a_normal_message_arrives_untagged_in_the_inbox(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    tag = token()
    with smtp(mailbox_server, 25) as client:
        client.send_message(message(f"Meeting notes {tag}", tag))
    got = wait_for(alice_imap, "INBOX", tag)
    assert got["Subject"] == f"Meeting notes {tag}"
    assert str(got["X-Spam-Status"]).startswith("No,")  # it was scanned, and passed
    assert find(alice_imap, "Junk", tag) is None


def test_gtube_arrives_tagged_spam_in_junk(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    tag = token()
    with smtp(mailbox_server, 25) as client:
        client.send_message(message(f"Cheap offer {tag}", tag, body=f"{GTUBE}\n"))
    got = wait_for(alice_imap, "Junk", tag)
    assert got["Subject"] == f"[SPAM] Cheap offer {tag}"
    assert got["X-Spam-Flag"] == "YES"
    assert "GTUBE" in str(got["X-Spam-Status"])
    assert find(alice_imap, "INBOX", tag) is None


def test_bulk_mail_arrives_tagged_bulk_in_junk(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    tag = token()
    newsletter = message(f"Our spring catalogue {tag}", tag)
    newsletter["Precedence"] = "bulk"
    with smtp(mailbox_server, 25) as client:
        client.send_message(newsletter)
    got = wait_for(alice_imap, "Junk", tag)
    assert got["Subject"] == f"[BULK] Our spring catalogue {tag}"
    assert "HOSTOPS_BULK" in str(got["X-Spam-Status"])
    assert find(alice_imap, "INBOX", tag) is None


# -- Mail authentication (issue 14, item 8) ---------------------------------------------


def published_dkim(server: Server, domain: str) -> tuple[str, str]:
    """The record the server says to publish for DOMAIN: its name and TXT value."""
    fact = server.fact("mail_dkim")
    return f"{fact['selector']}._domainkey.{domain}", fact["records"][domain]


def dkim_verifies(raw: bytes, name: str, value: str) -> bool:
    """Verify the message's DKIM signature against the published record only (no DNS)."""

    def dns(query: bytes, timeout: int = 5) -> bytes:
        return value.encode() if query.decode().rstrip(".") == name else b""

    return bool(dkim.verify(raw, dnsfunc=dns))


def test_dkim_keys_are_2048_bit_rsa_readable_by_opendkim_only(
    mailbox_server: Server, relay: Server
) -> None:
    for server, domain in ((mailbox_server, DOMAIN), (relay, "relay-client.example")):
        name, value = published_dkim(server, domain)
        selector = name.split(".")[0]
        fields = dict(part.strip().split("=", 1) for part in value.split(";") if part.strip())
        assert (fields["v"], fields["k"]) == ("DKIM1", "rsa"), value
        key = load_der_public_key(base64.b64decode(fields["p"]))
        assert isinstance(key, rsa.RSAPublicKey)
        assert key.key_size == 2048
        folder = server.host.file(f"/etc/opendkim/keys/{domain}")
        private = server.host.file(f"/etc/opendkim/keys/{domain}/{selector}.private")
        assert (folder.user, folder.mode) == ("opendkim", 0o700)
        assert (private.user, private.group, private.mode) == ("opendkim", "opendkim", 0o600)
        assert server.host.service("opendkim").is_running


def test_submitted_mail_is_dkim_signed_and_verifies_against_the_published_key(
    mailbox_server: Server,
    relay: Server,
    mail_tls: ssl.SSLContext,
    alice_imap: imaplib.IMAP4_SSL,
) -> None:
    tag = token()
    with submission(mailbox_server, mail_tls, ALICE, PASSWORD) as client:
        client.send_message(message(f"Signed {tag}", tag, sender=ALICE, body=f"Signed {tag}.\n"))
    raw = find_raw(alice_imap, "INBOX", tag)
    name, value = published_dkim(mailbox_server, DOMAIN)
    signature = email.message_from_bytes(raw, policy=email.policy.default)["DKIM-Signature"]
    assert signature is not None, raw[:2000]
    parts = (t.split("=", 1) for t in str(signature).split(";") if "=" in t)
    tags = {k.strip(): v.strip() for k, v in parts}
    assert tags["d"] == DOMAIN and f"{tags['s']}._domainkey.{DOMAIN}" == name, signature
    assert tags["a"] == "rsa-sha256"
    assert dkim_verifies(raw, name, value)
    # negative controls: a changed body, and another key than the published one
    assert not dkim_verifies(raw.replace(f"Signed {tag}.".encode(), b"Signed 0000."), name, value)
    other = published_dkim(relay, "relay-client.example")[1]
    assert not dkim_verifies(raw, name, other)


def test_mail_from_outside_is_not_signed(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    """Only the server's own and its users' mail is signed, not what it receives."""
    tag = token()
    with smtp(mailbox_server, 25) as client:
        client.send_message(message(f"Unsigned {tag}", tag, sender=f"someone@{DOMAIN}"))
    raw = find_raw(alice_imap, "INBOX", tag)
    assert b"DKIM-Signature:" not in raw


def test_spf_fail_is_refused_and_spf_pass_accepted(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    """The lab's test zone (converge.yml): spf-pass.example allows this machine's address,
    spf-fail.example only another network, with "-all"."""
    tag = token()
    with smtp(mailbox_server, 25) as client:
        client.send_message(message(f"SPF pass {tag}", tag, sender="news@spf-pass.example"))
        assert client.mail("news@spf-fail.example")[0] == 250
        code, reply = client.rcpt(ALICE)
    assert code == 550, reply
    assert b"SPF fail" in reply
    got = wait_for(alice_imap, "INBOX", tag)
    assert str(got["Received-SPF"]).startswith("Pass"), got["Received-SPF"]
    assert "HOSTOPS_SPF_SOFTFAIL" not in str(got["X-Spam-Status"])  # control of the next


def test_spf_softfail_is_accepted_and_scored(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    """spf-softfail.example allows another network only, with "~all"."""
    tag = token()
    with smtp(mailbox_server, 25) as client:
        client.send_message(message(f"Softfail {tag}", tag, sender="news@spf-softfail.example"))
    got = wait_for(alice_imap, "INBOX", tag)
    assert str(got["Received-SPF"]).startswith("Softfail"), got["Received-SPF"]
    assert "HOSTOPS_SPF_SOFTFAIL" in str(got["X-Spam-Status"]), got["X-Spam-Status"]


def dmarc_results(got: Message, server: Server) -> str:
    """The server's own Authentication-Results headers (its host name as authserv-id)."""
    mine = [
        str(v) for v in got.get_all("Authentication-Results", []) if str(v).startswith(server.fqdn)
    ]
    return "\n".join(mine)


def test_dmarc_reject_refuses_unaligned_mail_and_accepts_aligned_mail(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    """dmarc-reject.example publishes p=reject and an SPF record listing this machine: its
    From with its own envelope sender is aligned (SPF pass); the same From with
    spf-pass.example's envelope sender (an SPF pass, not aligned) and no signature fails,
    also when the client adds an Authentication-Results header in the server's name."""
    from_ = "ceo@dmarc-reject.example"
    aligned, unaligned, forged = token(), token(), token()
    with smtp(mailbox_server, 25) as client:
        client.send_message(message(f"DMARC aligned {aligned}", aligned, sender=from_))
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.send_message(
                message(f"DMARC unaligned {unaligned}", unaligned, sender=from_),
                from_addr="news@spf-pass.example",
            )
        fake = message(f"DMARC forged {forged}", forged, sender=from_)
        fake["Authentication-Results"] = (
            f"{mailbox_server.fqdn}; dkim=pass header.d=dmarc-reject.example"
            " header.i=@dmarc-reject.example"
        )
        with pytest.raises(smtplib.SMTPDataError) as refused_forged:
            client.send_message(fake, from_addr="news@spf-pass.example")
    for error in (refused.value, refused_forged.value):
        assert error.smtp_code == 550, error
        assert b"DMARC" in error.smtp_error, error
    got = wait_for(alice_imap, "INBOX", aligned)
    results = dmarc_results(got, mailbox_server)
    assert "dmarc=pass" in results and "header.from=dmarc-reject.example" in results, results
    for tag in (unaligned, forged):
        assert find(alice_imap, "INBOX", tag) is None
        assert find(alice_imap, "Junk", tag) is None


def test_dmarc_quarantine_failure_is_accepted_marked_and_scored_into_junk(
    mailbox_server: Server, alice_imap: imaplib.IMAP4_SSL
) -> None:
    """dmarc-quarantine.example publishes p=quarantine; spf-pass.example's envelope sender
    passes SPF but is not aligned with it."""
    tag = token()
    with smtp(mailbox_server, 25) as client:
        client.send_message(
            message(f"Invoice {tag}", tag, sender="billing@dmarc-quarantine.example"),
            from_addr="news@spf-pass.example",
        )
    got = wait_for(alice_imap, "Junk", tag)
    results = dmarc_results(got, mailbox_server)
    assert "dmarc=fail" in results and "p=quarantine" in results, results
    assert "HOSTOPS_DMARC_QUARANTINE" in str(got["X-Spam-Status"]), got["X-Spam-Status"]
    assert got["Subject"] == f"[SPAM] Invoice {tag}"
    assert find(alice_imap, "INBOX", tag) is None


# -- Ticket requests -------------------------------------------------------------------


def request_mailbox(server: Server, address: str) -> str:
    """'hostops request mailbox' for ADDRESS on SERVER, as the CLI runs it; its output."""
    from hostops.requests.mail import MAILBOX  # noqa: PLC0415 - the controller's package
    from hostops.requests.verbs import run_request  # noqa: PLC0415

    out = io.StringIO()
    status = run_request(
        MAILBOX,
        {"host": server.name, "address": address},
        lab=False,
        inventories=[INVENTORY],
        out=out,
    )
    assert status == 0, out.getvalue()
    return out.getvalue()


def test_mailbox_request_creates_once_and_keeps_the_password(
    mailbox_server: Server, mail_tls: ssl.SSLContext, tmp_path: Path
) -> None:
    """'hostops request mailbox' end to end: the password is shown once and works; a
    second request changes nothing, shows no password, and the first one still works."""
    address = f"req-{token()}@{DOMAIN}"
    first, second = (request_mailbox(mailbox_server, address) for _ in range(2))
    shown = re.findall(r"^password \(shown once[^:]*\): (\S+)$", first, re.MULTILINE)
    assert len(shown) == 1, first
    assert f"mailbox {address}" in first and ": created" in first
    assert ": exists, password unchanged" in second
    assert shown[0] not in second and "shown once" not in second
    imap(mailbox_server, mail_tls, address, shown[0]).logout()
    # the DKIM record of the address's domain, to publish, is given each time
    name, value = published_dkim(mailbox_server, DOMAIN)
    assert f'dkim_record {name} TXT "{value}"' in first and value in second


def test_mailbox_request_in_a_new_domain_makes_its_dkim_key(
    mailbox_server: Server, mail_tls: ssl.SSLContext
) -> None:
    """A new domain gets its own key on the server, printed by the request, and its mail
    submitted on 587 is signed with it."""
    domain = f"new-{token()}.example"
    address = f"sales@{domain}"
    output = request_mailbox(mailbox_server, address)
    name, value = published_dkim(mailbox_server, domain)
    assert f'dkim_record {name} TXT "{value}"' in output
    assert value != published_dkim(mailbox_server, DOMAIN)[1]
    password = re.findall(r"^password \(shown once[^:]*\): (\S+)$", output, re.MULTILINE)[0]
    tag = token()
    with submission(mailbox_server, mail_tls, address, password) as client:
        client.send_message(message(f"New domain {tag}", tag, sender=address, to=address))
    client_imap = imap(mailbox_server, mail_tls, address, password)
    try:
        raw = find_raw(client_imap, "INBOX", tag)
    finally:
        client_imap.logout()
    assert dkim_verifies(raw, name, value)


# -- The transactional relay (contract §4.5) ----------------------------------------------


@pytest.fixture(scope="module")
def relay_tls(relay: Server) -> ssl.SSLContext:
    return relay.tls_context("mail", "tls_certificate", check_hostname=False)


def test_relay_listens_on_submission_only(relay: Server) -> None:
    with socket.create_connection((relay.address, 587), timeout=10):
        pass
    for port in (25, 143, 993):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((relay.address, port), timeout=10)


def test_relay_announces_the_contract_limit(relay: Server, relay_tls: ssl.SSLContext) -> None:
    with submission(relay, relay_tls, RELAY_ACCOUNT, PASSWORD) as client:
        assert client.esmtp_features["size"] == str(TRANSACTIONAL_LIMIT)


def test_relay_refuses_a_message_over_2_mb(relay: Server, relay_tls: ssl.SSLContext) -> None:
    """2.5 MB: refused at MAIL FROM when the client announces its size..."""
    raw = sized_message(int(2.5 * MIB), RELAY_ACCOUNT, "customer@client-shop.example")
    with (
        submission(relay, relay_tls, RELAY_ACCOUNT, PASSWORD) as client,
        pytest.raises(smtplib.SMTPSenderRefused) as refused,
    ):
        client.sendmail(RELAY_ACCOUNT, ["customer@client-shop.example"], raw)
    assert refused.value.smtp_code == 552
    assert b"5.3.4 Message size exceeds fixed limit" in refused.value.smtp_error


def test_relay_refuses_a_message_over_2_mb_sent_without_size(
    relay: Server, relay_tls: ssl.SSLContext
) -> None:
    """...and at the end of DATA when it does not (Postfix's cleanup says it then)."""
    raw = sized_message(int(2.5 * MIB), RELAY_ACCOUNT, "customer@client-shop.example")
    with submission(relay, relay_tls, RELAY_ACCOUNT, PASSWORD) as client:
        assert client.mail(RELAY_ACCOUNT)[0] == 250
        assert client.rcpt("customer@client-shop.example")[0] == 250
        code, reply = client.data(raw)
    assert code == 552
    assert reply.startswith(b"5.3.4 ")
    assert b"message file too big" in reply or b"Message size exceeds fixed limit" in reply


def test_relay_accepts_a_message_of_1_5_mb(relay: Server, relay_tls: ssl.SSLContext) -> None:
    raw = sized_message(int(1.5 * MIB), RELAY_ACCOUNT, "customer@client-shop.example")
    with submission(relay, relay_tls, RELAY_ACCOUNT, PASSWORD) as client:
        assert client.mail(RELAY_ACCOUNT, [f"SIZE={len(raw)}"])[0] == 250
        assert client.rcpt("customer@client-shop.example")[0] == 250
        code, reply = client.data(raw)
    assert code == 250, reply
    queue_id = reply.decode().rsplit(" ", 1)[-1]
    # Queued for delivery (the lab has no DNS: it waits in the queue); then removed.
    queue = relay.host.check_output("postqueue -j")
    assert f'"queue_id": "{queue_id}"' in queue
    relay.host.run(f"postsuper -d {queue_id}")


def test_relay_refuses_unauthenticated_clients(relay: Server, relay_tls: ssl.SSLContext) -> None:
    with smtp(relay, 587) as client:
        client.starttls(context=relay_tls)
        client.ehlo()
        client.mail(RELAY_ACCOUNT)
        code, reply = client.rcpt("customer@client-shop.example")
    assert code == 554
    assert b"Access denied" in reply


def test_relay_sends_only_from_the_accounts_own_domain(
    relay: Server, relay_tls: ssl.SSLContext
) -> None:
    with submission(relay, relay_tls, RELAY_ACCOUNT, PASSWORD) as client:
        # positive control: another address of the account's own domain
        assert client.mail("noreply@relay-client.example")[0] == 250
        assert client.rcpt("customer@client-shop.example")[0] == 250
        client.rset()
        client.mail("ceo@bank.example")
        code, reply = client.rcpt("customer@client-shop.example")
    assert code == 553, reply
    assert b"not owned by user" in reply
    senders = relay.host.file("/etc/postfix/hostops/senders").content_string
    assert senders.splitlines() == [f"@relay-client.example {RELAY_ACCOUNT}"]


# The relay's submission limit in this scenario (converge.yml): messages per client address
# and minute; sent from the mailbox server, whose address no other test uses on the relay.
RELAY_MESSAGE_RATE = 20
RATE_SCRIPT = """
import smtplib, ssl, sys
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the relay's certificate is checked by other tests
codes = []
with smtplib.SMTP(sys.argv[1], 587, timeout=30) as client:
    client.starttls(context=context)
    client.login(sys.argv[2], sys.argv[3])
    for n in range(int(sys.argv[4])):
        code, _ = client.mail(sys.argv[2])
        if code == 250:
            code, _ = client.rcpt("customer@client-shop.example")
        codes.append(code)
        client.rset()
print(" ".join(map(str, codes)))
"""


def test_relay_limits_the_messages_a_client_submits_per_minute(
    mailbox_server: Server, relay: Server
) -> None:
    tries = RELAY_MESSAGE_RATE + 3
    script, password = shlex.quote(RATE_SCRIPT), shlex.quote(PASSWORD)
    run = mailbox_server.host.run(
        f"python3 -c {script} {relay.address} {RELAY_ACCOUNT} {password} {tries}"
    )
    assert run.rc == 0, run.stderr
    codes = [int(c) for c in run.stdout.split()]
    # every message up to the limit accepted (control), every one after it deferred
    assert codes == [250] * RELAY_MESSAGE_RATE + [450] * 3, codes


# -- Webmail --------------------------------------------------------------------------


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to the name in the URL (SNI, certificate check, Host header), over a TCP
    connection to a given address: the lab has no DNS."""

    def __init__(self, host: str, *, address: str, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port or 443), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, address: str, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._address = address
        self._pinned_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = functools.partial(_PinnedHTTPSConnection, address=self._address)
        return self.do_open(connection, req, context=self._pinned_context)


class Browser:
    """A cookie-keeping HTTPS client for the webmail, trusting its certificate only."""

    def __init__(self, server: Server) -> None:
        self.domain = server.fact("webmail")["domain"]
        context = server.tls_context("webmail", "certificate", check_hostname=True)
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            _PinnedHTTPSHandler(server.address, context),
            urllib.request.HTTPCookieProcessor(self.cookies),
        )
        self.url = f"https://{self.domain}/"

    def get(self, path: str = "") -> tuple[int, str]:
        with self.opener.open(self.url + path, timeout=30) as response:
            return response.status, response.read().decode()

    def post(self, path: str, form: dict[str, str]) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode()
        try:
            with self.opener.open(self.url + path, data=data, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def login(self, user: str, password: str) -> tuple[int, str]:
        status, page = self.get()
        assert status == 200
        match = re.search(r'name="_token" value="([^"]+)"', page)
        assert match, "no request token on the login page"
        return self.post(
            "?_task=login",
            {
                "_token": match.group(1),
                "_task": "login",
                "_action": "login",
                "_timezone": "Europe/Paris",
                "_url": "",
                "_user": user,
                "_pass": password,
            },
        )


def test_webmail_login_page_answers_over_https(mailbox_server: Server) -> None:
    status, page = Browser(mailbox_server).get()
    assert status == 200
    assert 'id="rcmloginuser"' in page
    assert "<title>Webmail" in page


def test_webmail_redirects_http_to_https(mailbox_server: Server) -> None:
    domain = mailbox_server.fact("webmail")["domain"]
    connection = http.client.HTTPConnection(mailbox_server.address, 80, timeout=30)
    connection.request("GET", "/", headers={"Host": domain})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://{domain}/"


def test_webmail_login_with_the_mailbox_credentials(mailbox_server: Server) -> None:
    status, page = Browser(mailbox_server).login(ALICE, PASSWORD)
    assert status == 200
    assert "rcmail" in page
    assert "?_task=logout" in page  # the logout link of a logged-in user
    assert ALICE in page
    assert "_mbox=Junk" in page  # the mailbox's folders


def test_webmail_refuses_a_wrong_password(mailbox_server: Server) -> None:
    status, page = Browser(mailbox_server).login(ALICE, PASSWORD + "x")
    assert status == 401
    assert "?_task=logout" not in page
    assert 'id="rcmloginuser"' in page


# The vhost converge.yml makes on host 1 beside the webmail (the web role's layout).
VHOST_DOCROOT = "/var/www/shop.martin.example/htdocs"
VHOST_USER = "w_shop_martin_example"


def test_webmail_pool_runs_as_its_own_user_and_cannot_read_the_vhosts(
    mailbox_server: Server,
) -> None:
    """Roundcube's PHP runs as its own user, in no group of the web stack's: the vhost's
    document root (its user, group www-data, 2750) is closed to it, while the webmail
    still logs in and reads the mailbox over IMAP."""
    host = mailbox_server.host
    pool = host.file("/etc/php/8.4/fpm/pool.d/hostops-roundcube.conf")
    assert pool.contains("^user = roundcube$") and pool.contains("^group = roundcube$")
    assert host.user("roundcube").groups == ["roundcube"]
    # the webmail works: a login reads the folders over IMAP; its workers are the pool's
    status, page = Browser(mailbox_server).login(ALICE, PASSWORD)
    assert status == 200 and "_mbox=Junk" in page
    workers = host.check_output("ps -o user:32=,args= -C php-fpm8.4")
    assert re.search(r"^roundcube +php-fpm: pool hostops-roundcube", workers, re.MULTILINE)
    assert not re.search(r"^www-data +php-fpm: pool hostops-roundcube", workers, re.MULTILINE)
    # the vhost's files: readable by the vhost's user and by the web servers (www-data,
    # the positive controls), not by the webmail's user
    index = f"{VHOST_DOCROOT}/index.html"
    assert host.run(f"runuser -u {VHOST_USER} -- cat {index}").rc == 0
    assert host.run(f"runuser -u www-data -- cat {index}").rc == 0
    denied = host.run(f"runuser -u roundcube -- cat {index}")
    assert denied.rc != 0 and "Permission denied" in denied.stderr
    assert host.run(f"runuser -u roundcube -- ls {VHOST_DOCROOT}").rc != 0
