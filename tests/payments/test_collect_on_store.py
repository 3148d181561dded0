"""``prorata collect`` on the store: gateway calls outside transactions, the same payments
as the simulator, exactly once across crashes and concurrent collectors, and the outbox
events that notify the customer at each dunning step."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.adapters.gateways import Result, SandboxGateway
from prorata.scenario.loader import parse_scenario
from prorata.scenario.on_store import simulate_on_store
from prorata.scenario.output import to_data
from prorata.scenario.simulator import simulate
from prorata.services import bill_run, collection_run

SCENARIO = """\
name: dunning on the store
currency: EUR
timezone: Europe/Paris
policy: {preset: chetspms, dunning: {retry_days: [2, 4], final: suspend}}
catalog:
  products:
    - id: pms
      plans:
        - {id: m, tier: 1, period: monthly, price: "49.00", per_unit: true}
accounts:
  - {id: good, locale: en, payment_method: {type: card, test: succeeds}}
  - {id: bad, locale: fr, payment_method: {type: card, test: succeeds}}
events:
  - at: 2024-01-05
    subscribe: {id: g1, account: good, plan: m, quantity: 2}
  - at: 2024-01-05
    subscribe: {id: b1, account: bad, plan: m}
  - at: 2024-01-20
    payment_method: {account: bad, type: card, test: declined}
