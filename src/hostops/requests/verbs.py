"""Ticket requests (contract §4.1.1, level 4): one verb per thing a client asks for.

A verb is a small declarative entry, a :class:`Verb`: its arguments and their
validators, the playbook that carries it out, the variables it passes, and the secret
it generates. :func:`run_request` does the same for every verb:

1. check every argument against its allow-list, and all of them together (exit 2, one
   line per problem naming the argument and the value), before any host is touched;
2. find the host in the operator's inventory, or in the lab's (``--lab``);
3. when a vault file is given, check that it can be read and written back;
4. generate the secret (``secrets``), run the playbook through ansible-runner;
5. report: ``created`` (the secret shown once, or stored in the vault file only) or
   ``exists`` (nothing was changed, the password is unchanged and nothing is shown).

Values reach Ansible as extra variables. Allow-lists keep out everything that could
be templated or interpreted (no braces, quotes, spaces, semicolons, ...), so neither
a shell nor SQL nor Jinja can see anything but a name. Secrets are generated from
``[A-Za-z0-9_-]`` for the same reason.

Where the secret goes: ansible-runner writes a run's extra variables to
``env/extravars`` in its private data directory (a 0600 file in a 0700 directory), and
its whole environment to ``artifacts/<ident>/command`` -- an environment variable would
land on disk as well, in two places, and would need the runner to let it through.
So the secret travels as an extra variable and, once the run is over, the secret in
``env/extravars`` is replaced by ``<redacted>`` (the rest stays, for the audit trail).
The roles handle it in ``no_log`` tasks only.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from hostops.core.errors import HostopsError, UsageError
from hostops.core.runner import PlaybookRun
from hostops.core.settings import new_run_dir
from hostops.core.targets import inventory_host, inventory_sources
from hostops.lab.nspawn import lab_host_name
from hostops.module_utils import plesk_commands
from hostops.module_utils.names import is_domain_name
from hostops.module_utils.order_rules import PHP_VERSIONS as RELEASE_PHP
from hostops.requests import database as db_requests

# -- Allow-lists ---------------------------------------------------------------------
# A validator returns the problem with a value, or None when the value is good; its
# message does not repeat the argument and the value: check_arguments() prints
# "ARG: VALUE: PROBLEM", as hostops.request_names does for the database verbs.
Validator = Callable[[str], str | None]

# Patterns are matched whole (fullmatch: "$" alone would let a trailing newline through).
# Domain names: the collection's rule (plugins/module_utils/names.py), which the roles apply.
LOGIN_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Inventory host names: what Ansible accepts in a host pattern without surprises.
HOST_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
# Names that would confuse people or daemons if an FTP account bore them.
RESERVED_LOGINS = frozenset(
    {"root", "admin", "administrator", "anonymous", "ftp", "www_data", "nobody", "postmaster"}
)
# Every release's PHP (the order rules' table); each host accepts its own only
PHP_VERSIONS = tuple(version for versions in RELEASE_PHP.values() for version in versions)
PASSWORD_BYTES = 18  # 24 characters of [A-Za-z0-9_-], 144 bits


def check_host(value: str) -> str | None:
    if not HOST_RE.fullmatch(value):
        return "not an inventory host name (letters, digits, '.', '_', '-')"
    return None


def check_domain(value: str) -> str | None:
    if not is_domain_name(value):
        return "not a lowercase domain name (RFC 1123: dot-separated labels of a-z, 0-9, '-')"
    return None


def check_login(value: str) -> str | None:
    if not LOGIN_RE.fullmatch(value):
        return "not a login name (a lowercase letter, then a-z, 0-9 or '_'; 32 at most)"
    if value in RESERVED_LOGINS:
        return "a reserved name"
    return None


def check_php(value: str) -> str | None:
    if value not in PHP_VERSIONS:
        return f"not one of {', '.join(PHP_VERSIONS)} (Debian's; each host accepts its own only)"
    return None


_PHP_FUNCTION = re.compile(r"[a-z_][a-z0-9_]{0,63}")


def check_php_functions(value: str) -> str | None:
    names = value.split(",")
    bad = [n for n in names if not _PHP_FUNCTION.fullmatch(n)]
    if bad or len(names) > 20:
        return "a comma-separated list of PHP function names (at most 20), e.g. exec,popen"
    return None


# -- Verbs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Argument:
    """One ``--flag VALUE`` of a verb."""

    flag: str
    help: str
    check: Validator
    required: bool = True
    default: str | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Secret:
    """A password the request generates: passed to the playbook as ``var``, shown once or
    stored in the vault file under ``vault_path(args)``."""

    var: str
    vault_path: Callable[[Mapping[str, str]], tuple[str, ...]]
    label: str = "password"


@dataclass(frozen=True)
class Verb:
    """A ticket request: ``hostops request NAME --host H ...``."""

    name: str
    help: str
    playbook: str
    arguments: tuple[Argument, ...]
    # the playbook's extra variables from the checked arguments (without the secret)
    variables: Callable[[Mapping[str, str]], dict[str, Any]]
    # what is asked, for messages: "vhost shop.example"
    describe: Callable[[Mapping[str, str]], str]
    secret: Secret | None = None
    # problems that involve several arguments (engine limits, ...), as full lines
    check: Callable[[Mapping[str, str]], list[str]] = field(default=lambda _args: [])
    # a password the request sets on a Plesk server only (a vhost is a subscription,
    # whose system user has one); a verb with a secret uses that one on both back ends
    plesk_secret: Secret | None = None

    def secrets(self) -> tuple[Secret, ...]:
        return tuple(s for s in (self.secret, self.plesk_secret) if s is not None)


HOST = Argument("--host", "the server (an inventory host name)", check_host, metavar="H")


def _vhost_variables(args: Mapping[str, str]) -> dict[str, Any]:
    allowed = args.get("allow_php_functions") or ""
    return {
        "web_vhost_domain": args["domain"],
        "web_vhost_php": args.get("php") or "",
        "web_vhost_php_allow_functions": [n for n in allowed.split(",") if n],
    }


def _ftp_variables(args: Mapping[str, str]) -> dict[str, Any]:
    return {"ftp_account_user": args["user"], "ftp_account_domain": args["domain"]}


VHOST = Verb(
    name="vhost",
    help="add a vhost to the server's web stack",
    playbook="request-vhost.yml",
    arguments=(
        HOST,
        Argument("--domain", "the vhost's domain name (lowercase)", check_domain, metavar="D"),
        Argument(
            "--php",
            "PHP version (default: the release's: 8.4 on Debian 13)",
            check_php,
            required=False,
            metavar="VERSION",
        ),
        Argument(
            "--allow-php-functions",
            "functions the server's PHP pools disable (exec, system, passthru, shell_exec, "
            "proc_open, popen, pcntl_*) that this vhost may call, comma-separated",
            check_php_functions,
            required=False,
            metavar="F1,F2",
        ),
    ),
    variables=_vhost_variables,
    describe=lambda args: f"vhost {args['domain']}",
    plesk_secret=Secret(
        var=plesk_commands.PASSWORD_VAR,
        vault_path=lambda args: (args["host"], "subscriptions", args["domain"]),
        label="password",
    ),
)

FTP_ACCOUNT = Verb(
    name="ftp-account",
    help="add an FTP account (FTPS) chrooted to a vhost's document root",
    playbook="request-ftp-account.yml",
    arguments=(
        HOST,
        Argument(
            "--domain", "the vhost whose document root is the account's", check_domain, metavar="D"
        ),
        Argument("--user", "the account's login name", check_login, metavar="U"),
    ),
    variables=_ftp_variables,
    describe=lambda args: f"ftp-account {args['user']} ({args['domain']})",
    secret=Secret(
        var="ftp_account_password",
        vault_path=lambda args: (args["host"], "ftp_accounts", args["user"]),
    ),
)


def _checked_by_the_verb(_value: str) -> None:
    """Arguments whose verb checks them all together (Verb.check)."""
    return None


def from_db_request(spec: db_requests.RequestVerb) -> Verb:
    """The database verbs, declared in :mod:`hostops.requests.database` with their own checks
    (engine limits, reserved names: :mod:`hostops.request_names`)."""
    return Verb(
        name=spec.name,
        help=spec.help,
        playbook=spec.playbook,
        arguments=(
            HOST,
            *(
                Argument(
                    a.flag,
                    a.help + (f" ({', '.join(a.choices)})" if a.choices else ""),
                    _checked_by_the_verb,
                    required=a.required,
                    metavar=a.dest.upper(),
                )
                for a in spec.arguments
            ),
        ),
        variables=spec.variables,
        describe=spec.describe,
        check=spec.problems,
        secret=(
            Secret(
                var=db_requests.PASSWORD_VAR,
                vault_path=lambda args: (
                    args["host"],
                    "db_users",
                    f"{args['engine']}/{args['database']}/{args['user']}",
                ),
            )
            if spec.password
            else None
        ),
    )


VERBS: tuple[Verb, ...] = (
    VHOST,
    FTP_ACCOUNT,
    *(from_db_request(spec) for spec in db_requests.VERBS),
)


def verb_named(name: str) -> Verb:
    for verb in VERBS:
        if verb.name == name:
            return verb
    raise UsageError(f"request: {name!r} is not one of {', '.join(v.name for v in VERBS)}")


def check_arguments(verb: Verb, args: Mapping[str, str | None]) -> dict[str, str]:
    """Every problem at once, one line each naming the argument and the value."""
    problems = []
    checked: dict[str, str] = {}
    for argument in verb.arguments:
        value = args.get(argument.dest)
        if value is None:
            if argument.required:
                problems.append(f"{argument.flag}: required")
            elif argument.default is not None:
                checked[argument.dest] = argument.default
            continue
        problem = argument.check(value)
        if problem:
            problems.append(f"{argument.flag}: {value!r}: {problem}")
        else:
            checked[argument.dest] = value
    if not problems:
        problems += verb.check(checked)
    if problems:
        raise UsageError(problems)
    return checked


# -- Where the host is ---------------------------------------------------------------


def resolve_inventory(
    host: str, *, lab: bool, inventories: list[Path], vault_password_file: Path | None = None
) -> list[Path]:
    """The inventories to run with, once HOST is known to be in them (hostops.core.targets)."""
    sources = inventory_sources(lab=lab, inventories=inventories)
    vault = (
        None if vault_password_file is None else [("default", _vault_secret(vault_password_file))]
    )
    inventory_host(host, sources, lab=lab, vault_secrets=vault)
    return sources


# -- The vault file ------------------------------------------------------------------


def vault_password_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        return explicit
    env = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    return Path(env) if env else None


def _vault_secret(password_file: Path) -> Any:
    """The vault secret of PASSWORD_FILE (a file, or a script Ansible runs), or UsageError
    naming it: missing, not a regular file (a directory, a FIFO, a device), too big for a
    password, or refused by Ansible (empty, a script that fails)."""
    from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415 - slow import
    from ansible.parsing.vault import get_file_vault_secret  # noqa: PLC0415

    option = "--vault-password-file"
    try:
        info = password_file.stat()
    except OSError as err:
        raise UsageError(f"{option}: {str(password_file)!r}: {err.strerror}") from err
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{option}: {str(password_file)!r} is not a regular file")
    if info.st_size > MAX_PASSWORD_FILE:
        raise UsageError(f"{option}: {str(password_file)!r} is too big for a password file")
    try:
        secret = get_file_vault_secret(filename=str(password_file), loader=DataLoader())
        secret.load()
    except Exception as err:  # ansible raises several kinds for a bad password file
        raise UsageError(f"{option}: {str(password_file)!r}: {err}") from err
    return secret


MAX_PASSWORD_FILE = 64 * 1024


@dataclass
class VaultFile:
    """An Ansible Vault encrypted YAML mapping of the passwords requests generated:
    ``{host: {kind: {name: {password, created, ...}}}}``, readable with
    ``ansible-vault view FILE``."""

    path: Path
    password_file: Path

    def check(self) -> None:
        """Before anything runs: the password file works, and the file decrypts."""
        problems = []
        if not self.password_file.exists():
            problems.append(f"--vault-password-file: {self.password_file} does not exist")
        if self.path.exists() and not self.path.is_file():
            problems.append(f"--vault-file: {self.path} is not a file")
        if not self.path.parent.is_dir():
            problems.append(f"--vault-file: directory {self.path.parent} does not exist")
        if problems:
            raise UsageError(problems)
        self.read()

    def _vault(self) -> Any:
        from ansible.parsing.vault import VaultLib  # noqa: PLC0415 - slow import

        return VaultLib([("default", _vault_secret(self.password_file))])

    def read(self) -> dict[str, Any]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return {}
        vault = self._vault()
        try:
            text = vault.decrypt(self.path.read_bytes())
        except Exception as err:
            raise UsageError(
                f"--vault-file: {self.path} cannot be decrypted with {self.password_file} ({err})"
            ) from err
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise UsageError(f"--vault-file: {self.path} does not hold a YAML mapping")
        return data

    def store(self, path: tuple[str, ...], entry: Mapping[str, Any]) -> None:
        """Add ENTRY at PATH, under a lock, written atomically (0600)."""
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.read()
            node = data
            for key in path[:-1]:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise HostopsError(f"{self.path}: {'/'.join(path)} is not a mapping")
                node = child
            node[path[-1]] = dict(entry)
            vault = self._vault()
            encrypted = vault.encrypt(yaml.safe_dump(data, sort_keys=True).encode())
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(encrypted)
            os.replace(tmp, self.path)


# -- The run -------------------------------------------------------------------------

REDACTED = "<redacted>"


# The tasks that refuse arguments the server's back end cannot take, once its managed
# level is known (playbooks/tasks/plesk-request.yml, playbooks/request-database.yml):
# their failure is bad input (exit 2), not a failed run.
def generate_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def redact_extravars(runner_dir: Path, names: list[str]) -> None:
    """Replace the secrets in the run's saved extra variables (env/extravars)."""
    path = runner_dir / "env" / "extravars"
    if not path.exists():
        return
    data = json.loads(path.read_text())
    for name in names:
        if name in data:
            data[name] = REDACTED
    path.write_text(json.dumps(data))


