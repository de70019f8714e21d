"""The decisions of the apt_minor_updates module, from the text apt, dpkg and /proc give."""

from __future__ import annotations

import pytest

from hostops.module_utils.apt_updates import (
    HELD_APT_MARK,
    HELD_DOWNGRADE,
    HELD_EXCLUDED,
    HELD_MAJOR,
    Change,
    Simulation,
    install_arguments,
    lock_holder,
    newest_kernel,
    parse_installed,
    parse_main_pids,
    parse_simulation,
    plan_updates,
    replaced_files,
    transaction_problems,
    unit_of_cgroup,
    unmet_dependencies,
)

# Output of 'apt-get -s dist-upgrade' on a Debian 12 lab host (trimmed, origins shortened),
# plus the line shapes apt also prints: a new package, a removal, a purge, configure lines.
SIMULATION = """\
NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  nginx nginx-common postgresql-15
Inst libperl5.36 [5.36.0-7+deb12u3] (5.36.0-7+deb12u4 Debian-Security:12 [amd64]) [perl:amd64 ]
Inst nginx-common [1.22.1-9+deb12u9] (1.22.1-9+deb12u11 Debian-Security:12/oldstable-sec [all])
Inst nginx [1.22.1-9+deb12u9] (1.22.1-9+deb12u11 Debian-Security:12/oldstable-sec [amd64])
Inst postgresql-15 [15.18-0+deb12u1] (15.20-0+deb12u1 Debian-Security:12/oldstable-sec [amd64]) []
Inst libc6:amd64 [2.36-9+deb12u13] (2.36-9+deb12u14 Debian:12.13/oldstable [amd64])
Inst linux-image-6.1.0-41-amd64 (6.1.192-1 Debian-Security:12/oldstable-sec [amd64])
Remv apache2-doc [2.4.68-1~deb12u1]
Purg old-thing [1.0-1]
Conf nginx-common (1.22.1-9+deb12u11 Debian-Security:12/oldstable-sec [all])
Conf nginx (1.22.1-9+deb12u11 Debian-Security:12/oldstable-sec [amd64])
"""


def test_parse_simulation_reads_upgrades_new_packages_and_removals() -> None:
    simulation = parse_simulation(SIMULATION)
    assert simulation.changes == (
        Change("libperl5.36", "5.36.0-7+deb12u3", "5.36.0-7+deb12u4"),
        Change("nginx-common", "1.22.1-9+deb12u9", "1.22.1-9+deb12u11"),
        Change("nginx", "1.22.1-9+deb12u9", "1.22.1-9+deb12u11"),
        Change("postgresql-15", "15.18-0+deb12u1", "15.20-0+deb12u1"),
        Change("libc6", "2.36-9+deb12u13", "2.36-9+deb12u14"),
        Change("linux-image-6.1.0-41-amd64", None, "6.1.192-1"),
    )
    assert simulation.removals == ("apache2-doc", "old-thing")
    assert [c.name for c in simulation.upgrades] == [
        "libperl5.36",
        "nginx-common",
        "nginx",
        "postgresql-15",
        "libc6",
    ]


def test_parse_simulation_of_nothing_to_do() -> None:
    text = (
        "Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
    )
    assert parse_simulation(text) == Simulation((), ())


@pytest.mark.parametrize(
    ("installed", "candidate", "held_reason"),
    [
        # Debian revision and stable/security suffixes: minor
        ("1.22.1-9+deb12u9", "1.22.1-9+deb12u11", None),
        ("2.4.68-1~deb12u1", "2.4.71-1~deb12u1", None),
        ("8.4.27-1~deb13u1", "8.4.28-1~deb13u1", None),
        ("1:10.11.18-0+deb12u1", "1:10.11.19-0+deb12u1", None),
        ("10.42-1", "10.42-1+deb12u2", None),
        # binNMU and a +debNuM suffix on the upstream version
        ("2.36-9+deb12u13", "2.36-9+deb12u13+b1", None),
        ("12.4+deb12u7", "12.4+deb12u9", None),
        # ~ pre-release to release of the same 3rd digit
        ("1.2.3~rc1-1", "1.2.3-1", None),
        # the contract's words: the 2nd digit changes, so it is major
        ("15.18-0+deb12u1", "15.20-0+deb12u1", HELD_MAJOR),
        ("252.38-1~deb12u1", "252.39-1~deb12u1", HELD_MAJOR),
        ("2026b-0+deb12u1", "2026f-0+deb12u1", HELD_MAJOR),
        ("1.22.1-9", "1.24.0-1", HELD_MAJOR),
        ("6.1", "6.2", HELD_MAJOR),
        # an epoch change is major even when the version looks smaller
        ("1:2.0-1", "2:1.0-1", HELD_MAJOR),
        # a candidate older than what is installed is never applied
        ("1.2.5-1", "1.2.4-1", HELD_DOWNGRADE),
    ],
)
def test_plan_updates_classifies(installed: str, candidate: str, held_reason: str | None) -> None:
    change = Change("pkg", installed, candidate)
    plan = plan_updates([change])
    if held_reason is None:
        assert plan.minor == (change,)
        assert plan.held == ()
    else:
        assert plan.minor == ()
        assert [(h.change, h.reason) for h in plan.held] == [(change, held_reason)]


