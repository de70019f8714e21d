"""The order file validator: every field's bad values, good orders, hostile input, availability."""

from __future__ import annotations

import copy
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostops.core import yamlfile
from hostops.core.errors import UsageError
from hostops.module_utils import order_rules
from hostops.orders.order import (
    AVAILABLE,
    MAX_DEPTH,
    MAX_NODES,
    MAX_ORDER_BYTES,
    MAX_PROBLEMS,
    Backups,
    Order,
    Stack,
    accept_order,
    check_available,
    load_order,
    validate_order_text,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[3] / "examples" / "orders"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.yml"))
DELETE = object()

# The order from the brief: a custom managed dedicated server with every section filled.
BASE: dict[str, Any] = {
    "order": "BDC-2027-0103",
    "customer": {
        "name": "Boulangerie Martin SARL",
        "contact": {
            "name": "Jeanne Martin",
            "phone": "+33 6 12 34 56 78",
            "email": "jeanne.martin@example.fr",
        },
    },
    "service": "dedicated_server",
    "os": "debian13",
    "managed_level": "custom",
    "servers": [{"hostname": "web01.martin.example", "address": "192.0.2.10"}],
    "stack": {
        "web": {"php_version": "8.4"},
        "databases": ["mariadb", "postgresql"],
        "mail": True,
        "ftp": True,
        "webmail": True,
    },
    "backups": {
        "enabled": True,
        "time": "22:00",
        "retention_days": 28,
        "paths": ["/var/www", "/etc"],
    },
    "monitoring": {
        "http_checks": ["https://www.martin.example/"],
        "tcp_checks": ["web01.martin.example:25"],
    },
    "sla": {"monthly_fee_eur": 250, "gtr_hours": 4},
}
PLESK = {"managed_level": "plesk", "stack": DELETE, "plesk": {"license_vault_var": "vault_plesk"}}
NOT_CUSTOM = {"managed_level": "none", "stack": DELETE}
LICENSE_KEY = "A00B00-0CDE00-F0G000-HIJK00-LM0N00"


def changed(changes: dict[str, object], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of *base* (BASE) with each ``path: value`` set, or removed for DELETE."""
    data = copy.deepcopy(BASE if base is None else base)
    for path, value in changes.items():
        *parents, last = [
            int(token[1:-1]) if token.startswith("[") else token
            for token in re.findall(r"[^.\[\]]+|\[\d+\]", path)
        ]
        target: Any = data
        for part in parents:
            target = target[part]
        if value is DELETE:
            target.pop(last, None)
        else:
            target[last] = copy.deepcopy(value)
    return data


def render(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def problems_of(text: str, source: str = "order.yml") -> list[str]:
    """The problems validate_order_text reports for *text* (it must refuse it)."""
    with pytest.raises(UsageError) as caught:
        validate_order_text(text, source)
    assert caught.value.exit_status == 2
    assert caught.value.problems, "a refusal names at least one problem"
    return caught.value.problems


def timed(call: Callable[[], object]) -> tuple[list[str], float]:
    """Run *call*, which must raise UsageError; its problems and the CPU seconds it took.

    CPU time of this process, not wall-clock time: the budget is about the validator's
    own work, and must not depend on what else the machine runs (the suite runs lab
    tests side by side)."""
    start = time.process_time()
    with pytest.raises(UsageError) as caught:
        call()
    elapsed = time.process_time() - start
    assert caught.value.exit_status == 2
    return caught.value.problems, elapsed


# -- Bad orders: every field gets its bad values ---------------------------------------------


@dataclass(frozen=True)
class Bad:
    changes: dict[str, object]
    field: str  # every problem line must start with this path
    shows: str  # ... and one of them must show this (the bad value, or what is missing)


BAD = [
    # order
    Bad({"order": DELETE}, "order", "required field is missing"),
    Bad({"order": "bdc-2027-0103"}, "order", "'bdc-2027-0103' is not an order number"),
    Bad({"order": "B1"}, "order", "'B1'"),
    Bad({"order": "B" * 41}, "order", "'BBBB"),
    Bad({"order": "BDC 2027"}, "order", "'BDC 2027'"),
    Bad({"order": "BDC-2027\n"}, "order", "control character"),
    Bad({"order": True}, "order", "got boolean true; YAML reads unquoted yes/no"),
    Bad({"order": 20270103}, "order", "got integer 20270103"),
    Bad({"order": None}, "order", "empty value"),
    Bad({"order": ["BDC-1"]}, "order", "got a list"),
    # unknown fields, at every level
    Bad({"colour": "red"}, "colour", "unknown field (allowed: version, order, customer,"),
    Bad({"managed_levle": "custom"}, "managed_levle", "did you mean 'managed_level'?"),
    Bad({"customer.nom": "x"}, "customer.nom", "unknown field"),
    Bad({"customer.contact.fax": "x"}, "customer.contact.fax", "unknown field"),
    Bad({"servers[0].ip": "192.0.2.1"}, "servers[0].ip", "unknown field"),
    Bad({"stack.web.php": "8.4"}, "stack.web.php", "did you mean 'php_version'?"),
    Bad({"backups.retention": 28}, "backups.retention", "did you mean 'retention_days'?"),
    Bad({"monitoring.ping": True}, "monitoring.ping", "unknown field"),
    Bad({"sla.penalty": 1}, "sla.penalty", "unknown field"),
    Bad({"password": "hunter2"}, "password", "Ansible Vault"),
    Bad({"customer.api_token": "abc"}, "customer.api_token", "Ansible Vault"),
    # version
    Bad({"version": 2}, "version", "2 is not an order format"),
    Bad({"version": "1"}, "version", "'1'"),
    Bad({"version": True}, "version", "true"),
    # customer
    Bad({"customer": DELETE}, "customer", "required field is missing"),
    Bad({"customer": "Martin"}, "customer", "got text 'Martin'"),
    Bad({"customer.name": DELETE}, "customer.name", "required field is missing"),
    Bad({"customer.name": ""}, "customer.name", "'' is empty"),
    Bad({"customer.name": "   "}, "customer.name", "'   ' is empty"),
    Bad({"customer.name": 42}, "customer.name", "got integer 42"),
    Bad({"customer.name": "x" * 201}, "customer.name", "longer than 200"),
    Bad({"customer.name": "Martin\nSARL"}, "customer.name", "control character"),
    Bad({"customer.name": "{{ lookup('pipe', 'id') }}"}, "customer.name", "Jinja template"),
    Bad({"customer.contact": DELETE}, "customer.contact", "required when managed_level is 'cust"),
    Bad({"customer.contact": "Jeanne"}, "customer.contact", "got text 'Jeanne'"),
    Bad({"customer.contact.name": DELETE}, "customer.contact.name", "required field"),
    Bad({"customer.contact.phone": DELETE}, "customer.contact.phone", "required field"),
    Bad({"customer.contact.phone": "12 34"}, "customer.contact.phone", "'12 34' is not a phone"),
    Bad({"customer.contact.phone": "1" * 21}, "customer.contact.phone", "'111111"),
    Bad({"customer.contact.phone": "06 12 34 ext 5"}, "customer.contact.phone", "'06 12 34 ext 5'"),
    Bad({"customer.contact.phone": "06+12345678"}, "customer.contact.phone", "'06+12345678'"),
    Bad({"customer.contact.phone": 33612345678}, "customer.contact.phone", "integer 33612345678"),
    Bad({"customer.contact.email": DELETE}, "customer.contact.email", "required field"),
    Bad({"customer.contact.email": "jeanne"}, "customer.contact.email", "'jeanne' is not an"),
    Bad({"customer.contact.email": "j@localhost"}, "customer.contact.email", "'j@localhost'"),
    Bad({"customer.contact.email": "j m@ex.fr"}, "customer.contact.email", "'j m@ex.fr'"),
    # service, os, managed_level
    Bad({"service": DELETE}, "service", "required field is missing"),
    Bad({"service": "colocation"}, "service", "'colocation' is not one of dedicated_server,"),
    Bad({"service": 1}, "service", "got integer 1"),
    Bad({"os": "debian11"}, "os", "'debian11' is not one of debian13, debian12"),
    Bad({"os": 13}, "os", "got integer 13"),
    Bad({"managed_level": DELETE}, "managed_level", "required field is missing"),
    Bad(
        {"managed_level": "gold"},
        "managed_level",
        "'gold' is not one of none, basic, supervision, plesk, custom",
    ),
    Bad({"managed_level": False}, "managed_level", "got boolean false"),
    # bandwidth_mbps
    Bad({"bandwidth_mbps": 101}, "bandwidth_mbps", "only for service 'private_cloud'"),
    Bad({"service": "private_cloud", "bandwidth_mbps": 0}, "bandwidth_mbps", "0 is out of range"),
    Bad({"service": "private_cloud", "bandwidth_mbps": -5}, "bandwidth_mbps", "-5 is out of"),
    Bad({"service": "private_cloud", "bandwidth_mbps": "100"}, "bandwidth_mbps", "text '100'"),
    Bad({"service": "private_cloud", "bandwidth_mbps": 10.5}, "bandwidth_mbps", "number 10.5"),
    Bad({"service": "private_cloud", "bandwidth_mbps": True}, "bandwidth_mbps", "boolean true"),
    # servers
    Bad({"servers": DELETE}, "servers", "required field is missing"),
    Bad({"servers": []}, "servers", "needs at least 1 item"),
    Bad({"servers": "web01.martin.example"}, "servers", "got text 'web01.martin.example'"),
    Bad({"servers": ["web01.martin.example"]}, "servers[0]", "got text 'web01.martin.example'"),
    Bad({"servers": [None]}, "servers[0]", "a mapping of fields (hostname, address); got null"),
    Bad({"servers[0].hostname": DELETE}, "servers[0].hostname", "required field is missing"),
    Bad({"servers[0].hostname": "web01"}, "servers[0].hostname", "'web01' is not a fully"),
    Bad({"servers[0].hostname": "Web01.example.fr"}, "servers[0].hostname", "'Web01.example.fr'"),
    Bad({"servers[0].hostname": "web_01.example.fr"}, "servers[0].hostname", "'web_01.example"),
    Bad({"servers[0].hostname": "-web.example.fr"}, "servers[0].hostname", "'-web.example.fr'"),
    Bad({"servers[0].hostname": "web-.example.fr"}, "servers[0].hostname", "'web-.example.fr'"),
    Bad({"servers[0].hostname": "web..example.fr"}, "servers[0].hostname", "'web..example.fr'"),
    Bad({"servers[0].hostname": "web.example.fr."}, "servers[0].hostname", "'web.example.fr.'"),
    Bad({"servers[0].hostname": "a" * 64 + ".fr"}, "servers[0].hostname", "'aaaa"),
    Bad({"servers[0].hostname": ("a" * 63 + ".") * 4 + "fr"}, "servers[0].hostname", "'aaaa"),
    Bad({"servers[0].hostname": "192.0.2.10"}, "servers[0].hostname", "'192.0.2.10'"),
    Bad({"servers[0].hostname": 1.5}, "servers[0].hostname", "got number 1.5"),
    Bad({"servers[0].address": "192.0.2.300"}, "servers[0].address", "'192.0.2.300' is not an"),
    Bad({"servers[0].address": "192.0.2.010"}, "servers[0].address", "'192.0.2.010'"),
    Bad({"servers[0].address": "2001:db8::g"}, "servers[0].address", "'2001:db8::g'"),
    Bad({"servers[0].address": "0.0.0.0"}, "servers[0].address", "cannot be"),  # noqa: S104
    Bad({"servers[0].address": "ff02::1"}, "servers[0].address", "'ff02::1' cannot be"),
    Bad({"servers[0].address": 3221225994}, "servers[0].address", "got integer 3221225994"),
    Bad({"servers[0].address": None}, "servers[0].address", "empty value"),
    Bad(
        {"servers": [{"hostname": "app1.lemoine.example"}, {"hostname": "app1.lemoine.example"}]},
        "servers[1].hostname",
        "duplicate of servers[0] ('app1.lemoine.example')",
    ),
    Bad(
        {
            "servers": [
                {"hostname": "a.lemoine.example", "address": "2001:db8::1"},
                {"hostname": "b.lemoine.example", "address": "2001:DB8:0::1"},
            ]
        },
        "servers[1].address",
        "duplicate of servers[0] ('2001:db8::1')",
    ),
    # stack
    Bad({"stack": DELETE}, "stack", "required when managed_level is 'custom'"),
    Bad({"stack": ["mariadb"]}, "stack", "got a list"),
    Bad({"managed_level": "none"}, "stack", "not allowed for managed_level 'none'"),
    Bad({"managed_level": "plesk", "plesk": {"license_vault_var": "v"}}, "stack", "'plesk'"),
    Bad({"stack.web": "nginx"}, "stack.web", "got text 'nginx'"),
    Bad({"stack.web": {}}, "stack.web.php_version", "required field is missing"),
    Bad({"stack.web.php_version": 8.4}, "stack.web.php_version", "got number 8.4; YAML reads it"),
    Bad({"stack.web.php_version": 8.4}, "stack.web.php_version", 'quote it ("8.4")'),
    Bad({"stack.web.php_version": "8.2"}, "stack.web.php_version", "'8.2' is not provided by"),
    Bad(
        {"os": "debian12", "stack.mail": False, "stack.ftp": False, "stack.webmail": False},
        "stack.web",
        "'8.4' is not provided by debian12",
    ),
    # what the roles support per release (plugins/module_utils/releases.py): refused here,
    # before any host is touched, as the roles would refuse it on the host
    Bad(
        {"os": "debian12", "stack": {"web": {"php_version": "8.2"}}},
        "stack.web",
        "not available on os 'debian12' (the web role supports Debian 13 only",
    ),
    Bad(
        {"os": "debian12", "stack": {"mail": True}},
        "stack.mail",
        "not available on os 'debian12' (the mail role supports Debian 13 only",
    ),
    Bad(
        {"os": "debian12", "stack": {"ftp": True}},
        "stack.ftp",
        "not available on os 'debian12' (the ftp role supports Debian 13 only",
    ),
    Bad(
        {"os": "debian12", "stack": {"mail": True, "webmail": True}},
        "stack.",
        "stack.webmail: not available on os 'debian12'",
    ),
    Bad({"stack.web.php_version": "8.4.1"}, "stack.web.php_version", "'8.4.1'"),
    Bad({"stack.databases": "mariadb"}, "stack.databases", "got text 'mariadb'"),
    Bad({"stack.databases": ["oracle"]}, "stack.databases[0]", "'oracle' is not one of mariadb,"),
    Bad({"stack.databases": ["MariaDB"]}, "stack.databases[0]", "'MariaDB'"),
    Bad(
        {"stack.databases": ["mariadb", "postgresql", "mariadb"]},
        "stack.databases[2]",
        "duplicate of stack.databases[0] ('mariadb')",
    ),
    Bad({"stack.mail": "yes"}, "stack.mail", "expected true or false; got text 'yes'"),
    Bad({"stack.ftp": 1}, "stack.ftp", "got integer 1"),
    Bad({"stack.webmail": None}, "stack.webmail", "empty value"),
    Bad({"stack.mail": False}, "stack.webmail", "true needs stack.mail: true"),
    # plesk
    Bad({**PLESK, "plesk": DELETE}, "plesk", "required when managed_level is 'plesk'"),
    Bad({"plesk": {"license_vault_var": "vault_plesk"}}, "plesk", "not allowed for managed_level"),
    Bad({**PLESK, "plesk": "vault_plesk"}, "plesk", "got text 'vault_plesk'"),
    Bad({**PLESK, "plesk.license_vault_var": DELETE}, "plesk.license_vault_var", "required"),
    Bad({**PLESK, "plesk.license_vault_var": "Vault"}, "plesk.license_vault_var", "'Vault' is not"),
    Bad({**PLESK, "plesk.license_vault_var": "1vault"}, "plesk.license_vault_var", "'1vault'"),
    Bad({**PLESK, "plesk.license_vault_var": 12}, "plesk.license_vault_var", "integer 12"),
    Bad(
        {**PLESK, "plesk.license_vault_var": LICENSE_KEY},
        "plesk.license_vault_var",
        "secrets go in Ansible Vault",
    ),
    Bad(
        {**PLESK, "plesk.license_vault_var": "{{ vault_plesk }}"},
        "plesk.license_vault_var",
        "Jinja template",
    ),
    Bad({**PLESK, "plesk.license_key": "x"}, "plesk.license_key", "Ansible Vault"),
    # backups
    Bad({"backups": "daily"}, "backups", "got text 'daily'"),
    Bad({"backups.enabled": "yes"}, "backups.enabled", "got text 'yes'"),
    Bad({"backups.enabled": 1}, "backups.enabled", "got integer 1"),
    Bad({"backups.time": 1320}, "backups.time", 'unquoted 22:00: quote it ("22:00")'),
    Bad({"backups.time": "25:00"}, "backups.time", "'25:00' is not a time of day"),
    Bad({"backups.time": "9:00"}, "backups.time", "'9:00'"),
    Bad({"backups.time": "22:00:00"}, "backups.time", "'22:00:00'"),
    Bad({"backups.time": 2200}, "backups.time", "got integer 2200"),
    Bad({"backups.retention_days": 0}, "backups.retention_days", "0 is out of range 1..365"),
    Bad({"backups.retention_days": 366}, "backups.retention_days", "366 is out of range 1..365"),
    Bad({"backups.retention_days": -7}, "backups.retention_days", "-7 is out of range"),
    Bad({"backups.retention_days": True}, "backups.retention_days", "got boolean true"),
    Bad({"backups.retention_days": 28.0}, "backups.retention_days", "got number 28.0"),
    Bad({"backups.retention_days": "28"}, "backups.retention_days", "write it without quotes"),
    Bad({"backups.paths": "/etc"}, "backups.paths", "got text '/etc'"),
    Bad({"backups.paths": ["etc"]}, "backups.paths[0]", "'etc' is not an absolute path"),
    Bad({"backups.paths": ["/var/www/../etc"]}, "backups.paths[0]", "'/var/www/../etc'"),
    Bad({"backups.paths": ["/var/\x00www"]}, "backups.paths[0]", "control character"),
    Bad({"backups.paths": [""]}, "backups.paths[0]", "'' is empty"),
    Bad({"backups.paths": [7]}, "backups.paths[0]", "got integer 7"),
    Bad(
        {"backups.paths": ["/var/www", "/var//www/."]},
        "backups.paths[1]",
        "duplicate of backups.paths[0] ('/var/www')",
    ),
    # monitoring
    Bad({"monitoring": ["https://x.example/"]}, "monitoring", "got a list"),
    Bad({"monitoring.http_checks": "https://x.fr/"}, "monitoring.http_checks", "text 'https"),
    Bad({"monitoring.http_checks": ["ftp://x.example/"]}, "monitoring.http_checks[0]", "'ftp:"),
    Bad({"monitoring.http_checks": ["www.martin.example"]}, "monitoring.http_checks[0]", "'www"),
    Bad({"monitoring.http_checks": ["https://"]}, "monitoring.http_checks[0]", "'https://'"),
    Bad({"monitoring.http_checks": ["https://a b.fr/"]}, "monitoring.http_checks[0]", "'https:"),
    Bad({"monitoring.http_checks": ["http://[::1/"]}, "monitoring.http_checks[0]", "not a URL"),
    Bad({"monitoring.http_checks": ["http://x.fr:99999/"]}, "monitoring.http_checks[0]", "URL"),
    Bad({"monitoring.http_checks": ["http://x_y/"]}, "monitoring.http_checks[0]", "valid host"),
    Bad(
        {"monitoring.http_checks": ["https://x.fr/", "https://x.fr/"]},
        "monitoring.http_checks[1]",
        "duplicate of monitoring.http_checks[0]",
    ),
    Bad({"monitoring.tcp_checks": ["web01.martin.example"]}, "monitoring.tcp_checks[0]", "HOST:"),
    Bad({"monitoring.tcp_checks": ["web01.martin.example:0"]}, "monitoring.tcp_checks[0]", ":0'"),
    Bad({"monitoring.tcp_checks": ["a.example:65536"]}, "monitoring.tcp_checks[0]", "65536"),
    Bad({"monitoring.tcp_checks": ["a.example:smtp"]}, "monitoring.tcp_checks[0]", "'a.example"),
    Bad({"monitoring.tcp_checks": ["2001:db8::1:25"]}, "monitoring.tcp_checks[0]", "goes in [ ]"),
    Bad({"monitoring.tcp_checks": ["[192.0.2.1]:25"]}, "monitoring.tcp_checks[0]", "IPv6"),
    Bad({"monitoring.tcp_checks": ["web01:25"]}, "monitoring.tcp_checks[0]", "'web01:25'"),
    Bad({"monitoring.tcp_checks": [25]}, "monitoring.tcp_checks[0]", "got integer 25"),
    Bad({"monitoring.tls_checks": ["mx.martin.example"]}, "monitoring.tls_checks[0]", "HOST:"),
    Bad(
        {"monitoring.tls_checks": ["https://x.fr/"]}, "monitoring.tls_checks[0]", "'https://x.fr/'"
    ),
    # sla
    Bad({"sla": 250}, "sla", "got integer 250"),
    Bad({"sla.monthly_fee_eur": DELETE}, "sla.monthly_fee_eur", "required field is missing"),
    Bad({"sla.monthly_fee_eur": -1}, "sla.monthly_fee_eur", "-1 must be >= 0"),
    Bad({"sla.monthly_fee_eur": "250"}, "sla.monthly_fee_eur", "got text '250'"),
    Bad({"sla.monthly_fee_eur": True}, "sla.monthly_fee_eur", "got boolean true"),
    Bad({"sla.monthly_fee_eur": float("inf")}, "sla.monthly_fee_eur", "inf is not a finite"),
    Bad({"sla.monthly_fee_eur": float("nan")}, "sla.monthly_fee_eur", "nan is not a finite"),
    Bad({"sla.gtr_hours": 0}, "sla.gtr_hours", "0 must be > 0"),
    Bad({"sla.gtr_hours": -4}, "sla.gtr_hours", "-4 must be > 0"),
    Bad({"sla.gtr_hours": "4h"}, "sla.gtr_hours", "got text '4h'"),
    # rules between fields
    Bad(
        {**NOT_CUSTOM, "managed_level": "basic", "customer.contact": DELETE},
        "customer.contact",
        "required when managed_level is 'basic'",
    ),
    Bad(
        {**NOT_CUSTOM, "managed_level": "supervision", "customer.contact": DELETE},
        "customer.contact",
        "required when managed_level is 'supervision'",
    ),
]


def _case_id(case: Bad) -> str:
    value = next(iter(case.changes.values()))
    shown = "<deleted>" if value is DELETE else repr(value)  # stable across processes
    return f"{case.field}={shown}"[:60]


@pytest.mark.parametrize("case", BAD, ids=[_case_id(case) for case in BAD])
def test_bad_order_names_the_field_and_the_value(case: Bad) -> None:
    problems = problems_of(render(changed(case.changes)))
    assert all(line.startswith(case.field) for line in problems), problems
    assert any(case.shows in line for line in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        render(
            changed(
                {
                    "colour": "red",
                    "managed_level": "gold",
                    "backups.retention_days": 0,
                    "servers": [
                        {"hostname": "app1.lemoine.example"},
                        {"hostname": "app1.lemoine.example"},
                    ],
                    "stack.web.php_version": 8.4,
                }
            )
        )
    )
    assert problems == [
        "colour: unknown field (allowed: version, order, customer, service,"
        " os, managed_level, bandwidth_mbps, servers, stack, plesk, backups, monitoring, sla,"
        " firewall, allow_irc)",
        "managed_level: 'gold' is not one of none, basic, supervision, plesk, custom",
        "servers[1].hostname: duplicate of servers[0] ('app1.lemoine.example')",
        "stack.web.php_version: expected text; got number 8.4; YAML reads it as a number: quote"
        ' it ("8.4")',
        "backups.retention_days: 0 is out of range 1..365",
    ]


@pytest.mark.parametrize(
    ("changes", "secret"),
    [
        ({**PLESK, "plesk.license_vault_var": LICENSE_KEY}, LICENSE_KEY),
        ({**PLESK, "plesk.license_vault_var": "Zq8-LongSecretValue"}, "Zq8-LongSecretValue"),
        ({"customer.name": LICENSE_KEY}, LICENSE_KEY),
        ({"customer.name": "-----BEGIN RSA PRIVATE KEY----- MIIE"}, "MIIE"),
        ({"monitoring.http_checks": ["https://admin:s3cr3t@x.example/"]}, "s3cr3t"),
    ],
)
def test_secrets_are_refused_without_being_shown(changes: dict[str, object], secret: str) -> None:
    problems = problems_of(render(changed(changes)))
    assert any("secrets go in Ansible Vault" in line for line in problems), problems
    assert not any(secret in line for line in problems), problems


def test_problems_are_capped() -> None:
    problems = problems_of(render(changed({"backups.paths": [f"relative{i}" for i in range(80)]})))
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[0] == "backups.paths[0]: 'relative0' is not an absolute path"
    assert problems[-1] == "order.yml: and 30 more problems"


# -- Problems with the file itself -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "order.yml: the order is empty"),
        ("# nothing but a comment\n", "order.yml: the order is empty"),
        ("---\n...\n", "order.yml: the order is empty"),
        ("- order: BDC-1\n", "order.yml: expected an order: a mapping of fields (version, order,"),
        ("BDC-2027-0103\n", "got text 'BDC-2027-0103'"),
        ("42\n", "got integer 42"),
        ("order: A\n  customer: B\n", "order.yml: YAML syntax error at line 2, column 11:"),
        ("order: BDC-1\nservers: [a\n", "order.yml: YAML syntax error at line 3"),
        ("a: 1\n---\nb: 2\n", "but found another document"),
        ("order: BDC-1\norder: BDC-2\n", "order.yml: line 2: duplicate key 'order' (first at"),
        ("sla: {gtr_hours: 4, gtr_hours: 8}\n", "line 1: duplicate key 'gtr_hours'"),
        ("? [a, b]\n: 1\n", "order.yml: line 1: a key must be a plain value, not a list"),
        ("order: !!python/object/apply:os.system [id]\n", "YAML tag !!python/object/apply:os."),
        ("order: !!binary aGVsbG8=\n", "YAML tag !!binary is not allowed"),
        ("order: !custom x\n", "YAML tag !custom is not allowed"),
        ("servers: !!set {a: null}\n", "YAML tag !!set is not allowed"),
        ("<<: {order: BDC-1}\n", "merge keys (<<) are not allowed"),
        ("a: &x 1\nb: *x\n", "aliases (&name, *name) are not allowed"),
        ("order: \x00\n", "order.yml: character U+0000 at line 1 is not allowed in YAML"),
        ("order: !!float abc\n", "order.yml: cannot read this YAML:"),
        ("order: " + "9" * 5000 + "\n", "order.yml: cannot read this YAML:"),
        ("1: x\n", "order.yml: field name 1 is not text"),
        ("yes: x\n", "order.yml: field name true is not text"),
        ("order: 2027-01-03\n", "order: '2027-01-03' is not an order number"),
    ],
)
def test_file_problems(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert any(expected in line for line in problems), problems


def test_syntax_error_names_its_line() -> None:
    text = render(BASE).replace("service: dedicated_server", "service: [dedicated_server")
    line = text.splitlines().index("service: [dedicated_server") + 1
    (problem,) = problems_of(text)
    assert re.match(rf"order\.yml: YAML syntax error at line {line + 1}, column \d+: ", problem)


def test_load_order_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bdc.yml"
    path.write_text(render(BASE), encoding="utf-8")
    assert load_order(path) == validate_order_text(render(BASE))
    assert load_order(str(path)).id == "BDC-2027-0103"


def test_load_order_names_the_file_in_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "bdc.yml"
    path.write_text("order: [\n", encoding="utf-8")
    (problem,) = problems_of_file(path)
    assert problem.startswith(f"{path}: YAML syntax error at line 2")


def problems_of_file(path: Path) -> list[str]:
    with pytest.raises(UsageError) as caught:
        load_order(path)
    assert caught.value.exit_status == 2
    return caught.value.problems


def test_load_order_missing_file(tmp_path: Path) -> None:
    (problem,) = problems_of_file(tmp_path / "nope.yml")
    assert problem == f"{tmp_path / 'nope.yml'}: cannot read the order: No such file or directory"


def test_load_order_directory(tmp_path: Path) -> None:
    (problem,) = problems_of_file(tmp_path)
    assert problem.startswith(f"{tmp_path}: cannot read the order: ")


def test_load_order_fifo_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO would block the open forever (nobody writes to it): refused before opening."""
    fifo = tmp_path / "order.yml"
    os.mkfifo(fifo)
    started = time.monotonic()
    (problem,) = problems_of_file(fifo)
    assert problem == f"{fifo}: cannot read the order: a FIFO, not a regular file"
    assert time.monotonic() - started < 2


def test_load_order_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes("order: BDC-1\ncustomer:\n  name: Boulangerie Légère\n".encode("latin-1"))
    (problem,) = problems_of_file(path)
    assert problem == (
        f"{path}: not UTF-8 text: byte 0xe9 at line 3 (offset 44); save the order as UTF-8"
    )


def test_load_order_accepts_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "windows.yml"
    path.write_bytes(b"\xef\xbb\xbf" + render(BASE).replace("\n", "\r\n").encode())
    assert load_order(path) == validate_order_text(render(BASE))


# -- Hostile input: answered within a second, never a traceback -----------------------------

# "Billion laughs": nine levels of nine aliases each, a billion strings once expanded.
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@dataclass(frozen=True)
class Hostile:
    name: str
    text: str | bytes
    expected: str


HOSTILE = [
    Hostile("alias bomb", ALIAS_BOMB, "aliases (&name, *name) are not allowed"),
    Hostile("10 MB file", "a: " + "x" * (10 * 1024 * 1024) + "\n", "10485764 bytes is too big"),
    Hostile("100k-element list", "[" + ",".join(["1"] * 100_000) + "]", "bytes is too big"),
    Hostile("30k values under the size limit", "[" + ",".join(["1"] * 30_000) + "]", "values"),
    Hostile("10000-deep flow list", "[" * 10_000 + "]" * 10_000, "nest"),
    Hostile("10000-deep flow mapping", "{a: " * 10_000 + "}" * 10_000, "nest"),
    Hostile("200-deep block mapping", "".join(f"{'  ' * i}a:\n" for i in range(200)), "nested"),
    Hostile("empty file", "", "the order is empty"),
    Hostile("only blank lines", "\n\n\n   \n", "the order is empty"),
    Hostile("binary garbage", bytes((i * 151 + 17) % 256 for i in range(65536)), "not UTF-8"),
    Hostile("NUL bytes", b"\x00" * 4096, "is not allowed in YAML"),
    Hostile("control characters", "order: \x1b[31mred\n", "is not allowed in YAML"),
    Hostile("huge key", "x" * 60_000 + ": 1\n", "YAML syntax error"),
    Hostile("long key", "x" * 1000 + ": 1\n", "xxx...: unknown field"),
    Hostile("huge integer", "bandwidth_mbps: " + "9" * 60_000 + "\n", "cannot read this YAML"),
    Hostile("many problems", "servers:\n" + "- {hostname: x}\n" * 3000, "more problems"),
    Hostile("unclosed quote", 'order: "BDC' + "x" * 60_000, "YAML syntax error"),
]


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each hostile input is tried with libyaml and with PyYAML's pure-Python fallback."""
    if request.param == "pure-python":
        monkeypatch.setattr(yamlfile, "_Loader", yamlfile._PythonLoader)
    elif not yaml.__with_libyaml__:
        pytest.fail("PyYAML is built without libyaml: the fast path is not tested")
    yield request.param


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_input_is_refused_within_a_second(
    case: Hostile, yaml_loader: str, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.yml"
    if isinstance(case.text, bytes):
        path.write_bytes(case.text)
    else:
        path.write_text(case.text, encoding="utf-8")
    problems, elapsed = timed(lambda: load_order(path))
    assert elapsed < 1.0, f"{case.name}: {elapsed:.2f} s"
    assert any(case.expected in line for line in problems), problems
    assert len(problems) <= MAX_PROBLEMS + 1
    assert all(len(line) < 400 for line in problems), "a problem line stays readable"


HOSTILE_TEXTS = [case for case in HOSTILE if isinstance(case.text, str)]


@pytest.mark.parametrize("case", HOSTILE_TEXTS, ids=[case.name for case in HOSTILE_TEXTS])
def test_hostile_text_is_refused_within_a_second(case: Hostile, yaml_loader: str) -> None:
    text = str(case.text)
    problems, elapsed = timed(lambda: validate_order_text(text, "order.yml"))
    assert elapsed < 1.0, f"{case.name}: {elapsed:.2f} s"
    assert problems


def test_limits_are_what_the_messages_say() -> None:
    assert MAX_ORDER_BYTES == 64 * 1024
    too_big = "a: " + "x" * MAX_ORDER_BYTES
    (problem,) = problems_of(too_big)
    assert problem == (
        f"order.yml: {len(too_big)} bytes is too big for an order (the limit is 65536 bytes)"
    )
    deep = "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert problems_of(deep)[0].startswith("a: unknown field")
    deeper = "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert problems_of(deeper) == [f"order.yml: line 1: nested more than {MAX_DEPTH} levels deep"]
    many = "[" + ",".join(["1"] * MAX_NODES) + "]"
    (problem,) = problems_of(many)
    assert problem == f"order.yml: more than {MAX_NODES} values is too many for an order"


# -- Good orders ------------------------------------------------------------------------------

GOOD: dict[str, dict[str, object]] = {
    "the brief's example": {},
    "managed level none, no contact": {**NOT_CUSTOM, "customer.contact": DELETE},
    "managed level none with a contact": NOT_CUSTOM,
    "basic": {**NOT_CUSTOM, "managed_level": "basic"},
    "supervision": {**NOT_CUSTOM, "managed_level": "supervision"},
    "plesk on debian12": {**PLESK, "os": "debian12"},
    "plesk on debian13": PLESK,
    # the databases run on Debian 12 too; web, mail, FTP and webmail on 13 only
    "custom on debian12": {"os": "debian12", "stack": {"databases": ["mariadb", "postgresql"]}},
    "custom, empty stack": {"stack": {}},
    "custom, no web": {"stack.web": DELETE},
    "custom, mail without webmail": {"stack.webmail": False},
    "custom, mongodb": {"stack.databases": ["mongodb"]},
    "private cloud with bandwidth": {"service": "private_cloud", "bandwidth_mbps": 101},
    "private cloud without bandwidth": {"service": "private_cloud"},
    "shared hosting": {"service": "shared_hosting"},
    "format version 1": {"version": 1},
    "several servers, some without address": {
        "servers": [
            {"hostname": "web01.martin.example", "address": "192.0.2.10"},
            {"hostname": "web02.martin.example"},
            {"hostname": "db1.martin.example", "address": "2001:db8::10"},
            {"hostname": "db2.martin.example"},
        ]
    },
    "no address at all": {"servers": [{"hostname": "lab1.alixans.example"}]},
    "63-character label": {"servers": [{"hostname": "a" * 63 + ".example"}]},
    "phone with parentheses and dots": {"customer.contact.phone": "(0)6.12.34.56.78"},
    "backups off": {"backups": {"enabled": False}},
    "backups section empty of options": {"backups": {}},
    "no backups section": {"backups": DELETE},
    "no monitoring": {"monitoring": DELETE},
    "no sla": {"sla": DELETE},
    "fee in cents": {"sla.monthly_fee_eur": 249.99, "sla.gtr_hours": 0.5},
    "free service": {"sla.monthly_fee_eur": 0},
    "retention bounds": {"backups.retention_days": 365},
    "midnight": {"backups.time": "00:00"},
    "checks on v4 and v6": {
        "monitoring": {
            "http_checks": ["http://192.0.2.10:8080/status?x=1", "https://[2001:db8::1]/"],
            "tcp_checks": ["192.0.2.10:22", "[2001:db8::1]:443", "mx.martin.example:65535"],
            "tls_checks": ["mx.martin.example:993", "[2001:db8::1]:443"],
        }
    },
    "firewall on request, level none": {**NOT_CUSTOM, "firewall": True},
    "firewall on request, level basic": {**NOT_CUSTOM, "managed_level": "basic", "firewall": True},
    "firewall off, level basic": {**NOT_CUSTOM, "managed_level": "basic", "firewall": False},
    "firewall said again, level custom": {"firewall": True},
    "firewall said again, level plesk": {**PLESK, "firewall": True},
    "IRC allowed": {"allow_irc": True},
    "IRC said blocked": {**NOT_CUSTOM, "allow_irc": False},
    "non-ASCII names": {
        "customer.name": "Pâtisserie Éloïse & Fils",
        "customer.contact.name": "Zoé",
    },
}


@pytest.mark.parametrize("changes", GOOD.values(), ids=list(GOOD))
def test_good_order(changes: dict[str, object]) -> None:
    data = changed(changes)
    order = validate_order_text(render(data))
    assert order.id == data["order"]
    assert order.managed_level == data["managed_level"]
    assert [server.hostname for server in order.servers] == [
        server["hostname"] for server in data["servers"]
    ]


def test_values_are_normalised() -> None:
    order = validate_order_text(
        render(
            changed(
                {
                    "servers[0].address": "2001:DB8:0:0::1",
                    "backups.paths": ["/var/www/", "//etc/./ssl"],
                }
            )
        )
    )
    assert order.servers[0].address == "2001:db8::1"
    assert order.backups.paths == ("/var/www", "/etc/ssl")


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_orders_validate(path: Path) -> None:
    order = load_order(path)
    assert path.stem.replace("-", "_") in (order.managed_level, order.service)


def test_there_is_an_example_per_managed_level() -> None:
    levels = {load_order(path).managed_level for path in EXAMPLES}
    assert levels == {"none", "basic", "supervision", "plesk", "custom"}
    assert "shared_hosting" in {load_order(path).service for path in EXAMPLES}


# -- Defaults -----------------------------------------------------------------------------------

MINIMAL = {
    "order": "BDC-2027-0001",
    "customer": {"name": "Alixans"},
    "service": "dedicated_server",
    "managed_level": "none",
    "servers": [{"hostname": "lab1.alixans.example"}],
}


def test_defaults_of_a_minimal_order() -> None:
    order = validate_order_text(render(MINIMAL))
    assert order.os == "debian13"
    assert order.backups == Backups(enabled=True, time="22:00", retention_days=28, paths=())
    assert order.stack == Stack(web=None, databases=(), mail=False, ftp=False, webmail=False)
    assert order.monitoring.http_checks == ()
    assert order.monitoring.tcp_checks == ()
    assert order.monitoring.tls_checks == ()
    assert order.customer.contact is None
    assert order.servers[0].address is None
    assert (order.bandwidth_mbps, order.plesk, order.sla) == (None, None, None)


@pytest.mark.parametrize(
    ("service", "backups", "days"),
    [
        ("shared_hosting", None, 7),
        ("shared_hosting", {"enabled": True}, 7),
        ("shared_hosting", {"retention_days": 14}, 14),
        ("dedicated_server", None, 28),
        ("dedicated_server", {"time": "03:15"}, 28),
        ("private_cloud", None, 28),
        ("private_cloud", {"retention_days": 1}, 1),
    ],
)
def test_retention_default_depends_on_the_service(
    service: str, backups: dict[str, object] | None, days: int
) -> None:
    data: dict[str, object] = {**MINIMAL, "service": service}
    if backups is not None:
        data["backups"] = backups
    order = validate_order_text(render(data))
    assert order.backups.retention_days == days
    assert order.backups.time == (backups or {}).get("time", "22:00")


# -- to_vars --------------------------------------------------------------------------------------


def order_from_vars(variables: dict[str, Any]) -> dict[str, Any]:
    """The inverse of Order.to_vars, in the order file's shape (absent values left out)."""

    def prune(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: prune(item) for key, item in value.items() if item is not None}
        if isinstance(value, list):
            return [prune(item) for item in value]
        return value

    data = {key.removeprefix("hostops_"): value for key, value in variables.items()}
    if data["managed_level"] != "custom":
        del data["stack"]  # the all-empty default, which only custom orders may spell out
    result: dict[str, Any] = prune(data)
    return result


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_to_vars_round_trips(path: Path) -> None:
    order = load_order(path)
    variables = order.to_vars()
    assert json.loads(json.dumps(variables)) == variables, "plain data only"
    assert validate_order_text(render(order_from_vars(variables))) == order


def test_to_vars_of_the_brief_example() -> None:
    variables = validate_order_text(render(BASE)).to_vars()
    assert variables == {
        "hostops_order": "BDC-2027-0103",
        "hostops_customer": BASE["customer"],
        "hostops_service": "dedicated_server",
        "hostops_os": "debian13",
        "hostops_managed_level": "custom",
        "hostops_bandwidth_mbps": None,
        # the optional mail fields come with their defaults
        "hostops_stack": {**BASE["stack"], "antispam": False, "mail_profile": "mailbox"},
        "hostops_plesk": None,
        "hostops_backups": BASE["backups"],
        # the certificates to watch come with their default, none
        "hostops_monitoring": {**BASE["monitoring"], "tls_checks": []},
        "hostops_sla": BASE["sla"],
        "hostops_servers": BASE["servers"],
        "hostops_firewall": None,
        "hostops_allow_irc": None,
    }


@pytest.mark.parametrize(
    ("stack", "problem"),
    [
        ({"mail": False, "antispam": True}, "stack.antispam: true needs stack.mail: true"),
        ({"mail": True, "antispam": "yes"}, "stack.antispam:"),
        ({"mail": True, "mail_profile": "bulk"}, "stack.mail_profile: 'bulk'"),
        ({"mail": False, "mail_profile": "transactional"}, "stack.mail_profile: 'transactional'"),
    ],
)
def test_mail_options(stack: dict[str, Any], problem: str) -> None:
    data = {**BASE, "stack": {**BASE["stack"], "webmail": False, **stack}}
    problems = problems_of(render(data))
    assert any(line.startswith(problem) for line in problems), problems


def test_mail_options_accepted() -> None:
    data = {**BASE, "stack": {**BASE["stack"], "antispam": True, "mail_profile": "transactional"}}
    order = validate_order_text(render(data))
    assert order.stack.antispam is True
    assert order.stack.mail_profile == "transactional"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"firewall": False}, "firewall: false is not allowed for managed_level 'custom'"),
        (
            {**NOT_CUSTOM, "managed_level": "supervision", "firewall": False},
            "firewall: false is not allowed for managed_level 'supervision'",
        ),
        ({**PLESK, "firewall": False}, "firewall: false is not allowed for managed_level 'plesk'"),
        ({**NOT_CUSTOM, "firewall": "yes"}, "firewall: expected true or false; got text 'yes'"),
        ({**NOT_CUSTOM, "firewall": 1}, "firewall: expected true or false; got integer 1"),
        ({**NOT_CUSTOM, "firewall": None}, "firewall: empty value"),
        ({**NOT_CUSTOM, "firewall": {"enabled": True}}, "firewall: expected true or false"),
    ],
)
def test_firewall_option_refused(changes: dict[str, object], problem: str) -> None:
    problems = problems_of(render(changed(changes)))
    assert any(line.startswith(problem) for line in problems), problems


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"firewall": True}, True),
        (NOT_CUSTOM, None),
        ({**NOT_CUSTOM, "firewall": True}, True),
        ({**NOT_CUSTOM, "managed_level": "basic", "firewall": False}, False),
    ],
)
def test_firewall_option_reaches_the_playbooks(
    changes: dict[str, object], expected: bool | None
) -> None:
    order = validate_order_text(render(changed(changes)))
    assert order.firewall is expected
    assert order.to_vars()["hostops_firewall"] is expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("yes", "allow_irc: expected true or false; got text 'yes'"),
        (None, "allow_irc: empty value"),
        ([6667], "allow_irc: expected true or false"),
    ],
)
def test_allow_irc_refused(value: object, problem: str) -> None:
    problems = problems_of(render(changed({"allow_irc": value})))
    assert any(line.startswith(problem) for line in problems), problems


