"""The order's rules: its schema, defaults and what the toolkit can provision, written once.

An order (bon de commande, ``examples/orders/``) reaches hostops twice: as a YAML file that
``hostops order validate|apply`` reads (``hostops.orders.order`` parses it safely, then calls
:func:`check_document`), and as the extra variables of ``playbooks/provision.yml``
(``Order.to_vars()``; what an AWX job template carries), which the playbook's first play
checks on the controller with the filter ``alteo.hostops.order_problems`` (:func:`vars_problems`)
before any task reaches a host. Both use the rules below, so an order the CLI accepts is
one the playbook accepts, and the other way round.

Every problem is a line ``FIELD: MESSAGE`` for a person; nothing here raises on bad data.
Standard library only: this module runs on the controller inside Ansible as well.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Final, Literal, TypeAlias, TypeVar, cast, get_args
from urllib.parse import urlsplit

from . import releases
from .names import is_contact_address, is_domain_name
from .sla import MAX_FEE_EUR, MAX_GTR_HOURS

Service = Literal["dedicated_server", "private_cloud", "shared_hosting"]
OsRelease = Literal["debian13", "debian12"]
ManagedLevel = Literal["none", "basic", "supervision", "plesk", "custom"]
Database = Literal["mariadb", "postgresql", "mongodb"]

SERVICES: Final[tuple[str, ...]] = get_args(Service)
OS_RELEASES: Final[tuple[str, ...]] = get_args(OsRelease)
MANAGED_LEVELS: Final[tuple[str, ...]] = get_args(ManagedLevel)
DATABASES: Final[tuple[str, ...]] = get_args(Database)

FORMAT_VERSION: Final = 1
DEFAULT_OS: Final[OsRelease] = "debian13"  # Debian's current stable
# The PHP each Debian release ships (the only one a custom stack installs).
PHP_VERSIONS: Final[Mapping[str, tuple[str, ...]]] = {"debian13": ("8.4",), "debian12": ("8.2",)}
DEFAULT_BACKUP_TIME: Final = "22:00"  # contract §4.6: databases daily at 22:00
DEFAULT_RETENTION_DAYS: Final = 28  # §4.6: keep the last 28 days
SHARED_HOSTING_RETENTION_DAYS: Final = 7  # §4.6: shared hosting keeps 7 days
MAX_RETENTION_DAYS: Final = 365  # a year of daily snapshots: beyond is an archive, not a backup

# Bounds on hostile input, checked before anything is built. A real order is a few KiB,
# four levels deep and a few hundred values; these keep the worst case well under a second.
MAX_PROBLEMS: Final = 50
_MAX_TEXT: Final = 200  # free text: names
_MAX_VALUE: Final = 2048  # text with a shape of its own: URLs, paths, host names

# What the toolkit can provision today: flip an entry to True when its role lands. The
# stack entries are only looked at once managed_level.custom is available.
AVAILABLE: Final[Mapping[str, bool]] = {
    "managed_level.none": True,
    "managed_level.basic": True,
    "managed_level.supervision": True,
    "managed_level.plesk": True,
    "managed_level.custom": True,
    "backups": True,
    "monitoring": True,
    "stack.web": True,
    "stack.databases.mariadb": True,
    "stack.databases.postgresql": True,
    "stack.databases.mongodb": False,
    "stack.mail": True,
    "stack.ftp": True,
    "stack.webmail": True,
    # The host firewall on a Plesk server goes through Plesk's own firewall extension.
    "firewall.plesk": True,
}
# Why an entry of AVAILABLE is still False, for the message.
_NOT_LANDED: Final[Mapping[str, str]] = {
    "managed_level.basic": "the monitoring role has not landed",
    "managed_level.supervision": "the monitoring role has not landed",
    "managed_level.plesk": "the Plesk role has not landed",
    "managed_level.custom": "the stack roles have not landed",
    "backups": "the backup role has not landed",
    "monitoring": "the monitoring role has not landed",
    "stack.web": "the web role has not landed",
    "stack.databases.mariadb": "the MariaDB role has not landed",
    "stack.databases.postgresql": "the PostgreSQL role has not landed",
    "stack.databases.mongodb": "Debian does not package MongoDB and no role installs it",
    "stack.mail": "the mail role has not landed",
    "stack.ftp": "the FTP role has not landed",
    "stack.webmail": "the webmail role has not landed",
    "firewall.plesk": "Plesk's firewall extension is not driven by hostops yet",
}

ORDER_ID = re.compile(r"[A-Z][A-Z0-9-]{2,39}")
_VAR_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_PHONE = re.compile(r"\+?[0-9 .()-]+")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
_PORT = re.compile(r"[0-9]{1,5}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SECRET_NAME = re.compile(
    r"passw|passphrase|secret|token|credential|licen[cs]e_?key|api_?key|private_?key|(?:^|_)key$",
    re.IGNORECASE,
)
_LICENSE_KEY = re.compile(r"[A-Z0-9]{5,}(?:-[A-Z0-9]{5,}){3,}")
_PEM_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_TEMPLATE_MARKERS = ("{{", "{%", "{#")
_VAULT_HINT = "secrets go in Ansible Vault, never in an order"

_T = TypeVar("_T")

# -- The order ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """Who the provider warns on alert (contract §4.1.1)."""

    name: str
    phone: str
    email: str


@dataclass(frozen=True)
class Customer:
    name: str
    contact: Contact | None = None


@dataclass(frozen=True)
class Server:
    hostname: str
    address: str | None = None  # None: the inventory gives it


@dataclass(frozen=True)
class WebStack:
    php_version: str


@dataclass(frozen=True)
class Stack:
    """The software a custom managed order lists (§4.1.1, level 4); empty otherwise."""

    web: WebStack | None = None
    databases: tuple[Database, ...] = ()
    mail: bool = False
    ftp: bool = False
    webmail: bool = False
    # Shared mail's optional antispam (§4.4): [SPAM]/[BULK] subject tags, Junk folder.
    antispam: bool = False
    # "transactional": the §4.5 relay profile (2 MB per message, submission only).
    mail_profile: str = "mailbox"


MAIL_PROFILES: Final[tuple[str, ...]] = ("mailbox", "transactional")


@dataclass(frozen=True)
class Plesk:
    license_vault_var: str  # the NAME of the vault variable holding the license key


@dataclass(frozen=True)
class Backups:
    enabled: bool = True
    time: str = DEFAULT_BACKUP_TIME
    retention_days: int = DEFAULT_RETENTION_DAYS
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class Monitoring:
    http_checks: tuple[str, ...] = ()
    tcp_checks: tuple[str, ...] = ()
    # HOST:PORT speaking TLS from the first byte whose certificate's expiry is watched
    tls_checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sla:
    monthly_fee_eur: float
    gtr_hours: float


@dataclass(frozen=True)
class Order:
    """A validated order with its defaults applied."""

    id: str
    customer: Customer
    service: Service
    managed_level: ManagedLevel
    servers: tuple[Server, ...]
    os: OsRelease = DEFAULT_OS
    bandwidth_mbps: int | None = None
    stack: Stack = Stack()
    plesk: Plesk | None = None
    backups: Backups = Backups()
    monitoring: Monitoring = Monitoring()
    sla: Sla | None = None
    # The host firewall: always on at levels supervision and custom (False refused there),
    # on request at levels none and basic; None when the order does not say.
    firewall: bool | None = None
    # Outbound IRC (§3.1.3 forbids IRC services): the host firewall blocks it unless the
    # order says allow_irc: true; None when the order does not say (blocked).
    allow_irc: bool | None = None

    def to_vars(self) -> dict[str, Any]:
        """The order as plain data (dicts, lists, scalars) for Ansible extra vars.

        One variable per top-level field (:data:`ORDER_VARS`), every default applied;
        :func:`vars_problems` reads them back.
        """
        return {
            var: _plain(getattr(self, _ORDER_ATTRS[field])) for var, field in ORDER_VARS.items()
        }


# The extra variables of playbooks/provision.yml, each with the order field it carries.
ORDER_VARS: Final[Mapping[str, str]] = {
    "hostops_order": "order",
    "hostops_customer": "customer",
    "hostops_service": "service",
    "hostops_os": "os",
    "hostops_managed_level": "managed_level",
    "hostops_bandwidth_mbps": "bandwidth_mbps",
    "hostops_stack": "stack",
    "hostops_plesk": "plesk",
    "hostops_backups": "backups",
    "hostops_monitoring": "monitoring",
    "hostops_sla": "sla",
    "hostops_servers": "servers",
    "hostops_firewall": "firewall",
    "hostops_allow_irc": "allow_irc",
}
# order field -> Order attribute (the order number is Order.id)
_ORDER_ATTRS: Final[Mapping[str, str]] = {
    field: "id" if field == "order" else field for field in ORDER_VARS.values()
}


def _plain(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def check_document(data: object, source: str) -> tuple[Order | None, list[str]]:
    """Check a parsed order document (plain dicts, lists and scalars) against the schema.

    Returns the :class:`Order` with its defaults applied and no problems, or None and every
    problem found (``FIELD: MESSAGE``; ``SOURCE: MESSAGE`` for the document as a whole).
    """
    checker = _Checker(source)
    order = checker.order(data)
    if checker.problems or order is None:
        return None, _capped(checker.problems or [f"{source}: not a valid order"], source)
    return order, []


def vars_problems(
    values: Mapping[str, object], available: Mapping[str, bool] | None = None
) -> list[str]:
    """What is wrong with an order given as provision.yml's extra variables (an AWX job).

    *values* maps variable names to values; names that are not :data:`ORDER_VARS` are
    ignored, and a variable that is absent or null counts as a field the order leaves out.
    The answer is what ``hostops order validate`` would say of the same order (schema,
    then what the toolkit can provision), each line naming the variable:
    ``hostops_stack.web.php_version: '8.2' is not provided by debian13 ...``.
    """
    document = order_document(values)
    order, problems = check_document(document, "the order's variables")
    if order is not None:
        problems = check_available(order, available)
    return [_var_path(problem) for problem in problems]


def order_document(values: Mapping[str, object]) -> dict[str, object]:
    """The order document that provision.yml's extra variables carry (see Order.to_vars)."""
    document: dict[str, object] = {"version": FORMAT_VERSION}
    for var, field in ORDER_VARS.items():
        value = _without_nulls(plain_data(values.get(var)))
        if value is None:
            continue
        if field == "stack" and isinstance(value, dict):
            value = _stack_as_written(value, values.get("hostops_managed_level"))
            if value is None:
                continue
        document[field] = value
    return document


