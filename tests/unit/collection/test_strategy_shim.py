"""The collection's strategy alteo.hostops.mitogen_linear loads, once in ansible-playbook's
own process, what each task's worker (forked from it) would load again (issue 20): every
installed collection's package (Mitogen's planner lists them for each task running a
collection's module) and the Jinja2 filter and test plugins. Run in a fresh interpreter,
so that nothing of this test session is already loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
COLLECTIONS = ROOT / "collections"

PROBE = """
import json, sys
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader, strategy_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
WATCHED = [
    "ansible_collections.community.general",  # a collection no code here imported yet
    "ansible_collections.alteo.hostops.plugins.filter.order_map",
    "ansible_collections.alteo.hostops.plugins.test.domain_name",
]
if len(sys.argv) > 1:  # a package that cannot load: the head start is given up, quietly
    shim._OWN_JINJA_PACKAGES = (sys.argv[1],)
before = [name in sys.modules for name in WATCHED]
builtin_before = any(name.startswith("ansible.plugins.test.core_") for name in sys.modules)
import ansible_mitogen.planner as planner
class Invocation:
    def __init__(self):
        self._extra_sys_paths = set()
listed, given = Invocation(), Invocation()
planner._load_collections(listed)  # Mitogen's own: lists them each time
original = planner._load_collections
shim._load_once()
planner._load_collections(given)
planner_paths = [sorted(listed._extra_sys_paths), sorted(given._extra_sys_paths)]
after = [name in sys.modules for name in WATCHED]
builtin_tests = any(name.startswith("ansible.plugins.test.core_") for name in sys.modules)
shim._OWN_JINJA_PACKAGES = ("no.such.package",)
shim._load_once()  # once per process: the second call does nothing (no error either)
print(json.dumps({
    "before": before, "after": after, "builtin_tests": [builtin_before, builtin_tests],
    "planner_paths": planner_paths, "planner_replaced": planner._load_collections is not original,
}))
"""


def run_script(code: str, *args: str) -> Any:
    """A Python script run in a fresh interpreter with the project's Ansible settings: the
    JSON of its last line of output (it must succeed)."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe(*args: str) -> dict[str, Any]:
    result: dict[str, Any] = run_script(PROBE, *args)
    return result


def test_the_strategy_loads_the_collections_and_jinja_plugins_once() -> None:
    result = probe()
    assert result["before"] == [False, False, False], result
    assert result["after"] == [True, True, True], result
    assert result["builtin_tests"] == [False, True], result
    # Mitogen's planner is given the list made once: the same paths as its own listing
    listed, given = result["planner_paths"]
    assert result["planner_replaced"] is True
    assert listed and given == listed, result
    assert any(path.endswith("ansible_collections/alteo/hostops") for path in given), given


def test_a_failed_head_start_does_not_stop_the_run() -> None:
    result = probe("ansible_collections.alteo.hostops.plugins.no_such_kind")
    # the collections were listed before the failing package; the run goes on
    assert result["after"][0] is True, result
    assert result["after"][1:] == [False, False], result


VARS_PROBE = """
import json, pathlib, sys
from ansible import constants as C
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play import Play
from ansible.plugins.loader import init_plugin_loader, strategy_loader
from ansible.vars.manager import VariableManager
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
base = pathlib.Path(sys.argv[1])
loader = DataLoader()
loader.set_basedir(str(base))
manager = VariableManager(loader=loader, inventory=InventoryManager(loader=loader, sources=[]))
def play(*files):
    data = {"name": "p", "hosts": "all", "gather_facts": False, "vars_files": list(files)}
    return Play.load(data, variable_manager=manager, loader=loader)
read = play("vars/plain.yml", ["vars/missing.yml", "vars/candidate.yml"])
shim._cache_vars_files(loader, play("vars/missing.yml"))  # left to Ansible, no error
before = manager.get_vars(play=read)
shim._cache_vars_files(loader, read)
(base / "vars" / "plain.yml").write_text("plain: written after\\n")
(base / "vars" / "candidate.yml").write_text("candidate: written after\\n")
after = manager.get_vars(play=read)
print(json.dumps({"before": [before["plain"], before["candidate"]],
                  "after": [after["plain"], after["candidate"]]}))
"""


