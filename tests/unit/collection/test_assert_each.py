"""alteo.hostops.assert_each (issue 20): a role's preflight checks in one task, run by
ansible-playbook on the controller as the roles run it. The checks are evaluated in
order; the first false one fails the task with its own message, rendered only then (a
later check's message that could not render is never rendered); a check whose 'when' is
false is passed over; a check without a message is refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

PLAY = """
- name: Checks
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    port: 8080
    names: [a, b]
  tasks:
    - name: Assert the inputs make sense
      alteo.hostops.assert_each:
        checks: {checks}
"""

PASSING = [
    {"that": "port | int in range(1, 65536)", "fail_msg": "port {{ port }} is not a port"},
    {"that": ["names | length == 2", "'a' in names"], "fail_msg": "two names, a among them"},
    {"that": "port == 1", "when": "names | length > 5", "fail_msg": "not evaluated"},
]


def run(tmp_path: Path, checks: Any) -> tuple[int, dict[str, Any]]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY.format(checks=json.dumps(checks)))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = json.loads(done.stdout)
    result: dict[str, Any] = output["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return done.returncode, result


def test_checks_that_hold_pass_and_a_false_when_passes_over_a_check(tmp_path: Path) -> None:
    rc, result = run(tmp_path, PASSING)
    assert rc == 0, result
    assert result["msg"] == "All 3 checks passed"
    assert not result.get("failed") and not result["changed"]


def test_the_first_false_check_fails_with_its_own_rendered_message(tmp_path: Path) -> None:
    checks = [
        PASSING[0],
        {"that": ["names | length == 2", "'c' in names"], "fail_msg": "no c in {{ names }}"},
        {"that": "false", "fail_msg": "{{ undefined_variable.attribute }}"},
    ]
    rc, result = run(tmp_path, checks)
    assert rc == 2
    assert result["failed"] is True
    assert result["msg"] == "no c in ['a', 'b']"
    assert result["assertion"] == "'c' in names"
    # the control: the third check alone fails on its own (its message cannot render)
    rc, result = run(tmp_path, checks[2:])
    assert rc == 2
    assert "undefined_variable" in result["msg"]


def test_a_check_without_a_message_is_refused_by_name(tmp_path: Path) -> None:
    rc, result = run(tmp_path, [PASSING[0], {"that": "true"}])
    assert rc == 2
    assert result["msg"] == "checks[2] must be a mapping with that and fail_msg"
    rc, result = run(tmp_path, [{"that": "true", "fail_msg": "x", "quiet": True}])
    assert rc == 2
    assert result["msg"] == "checks[1] has unknown keys: quiet"
