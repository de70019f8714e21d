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


def test_every_role_has_a_scenario() -> None:
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if p.is_dir())
    for role in roles:
        assert any(s == role or s.startswith(f"{role}-") for s in SCENARIOS), role


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario: str, root_user: None) -> None:
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
            timeout=1800,
            check=False,
        )
    text = log.read_text()
    tail = "\n".join(text.splitlines()[-60:])
    assert proc.returncode == 0, f"molecule test -s {scenario} failed (log {log}):\n{tail}"
    # the idempotence step ran and found nothing to change
    assert "idempotence: Executed: Successful" in " ".join(text.split()), tail