def test_the_plays_plain_vars_files_are_read_once(tmp_path: Path) -> None:
    """Read ahead into Ansible's cache, a vars file named by a plain path is not read
    again for each task: a change written after the play started is not seen. A list of
    candidate files is left to Ansible, which reads the one it finds each time (the
    control)."""
    (tmp_path / "vars").mkdir()
    (tmp_path / "vars" / "plain.yml").write_text("plain: first\n")
    (tmp_path / "vars" / "candidate.yml").write_text("candidate: first\n")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
    }
    done = subprocess.run(
        [sys.executable, "-c", VARS_PROBE, str(tmp_path)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["before"] == ["first", "first"], result
    assert result["after"] == ["first", "written after"], result


# Skipped without a worker: the same results as the stock strategy, task by task. The
# conditions cover a plain false one, a block's and an include's inherited conditions, a
# magic variable the worker adds (ansible_host: true only with it), check mode, a loop
# (evaluated per item, by the worker), an undefined variable (the worker's error), a
# registered skip read by the next task, and a handler.
SKIPS = """
- name: Skips
  hosts: all
  gather_facts: false
  vars:
    flag: false
  tasks:
    - name: Plain false
      ansible.builtin.command: /bin/false
      when: flag
      register: plain
    - name: Read the registered skip
      ansible.builtin.assert:
        that: plain is skipped and plain.false_condition == 'flag'
    - name: True only with the magic variables
      ansible.builtin.debug:
        msg: runs
      when: ansible_host is defined
      changed_when: true
      notify: Handler that must not run
    - name: False in check mode only
      ansible.builtin.debug:
        msg: runs
      when: not ansible_check_mode
    - name: Loop, the condition per item
      ansible.builtin.debug:
        msg: "{{ item }}"
      loop: [1, 2]
      when: item > 1
    - name: Undefined variable in the condition
      ansible.builtin.debug:
        msg: never
      when: no_such_variable
      ignore_errors: true
    - name: A block that is skipped
      when: flag
      block:
        - name: In the skipped block
          ansible.builtin.command: /bin/false
    - name: Tasks of an include that is not skipped
      ansible.builtin.include_tasks: included.yml
      vars:
        inner: false
  handlers:
    - name: Handler that must not run
      ansible.builtin.command: /bin/false
      when: flag
"""

INCLUDED = """
- name: Inner false
  ansible.builtin.command: /bin/false
  when: inner
"""


def wrapper(patch: str, report: str) -> str:
    """A script that runs PATCH (code that starts counting something), then ansible-playbook
    with its own arguments, then writes REPORT (an expression) as a line on stderr."""
    return (
        f"import runpy, sys\n{patch.strip()}\n"
        'sys.argv = ["ansible-playbook", *sys.argv[1:]]\n'
        "try:\n"
        '    runpy.run_module("ansible.cli.playbook", run_name="__main__")\n'
        "finally:\n"
        f"    sys.stderr.write({report} + chr(10))\n"
    )


def counting_calls(owner_import: str, target: str, label: str) -> str:
    """A wrapper counting the calls to TARGET (``owner.attribute``, OWNER_IMPORT brings the
    owner in), reported as ``LABEL N``."""
    return wrapper(
        f"""
{owner_import}
count = [0]
original = {target}
def counting(*args, **kwargs):
    count[0] += 1
    return original(*args, **kwargs)
{target} = counting
""",
        f'"{label} " + str(count[0])',
    )


def logging_calls(owner_import: str, target: str, line: str) -> str:
    """A wrapper writing a line for each call to TARGET, a method (``Class.method(self,
    name, ...)``; OWNER_IMPORT brings the class in), in every process, to the file named by
    the environment's CALLS_FILE: LINE, an expression of ``self`` and ``name``."""
    return wrapper(
        f"""
import os
{owner_import}
original = {target}
def logging(self, name, *args, **kwargs):
    with open(os.environ["CALLS_FILE"], "a") as out:
        out.write({line} + chr(10))
    return original(self, name, *args, **kwargs)
{target} = logging
""",
        '""',
    )


def run_in_both(tmp_path: Path, calls: str, playbook: str) -> dict[str, tuple[Any, list[str]]]:
    """PLAYBOOK run through CALLS (a logging_calls wrapper) under the stock strategy and the
    collection's: by strategy, its JSON output and the calls' lines."""
    runs = {}
    for strategy in ("ansible.builtin.linear", "alteo.hostops.mitogen_linear"):
        logged = tmp_path / f"{strategy}.calls"
        done = run_wrapped(tmp_path, calls, playbook, strategy, CALLS_FILE=str(logged))
        runs[strategy] = (json.loads(done.stdout), logged.read_text().splitlines())
    return runs


WORKERS = counting_calls(
    "from ansible.executor.process import worker", "worker.WorkerProcess.start", "WORKERS"
)


def run_wrapped(
    tmp_path: Path, wrapper: str, playbook: str, strategy: str, *options: str, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook run through WRAPPER (a script that counts something, then runs it)
    for PLAYBOOK on the controller, JSON on stdout (inventory: localhost, unless the
    options name one); it must succeed."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_STRATEGY": strategy,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        **env_extra,
    }
    inventory = [] if "-i" in options else ["-i", "localhost,"]
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *inventory, "-c", "local", playbook, *options],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def run_counted(
    tmp_path: Path, playbook: str, strategy: str, *options: str, **env_extra: str
) -> tuple[dict[str, Any], int]:
    """ansible-playbook's JSON output for PLAYBOOK on the controller, and how many worker
    processes it started (inventory: localhost, unless the options name one)."""
    done = run_wrapped(tmp_path, WORKERS, playbook, strategy, *options, **env_extra)
    output: dict[str, Any] = json.loads(done.stdout)
    return output, int(done.stderr.rsplit("WORKERS ", 1)[1].split()[0])


def play_skips(tmp_path: Path, strategy: str, *options: str) -> tuple[list[Any], int]:
    (tmp_path / "play.yml").write_text(SKIPS)
    (tmp_path / "included.yml").write_text(INCLUDED)
    output, workers = run_counted(tmp_path, "play.yml", strategy, *options)
    keep = ("changed", "failed", "skipped", "skip_reason", "false_condition", "msg")
    tasks = [
        [task["task"]["name"], {k: v for k, v in task["hosts"]["localhost"].items() if k in keep}]
        for play in output["plays"]
        for task in play["tasks"]
    ]
    return tasks, workers


def test_a_false_condition_is_skipped_without_a_worker_as_the_stock_strategy_skips_it(
    tmp_path: Path,
) -> None:
    for options in ((), ("--check",)):
        stock, stock_workers = play_skips(tmp_path, "ansible.builtin.linear", *options)
        shim, shim_workers = play_skips(tmp_path, "alteo.hostops.mitogen_linear", *options)
        assert shim == stock, options
        # Plain false, the block's task and the include's task are skipped without a
        # worker (check mode: the check-mode-only skip too); the assert and the debug tasks
        # that run (or err) and the include run without one too (see below), and so do
        # the loop and the handler (a one-host play, see further below): ten fewer.
        assert stock_workers - shim_workers == 10, (stock, shim)
        assert shim_workers == 0, (stock, shim)
    names = [name for name, _ in stock]
    results = dict(stock)
    assert results["Plain false"]["skipped"] is True
    assert results["True only with the magic variables"].get("skipped") is None
    assert results["Undefined variable in the condition"]["failed"] is True
    assert "In the skipped block" in names and "Inner false" in names


# Run without a worker: tasks that read no host (assert, assert_each, debug, fail,
# include_vars, set_fact, set_stats, validate_argument_spec) give the stock strategy's
# results, registered values, facts, handlers and failures, with no worker of their own.
HERE = """
- name: Controller-only tasks
  hosts: all
  gather_facts: false
  vars:
    port: 8080
  tasks:
    - name: Set a fact
      ansible.builtin.set_fact:
        doubled: "{{ port * 2 }}"
    - name: Read the fact and the variables file
      ansible.builtin.include_vars:
        file: extra.yml
    - name: Assert on both
      ansible.builtin.assert:
        that: [doubled | int == 16160, extra_value == 'from the file']
        quiet: true
      register: asserted
    - name: Several checks
      alteo.hostops.assert_each:
        checks:
          - that: asserted is succeeded
            fail_msg: the assert did not pass
    - name: Validate arguments
      ansible.builtin.validate_argument_spec:
        argument_spec:
          port: {type: int, required: true}
        provided_arguments:
          port: "{{ port }}"
    - name: A failing assert, ignored
      ansible.builtin.assert:
        that: port == 1
        fail_msg: port is {{ port }}
      ignore_errors: true
    - name: Fail, ignored
      ansible.builtin.fail:
        msg: failed on purpose
      ignore_errors: true
      register: failed_on_purpose
    - name: A secret fact
      ansible.builtin.set_fact:
        secret: hidden value
      no_log: true
    - name: Changed, notifying a handler
      ansible.builtin.debug:
        msg: "{{ failed_on_purpose.msg }} / {{ secret | length }}"
      changed_when: true
      notify: Handler
    - name: Stats
      ansible.builtin.set_stats:
        data:
          port: "{{ port }}"
    - name: Undefined variable
      ansible.builtin.debug:
        msg: "{{ no_such_variable }}"
      ignore_errors: true
    - name: Include tasks
      ansible.builtin.include_tasks: inner.yml
      vars:
        inner_value: "{{ port + 1 }}"
    - name: Include a role
      ansible.builtin.include_role:
        name: little
      vars:
        little_value: "{{ port + 2 }}"
    - name: A command, in its worker
      ansible.builtin.command: /bin/true
      changed_when: false
  handlers:
    - name: Handler
      ansible.builtin.debug:
        msg: handled
"""


def play_here(tmp_path: Path, strategy: str, *options: str) -> tuple[list[Any], int]:
    (tmp_path / "here.yml").write_text(HERE)
    (tmp_path / "extra.yml").write_text("extra_value: from the file\n")
    (tmp_path / "inner.yml").write_text(
        "- name: Inner task\n  ansible.builtin.debug:\n    msg: inner {{ inner_value }}\n"
    )
    role = tmp_path / "roles" / "little" / "tasks"
    role.mkdir(parents=True, exist_ok=True)
    (role / "main.yml").write_text(
        "- name: Role task\n  ansible.builtin.set_fact:\n    from_role: '{{ little_value }}'\n"
        "- name: Role check\n  ansible.builtin.assert:\n    that: from_role | int == 8082\n"
    )
    output, workers = run_counted(tmp_path, "here.yml", strategy, *options)
    drop = ("start", "end", "duration", "_ansible_verbose_always", "_ansible_verbose_override")
    tasks: list[Any] = [
        [
            task["task"]["name"],
            {k: v for k, v in task["hosts"]["localhost"].items() if k not in drop},
        ]
        for play in output["plays"]
        for task in play["tasks"]
    ]
    for name, result in tasks:  # the module's run: Mitogen's differs in timings and keys
        if name == "A command, in its worker":
            result.clear()
            result["rc"] = 0
    tasks.append(["stats", output["global_custom_stats"], output["stats"]])
    return tasks, workers


def test_tasks_that_read_no_host_run_without_a_worker_as_the_stock_strategy_runs_them(
    tmp_path: Path,
) -> None:
    for options in ((), ("--check",)):
        stock, stock_workers = play_here(tmp_path, "ansible.builtin.linear", *options)
        shim, shim_workers = play_here(tmp_path, "alteo.hostops.mitogen_linear", *options)
        assert shim == stock, options
        # eleven controller-only tasks, two includes and their three tasks run here, and so
        # do the command and the handler (a one-host play, see below)
        assert stock_workers - shim_workers == 18, (stock_workers, shim_workers)
        assert shim_workers == 0
    results = {name: result for name, result, *_ in stock}
    assert results["Assert on both"]["msg"] == "All assertions passed"
    assert results["A failing assert, ignored"]["failed"] is True
    assert results["A failing assert, ignored"]["msg"] == "port is 8080"
    assert results["A secret fact"]["censored"].startswith("the output has been hidden")
    assert results["Changed, notifying a handler"]["msg"] == "failed on purpose / 12"
    assert results["Handler"]["msg"] == "handled"
    assert results["Inner task"]["msg"] == "inner 8081"
    assert results["little : Role check"]["msg"] == "All assertions passed"
    assert results["Undefined variable"]["failed"] is True
    # the play's recap (ok, changed, failures ignored) is compared with the results above
    assert stock[-1][2]["localhost"]["ignored"] == 3, stock[-1]


# Run in ansible-playbook's own process: every task of a one-host play (module tasks too,
# with a loop, retries, delegation, a handler), through Mitogen's connection as in a worker;
# a play of two hosts keeps its workers. Results, recap and the order of the callbacks (what
# ansible-runner makes its events of) are the stock strategy's.
ONE_HOST = """
- name: One host
  hosts: one
  gather_facts: false
  tasks:
    # checks that gather the facts they need first: they read the host, so they are run
    # as a module task is (and the tasks after them reach the host as before)
    - name: Checks that gather
      alteo.hostops.assert_each:
        gather_subset: [min]
        checks:
          - that: ansible_facts.system == 'Linux'
            fail_msg: not Linux
    - name: A command
      ansible.builtin.command: echo one
      register: one
      changed_when: false
    - name: A directory
      ansible.builtin.file:
        path: "{{ playbook_dir }}/made"
        state: directory
        mode: "0755"
    - name: A file, notifying a handler
      ansible.builtin.copy:
        content: "{{ one.stdout | default('check') }}"
        dest: "{{ playbook_dir }}/made/file"
        mode: "0644"
      notify: Handler
    - name: A loop, one item failing, ignored
      ansible.builtin.command: "echo {{ item }}"
      loop: [a, b, c]
      failed_when: item == 'b'
      changed_when: false
      ignore_errors: true
    - name: Retried until it holds
      ansible.builtin.shell: test -f tried || { touch tried; exit 1; }
      args:
        chdir: "{{ playbook_dir }}"
      register: tried
      until: tried.rc == 0
      retries: 2
      delay: 0
      changed_when: false
    - name: Delegated to the controller
      ansible.builtin.command: echo delegated
      delegate_to: localhost
      changed_when: false
    - name: A secret
      ansible.builtin.command: echo secret
      no_log: true
      changed_when: false
    - name: A failure, ignored
      ansible.builtin.command: /bin/false
      ignore_errors: true
  handlers:
    - name: Handler
      ansible.builtin.command: echo handled
      changed_when: false

- name: Two hosts
  hosts: two
  gather_facts: false
  tasks:
    - name: On both
      ansible.builtin.command: echo both
      changed_when: false
"""

INVENTORY = """
[one]
localhost
[two]
first ansible_host=127.0.0.1
second ansible_host=127.0.0.1
"""

ORDER_CALLBACK = '''
import json
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: order
short_description: the order of the callbacks, to a file
description: [the order of the callbacks, to a file]
type: aggregate
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "order"
    CALLBACK_NEEDS_ENABLED = True

    def _log(self, *event):
        with open("callbacks.jsonl", "a") as stream:
            stream.write(json.dumps(event) + chr(10))

    def v2_runner_on_start(self, host, task):
        self._log("start", host.name, task.get_name())

    def _result(self, name, result):
        self._log(name, result.host.name, result.task_name, result.result.get("item"))

    def v2_runner_on_ok(self, result):
        self._result("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result("failed", result)

    def v2_runner_on_skipped(self, result):
        self._result("skipped", result)

    def v2_runner_item_on_ok(self, result):
        self._result("item ok", result)

    def v2_runner_item_on_failed(self, result):
        self._result("item failed", result)

    def v2_runner_retry(self, result):
        self._result("retry", result)
'''


def play_one_host(tmp_path: Path, strategy: str, *options: str) -> tuple[list[Any], int]:
    here = tmp_path / f"{strategy}{''.join(options)}"
    (here / "callback_plugins").mkdir(parents=True)
    (here / "callback_plugins" / "order.py").write_text(ORDER_CALLBACK)
    (here / "one.yml").write_text(ONE_HOST)
    (here / "hosts.ini").write_text(INVENTORY)
    output, workers = run_counted(
        here, "one.yml", strategy, "-i", "hosts.ini", *options,
        ANSIBLE_CALLBACKS_ENABLED="order",
        ANSIBLE_CALLBACK_PLUGINS=str(here / "callback_plugins"),
    )  # fmt: skip
    keep = (
        "changed", "failed", "skipped", "msg", "rc", "stdout", "attempts", "censored",
        "item", "results", "ansible_loop_var",
    )  # fmt: skip
    tasks: list[Any] = []
    for play in output["plays"]:
        for task in play["tasks"]:
            for host, result in sorted(task["hosts"].items()):
                kept = {key: value for key, value in result.items() if key in keep}
                if "results" in kept:
                    kept["results"] = [
                        {key: value for key, value in item.items() if key in keep}
                        for item in kept["results"]
                    ]
                tasks.append([task["task"]["name"], host, kept])
    tasks.append(["stats", output["stats"]])
    events = [json.loads(line) for line in (here / "callbacks.jsonl").read_text().splitlines()]
    one = [event for event in events if event[1] == "localhost"]
    two = sorted(event for event in events if event[1] != "localhost")
    tasks.append(["callbacks", one, two])
    return tasks, workers


def test_a_one_host_play_runs_its_tasks_without_workers_as_the_stock_strategy_runs_them(
    tmp_path: Path,
) -> None:
    runs = {}
    for options in (("--check",), ()):
        stock, stock_workers = play_one_host(tmp_path, "ansible.builtin.linear", *options)
        shim, shim_workers = play_one_host(tmp_path, "alteo.hostops.mitogen_linear", *options)
        assert shim == stock, options
        assert shim_workers == 2, (stock_workers, shim_workers)  # the two-host play's
        assert stock_workers == 12, (stock_workers, shim_workers)
        runs[options] = stock
    checked = {name: result for name, _, result, *_ in runs[("--check",)][:-2]}
    assert checked["A command"]["skipped"] is True  # check mode: commands are not run
    assert checked["A directory"]["changed"] is True
    results = {(name, host): result for name, host, result, *_ in stock[:-2]}
    assert results[("A command", "localhost")]["stdout"] == "one"
    looped = results[("A loop, one item failing, ignored", "localhost")]["results"]
    assert [item["failed"] for item in looped] == [False, True, False]
    assert results[("Retried until it holds", "localhost")]["attempts"] == 2
    assert results[("A secret", "localhost")]["censored"].startswith("the output has been")
    assert results[("On both", "first")]["stdout"] == "both"
    assert results[("On both", "second")]["stdout"] == "both"
    callbacks = stock[-1][1]
    assert ["retry", "localhost", "Retried until it holds", None] in callbacks
    assert ["item failed", "localhost", "A loop, one item failing, ignored", "b"] in callbacks
    loop = "A loop, one item failing, ignored"
    assert callbacks.index(["start", "localhost", loop]) < callbacks.index(
        ["item ok", "localhost", loop, "a"]
    )
    assert ["ok", "localhost", "Handler", None] in callbacks


# On a machine of 2 or 3 CPUs Mitogen pins ansible-playbook, its workers and what its
# connections start to the CPUs its multiplexer does not have (on 2 CPUs: all on one); the
# collection's strategy leaves their placement to the system there, and Mitogen's on larger
# machines. Seen from a command's process: its CPUs under Mitogen's own strategy (the
# control) and under the collection's.
AFFINITY = """
- name: Where commands may run
  hosts: two
  gather_facts: false
  tasks:
    - name: Read the allowed CPUs
      ansible.builtin.command: grep Cpus_allowed_list /proc/self/status
      changed_when: false
"""

POLICY_PROBE = """
import json, os, sys
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader, strategy_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
import ansible_mitogen.affinity as affinity
os.cpu_count = lambda: int(sys.argv[1])
before = type(affinity.policy).__name__
shim._no_cpu_pinning_on_a_small_machine()
print(json.dumps([before, type(affinity.policy).__name__]))
"""


def cpus_of_commands(tmp_path: Path, strategy: str, **env: str) -> set[str]:
    (tmp_path / "affinity.yml").write_text(AFFINITY)
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    output, _ = run_counted(tmp_path, "affinity.yml", strategy, "-i", "hosts.ini", **env)
    return {
        result["stdout"].split(":", 1)[1].strip()
        for result in output["plays"][0]["tasks"][0]["hosts"].values()
    }


def test_the_strategy_leaves_cpu_placement_to_the_system_on_a_small_machine(
    tmp_path: Path,
) -> None:
    for cpus, after in (("2", "Policy"), ("3", "Policy"), ("4", "LinuxPolicy")):
        done = subprocess.run(
            [sys.executable, "-c", POLICY_PROBE, cpus],
            env={**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS)},
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1]) == ["LinuxPolicy", after], cpus
    if not 2 <= (os.cpu_count() or 1) <= 3:
        return  # a larger machine keeps Mitogen's placement: the probe above says so
    import ansible_mitogen  # noqa: PLC0415

    status = Path("/proc/self/status").read_text()
    mine = status.split("Cpus_allowed_list:")[1].split()[0]
    mitogens = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    pinned = cpus_of_commands(tmp_path, "mitogen_linear", ANSIBLE_STRATEGY_PLUGINS=str(mitogens))
    assert pinned and mine not in pinned, (mine, pinned)  # the control: Mitogen pins them
    assert cpus_of_commands(tmp_path, "alteo.hostops.mitogen_linear") == {mine}


