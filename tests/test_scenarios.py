"""Every scenario with an ``expect:`` block, shared and our own, gives what it expects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prorata.scenario.expect import mismatches
from prorata.scenario.loader import load_scenario
from prorata.scenario.output import to_data
from prorata.scenario.simulator import simulate
from tests.conftest import OWN_SCENARIOS, SHARED_SCENARIOS


def _files() -> list[Path]:
    files = sorted(OWN_SCENARIOS.rglob("*.yaml"))
    if SHARED_SCENARIOS.is_dir():
        files = sorted(SHARED_SCENARIOS.rglob("*.yaml")) + files
    return files


def test_shared_scenarios_are_present_in_ci():
    if os.environ.get("CI") == "true":
        assert SHARED_SCENARIOS.is_dir(), f"{SHARED_SCENARIOS} is missing while CI=true"
        assert list(SHARED_SCENARIOS.rglob("*.yaml")), "no shared scenario found"
    elif not SHARED_SCENARIOS.is_dir():
        pytest.skip("../shared/scenarios is not checked out beside this repository")


@pytest.mark.parametrize("path", _files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_scenario(path: Path):
    scenario = load_scenario(path)
    assert scenario.expect, f"{path} has no expect: block"
    output = to_data(scenario, simulate(scenario))
    problems = mismatches(scenario.expect, output)
    assert not problems, "\n".join(problems)
