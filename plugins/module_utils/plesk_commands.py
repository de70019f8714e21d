"""The Plesk back end of the ticket requests: the exact ``plesk`` command lines, in Python.

On a Plesk server (managed level 3, contract §4.1.1) the ticket requests that a custom
stack serves with its own roles (vhost, database, database user, FTP account, mailbox)
are served by Plesk's own command-line utilities, so that Plesk's database stays the one
truth about what the server hosts. This module only builds command lines: it runs
nothing, imports no Ansible, and touches no host. The request playbooks
(``playbooks/request-*.yml``) serve both back ends: on a host whose managed level is
``plesk`` they include ``playbooks/tasks/plesk-request.yml``, which builds the request
with the filter ``alteo.hostops.plesk_request`` (:func:`plesk_extravars`, here) and runs
it through ``ansible.builtin.command`` with ``argv``. The same playbooks therefore serve a
Plesk server from ``hostops request`` and from AWX (the module is part of the collection:
the ``hostops`` CLI imports it as ``hostops.module_utils.plesk_commands``).

Each request is two commands (:class:`PleskRequest`):

* a **guard**, the read-only query whose success means "it already exists": Plesk's
  ``--info`` of the object where the object's name says it all (``subscription``: the
  domain; ``mail``: the address), or a query through ``plesk db`` (Plesk's own database,
  ``psa``, on the local MySQL/MariaDB server) that prints the subscription an object
  belongs to, for the objects whose name does not carry it (a database, an FTP account):
  a name that exists in *another* subscription is then a clear failure, never "exists".
  ``plesk bin database --info`` is not a command on every Plesk version (third-party
  changelog, public code), so it is not used;
* the **create** command, run only when the guard says the object is missing.

Passwords never appear on a command line. Plesk documents it ("It is more secure to pass
passwords through the environment variables ... PSA_PASSWORD ... while using single
quotes to specify the empty values in the command line for the argument of the -passwd
option", Plesk CLI guide, "Getting Started with Command Line Utilities",
https://docs.plesk.com/current/cli-linux/getting-started-with-command-line-utilities.37894/):
the command line carries ``-passwd ''`` and the password travels in ``PSA_PASSWORD``.

That variable is *not* set with Ansible's ``environment:`` keyword: ansible-core writes
those variables into the command line of the remote shell that starts the module
(``ActionBase._compute_environment_string`` and ``ShellBase.build_module_command``), where
any user of the host sees them in ``ps`` for as long as the command runs. Instead the
command starts with :data:`SECRET_ENV_WRAPPER`, a fixed ``/bin/sh -c`` line that reads
the password from its standard input, exports it and ``exec``\\ s the ``plesk`` command;
the playbook feeds the password (the extra variable :data:`PASSWORD_VAR`, or the
controller's environment variable ``HOSTOPS_REQUEST_PASSWORD`` under AWX) on stdin (a
pipe), under ``no_log``. The process list
then shows ``plesk bin ... -passwd ''`` and nothing else.

Commands and options come from Plesk's CLI reference where it documents them and from
Plesk's own repositories otherwise; each builder names its source. None of it was run
against a real Plesk here (its installer cannot be reached from our machines): the tests
check these command lines exactly against a recording stand-in of ``plesk``.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from . import names as request_names
from .problems import InputProblems

PLESK: Final = "plesk"
# The extra variable that carries the password a request sets (hostops.requests.verbs passes
# it and redacts it from the run's files afterwards).
PASSWORD_VAR: Final = "plesk_request_password"  # noqa: S105 - a name, not a password
PASSWORD_ENV: Final = "PSA_PASSWORD"  # noqa: S105 - the name of a variable, not a password
# Reads one line (the password) from stdin, exports it, and becomes the plesk command.
# Fixed text: nothing from a request is ever put into it.
SECRET_ENV_WRAPPER: Final[tuple[str, ...]] = (
    "/bin/sh",
    "-c",
    f'IFS= read -r {PASSWORD_ENV} && export {PASSWORD_ENV} && exec "$@"',
    "plesk-secret-env",
)

# Subscriptions made by tickets belong to Plesk's administrator (the provider's only,
# contract §4.1.1 level 3) on Plesk's stock plan; the client works through the
# subscription's own system user.
OWNER: Final = "admin"
SERVICE_PLAN: Final = "Default Domain"

VERBS: Final[tuple[str, ...]] = ("vhost", "database", "db-user", "ftp-account", "mailbox")
# hostops engine names -> Plesk's -type values (database utility reference).
ENGINE_TYPES: Final[Mapping[str, str]] = {"mariadb": "mysql", "postgresql": "postgresql"}
# What the Plesk role installs: MySQL/MariaDB only (component mysqlgroup), as the
# contract lists for level 3. A PostgreSQL request would fail inside Plesk.
SERVED_ENGINES: Final[tuple[str, ...]] = ("mariadb",)
# What may appear in a request's commands, checked again by the playbook.
CREATE_UTILITIES: Final[tuple[str, ...]] = ("subscription", "database", "ftpsubaccount", "mail")

_PHP = re.compile(r"[0-9]\.[0-9]{1,2}")
# FTP logins: a letter first (never '-', which Plesk would read as an option).
_FTP_USER = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_LOCAL_PART = re.compile(r"[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?")
_SHOWN_MAX = 70


@dataclass(frozen=True)
class Guard:
    """The read-only query that tells whether the object exists.

    It exists when the query exits 0 and, if ``expect_stdout`` is set, prints exactly
    that (``plesk db`` queries exit 0 either way and print a row only when found); a
    ``plesk db`` query that prints something else found the object elsewhere (in another
    subscription), and the request fails.
    """

    argv: tuple[str, ...]
    expect_stdout: str | None = None


@dataclass(frozen=True)
class PleskCommand:
    """A ``plesk`` command line, and the environment variable its password goes in."""

    argv: tuple[str, ...]
    secret_env: str | None = None  # PSA_PASSWORD when the command takes a password
    # vhost: the playbook appends "-ip <the server's shared IP>" from the role's fact
    append_server_ip: bool = False

    @property
    def run_argv(self) -> tuple[str, ...]:
        """What the host runs: the argv itself, or behind the stdin-to-env wrapper."""
        return (*SECRET_ENV_WRAPPER, *self.argv) if self.secret_env else self.argv

    def env(self, password: str) -> dict[str, str]:
        """The environment the ``plesk`` process gets on top of its own."""
        return {self.secret_env: password} if self.secret_env else {}


@dataclass(frozen=True)
class PleskRequest:
    """One ticket request on a Plesk server: what it makes, its guard, its command."""

    verb: str
    target: str  # the object made, for messages: a domain, a database, an address
    guard: Guard
    create: PleskCommand
    # what the request's result reports besides its status (as the custom stack's do)
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def needs_password(self) -> bool:
        return self.create.secret_env is not None

    def as_data(self) -> dict[str, Any]:
        """The request as plain data for the playbook (never a secret)."""
        return {
            "verb": self.verb,
            "target": self.target,
            "details": dict(self.details),
            "guard": {"argv": list(self.guard.argv), "expect_stdout": self.guard.expect_stdout},
            "create": {
                "argv": list(self.create.argv),
                "run_argv": list(self.create.run_argv),
                "secret_env": self.create.secret_env,
                "append_server_ip": self.create.append_server_ip,
            },
        }


# -- Builders: one per verb ------------------------------------------------------------------


def vhost(domain: str, php: str | None = None) -> PleskRequest:
    """A vhost is a subscription of its own: its own system user (which is also its main
    FTP login), PHP-FPM pool, quota and logs, as a custom stack gives each vhost its own
    user. ``site --create`` would put it inside another subscription, sharing that
    subscription's system user; no ticket names such a parent.

    Command: ``subscription --create`` (Plesk CLI reference, subscription utility,
    https://docs.plesk.com/en-US/onyx/cli-linux/using-command-line-utilities/subscription-subscriptions.37768);
    ``-php_handler_id`` as third-party scripts use it on ``domain --create`` (UNVERIFIED on
    ``subscription``). Guard: ``subscription --info`` (plesk/plesk-formula uses
    ``subscription -i`` as its ``unless``).
    """
    argv = [
        PLESK,
        "bin",
        "subscription",
        "--create",
        domain,
        "-owner",
        OWNER,
        "-service-plan",
        SERVICE_PLAN,
        "-login",
        system_user(domain),
        "-passwd",
        "",
    ]
    if php:
        argv += ["-php_handler_id", php_handler(php)]
    return PleskRequest(
        verb="vhost",
        target=domain,
        guard=Guard((PLESK, "bin", "subscription", "--info", domain)),
        create=PleskCommand(tuple(argv), secret_env=PASSWORD_ENV, append_server_ip=True),
        details={"domain": domain, "login": system_user(domain)},
    )


def database(name: str, domain: str, engine: str = "mariadb") -> PleskRequest:
    """``database --create NAME -domain D -type mysql`` (Plesk CLI reference, database
    utility, https://docs.plesk.com/en-US/onyx/cli-linux/using-command-line-utilities/database-databases.75671:
    "Requires the -domain option ... the -type option is required if the database is to
    be created on a local database server"). A Plesk database belongs to a subscription.

    Guard: the subscription Plesk has the database in, from its tables ``data_bases``
    (``name``, ``dom_id``) and ``domains`` (``id``, ``name``), as public scripts query
    them through ``plesk db``; it must be *domain*. A database made outside Plesk is not
    in them: the create then fails in Plesk, visibly.
    """
    name = _sql_name(name, "--name")
    domain = _sql_domain(domain, "--domain")
    sql = (  # _sql_name and _sql_domain allow [a-z0-9_] and [a-z0-9.-] only
        "SELECT d.name FROM data_bases db JOIN domains d ON d.id = db.dom_id"  # noqa: S608
        f" WHERE db.name = '{name}'"
    )
    return PleskRequest(
        verb="database",
        target=name,
        guard=Guard(_plesk_db(sql), expect_stdout=domain),
        create=PleskCommand(
            (
                PLESK,
                "bin",
                "database",
                "--create",
                name,
                "-domain",
                domain,
                "-type",
                ENGINE_TYPES[engine],
            ),
        ),
        details={"engine": engine, "database": name, "domain": domain},
    )


def db_user(user: str, database_name: str, engine: str = "mariadb") -> PleskRequest:
    """``database --update DB -add_user U -passwd ''`` (Plesk CLI reference, database
    utility: "Adds, edits, or removes a database user ... To add the user Jane to the
    database jdoe-gallery: plesk bin database --update jdoe-gallery -add_user Jane").

    Guard: the user holds privileges on that database in MySQL's own grant table
    (``mysql.db``), under the database's name as written or with ``_`` escaped as ``\\_``
    (how a grant on a name with ``_`` may be stored). A user that exists with rights on
    another database only is not "done": the create then fails in Plesk, visibly.
    """
    user = _sql_name(user, "--user")
    database_name = _sql_name(database_name, "--database")
    escaped = database_name.replace("_", "\\\\_")  # SQL text a\\_b is the string a\_b
    sql = (  # _sql_name allows [a-z0-9_] only
        f"SELECT DISTINCT User FROM mysql.db WHERE User = '{user}'"  # noqa: S608
        f" AND Db IN ('{database_name}', '{escaped}')"
    )
    return PleskRequest(
        verb="db-user",
        target=f"{user} on {database_name}",
        guard=Guard(_plesk_db(sql), expect_stdout=user),
        create=PleskCommand(
            (PLESK, "bin", "database", "--update", database_name, "-add_user", user, "-passwd", ""),
            secret_env=PASSWORD_ENV,
        ),
        details={"engine": engine, "database": database_name, "user": user},
    )


def ftp_account(user: str, domain: str) -> PleskRequest:
    """``ftpsubaccount --create U -passwd '' -domain D`` (Plesk CLI reference, ftpsubaccount
    utility,
    https://docs.plesk.com/en-US/obsidian/cli-linux/using-command-line-utilities/ftpsubaccount-additional-ftp-accounts.64417/).
    The account's home is the subscription's root (no ``-home``: that directory must exist).

    Guard: the subscription of the additional FTP account with that login, from Plesk's
    tables ``ftp_users`` (``sys_user_id``, ``dom_id``), ``sys_users`` (``id``, ``login``)
    and ``domains``, as Plesk's own password-reset script and public scripts join them; it
    must be *domain* (an FTP login is a system user: one per server).
    """
    if not _FTP_USER.fullmatch(user):
        raise InputProblems(f"--user: {_show(user)}: must match ^[a-z][a-z0-9_.-]{{0,31}}$")
    domain = _sql_domain(domain, "--domain")
    sql = (  # the login and the domain are allow-listed: no quote can reach the text
        "SELECT d.name FROM ftp_users f JOIN sys_users s ON s.id = f.sys_user_id"  # noqa: S608
        f" JOIN domains d ON d.id = f.dom_id WHERE s.login = '{user}'"
    )
    return PleskRequest(
        verb="ftp-account",
        target=user,
        guard=Guard(_plesk_db(sql), expect_stdout=domain),
        create=PleskCommand(
            (PLESK, "bin", "ftpsubaccount", "--create", user, "-passwd", "", "-domain", domain),
            secret_env=PASSWORD_ENV,
        ),
        details={"user": user, "domain": domain},
    )


def mailbox(address: str) -> PleskRequest:
    """``mail --create A -mailbox true -passwd ''``; guard ``mail --info A`` (third-party
    usages, public code; XML API equivalent ``<mail><create>``,
    https://docs.plesk.com/en-US/obsidian/api-rpc/reference/managing-mail/creating-mail-accounts.34499).
    The address's domain must be hosted on the server (a subscription).
    """
    return PleskRequest(
        verb="mailbox",
        target=address,
        guard=Guard((PLESK, "bin", "mail", "--info", address)),
        create=PleskCommand(
            (PLESK, "bin", "mail", "--create", address, "-mailbox", "true", "-passwd", ""),
            secret_env=PASSWORD_ENV,
        ),
        details={"address": address},
    )


def _sql_name(value: str, arg: str) -> str:
    """A name that goes into SQL text: the request-name allow-list, enforced here too, so
    no caller can build a query from a name that was not checked."""
    if not request_names.NAME_PATTERN.fullmatch(value):
        raise InputProblems(f"{arg}: {_show(value)}: must match {request_names.NAME_RULE}")
    return value


def _sql_domain(value: str, arg: str) -> str:
    """A domain that goes into SQL text: checked here too (labels of [a-z0-9-])."""
    if not _is_domain(value):
        raise InputProblems(domain_problems(value, arg))
    return value


def _plesk_db(sql: str) -> tuple[str, ...]:
    # Batch mode, no column names: one value per line (plesk/dist-upgrader's form).
    return (PLESK, "db", "-B", "-N", "-e", sql)


def system_user(domain: str) -> str:
    """The subscription's system user: ``w_`` and the domain with ``.`` and ``-`` as ``_``,
    as the custom stack names a vhost's user (roles/web/vars/main.yml), so a domain has the
    same user on both back ends; past 32 characters, 23 and an 8-character hash."""
    full = "w_" + domain.replace(".", "_").replace("-", "_")
    if len(full) <= 32:
        return full
    return full[:23] + "_" + hashlib.sha1(domain.encode()).hexdigest()[:8]  # noqa: S324 - a name, not a secret


def php_handler(version: str) -> str:
    """Plesk's PHP-FPM handler id for a PHP version: 8.4 -> plesk-php84-fpm."""
    return "plesk-php" + version.replace(".", "") + "-fpm"


# -- Dispatch: (verb, validated args) -> the request, the playbook and its variables ---------


def build_request(verb: str, args: Mapping[str, Any]) -> PleskRequest:
    """The Plesk request for a ticket verb and its arguments (the ``hostops request``
    argument names without dashes: ``domain``, ``php``, ``engine``, ``name``,
    ``database``, ``user``, ``address``). Raises InputProblems, one line per problem, before
    anything runs. ``database`` needs ``domain`` here: a Plesk database belongs to a
    subscription."""
    problems: list[str] = []
    if verb not in VERBS:
        raise InputProblems(f"verb: {_show(verb)}: must be one of {', '.join(VERBS)}")

    def text(key: str, required: bool = True) -> str:
        value = args.get(key)
        if value is None or value == "":
            if required:
                problems.append(f"--{key}: required for '{verb}' on a Plesk server")
            return ""
        if not isinstance(value, str):
            problems.append(f"--{key}: {_show(str(value))}: must be text")
            return ""
        return value

    build: Callable[[], PleskRequest]
    if verb == "vhost":
        domain, php = text("domain"), text("php", required=False)
        problems += domain_problems(domain, "--domain") if domain else []
        if php and not _PHP.fullmatch(php):
            problems.append(f"--php: {_show(php)}: must be a PHP version like 8.4")
        build = functools.partial(vhost, domain, php or None)
    elif verb == "database":
        engine, name, domain = text("engine"), text("name"), text("domain")
        problems += _engine_problems(engine)
        problems += request_names.database_name_problems(engine, name) if name else []
        problems += domain_problems(domain, "--domain") if domain else []
        build = functools.partial(database, name, domain, engine)
    elif verb == "db-user":
        engine, name, user = text("engine"), text("database"), text("user")
        problems += _engine_problems(engine)
        problems += request_names.database_name_problems(engine, name, "--database") if name else []
        problems += request_names.user_name_problems(engine, user) if user else []
        build = functools.partial(db_user, user, name, engine)
    elif verb == "ftp-account":
        domain, user = text("domain"), text("user")
        problems += domain_problems(domain, "--domain") if domain else []
        if user and not _FTP_USER.fullmatch(user):
            problems.append(
                f"--user: {_show(user)}: must match ^[a-z][a-z0-9_.-]{{0,31}}$ "
                "(an FTP login: a letter first, at most 32 characters)"
            )
        build = functools.partial(ftp_account, user, domain)
    else:  # mailbox
        address = text("address")
        problems += _address_problems(address) if address else []
        build = functools.partial(mailbox, address)
    if problems:
        raise InputProblems(problems)
    return build()


def plesk_extravars(verb: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """What ``tasks/plesk-request.yml`` serves on a Plesk server, from the request
    playbook's own variables (through the filter ``alteo.hostops.plesk_request``):
    ``{"plesk_request": ...}``, or ``{"plesk_request_problems": [...]}`` when the
    arguments cannot be served on a Plesk server (the tasks then fail with those lines,
    before anything changes). Never a secret: the password travels in
    :data:`PASSWORD_VAR` (or ``HOSTOPS_REQUEST_PASSWORD`` in the controller's environment)."""
    try:
        request = build_request(verb, args)
    except InputProblems as err:
        return {"plesk_request_problems": list(err.problems)}
    return {"plesk_request": request.as_data()}


def needs_password(verb: str, args: Mapping[str, Any]) -> bool:
    """Whether the request sets a password on a Plesk server (False when it cannot be
    served there at all: the playbook then refuses it)."""
    try:
        return build_request(verb, args).needs_password
    except InputProblems:
        return False


# -- Checks on values ---------------------------------------------------------------------------


def _show(value: str) -> str:
    return request_names.show(value)


def _engine_problems(engine: str) -> list[str]:
    if not engine:
        return []
    problems = request_names.engine_problems(engine)
    if not problems and engine not in SERVED_ENGINES:
        problems.append(
            f"--engine: {_show(engine)}: a Plesk server has MySQL/MariaDB only "
            "(contract §4.1.1 level 3); use mariadb"
        )
    return problems


def _is_domain(name: str) -> bool:
    return request_names.is_domain_name(name)


def domain_problems(domain: str, arg: str) -> list[str]:
    if _is_domain(domain):
        return []
    return [
        f"{arg}: {_show(domain)}: must be a lowercase domain name "
        "(labels of a-z, 0-9 and '-', at least two, e.g. www.example.fr)"
    ]


def _address_problems(address: str) -> list[str]:
    local, at, domain = address.rpartition("@")
    if at and _LOCAL_PART.fullmatch(local) and ".." not in local and _is_domain(domain):
        return []
    return [
        f"--address: {_show(address)}: must be a lowercase mail address "
        "(a-z, 0-9 and . _ + - before the @, a domain name after it)"
    ]
