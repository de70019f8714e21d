"""A patch run by the alteo.hostops.patching role, checked on the converged host."""

from __future__ import annotations

from typing import Any

from hostops.module_utils.apt_updates import HELD_MAJOR, Plan, parse_simulation, plan_updates

METRIC = "/var/lib/prometheus/node-exporter/hostops_patching.prom"
# the host's own apt timers (apt-daily, apt-daily-upgrade) may hold dpkg's lock a while
APT_WAIT = "-o DPkg::Lock::Timeout=300"


def pending_plan(host: Any) -> Plan:
    """What apt would still upgrade, under the contract's rule (the module's own logic)."""
    simulation = parse_simulation(host.check_output(f"apt-get -s -q {APT_WAIT} dist-upgrade"))
    holds = set(host.check_output("apt-mark showhold").split())
    return plan_updates(simulation.upgrades, holds)


def test_no_minor_update_is_left(host: Any) -> None:
    plan = pending_plan(host)
    assert plan.minor == (), plan.minor


def test_dpkg_is_clean(host: Any) -> None:
    assert host.check_output("dpkg --audit") == ""
    check = host.run(f"apt-get check -q {APT_WAIT}")
    assert check.rc == 0, check.stderr


def test_metric_counts_what_is_left(host: Any) -> None:
    metric = host.file(METRIC)
    assert metric.mode == 0o644
    assert metric.user == "root"
    lines = metric.content_string.splitlines()
    majors = sum(1 for held in pending_plan(host).held if held.reason == HELD_MAJOR)
    assert 'hostops_patching_pending_updates{class="minor"} 0' in lines
    assert f'hostops_patching_pending_updates{{class="major"}} {majors}' in lines
    assert "hostops_patching_reboot_required 0" in lines
    # the exposition format node exporter's textfile collector reads
    samples = [line for line in lines if line and not line.startswith("#")]
    assert all(len(line.split(" ")) == 2 for line in samples), samples


def test_services_survived_the_patch(host: Any) -> None:
    assert host.service("ssh").is_running
    assert host.service("systemd-journald").is_running
    # no unit failed that had not failed already before the patch (converge.yml's list)
    before = set(host.check_output("cat /root/failed-units-before-patch").split())
    failed = host.check_output("systemctl --failed --no-legend --plain | awk '{ print $1 }'")
    assert set(failed.split()) - before == set(), failed


def test_a_check_run_finds_nothing_left_to_do(host: Any) -> None:
    """The module in check mode: nothing to apply, and only the services the role never
    restarts (D-Bus, logind, user managers) may still run replaced libraries."""
    result = host.ansible("alteo.hostops.apt_minor_updates", "update_cache=false", check=True)
    assert result["changed"] is False
    assert result["applied"] == []
    assert result["failed_updates"] == []
    never_restarted = ("dbus.service", "systemd-logind.service")
    left = [u for u in result["services_to_restart"] if not u.startswith("user@")]
    assert set(left) <= set(never_restarted), left
