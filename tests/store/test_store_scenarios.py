"""Every scenario gives byte-identical JSON in memory, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prorata.entrypoints.cli import app
from prorata.scenario.loader import load_scenario
from prorata.scenario.on_store import simulate_on_store
from prorata.scenario.output import to_json
from prorata.scenario.simulator import simulate
from tests.conftest import OWN_SCENARIOS, SHARED_SCENARIOS, shared_scenarios_present

runner = CliRunner()


def _files():
    files = sorted(OWN_SCENARIOS.rglob("*.yaml"))
    if shared_scenarios_present():
        files = sorted(SHARED_SCENARIOS.rglob("*.yaml")) + files
    return files


def test_every_scenario_is_identical_on_the_store(engine):
    files = _files()
    assert files
    different = []
    for path in files:
        scenario = load_scenario(path)
        if to_json(scenario, simulate(scenario)) != to_json(
            scenario, simulate_on_store(scenario, engine)
        ):
            different.append(path.name)
    assert not different, f"{engine.dialect.name} differs from memory for {different}"


def test_cli_store_option_is_byte_identical(db_url):
    path = str(_files()[0])
    memory = runner.invoke(app, ["simulate", path, "--json"])
    stored = runner.invoke(app, ["simulate", path, "--json", "--store", db_url])
    assert memory.exit_code == 0 and stored.exit_code == 0, stored.output
    assert stored.stdout == memory.stdout
    assert json.loads(stored.stdout)["documents"]
