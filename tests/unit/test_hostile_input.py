"""Hostile orders and options, every command (issue 16): each refused with exit status 2 by
the real ``hostops`` command, naming the field or option and the value, no traceback, before
any host is touched, and quickly.

The servers named here are in a throw-away inventory whose SSH port on loopback is closed:
a check that let a bad value through would reach Ansible and fail otherwise than with exit
status 2 (and name no option), so the test would see it. Time: each command's own CPU time
(user + system, from the kernel's accounting of the child) must stay under 2 s; the wall
clock is only bounded at 10 s to catch hangs, because the suite runs this beside lab hosts
that keep both cores busy (an idle machine answers in about 0.3 s).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HOSTOPS = Path(sys.executable).parent / "hostops"
GOOD_ORDER = ROOT / "examples" / "orders" / "custom.yml"


def write_order(directory: Path, name: str, **changes: object) -> str:
    order = yaml.safe_load(GOOD_ORDER.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = order
        for key in parents:
            node = node[key]
        node[last] = value
    path = directory / f"{name}.yml"
    path.write_text(yaml.safe_dump(order, sort_keys=False))
    return path.name


# (id, argv after 'hostops', substrings the error must contain: the field or option, the value)
CASES: list[tuple[str, list[str], list[str]]] = [
    # orders: the file itself
    ("order is a directory", ["order", "validate", "adir"], ["adir", "a directory"]),
    ("order is a FIFO", ["order", "validate", "fifo"], ["fifo", "a FIFO"]),
    ("order is a device", ["order", "validate", "/dev/zero"], ["/dev/zero", "character device"]),
    ("order missing", ["order", "validate", "missing.yml"], ["missing.yml", "No such file"]),
    ("order too big", ["order", "validate", "big.yml"], ["big.yml", "too big"]),
    ("order alias bomb", ["order", "validate", "bomb.yml"], ["bomb.yml", "aliases"]),
    ("order not UTF-8", ["order", "validate", "latin1.yml"], ["latin1.yml", "not UTF-8"]),
    ("order python tag", ["order", "validate", "tag.yml"], ["tag.yml", "!!python"]),
    # orders: each kind of field
    ("order number", ["order", "validate", "@order=bdc 1"], ["order:", "'bdc 1'"]),
    ("service", ["order", "validate", "@service=colo"], ["service:", "'colo'"]),
    ("os", ["order", "validate", "@os=debian11"], ["os:", "'debian11'"]),
    ("level", ["order", "validate", "@managed_level=gold"], ["managed_level:", "'gold'"]),
    (
        "hostname",
        ["order", "validate", "@servers=[{hostname: Web01}]"],
        ["servers[0].hostname:", "'Web01'"],
    ),
    (
        "loopback address",
        ["order", "validate", "@servers=[{hostname: a.example.fr, address: 127.0.0.1}]"],
        ["servers[0].address:", "'127.0.0.1'"],
    ),
    (
        "contact email",
        ["order", "validate", "@customer__contact__email=nobody"],
        ["email:", "'nobody'"],
    ),
    (
        "php version",
        ["order", "validate", "@stack__web__php_version='7.4'"],
        ["php_version:", "'7.4'"],
    ),
    (
        "database",
        ["order", "validate", "@stack__databases=[oracle]"],
        ["databases[0]:", "'oracle'"],
    ),
    (
        "mongodb",
        ["order", "validate", "@stack__databases=[mongodb]"],
        ["stack.databases:", "'mongodb'"],
    ),
    ("debian12 web", ["order", "validate", "@os=debian12"], ["stack.mail:", "'debian12'"]),
    (
        "backup path /proc",
        ["order", "validate", "@backups__paths=[/proc]"],
        ["backups.paths[0]:", "'/proc'"],
    ),
    ("backup path /", ["order", "validate", "@backups__paths=[/]"], ["backups.paths[0]:", "'/'"]),
    ("retention", ["order", "validate", "@backups__retention_days=0"], ["retention_days:", "0"]),
    ("backup time", ["order", "validate", "@backups__time='25:00'"], ["backups.time:", "'25:00'"]),
    (
        "http check credentials",
        ["order", "validate", "@monitoring__http_checks=[https://u:p@www.example.fr/]"],
        ["http_checks[0]:", "credentials"],
    ),
    ("sla fee", ["order", "validate", "@sla__monthly_fee_eur=-1"], ["monthly_fee_eur:", "-1"]),
    ("unknown field", ["order", "validate", "@colour=blue"], ["colour:", "unknown field"]),
    # order commands' options
    (
        "apply --limit",
        ["order", "apply", "good.yml", "--limit", "bad host!"],
        ["--limit", "'bad host!'"],
    ),
    (
        "apply --monitoring-server",
        ["order", "apply", "good.yml", "--lab", "--monitoring-server", "x y"],
        ["--monitoring-server", "'x y'"],
    ),
    (
        "apply --inventory",
        ["order", "apply", "good.yml", "--inventory", "none.yml"],
        ["--inventory", "none.yml"],
    ),
    ("show ORDER", ["order", "show", "bad order"], ["ORDER", "'bad order'"]),
    # lab
    ("lab --hosts", ["lab", "up", "--hosts", "0"], ["--hosts", "0"]),
    ("lab --release", ["lab", "up", "--release", "sid"], ["--release", "'sid'"]),
    ("lab --subnet", ["lab", "up", "--subnet", "300.1.1.0/24"], ["--subnet", "'300.1.1.0/24'"]),
    ("lab --prefix", ["lab", "up", "--prefix", "Bad_Prefix!"], ["--prefix", "'Bad_Prefix!'"]),
    # backups
    (
        "restore --at",
        [
            "backup",
            "restore",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--at",
            "2027-13-45",
            "--database",
            "shop",
            "--engine",
            "mariadb",
        ],
        ["--at", "'2027-13-45'"],
    ),
    ("list --host", ["backup", "list", "--inventory", "inv.yml", "--host", ""], ["--host", "''"]),
    # Ansible's implicit localhost is the controller, not a host of the inventory
    (
        "list --host localhost",
        ["backup", "list", "--inventory", "inv.yml", "--host", "localhost"],
        ["--host", "'localhost'"],
    ),
    (
        "vhost --host localhost",
        [
            "request",
            "vhost",
            "--inventory",
            "inv.yml",
            "--host",
            "localhost",
            "--domain",
            "a.example",
        ],
        ["--host", "'localhost'"],
    ),
    # maintenance
    (
        "announce --start",
        [
            "maintenance",
            "announce",
            "--hosts",
            "web01.example.fr",
            "--start",
            "2027-01-01T10:00",
            "--duration",
            "60",
            "--contact",
            "a@b.fr",
        ],
        ["--start", "'2027-01-01T10:00'"],
    ),
    (
        "announce --duration",
        [
            "maintenance",
            "announce",
            "--hosts",
            "web01.example.fr",
            "--start",
            "2027-01-01T10:00:00+01:00",
            "--duration",
            "-5",
            "--contact",
            "a@b.fr",
        ],
        ["--duration", "-5"],
    ),
    (
        "announce --contact",
        [
            "maintenance",
            "announce",
            "--hosts",
            "web01.example.fr",
            "--start",
            "2027-01-01T10:00:00+01:00",
            "--duration",
            "60",
            "--contact",
            "not-an-email",
        ],
        ["--contact", "'not-an-email'"],
    ),
    # patching
    (
        "patch --serial",
        ["patch", "run", "--inventory", "inv.yml", "--serial", "0"],
        ["--serial", "'0'"],
    ),
    (
        "patch --max-fail",
        ["patch", "run", "--inventory", "inv.yml", "--max-fail-percentage", "101"],
        ["--max-fail-percentage", "101"],
    ),
    (
        "patch --at",
        ["patch", "run", "--inventory", "inv.yml", "--at", "yesterday"],
        ["--at", "'yesterday'"],
    ),
    (
        "patch --emergency",
        ["patch", "run", "--inventory", "inv.yml", "--emergency"],
        ["--reason", "--emergency"],
    ),
    (
        "patch --order",
        ["patch", "plan", "--inventory", "inv.yml", "--order", "adir"],
        ["adir", "a directory"],
    ),
    # majors by agreement, scheduled runs (issue 19)
    (
        "approve --host",
        [
            "patch",
            "approve",
            "--inventory",
            "inv.yml",
            "--host",
            "web99",
            "--package",
            "nginx",
            "--reference",
            "ticket 1",
        ],
        ["--host", "'web99'"],
    ),
    (
        "approve --package",
        [
            "patch",
            "approve",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--package",
            "Nginx;",
            "--reference",
            "ticket 1",
        ],
        ["--package", "'Nginx;'"],
    ),
    (
        "approve --reference",
        [
            "patch",
            "approve",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--package",
            "nginx",
            "--reference",
            " ",
        ],
        ["--reference", "' '"],
    ),
    (
        "approve --version",
        [
            "patch",
            "approve",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--package",
            "nginx",
            "--reference",
            "ticket 1",
            "--version",
            "1.2 3",
        ],
        ["--version", "'1.2 3'"],
    ),
    (
        "refuse --reference",
        [
            "patch",
            "refuse",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--package",
            "nginx",
            "--reference",
            "",
        ],
        ["--reference", "''"],
    ),
    (
        "schedule --at",
        [
            "patch",
            "schedule",
            "--inventory",
            "inv.yml",
            "--group",
            "all",
            "--at",
            "17:00",
            "--unit-dir",
            "adir",
        ],
        ["--at", "'17:00'", "outside the maintenance window"],
    ),
    (
        "schedule --days",
        [
            "patch",
            "schedule",
            "--inventory",
            "inv.yml",
            "--group",
            "all",
            "--at",
            "10:00",
            "--days",
            "Mon-Sun",
            "--unit-dir",
            "adir",
        ],
        ["--days", "'Mon-Sun'", "weekends"],
    ),
    (
        "schedule --group",
        [
            "patch",
            "schedule",
            "--inventory",
            "inv.yml",
            "--group",
            "nosuch",
            "--at",
            "10:00",
            "--unit-dir",
            "adir",
        ],
        ["--group", "'nosuch'"],
    ),
    # ticket requests
    (
        "vhost --domain",
        [
            "request",
            "vhost",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--domain",
            "Bad..Domain",
        ],
        ["--domain", "'Bad..Domain'"],
    ),
    (
        "vhost --php",
        [
            "request",
            "vhost",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--domain",
            "www.example.fr",
            "--php",
            "5.6",
        ],
        ["--php", "'5.6'"],
    ),
    (
        "vhost --allow-php-functions",
        [
            "request",
            "vhost",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--domain",
            "www.example.fr",
            "--allow-php-functions",
            "exec;rm",
        ],
        ["--allow-php-functions", "'exec;rm'"],
    ),
    (
        "database --engine",
        [
            "request",
            "database",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--engine",
            "oracle",
            "--name",
            "shop",
        ],
        ["--engine", "'oracle'"],
    ),
    (
        "database --name",
        [
            "request",
            "database",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--engine",
            "mariadb",
            "--name",
            "shop;drop",
        ],
        ["--name", "'shop;drop'"],
    ),
    (
        "db-user --user",
        [
            "request",
            "db-user",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--engine",
            "postgresql",
            "--user",
            "pg_admin",
            "--database",
            "shop",
        ],
        ["--user", "'pg_admin'"],
    ),
    (
        "ftp-account --user",
        [
            "request",
            "ftp-account",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--user",
            "root",
            "--domain",
            "www.example.fr",
        ],
        ["--user", "'root'"],
    ),
    (
        "mailbox --address",
        [
            "request",
            "mailbox",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--address",
            "postmaster@example.fr",
        ],
        ["--address", "'postmaster@example.fr'"],
    ),
    (
        "request --host",
        [
            "request",
            "database",
            "--inventory",
            "inv.yml",
            "--host",
            "a;b",
            "--engine",
            "mariadb",
            "--name",
            "shop",
        ],
        ["--host", "'a;b'"],
    ),
    # mail suspension (§3.1.2)
    (
        "mail suspend --address",
        [
            "mail",
            "suspend",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--address",
            "Bob@x",
            "--reason",
            "spam",
            "--no-send",
        ],
        ["--address", "'Bob@x'"],
    ),
    (
        "mail suspend --reason template",
        [
            "mail",
            "suspend",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--address",
            "bob@example.fr",
            "--reason",
            "{{ lookup('pipe', 'id') }}",
            "--no-send",
        ],
        ["--reason", "lookup('pipe'"],
    ),
    (
        "mail suspend --reason empty",
        [
            "mail",
            "suspend",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--address",
            "bob@example.fr",
            "--reason",
            " ",
            "--no-send",
        ],
        ["--reason", "' '"],
    ),
    (
        "mail suspend --host",
        [
            "mail",
            "suspend",
            "--inventory",
            "inv.yml",
            "--host",
            "a;b",
            "--address",
            "bob@example.fr",
            "--reason",
            "spam",
            "--no-send",
        ],
        ["--host", "'a;b'"],
    ),
    (
        "mail resume --contact",
        [
            "mail",
            "resume",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--address",
            "bob@example.fr",
            "--contact",
            "nobody",
        ],
        ["--contact", "'nobody'"],
    ),
    # the rest
    (
        "updates --package",
        ["updates", "classify", "--package", "", "--from", "1", "--to", "2"],
        ["--package", "''"],
    ),
    (
        "updates --from",
        ["updates", "classify", "--package", "nginx", "--from", "bad version", "--to", "2.0"],
        ["--from", "'bad version'"],
    ),
    ("window --at", ["window", "check", "--at", "2027-01-01"], ["--at", "'2027-01-01'"]),
    (
        "monitor --order",
        ["monitor", "register", "--inventory", "inv.yml", "--host", "web01", "--order", "adir"],
        ["adir", "a directory"],
    ),
    # isolation and bandwidth caps (issue 19)
    ("order allow_irc", ["order", "validate", "@allow_irc='yes'"], ["allow_irc:", "'yes'"]),
    (
        "isolate --reason",
        ["isolate", "web01", "--inventory", "inv.yml", "--contact", "a@b.fr", "--reason", " "],
        ["--reason", "required"],
    ),
    (
        "isolate --ssh-source",
        [
            "isolate",
            "web01",
            "--inventory",
            "inv.yml",
            "--reason",
            "x",
            "--ssh-source",
            "10.0.0.300",
        ],
        ["--ssh-source", "'10.0.0.300'"],
    ),
    (
        "isolate --contact",
        ["isolate", "web01", "--inventory", "inv.yml", "--reason", "spam", "--contact", "x"],
        ["--contact", "'x'"],
    ),
    (
        "isolate HOST",
        ["isolate", "Web 01", "--inventory", "inv.yml", "--reason", "spam", "--contact", "a@b.fr"],
        ["HOST", "'Web 01'"],
    ),
    (
        "isolate unknown HOST",
        ["isolate", "web02", "--inventory", "inv.yml", "--reason", "spam", "--contact", "a@b.fr"],
        ["HOST", "'web02'"],
    ),
    (
        "isolate localhost",
        [
            "isolate",
            "localhost",
            "--inventory",
            "inv.yml",
            "--reason",
            "spam",
            "--contact",
            "a@b.fr",
        ],
        ["HOST", "'localhost'"],
    ),
    (
        "release HOST",
        ["release", "web_01", "--inventory", "inv.yml", "--contact", "a@b.fr"],
        ["HOST", "'web_01'"],
    ),
    (
        "bandwidth --mbps",
        ["bandwidth", "notify", "web01", "--mbps", "-3", "--contact", "a@b.fr"],
        ["--mbps", "'-3'"],
    ),
    (
        "bandwidth --at",
        ["bandwidth", "cap", "web01", "--inventory", "inv.yml", "--at", "tomorrow"],
        ["--at", "'tomorrow'"],
    ),
    ("sla FILE", ["sla", "compute", "/dev/zero"], ["/dev/zero", "character device"]),
    (
        "security --customer",
        ["security", "report", "--inventory", "inv.yml", "--customer", "Nobody; rm"],
        ["--customer", "'Nobody; rm'"],
    ),
    (
        "security --host",
        ["security", "report", "--inventory", "inv.yml", "--host", "web99"],
        ["--host", "'web99'"],
    ),
    # values no command takes: empty (every host, the whole lab, the current directory),
    # not UTF-8 (refused before the record or notice that could not be written)
    (
        "empty --limit",
        ["patch", "plan", "--inventory", "inv.yml", "--limit", ""],
        ["--limit", "''"],
    ),
    ("empty --limit=", ["patch", "run", "--inventory", "inv.yml", "--limit="], ["--limit", "''"]),
    ("empty --prefix", ["lab", "down", "--prefix", ""], ["--prefix", "''"]),
    (
        "empty --monitoring-server",
        ["order", "apply", "good.yml", "--inventory", "inv.yml", "--monitoring-server", ""],
        ["--monitoring-server", "''"],
    ),
    ("empty --inventory", ["patch", "plan", "--inventory", ""], ["--inventory", "''"]),
    (
        "reason not UTF-8",
        ["isolate", "web01", "--inventory", "inv.yml", "--reason", "bad \udcff", "--no-send"],
        ["--reason", "not UTF-8"],
    ),
    # moments beyond the calendar's reach, offsets beyond a day
    ("window far --at", ["window", "check", "--at", "9999-12-31T23:59Z"], ["--at", "9999"]),
    ("window year 1 --at", ["window", "check", "--at", "0001-01-01T00:00+01:00"], ["--at", "0001"]),
    (
        "verify --at offset",
        [
            "backup",
            "verify",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--at",
            "2026-01-01T10:00+99:00",
        ],
        ["--at", "'2026-01-01T10:00+99:00'"],
    ),
    # patch runs: batches over 100%, inventories Ansible would wait on or read forever
    (
        "serial over 100%",
        ["patch", "plan", "--inventory", "inv.yml", "--serial", "150%"],
        ["--serial", "150%"],
    ),
    (
        "inventory FIFO",
        ["patch", "plan", "--inventory", "fifo"],
        ["--inventory", "fifo", "regular file"],
    ),
    (
        "inventory device",
        ["patch", "plan", "--inventory", "/dev/zero"],
        ["--inventory", "/dev/zero"],
    ),
    (
        "inventory dir with a FIFO",
        ["patch", "plan", "--inventory", "fifodir"],
        ["--inventory", "fifodir/hosts.yml"],
    ),
    (
        "schedule --order a list",
        [
            "patch",
            "schedule",
            "--inventory",
            "inv.yml",
            "--unit-dir",
            "adir",
            "--no-enable",
            "--group",
            "all",
            "--at",
            "10:00",
            "--order",
            "list.yml",
        ],
        ["--order", "list.yml"],
    ),
    (
        "vault password file a directory",
        [
            "request",
            "vhost",
            "--inventory",
            "inv.yml",
            "--host",
            "web01",
            "--domain",
            "a.example",
            "--vault-file",
            "v.yml",
            "--vault-password-file",
            "adir",
        ],
        ["--vault-password-file", "adir"],
    ),
    # orders and SLA records: values out of the contract's range, a negative restoration
    (
        "sla fee huge",
        ["order", "validate", "@sla__monthly_fee_eur=1000000000000000000000000000000"],
        ["sla.monthly_fee_eur:", "1e+09"],
    ),
    (
        "sla gtr huge",
        ["order", "validate", "@sla__gtr_hours=1000000000000000000000000000000"],
        ["sla.gtr_hours:", "8760"],
    ),
    (
        "bandwidth huge",
        ["order", "validate", "@bandwidth_mbps=1000000000000000000000000000000"],
        ["bandwidth_mbps:", "1..100000"],
    ),
    (
        "sla ticket after end",
        ["sla", "compute", "late-ticket.yml"],
        ["ticket_opened:", "after end"],
    ),
    # maintenance notices: host names, durations in ASCII digits, one line of reason
    (
        "announce --hosts",
        [
            "maintenance",
            "announce",
            "--hosts",
            "bad host;rm",
            "--start",
            "2099-01-05T10:00Z",
            "--duration",
            "60",
            "--contact",
            "a@b.fr",
        ],
        ["--hosts", "'bad host;rm'"],
    ),
    (
        "announce --duration digits",
        [
            "maintenance",
            "announce",
            "--hosts",
            "web01",
            "--start",
            "2099-01-05T10:00Z",
            "--duration",
            "\u0666\u0660",
            "--contact",
            "a@b.fr",
        ],
        ["--duration", "\u0666\u0660"],
    ),
    (
        "announce --reason length",
        [
            "maintenance",
            "announce",
            "--hosts",
            "web01",
            "--start",
            "2099-01-05T10:00Z",
            "--duration",
            "60",
            "--contact",
            "a@b.fr",
            "--reason",
            "x" * 1000,
        ],
        ["--reason", "at most 500"],
    ),
    (
        "announce --reason control character",
        [
            "maintenance",
            "announce",
            "--hosts",
            "web01",
            "--start",
            "2099-01-05T10:00Z",
            "--duration",
            "60",
            "--contact",
            "a@b.fr",
            "--reason",
            "disk\x7fswap",
        ],
        ["--reason", "one line"],
    ),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile files, a good order and an inventory whose host cannot be reached."""
    work = tmp_path_factory.mktemp("hostile")
    (work / "adir").mkdir()
    os.mkfifo(work / "fifo")
    (work / "good.yml").write_text(GOOD_ORDER.read_text())
    (work / "big.yml").write_text("# " + "x" * (70 * 1024) + "\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    (work / "bomb.yml").write_text(bomb)
    (work / "latin1.yml").write_bytes(
        "order: BDC-2027-0001\ncustomer: {name: Zoé}\n".encode("latin-1")
    )
    (work / "tag.yml").write_text("!!python/object/apply:os.system [id]\n")
    (work / "fifodir").mkdir()
    os.mkfifo(work / "fifodir" / "hosts.yml")
    (work / "list.yml").write_text("- a\n- b\n")
    (work / "late-ticket.yml").write_text(
        "month: 2027-04\nmonthly_fee_eur: 250\ngtr_hours: 4\nincidents:\n"
        "  - {start: '2027-04-06T10:00:00+02:00', end: '2027-04-06T11:00:00+02:00',\n"
        "     cause: provider, ticket_opened: '2027-04-06T12:00:00+02:00'}\n"
    )
    (work / "inv.yml").write_text(
        yaml.safe_dump(
            {"all": {"hosts": {"web01": {"ansible_host": "127.0.0.1", "ansible_port": 1}}}}
        )
    )
    return work


def argv_for(case: list[str], work: Path) -> list[str]:
    """'@FIELD=VALUE' stands for a copy of the good order with one field changed."""
    argv = []
    for arg in case:
        field, _, value = arg[1:].partition("=")
        argv.append(
            write_order(work, field, **{field: yaml.safe_load(value)}) if arg[:1] == "@" else arg
        )
    return argv


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_with_exit_2_naming_it(workdir: Path, argv: list[str], expected: list[str]) -> None:
    env = {
        **os.environ,
        "HOSTOPS_STATE_DIR": str(workdir / "state"),
        # a lab of its own, which never runs: a lab running beside (the suite's) must not
        # change the answer ('the lab already runs on ...')
        "HOSTOPS_LAB_ID": "hostile",
        "ANSIBLE_TIMEOUT": "5",
        "PYTHONWARNINGS": "ignore",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        [str(HOSTOPS), *argv_for(argv, workdir)],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"{' '.join(argv)}: exit {proc.returncode}, {cpu:.2f} s CPU, {wall:.2f} s wall")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for text in expected:
        assert text in proc.stderr, proc.stderr
    assert cpu < 2.0, f"{cpu:.2f} s of CPU"
    # nothing ran: ansible-runner leaves an artifacts directory for every run it starts
    assert not list((workdir / "state").rglob("artifacts"))


def test_the_control_a_good_order_validates(workdir: Path) -> None:
    proc = subprocess.run(
        [str(HOSTOPS), "order", "validate", "good.yml"],
        cwd=workdir,
        env={**os.environ, "HOSTOPS_STATE_DIR": str(workdir / "state")},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
