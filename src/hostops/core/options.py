"""Command-line options several ``hostops`` commands share."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_inventory_or_lab(
    parser: argparse.ArgumentParser,
    *,
    inventory_help: str,
    lab_help: str | None = None,
    required: bool = False,
) -> argparse._MutuallyExclusiveGroup:
    """``--inventory INV`` (repeatable) or, when *lab_help* is given, ``--lab``: one of the
    two. Returns the group, for a command that offers another way to name its hosts."""
    where = parser.add_mutually_exclusive_group(required=required)
    where.add_argument(
        "--inventory",
        type=Path,
        action="append",
        default=[],
        metavar="INV",
        help=inventory_help,
    )
    if lab_help is not None:
        where.add_argument("--lab", action="store_true", help=lab_help)
    return where