def test_plan_updates_holds_apt_mark_holds_and_exclusions_whatever_the_class() -> None:
    pending = [
        Change("nginx", "1.22.1-9+deb12u9", "1.22.1-9+deb12u11"),
        Change("mariadb-server", "1:10.11.18-0+deb12u1", "1:10.11.19-0+deb12u1"),
        Change("openssl", "3.0.20-1~deb12u2", "3.0.22-1~deb12u2"),
        Change("postgresql-15", "15.18-0+deb12u1", "15.20-0+deb12u1"),
    ]
    plan = plan_updates(pending, holds={"mariadb-server"}, exclude={"openssl", "postgresql-15"})
    assert [c.name for c in plan.minor] == ["nginx"]
    assert {h.change.name: h.reason for h in plan.held} == {
        "mariadb-server": HELD_APT_MARK,
        "openssl": HELD_EXCLUDED,
        "postgresql-15": HELD_EXCLUDED,
    }


def test_plan_updates_ignores_new_packages_and_unchanged_versions() -> None:
    plan = plan_updates(
        [
            Change("linux-image-6.1.0-41-amd64", None, "6.1.192-1"),
            Change("foo", "1.0", "1.0-0"),  # dpkg finds them equal
        ]
    )
    assert plan.minor == () and plan.held == ()


def test_plan_updates_sorts_by_name() -> None:
    plan = plan_updates([Change("b", "1.0.1", "1.0.2"), Change("a", "1.0.1", "1.0.2")])
    assert [c.name for c in plan.minor] == ["a", "b"]


@pytest.mark.parametrize(
    ("simulation", "untouchable", "problems"),
    [
        # the planned upgrades and a new dependency: fine
        (
            "Inst nginx [1.22.1-9+deb12u9] (1.22.1-9+deb12u11 x [amd64])\n"
            "Inst libnew1 (1.0-1 x [amd64])\n",
            set(),
            [],
        ),
        # a minor dependency outside the plan: fine
        ("Inst libfoo1 [1.2.3-1] (1.2.4-1 x [amd64])\n", set(), []),
        # a major dependency outside the plan: refused
        (
            "Inst libpq5 [15.18-0+deb12u1] (15.20-0+deb12u1 x [amd64])\n",
            set(),
            ["libpq5 would get a major update (15.18-0+deb12u1 -> 15.20-0+deb12u1)"],
        ),
        # a held package touched: refused
        (
            "Inst libfoo1 [1.2.3-1] (1.2.4-1 x [amd64])\n",
            {"libfoo1"},
            ["libfoo1 is held but would be updated (1.2.3-1 -> 1.2.4-1)"],
        ),
        # a removal: refused
        ("Remv apache2-doc [2.4.68-1~deb12u1]\n", set(), ["apache2-doc would be removed"]),
    ],
)
def test_transaction_problems(simulation: str, untouchable: set[str], problems: list[str]) -> None:
    assert transaction_problems(parse_simulation(simulation), {"nginx"}, untouchable) == problems


# apt-get -s install on Debian 13 with libkrb5-3 on hold (apt 3.0's output, trimmed)
REFUSED = """\
Reading package lists...
Building dependency tree...
Some packages could not be installed. This may mean that you have
requested an impossible situation or if you are using the unstable
distribution that some required packages have not yet been created
or been moved out of Incoming.
The following information may help to resolve the situation:

The following packages have unmet dependencies:
 libgssapi-krb5-2 : Depends: libkrb5-3 (= 1.21.3-5+deb13u2) but 1.21.3-5+deb13u1 is to be installed
 libkrb5-3 : Depends: libkrb5support0 (= 1.21.3-5+deb13u1) but 1.21.3-5+deb13u2 is to be installed
             Depends: libk5crypto3 (= 1.21.3-5+deb13u1) but 1.21.3-5+deb13u2 is to be installed
E: Error, pkgProblemResolver::Resolve generated breaks, this may be caused by held packages.
"""


def test_unmet_dependencies_say_why_apt_refuses() -> None:
    assert unmet_dependencies(REFUSED) == [
        "libgssapi-krb5-2: Depends: libkrb5-3 (= 1.21.3-5+deb13u2) but 1.21.3-5+deb13u1 is to "
        "be installed",
        "libkrb5-3: Depends: libkrb5support0 (= 1.21.3-5+deb13u1) but 1.21.3-5+deb13u2 is to "
        "be installed",
        "libkrb5-3: Depends: libk5crypto3 (= 1.21.3-5+deb13u1) but 1.21.3-5+deb13u2 is to "
        "be installed",
    ]
    assert unmet_dependencies(SIMULATION) == []


