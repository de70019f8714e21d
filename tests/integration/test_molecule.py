"""The molecule scenarios, each on real lab hosts: destroy, syntax, create, check mode on
the fresh host, converge, idempotence (zero changed tasks), testinfra verify, destroy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
# Roles converged and verified by a scenario named after another role, or (plesk, whose
# installer cannot be reached here) by a named stand-in test instead of a scenario.
COVERED_BY = {
    "plesk": "tests/integration/test_plesk_standin.py",
    "ftp": "web-trixie",
    "mariadb": "databases-trixie",
    "postgresql": "databases-trixie",
    "webmail": "mail-trixie",
    "backup_server": "backup-trixie",
    # debsecan with offline tracker data, in the monitoring story (metrics scraped)
    "security_watch": "tests/integration/test_order_monitoring.py",
}


def test_every_role_has_a_scenario() -> None:
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    for role in roles:
        name = role.replace("_", "-")
        covered = any(s == name or s.startswith(f"{name}-") for s in SCENARIOS)
        other = COVERED_BY.get(role, "")
        assert covered or other in SCENARIOS or (other and (ROOT / other).exists()), role


# The longest scenarios run from their own test file (test_molecule_backup.py): scripts/test
# gives each test file to one worker, so they run beside the others instead of after them.
RUN_ELSEWHERE = ("backup-bookworm", "backup-trixie")


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s not in RUN_ELSEWHERE])
def test_scenario(scenario: str, root_user: None) -> None:
    run_scenario(scenario)


def run_scenario(scenario: str) -> None:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    }
    log = ROOT / ".cache" / f"molecule-{scenario}.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.run(
            [str(BIN / "molecule"), "test", "-s", scenario],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=3600,
            check=False,
        )
    text = log.read_text()
    tail = "\n".join(text.splitlines()[-60:])
    assert proc.returncode == 0, f"molecule test -s {scenario} failed (log {log}):\n{tail}"
    # the idempotence step ran and found nothing to change
    assert "idempotence: Executed: Successful" in " ".join(text.split()), tail