run_until: 2024-03-10
"""


def _scenario(run_until: bool = True):
    scenario = parse_scenario(SCENARIO, "dunning.yaml")
    return scenario if run_until else replace(scenario, run_until=None)


def _next_instant(engine, until):
    """The earliest renewal or collection attempt due by ``until``."""
    with engine.connect() as connection:
        renewal = connection.execute(select(func.min(t.subscriptions.c.due_at))).scalar()
        attempt = connection.execute(select(func.min(t.collections.c.next_attempt_at))).scalar()
    due = [d for d in (renewal, attempt) if d is not None and d <= until]
    return min(due) if due else None


def _drive(engine, gateway, until):
    """Bill runs and collections at each instant something falls due, as cron would."""
    while (now := _next_instant(engine, until)) is not None:
        bill_run.run_until_done(engine, now, run_id=bill_run.new_run_id())
        collection_run.collect_due(engine, gateway, now)


def _payments(data):
    return [(p["kind"], p["date"], p["document"], p["amount"], p["status"]) for p in data]


def test_collect_gives_the_simulators_payments_and_documents(engine):
    scenario = _scenario()
    memory = to_data(scenario, simulate(scenario))
    store = _scenario(run_until=False)
    simulate_on_store(store, engine, slug="dunning")  # the subscriptions, nothing renewed yet
    _drive(engine, SandboxGateway(), scenario.run_until)
    with engine.connect() as connection:
        tenant_id = connection.execute(
            select(t.tenants.c.id).where(t.tenants.c.slug == "dunning")
        ).scalar_one()
    from prorata.adapters.store import StoreBook, load_config

    with engine.connect() as connection:
        book = StoreBook(connection, load_config(connection, tenant_id)).snapshot()
    stored = to_data(scenario, book)
    assert _payments(stored["payments"]) == _payments(memory["payments"])
    assert stored["documents"] == memory["documents"]
    assert stored["subscriptions"]["b1"]["status"] == "suspended"
    assert stored["subscriptions"]["g1"]["status"] == "active"
    # the declined account: renewal 02-05 fails, retries at 02-07 and 02-09, then suspension
    bad = [p for p in memory["payments"] if p["account"] == "bad"]
    assert [(p["date"], p["status"]) for p in bad][:5] == [
        ("2024-01-05", "succeeded"),
        ("2024-02-05", "declined"),
        ("2024-02-07", "declined"),
        ("2024-02-09", "declined"),
        ("2024-03-05", "declined"),
    ]


def test_each_dunning_step_is_published_for_the_customer(engine):
    simulate_on_store(_scenario(run_until=False), engine, slug="dunning")
    _drive(engine, SandboxGateway(), _scenario().run_until)
    with engine.connect() as connection:
        events = connection.execute(
            select(t.outbox.c.topic, t.outbox.c.payload).order_by(t.outbox.c.id)
        ).all()
    topics = [e.topic for e in events]
    assert "payment.failed" in topics and "payment.succeeded" in topics
    changes = [
        (e.topic, json.loads(e.payload)["subscription"])
        for e in events
        if e.topic.startswith("subscription.") and e.topic != "subscription.renewed"
    ]
    # past due at the first failure, suspended when the last retry fails (per invoice)
    assert changes[:2] == [("subscription.past_due", "b1"), ("subscription.suspended", "b1")]
    failed = [json.loads(e.payload) for e in events if e.topic == "payment.failed"]
    assert failed[0]["attempt"] == 1 and failed[0]["next_attempt_at"] is not None
    assert failed[2]["attempt"] == 3 and failed[2]["next_attempt_at"] is None


def test_a_collector_killed_after_the_gateway_call_charges_once(engine):
    simulate_on_store(_scenario(run_until=False), engine, slug="dunning")
    # a collection of the good account, claimed, charged, then the process "dies"
    with engine.begin() as connection:
        connection.execute(t.collections.delete())  # keep only what we create below
    now = _scenario().events[0].at + timedelta(days=31)
    bill_run.run_until_done(engine, now, run_id="r1")
    claimed = collection_run.claim(engine, now)
    assert claimed is not None
    first = collection_run.call(SandboxGateway(), claimed)  # charged; nothing recorded
    # the lease has expired; another collector (a new process: a new gateway client) retries
    later = now + collection_run.LEASE + timedelta(seconds=1)
    again = collection_run.claim(engine, later)
    assert again is not None and again.key == claimed.key  # the same idempotency key
    second = collection_run.call(SandboxGateway(), again)
    assert second == first  # the gateway answers the same key the same way
    assert collection_run.record(engine, again, second) == first.outcome
    assert collection_run.record(engine, claimed, first) is None  # the late one is ignored
    with engine.connect() as connection:
        rows = connection.execute(
            select(t.payments.c.status, t.payments.c.reference)
            .join(t.documents, t.documents.c.id == t.payments.c.document_id)
            .where(t.documents.c.number == claimed.invoice)
        ).all()
    attempts = [r for r in rows if r.reference == first.reference or r.status != "succeeded"]
    assert len(attempts) == 1


def test_two_collectors_at_once_record_each_attempt_once(engine):
    simulate_on_store(_scenario(run_until=False), engine, slug="dunning")
    now = _scenario().events[0].at + timedelta(days=31)
    bill_run.run_until_done(engine, now, run_id="r1")
    gateway = SandboxGateway()
    lock = threading.Lock()

    class Shared:
        """One gateway shared by both collectors (a processor behind both)."""

        def authorize(self, *args):
            with lock:
                return gateway.authorize(*args)

        def capture(self, *args):
            with lock:
                return gateway.capture(*args)

        def refund(self, *args):
            with lock:
                return gateway.refund(*args)

    summaries = []
    threads = [
        threading.Thread(
            target=lambda: summaries.append(collection_run.collect_due(engine, Shared(), now))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorded = sum(s.succeeded + s.failed for s in summaries)
    with engine.connect() as connection:
        by_invoice = connection.execute(
            select(t.documents.c.number, t.payments.c.paid_at, func.count())
            .join(t.documents, t.documents.c.id == t.payments.c.document_id)
            .group_by(t.documents.c.number, t.payments.c.paid_at)
        ).all()
        collections = connection.execute(select(func.count()).select_from(t.collections)).scalar()
    assert all(n == 1 for *_, n in by_invoice), by_invoice
    # the two renewal invoices (the first ones were collected at signup), each attempted once
    assert recorded == 2 and collections == 4


def test_a_recorded_result_for_a_paid_invoice_closes_the_collection(engine):
    simulate_on_store(_scenario(run_until=False), engine, slug="dunning")
    now = _scenario().events[0].at + timedelta(days=31)
    bill_run.run_until_done(engine, now, run_id="r1")
    collection_run.collect_due(engine, SandboxGateway(), now)  # bad's renewal is declined
    claimed = collection_run.claim(engine, now + timedelta(days=2))  # its first retry
    assert claimed is not None
    from prorata.adapters.store import StoreBook, load_config
    from prorata.scenario.on_store import billing_on

    with engine.begin() as connection:
        book = StoreBook(connection, load_config(connection, claimed.tenant_id))
        billing_on(book).pay(claimed.invoice, claimed.due_at, method="bank_transfer")
    assert collection_run.record(engine, claimed, Result("declined", None)) is None
    assert collection_run.claim(engine, now + timedelta(days=10)) is None