def run_request(
    verb: Verb,
    raw: Mapping[str, str | None],
    *,
    lab: bool,
    inventories: list[Path],
    vault_file: Path | None = None,
    vault_password: Path | None = None,
    check: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    args = check_arguments(verb, raw)
    # in the lab, the order's FQDN names the lab host its server was mapped onto
    host = lab_host_name(args["host"]) if lab else args["host"]
    password_file = vault_password_file(vault_password)
    vault: VaultFile | None = None
    if vault_file is not None:
        if not verb.secrets():
            raise UsageError(f"--vault-file: {verb.name} generates no secret to store")
        if password_file is None:
            raise UsageError(
                "--vault-file: needs a vault password file "
                "(--vault-password-file or ANSIBLE_VAULT_PASSWORD_FILE)"
            )
        vault = VaultFile(vault_file, password_file)
        vault.check()
    inventory = resolve_inventory(
        host, lab=lab, inventories=inventories, vault_password_file=password_file
    )
    what = verb.describe(args)
    extravars: dict[str, Any] = {"hostops_request_host": host, **verb.variables(args)}
    # One password per request, generated here: under the verb's own variable, or, for a
    # verb that sets one on a Plesk server only, under plesk_request_password. The
    # playbook learns the back end on the host; what it reports says which was used.
    password = None
    secret_vars = [s.var for s in verb.secrets()]
    if verb.secret is not None or (
        verb.plesk_secret is not None and plesk_commands.needs_password(verb.name, args)
    ):
        password = generate_password()
        extravars.update(dict.fromkeys(secret_vars, password))
    mode = "check mode, nothing is changed" if check else "applying"
    print(f"request {what} on {host} ({mode})", file=out)
    run_dir = new_run_dir("requests", host, kind=verb.name)
    run = PlaybookRun(
        playbook=verb.playbook,
        inventory=inventory,
        run_dir=run_dir / "runner",
        extravars=extravars,
        limit=host,
        check=check,
        out=out,
    )
    try:
        result = run.execute()
    finally:
        if secret_vars:
            redact_extravars(run_dir / "runner", secret_vars)
    print("", file=out)
    print(result.summary_table(), file=out)
    refused = result.artifacts.get("hostops_request_refused") or {}
    if isinstance(refused, dict) and refused.get(host):
        # Arguments this server's back end cannot take (a Plesk database needs --domain,
        # ...): bad input, found once the host's level was read (playbooks/tasks/
        # refuse-request.yml publishes it); nothing was changed.
        raise UsageError(
            [f"request {what} on {host}: {str(refused[host]).strip()}", f"(artifacts: {run_dir})"]
        )
    if not result.report(out, f"request {what} on {host}", run_dir, table=False):
        return 1
    details = dict((result.artifacts.get("hostops_request") or {}).get(host) or {})
    status = str(details.pop("status", "") or "unknown").strip()
    message = str(details.pop("message", "") or "").strip()
    backend = str(details.pop("backend", "") or "custom")
    secret = verb.secret or (verb.plesk_secret if backend == "plesk" else None)
    shown = ", ".join(f"{k} {v}" for k, v in details.items() if v not in ("", None))
    if check:
        if status == "unmet":
            print(f"request {what} on {host}: check mode: {message}", file=out)
            return 1
        verdict = "would be created" if status == "created" else "exists"
        print(
            f"request {what} on {host}: check mode predicts {result.changed} change(s); "
            f"{verdict} ({shown})",
            file=out,
        )
        return 0
    if status not in ("created", "exists"):
        raise HostopsError(f"request {what} on {host}: the playbook reported no result ({status})")
    if secret is None or password is None:
        print(f"request {what} on {host}: {status}, {result.changed} change(s) ({shown})", file=out)
        if vault is not None:
            print(f"nothing stored in {vault.path}: no password on this server", file=out)
        return 0
    if status == "exists":
        print(
            f"request {what} on {host}: exists, {secret.label} unchanged, "
            f"{result.changed} change(s) ({shown})",
            file=out,
        )
        return 0
    print(f"request {what} on {host}: created, {result.changed} change(s) ({shown})", file=out)
    if vault is None:
        print(f"{secret.label} (shown once, stored nowhere): {password}", file=out)
        return 0
    key = secret.vault_path(args)
    entry = {
        secret.label: password,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        **{k: v for k, v in args.items() if k != "host"},
    }
    try:
        vault.store(key, entry)
    except Exception as err:
        # The account exists now: its password must not be lost with the file.
        print(f"{secret.label} (the vault file could not be written): {password}", file=out)
        raise HostopsError(f"--vault-file: {vault.path}: not written ({err})") from err
    print(f"{secret.label} stored in {vault.path} under {'/'.join(key)}", file=out)
    return 0
