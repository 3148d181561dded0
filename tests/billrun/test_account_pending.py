"""A bill run renews the account of a subscription cancelled with lines left waiting on it
(Stripe's prorate=true, invoice_now=false) as the simulator does: the first renewal of the
account takes the lines, once; the batch renews it alone (it writes the account's row) and
the other renewals of the batch as usual."""

from __future__ import annotations

from datetime import UTC, datetime

from prorata.adapters import batch_reading
from prorata.adapters.gateways import SandboxGateway
from prorata.adapters.store import StoreBook, load_config
from prorata.scenario.loader import parse_scenario
from prorata.scenario.on_store import billing_on, load_tenant
from prorata.scenario.output import to_data, to_json
from prorata.scenario.simulator import simulate, step
from prorata.services.bill_run import run_until_done
from prorata.services.collection import Collector

UNTIL = datetime(2021, 7, 10, tzinfo=UTC)
SCENARIO = """
currency: USD
timezone: UTC
policy: {preset: stripe, cancel: {timing: immediate, invoice: next_invoice, credit: account_credit}}
catalog:
  products:
    - id: app
      plans:
        - {id: basic, tier: 1, period: monthly, price: "10.00"}
        - {id: plus, tier: 2, period: monthly, price: "20.00"}
        - {id: small, tier: 1, period: monthly, price: "15.00"}
accounts:
  - {id: cus, locale: en, auto_pay: true}
  - {id: other, locale: en, auto_pay: true}
events:
  - {at: "2021-06-01T00:00:00Z", subscribe: {id: s1, account: cus, plan: basic}}
  - {at: "2021-06-05T00:00:00Z", subscribe: {id: s3, account: other, plan: small}}
  - {at: "2021-06-10T00:00:00Z", subscribe: {id: s2, account: cus, plan: small}}
  - {at: "2021-06-16T00:00:00Z", change: {subscription: s1, plan: plus}}
  - {at: "2021-06-21T00:00:00Z", cancel: {subscription: s1}}
run_until: 2021-07-10
"""


def test_a_bill_run_puts_the_waiting_lines_on_the_accounts_next_renewal_once(engine, monkeypatch):
    scenario = parse_scenario(SCENARIO)
    tenant = load_tenant(engine, scenario)
    for event in scenario.events:
        with engine.begin() as connection:
            billing = billing_on(StoreBook(connection, load_config(connection, tenant)))
            assert step(billing, Collector(billing, SandboxGateway()), scenario, event) is None
    slow = []
    original = batch_reading.SlowPath.__init__

    def noted(self, *args):
        slow.append(args)
        original(self, *args)

    monkeypatch.setattr(batch_reading.SlowPath, "__init__", noted)
    summary = run_until_done(engine, UNTIL, run_id="run", batch=10)
    monkeypatch.undo()
    assert not summary.failures
    assert (summary.renewals, summary.invoices) == (2, 2)
    # s2's renewal reads the lines waiting on cus under lock: renewed alone (on SQLite the
    # batch is computed once before the write lock and once under it)
    assert slow and all(reason == ("a statement the batch cannot keep: Select",) for reason in slow)
    with engine.begin() as connection:
        stored = StoreBook(connection, load_config(connection, tenant)).snapshot()
    assert to_json(scenario, stored) == to_json(scenario, simulate(scenario))
    output = to_data(scenario, stored)
    renewal = output["documents"][-1]
    assert (renewal["date"], renewal["total"]) == ("2021-07-10", "13.33")
    assert [line["amount"] for line in renewal["lines"]] == ["-5.00", "10.00", "-6.67", "15.00"]
    assert "pending" not in output["accounts"]["cus"]
    assert [(d["account"], d["total"]) for d in output["documents"][-2:]] == [
        ("other", "15.00"),
        ("cus", "13.33"),
    ]