@pytest.mark.parametrize(("changes", "expected"), [({}, None), ({"allow_irc": True}, True)])
def test_allow_irc_reaches_the_playbooks(changes: dict[str, object], expected: bool | None) -> None:
    """IRC is blocked unless the order says allow_irc: true (playbooks/firewall.yml)."""
    order = validate_order_text(render(changed(changes)))
    assert order.allow_irc is expected
    assert order.to_vars()["hostops_allow_irc"] is expected
    # an AWX job's extra variables are read back the same way
    assert order_rules.vars_problems(order.to_vars()) == []


def test_firewall_on_plesk_is_available() -> None:
    # Plesk's firewall extension, driven by the plesk role (roles/plesk/tasks/firewall.yml)
    assert check_available(order_of({**PLESK, "os": "debian12", "firewall": True})) == []
    assert check_available(order_of({**PLESK, "os": "debian12"})) == []


def test_order_is_frozen() -> None:
    order = validate_order_text(render(BASE))
    with pytest.raises(AttributeError):
        order.id = "BDC-OTHER"  # type: ignore[misc]
    assert isinstance(order.servers, tuple)
    assert isinstance(order.stack.databases, tuple)


# -- What the toolkit can provision now ---------------------------------------------------------

ALL = dict.fromkeys(AVAILABLE, True)
NONE = dict.fromkeys(AVAILABLE, False)


