"""A month of incidents read as hostile input (a regular file of bounded size, plain YAML
without anchors, aliases or tags), and a month's result as the summary both SLA commands
print."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from hostops.core.errors import UsageError
from hostops.core.yamlfile import Kind, read_yaml
from hostops.module_utils.sla import (
    MonthInput,
    MonthResult,
    SlaInputError,
    read_month,
)

# A month of incidents is a few KiB; these bounds keep hostile files cheap to refuse.
MAX_FILE_BYTES: Final = 256 * 1024
MAX_NODES: Final = 50_000
MAX_DEPTH: Final = 10
# Unquoted timestamps stay datetimes: read_month accepts them, with an offset.
INCIDENTS_FILE: Final = Kind(
    "the incidents file", "a month of incidents", MAX_FILE_BYTES, MAX_NODES, MAX_DEPTH,
    timestamps=True,
)  # fmt: skip


def summary(result: MonthResult) -> dict[str, object]:
    """The ``--json`` object: exactly these keys, amounts as Decimal (to the cent)."""
    return {
        "availability_percent": result.availability_percent,
        "target_met": result.target_met,
        "unavailable_seconds": int(result.provider_time.total_seconds()),
        "availability_penalty_eur": result.availability_credit_eur,
        "gtr_penalty_eur": result.gtr_credit_eur,
        "total_credit_eur": result.total_credit_eur,
    }


def load_incidents(path: Path) -> MonthInput:
    """Read and check the incidents file; raise UsageError listing every problem."""
    source = str(path)
    data = read_yaml(path, INCIDENTS_FILE, source)
    try:
        return read_month(data)
    except SlaInputError as err:
        raise UsageError(err.problems) from err
