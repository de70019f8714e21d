"""The Plesk back end's command lines, checked exactly (plugins/module_utils/plesk_commands.py).

Pure tests: nothing here talks to Plesk (its installer cannot be reached from our
machines). The tests that run the stdin-to-environment wrapper for real use a RECORDING
STAND-IN for ``plesk`` (a few lines of Python that print what they received), named as
such; the same command lines are run against the full recording stand-in on a lab host
by tests/integration/test_plesk_standin.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from hostops.module_utils import plesk_commands as pc
from hostops.module_utils.problems import InputProblems

ROOT = Path(__file__).resolve().parents[3]
WRAPPER = (
    "/bin/sh",
    "-c",
    'IFS= read -r PSA_PASSWORD && export PSA_PASSWORD && exec "$@"',
    "plesk-secret-env",
)

# (verb, args, guard argv, guard expected output, create argv, password env, append -ip)
CASES = [
    (
        "vhost",
        {"domain": "www.rousseau.example"},
        ("plesk", "bin", "subscription", "--info", "www.rousseau.example"),
        None,
        (
            "plesk",
            "bin",
            "subscription",
            "--create",
            "www.rousseau.example",
            "-owner",
            "admin",
            "-service-plan",
            "Default Domain",
            "-login",
            "w_www_rousseau_example",
            "-passwd",
            "",
        ),
        "PSA_PASSWORD",
        True,
    ),
    (
        "vhost",
        {"domain": "shop.rousseau.example", "php": "8.2"},
        ("plesk", "bin", "subscription", "--info", "shop.rousseau.example"),
        None,
        (
            "plesk",
            "bin",
            "subscription",
            "--create",
            "shop.rousseau.example",
            "-owner",
            "admin",
            "-service-plan",
            "Default Domain",
            "-login",
            "w_shop_rousseau_example",
            "-passwd",
            "",
            "-php_handler_id",
            "plesk-php82-fpm",
        ),
        "PSA_PASSWORD",
        True,
    ),
    (
        "database",
        {"engine": "mariadb", "name": "shop_db", "domain": "www.rousseau.example"},
        (
            "plesk",
            "db",
            "-B",
            "-N",
            "-e",
            "SELECT d.name FROM data_bases db JOIN domains d ON d.id = db.dom_id"
            " WHERE db.name = 'shop_db'",
        ),
        "www.rousseau.example",
        (
            "plesk",
            "bin",
            "database",
            "--create",
            "shop_db",
            "-domain",
            "www.rousseau.example",
            "-type",
            "mysql",
        ),
        None,
        False,
    ),
    (
        "db-user",
        {"engine": "mariadb", "database": "shop_db", "user": "shop"},
        (
            "plesk",
            "db",
            "-B",
            "-N",
            "-e",
            "SELECT DISTINCT User FROM mysql.db WHERE User = 'shop'"
            " AND Db IN ('shop_db', 'shop\\\\_db')",
        ),
        "shop",
        ("plesk", "bin", "database", "--update", "shop_db", "-add_user", "shop", "-passwd", ""),
        "PSA_PASSWORD",
        False,
    ),
    (
        "ftp-account",
        {"domain": "www.rousseau.example", "user": "marc"},
        (
            "plesk",
            "db",
            "-B",
            "-N",
            "-e",
            "SELECT d.name FROM ftp_users f JOIN sys_users s ON s.id = f.sys_user_id"
            " JOIN domains d ON d.id = f.dom_id WHERE s.login = 'marc'",
        ),
        "www.rousseau.example",
        (
            "plesk",
            "bin",
            "ftpsubaccount",
            "--create",
            "marc",
            "-passwd",
            "",
            "-domain",
            "www.rousseau.example",
        ),
        "PSA_PASSWORD",
        False,
    ),
    (
        "mailbox",
        {"address": "marc@rousseau.example"},
        ("plesk", "bin", "mail", "--info", "marc@rousseau.example"),
        None,
        (
            "plesk",
            "bin",
            "mail",
            "--create",
            "marc@rousseau.example",
            "-mailbox",
            "true",
            "-passwd",
            "",
        ),
        "PSA_PASSWORD",
        False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{len(c[4])}" for c in CASES])
def test_each_request_builds_exactly_these_command_lines(case: tuple[Any, ...]) -> None:
    verb, args, guard, expect, create, secret, ip = case
    request = pc.build_request(verb, args)
    assert request.verb == verb
    assert request.guard.argv == guard
    assert request.guard.expect_stdout == expect
    assert request.create.argv == create
    assert request.create.secret_env == secret
    assert request.create.append_server_ip is ip
    assert request.needs_password is (secret is not None)
    expected_run = (*WRAPPER, *create) if secret else create
    assert request.create.run_argv == expected_run


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{len(c[4])}" for c in CASES])
def test_the_password_goes_in_psa_password_never_in_argv(case: tuple[Any, ...]) -> None:
    verb, args, _guard, _expect, _create, secret, _ip = case
    request = pc.build_request(verb, args)
    password = "S3cret-Value-42"  # noqa: S105 - a test value
    if secret:
        assert request.create.env(password) == {"PSA_PASSWORD": password}
        # Plesk's documented form: -passwd with an empty value
        index = request.create.argv.index("-passwd")
        assert request.create.argv[index + 1] == ""
    else:
        assert request.create.env(password) == {}
        assert "-passwd" not in request.create.argv
    assert all(password not in part for part in request.create.run_argv)


def test_the_request_is_plain_data_for_the_playbook() -> None:
    extravars = pc.plesk_extravars(
        "ftp-account", {"host": "h", "domain": "www.rousseau.example", "user": "marc"}
    )
    assert extravars == {
        "plesk_request": {
            "verb": "ftp-account",
            "target": "marc",
            "details": {"user": "marc", "domain": "www.rousseau.example"},
            "guard": {
                "argv": [
                    "plesk",
                    "db",
                    "-B",
                    "-N",
                    "-e",
                    "SELECT d.name FROM ftp_users f JOIN sys_users s"
                    " ON s.id = f.sys_user_id JOIN domains d ON d.id = f.dom_id"
                    " WHERE s.login = 'marc'",
                ],
                "expect_stdout": "www.rousseau.example",
            },
            "create": {
                "argv": [
                    "plesk",
                    "bin",
                    "ftpsubaccount",
                    "--create",
                    "marc",
                    "-passwd",
                    "",
                    "-domain",
                    "www.rousseau.example",
                ],
                "run_argv": [
                    *WRAPPER,
                    "plesk",
                    "bin",
                    "ftpsubaccount",
                    "--create",
                    "marc",
                    "-passwd",
                    "",
                    "-domain",
                    "www.rousseau.example",
                ],
                "secret_env": "PSA_PASSWORD",
                "append_server_ip": False,
            },
        },
    }
    # plain data only: it goes through Ansible's templating and JSON
    assert json.loads(json.dumps(extravars)) == extravars


def test_which_requests_set_a_password_on_plesk() -> None:
    assert pc.needs_password("vhost", {"domain": "www.rousseau.example"})
    assert pc.needs_password("mailbox", {"address": "marc@rousseau.example"})
    assert not pc.needs_password(
        "database", {"engine": "mariadb", "name": "shop_db", "domain": "rousseau.example"}
    )
    # a request Plesk cannot serve sets nothing: the playbook refuses it
    assert not pc.needs_password("vhost", {"domain": "Bad Domain"})


def test_the_filter_plugin_gives_what_the_module_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    """plugins/filter/plesk.py, as Ansible loads it (alteo.hostops.plesk_request): from the
    collection alone (scripts/setup links it under collections/), no CLI package."""
    monkeypatch.syspath_prepend(str(ROOT / "collections"))
    spec = importlib.util.spec_from_file_location("plesk_filter", ROOT / "plugins/filter/plesk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plesk_request = module.FilterModule().filters()["plesk_request"]
    args = {"domain": "www.rousseau.example", "php": 8.4}  # YAML may give a number
    assert plesk_request("vhost", args) == pc.plesk_extravars(
        "vhost", {"domain": "www.rousseau.example", "php": "8.4"}
    )
    assert plesk_request("database", {"engine": "mariadb", "name": "shop", "domain": ""}) == {
        "plesk_request_problems": ["--domain: required for 'database' on a Plesk server"]
    }
    with pytest.raises(AnsibleFilterError, match="args must be a mapping"):
        plesk_request("vhost", "www.rousseau.example")


@pytest.mark.parametrize(
    ("verb", "args", "lines"),
    [
        ("website", {}, ["verb: 'website': must be one of vhost, database, db-user, ftp-account"]),
        ("vhost", {}, ["--domain: required for 'vhost' on a Plesk server"]),
        (
            "vhost",
            {"domain": "-owner.example"},
            ["--domain: '-owner.example': must be a lowercase domain name"],
        ),
        ("vhost", {"domain": "Example.COM"}, ["--domain: 'Example.COM': must be a lowercase"]),
        (
            "vhost",
            {"domain": "www.example.fr", "php": "8.4; rm -rf /"},
            ["--php: '8.4; rm -rf /': must be a PHP version like 8.4"],
        ),
        (
            "database",
            {"engine": "mariadb", "name": "shop"},
            ["--domain: required for 'database' on a Plesk server"],
        ),
        (
            "database",
            {"engine": "postgresql", "name": "shop", "domain": "example.fr"},
            ["--engine: 'postgresql': a Plesk server has MySQL/MariaDB only"],
        ),
        (
            "database",
            {"engine": "mariadb", "name": "x'; DROP DATABASE psa; --", "domain": "example.fr"},
            ['--name: "x\'; DROP DATABASE psa; --": must match ^[a-z][a-z0-9_]*$'],
        ),
        (
            "db-user",
            {"engine": "mariadb", "database": "shop", "user": "root"},
            ["--user: 'root': reserved name"],
        ),
        (
            "db-user",
            {"engine": "oracle", "database": "shop", "user": "u"},
            ["--engine: 'oracle': must be one of mariadb, postgresql"],
        ),
        (
            "ftp-account",
            {"domain": "example.fr", "user": "-passwd"},
            ["--user: '-passwd': must match"],
        ),
        ("mailbox", {"address": "marc@"}, ["--address: 'marc@': must be a lowercase mail address"]),
        ("mailbox", {"address": "a..b@example.fr"}, ["--address: 'a..b@example.fr'"]),
    ],
)
def test_bad_requests_are_refused_with_one_line_per_problem(
    verb: str, args: dict[str, Any], lines: list[str]
) -> None:
    with pytest.raises(InputProblems) as caught:
        pc.build_request(verb, args)
    assert len(caught.value.problems) == len(lines)
    for problem, start in zip(caught.value.problems, lines, strict=True):
        assert problem.startswith(start), problem


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputProblems) as caught:
        pc.build_request("db-user", {"engine": "mariadb", "database": "Bad", "user": "pg_x"})
    assert [p.split(":")[0] for p in caught.value.problems] == ["--database", "--user"]


def test_builders_refuse_names_that_could_reach_sql_even_when_called_directly() -> None:
    with pytest.raises(InputProblems, match="--name"):
        pc.database("a' OR '1'='1", "example.fr")
    with pytest.raises(InputProblems, match="--domain"):
        pc.database("shop", "x' OR '1'='1")
    with pytest.raises(InputProblems, match="--user"):
        pc.ftp_account("m'--", "example.fr")
    with pytest.raises(InputProblems, match="--domain"):
        pc.ftp_account("marc", "a.fr' OR 1=1 --")
    with pytest.raises(InputProblems, match="--user"):
        pc.db_user("u'--", "shop")


def test_the_system_user_matches_the_custom_stack_and_stays_within_32() -> None:
    assert pc.system_user("www.rousseau-livres.example") == "w_www_rousseau_livres_example"
    long_domain = "a-very-long-subdomain-name.of-a-bookshop.example"
    user = pc.system_user(long_domain)
    assert len(user) == 32
    assert user.startswith("w_a_very_long_subdomain")
    assert user != pc.system_user(long_domain.replace("bookshop", "bookstor"))
    assert pc.php_handler("8.4") == "plesk-php84-fpm"


def test_the_role_and_the_request_tasks_use_the_same_wrapper() -> None:
    role_vars = yaml.safe_load((ROOT / "roles/plesk/vars/main.yml").read_text())
    assert tuple(role_vars["__plesk_secret_env_wrapper"]) == pc.SECRET_ENV_WRAPPER == WRAPPER
    tasks = yaml.safe_load((ROOT / "playbooks/tasks/plesk-request.yml").read_text())
    [block] = [task for task in tasks if "block" in task]
    assert tuple(block["vars"]["__wrapper"]) == WRAPPER


def test_the_plesk_part_of_a_shared_request_carries_the_request_or_its_problems() -> None:
    args = {"engine": "mariadb", "name": "shop_db", "domain": "www.rousseau.example"}
    assert pc.plesk_extravars("database", args) == {
        "plesk_request": pc.build_request("database", args).as_data()
    }
    # the custom stack's database verb has no --domain: Plesk's back end says why it fails
    assert pc.plesk_extravars("database", {"engine": "mariadb", "name": "shop_db"}) == {
        "plesk_request_problems": ["--domain: required for 'database' on a Plesk server"]
    }


STAND_IN = (
    "import json, os, sys; "
    "print(json.dumps({'argv': sys.argv[1:], 'PSA_PASSWORD': os.environ.get('PSA_PASSWORD')}))"
)


def test_the_wrapper_hands_the_password_to_a_recording_stand_in_through_the_environment() -> None:
    """Runs the wrapper for real with a recording stand-in in place of plesk."""
    request = pc.build_request("mailbox", {"address": "marc@rousseau.example"})
    argv = [*pc.SECRET_ENV_WRAPPER, sys.executable, "-c", STAND_IN, *request.create.argv[1:]]
    password = "pa ss\\word'\"$(id)` -x"  # noqa: S105 - spaces, quotes, backslashes, shell
    proc = subprocess.run(argv, input=password + "\n", capture_output=True, text=True, check=True)
    seen = json.loads(proc.stdout)
    assert seen["PSA_PASSWORD"] == password
    assert seen["argv"] == list(request.create.argv[1:])


def test_the_wrapper_with_the_recording_stand_in_fails_without_a_password_line() -> None:
    argv = [*pc.SECRET_ENV_WRAPPER, sys.executable, "-c", STAND_IN]
    proc = subprocess.run(argv, input="", capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert proc.stdout == ""  # the stand-in never ran
