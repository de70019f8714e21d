"""The backup scenarios (the suite's longest), in a file of their own so that scripts/test
runs them on another worker than the other scenarios (test_molecule.py)."""

from __future__ import annotations

import pytest
from test_molecule import RUN_ELSEWHERE, SCENARIOS, run_scenario

pytestmark = pytest.mark.lab


def test_the_split_misses_no_scenario() -> None:
    assert set(RUN_ELSEWHERE) <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", RUN_ELSEWHERE)
def test_scenario(scenario: str, root_user: None) -> None:
    run_scenario(scenario)
