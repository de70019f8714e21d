"""The fail2ban metrics script of the fail2ban role (roles/fail2ban/files).

The script asks fail2ban-client; here --client names a stand-in that prints what
fail2ban 1.1.0 (Debian 13) printed on a lab host, and the script writes its metrics
into a temporary textfile directory, as the node exporter would read it. The real
client is exercised on lab hosts (molecule/firewall-trixie, molecule/mail-trixie).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "fail2ban" / "files" / "hostops-fail2ban-metrics"

STATUS = "Status\n|- Number of jail:\t2\n`- Jail list:\tdovecot, sshd\n"
JAIL = (
    "Status for the jail: {jail}\n"
    "|- Filter\n"
    "|  |- Currently failed:\t{failed}\n"
    "|  |- Total failed:\t17\n"
    "|  `- Journal matches:\t_SYSTEMD_UNIT=ssh.service + _COMM=sshd + _COMM=sshd-session\n"
    "`- Actions\n"
    "   |- Currently banned:\t{banned}\n"
    "   |- Total banned:\t{total}\n"
    "   `- Banned IP list:\t{addresses}\n"
)
JAILS = {
    "sshd": {"failed": 1, "banned": 2, "total": 5, "addresses": "192.0.2.7 2001:db8::9"},
    "dovecot": {"failed": 0, "banned": 0, "total": 0, "addresses": ""},
}


def fake_client(tmp_path: Path, answers: bool = True) -> Path:
    client = tmp_path / "fail2ban-client"
    body = (
        f"import sys\nSTATUS = {STATUS!r}\nJAIL = {JAIL!r}\nJAILS = {JAILS!r}\n"
        "args = sys.argv[1:]\n"
        "if args == ['status']:\n    print(STATUS, end='')\n"
        "elif args[:1] == ['status'] and args[1] in JAILS:\n"
        "    print(JAIL.format(jail=args[1], **JAILS[args[1]]), end='')\n"
        "else:\n    sys.exit(255)\n"
        if answers
        else "import sys\nprint('Failed to access socket path: /run/fail2ban/fail2ban.sock',"
        " file=sys.stderr)\nsys.exit(255)\n"
    )
    client.write_text(f"#!{sys.executable}\n{body}")
    client.chmod(0o755)
    return client


def run(tmp_path: Path, client: Path) -> tuple[int, dict[str, float], str]:
    out = tmp_path / "textfile"
    out.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--textfile-dir", str(out), "--client", str(client)],
        capture_output=True,
        text=True,
        check=False,
    )
    text = (out / "hostops_fail2ban.prom").read_text()
    metrics = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left
    return proc.returncode, metrics, proc.stderr


def test_bans_failures_and_totals_per_jail(tmp_path: Path) -> None:
    code, metrics, _ = run(tmp_path, fake_client(tmp_path))
    assert code == 0
    assert metrics["hostops_fail2ban_up"] == 1
    assert metrics['hostops_fail2ban_banned{jail="sshd"}'] == 2
    assert metrics['hostops_fail2ban_banned_total{jail="sshd"}'] == 5
    assert metrics['hostops_fail2ban_failed{jail="sshd"}'] == 1
    assert metrics['hostops_fail2ban_banned{jail="dovecot"}'] == 0
    assert metrics['hostops_fail2ban_banned_total{jail="dovecot"}'] == 0
    assert metrics["hostops_fail2ban_last_check_timestamp_seconds"] > 1.7e9


def test_fail2ban_down_is_told_apart_from_no_bans(tmp_path: Path) -> None:
    code, metrics, stderr = run(tmp_path, fake_client(tmp_path, answers=False))
    assert code == 1
    assert metrics["hostops_fail2ban_up"] == 0
    assert not [name for name in metrics if "jail=" in name]
    assert "fail2ban does not answer" in stderr
    assert "fail2ban.sock" in stderr


def test_a_missing_client_is_fail2ban_down(tmp_path: Path) -> None:
    code, metrics, _ = run(tmp_path, tmp_path / "no-such-client")
    assert code == 1
    assert metrics["hostops_fail2ban_up"] == 0
