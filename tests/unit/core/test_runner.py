"""hostops.core.runner on real ansible-playbook runs against localhost (no lab host): what an
operator reads when a playbook does not even load, and what -v prints."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest

from hostops.core import runner
from hostops.core.runner import PlaybookRun

GOOD = """---
- name: A play that runs
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: hello from the task
"""

# A role that no collection has: ansible-playbook stops before any task.
BROKEN = """---
- name: A play that cannot load
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: alteo.hostops.no_such_role
"""


COUNTER = itertools.count()


@pytest.fixture
def root(collection_root: Path) -> Path:
    """A collection root of its own (HOSTOPS_ROOT) with two playbooks."""
    (collection_root / "playbooks" / "good.yml").write_text(GOOD)
    (collection_root / "playbooks" / "broken.yml").write_text(BROKEN)
    return collection_root


def run(root: Path, playbook: str, verbosity: int = 0) -> tuple[runner.RunResult, str]:
    out = io.StringIO()
    result = PlaybookRun(
        playbook=playbook,
        inventory=[root / "inventory.yml"],
        run_dir=root.parent / "runs" / f"{playbook}-{next(COUNTER)}",
        verbosity=verbosity,
        out=out,
    ).execute()
    return result, out.getvalue()


def test_a_playbook_that_does_not_load_reports_ansibles_own_error(root: Path) -> None:
    result, _ = run(root, "broken.yml")
    assert not result.ok
    assert result.failures == []  # no task ran
    lines = "\n".join(result.failure_lines)
    assert "ansible-playbook: " in lines
    assert "no_such_role" in lines and "was not found" in lines


def test_a_good_run_has_no_error_lines(root: Path) -> None:
    # the control: the same machinery, a playbook that loads
    result, out = run(root, "good.yml")
    assert result.ok, result.failure_lines
    assert result.failure_lines == []
    assert result.error == ""
    assert "Say hello" in out
    assert "hello from the task" not in out  # the short progress line only


def test_verbose_prints_ansibles_own_output(root: Path) -> None:
    result, out = run(root, "good.yml", verbosity=1)
    assert result.ok
    assert "TASK [Say hello]" in out
    assert "hello from the task" in out


def test_the_command_line_verbosity_reaches_every_run(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "VERBOSITY", 0)
    runner.set_verbosity(1)
    _, out = run(root, "good.yml")
    assert "hello from the task" in out
    runner.set_verbosity(0)
    _, quiet = run(root, "good.yml")
    assert "hello from the task" not in quiet


# The parent of a command task's shell: Mitogen's persistent interpreter names itself
# "python3(mitogen:user@host:pid)"; under the stock strategy it is the module's own Python.
PARENT = """---
- name: A play that says who runs its modules
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Read the parent process
      ansible.builtin.shell: tr '\\\\0' ' ' < /proc/$PPID/cmdline
      register: parent
      changed_when: false
    - name: Publish it
      ansible.builtin.set_stats:
        data:
          parent: "{{ parent.stdout }}"
"""


@pytest.mark.parametrize(("setting", "mitogen"), [("", True), ("mitogen", True), ("linear", False)])
def test_the_strategy_setting_chooses_who_runs_the_tasks(
    root: Path, monkeypatch: pytest.MonkeyPatch, setting: str, mitogen: bool
) -> None:
    (root / "playbooks" / "parent.yml").write_text(PARENT)
    monkeypatch.setenv("ANSIBLE_STRATEGY", "free")  # the operator's shell does not decide
    if setting:
        monkeypatch.setenv("HOSTOPS_ANSIBLE_STRATEGY", setting)
    else:
        monkeypatch.delenv("HOSTOPS_ANSIBLE_STRATEGY", raising=False)
    result, _ = run(root, "parent.yml")
    assert result.ok, result.failure_lines
    parent = result.artifacts["parent"]
    assert ("(mitogen:" in parent) is mitogen, parent
    assert mitogen or "AnsiballZ_command" in parent, parent


def test_a_bad_strategy_setting_exits_2_before_anything(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hostops.cli import main  # noqa: PLC0415

    monkeypatch.setenv("HOSTOPS_ANSIBLE_STRATEGY", "mitogen_free")
    assert main(["order", "validate", "/nonexistent/order.yml"]) == 2
    err = capsys.readouterr().err
    assert "HOSTOPS_ANSIBLE_STRATEGY: 'mitogen_free' is not a strategy" in err
    # the control: the same command with the setting right reaches the order
    monkeypatch.setenv("HOSTOPS_ANSIBLE_STRATEGY", "linear")
    main(["order", "validate", "/nonexistent/order.yml"])
    assert "HOSTOPS_ANSIBLE_STRATEGY" not in capsys.readouterr().err