def order_of(changes: dict[str, object]) -> Order:
    return validate_order_text(render(changed(changes)))


def test_everything_available_means_no_problem() -> None:
    assert check_available(order_of({}), ALL) == []


def test_nothing_available() -> None:
    assert check_available(order_of({}), NONE) == [
        "managed_level: 'custom' is not available yet (the stack roles have not landed)",
        "backups.enabled: true is not available yet (the backup role has not landed);"
        " set it to false for now",
        "monitoring.http_checks: not available yet (the monitoring role has not landed);"
        " leave the list empty for now",
        "monitoring.tcp_checks: not available yet (the monitoring role has not landed);"
        " leave the list empty for now",
    ]


def test_stack_parts_are_checked_once_custom_is_available() -> None:
    available = {**ALL, "stack.databases.postgresql": False, "stack.ftp": False}
    assert check_available(order_of({}), available) == [
        "stack.databases: 'postgresql' is not available yet (the PostgreSQL role has not landed)",
        "stack.ftp: true is not available yet (the FTP role has not landed)",
    ]


def test_unlisted_capability_counts_as_not_available() -> None:
    available = {key: ready for key, ready in ALL.items() if key != "managed_level.plesk"}
    assert check_available(order_of(PLESK), available) == [
        "managed_level: 'plesk' is not available yet (the Plesk role has not landed)"
    ]


