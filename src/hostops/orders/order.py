"""Order files (bons de commande): read one strictly, apply the defaults, report every problem.

An order is the YAML file that says what to provision for a customer (format version 1;
``examples/orders/`` has one per managed level). Reading it is two steps, kept apart:

* :func:`validate_order_text` and :func:`load_order` read the file safely (below) and check
  it against the schema (``order_rules``, shared with the collection), returning an
  :class:`Order` with the defaults applied, or raise :class:`~hostops.core.errors.UsageError`
  listing every problem, one ``FIELD: MESSAGE`` line each (``SOURCE: MESSAGE`` for problems
  with the file itself). Unknown fields are errors at every level, values are type-strict
  (``"8.4"`` is text, ``8.4`` is a number) and secrets are refused: they belong in Ansible
  Vault, the order only names the variable.
* :func:`check_available` says what the toolkit cannot provision yet (:data:`AVAILABLE`).
  :func:`accept_order` runs both, which is what ``hostops order validate`` and
  ``hostops order apply`` mean by a valid order: one we can provision today.

The rules themselves live once, in the collection's ``plugins/module_utils/order_rules.py``:
``playbooks/provision.yml`` applies the same ones to its extra variables (an AWX job) before
any host is touched. This module adds what only a file needs: the file is hostile until
proven otherwise: its size, depth and number of values are bounded before anything is built,
YAML aliases and tags other than the plain ones are refused, and every failure is a line for
a person, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from hostops.core.errors import UsageError
from hostops.core.yamlfile import Kind, parse_yaml, read_text
from hostops.module_utils.order_rules import (
    AVAILABLE,
    DATABASES,
    DEFAULT_BACKUP_TIME,
    DEFAULT_OS,
    DEFAULT_RETENTION_DAYS,
    FIREWALL_LEVELS,
    FORMAT_VERSION,
    MAIL_PROFILES,
    MANAGED_LEVELS,
    MAX_PROBLEMS,
    ORDER_ID,
    OS_RELEASES,
    PHP_VERSIONS,
    SERVICES,
    SHARED_HOSTING_RETENTION_DAYS,
    Backups,
    Contact,
    Customer,
    Database,
    ManagedLevel,
    Monitoring,
    Order,
    OsRelease,
    Plesk,
    Server,
    Service,
    Sla,
    Stack,
    WebStack,
    check_available,
    check_document,
)

__all__ = [
    "AVAILABLE",
    "DATABASES",
    "DEFAULT_BACKUP_TIME",
    "DEFAULT_OS",
    "DEFAULT_RETENTION_DAYS",
    "FIREWALL_LEVELS",
    "FORMAT_VERSION",
    "MAIL_PROFILES",
    "MANAGED_LEVELS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_ORDER_BYTES",
    "MAX_PROBLEMS",
    "ORDER_ID",
    "OS_RELEASES",
    "PHP_VERSIONS",
    "SERVICES",
    "SHARED_HOSTING_RETENTION_DAYS",
    "Backups",
    "Contact",
    "Customer",
    "Database",
    "ManagedLevel",
    "Monitoring",
    "Order",
    "OsRelease",
    "Plesk",
    "Server",
    "Service",
    "Sla",
    "Stack",
    "WebStack",
    "accept_order",
    "check_available",
    "load_order",
    "validate_order_text",
]

# Bounds on hostile input, checked before anything is built. A real order is a few KiB,
# four levels deep and a few hundred values; these keep the worst case well under a second.
MAX_ORDER_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 20
MAX_NODES: Final = 10_000

ORDER_FILE: Final = Kind(
    "the order", "an order", MAX_ORDER_BYTES, MAX_NODES, MAX_DEPTH, timestamps=False, empty_ok=True
)


# -- Public entry points --------------------------------------------------------------------


def load_order(path: str | Path) -> Order:
    """Read and validate the order file at *path*; raise UsageError listing every problem."""
    source = str(path)
    return validate_order_text(read_text(Path(path), ORDER_FILE, source), source)


def validate_order_text(text: str, source: str = "<order>") -> Order:
    """Validate an order given as YAML text; *source* names it in messages."""
    order, problems = check_document(parse_yaml(text, ORDER_FILE, source), source)
    if problems or order is None:
        raise UsageError(problems or [f"{source}: not a valid order"])
    return order


def accept_order(path: str | Path, available: Mapping[str, bool] | None = None) -> Order:
    """Load the order at *path* and require that the toolkit can provision all of it.

    Schema problems come first (the file is wrong); availability problems are only
    looked for on a schema-valid order. Both raise UsageError (exit status 2).
    """
    order = load_order(path)
    problems = check_available(order, available)
    if problems:
        raise UsageError(problems)
    return order
