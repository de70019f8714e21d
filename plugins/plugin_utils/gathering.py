# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether alteo.hostops.assert_each gathers facts before its checks: asked by the action
itself, and by the strategy, which runs without a worker only the checks that read no
host (one judgement for both)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GATHER_UNLESS = ["distribution_major_version"]


def gathers(args: Mapping[str, Any], facts: Any) -> bool:
    """Whether checks with these arguments gather: gather_subset given, and one of
    gather_unless (default GATHER_UNLESS) not among FACTS (the host's ansible_facts).
    ValueError when gather_unless is not a non-empty list of names."""
    if args.get("gather_subset") is None:
        return False
    wanted = args.get("gather_unless", GATHER_UNLESS)
    if not isinstance(wanted, list) or not wanted or not all(isinstance(n, str) for n in wanted):
        raise ValueError("gather_unless must be a non-empty list of names")
    known = facts if isinstance(facts, Mapping) else {}
    return not all(name in known for name in wanted)