# Tasks run in ansible-playbook's own process keep the host's context between them instead
# of asking Mitogen's multiplexer for it at each task's start and giving it back at its end;
# they ask again after a reset and after a task that lost its host. A module's
# dependencies are asked for once. Counted in ansible-playbook's process: the requests it
# sends the multiplexer, by method.
KEPT = """
- name: Kept contexts
  hosts: localhost
  gather_facts: false
  tasks:
    - name: First
      ansible.builtin.command: echo first
      changed_when: false
    - name: A loop
      ansible.builtin.command: echo {{ item }}
      loop: [a, b, c]
      changed_when: false
    - name: Write the interpreter's process
      ansible.builtin.shell: echo $PPID > "{{ playbook_dir }}/before"
      changed_when: false
    - name: Same interpreter
      ansible.builtin.shell: test "$PPID" = "$(cat '{{ playbook_dir }}/before')"
      changed_when: false
    - name: Reset the connection
      ansible.builtin.meta: reset_connection
    - name: A new interpreter after the reset
      ansible.builtin.shell: test "$PPID" != "$(cat '{{ playbook_dir }}/before')"
      changed_when: false
    - name: The host's interpreter dies
      ansible.builtin.shell: kill -9 $PPID
      ignore_unreachable: true
      ignore_errors: true
    - name: The next task gets a new one
      ansible.builtin.command: echo again
      changed_when: false

""" + ONE_HOST[ONE_HOST.index("- name: Two hosts") :]  # a play of two hosts (workers)

