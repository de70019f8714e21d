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


def play(tmp_path: Path, text: str) -> tuple[int, list[dict[str, Any]]]:
    """ansible-playbook of TEXT on localhost: its exit status and each task's result."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(text)
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
    tasks = json.loads(done.stdout)["plays"][0]["tasks"]
    return done.returncode, [task["hosts"]["localhost"] for task in tasks]


def run(tmp_path: Path, checks: Any) -> tuple[int, dict[str, Any]]:
    rc, results = play(tmp_path, PLAY.format(checks=json.dumps(checks)))
    return rc, results[0]


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


GATHERING = """
- name: Checks
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Assert the host's release
      alteo.hostops.assert_each:
        {gather}
        checks:
          - that: ansible_facts.distribution_major_version | length > 0
            fail_msg: "no release: {{{{ ansible_facts.keys() | list }}}}"
      register: checked
    - name: The gathered facts stay the host's
      ansible.builtin.debug:
        msg: "{{{{ ansible_facts.distribution_major_version | default('none') }}}}"
"""


def run_gathering(tmp_path: Path, gather: str) -> tuple[int, list[dict[str, Any]]]:
    return play(tmp_path, GATHERING.format(gather=gather))


def test_gather_subset_gathers_the_facts_first_and_they_stay_the_hosts(tmp_path: Path) -> None:
    release = Path("/etc/debian_version").read_text().split(".")[0]
    rc, (checked, after) = run_gathering(tmp_path, "gather_subset: [min, distribution]")
    assert rc == 0, checked
    assert checked["msg"] == "All 1 checks passed"
    assert checked["ansible_facts"]["ansible_distribution_major_version"] == release
    assert after["msg"] == release
    # the control: without gather_subset the play has no facts, and the check fails
    rc, (checked, *_) = run_gathering(tmp_path, "")
    assert rc == 2
    assert checked["failed"] is True and "ansible_facts" not in checked


KNOWN = """
- name: Checks
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Gather the distribution facts
      ansible.builtin.setup:
        gather_subset: [min, distribution]
    - name: Known already, not gathered again
      alteo.hostops.assert_each:
        gather_subset: [min, distribution]
        checks:
          - that: ansible_facts.distribution_major_version | length > 0
            fail_msg: no release
    - name: One of gather_unless is missing, gathered
      alteo.hostops.assert_each:
        gather_subset: [min, hardware]
        gather_unless: [distribution_major_version, memtotal_mb]
        checks:
          - that: ansible_facts.memtotal_mb | int > 0
            fail_msg: no memory
"""


def test_gather_unless_skips_the_gathering_when_the_facts_are_there(tmp_path: Path) -> None:
    rc, (gathered, known, missing) = play(tmp_path, KNOWN)
    assert rc == 0, gathered
    assert "ansible_distribution_major_version" in gathered["ansible_facts"]
    assert known["msg"] == "All 1 checks passed" and "ansible_facts" not in known
    assert missing["msg"] == "All 1 checks passed"
    assert missing["ansible_facts"]["ansible_memtotal_mb"] > 0


def test_gather_options_are_checked(tmp_path: Path) -> None:
    rc, results = run_gathering(tmp_path, "gather_unless: [distribution]")
    assert rc == 2
    assert results[0]["msg"] == "gather_unless needs gather_subset"
    rc, results = run_gathering(tmp_path, "gather_subset: min")
    assert rc == 2
    assert results[0]["msg"] == "gather_subset must be a non-empty list of names"
