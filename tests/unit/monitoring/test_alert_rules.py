"""The monitoring server's rules and configuration, checked by Prometheus's own tools.

The rules, the Prometheus and Alertmanager configurations and a server's targets file
are Jinja templates of the role alteo.hostops.monitoring_server (thresholds are role
variables). They are rendered here by Ansible's template module with the role's
defaults, then:

- ``promtool check rules`` accepts the rules and ``promtool test rules`` runs the unit
  tests in tests/unit/monitoring/, where every alert has a case where it fires and one
  where it does not;
- ``promtool check config`` accepts the Prometheus configuration, with the rendered
  rules and targets file; ``amtool check-config`` accepts Alertmanager's, and
  ``amtool config routes test`` shows who hears about which alert.

promtool and amtool must be installed on this machine: on Debian 12 they come with the
packages ``prometheus`` and ``prometheus-alertmanager`` (on Debian 13, ``promtool`` and
``prometheus-alertmanager``). Without them these tests fail, they are not skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "monitoring_server"
UNIT_TESTS = sorted(Path(__file__).parent.glob("*.test.yml"))
RULE_FILES = ("hostops-alerts.rules.yml", "hostops-recording.rules.yml")
TEMPLATES = (*RULE_FILES, "prometheus.yml", "alertmanager.yml")
SAMPLE_TARGET = {
    "name": "app1.lemoine.example",
    "address": "192.0.2.31",
    "order": "BDC-2027-0104",
    "customer": "Transports Lemoine SAS",
    "level": "supervision",
    "service": "private_cloud",
    "contact_email": "it@lemoine.example",
    "probes": ["icmp", "node", "http", "tcp"],
    "http_checks": ["https://app.lemoine.example/health"],
    "tcp_checks": ["app1.lemoine.example:5432"],
    "bandwidth_cap_mbps": 101,
}
# One ansible-playbook run renders everything: the role's defaults and vars come in as
# vars_files (so that task variables can override them), extra variables make the
# rendered files refer to each other where they are (not under /etc), and the alert
# rules are rendered a second time with other thresholds.
RENDER_PLAYBOOK = """\
- name: Render the monitoring server's templates
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  tasks:
    - name: Render with the role's defaults
      ansible.builtin.template:
        src: "{role}/templates/{{{{ item.src }}}}"
        dest: "{{{{ out }}}}/{{{{ item.dest }}}}"
        mode: "0644"
      loop: "{{{{ templates }}}}"

    - name: Render the alerts with other thresholds
      ansible.builtin.template:
        src: "{role}/templates/hostops-alerts.rules.yml.j2"
        dest: "{{{{ out }}}}/other/hostops-alerts.rules.yml"
        mode: "0644"
      vars:
        monitoring_server_cpu_ratio: 0.5
        monitoring_server_host_down_for: 7m
        monitoring_server_backup_max_age_hours: 30
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The role's templates rendered by Ansible, with the unit tests beside the rules."""
    out = tmp_path_factory.mktemp("monitoring")
    (out / "targets").mkdir()
    (out / "other").mkdir()
    shutil.copy(ROLE / "files" / "hostops.tmpl", out / "hostops.tmpl")
    playbook = out / "render.yml"
    playbook.write_text(RENDER_PLAYBOOK.format(role=ROLE))
    extra = {
        "out": str(out),
        "templates": [{"src": f"{name}.j2", "dest": name} for name in TEMPLATES]
        + [{"src": "hostops-targets.yml.j2", "dest": f"targets/{SAMPLE_TARGET['name']}.yml"}],
        "monitoring_server_target": SAMPLE_TARGET,
        "__monitoring_server_rules_dir": str(out),
        "__monitoring_server_email_template": str(out / "hostops.tmpl"),
        "monitoring_server_targets_dir": str(out / "targets"),
        "ansible_python_interpreter": sys.executable,
    }
    (out / "extra.json").write_text(json.dumps(extra))
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            str(playbook),
            "-e",
            f"@{out / 'extra.json'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for test in UNIT_TESTS:
        shutil.copy(test, out / test.name)
    return out


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the monitoring rules are checked with Prometheus's own "
            "tools (Debian 12: apt-get install prometheus prometheus-alertmanager; "
            "scripts/setup installs them)"
        )
    return path


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def alert_names(rules: Path) -> set[str]:
    groups = yaml.safe_load(rules.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_rules_pass_promtool_check(rendered: Path) -> None:
    proc = run(tool("promtool"), "check", "rules", *(str(rendered / f) for f in RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("test_file", [t.name for t in UNIT_TESTS])
def test_rule_unit_tests(rendered: Path, test_file: str) -> None:
    proc = run(tool("promtool"), "test", "rules", test_file, cwd=rendered)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_has_a_firing_and_a_quiet_case(rendered: Path) -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for test_file in UNIT_TESTS:
        for test in yaml.safe_load(test_file.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = alert_names(rendered / "hostops-alerts.rules.yml")
    assert len(alerts) == 21
    assert alerts - firing == set(), "alerts never seen firing"
    assert alerts - quiet == set(), "alerts never seen quiet"
    assert (firing | quiet) - alerts == set(), "tests of alerts that do not exist"


def test_contract_alerts_are_there(rendered: Path) -> None:
    """The issue's list: host down, CPU, memory, disk, RAID, load, I/O wait, bandwidth,
    backups (too old, failed), forbidden service."""
    alerts = alert_names(rendered / "hostops-alerts.rules.yml")
    assert {
        "HostDown",
        "HostHighCpu",
        "HostHighMemory",
        "HostDiskSpaceLow",
        "HostRaidDegraded",
        "HostHighLoad",
        "HostHighIoWait",
        "BandwidthAboveCap",
        "BackupTooOld",
        "BackupFailed",
        "ForbiddenServiceDetected",
    } <= alerts


def test_thresholds_come_from_the_variables(rendered: Path) -> None:
    other = rendered / "other" / "hostops-alerts.rules.yml"
    groups = yaml.safe_load(other.read_text())["groups"]
    rules = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    assert rules["HostHighCpu"]["expr"] == "hostops:cpu_usage:ratio_rate5m > 0.5"
    assert rules["HostDown"]["for"] == "7m"
    assert rules["BackupTooOld"]["expr"].endswith(f"> {30 * 3600}")
    proc = run(tool("promtool"), "check", "rules", str(other))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheus_config_and_targets_file_pass_promtool(rendered: Path) -> None:
    proc = run(tool("promtool"), "check", "config", str(rendered / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # the rule files and the server's targets file were read too
    assert "SUCCESS: 21 rules found" in proc.stdout
    assert "SUCCESS: 9 rules found" in proc.stdout
    targets = yaml.safe_load((rendered / "targets" / "app1.lemoine.example.yml").read_text())
    probes = {group["labels"]["__hostops_probe"]: group for group in targets}
    assert sorted(probes) == ["http", "icmp", "node", "tcp"]
    assert probes["icmp"]["targets"] == ["192.0.2.31"]
    assert probes["node"]["targets"] == ["192.0.2.31:9100"]
    assert probes["http"]["targets"] == ["https://app.lemoine.example/health"]
    for group in targets:
        assert group["labels"]["order"] == "BDC-2027-0104"
        assert group["labels"]["customer"] == "Transports Lemoine SAS"
        assert group["labels"]["level"] == "supervision"
        assert group["labels"]["contact_email"] == "it@lemoine.example"
        assert group["labels"]["bandwidth_cap_mbps"] == "101"


def test_alertmanager_config_passes_amtool(rendered: Path) -> None:
    proc = run(tool("amtool"), "check-config", str(rendered / "alertmanager.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        # the server's availability and resources: ops and the contact
        (
            ["alertname=HostDown", "audience=customer", "contact_email=it@lemoine.example"],
            "ops,customer-contact",
        ),
        (
            ["alertname=HostHighCpu", "audience=customer", "contact_email=it@lemoine.example"],
            "ops,customer-contact",
        ),
        # the provider's own business: ops only
        (["alertname=BackupFailed", "audience=ops", "contact_email=it@lemoine.example"], "ops"),
        (
            [
                "alertname=ForbiddenServiceDetected",
                "audience=ops",
                "contact_email=it@lemoine.example",
            ],
            "ops",
        ),
        # a server registered without a contact (and this server's own alerts): ops only
        (["alertname=HostDown", "audience=customer"], "ops"),
    ],
)
def test_routes(rendered: Path, labels: list[str], receivers: str) -> None:
    proc = run(
        tool("amtool"),
        "config",
        "routes",
        "test",
        f"--config.file={rendered / 'alertmanager.yml'}",
        *labels,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == receivers