@pytest.mark.parametrize(
    ("changes", "unavailable", "expected"),
    [
        (
            {**NOT_CUSTOM, "managed_level": "basic"},
            "managed_level.basic",
            "managed_level: 'basic' is not available yet (the monitoring role has not landed)",
        ),
        (
            PLESK,
            "managed_level.plesk",
            "managed_level: 'plesk' is not available yet (the Plesk role has not landed)",
        ),
        (
            {"backups.enabled": True},
            "backups",
            "backups.enabled: true is not available yet (the backup role has not landed);"
            " set it to false for now",
        ),
        (
            {"stack.databases": ["mongodb"]},
            "stack.databases.mongodb",
            "stack.databases: 'mongodb' is not available yet"
            " (Debian does not package MongoDB and no role installs it)",
        ),
    ],
)
def test_one_missing_capability(
    changes: dict[str, object], unavailable: str, expected: str
) -> None:
    assert check_available(order_of(changes), {**ALL, unavailable: False}) == [expected]


def test_what_is_not_asked_for_is_not_reported() -> None:
    order = order_of({**NOT_CUSTOM, "backups.enabled": False, "monitoring": DELETE})
    assert check_available(order, NONE) == [
        "managed_level: 'none' is not available yet (it is not implemented yet)"
    ]
    assert check_available(order, {"managed_level.none": True}) == []


def test_the_current_table() -> None:
    """An unmanaged server without backups can always be provisioned; every gap says why."""
    assert check_available(load_order(EXAMPLES_DIR / "none.yml")) == []
    reasons = order_rules._NOT_LANDED
    assert set(reasons) <= set(AVAILABLE), "a reason for a capability the table does not list"
    assert all(key in reasons for key, ready in AVAILABLE.items() if not ready)


def test_accept_order_checks_the_schema_then_availability(tmp_path: Path) -> None:
    assert accept_order(EXAMPLES_DIR / "none.yml", AVAILABLE).id == "BDC-2027-0101"
    with pytest.raises(UsageError) as caught:
        accept_order(EXAMPLES_DIR / "custom.yml", {**ALL, "backups": False})
    assert caught.value.exit_status == 2
    assert caught.value.problems == [
        "backups.enabled: true is not available yet (the backup role has not landed);"
        " set it to false for now"
    ]
    broken = tmp_path / "broken.yml"
    broken.write_text(render(changed({"managed_level": "gold"})), encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        accept_order(broken, NONE)
    assert caught.value.problems == [
        "managed_level: 'gold' is not one of none, basic, supervision, plesk, custom"
    ]
