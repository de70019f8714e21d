"""alteo.hostops.files (issue 20): a role's files, directories and links in one task, run
by ansible-playbook under the project's configuration (its default strategy) on the
controller itself. What it writes is what ansible.builtin.template and
ansible.builtin.copy write from the same role (the control); a second run changes
nothing; a file changed by hand is put back and only its entry's handler runs; check mode
reports and writes nothing; a validate command that refuses keeps the file; bad entries
are named."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]

TEMPLATE = """\
# {{ ansible_managed | default('managed') }}
{% for name in names %}
{{ name }} = {{ loop.index }}
{% endfor %}
port {{ port }}
"""

HANDLERS = """\
- name: Note a
  ansible.builtin.lineinfile:
    path: "{{ base }}/handlers.log"
    line: a {{ run }}
    create: true
    mode: "0644"
- name: Note b
  ansible.builtin.lineinfile:
    path: "{{ base }}/handlers.log"
    line: b {{ run }}
    create: true
    mode: "0644"
"""

TASKS = """\
- name: The role's files in one task
  alteo.hostops.files:
    files:
      - dest: "{{ base }}/never"
        content: left out
        when: "{{ optional and run > 5 }}"
      - dest: "{{ base }}/etc"
        state: directory
        mode: "0750"
      - dest: "{{ base }}/etc/app.conf"
        template: app.conf.j2
        mode: "0640"
        notify: [Note a]
      - dest: "{{ base }}/etc/script.sh"
        copy: script.sh
        mode: "0755"
        notify: Note b
      - dest: "{{ base }}/etc/literal"
        content: "port {{ port }}\\n"
        mode: "0600"
        validate: grep -q '^port ' %s
      - dest: "{{ base }}/etc/seeded"
        content: "first\\n"
        force: false
      - dest: "{{ base }}/etc/enabled.conf"
        state: link
        src: app.conf
      - dest: "{{ base }}/etc/old.conf"
        state: absent
      - dest: "{{ base }}/etc/optional.conf"
        template: app.conf.j2
        state: "{{ 'file' if optional else 'absent' }}"

- name: The same files by Ansible's own modules (the control)
  when: control
  block:
    - name: Render the template with ansible.builtin.template
      ansible.builtin.template:
        src: app.conf.j2
        dest: "{{ base }}/control.conf"
        mode: "0640"
    - name: Copy the file with ansible.builtin.copy
      ansible.builtin.copy:
        src: script.sh
        dest: "{{ base }}/control.sh"
        mode: "0755"
"""

PLAY = """\
- name: Files
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    names: [alpha, beta]
    port: 8080
  roles:
    - role: demo