def _stack_as_written(stack: dict[str, Any], level: object) -> dict[str, Any] | None:
    """to_vars() gives every order a stack with its defaults; an order only writes one at
    level custom, and writes mail_profile only with mail."""
    defaults = _plain(Stack())
    if level != "custom" and stack == {k: v for k, v in defaults.items() if v is not None}:
        return None
    if stack.get("mail_profile") == defaults["mail_profile"] and stack.get("mail") is not True:
        return {key: value for key, value in stack.items() if key != "mail_profile"}
    return stack


def plain_data(value: object) -> Any:
    """Ansible's values (tagged str, dict and list subclasses) as plain Python data."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {plain_data(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(item) for item in value]
    return value


def _without_nulls(value: object) -> object:
    """Nulls stand for fields left out (to_vars writes None for an absent optional field)."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


_FIELD_HEAD = re.compile(r"[a-z_]+")


def _var_path(problem: str) -> str:
    """``stack.web: ...`` -> ``hostops_stack.web: ...``: name the variable that carries it."""
    head = _FIELD_HEAD.match(problem)
    if head is None:
        return problem
    var = next((v for v, field in ORDER_VARS.items() if field == head.group()), None)
    return problem if var is None else var + problem[head.end() :]


def check_available(order: Order, available: Mapping[str, bool] | None = None) -> list[str]:
    """What in *order* the toolkit cannot provision yet, one ``FIELD: MESSAGE`` line each.

    *available* maps capabilities (the keys of :data:`AVAILABLE`) to whether their roles
    have landed; a capability it does not list counts as not available.
    """

    def missing(capability: str) -> str | None:
        if (AVAILABLE if available is None else available).get(capability, False):
            return None
        return _NOT_LANDED.get(capability, "it is not implemented yet")

    problems: list[str] = []
    level = order.managed_level
    if why := missing(f"managed_level.{level}"):
        problems.append(f"managed_level: '{level}' is not available yet ({why})")
    elif level == "custom":
        problems += _stack_unavailable(order.stack, missing)
    elif level == "plesk" and releases.OS_MAJOR[order.os] not in releases.ROLE_RELEASES["plesk"]:
        problems.append(
            f"os: '{order.os}' is not available with managed_level 'plesk' (hostops installs "
            "Plesk on Debian 12 only, the release Plesk supports; see docs/plesk.md)"
        )
    if order.backups.enabled and (why := missing("backups")):
        problems.append(
            f"backups.enabled: true is not available yet ({why}); set it to false for now"
        )
    if order.firewall and level == "plesk" and (why := missing("firewall.plesk")):
        problems.append(
            f"firewall: true is not available yet with managed_level 'plesk' ({why});"
            " remove the field for now"
        )
    for name in _MONITORING_FIELDS:
        if getattr(order.monitoring, name) and (why := missing("monitoring")):
            problems.append(
                f"monitoring.{name}: not available yet ({why}); leave the list empty for now"
            )
    return problems


