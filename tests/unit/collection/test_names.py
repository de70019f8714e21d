"""Names in database requests: the allow-list, engine limits, reserved names, hostile input;
the request verbs built on them; and the roles' copies of the same rules kept equal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hostops.core.errors import UsageError
from hostops.module_utils.names import (
    ENGINES,
    MAX_LENGTH,
    NAME_RULE,
    RESERVED_NAMES,
    RESERVED_PREFIXES,
    database_name_problems,
    engine_problems,
    show,
    user_name_problems,
)
from hostops.requests.database import (
    DATABASE,
    DB_USER,
    PASSWORD_ENV,
    PASSWORD_MIN_LENGTH,
    PASSWORD_VAR,
    STATS_KEY,
    VERBS,
)

ROOT = Path(__file__).resolve().parents[3]

GOOD = [
    "shop",
    "a",
    "shop_db",
    "wp_2024",
    "x_",
    "a__b",
    "test_shop",  # only "test" itself is reserved
    "postgresql",
    "pg",  # only the "pg_" prefix is reserved
    "d" * 32,
]

# (name, a fragment every engine's problem line must contain)
BAD = [
    ("", "name is required"),
    ("Shop", NAME_RULE),
    ("SHOP", NAME_RULE),
    ("1shop", NAME_RULE),
    ("_shop", NAME_RULE),
    ("shop-db", NAME_RULE),
    ("shop.db", NAME_RULE),
    ("shop db", NAME_RULE),
    ("shop$", NAME_RULE),
    ("shop%", NAME_RULE),
    ("sh*p", NAME_RULE),
    ("x'; DROP DATABASE y; --", NAME_RULE),
    ('x"; DROP ROLE postgres; --', NAME_RULE),
    ("x`; DROP DATABASE mysql; --`", NAME_RULE),
    ("`shop`", NAME_RULE),
    ("shop\\", NAME_RULE),
    ("shop\n", NAME_RULE),  # "$" would accept it: the pattern must fullmatch
    ("shop\nDROP", NAME_RULE),
    ("shop\x00", NAME_RULE),
    ("shop\t", NAME_RULE),
    ("$(reboot)", NAME_RULE),
    ("shop;reboot", NAME_RULE),
    ("sh\u043ep", NAME_RULE),  # Cyrillic o
    ("\u0455hop", NAME_RULE),  # Cyrillic dze, looks like s
    ("\uff53hop", NAME_RULE),  # fullwidth s
    ("shop\u200b", NAME_RULE),  # zero-width space
    ("\u0131d", NAME_RULE),  # dotless i
    ("café", NAME_RULE),
    ("mysql", "reserved name"),
    ("information_schema", "reserved name"),
    ("performance_schema", "reserved name"),
    ("sys", "reserved name"),
    ("test", "reserved name"),
    ("root", "reserved name"),
    ("postgres", "reserved name"),
    ("template0", "reserved name"),
    ("template1", "reserved name"),
    ("public", "reserved name"),
    ("all", "reserved name"),
    ("samerole", "reserved name"),
    ("replication", "reserved name"),
    ("current_user", "reserved name"),
    ("pg_monitor", "names starting with pg_ are reserved"),
    ("pg_", "names starting with pg_ are reserved"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", GOOD)
def test_good_names(engine: str, name: str) -> None:
    assert database_name_problems(engine, name) == []
    assert user_name_problems(engine, name) == []


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "fragment"), BAD)
def test_bad_names(engine: str, name: str, fragment: str) -> None:
    for problems, arg in (
        (database_name_problems(engine, name, "--name"), "--name"),
        (user_name_problems(engine, name, "--user"), "--user"),
    ):
        assert problems, name
        assert any(fragment in line for line in problems), problems
        for line in problems:
            # one line per problem: ARG: VALUE: REASON, the value shown safely
            assert line.startswith(f"{arg}: {show(name)}: "), line
            assert "\n" not in line and line.isascii(), line


def test_problem_line_format() -> None:
    assert database_name_problems("mariadb", "x'; DROP DATABASE y; --") == [
        '--name: "x\'; DROP DATABASE y; --": must match ^[a-z][a-z0-9_]*$ '
        "(lowercase ASCII letters, digits and _, starting with a letter)"
    ]
    assert user_name_problems("postgresql", "root", "--user") == ["--user: 'root': reserved name"]


def test_look_alikes_are_shown_escaped() -> None:
    (line,) = database_name_problems("mariadb", "sh\u043ep")
    assert line.startswith("--name: 'sh\\u043ep': ")


def test_long_hostile_value_is_clipped() -> None:
    problems = database_name_problems("mariadb", "x" * 300 + "'; DROP")
    assert all(len(line) < 250 for line in problems)
    assert len(problems) == 2  # not allowed, and too long


@pytest.mark.parametrize(
    ("engine", "kind", "limit"),
    [
        ("mariadb", "database", 64),
        ("mariadb", "user", 32),
        ("postgresql", "database", 63),
        ("postgresql", "user", 63),
    ],
)
def test_engine_limits(engine: str, kind: str, limit: int) -> None:
    check = database_name_problems if kind == "database" else user_name_problems
    assert MAX_LENGTH[(engine, kind)] == limit  # type: ignore[index]
    at_limit = "n" + "x" * (limit - 1)
    assert check(engine, at_limit) == []
    over = at_limit + "x"
    (line,) = check(engine, over)
    assert f"{limit + 1} bytes long; {engine} {kind} names are at most {limit}" in line


def test_postgresql_63_bytes() -> None:
    """NAMEDATALEN - 1: PostgreSQL would truncate a 64-byte name with a mere notice."""
    name63 = "app_" + "a" * 59
    assert len(name63.encode()) == 63
    assert database_name_problems("postgresql", name63) == []
    assert user_name_problems("postgresql", name63) == []
    name64 = name63 + "b"
    assert database_name_problems("postgresql", name64)
    assert user_name_problems("postgresql", name64)
    # 64 bytes is fine for a MariaDB database, not for a MariaDB user
    assert database_name_problems("mariadb", name64) == []
    assert user_name_problems("mariadb", name64)


def test_non_ascii_is_counted_in_bytes() -> None:
    name = "a" + "\u00e9" * 31  # 32 characters, 63 bytes
    problems = database_name_problems("postgresql", name)
    assert any(NAME_RULE in line for line in problems)
    name = "a" + "\u00e9" * 32  # 33 characters, 65 bytes
    problems = database_name_problems("postgresql", name)
    assert any("65 bytes long" in line for line in problems)


@pytest.mark.parametrize("engine", ["mongodb", "MariaDB", "mysql", "", "postgresql;"])
def test_unknown_engine(engine: str) -> None:
    (line,) = engine_problems(engine)
    assert line == f"--engine: {show(engine)}: must be one of mariadb, postgresql"
    # the name is still checked against the allow-list, without an engine limit
    assert database_name_problems(engine, "x" * 100) == []
    assert database_name_problems(engine, "x;") != []


def test_known_engines() -> None:
    assert engine_problems("mariadb") == []
    assert engine_problems("postgresql") == []


# -- the request verbs ----------------------------------------------------------------------


def test_verbs_spec() -> None:
    assert [verb.name for verb in VERBS] == ["database", "db-user"]
    assert DATABASE.playbook == "request-database.yml"
    assert DB_USER.playbook == "request-db-user.yml"
    assert [(a.flag, a.required) for a in DATABASE.arguments] == [
        ("--engine", True), ("--name", True), ("--domain", False)  # --domain: Plesk only
    ]
    assert [a.flag for a in DB_USER.arguments] == ["--engine", "--database", "--user"]
    assert not DATABASE.password
    assert DB_USER.password
    assert PASSWORD_ENV == "HOSTOPS_REQUEST_PASSWORD"  # noqa: S105 - a variable's name
    assert PASSWORD_VAR == "request_password"  # noqa: S105 - a variable's name
    assert STATS_KEY == "hostops_request"
    for verb in VERBS:
        playbook = (ROOT / "playbooks" / verb.playbook).read_text()
        # the playbook reads what the spec says it passes
        for arg in verb.arguments:
            assert arg.extravar in playbook, (verb.name, arg.extravar)
        assert STATS_KEY in playbook
        assert ("hostops_request_host" in playbook) and (
            (PASSWORD_VAR in playbook and PASSWORD_ENV in playbook) == verb.password
        )


def test_verbs_describe_the_request() -> None:
    assert DATABASE.describe({"engine": "postgresql", "name": "shop"}) == "postgresql database shop"
    values = {"engine": "mariadb", "database": "shop", "user": "shop_app"}
    assert DB_USER.describe(values) == "mariadb user shop_app (database shop)"


def test_database_verb_extravars() -> None:
    assert DATABASE.extravars({"engine": "postgresql", "name": "shop"}) == {
        "request_engine": "postgresql",
        "request_database": "shop",
    }
    assert DATABASE.extravars({"engine": "mariadb", "name": "shop", "domain": "shop.example"}) == {
        "request_engine": "mariadb",
        "request_database": "shop",
        "request_domain": "shop.example",
    }


def test_a_database_domain_is_checked_before_anything_runs() -> None:
    with pytest.raises(UsageError) as caught:
        DATABASE.extravars({"engine": "mariadb", "name": "shop", "domain": "Shop Example"})
    assert caught.value.problems == [
        "--domain: 'Shop Example': must be a lowercase domain name "
        "(labels of a-z, 0-9 and '-', at least two, e.g. www.example.fr)"
    ]
    assert DB_USER.extravars({"engine": "mariadb", "database": "shop", "user": "shop_app"}) == {
        "request_engine": "mariadb",
        "request_database": "shop",
        "request_user": "shop_app",
    }


def test_verb_refuses_every_problem_at_once() -> None:
    with pytest.raises(UsageError) as err:
        DB_USER.extravars(
            {"engine": "oracle", "database": "x'; DROP DATABASE y; --", "user": "root"}
        )
    assert err.value.exit_status == 2
    lines = err.value.problems
    assert lines[0] == "--engine: 'oracle': must be one of mariadb, postgresql"
    assert lines[1].startswith('--database: "x\'; DROP DATABASE y; --": must match')
    assert lines[2] == "--user: 'root': reserved name"


# -- the roles enforce the same rules (runs that do not come through the CLI) ---------------


def _role_vars(role: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text())
    return data


@pytest.mark.parametrize("role", ENGINES)
def test_roles_apply_the_same_rules(role: str) -> None:
    data = _role_vars(role)
    assert f"^{data[f'__{role}_name_pattern']}$" == NAME_RULE
    assert set(data[f"__{role}_reserved_names"]) == RESERVED_NAMES
    assert tuple(data[f"__{role}_reserved_prefixes"]) == RESERVED_PREFIXES
    assert data[f"__{role}_database_name_max"] == MAX_LENGTH[(role, "database")]  # type: ignore[index]
    assert data[f"__{role}_user_name_max"] == MAX_LENGTH[(role, "user")]  # type: ignore[index]


@pytest.mark.parametrize("role", ENGINES)
def test_roles_refuse_short_passwords_like_the_cli(role: str) -> None:
    assert _role_vars(role)[f"__{role}_password_min_length"] == PASSWORD_MIN_LENGTH
