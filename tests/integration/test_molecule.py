"""The molecule scenarios, each on real lab hosts: destroy, syntax, create, check mode on
the fresh host, converge, idempotence (zero changed tasks), testinfra verify, destroy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
# Each role says where it is tested: the section "## Tested" of its README names the
# molecule scenarios (`molecule/NAME`) and test files (`tests/...py`) that converge and
# verify it (plesk, whose installer cannot be reached here, a stand-in test).
TESTED = re.compile(r"^## Tested\n(.*?)(?=^## |\Z)", re.M | re.S)
PATH = re.compile(r"`((?:molecule|tests)/[^`\s]+)`")


def named_tests(role: Path) -> list[str]:
    """The scenarios and test files a role's README names under "## Tested"."""
    readme = role / "README.md"
    match = TESTED.search(readme.read_text()) if readme.is_file() else None
    return PATH.findall(match.group(1)) if match else []


def test_every_role_names_its_tests_and_they_exist() -> None:
    roles = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())
    assert len(roles) >= 16  # the control: the roles are found
    for role in roles:
        named = named_tests(role)
        assert named, f"{role.name}: its README has no '## Tested' section naming a test"
        for path in named:
            assert (ROOT / path.rstrip("/")).exists(), f"{role.name}: {path} does not exist"
        runs = [p for p in named if p.removeprefix("molecule/").rstrip("/") in SCENARIOS]
        runs += [p for p in named if p.startswith("tests/") and p.endswith(".py")]
        assert runs, f"{role.name}: names no scenario or test file that runs it"


def test_every_scenario_is_named_by_a_role() -> None:
    named = {p.rstrip("/") for role in (ROOT / "roles").iterdir() for p in named_tests(role)}
    assert SCENARIOS  # the control: the scenarios are found
    assert [s for s in SCENARIOS if f"molecule/{s}" not in named] == []


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
