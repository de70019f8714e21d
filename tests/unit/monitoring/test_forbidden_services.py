"""The forbidden services check of the monitoring agent (IRC daemons, contract §3.1.4).

The script reads /proc: here it reads a /proc made for the test (listening sockets in
/proc/net/tcp and tcp6, process names in /proc/PID/comm) and writes its metrics file
into a temporary textfile directory, as the node exporter would read it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "monitoring_agent" / "files" / "hostops-forbidden-services"
HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"
TCP6_HEADER = "  sl  local_address                         remote_address   st\n"


def tcp_line(port: int, state: str) -> str:
    return f"   0: 00000000:{port:04X} 00000000:0000 {state} 00000000:00000000 00:00000000 0 0\n"


def tcp6_line(port: int, state: str) -> str:
    zero = "0" * 32
    return f"   0: {zero}:{port:04X} {zero}:0000 {state} 00000000:00000000 00:00000000 0 0\n"


def fake_proc(
    root: Path, listening: list[int], connected: list[int], names: list[str], v6: list[int]
) -> Path:
    (root / "net").mkdir(parents=True)
    lines = [tcp_line(port, "0A") for port in listening]
    lines += [tcp_line(port, "01") for port in connected]  # ESTABLISHED, not listening
    (root / "net" / "tcp").write_text(HEADER + "".join(lines))
    (root / "net" / "tcp6").write_text(TCP6_HEADER + "".join(tcp6_line(p, "0A") for p in v6))
    for pid, name in enumerate(names, start=100):
        (root / str(pid)).mkdir()
        (root / str(pid) / "comm").write_text(name + "\n")
    (root / "self").mkdir()  # not a process directory by number: ignored
    return root


def check(proc: Path, out: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, float]]:
    out.mkdir(exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--textfile-dir",
            str(out),
            "--port",
            "6667",
            "--port",
            "6697",
            "--process",
            "ngircd",
            "--process",
            "inspircd",
            "--proc",
            str(proc),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    metrics = {}
    text = (out / "hostops_forbidden_services.prom").read_text()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            metrics[name] = float(value)
    return result, metrics


def test_a_clean_server_reports_zero(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", [22, 80], [6667], ["sshd", "nginx"], [443])
    result, metrics = check(proc, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert metrics["hostops_forbidden_services"] == 0
    # an outgoing connection to someone's IRC port is not a service run here
    assert not [name for name in metrics if name.startswith("hostops_forbidden_service{")]
    assert metrics["hostops_forbidden_services_last_check_timestamp_seconds"] > 1.7e9


def test_irc_ports_and_daemons_are_reported(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path / "proc", [22, 6667], [], ["sshd", "ngircd", "ngircd-helper"], [6697])
    result, metrics = check(proc, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert metrics == {
        'hostops_forbidden_service{kind="irc",evidence="port 6667/tcp listening"}': 1,
        'hostops_forbidden_service{kind="irc",evidence="port 6697/tcp listening"}': 1,
        'hostops_forbidden_service{kind="irc",evidence="process ngircd"}': 1,
        "hostops_forbidden_services": 3,
        "hostops_forbidden_services_last_check_timestamp_seconds": pytest.approx(
            metrics["hostops_forbidden_services_last_check_timestamp_seconds"]
        ),
    }
    assert "forbidden irc service: process ngircd" in result.stdout


def test_the_metrics_file_is_replaced_whole(tmp_path: Path) -> None:
    """A second run replaces the file (rename), leaving no temporary file behind."""
    out = tmp_path / "out"
    check(fake_proc(tmp_path / "a", [6667], [], [], []), out)
    _, metrics = check(fake_proc(tmp_path / "b", [], [], [], []), out)
    assert metrics["hostops_forbidden_services"] == 0
    assert os.listdir(out) == ["hostops_forbidden_services.prom"]
    assert (out / "hostops_forbidden_services.prom").stat().st_mode & 0o777 == 0o644