REQUESTS = wrapper(
    """
import collections
import mitogen.service
asked = collections.Counter()
call = mitogen.service.call
def counting(service_name, method_name, call_context=None, **kwargs):
    asked[f"{str(service_name).rsplit('.', 1)[-1]}.{method_name}"] += 1
    return call(service_name, method_name, call_context=call_context, **kwargs)
mitogen.service.call = counting
""",
    '"ASKED " + " ".join(f"{k}={v}" for k, v in sorted(asked.items()))',
)


def test_one_host_tasks_keep_their_context_and_ask_again_when_it_is_gone(
    tmp_path: Path,
) -> None:
    (tmp_path / "kept.yml").write_text(KEPT)
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    done = run_wrapped(
        tmp_path, REQUESTS, "kept.yml", "alteo.hostops.mitogen_linear", "-i", "hosts.ini"
    )
    output = json.loads(done.stdout)
    results = {
        (task["task"]["name"], host): result
        for play in output["plays"]
        for task in play["tasks"]
        for host, result in task["hosts"].items()
    }
    for name in ("First", "A loop", "Same interpreter", "A new interpreter after the reset"):
        assert not results[(name, "localhost")].get("failed"), results[(name, "localhost")]
    died = results[("The host's interpreter dies", "localhost")]
    assert died.get("unreachable") or died.get("failed"), died  # the control: it did die
    assert results[("The next task gets a new one", "localhost")]["stdout"] == "again"
    assert results[("On both", "first")]["stdout"] == "both"
    assert results[("On both", "second")]["stdout"] == "both"
    asked = dict(
        item.split("=") for item in done.stderr.rsplit("ASKED ", 1)[1].split("\n")[0].split()
    )
    # the one-host play: three contexts (at the start, after the reset, after the death),
    # each asked for once and given back; Mitogen's own way asks and gives back at every
    # task (seven tasks with a connection, nine module runs). The two-host play's workers
    # ask in their own processes, not counted here.
    assert int(asked["ContextService.get"]) == 3, asked
    assert int(asked["ContextService.put"]) == 3, asked
    # command and shell are one module: its dependencies asked for once in the run
    assert int(asked["ModuleDepService.scan"]) == 1, asked