"""


def setup(tmp_path: Path) -> Path:
    role = tmp_path / "roles" / "demo"
    for directory, name, text in (
        ("templates", "app.conf.j2", TEMPLATE),
        ("files", "script.sh", "#!/bin/sh\necho 'é \\\\ {{ not a template }}'\n"),
        ("handlers", "main.yml", HANDLERS),
        ("tasks", "main.yml", TASKS),
    ):
        (role / directory).mkdir(parents=True, exist_ok=True)
        (role / directory / name).write_text(text)
    (tmp_path / "play.yml").write_text(PLAY)
    base = tmp_path / "out"
    base.mkdir()
    (base / "etc").mkdir()
    (base / "etc" / "old.conf").write_text("to remove\n")
    (base / "etc" / "seeded").write_text("kept\n")
    return base


def run(
    tmp_path: Path, base: Path, *args: str, run: int = 1, control: bool = False,
    optional: bool = True, tasks: str | None = None, strategy: str | None = None,
) -> tuple[int, dict[str, dict[str, Any]]]:  # fmt: skip
    if tasks is not None:
        (tmp_path / "roles" / "demo" / "tasks" / "main.yml").write_text(tasks)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
        "ANSIBLE_ROLES_PATH": str(tmp_path / "roles"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        **({"ANSIBLE_STRATEGY": strategy} if strategy else {}),
    }
    extra = {
        "base": str(base), "run": run, "control": control, "optional": optional,
        "ansible_python_interpreter": sys.executable,
    }  # fmt: skip
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,",
            "-e", json.dumps(extra), *args, str(tmp_path / "play.yml"),
        ],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr
    output = json.loads(done.stdout)
    results = {
        task["task"]["name"].split(" : ", 1)[-1]: task["hosts"]["localhost"]
        for task in output["plays"][0]["tasks"]
    }
    return done.returncode, results


def handlers_log(base: Path) -> list[str]:
    path = base / "handlers.log"
    return path.read_text().splitlines() if path.exists() else []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_entries_are_written_as_ansibles_modules_write_them_and_a_rerun_changes_nothing(
    tmp_path: Path,
) -> None:
    base = setup(tmp_path)
    rc, results = run(tmp_path, base, control=True)
    task = results["The role's files in one task"]
    assert rc == 0, task.get("msg")
    assert task["changed"] is True
    assert [(r["state"], r["changed"]) for r in task["results"]] == [
        ("directory", True),  # the mode
        ("file", True),
        ("file", True),
        ("file", True),
        ("file", False),  # force: false, the path exists
        ("link", True),
        ("absent", True),
        ("file", True),
    ]
    etc = base / "etc"
    # the control: Ansible's own modules wrote the same bytes from the same role
    assert (etc / "app.conf").read_bytes() == (base / "control.conf").read_bytes()
    assert (etc / "script.sh").read_bytes() == (base / "control.sh").read_bytes()
    assert "alpha = 1\nbeta = 2\nport 8080\n" in (etc / "app.conf").read_text()
    assert (etc / "literal").read_text() == "port 8080\n"
    assert (etc / "seeded").read_text() == "kept\n"
    assert os.readlink(etc / "enabled.conf") == "app.conf"
    assert not (etc / "old.conf").exists()
    assert not (base / "never").exists()
    assert (etc / "optional.conf").exists()
    assert [mode(etc), mode(etc / "app.conf"), mode(etc / "script.sh"), mode(etc / "literal")] == [
        0o750, 0o640, 0o755, 0o600,
    ]  # fmt: skip
    assert handlers_log(base) == ["a 1", "b 1"]
    # the result names what was asked, without the files' content (it would reach the
    # runner's events and artifacts)
    asked = task["invocation"]["module_args"]["files"]
    assert [entry["dest"] for entry in asked][:2] == [str(etc), str(etc / "app.conf")]
    assert not any("content" in entry for entry in asked)
    assert "alpha = 1" not in json.dumps(task)

    rc, results = run(tmp_path, base, run=2)
    task = results["The role's files in one task"]
    assert rc == 0 and task["changed"] is False, task
    assert not any(r["changed"] for r in task["results"])
    assert "Note a" not in results and "Note b" not in results
    assert handlers_log(base) == ["a 1", "b 1"]

    # an entry whose templated state turns to absent removes its file
    rc, results = run(tmp_path, base, run=3, optional=False)
    assert rc == 0
    assert [r["changed"] for r in results["The role's files in one task"]["results"]][-1]
    assert not (base / "etc" / "optional.conf").exists()
    assert handlers_log(base) == ["a 1", "b 1"]


@pytest.mark.parametrize("strategy", [None, "ansible.builtin.linear"])
def test_drift_is_put_back_with_its_own_handler_and_check_mode_only_reports(
    tmp_path: Path, strategy: str | None
) -> None:
    """Under the project's strategy and the stock one (the notifications are Ansible's)."""
    base = setup(tmp_path)
    assert run(tmp_path, base, strategy=strategy)[0] == 0
    script = base / "etc" / "script.sh"
    wanted = script.read_bytes()
    script.write_text("changed by hand\n")
    script.chmod(0o700)

    rc, results = run(tmp_path, base, "--check", "--diff", run=2, strategy=strategy)
    task = results["The role's files in one task"]
    assert rc == 0 and task["changed"] is True, task
    assert [r["dest"] for r in task["results"] if r["changed"]] == [str(script)]
    assert script.read_text() == "changed by hand\n" and mode(script) == 0o700
    diffs = [d for d in task["diff"] if d.get("before_header") == str(script)]
    assert diffs and diffs[0]["before"] == "changed by hand\n"
    assert diffs[0]["after"] == wanted.decode()
    assert handlers_log(base) == ["a 1", "b 1"]  # check mode: the handler did not write

    rc, results = run(tmp_path, base, run=3, strategy=strategy)
    assert rc == 0
    assert script.read_bytes() == wanted and mode(script) == 0o755
    assert "Note b" in results and "Note a" not in results
    assert handlers_log(base) == ["a 1", "b 1", "b 3"]


def test_a_refused_validation_keeps_the_file_and_bad_entries_are_named(tmp_path: Path) -> None:
    base = setup(tmp_path)
    assert run(tmp_path, base)[0] == 0
    literal = base / "etc" / "literal"
    refused = (
        TASKS.split("- name: The same files", maxsplit=1)[0]
        .replace("validate: grep -q '^port ' %s", "validate: grep -q '^never ' %s")
        .replace('"port {{ port }}\\n"', '"port 9090\\n"')
    )
    rc, results = run(tmp_path, base, tasks=refused)
    task = results["The role's files in one task"]
    assert rc == 2 and task["failed"] is True
    # files[5]: the first entry, left out by its when, still counts in the numbering
    assert f"files[5]: {literal}: validate (grep -q '^never ' %s) refused" in task["msg"]
    assert literal.read_text() == "port 8080\n"

    for entry, message in (
        ('{dest: "{{ base }}/x", colour: red, content: x}', "files[1] has unknown keys: colour"),
        ('{dest: "{{ base }}/x", mode: "0644"}', "state must be one of"),
        ("{dest: relative/x, content: x}", "files[1].dest must be an absolute path"),
        ('{dest: "{{ base }}/x", state: link}', "src (a link's target) goes with state link only"),
        (
            '{dest: "{{ base }}/x", template: missing.j2}',
            "files[1] ({base}/x): template missing.j2",
        ),
        ('{dest: "{{ base }}/etc", content: x}', "is a directory, not a file"),
        ('{dest: "{{ base }}/x", content: x, when: "yes"}', "files[1].when must be true or false"),
    ):
        tasks = f"- name: Bad\n  alteo.hostops.files:\n    files:\n      - {entry}\n"
        rc, results = run(tmp_path, base, tasks=tasks)
        assert rc == 2, (entry, results)
        assert message.format(base=base) in results["Bad"]["msg"], (entry, results["Bad"])
    assert not (base / "x").exists()


def test_a_link_in_a_files_place_is_replaced_by_the_file(tmp_path: Path) -> None:
    """As on a fresh Debian host, where /etc/default/locale may be a link to nothing."""
    base = setup(tmp_path)
    dangling = base / "etc" / "locale"
    dangling.symlink_to(base / "etc" / "no-such-file")
    tasks = (
        "- name: Locale\n  alteo.hostops.files:\n    files:\n"
        '      - {dest: "{{ base }}/etc/locale", content: "LANG=C.UTF-8\\n", mode: "0644"}\n'
    )
    rc, results = run(tmp_path, base, "--check", "--diff", tasks=tasks)
    assert rc == 0 and results["Locale"]["changed"] is True, results
    assert dangling.is_symlink()  # check mode: reported, not replaced
    for expected in (True, False):
        rc, results = run(tmp_path, base, tasks=tasks)
        assert rc == 0 and results["Locale"]["changed"] is expected, results
        assert not dangling.is_symlink() and dangling.read_text() == "LANG=C.UTF-8\n"
        assert mode(dangling) == 0o644


SETTLED = """\
- name: Settled
  alteo.hostops.files:
    files:
      - dest: "{{ base }}/keys"
        state: directory
        mode: "0700"
        owner: "{{ me }}"
      - dest: "{{ base }}/keys/secret"
        content: "s3cret\\n"
        mode: "0600"
        group: "{{ my_group }}"
      - dest: "{{ base }}/keys/app.conf"
        template: app.conf.j2
        mode: "0640"
      - dest: "{{ base }}/keys/script.sh"
        copy: script.sh
