"""The sending metrics script of the mail role (roles/mail/files/hostops-mail-rate).

--journal-file gives it Postfix's log lines as 'journalctl -o cat' prints them (the
formats of Postfix 3.10 on Debian 13: the submission server's client= line with the SASL
login, the queue manager's from= line with the recipients); it writes its metrics into a
temporary textfile directory, as the node exporter reads them. The journal itself is read
on lab hosts (molecule/resources/mail/tests/test_mass_mail.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "mail" / "files" / "hostops-mail-rate"

LOG = """\
connect from unknown[172.29.84.1]
4dJXq01HbMz9tB: client=unknown[172.29.84.1], sasl_method=PLAIN, sasl_username=bob@shop.example
4dJXq01HbMz9tB: message-id=<1@client.example>
4dJXq01HbMz9tB: from=<bob@shop.example>, size=512, nrcpt=3 (queue active)
4dJXq01HbMz9tB: to=<a@x.example>, relay=none, delay=0.1, status=sent
4dJXq1WKQ4z9tC: client=unknown[172.29.84.1], sasl_method=LOGIN, sasl_username=Bob@shop.example
4dJXq1WKQ4z9tC: from=<bob@shop.example>, size=700, nrcpt=1 (queue active)
4dJXq1WKQ4z9tC: from=<bob@shop.example>, size=700, nrcpt=1 (queue active)
4dJXq2ABCDz9tD: client=unknown[172.29.84.1], sasl_method=PLAIN, sasl_username=ann@shop.example
4dJXq2ABCDz9tD: from=<ann@shop.example>, size=100, nrcpt=1 (queue active)
4dJXq3ABCDz9tE: client=unknown[172.29.84.1], sasl_method=PLAIN, sasl_username=eve@shop.example
4dJXq4ABCDz9tF: client=mx.example[192.0.2.5]
4dJXq4ABCDz9tF: from=<outsider@example.org>, size=100, nrcpt=1 (queue active)
"""


def run(tmp_path: Path, log: str, suspended: str = "") -> tuple[int, str]:
    out = tmp_path / "textfile"
    out.mkdir(exist_ok=True)
    (tmp_path / "journal").write_text(log)
    (tmp_path / "suspended").write_text(suspended)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--textfile-dir", str(out),
         "--journal-file", str(tmp_path / "journal"), "--suspended", str(tmp_path / "suspended")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.returncode, (out / "hostops_mail.prom").read_text()


def series(text: str, name: str) -> dict[str, float]:
    return {
        account: float(value)
        for account, value in re.findall(rf'^{name}\{{account="([^"]+)"\}} (\S+)$', text, re.M)
    }


def test_counts_queued_messages_and_recipients_per_account(tmp_path: Path) -> None:
    status, text = run(tmp_path, LOG)
    assert status == 0
    # bob: two messages (logins compared in lowercase; a retried message counted once),
    # 3 + 1 recipients; eve's transaction never queued; mail from outside (no login) not counted
    assert series(text, "hostops_mail_sent_messages") == {
        "ann@shop.example": 1,
        "bob@shop.example": 2,
    }
    assert series(text, "hostops_mail_sent_recipients") == {
        "ann@shop.example": 1,
        "bob@shop.example": 4,
    }
    assert "hostops_mail_rate_up 1" in text
    assert "hostops_mail_rate_window_seconds 3600" in text
    assert series(text, "hostops_mail_account_suspended") == {}


def test_suspended_accounts_are_listed(tmp_path: Path) -> None:
    table = "# comment\nbob@shop.example REJECT 5.7.1 suspended\n\n"
    _, text = run(tmp_path, "", table)
    assert series(text, "hostops_mail_account_suspended") == {"bob@shop.example": 1}
    assert series(text, "hostops_mail_sent_messages") == {}


def test_an_unreadable_log_says_so(tmp_path: Path) -> None:
    out = tmp_path / "textfile"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--textfile-dir", str(out),
         "--journal-file", str(tmp_path / "missing")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "hostops_mail_rate_up 0" in (out / "hostops_mail.prom").read_text()


def test_the_output_is_read_by_promtool(tmp_path: Path) -> None:
    """The textfile is valid exposition format (promtool check metrics)."""
    import shutil  # noqa: PLC0415

    _, text = run(tmp_path, LOG)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (scripts/setup installs it)"
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