FACTS = """
- name: Facts set, changed, given and forgotten
  hosts: one
  gather_facts: true
  tasks:
    - name: A cacheable fact
      ansible.builtin.set_fact:
        colour: blue
        cacheable: true
    - name: Read the facts
      ansible.builtin.debug:
        msg: "{{ ansible_facts.system }} {{ colour }} {{ ansible_facts.colour }}"
    - name: Change the fact
      ansible.builtin.set_fact:
        colour: green
        cacheable: true
    - name: Read them again
      ansible.builtin.debug:
        msg: "{{ ansible_facts.colour }} {{ item }}"
      loop: [1, 2, 3]
    - name: A fact given to another host
      ansible.builtin.set_fact:
        given: "from {{ inventory_hostname }}"
        cacheable: true
      delegate_to: first
      delegate_facts: true
    - name: Forget the facts
      ansible.builtin.meta: clear_facts
    - name: Read them after forgetting
      ansible.builtin.debug:
        msg: >-
          {{ ansible_facts.colour | default('forgotten') }}
          {{ ansible_facts.system | default('none') }}
    - name: Gather again
      ansible.builtin.setup:
        gather_subset: [min]
    - name: Read the gathered facts
      ansible.builtin.debug:
        msg: "{{ ansible_facts.system }} {{ ansible_facts.colour | default('forgotten') }}"
"""
READS = "".join(  # the facts read for each task and host: 20 reads of the same facts
    f"    - name: Read {n}\n"
    "      ansible.builtin.debug:\n"
    "        msg: '{{ ansible_facts.system }}'\n"
    for n in range(20)
)
TWO_HOSTS = """
- name: Two hosts
  hosts: two
  gather_facts: false
  tasks:
    - name: The fact given to the first
      ansible.builtin.debug:
        msg: "{{ ansible_facts.given | default('none') }}"
    - name: More reads
      ansible.builtin.debug:
        msg: "{{ hostvars['localhost'].ansible_facts.system }} {{ item }}"
      loop: [1, 2]
"""
FACTS += READS + TWO_HOSTS

DECODES = counting_calls(
    "from ansible._internal._plugins import _cache", "_cache.PluginInterposer._decode", "DECODES"
)


def play_facts(tmp_path: Path, strategy: str, cache: str) -> tuple[list[Any], int]:
    here = tmp_path / f"{strategy}-{cache}"
    here.mkdir()
    (here / "facts.yml").write_text(FACTS)
    (here / "hosts.ini").write_text(INVENTORY)
    done = run_wrapped(
        here, DECODES, "facts.yml", strategy, "-i", "hosts.ini",
        ANSIBLE_CACHE_PLUGIN=cache, ANSIBLE_CACHE_PLUGIN_CONNECTION=str(here / "cache"),
    )  # fmt: skip
    output = json.loads(done.stdout)
    said = [
        [
            task["task"]["name"],
            host,
            result.get("msg"),
            [i["msg"] for i in result.get("results", ())],
        ]
        for play in output["plays"]
        for task in play["tasks"]
        for host, result in sorted(task["hosts"].items())
    ]
    return said, int(done.stderr.rsplit("DECODES ", 1)[1].split()[0])


def test_facts_are_decoded_once_each_time_they_are_set_and_read_as_the_stock_strategy_reads_them(
    tmp_path: Path,
) -> None:
    for cache in ("jsonfile", "memory"):  # ansible-runner's (hostops' runs), Ansible's default
        stock, stock_decodes = play_facts(tmp_path, "ansible.builtin.linear", cache)
        shim, shim_decodes = play_facts(tmp_path, "alteo.hostops.mitogen_linear", cache)
        assert shim == stock, cache
        said = {(name, host): (msg, items) for name, host, msg, items in stock}
        assert said[("Read the facts", "localhost")][0] == "Linux blue blue"
        assert said[("Read them again", "localhost")][1] == ["green 1", "green 2", "green 3"]
        assert said[("Read them after forgetting", "localhost")][0] == "forgotten none"
        assert said[("Read the gathered facts", "localhost")][0] == "Linux forgotten"
        assert said[("The fact given to the first", "first")][0] == "from localhost"
        assert said[("The fact given to the first", "second")][0] == "none"
        if cache == "jsonfile":  # a persistent cache: Ansible 2.19 decodes it at each read
            # five sets (the gathering, two set_facts, the given fact, setup again), against
            # a decoding for each task and host that reads facts (the 20 reads and more)
            assert shim_decodes <= 6, (stock_decodes, shim_decodes)
            assert stock_decodes >= shim_decodes + 20, (stock_decodes, shim_decodes)


# Mitogen's multiplexer lists the module_utils a module imports before its first run,
# compiling every file the module's imports reach, for each module; under the collection's
# strategy each file is compiled once a run. Its lists are those of Mitogen's own scan
# (the control, before the strategy is loaded), for modules that share most of their files.
SCAN_PROBE = """
import builtins, json, sys
from pathlib import Path
from ansible import constants as C
from ansible.executor.module_common import _MODULE_UTILS_PATH
from ansible.plugins.loader import init_plugin_loader, strategy_loader
import ansible.modules
import ansible_mitogen.module_finder as finder
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
modules = Path(ansible.modules.__file__).parent
names = ["command", "stat", "file", "setup", "hostname"]
compiled = []
stock_compile = builtins.compile
def counting(source, filename, *args, **kwargs):
    compiled.append(filename)
    return stock_compile(source, filename, *args, **kwargs)
builtins.compile = counting
def scan_all():
    del compiled[:]
    lists = [
        finder.scan("ansible_module_" + name, str(modules / (name + ".py")), (_MODULE_UTILS_PATH,))
        for name in names
    ]
    return lists, list(compiled)
stock, stock_compiled = scan_all()
shim._load_once()
once, once_compiled = scan_all()
again, again_compiled = scan_all()
print(json.dumps({
    "same": stock == once == again,
    "utils": len({path for found in once for _, path, _ in found}),
    "compiled": [
        len(stock_compiled), len(once_compiled), len(set(once_compiled)), len(again_compiled)
    ],
}))
"""


