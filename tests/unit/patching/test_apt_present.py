"""alteo.hostops.apt_present: apt's state=present, run only when dpkg says a package is
missing. Its reading of dpkg-query, and real runs of the action on this controller (a
Debian system) in check mode: installed packages answer at once, unchanged, without apt;
a missing one, or a name that is not a plain package name, goes to ansible.builtin.apt."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hostops.core.runner import repo_root, run_environment

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE = Path(sys.executable).parent / "ansible"
MODULE = "alteo.hostops.apt_present"


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "apt_present", ROOT / "plugins" / "modules" / "apt_present.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_installed_reads_dpkg_status_abbreviations() -> None:
    output = "dpkg ii \nold rc \ngone un \nhalf iU \nheld hi \nbroken iiR\n"
    assert load_module().installed(output) == {"dpkg", "held"}


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        ("nftables", True),
        ("php8.4-fpm", True),
        ("libstdc++6", True),
        ("dpkg=1.0", False),
        ("libc6:amd64", False),
        ("php*", False),
        ("./local.deb", False),
    ],
)
def test_only_plain_package_names_are_asked_of_dpkg(name: str, plain: bool) -> None:
    assert bool(load_module().PLAIN.fullmatch(name)) is plain


def run_action(names: list[str], **extra: object) -> dict[str, object]:
    """The action on this controller, in check mode (nothing is installed)."""
    if not Path("/usr/bin/dpkg-query").exists():
        pytest.fail("this test needs a Debian controller (dpkg-query)")
    args = json.dumps({"name": names, "update_cache": False, **extra})
    # the system's Python: apt's module needs its apt bindings (python3-apt)
    interpreter = "ansible_python_interpreter=/usr/bin/python3"
    argv = [str(ANSIBLE), "localhost", "--check", "-e", interpreter, "-m", MODULE, "-a", args]
    env = run_environment(repo_root())
    env.update(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=120)
    data = json.loads(proc.stdout)
    return dict(data["plays"][0]["tasks"][0]["hosts"]["localhost"])


def test_installed_packages_answer_unchanged_without_apt() -> None:
    result = run_action(["dpkg", "coreutils"])
    assert result.get("failed") is not True, result
    assert (result["changed"], result["apt"], result["missing"]) == (False, False, []), result


@pytest.mark.parametrize("name", ["hostops-no-such-package", "dpkg=0.0-hostops"])
def test_a_missing_or_pinned_package_goes_to_apt(name: str) -> None:
    # apt itself answers (in check mode it cannot find the package or version): the
    # action did hand the task over to ansible.builtin.apt
    result = run_action(["dpkg", name])
    assert result["apt"] is True, result
    assert result["missing"] == [name], result
    assert result.get("failed") is True, result
    assert name.split("=", maxsplit=1)[0] in str(result.get("msg")), result


def test_a_hold_of_a_name_that_is_not_a_unit_fails_before_anything_runs() -> None:
    result = run_action(["dpkg"], hold_start=["opendkim; reboot"])
    assert result.get("failed") is True, result
    assert "hold_start: 'opendkim; reboot' is not a unit name" in str(result.get("msg")), result
    # the positive control: a unit name passes, nothing is missing so nothing is held
    result = run_action(["dpkg"], hold_start=["opendkim.service"])
    assert (result.get("failed"), result["held"], result["apt"]) == (None, [], False), result


def run_policy(script: Path, *args: str) -> int:
    return subprocess.run(["/bin/sh", str(script), *args], check=False, timeout=10).returncode


@pytest.mark.parametrize(
    ("args", "code"),
    [
        # deb-systemd-invoke: '<unit> <action>'; invoke-rc.d: '[--options] <id> <actions>'
        (("opendkim.service", "start"), 101),
        (("opendkim", "start"), 101),
        (("opendkim.service", "restart"), 101),
        (("--quiet", "spamass-milter", "restart start"), 101),
        (("spamass-milter.service", "force-reload"), 101),
        (("opendkim.service", "stop"), 0),
        # positive controls: any other unit, a name that only contains a held one
        (("postfix.service", "start"), 0),
        (("opendkim-other.service", "start"), 0),
        (("dkim", "start"), 0),
    ],
)
def test_the_policy_refuses_the_held_units_start_and_allows_the_rest(
    tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    script = tmp_path / "policy-rc.d"
    script.write_text(load_module().policy_script(["opendkim", "spamass-milter.service"]))
    assert run_policy(script, *args) == code


def test_hold_writes_and_release_removes_only_its_own_policy(tmp_path: Path) -> None:
    module = load_module()
    policy = tmp_path / "policy-rc.d"
    assert module.hold(str(policy), ["opendkim"]) is True
    assert policy.stat().st_mode & 0o777 == 0o755
    assert run_policy(policy, "opendkim.service", "start") == 101
    # one left by an interrupted run is ours: replaced with the new units
    assert module.hold(str(policy), ["opendmarc"]) is True
    assert run_policy(policy, "opendkim.service", "start") == 0
    assert run_policy(policy, "opendmarc.service", "start") == 101
    assert module.release(str(policy)) is True
    assert not policy.exists()
    assert module.release(str(policy)) is False
    assert [p.name for p in tmp_path.iterdir()] == []


def test_a_policy_of_the_hosts_own_is_left_alone(tmp_path: Path) -> None:
    module = load_module()
    policy = tmp_path / "policy-rc.d"
    own = "#!/bin/sh\n# the image's own: no daemon starts in this container\nexit 101\n"
    policy.write_text(own)
    assert module.hold(str(policy), ["opendkim"]) is False
    assert module.release(str(policy)) is False
    assert policy.read_text() == own
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy-rc.d"]


def test_only_a_daemon_not_installed_yet_is_held(tmp_path: Path) -> None:
    module = load_module()
    units, init = tmp_path / "system", tmp_path / "init.d"
    units.mkdir()
    init.mkdir()
    dirs = (str(units),)
    for unit in ("opendkim", "postgresql@17-main", "spamass-milter"):
        assert module.unit_present(unit, dirs, str(init)) is False, unit
    (units / "opendkim.service").write_text("[Unit]\n")
    (units / "postgresql@.service").write_text("[Unit]\n")  # a template: its instances
    (init / "spamass-milter").write_text("#!/bin/sh\n")  # an init script alone
    for unit in ("opendkim", "opendkim.service", "postgresql@17-main", "spamass-milter"):
        assert module.unit_present(unit, dirs, str(init)) is True, unit
    # the controls: other names are still not installed
    for unit in ("opendmarc", "postgresql", "prometheus-node-exporter"):
        assert module.unit_present(unit, dirs, str(init)) is False, unit
