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
shim._load_once()
after = [name in sys.modules for name in WATCHED]
builtin_tests = any(name.startswith("ansible.plugins.test.core_") for name in sys.modules)
shim._OWN_JINJA_PACKAGES = ("no.such.package",)
shim._load_once()  # once per process: the second call does nothing (no error either)
print(json.dumps({
    "before": before, "after": after, "builtin_tests": [builtin_before, builtin_tests],
}))
"""


def probe(*args: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_strategy_loads_the_collections_and_jinja_plugins_once() -> None:
    result = probe()
    assert result["before"] == [False, False, False], result
    assert result["after"] == [True, True, True], result
    assert result["builtin_tests"] == [False, True], result


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