def test_a_run_compiles_each_module_utils_file_once_to_list_modules_imports() -> None:
    found = run_script(SCAN_PROBE)
    assert found["same"] is True  # the same module_utils, for each module
    stock, once, distinct, again = found["compiled"]
    assert found["utils"] >= 40  # what ansible.module_utils.basic and the rest reach
    assert once == distinct  # each file compiled once: the 5 modules and their module_utils
    assert once <= found["utils"] + 5
    assert stock >= 2 * once, found  # the control: Mitogen's scan compiles them again
    assert again == 0  # the same modules listed again compile nothing


# Each task's templating has a Jinja2 environment of its own, whose filters and tests are
# found through the plugin loader at their first use: under the collection's strategy a
# name is found once a run, and what the templates make of them is the stock strategy's.
# A role's filter_plugins directory, added to the loader mid-run, is found after it is
# added (the names found before are forgotten), and an unknown filter still fails.
JINJA = """
- name: Filters and tests
  hosts: localhost
  gather_facts: false
  vars:
    words: [b, a, c]
  tasks:
    - name: First use
      ansible.builtin.debug:
        msg: "{{ words | sort | join(',') }} {{ words | length is even }} {{ 'x' | default('y') }}"
    - name: Again
      ansible.builtin.debug:
        msg: "{{ words | sort | join }} {{ words | length is odd }} {{ nothing | default('y') }}"
    - name: A collection's filter
      ansible.builtin.debug:
        msg: "{{ 'web01.example.fr' | alteo.hostops.order_map_domain | default('none') }}"
      ignore_errors: true
    - name: Again, a loop
      ansible.builtin.debug:
        msg: "{{ item | sort | join('') }} {{ item is iterable }}"
      loop: [[z, y], [b, a]]
    - name: A role's own filter
      ansible.builtin.include_role:
        name: shouting
    - name: An unknown filter fails as before
      ansible.builtin.debug:
        msg: "{{ 'a' | no_such_filter }}"
      ignore_errors: true
"""

SHOUTING = """
def shout(text):
    return str(text).upper() + "!"


class FilterModule:
    def filters(self):
        return {"shout": shout}
"""

# Counted in every process (the stock strategy templates in its workers): a line a find.
FINDS = logging_calls(
    "from ansible.plugins.loader import Jinja2Loader", "Jinja2Loader.get_with_context", "name"
)


def test_a_run_finds_each_jinja_plugin_once_and_templates_as_the_stock_strategy(
    tmp_path: Path,
) -> None:
    (tmp_path / "jinja.yml").write_text(JINJA)
    role = tmp_path / "roles" / "shouting"
    (role / "tasks").mkdir(parents=True)
    (role / "filter_plugins").mkdir()
    (role / "filter_plugins" / "shouting.py").write_text(SHOUTING)
    (role / "tasks" / "main.yml").write_text(
        "- name: Shout\n  ansible.builtin.debug:\n    msg: \"{{ 'hi' | shout }}\"\n"
    )
    said, finds = {}, {}
    for strategy, (output, finds[strategy]) in run_in_both(tmp_path, FINDS, "jinja.yml").items():
        said[strategy] = [
            (task["task"]["name"], result.get("msg"), result.get("failed", False),
             [item.get("msg") for item in result.get("results", ())])
            for play in output["plays"]
            for task in play["tasks"]
            for result in task["hosts"].values()
        ]  # fmt: skip
    stock, shim = said["ansible.builtin.linear"], said["alteo.hostops.mitogen_linear"]
    assert shim == stock
    messages = {name: (msg, failed, items) for name, msg, failed, items in stock}
    assert messages["First use"][0] == "a,b,c False x"
    assert messages["Again"][0] == "abc True y"
    assert messages["Again, a loop"][2] == ["yz True", "ab True"]
    assert [msg for name, (msg, _, _) in messages.items() if name.endswith("Shout")] == ["HI!"]
    assert messages["An unknown filter fails as before"][1] is True
    once = finds["alteo.hostops.mitogen_linear"]
    assert once.count("sort") == 1, once  # found once, used in three tasks
    assert once.count("shout") == 1, once
    assert once.count("no_such_filter") == 1, once  # (the one task that asks for it)
    # the control: the stock strategy finds the names again in each task (and item)
    assert finds["ansible.builtin.linear"].count("sort") >= 3, finds


# A plugin's name is resolved once a run under the collection's strategy (the stock one
# resolves it at each use): the same results, and a role's library directory, added
# mid-run, still gives the role's own module for a name found before it (ping).
FINDS_PLAYBOOK = """
- name: Plugins found again and again
  hosts: localhost
  gather_facts: false
  tasks:
    - name: A module
      ansible.builtin.command: echo one
      changed_when: false
    - name: The same module
      ansible.builtin.command: echo two
      changed_when: false
    - name: Ping, Ansible's
      ping:
    - name: A role with a ping of its own
      ansible.builtin.include_role:
        name: pinging
    - name: Ping after the role, in the play
      ping:
"""

OWN_PING = """#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule

AnsibleModule(argument_spec={}).exit_json(changed=False, ping="the role's own")
"""

RESOLVES = logging_calls(
    "from ansible.plugins.loader import PluginLoader",
    "PluginLoader._resolve_plugin_step",
    'self.type + " " + name',
)


def test_a_run_resolves_each_plugin_once_and_a_roles_library_still_wins(tmp_path: Path) -> None:
    (tmp_path / "finds.yml").write_text(FINDS_PLAYBOOK)
    role = tmp_path / "roles" / "pinging"
    (role / "tasks").mkdir(parents=True)
    (role / "library").mkdir()
    (role / "library" / "ping.py").write_text(OWN_PING)
    (role / "tasks" / "main.yml").write_text("- name: Ping, the role's\n  ping:\n")
    said, resolves = {}, {}
    for strategy, (output, resolves[strategy]) in run_in_both(
        tmp_path, RESOLVES, "finds.yml"
    ).items():
        said[strategy] = [
            (task["task"]["name"], result.get("ping"), result.get("stdout"))
            for play in output["plays"]
            for task in play["tasks"]
            for result in task["hosts"].values()
        ]
    stock, shim = said["ansible.builtin.linear"], said["alteo.hostops.mitogen_linear"]
    assert shim == stock
    pings = {name: ping for name, ping, _ in stock if ping}
    assert pings["Ping, Ansible's"] == "pong"
    assert [ping for name, ping in pings.items() if name.endswith("Ping, the role's")] == [
        "the role's own"
    ]
    once = resolves["alteo.hostops.mitogen_linear"]
    stock_resolves = resolves["ansible.builtin.linear"]
    # the control: the stock strategy resolves the command module's action again per task
    assert stock_resolves.count("action ansible.builtin.command") >= 2, stock_resolves
    # (both resolve each task's action once as they read the playbook, before a run)
    for name in ("action ansible.builtin.command", "shell sh", "action ping"):
        assert stock_resolves.count(name) >= once.count(name) + 4, (name, once, stock_resolves)
    assert len(once) < len(stock_resolves), (len(once), len(stock_resolves))


