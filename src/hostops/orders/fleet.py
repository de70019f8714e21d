"""What the state directory records about orders: for ``hostops order list|show`` and
``hostops fleet``.

Per order, ``orders/ORDER/`` holds ``order.json`` (the accepted order, as given to the
playbooks, written by each apply), ``delivery-note.json`` and ``.md`` (after the first
successful apply) and ``runs/STAMP/`` (one per apply or check, with ``run.json``: mode,
status, changes per host, start and end). Nothing here talks to a host.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostops.core.errors import UsageError
from hostops.core.settings import state_dir
from hostops.orders.order import ORDER_ID


@dataclass
class RunRecord:
    stamp: str
    mode: str  # apply | check | unknown (a run from before run.json was written)
    status: str  # successful | failed | unknown
    changed: int | None
    started_at: str | None
    finished_at: str | None
    path: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OrderRecord:
    order: str
    customer: str
    service: str
    managed_level: str
    servers: list[dict[str, Any]]
    delivered_at: str | None
    last_applied_at: str | None
    delivery_note: str | None
    runs: list[RunRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["runs"] = [run.as_dict() for run in self.runs]
        return data

    @property
    def last_run(self) -> RunRecord | None:
        return self.runs[-1] if self.runs else None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _run(path: Path) -> RunRecord:
    data = _json(path / "run.json")
    if data:
        return RunRecord(
            stamp=path.name,
            mode=str(data.get("mode", "unknown")),
            status=str(data.get("status", "unknown")),
            changed=data.get("changed"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            path=str(path),
        )
    # an older run, or one that died before it finished: what ansible-runner left
    status_file = path / "runner" / "artifacts" / "run" / "status"
    status = status_file.read_text().strip() if status_file.exists() else "unknown"
    return RunRecord(path.name, "unknown", status, None, None, None, str(path))


def _record(folder: Path) -> OrderRecord:
    order = _json(folder / "order.json")
    note = _json(folder / "delivery-note.json")
    customer: Mapping[str, Any] = order.get("hostops_customer") or {}
    noted = {s.get("hostname"): s for s in note.get("servers", []) if isinstance(s, dict)}
    servers = []
    for server in order.get("hostops_servers") or note.get("servers") or []:
        name = server.get("hostname")
        facts = noted.get(name, {})
        servers.append(
            {
                "hostname": name,
                "address": facts.get("address") or server.get("address"),
                "os": facts.get("os") or order.get("hostops_os") or "",
            }
        )
    runs_dir = folder / "runs"
    runs = [_run(p) for p in sorted(runs_dir.iterdir())] if runs_dir.is_dir() else []
    md = folder / "delivery-note.md"
    return OrderRecord(
        order=str(order.get("hostops_order") or note.get("order") or folder.name),
        customer=str(customer.get("name") or note.get("customer") or ""),
        service=str(order.get("hostops_service") or note.get("service") or ""),
        managed_level=str(order.get("hostops_managed_level") or note.get("managed_level") or ""),
        servers=servers,
        delivered_at=note.get("delivered_at"),
        last_applied_at=note.get("last_applied_at"),
        delivery_note=str(md) if md.exists() else None,
        runs=runs,
    )


def orders() -> list[OrderRecord]:
    """Every order the state directory knows, by order number."""
    root = state_dir() / "orders"
    if not root.is_dir():
        return []
    return [_record(p) for p in sorted(root.iterdir()) if p.is_dir()]


def order(order_id: str) -> OrderRecord:
    """One order's record; UsageError (exit 2) when the number is malformed or unknown."""
    if not ORDER_ID.fullmatch(order_id):
        raise UsageError(f"ORDER: {order_id!r} is not an order number")
    folder = state_dir() / "orders" / order_id
    if not folder.is_dir():
        known = ", ".join(r.order for r in orders()) or "none yet"
        raise UsageError(f"ORDER: {order_id!r} is not a known order (known: {known})")
    return _record(folder)


def contacts() -> dict[str, str]:
    """Each delivered order's customer contact (order number -> email), from the order
    kept beside its runs."""
    found: dict[str, str] = {}
    for record in orders():
        if record.delivered_at is None:
            continue
        order = _json(state_dir() / "orders" / record.order / "order.json")
        customer = order.get("hostops_customer") or {}
        contact = customer.get("contact") if isinstance(customer, Mapping) else None
        email = contact.get("email") if isinstance(contact, Mapping) else None
        if email:
            found[record.order] = str(email)
    return found


def server_contacts(host: str) -> list[str]:
    """The contact of each order kept here whose servers include HOST."""
    found: list[str] = []
    root = state_dir() / "orders"
    for path in sorted(root.glob("*/order.json")) if root.is_dir() else []:
        order = _json(path)
        servers = order.get("hostops_servers")
        names = {str(s.get("hostname")) for s in servers or [] if isinstance(s, Mapping)}
        customer = order.get("hostops_customer") or {}
        contact = customer.get("contact") if isinstance(customer, Mapping) else None
        email = contact.get("email") if isinstance(contact, Mapping) else None
        if host in names and isinstance(email, str) and email not in found:
            found.append(email)
    return found


def by_customer() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The fleet: customer -> managed level -> servers (with their order)."""
    fleet: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for record in orders():
        if record.delivered_at is None:
            continue  # ordered, never delivered: not part of the fleet
        levels = fleet.setdefault(record.customer or "?", {})
        for server in record.servers:
            levels.setdefault(record.managed_level or "?", []).append(
                {**server, "order": record.order}
            )
    return fleet


def write_order(folder: Path, order_vars: Mapping[str, Any]) -> None:
    """Keep the order as accepted (the playbooks' extra variables) beside its runs."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "order.json"
    path.write_text(json.dumps(order_vars, indent=2, ensure_ascii=False, default=str) + "\n")


def write_run(run_dir: Path, record: Mapping[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (run_dir / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