def _stack_unavailable(stack: Stack, missing: Callable[[str], str | None]) -> list[str]:
    wanted: list[tuple[str, str, str]] = []  # (capability, field, value shown)
    if stack.web is not None:
        wanted.append(("stack.web", "stack.web", "a web server"))
    wanted += [(f"stack.databases.{db}", "stack.databases", f"'{db}'") for db in stack.databases]
    flags = [flag for flag in _FLAGS if getattr(stack, flag)]
    wanted += [(f"stack.{flag}", f"stack.{flag}", "true") for flag in flags]
    problems = []
    for capability, field, shown in wanted:
        if why := missing(capability):
            problems.append(f"{field}: {shown} is not available yet ({why})")
    return problems


def _capped(problems: list[str], source: str) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"{source}: and {len(problems) - MAX_PROBLEMS} more problems"]


# -- Describing values in messages --------------------------------------------------------------


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show(value: object) -> str:
    """A value as a message shows it: YAML words for booleans and null, repr for the rest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str | int | float):
        return _clip(repr(value))
    return f"a {_kind(value)}"


def _kind(value: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "boolean"),
        (int, "integer"),
        (float, "number"),
        (str, "text"),
        (list, "list"),
        (dict, "mapping"),
    )
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def _got(value: object) -> str:
    if value is None:
        return "got null"
    if isinstance(value, list | dict):
        return f"got a {_kind(value)}"
    return f"got {_kind(value)} {_show(value)}"


def _quote_hint(value: object) -> str:
    if isinstance(value, bool):
        return "; YAML reads unquoted yes/no/on/off/true/false as booleans: quote the text"
    if isinstance(value, int | float):
        return f'; YAML reads it as a number: quote it ("{value}")'
    return ""


def _secret_kind(value: str) -> str | None:
    if _PEM_KEY.search(value):
        return "a private key"
    if _LICENSE_KEY.fullmatch(value.strip()):
        return "a license key"
    return None


def _key_text(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", key) else _show(key)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# -- The schema -------------------------------------------------------------------------------

_MISSING: Final = object()
_EMPTY: Final[tuple[str, ...]] = ()

_TOP_FIELDS = (
    "version",
    "order",
    "customer",
    "service",
    "os",
    "managed_level",
    "bandwidth_mbps",
    "servers",
    "stack",
    "plesk",
    "backups",
    "monitoring",
    "sla",
    "firewall",
    "allow_irc",
)
# Levels where the host firewall is part of the service (playbooks/vars/firewall.yml;
# on Plesk servers through Plesk's own firewall extension).
FIREWALL_LEVELS: Final[tuple[str, ...]] = ("supervision", "plesk", "custom")
_CUSTOMER_FIELDS = ("name", "contact")
_CONTACT_FIELDS = ("name", "phone", "email")
_SERVER_FIELDS = ("hostname", "address")
_STACK_FIELDS = ("web", "databases", "mail", "ftp", "webmail", "antispam", "mail_profile")
_FLAGS = ("mail", "ftp", "webmail")
_WEB_FIELDS = ("php_version",)
_PLESK_FIELDS = ("license_vault_var",)
_BACKUP_FIELDS = ("enabled", "time", "retention_days", "paths")
_MONITORING_FIELDS = ("http_checks", "tcp_checks", "tls_checks")
_SLA_FIELDS = ("monthly_fee_eur", "gtr_hours")
# A private cloud's bandwidth cap, Mbit/s: what hostops bandwidth notify takes too.
MAX_MBPS = 100_000


class _Checker:
    """Reads the parsed YAML field by field, collecting every problem on the way.

    Each reader returns the typed value, or None when the value is wrong (and reported),
    so that one bad field does not hide the others; rules between fields skip values
    that are already wrong.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path or self.source}: {message}")

    # -- generic readers

    def section(self, value: object, path: str, allowed: Sequence[str]) -> dict[str, object]:
        """The fields of a mapping; unknown ones are reported and left out."""
        if not isinstance(value, dict):
            what = "a mapping" if path else "an order: a mapping"
            self.add(path, f"expected {what} of fields ({', '.join(allowed)}); {_got(value)}")
            return {}
        known: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.add(path, f"field name {_show(key)} is not text{_quote_hint(key)}")
            elif key not in allowed:
                self.add(_join(path, _key_text(key)), _unknown_field(key, allowed))
            else:
                known[key] = item
        return known

    def get(self, section: Mapping[str, object], name: str, path: str, *, required: bool) -> object:
        """The raw value of a field, or _MISSING (reported when the field is required)."""
        value = section.get(name, _MISSING)
        where = _join(path, name)
        if value is _MISSING:
            if required:
                self.add(where, "required field is missing")
        elif value is None:
            self.add(where, "empty value: give one or remove the field")
            return _MISSING
        return value

    def text(self, value: object, path: str, *, max_len: int = _MAX_TEXT) -> str | None:
        """A single line of text: no control characters, no templates, no secrets."""
        if not isinstance(value, str):
            self.add(path, f"expected text; {_got(value)}{_quote_hint(value)}")
            return None
        secret = _secret_kind(value)
        if secret:
            self.add(path, f"the value (not shown) looks like {secret}: {_VAULT_HINT}")
            return None
        problem = None
        if not value.strip():
            problem = "is empty"
        elif len(value) > max_len:
            problem = f"is longer than {max_len} characters"
        elif _CONTROL.search(value):
            problem = "contains a control character (newline, tab, NUL, ...)"
        elif any(marker in value for marker in _TEMPLATE_MARKERS):
            problem = "contains a Jinja template marker; an order holds plain values"
        if problem:
            self.add(path, f"{_show(value)} {problem}")
            return None
        return value

    def matching(self, value: object, path: str, check: _Check) -> str | None:
        """Text that *check* accepts; *check* returns the normalised text or a complaint."""
        text = self.text(value, path, max_len=_MAX_VALUE)
        if text is None:
            return None
        result = check(text)
        if isinstance(result, _Bad):
            shown = "the value (not shown)" if result.secret else _show(text)
            self.add(path, f"{shown} {result.reason}")
            return None
        return result

    def choice(self, value: object, path: str, choices: Sequence[str]) -> str | None:
        allowed = ", ".join(choices)
        if not isinstance(value, str):
            self.add(path, f"expected one of {allowed}; {_got(value)}")
            return None
        if value not in choices:
            self.add(path, f"{_show(value)} is not one of {allowed}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if not isinstance(value, bool):
            self.add(path, f"expected true or false; {_got(value)}")
            return None
        return value

    def integer(
        self, value: object, path: str, low: int = 1, high: int | None = None
    ) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            hint = "; write it without quotes" if isinstance(value, str) and value.isdigit() else ""
            self.add(path, f"expected an integer; {_got(value)}{hint}")
            return None
        return value if self.in_range(value, path, low, high) else None

    def number(
        self, value: object, path: str, low: float, *, strict: bool, high: float
    ) -> float | None:
        """An int or float, finite, >= *low* (> *low* when *strict*), <= *high*."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(path, f"expected a number; {_got(value)}")
            return None
        if not math.isfinite(value):
            self.add(path, f"{_show(value)} is not a finite number")
            return None
        if value < low or (strict and value == low):
            self.add(path, f"{_show(value)} must be {'>' if strict else '>='} {low:g}")
            return None
        if value > high:
            self.add(path, f"{_show(value)} must be <= {high:g}")
            return None
        return value

    def mbps(self, value: object, path: str) -> int | None:
        return self.integer(value, path, 1, MAX_MBPS)

    def in_range(self, value: int, path: str, low: int, high: int | None) -> bool:
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"{low} or more"
            self.add(path, f"{value} is out of range {bounds}")
            return False
        return True

    def items(self, value: object, path: str, *, min_items: int = 0) -> list[object] | None:
        if not isinstance(value, list):
            self.add(path, f"expected a list; {_got(value)}")
            return None
        if len(value) < min_items:
            self.add(path, f"needs at least {min_items} item{'s' if min_items > 1 else ''}")
            return None
        return value

    def text_list(self, value: object, path: str, check: _Check) -> tuple[str, ...] | None:
        """A list of distinct texts, each accepted by *check* (normalised)."""
        entries = self.items(value, path)
        if entries is None:
            return None
        result: list[str] = []
        first: dict[str, int] = {}
        ok = True
        for index, entry in enumerate(entries):
            item = self.matching(entry, f"{path}[{index}]", check)
            if item is None:
                ok = False
            elif item in first:
                self.add(f"{path}[{index}]", f"duplicate of {path}[{first[item]}] ({_show(item)})")
                ok = False
            else:
                first[item] = index
                result.append(item)
        return tuple(result) if ok else None

    # -- the sections

    def field(
        self,
        raw: Mapping[str, object],
        path: str,
        name: str,
        read: Callable[[object, str], _T | None],
        *,
        required: bool = False,
        default: _T | None = None,
    ) -> _T | None:
        """Read field *name* of a section with *read*; *default* when it is absent."""
        value = self.get(raw, name, path, required=required)
        return default if value is _MISSING else read(value, _join(path, name))

    def matcher(self, check: _Check) -> Callable[[object, str], str | None]:
        return lambda value, path: self.matching(value, path, check)

    def chooser(self, choices: Sequence[str]) -> Callable[[object, str], str | None]:
        return lambda value, path: self.choice(value, path, choices)

    def lister(self, check: _Check) -> Callable[[object, str], tuple[str, ...] | None]:
        return lambda value, path: self.text_list(value, path, check)

    def order(self, data: object) -> Order | None:
        if data is None:
            self.add("", "the order is empty")
            return None
        raw = self.section(data, "", _TOP_FIELDS)
        if not isinstance(data, dict):
            return None
        self.field(raw, "", "version", self.version)
        order_id = self.field(raw, "", "order", self.matcher(_order_id), required=True)
        customer = self.field(raw, "", "customer", self.customer, required=True)
        service = self.field(raw, "", "service", self.chooser(SERVICES), required=True)
        os_release = self.field(raw, "", "os", self.chooser(OS_RELEASES), default=DEFAULT_OS)
        level = self.field(raw, "", "managed_level", self.chooser(MANAGED_LEVELS), required=True)
        self.contact_rule(raw.get("customer"), level)
        bandwidth = self.bandwidth(raw, service)
        servers = self.servers(raw)
        stack = self.stack(raw, level, os_release)
        plesk = self.plesk(raw, level)
        backups = self.backups(raw, service)
        monitoring = self.field(raw, "", "monitoring", self.monitoring, default=Monitoring())
        sla = self.field(raw, "", "sla", self.sla)
        firewall = self.firewall(raw, level)
        allow_irc = self.field(raw, "", "allow_irc", self.boolean)
        if (
            self.problems
            or order_id is None
            or customer is None
            or service is None
            or os_release is None
            or level is None
            or servers is None
            or stack is None
            or backups is None
            or monitoring is None
        ):
            return None
        return Order(
            id=order_id,
            customer=customer,
            service=cast(Service, service),
            os=cast(OsRelease, os_release),
            managed_level=cast(ManagedLevel, level),
            servers=servers,
            bandwidth_mbps=bandwidth,
            stack=stack,
            plesk=plesk,
            backups=backups,
            monitoring=monitoring,
            sla=sla,
            firewall=firewall,
            allow_irc=allow_irc,
        )

    def version(self, value: object, path: str) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value != FORMAT_VERSION:
            self.add(path, f"{_show(value)} is not an order format this reads ({FORMAT_VERSION})")
            return None
        return value

    def customer(self, value: object, path: str) -> Customer | None:
        fields_ = self.section(value, path, _CUSTOMER_FIELDS)
        name = self.field(fields_, path, "name", self.text, required=True)
        contact = self.field(fields_, path, "contact", self.contact)
        return None if name is None else Customer(name=name, contact=contact)

    def contact_rule(self, customer: object, level: str | None) -> None:
        """The provider warns a contact on alert at every managed level (§4.1.1)."""
        if isinstance(customer, dict) and "contact" not in customer and level not in (None, "none"):
            self.add("customer.contact", f"required when managed_level is '{level}'")

    def contact(self, value: object, path: str) -> Contact | None:
        fields_ = self.section(value, path, _CONTACT_FIELDS)
        if not isinstance(value, dict):
            return None
        name = self.field(fields_, path, "name", self.text, required=True)
        phone = self.field(fields_, path, "phone", self.matcher(_phone), required=True)
        email = self.field(fields_, path, "email", self.matcher(_email), required=True)
        if name is None or phone is None or email is None:
            return None
        return Contact(name=name, phone=phone, email=email)

    def bandwidth(self, raw: Mapping[str, object], service: str | None) -> int | None:
        mbps = self.field(raw, "", "bandwidth_mbps", self.mbps)
        if "bandwidth_mbps" in raw and service is not None and service != "private_cloud":
            self.add("bandwidth_mbps", f"only for service 'private_cloud', not '{service}'")
        return mbps

    def servers(self, raw: Mapping[str, object]) -> tuple[Server, ...] | None:
        value = self.get(raw, "servers", "", required=True)
        entries = None if value is _MISSING else self.items(value, "servers", min_items=1)
        if entries is None:
            return None
        servers = [self.server(entry, f"servers[{index}]") for index, entry in enumerate(entries)]
        self.unique_across(servers, "hostname")
        self.unique_across(servers, "address")
        good = [server for server in servers if server is not None]
        return tuple(good) if len(good) == len(servers) else None

    def unique_across(self, servers: Sequence[Server | None], name: str) -> None:
        first: dict[str, int] = {}
        for index, server in enumerate(servers):
            value = getattr(server, name, None)
            if value is None:
                continue
            if value in first:
                where = f"servers[{index}].{name}"
                self.add(where, f"duplicate of servers[{first[value]}] ({_show(value)})")
            else:
                first[value] = index

    def server(self, value: object, path: str) -> Server | None:
        fields_ = self.section(value, path, _SERVER_FIELDS)
        if not isinstance(value, dict):
            return None
        hostname = self.field(fields_, path, "hostname", self.matcher(_fqdn), required=True)
        address = self.field(fields_, path, "address", self.matcher(_address))
        if hostname is None:
            return None
        return Server(hostname=hostname, address=address)

    def stack(
        self, raw: Mapping[str, object], level: str | None, os_release: str | None
    ) -> Stack | None:
        value = self.get(raw, "stack", "", required=False)
        if value is _MISSING:
            if level == "custom":
                self.add("stack", "required when managed_level is 'custom'")
            return Stack()
        if level is not None and level != "custom":
            self.add("stack", f"not allowed for managed_level '{level}'")
            return None
        path = "stack"
        fields_ = self.section(value, path, _STACK_FIELDS)
        web = self.field(fields_, path, "web", lambda v, p: self.web(v, p, os_release))
        databases = self.field(fields_, path, "databases", self.lister(_database), default=_EMPTY)
        mail = self.field(fields_, path, "mail", self.boolean, default=False)
        ftp = self.field(fields_, path, "ftp", self.boolean, default=False)
        webmail = self.field(fields_, path, "webmail", self.boolean, default=False)
        antispam = self.field(fields_, path, "antispam", self.boolean, default=False)
        profile = self.field(
            fields_, path, "mail_profile", self.chooser(MAIL_PROFILES), default="mailbox"
        )
        if webmail and mail is False:
            self.add("stack.webmail", "true needs stack.mail: true (webmail reads the mailboxes)")
        if antispam and mail is False:
            self.add("stack.antispam", "true needs stack.mail: true (it filters the mail)")
        if "mail_profile" in fields_ and mail is False:
            self.add("stack.mail_profile", f"'{profile}' needs stack.mail: true")
        # what the roles would refuse on the order's release, refused here (one table:
        # plugins/module_utils/releases.py)
        installs = {"stack.web": "web", "stack.mail": "mail", "stack.ftp": "ftp"}
        installs["stack.webmail"] = "webmail"
        chosen = {"stack.web": web, "stack.mail": mail, "stack.ftp": ftp, "stack.webmail": webmail}
        for field_path, message in releases.order_problems(
            os_release or "", {f: role for f, role in installs.items() if chosen[f]}
        ):
            self.add(field_path, message)
        if (
            databases is None
            or mail is None
            or ftp is None
            or webmail is None
            or antispam is None
            or profile is None
        ):
            return None
        return Stack(
            web=web,
            databases=cast(tuple[Database, ...], databases),
            mail=mail,
            ftp=ftp,
            webmail=webmail,
            antispam=antispam,
            mail_profile=profile,
        )

    def web(self, value: object, path: str, os_release: str | None) -> WebStack | None:
        fields_ = self.section(value, path, _WEB_FIELDS)
        if not isinstance(value, dict):
            return None
        php = self.field(fields_, path, "php_version", self.text, required=True)
        if php is None:
            return None
        provided = PHP_VERSIONS.get(os_release or "", ())
        if os_release is not None and php not in provided:
            self.add(
                f"{path}.php_version",
                f"{_show(php)} is not provided by {os_release} (it provides {', '.join(provided)})",
            )
            return None
        return WebStack(php_version=php)

    def plesk(self, raw: Mapping[str, object], level: str | None) -> Plesk | None:
        value = self.get(raw, "plesk", "", required=False)
        if value is _MISSING:
            if level == "plesk":
                self.add("plesk", "required when managed_level is 'plesk'")
            return None
        if level is not None and level != "plesk":
            self.add("plesk", f"not allowed for managed_level '{level}'")
            return None
        fields_ = self.section(value, "plesk", _PLESK_FIELDS)
        name = self.field(fields_, "plesk", "license_vault_var", self.vault_var, required=True)
        return None if name is None else Plesk(license_vault_var=name)

    def vault_var(self, value: object, path: str) -> str | None:
        """The name of a vault variable; a value that looks like the secret itself is refused."""
        if isinstance(value, str) and not _VAR_NAME.fullmatch(value) and _looks_like_key(value):
            self.add(
                path,
                f"the value (not shown) looks like a license key: {_VAULT_HINT}; "
                "give the name of the vault variable here (e.g. vault_plesk_license)",
            )
            return None
        return self.matching(value, path, _var_name)

    def backups(self, raw: Mapping[str, object], service: str | None) -> Backups | None:
        days_default = (
            SHARED_HOSTING_RETENTION_DAYS if service == "shared_hosting" else DEFAULT_RETENTION_DAYS
        )
        value = self.get(raw, "backups", "", required=False)
        if value is _MISSING:
            return Backups(retention_days=days_default)
        path = "backups"
        fields_ = self.section(value, path, _BACKUP_FIELDS)
        enabled = self.field(fields_, path, "enabled", self.boolean, default=True)
        time = self.field(fields_, path, "time", self.backup_time, default=DEFAULT_BACKUP_TIME)
        days = self.field(fields_, path, "retention_days", self.retention, default=days_default)
        paths = self.field(fields_, path, "paths", self.lister(_abs_path), default=_EMPTY)
        if enabled is None or time is None or days is None or paths is None:
            return None
        return Backups(enabled=enabled, time=time, retention_days=days, paths=paths)

    def retention(self, value: object, path: str) -> int | None:
        return self.integer(value, path, low=1, high=MAX_RETENTION_DAYS)

    def backup_time(self, value: object, path: str) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            # YAML 1.1 reads an unquoted 22:00 as the base-60 integer 1320.
            clock = "{:02d}:{:02d}".format(*divmod(value, 60))
            self.add(
                path,
                f'expected text "HH:MM"; got integer {value}, which is how YAML reads an '
                f'unquoted {clock}: quote it ("{clock}")',
            )
            return None
        return self.matching(value, path, _clock_time)

    def monitoring(self, value: object, path: str) -> Monitoring | None:
        fields_ = self.section(value, path, _MONITORING_FIELDS)
        http = self.field(fields_, path, "http_checks", self.lister(_http_url), default=_EMPTY)
        tcp = self.field(fields_, path, "tcp_checks", self.lister(_tcp_target), default=_EMPTY)
        tls = self.field(fields_, path, "tls_checks", self.lister(_tcp_target), default=_EMPTY)
        if http is None or tcp is None or tls is None:
            return None
        return Monitoring(http_checks=http, tcp_checks=tcp, tls_checks=tls)

    def firewall(self, raw: Mapping[str, object], level: str | None) -> bool | None:
        """On request at levels none and basic; part of levels supervision and custom."""
        wanted = self.field(raw, "", "firewall", self.boolean)
        if wanted is False and level in FIREWALL_LEVELS:
            self.add(
                "firewall",
                f"false is not allowed for managed_level '{level}': the host firewall is part "
                "of the service at this level (remove the field)",
            )
            return None
        return wanted

    def sla(self, value: object, path: str) -> Sla | None:
        fields_ = self.section(value, path, _SLA_FIELDS)
        if not isinstance(value, dict):
            return None
        fee = self.field(fields_, path, "monthly_fee_eur", self.fee, required=True)
        gtr = self.field(fields_, path, "gtr_hours", self.hours, required=True)
        if fee is None or gtr is None:
            return None
        return Sla(monthly_fee_eur=fee, gtr_hours=gtr)

    def fee(self, value: object, path: str) -> float | None:
        return self.number(value, path, 0, strict=False, high=float(MAX_FEE_EUR))

    def hours(self, value: object, path: str) -> float | None:
        return self.number(value, path, 0, strict=True, high=float(MAX_GTR_HOURS))


def _unknown_field(key: str, allowed: Sequence[str]) -> str:
    if _SECRET_NAME.search(key):
        return f"unknown field, and {_VAULT_HINT}: the order only names vault variables"
    prefixed = [name for name in allowed if len(key) >= 3 and name.startswith(key)]
    close = prefixed or difflib.get_close_matches(key, allowed, n=1)
    maybe = f", did you mean '{close[0]}'?" if close else ""
    return f"unknown field{maybe} (allowed: {', '.join(allowed)})"


# -- Checks on single values: each returns the normalised text, or _Bad(reason) --------------------


@dataclass(frozen=True)
class _Bad:
    reason: str
    secret: bool = False  # the message must not show the value


_Check: TypeAlias = Callable[[str], "str | _Bad"]


def _order_id(value: str) -> str | _Bad:
    if ORDER_ID.fullmatch(value):
        return value
    return _Bad("is not an order number (capitals, digits and '-', 3 to 40, e.g. BDC-2027-0103)")


def _is_fqdn(name: str) -> bool:
    return is_domain_name(name)


def _fqdn(value: str) -> str | _Bad:
    if _is_fqdn(value):
        return value
    return _Bad(
        "is not a fully qualified host name (lowercase labels of a-z, 0-9 and '-', "
        "at least two, e.g. web01.example.fr)"
    )


def _address(value: str) -> str | _Bad:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return _Bad("is not an IPv4 or IPv6 address")
    if address.is_unspecified or address.is_multicast:
        return _Bad("cannot be a server's address (unspecified or multicast)")
    if address.is_loopback or address.is_link_local:
        return _Bad("cannot be a server's address (loopback or link-local: not reachable from ops)")
    return str(address)


def _phone(value: str) -> str | _Bad:
    digits = sum(char.isdigit() for char in value)
    if _PHONE.fullmatch(value) and 6 <= digits <= 20:
        return value
    return _Bad("is not a phone number (6 to 20 digits; spaces . - ( ) and a leading + allowed)")


def _email(value: str) -> str | _Bad:
    if is_contact_address(value):
        return value
    return _Bad("is not an email address")


def _database(value: str) -> str | _Bad:
    if value in DATABASES:
        return value
    return _Bad(f"is not one of {', '.join(DATABASES)}")


def _var_name(value: str) -> str | _Bad:
    if _VAR_NAME.fullmatch(value):
        return value
    return _Bad("is not a variable name (lowercase letters, digits and '_')")


def _looks_like_key(value: str) -> bool:
    return (
        len(value) >= 16
        and not any(c.isspace() for c in value)
        and ("-" in value or any(c.isupper() for c in value))
    )


def _clock_time(value: str) -> str | _Bad:
    if _TIME.fullmatch(value):
        return value
    return _Bad('is not a time of day "HH:MM" (00:00 to 23:59)')


def _abs_path(value: str) -> str | _Bad:
    why = backup_path_problem(value)
    return _Bad(why) if why is not None else "/" + "/".join(_path_parts(value))


def _path_parts(value: str) -> list[str]:
    return [part for part in value.split("/") if part not in ("", ".")]


# What a file backup cannot hold: the whole server, and the kernel's and systemd's virtual
# and runtime filesystems (their files change under restic and mean nothing on restore).
UNBACKUPABLE_PATHS: Final[tuple[str, ...]] = ("/proc", "/sys", "/dev", "/run")


def backup_path_problem(value: str) -> str | None:
    """Why *value* cannot be a backup path, or None when it can.

    The one rule for ``backups.paths`` in an order and for the backup role's
    ``backup_paths`` (through the filter ``alteo.hostops.backup_path_problems``).
    """
    if not value.startswith("/"):
        return "is not an absolute path"
    parts = _path_parts(value)
    if ".." in parts:
        return "contains '..'; give the path itself"
    if not parts:
        return "is the whole server: list the directories to keep (e.g. /etc, /var/www)"
    path = "/" + "/".join(parts)
    for root in UNBACKUPABLE_PATHS:
        if path == root or path.startswith(root + "/"):
            return f"is under {root}, a virtual or runtime filesystem that backups do not hold"
    return None


def _host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _is_fqdn(host)
    return True


def _http_url(value: str) -> str | _Bad:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as err:
        return _Bad(f"is not a URL ({err})")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return _Bad("is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        return _Bad(f"carries credentials: {_VAULT_HINT}", secret=True)
    if any(char.isspace() for char in value) or not parts.hostname or not _host(parts.hostname):
        return _Bad("does not name a valid host")
    if port == 0:
        return _Bad("has port 0")
    return value


def _tcp_target(value: str) -> str | _Bad:
    host, sep, port = value.rpartition(":")
    if not sep or not _PORT.fullmatch(port) or not 1 <= int(port) <= 65535:
        return _Bad("is not HOST:PORT with a port 1..65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return _Bad("does not name a valid IPv6 address in [ ]")
        return value
    if ":" in host or not _host(host):
        return _Bad("does not name a valid host (an IPv6 address goes in [ ])")
    return value
