"""Checkout throughput on the store: complete service checkouts per second, per database.

Each checkout is what the API will do for a customer: one transaction that loads and locks
the subscription, checks the version, asks the core for the quote, issues the invoice or
credit note with gapless numbers, moves the ledger, appends the terms, and writes the order,
audit row, outbox events and idempotency record. Subscriptions (``--subscriptions``, one
account each) take turns going up and down in seats, so both invoices and credits occur.

Runs one client (``--clients 1``, the default) or several threads at once. Prints one line
per database: ``database=<name> checkouts_per_s=<number> ...``.

    .venv/bin/python bench/checkout.py [--seconds 5] [--clients 1] [--postgres URL]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from prorata.adapters.database import database_url, make_engine, migrate
from prorata.adapters.tenants import add_account, create_tenant
from prorata.core.model import Account
from prorata.scenario.loader import parse_scenario
from prorata.services import subscriptions
from prorata.services.access import Principal
from prorata.services.subscriptions import ChangeInput

CATALOG = """
currency: EUR
timezone: Europe/Paris
policy: stripe
catalog:
  products:
    - id: app
      plans:
        - {id: basic-m, tier: 1, period: monthly, price: "29.00", per_unit: true}
        - {id: pro-m, tier: 2, period: monthly, price: "59.00", per_unit: true}
accounts: []
events: []
"""
ZONE = ZoneInfo("Europe/Paris")
START = datetime(2024, 3, 1, 8, tzinfo=ZONE)


def prepare(engine, count: int) -> Principal:
    scenario = parse_scenario(CATALOG)
    with engine.begin() as connection:
        tenant = create_tenant(
            connection,
            slug=f"bench-{uuid.uuid4().hex[:8]}",
            name="bench",
            currency="EUR",
            timezone="Europe/Paris",
            catalog=scenario.catalog,
            policy=scenario.policy,
        )
        for n in range(count):
            add_account(connection, tenant, Account(f"a{n}", locale="fr"))
    principal = Principal(tenant, kind="token")
    for n in range(count):
        subscriptions.subscribe(
            engine,
            principal,
            subscription=f"s{n}",
            account=f"a{n}",
            plan="basic-m",
            quantity=5,
            billing_day=1,
            at=START,
        )
    return principal


def drive(engine, principal, seconds: float, clients: int, count: int) -> tuple[int, float]:
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        mine = [n for n in range(count) if n % clients == index]  # no two clients share one
        quantity = dict.fromkeys(mine, 5)
        n = 0
        while time.perf_counter() < stop:
            sub = mine[n % len(mine)]
            quantity[sub] = 6 if quantity[sub] == 5 else 5
            subscriptions.checkout(
                engine,
                principal,
                [ChangeInput(f"s{sub}", quantity=quantity[sub])],
                at=START + timedelta(days=10, seconds=n),
                key=f"{index}-{n}",
            )
            n += 1
        done[index] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.perf_counter() - began


def measure(name: str, url: str, args) -> None:
    engine = make_engine(url)
    migrate(engine)
    principal = prepare(engine, args.subscriptions)
    count, spent = drive(engine, principal, args.seconds, args.clients, args.subscriptions)
    engine.dispose()
    rate = count / spent
    print(
        f"database={name} clients={args.clients} checkouts={count} "
        f"seconds={spent:.1f} checkouts_per_s={rate:.0f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure("sqlite", f"sqlite:///{Path(folder) / 'bench.db'}", args)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(database_url(args.postgres), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        measure("postgresql", f"{args.postgres}?options=-csearch_path%3D{schema}", args)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