# ansible-playbook's own script, with an object that reports Python's teardown of the
# run's objects (its __del__, called only when the interpreter frees it at exit).
TEARDOWN = """
import os, sys
class Mark:
    def __init__(self):
        self.fd = os.open("freed", os.O_WRONLY | os.O_CREAT, 0o600)
    def __del__(self, write=os.write):  # (the module's globals may be gone by then)
        write(self.fd, b"freed")
mark = Mark()
sys.argv = ["ansible-playbook", *sys.argv[1:]]
from ansible.cli.playbook import main
sys.exit(main())
"""

OK_OR_FAIL = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: A task that succeeds
      ansible.builtin.command: "true"
      changed_when: false
    - name: A task that fails when asked to
      ansible.builtin.fail:
        msg: failed as asked
      when: fail | bool
"""


Exit = tuple[int, dict[str, Any], bool, list[str]]


def exit_of(tmp_path: Path, strategy: str, fail: bool) -> Exit:
    """ansible-playbook's exit status, its JSON output, whether Python freed the run's
    objects at exit and what is left of Ansible's local temporary directories."""
    here = tmp_path / f"{strategy}-{fail}"
    (here / "tmp").mkdir(parents=True)
    (here / "play.yml").write_text(OK_OR_FAIL)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
        "ANSIBLE_STRATEGY": strategy,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_LOCAL_TEMP": str(here / "tmp"),
    }
    done = subprocess.run(
        [sys.executable, "-c", TEARDOWN, "-i", "localhost,", "-c", "local", "play.yml",
         "-e", f"fail={fail}"],
        env=env, cwd=here, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    output = json.loads(done.stdout)  # all of it written out before the end
    freed = (here / "freed").read_text() == "freed"
    return done.returncode, output["stats"]["localhost"], freed, [
        path.name for path in (here / "tmp").iterdir()
    ]


def test_ansible_playbook_ends_with_its_status_without_freeing_the_runs_objects(
    tmp_path: Path,
) -> None:
    """Under Mitogen the strategy ends ansible-playbook once its exit handlers have run,
    without Python's teardown of every object (about 0.3 s a run); its exit status, its
    output and the removal of its temporary directory are the stock strategy's."""
    for fail, status in ((False, 0), (True, 2)):
        stock = exit_of(tmp_path, "linear", fail)
        ours = exit_of(tmp_path, "alteo.hostops.mitogen_linear", fail)
        # the control: the stock strategy's process frees its objects at exit
        assert stock[2] is True, stock
        assert ours[2] is False, ours
        assert stock[0] == ours[0] == status, (stock, ours)
        assert stock[1] == ours[1], (stock, ours)
        assert stock[1]["failures"] == int(fail), stock
        # Ansible's exit handler removed its temporary directory under either strategy
        assert stock[3] == ours[3] == [], (stock, ours)


# The strategy's exit set up in a process that then records a status, catches its
# SystemExit, and ends with an exception or an exit status of its own.
EXIT_CASES = """
import atexit, sys
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader, strategy_loader
atexit.register(lambda: sys.stderr.write("handler before\\n"))
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
shim._exit_without_teardown()
atexit.register(lambda: sys.stderr.write("handler after\\n"))
try:
    sys.exit(0)  # recorded, then caught and forgotten
except SystemExit:
    pass
if sys.argv[1] == "raise":
    raise RuntimeError("ended by an exception")
sys.exit(int(sys.argv[1]))
"""


def test_an_exception_after_a_recorded_status_is_pythons_to_report() -> None:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
    }
    ends = {}
    for how in ("raise", "3", "0"):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_CASES, how],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        handlers = [line for line in done.stderr.splitlines() if line.startswith("handler")]
        raised = "RuntimeError: ended by an exception" in done.stderr
        ends[how] = (done.returncode, raised, sorted(handlers))
    # the last status given wins (the controls), an uncaught exception exits 1 as Python's;
    # every other exit handler runs once, whichever ends the process
    once = ["handler after", "handler before"]
    assert ends == {"raise": (1, True, once), "3": (3, False, once), "0": (0, False, once)}, ends


LOADER_PROBE = """
import json, sys
from ansible import constants as C
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, strategy_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
stock = DataLoader.load_from_file
shim._copy_loaded_files_faster()
wrapped = DataLoader.load_from_file
shim._copy_loaded_files_faster()  # once: the second call wraps nothing again
loader = DataLoader()
first = loader.load_from_file(sys.argv[1], trusted_as_template=True)
first["defaults"]["list"].append("changed")
second = loader.load_from_file(sys.argv[1], trusted_as_template=True)
kept = loader.load_from_file(sys.argv[1], unsafe=True)
print(json.dumps({
    "replaced": DataLoader.load_from_file is not stock,
    "wrapped_once": DataLoader.load_from_file is wrapped,
    "first": first["defaults"]["list"][-1], "second": second["defaults"]["list"][-1],
    "unsafe_is_kept": kept is loader._FILE_CACHE[loader.path_dwim(sys.argv[1])],
    "second_is_not_kept": second is not kept and second["defaults"] is not kept["defaults"],
}))
"""


def test_the_strategy_gives_the_loader_a_copy_that_shares_nothing_mutable(tmp_path: Path) -> None:
    """plugin_utils/parsed_copy.py (tests/unit/collection/test_parsed_copy.py): a caller's
    change stays in its copy, neither in the loader's kept data nor in the next copy."""
    path = tmp_path / "tasks.yml"
    path.write_text("defaults:\n  list: [a, b]\n")
    result = run_script(LOADER_PROBE, str(path))
    assert result["replaced"] is True
    assert result["wrapped_once"] is True
    assert result["first"] == "changed"  # the caller's change is in its copy
    assert result["second"] != "changed"  # not in the loader's kept data nor the next copy
    assert result["unsafe_is_kept"] is True  # unsafe=True: the kept data, as Ansible's
    assert result["second_is_not_kept"] is True


