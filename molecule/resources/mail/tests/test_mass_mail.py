"""Mass sending watched and an account suspended (contract §3.1.2), on the mailbox server.

A fresh mailbox made by 'hostops request mailbox' submits more messages on 587 than the
threshold the alert is rendered with here; the server's sending metrics (hostops-mail-rate,
read from the textfile it writes for the node exporter) count them for that account, and
promtool evaluates the monitoring server's MailMassSending rule on exactly those series:
it fires for that account and not for alice, who sent a few (the quiet control).
'hostops mail suspend' then stops the account's submission (every RCPT TO refused, 554
5.7.1) while alice still sends (the positive control); the notice reaches the contact's
mailbox over SMTP; 'hostops mail resume' lets the account send again.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import yaml
from test_mail import (
    ALICE,
    CLIENT_NAME,
    DOMAIN,
    PASSWORD,
    SCENARIO,
    Server,
    imap,
    message,
    request_mailbox,
    submission,
    token,
)

ROOT = Path(__file__).resolve().parents[4]
ROLE = ROOT / "roles" / "monitoring_server"
METRICS = "/var/lib/prometheus/node-exporter/hostops_mail.prom"
THRESHOLD = 10  # messages an hour, for the rule rendered here (the role's default is 300)
SENT = THRESHOLD + 2
SERVER_LABEL = "mail.lab.example"

RENDER = """\
- name: Render the alert rules with the scenario's threshold
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  tasks:
    - name: Render
      ansible.builtin.template:
        src: {role}/templates/hostops-alerts.rules.yml.j2
        dest: "{{{{ out }}}}/hostops-alerts.rules.yml"
        mode: "0644"
      vars:
        monitoring_server_mail_messages_per_hour: {threshold}
        monitoring_server_mail_sending_for: 1m
