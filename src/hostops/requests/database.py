"""The database ticket requests (contract §4.1.1, managed level 4) as data for the CLI.

``hostops request database`` and ``hostops request db-user`` are built from these
specifications by the request framework (:mod:`hostops.requests.verbs`): each verb names its
arguments (flag, and the playbook variable it fills), the check run on them before any
host is touched (full ``ARG: VALUE: REASON`` lines, engine limits included), and the
playbook. The framework adds what every request has (``--host``, passed as
``hostops_request_host``; inventory; check mode), generates the password of a verb that
needs one, and reads the result the playbook publishes with ``set_stats``:
``hostops_request: {HOST: {status: created | exists, engine, database[, user]}}``. An
existing user keeps its password (status ``exists``): the generated one is then not the
user's and must not be shown or stored.

The playbook takes the password from the extra variable :data:`PASSWORD_VAR` or, when
that is not given, from the controller's environment variable :data:`PASSWORD_ENV` (how
an AWX credential hands it over). ansible-runner writes both the extra variables
(``env/extravars``) and the environment (``env/envvars`` unless ``suppress_env_files``,
and ``artifacts/<ident>/command``) into the run's directory: whichever way is used, the
caller redacts it there after the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from hostops.core.errors import UsageError
from hostops.module_utils.names import (
    ENGINES,
    database_name_problems,
    engine_problems,
    user_name_problems,
)
from hostops.module_utils.plesk_commands import domain_problems

PASSWORD_VAR: Final = "request_password"  # noqa: S105 - a name, not a password
PASSWORD_ENV: Final = "HOSTOPS_REQUEST_PASSWORD"  # noqa: S105 - a name, not a password
# The playbooks refuse a shorter password (they also run under AWX, without this CLI).
PASSWORD_MIN_LENGTH: Final = 16
STATS_KEY: Final = "hostops_request"
HOST_VAR: Final = "hostops_request_host"


@dataclass(frozen=True)
class Argument:
    """A command-line argument and the playbook variable it fills."""

    flag: str
    extravar: str
    help: str
    choices: tuple[str, ...] = ()
    required: bool = True

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


@dataclass(frozen=True)
class RequestVerb:
    """One ``hostops request VERB``: arguments, their check, the playbook it runs."""

    name: str
    help: str
    playbook: str
    arguments: tuple[Argument, ...]
    # values by argument dest -> problems, one "ARG: VALUE: REASON" line each
    check: Callable[[Mapping[str, str]], list[str]]
    # what is asked, for messages: "postgresql database shop"
    describe: Callable[[Mapping[str, str]], str]
    password: bool = False

    def problems(self, values: Mapping[str, str]) -> list[str]:
        """Every problem with the arguments (values by argument dest), one line each."""
        return self.check(values)

    def variables(self, values: Mapping[str, str]) -> dict[str, str]:
        """The playbook's variables from checked values (the password is not among them)."""
        return {arg.extravar: values[arg.dest] for arg in self.arguments if arg.dest in values}

    def extravars(self, values: Mapping[str, str]) -> dict[str, str]:
        """:meth:`variables`, after :meth:`problems`: UsageError (exit 2) on any of them."""
        problems = self.problems(values)
        if problems:
            raise UsageError(problems)
        return self.variables(values)


def _check_database(values: Mapping[str, str]) -> list[str]:
    engine = values["engine"]
    domain = values.get("domain")
    return (
        engine_problems(engine, "--engine")
        + database_name_problems(engine, values["name"], "--name")
        + (domain_problems(domain, "--domain") if domain is not None else [])
    )


def _check_db_user(values: Mapping[str, str]) -> list[str]:
    engine = values["engine"]
    return (
        engine_problems(engine, "--engine")
        + database_name_problems(engine, values["database"], "--database")
        + user_name_problems(engine, values["user"], "--user")
    )


_ENGINE = Argument("--engine", "request_engine", "database engine", choices=ENGINES)

DATABASE: Final = RequestVerb(
    name="database",
    help="create a database (owned, in PostgreSQL, by a role of the same name)",
    playbook="request-database.yml",
    arguments=(
        _ENGINE,
        Argument("--name", "request_database", "database name"),
        Argument(
            "--domain",
            "request_domain",
            "Plesk servers only, and required there: the subscription (domain) the "
            "database belongs to",
            required=False,
        ),
    ),
    check=_check_database,
    describe=lambda values: f"{values['engine']} database {values['name']}",
)

DB_USER: Final = RequestVerb(
    name="db-user",
    help="create a database user with privileges on exactly one database",
    playbook="request-db-user.yml",
    arguments=(
        _ENGINE,
        Argument("--database", "request_database", "the user's database (must exist)"),
        Argument("--user", "request_user", "user name"),
    ),
    check=_check_db_user,
    describe=lambda values: (
        f"{values['engine']} user {values['user']} (database {values['database']})"
    ),
    password=True,
)

VERBS: Final[tuple[RequestVerb, ...]] = (DATABASE, DB_USER)