def test_install_arguments_pin_the_candidate_versions() -> None:
    changes = [Change("nginx", "1.22.1-9+deb12u9", "1.22.1-9+deb12u11"), Change("x", None, "1:2-3")]
    assert install_arguments(changes) == ["nginx=1.22.1-9+deb12u11", "x=1:2-3"]


def test_parse_installed_keeps_fully_installed_packages() -> None:
    text = (
        "nginx 1.22.1-9+deb12u11 ii \n"
        "libc6:amd64 2.36-9+deb12u14 ii \n"
        "apache2 2.4.71-1~deb12u1 iU \n"  # unpacked, not configured
        "oldconf 1.0 rc \n"  # removed, configuration left
    )
    assert parse_installed(text) == {"nginx": "1.22.1-9+deb12u11", "libc6": "2.36-9+deb12u14"}


MAPS = """\
55d0c6a4b000-55d0c6a5f000 r--p 00000000 00:2a 1311 /usr/sbin/nginx (deleted)
7f3c1c000000-7f3c1c021000 rw-p 00000000 00:00 0
7f3c1d600000-7f3c1d6a0000 r--p 00000000 00:2a 2201 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)
7f3c1d6a0000-7f3c1d6b0000 r-xp 000a0000 00:2a 2201 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)
7f3c1d800000-7f3c1d900000 r--p 00000000 00:2a 4400 /usr/lib/locale/locale-archive (deleted)
7f3c1da00000-7f3c1da10000 r--p 00000000 00:2a 4410 /usr/share/zoneinfo/Europe/Paris (deleted)
7f3c1db00000-7f3c1db10000 rw-s 00000000 00:05 9      /dev/shm/pg_shmem (deleted)
7f3c1dc00000-7f3c1dc10000 rw-s 00000000 00:01 7      /memfd:cache (deleted)
7f3c1dd00000-7f3c1dd10000 r--p 00000000 00:2a 2300 /usr/lib/x86_64-linux-gnu/libz.so.1.2.13
7f3c1de00000-7f3c1de10000 r--p 00000000 00:2a 2400 /lib/x86_64-linux-gnu/libpcre2-8.so.0 (deleted)
7ffd9b1f0000-7ffd9b211000 rw-p 00000000 00:00 0       [stack]
"""


def test_replaced_files_keeps_replaced_code_only() -> None:
    assert replaced_files(MAPS) == [
        "/usr/sbin/nginx",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
        "/lib/x86_64-linux-gnu/libpcre2-8.so.0",
    ]


def test_replaced_files_of_a_process_up_to_date() -> None:
    assert replaced_files("7f3c-7f3d r--p 0 00:2a 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n") == []


@pytest.mark.parametrize(
    ("cgroup", "unit"),
    [
        ("0::/system.slice/nginx.service\n", "nginx.service"),
        (
            "0::/system.slice/system-postgresql.slice/postgresql@15-main.service\n",
            "postgresql@15-main.service",
        ),
        ("0::/system.slice/docker.service/payload/inner\n", "docker.service"),
        ("0::/user.slice/user-0.slice/session-4.scope\n", None),
        ("0::/user.slice/user-0.slice/user@0.service/init.scope\n", "user@0.service"),
        ("0::/init.scope\n", None),
        # cgroup v1: the systemd hierarchy names the unit
        ("12:memory:/\n1:name=systemd:/system.slice/ssh.service\n", "ssh.service"),
        ("", None),
    ],
)
def test_unit_of_cgroup(cgroup: str, unit: str | None) -> None:
    assert unit_of_cgroup(cgroup) == unit


def test_parse_main_pids() -> None:
    show = (
        "MainPID=412\nId=nginx.service\n\n"
        "MainPID=0\nId=postgresql.service\n\n"
        "Id=ssh.service\nMainPID=98\n"
    )
    assert parse_main_pids(show) == {
        "nginx.service": 412,
        "postgresql.service": 0,
        "ssh.service": 98,
    }


PROC_LOCKS = """\
1: POSIX  ADVISORY  WRITE 4242 00:2a:1311 0 EOF
1: -> POSIX  ADVISORY  WRITE 4300 00:2a:1311 0 EOF
2: FLOCK  ADVISORY  WRITE 77 00:2a:999 0 EOF
"""


@pytest.mark.parametrize(("inode", "pid"), [(1311, 4242), (999, 77), (5, None)])
def test_lock_holder(inode: int, pid: int | None) -> None:
    assert lock_holder(PROC_LOCKS, inode) == pid


@pytest.mark.parametrize(
    ("releases", "newest"),
    [
        (["6.1.0-40-amd64", "6.1.0-41-amd64", "6.1.0-9-amd64"], "6.1.0-41-amd64"),
        (["6.12.48+deb13-amd64", "6.12.57+deb13-amd64"], "6.12.57+deb13-amd64"),
        (["not a version!"], None),
        ([], None),
    ],
)
def test_newest_kernel(releases: list[str], newest: str | None) -> None:
    assert newest_kernel(releases) == newest