"""


@pytest.fixture(scope="module")
def mailbox_server() -> Server:
    return Server(f"{SCENARIO}-1")


@pytest.fixture(scope="module")
def mail_tls(mailbox_server: Server) -> ssl.SSLContext:
    return mailbox_server.tls_context("mail", "tls_certificate", check_hostname=False)


def suspend_cli(server: Server, address: str, *, resume: bool, no_send: bool) -> str:
    from hostops.mail import suspension  # noqa: PLC0415 - the controller's package
    out = io.StringIO()
    status = suspension.run(
        state="active" if resume else "suspended",
        host=server.name,
        address=address,
        reason=None if resume else "Mass sending seen by the lab test",
        contacts=[ALICE],
        no_send=no_send,
        lab=False,
        inventories=[Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "lab-hosts.yml"],
        out=out,
    )
    assert status == 0, out.getvalue()
    return out.getvalue()


def start_rate_unit(server: Server, unit: str = "hostops-mail-rate.service") -> None:
    """Run the sending metrics' unit now, as its timer does, or fail with its journal.

    A start that systemd itself could not set up (the unit's result 'resources': the
    executor, the unit's cgroup or its private /tmp, seen once on a loaded CI machine) is
    retried once, with a warning that carries the journal; the script failing, or systemd
    failing twice, fails the test.
    """
    for attempt in (1, 2):
        run = server.host.run(f"systemctl start {unit}")
        if run.rc == 0:
            return
        result = server.host.run(f"systemctl show --property=Result --value {unit}").stdout
        journal = server.host.run(f"journalctl --unit={unit} --lines=30 --no-pager").stdout
        report = f"{run.stderr}result: {result.strip()}\n{journal}"
        if result.strip() != "resources" or attempt == 2:
            pytest.fail(f"systemctl start {unit} failed:\n{report}")
        warnings.warn(f"systemd could not start {unit}, once:\n{report}", stacklevel=1)
        server.host.run(f"systemctl reset-failed {unit}")
        time.sleep(1)


def metrics(server: Server) -> dict[str, dict[str, float]]:
    """{metric: {account: value}} of the sending metrics, written again now."""
    start_rate_unit(server)
    text = server.host.file(METRICS).content_string
    found: dict[str, dict[str, float]] = {}
    for name, account, value in re.findall(
        r'^(hostops_mail_\w+)\{account="([^"]+)"\} (\S+)$', text, re.MULTILINE
    ):
        found.setdefault(name, {})[account] = float(value)
    assert "hostops_mail_rate_up 1" in text, text
    return found


def send_one(server: Server, context: ssl.SSLContext, login: str, password: str) -> None:
    tag = token()
    with submission(server, context, login, password) as client:
        client.send_message(message(f"Control {tag}", tag, sender=login, to=login))


@pytest.fixture(scope="module")
def bulk(mailbox_server: Server) -> tuple[str, str]:
    address = f"bulk-{token()}@{DOMAIN}"
    output = request_mailbox(mailbox_server, address)
    password = re.findall(r"^password \(shown once[^:]*\): (\S+)$", output, re.MULTILINE)[0]
    return address, password


def promtool_fires(tmp_path: Path, messages: dict[str, float], account: str) -> None:
    """MailMassSending, rendered with THRESHOLD, on the series the server wrote."""
    playbook = tmp_path / "render.yml"
    playbook.write_text(RENDER.format(role=ROLE, threshold=THRESHOLD))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook),
         "-e", json.dumps({"out": str(tmp_path), "ansible_python_interpreter": sys.executable})],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rules = yaml.safe_load((tmp_path / "hostops-alerts.rules.yml").read_text())["groups"]
    rule = next(r for g in rules for r in g["rules"] if r.get("alert") == "MailMassSending")

    def annotations(account: str, value: float) -> dict[str, str]:
        return {
            name: text.replace("{{ $labels.account }}", account)
            .replace("{{ $labels.server }}", SERVER_LABEL)
            .replace("{{ $value }}", f"{value:g}")
            for name, text in rule["annotations"].items()
        }

    labels = {"instance": "mail:9100", "server": SERVER_LABEL}
    above = sorted(a for a, v in messages.items() if v > THRESHOLD)
    assert account in above and len(above) < len(messages), messages  # a quiet one too
    test = {
        "rule_files": ["hostops-alerts.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": "hostops_mail_sent_messages{"
                        + ",".join(f'{k}="{v}"' for k, v in {**labels, "account": a}.items())
                        + "}",
                        "values": f"{int(v)}x5",
                    }
                    for a, v in messages.items()
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "3m",
                        "alertname": "MailMassSending",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    **labels,
                                    "account": a,
                                    "severity": "warning",
                                    "audience": "ops",
                                },
                                "exp_annotations": annotations(a, messages[a]),
                            }
                            for a in above
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "mail.test.yml").write_text(yaml.safe_dump(test))
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (scripts/setup installs it)"
    proc = subprocess.run(
        [promtool, "test", "rules", "mail.test.yml"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_mass_sending_raises_the_metric_and_the_alert(
    mailbox_server: Server, mail_tls: ssl.SSLContext, bulk: tuple[str, str], tmp_path: Path
) -> None:
    address, password = bulk
    send_one(mailbox_server, mail_tls, ALICE, PASSWORD)  # alice sends too, below the threshold
    with submission(mailbox_server, mail_tls, address, password) as client:
        for n in range(SENT):
            client.send_message(message(f"Bulk {n}", token(), sender=address, to=address))
    deadline = time.monotonic() + 60
    while True:  # the queue manager logs each message a moment after it is accepted
        sent = metrics(mailbox_server)
        if sent.get("hostops_mail_sent_messages", {}).get(address, 0) >= SENT:
            break
        assert time.monotonic() < deadline, sent
        time.sleep(2)
    messages = sent["hostops_mail_sent_messages"]
    assert messages[address] == SENT and sent["hostops_mail_sent_recipients"][address] == SENT
    assert 1 <= messages[ALICE] <= THRESHOLD, messages  # the quiet control
    promtool_fires(tmp_path, messages, address)


def test_suspend_stops_the_accounts_submission_and_resume_restores_it(
    mailbox_server: Server,
    mail_tls: ssl.SSLContext,
    bulk: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address, password = bulk
    # the notice goes to alice through the mailbox server's own port 25, as another
    # server's mail would (the lab has no relay of ops')
    monkeypatch.setenv("HOSTOPS_SMTP_HOST", mailbox_server.address)
    monkeypatch.setenv("HOSTOPS_SMTP_PORT", "25")
    monkeypatch.setenv("HOSTOPS_SMTP_HELO", CLIENT_NAME)
    output = suspend_cli(mailbox_server, address, resume=False, no_send=False)
    assert f"mail suspend {address} on {mailbox_server.name}: suspended" in output, output
    assert f"notice sent to {ALICE}" in output, output
    # the account still logs in, but none of its mail is accepted
    with (
        submission(mailbox_server, mail_tls, address, password) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        client.send_message(message("Suspended", token(), sender=address, to=address))
    code, reply = next(iter(refused.value.recipients.values()))
    assert code == 554 and b"suspended" in reply, (code, reply)
    send_one(mailbox_server, mail_tls, ALICE, PASSWORD)  # another account still sends
    # recorded on the server, who and why; listed in the metrics
    record = json.loads(
        mailbox_server.host.file(f"/var/lib/hostops/mail-suspensions/{address}.json").content_string
    )
    assert record["reason"] == "Mass sending seen by the lab test" and record["by"], record
    assert metrics(mailbox_server)["hostops_mail_account_suspended"] == {address: 1.0}
    # a second suspension changes nothing
    again = suspend_cli(mailbox_server, address, resume=False, no_send=True)
    assert ": already suspended, 0 change(s)" in again, again
    # the notice reached the contact's mailbox
    reader = imap(mailbox_server, mail_tls, ALICE, PASSWORD)
    try:
        deadline = time.monotonic() + 180
        while True:  # in the inbox, or in Junk if the antispam option scores it so
            found = []
            for folder in ("INBOX", "Junk"):
                reader.select(folder, readonly=True)
                _, data = reader.search(None, "SUBJECT", f'"suspendu pour {address}"')
                found += data[0].split()
            if found:
                break
            assert time.monotonic() < deadline, "the suspension notice did not arrive"
            time.sleep(2)
    finally:
        reader.logout()
    resumed = suspend_cli(mailbox_server, address, resume=True, no_send=True)
    assert f"mail resume {address} on {mailbox_server.name}: resumed" in resumed, resumed
    send_one(mailbox_server, mail_tls, address, password)
    assert not mailbox_server.host.file(f"/var/lib/hostops/mail-suspensions/{address}.json").exists
    assert "hostops_mail_account_suspended" not in metrics(mailbox_server)