CONTROL_PATH_PROBE = """
import json, os, pathlib, stat, sys
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader, strategy_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
from ansible_mitogen import connection
stock = dict(connection.CONNECTION_METHOD)
shim._load_once()
methods = connection.CONNECTION_METHOD
first = methods["ssh"]
shim._ssh_control_path()  # a second time: wrapped once
base = pathlib.Path(sys.argv[1])
persist = ["-o", "ControlMaster=auto", "-o", "ControlPersist=120s"]
def path_of(args):
    return args[len(persist) + 1] if len(args) > len(persist) else None
def cp(args, directory, path=None, host="h", port=22, user="u"):
    return shim.with_control_path(args, str(directory), path, host=host, port=port, user=user)
deeper = base / "cp" / "deeper"
added = cp(persist, deeper, host="192.0.2.7", port=None, user="root")
again = cp(persist, deeper, host="192.0.2.7", port=None, user="root")
other_user = cp(persist, deeper, host="192.0.2.7", port=None, user="ops")
joined = cp(["-oControlPersist=60"], base / "joined", port=2222)
named = cp(persist, base / "named", "%(directory)s/%%h-%%r")
given = persist + ["-o", "ControlPath=/elsewhere/%C"]
(base / "a-file").write_text("not a directory")
print(json.dumps({
    "replaced": methods["ssh"] is not stock["ssh"] and methods["smart"] is methods["ssh"],
    "wrapped_once": methods["ssh"] is first and methods["smart"] is first,
    "added": added[:len(persist)] == persist and added[len(persist)] == "-o",
    "path": path_of(added), "again": path_of(again), "other_user": path_of(other_user),
    "dir_mode": stat.S_IMODE(os.stat(base / "cp" / "deeper").st_mode),
    "joined": joined, "named": named,
    "given": cp(given, base / "given") == given,
    "given_dir": (base / "given").exists(),
    "no_persist": cp(["-o", "ServerAliveInterval=15"], base / "np"),
    "no_persist_dir": (base / "np").exists(),
    "not_a_dir": cp(persist, base / "a-file"),
}))
"""


def test_mitogens_ssh_gets_the_control_path_the_stock_connection_would_add(
    tmp_path: Path,
) -> None:
    """Under Mitogen, the SSH client gets a ControlPath where the stock ssh connection adds
    one (ControlPersist given, no ControlPath), so that the next run reuses the master;
    tests/integration/test_lab.py checks the masters on real hosts."""
    result = run_script(CONTROL_PATH_PROBE, str(tmp_path))
    assert result["replaced"] is True
    assert result["wrapped_once"] is True
    assert result["added"] is True
    cpdir = tmp_path / "cp" / "deeper"
    path = result["path"]
    assert path.startswith(f'ControlPath="{cpdir}/') and path.endswith('"'), path
    assert len(path) == len(f'ControlPath="{cpdir}/"') + 10  # the stock connection's hash
    assert result["again"] == path  # the same host, port and user: the same master
    assert result["other_user"] != path
    assert result["dir_mode"] == 0o700
    assert result["joined"][0] == "-oControlPersist=60" and len(result["joined"]) == 3
    assert result["named"][-1] == f'ControlPath="{tmp_path}/named/%h-%r"'
    # left as they are: a ControlPath given, no ControlPersist, a directory that is a file
    assert result["given"] is True and result["given_dir"] is False
    assert result["no_persist"] == ["-o", "ServerAliveInterval=15"]
    assert result["no_persist_dir"] is False
    assert "ControlPath" not in " ".join(result["not_a_dir"])
    assert len(result["not_a_dir"]) == 4


STOP_PROBE = """
import json, os, pathlib, sys
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader, strategy_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
from ansible_mitogen import connection
shim._load_once()
shim._stop_masters_on_reset()  # a second time: wrapped once
base = pathlib.Path(sys.argv[1])
ssh = base / "ssh"
def stopped(stack, status=0):
    ssh.write_text(f"#!/bin/sh\\nprintf '%s\\\\n' \\"$@\\" >> {base}/calls\\nexit {status}\\n")
    ssh.chmod(0o755)
    asked = shim.stop_master(stack)
    calls = base / "calls"
    lines = calls.read_text().splitlines() if calls.exists() else []
    calls.unlink(missing_ok=True)
    return asked, lines
def hop(method, args, **kwargs):
    return {"method": method, "kwargs": {"ssh_path": str(ssh), "ssh_args": args,
            "hostname": "192.0.2.7", "username": "root", "port": None, **kwargs}}
path = ["-o", "ControlPersist=120s", "-o", 'ControlPath="/tmp/cp/abc"']
print(json.dumps({
    "wrapped": getattr(connection.Connection, "_alteo_hostops_stops_masters", False),
    "stopped": stopped([hop("ssh", path, port=2222), hop("sudo", [])]),
    "refused": stopped([hop("ssh", path)], status=255),
    "no_path": stopped([hop("ssh", ["-o", "ControlPersist=120s"])]),
    "local_first": stopped([{"method": "local", "kwargs": {}}, hop("ssh", path)]),
    "empty": stopped(None),
}))
"""


def test_a_reset_under_mitogen_stops_the_hosts_ssh_master(tmp_path: Path) -> None:
    """As the stock connection's reset runs `ssh -O stop`: here with an ssh that records
    its arguments (tests/integration/test_lab.py resets a real master)."""
    result = run_script(STOP_PROBE, str(tmp_path))
    assert result["wrapped"] is True
    asked, argv = result["stopped"]
    assert asked is True
    assert argv == [
        "-o", "ControlPersist=120s", "-o", 'ControlPath="/tmp/cp/abc"',
        "-O", "stop", "-l", "root", "-p", "2222", "192.0.2.7",
    ]  # fmt: skip
    asked, argv = result["refused"]  # no master there: ssh says so, nothing else
    assert asked is False and argv[-3:] == ["-l", "root", "192.0.2.7"]
    # no ControlPath, a first hop that is not SSH, no stack: ssh is not run
    for case in ("no_path", "local_first", "empty"):
        assert result[case] == [False, []], case


READS_NO_HOST = """
import json, sys
from ansible import constants as C
from ansible.playbook.task import Task
from ansible.plugins.loader import init_plugin_loader, strategy_loader
init_plugin_loader(C.COLLECTIONS_PATHS)
shim = sys.modules[strategy_loader.get("alteo.hostops.mitogen_linear", class_only=True).__module__]
def task(action, args):
    made = Task()
    made.action, made.args = action, args
    return made
known = {"ansible_facts": {"distribution_major_version": "13", "memtotal_mb": 1024}}
checks = {"checks": [{"that": "true", "fail_msg": "x"}]}
cases = [
    (task("ansible.builtin.assert", {"that": "true"}), {}),
    (task("alteo.hostops.assert_each", checks), {}),
    (task("alteo.hostops.assert_each", {**checks, "gather_subset": ["min"]}), known),
    (task("alteo.hostops.assert_each", {**checks, "gather_subset": ["min"]}), {}),
    (task("alteo.hostops.assert_each", {**checks, "gather_subset": ["min", "hardware"],
                                        "gather_unless": ["memtotal_mb"]}), known),
    (task("alteo.hostops.assert_each", {**checks, "gather_subset": ["min", "virtual"],
                                        "gather_unless": ["virtualization_type"]}), known),
    (task("alteo.hostops.assert_each", {**checks, "gather_subset": ["min"],
                                        "gather_unless": "{{ names }}"}), known),
    (task("ansible.builtin.command", {"cmd": "true"}), {}),
]
print(json.dumps([shim._reads_no_host(made, variables) for made, variables in cases]))
"""


def test_an_assert_each_that_gathers_facts_the_host_lacks_is_run_as_a_module_task() -> None:
    """Run without a worker in ansible-playbook's process, a gathering (a connection to the
    host) would be made outside the worker model (under Mitogen, the next task found its
    broker stopped: a lab story's failure). Only the facts it has or a template it cannot
    judge decide: present, the checks read no host."""
    assert run_script(READS_NO_HOST) == [True, True, True, False, True, False, False, False]