"""


@pytest.mark.parametrize("strategy", [None, "ansible.builtin.linear"])
def test_on_the_controller_what_is_settled_needs_no_module_run(
    tmp_path: Path, strategy: str | None
) -> None:
    """A local connection (delegate_to: localhost): the action reads the files itself and
    starts no interpreter when every entry is as asked. Shown with an interpreter that does
    not exist: the task still succeeds when nothing differs, and fails (the module could not
    start) as soon as one thing differs, each in turn."""
    base = setup(tmp_path)
    names = [
        "-e", f"me={pwd.getpwuid(os.getuid()).pw_name}",
        "-e", f"my_group={grp.getgrgid(os.getgid()).gr_name}",
    ]  # fmt: skip
    no_python = ["-e", "ansible_python_interpreter=/nonexistent/python3"]
    rc, results = run(tmp_path, base, *names, tasks=SETTLED, strategy=strategy)
    assert rc == 0 and results["Settled"]["changed"] is True
    rc, by_module = run(tmp_path, base, *names, tasks=SETTLED, strategy=strategy)
    assert rc == 0 and by_module["Settled"]["changed"] is False  # the module's answer
    rc, settled = run(tmp_path, base, *names, *no_python, tasks=SETTLED, strategy=strategy)
    assert rc == 0, settled
    for key in ("changed", "results", "diff"):
        assert settled["Settled"][key] == by_module["Settled"][key], key
    assert "s3cret" not in json.dumps(settled)

    keys = base / "keys"
    secret = keys / "secret"
    for index in range(5):
        if index == 0:
            secret.write_text("other\n")
        elif index == 1:
            secret.chmod(0o640)
        elif index == 2:
            keys.chmod(0o750)
        elif index == 3:  # a link in the file's place
            secret.unlink()
            secret.symlink_to(keys / "script.sh")
        else:
            (keys / "app.conf").unlink()
        rc, results = run(tmp_path, base, *names, *no_python, tasks=SETTLED, strategy=strategy)
        assert rc != 0, (index, results)  # the module was needed, and could not start
        rc, results = run(tmp_path, base, *names, tasks=SETTLED, strategy=strategy)
        assert rc == 0 and results["Settled"]["changed"] is True, (index, results)
    assert secret.read_text() == "s3cret\n" and not secret.is_symlink()
    assert mode(secret) == 0o600 and mode(keys) == 0o700

    # become (the production inventory's ansible_become reaches the implicit localhost):
    # to root by root it is this process's user again, settled here; else the module's
    become = ["-e", "ansible_become=true", "-e", "ansible_become_user=root"]
    rc, results = run(tmp_path, base, *names, *no_python, *become, tasks=SETTLED, strategy=strategy)
    assert (rc == 0) is (os.geteuid() == 0), results
    # a path with a variable: the module expands it (its dest is a path), never settled here
    variable = SETTLED + '      - dest: "{{ base }}/keys/$HOSTOPS_NO_SUCH_VARIABLE"\n'
    variable += '        content: "x\\n"\n'
    rc, results = run(tmp_path, base, *names, tasks=variable, strategy=strategy)
    assert rc == 0 and (keys / "$HOSTOPS_NO_SUCH_VARIABLE").read_text() == "x\n", results
    rc, results = run(tmp_path, base, *names, *no_python, tasks=variable, strategy=strategy)
    assert rc != 0, results  # the same file, as asked: still the module's to say
