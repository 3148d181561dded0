"""Shared test fixtures: where the scenarios live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_SCENARIOS = REPO.parent / "shared" / "scenarios"
OWN_SCENARIOS = REPO / "scenarios"


def shared_scenarios_present() -> bool:
    """The shared scenarios must exist in CI; elsewhere their absence skips their tests."""
    if SHARED_SCENARIOS.is_dir():
        return True
    if os.environ.get("CI") == "true":
        pytest.fail(f"{SHARED_SCENARIOS} is missing while CI=true", pytrace=False)
    return False
