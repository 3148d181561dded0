"""Lines waiting on an account are taken once, whatever the transactions saw before."""

from __future__ import annotations

from pathlib import Path

import pytest

from prorata.adapters.gateways import SandboxGateway
from prorata.adapters.store import StoreBook, load_config
from prorata.scenario.loader import load_scenario
from prorata.scenario.on_store import billing_on, load_tenant
from prorata.scenario.simulator import step
from prorata.services.collection import Collector

KEPT = (
    Path(__file__).resolve().parents[2]
    / "scenarios/presets/stripe-cancel-now-prorate-pending-kept-derived.yaml"
)


def test_two_transactions_that_both_saw_lines_waiting_take_them_once(engine):
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writing transactions from BEGIN")
    scenario = load_scenario(KEPT)
    tenant = load_tenant(engine, scenario)
    for event in scenario.events:
        with engine.begin() as connection:
            billing = billing_on(StoreBook(connection, load_config(connection, tenant)))
            step(billing, Collector(billing, SandboxGateway()), scenario, event)
    with engine.connect() as late, late.begin():
        stale = StoreBook(late, load_config(late, tenant))
        assert stale.accounts.holds_pending("cus")  # read before the other commits
        with engine.begin() as connection:
            first = StoreBook(connection, load_config(connection, tenant))
            taken = first.take_pending("cus", "USD")
        assert [str(line.amount) for line in taken] == ["-5.00", "10.00", "-6.67"]
        assert stale.take_pending("cus", "USD") == ()
    with engine.begin() as connection:
        assert StoreBook(connection, load_config(connection, tenant)).pending_of("cus") == ()
