"""Run a scenario on the database: the same billing, one transaction per event.

The scenario becomes a fresh tenant (its catalog, policy and accounts), every event runs in
its own transaction through :class:`~prorata.adapters.store.StoreBook`, and the result is
read back from the database. Its JSON is byte-identical to the in-memory run's.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine

from prorata.adapters.database import make_engine, migrate
from prorata.adapters.gateways import SandboxGateway
from prorata.adapters.store import StoreBook, load_config
from prorata.adapters.tenants import add_account, create_tenant
from prorata.core.changes import Context
from prorata.scenario.loader import Scenario
from prorata.scenario.simulator import run_due, step
from prorata.services.billing import Billing
from prorata.services.book import Book, Rejection
from prorata.services.collection import Collector


def billing_on(book: StoreBook) -> Billing:
    config = book.config
    ctx = Context(config.catalog, config.policy, book.accounts)
    return Billing(ctx, book, config.policy.rounding)


def load_tenant(engine: Engine, scenario: Scenario, slug: str | None = None) -> int:
    """A new tenant with the scenario's catalog, policy and accounts; returns its id."""
    with engine.begin() as connection:
        tenant_id = create_tenant(
            connection,
            slug=slug or f"sim-{uuid.uuid4().hex[:16]}",
            name=scenario.name,
            currency=scenario.currency,
            timezone=scenario.timezone.key,
            catalog=scenario.catalog,
            policy=scenario.policy,
            policy_spec=scenario.policy_spec,
        )
        for account in scenario.accounts.values():
            add_account(connection, tenant_id, account)
    return tenant_id


def simulate_on_store(scenario: Scenario, engine: Engine, slug: str | None = None) -> Book:
    """Run ``scenario`` as a new tenant (``slug``, default a random one) of the database
    behind ``engine``."""
    tenant_id = load_tenant(engine, scenario, slug)
    rejected: list[Rejection] = []
    gateway = SandboxGateway()
    for event in scenario.events:
        with engine.begin() as connection:
            book = StoreBook(connection, load_config(connection, tenant_id))
            billing = billing_on(book)
            refusal = step(billing, Collector(billing, gateway), scenario, event)
        if refusal is not None:
            rejected.append(Rejection(event.index, refusal.code, refusal.message, event.at))
    with engine.begin() as connection:
        book = StoreBook(connection, load_config(connection, tenant_id))
        if scenario.run_until is not None:
            billing = billing_on(book)
            run_due(billing, Collector(billing, gateway), scenario.run_until)
        snapshot = book.snapshot()
    snapshot.rejected = rejected
    return snapshot


def simulate_url(scenario: Scenario, url: str) -> Book:
    """Migrate the database at ``url`` and run ``scenario`` on it."""
    engine = make_engine(url)
    try:
        migrate(engine)
        return simulate_on_store(scenario, engine)
    finally:
        engine.dispose()
