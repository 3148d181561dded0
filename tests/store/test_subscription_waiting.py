"""What a subscription's detail (API and portal) says will come on a later invoice: lines
left for the next invoice, on the subscription or on its account, and use billed in
arrears since a date."""

from __future__ import annotations

from datetime import UTC, datetime

from prorata.scenario.loader import parse_scenario
from prorata.services import subscriptions
from prorata.services.access import Principal
from prorata.services.subscriptions import ChangeInput
from tests.store.world import scenario_tenant

CATALOG = """\
currency: USD
timezone: UTC
policy:
  preset: stripe
  proration: {unit: day}
  cancel: {credit: account_credit, invoice: next_invoice}
catalog:
  products:
    - id: app
      plans:
        - {id: basic, tier: 1, period: monthly, price: "31.00"}
        - {id: pro, tier: 2, period: monthly, price: "62.00"}
        - {id: metered, tier: 3, period: monthly, price: "93.00", pay_in_advance: false}
accounts:
  - {id: acme, locale: en}
events: []
"""


def _day(day: int, month: int = 1) -> datetime:
    return datetime(2025, month, day, tzinfo=UTC)


def stripe_tenant(engine, slug: str = "waiting") -> tuple[Principal, dict[str, int]]:
    """A tenant under the Stripe preset (by day) with CATALOG's plans and account: the
    tenant acting as an API token, and the accounts' row ids."""
    with engine.begin() as connection:
        tenant, accounts = scenario_tenant(
            connection, parse_scenario(CATALOG), f"{slug}-{id(engine)}", slug
        )
    return Principal(tenant, kind="token"), accounts


def test_lines_left_for_the_next_invoice_and_use_in_arrears_are_shown(engine):
    robot, _ = stripe_tenant(engine)
    subscriptions.subscribe(
        engine, robot, subscription="s1", account="acme", plan="basic", at=_day(1)
    )
    fresh = subscriptions.get_subscription(engine, robot, "s1", at=_day(2))
    assert (fresh["pending_lines"], fresh["in_arrears_since"]) == ([], None)

    # Stripe's default: the upgrade's proration waits for the next invoice (16 of 31 days)
    subscriptions.checkout(engine, robot, [ChangeInput("s1", plan="pro")], at=_day(16))
    detail = subscriptions.get_subscription(engine, robot, "s1", at=_day(17))
    assert [(line["kind"], line["plan"], line["amount"]) for line in detail["pending_lines"]] == [
        ("proration_credit", "basic", "-16.00"),
        ("proration_charge", "pro", "32.00"),
    ]
    assert detail["pending_lines"][0]["start"] == "2025-01-16T00:00:00+00:00"
    # the renewal invoices them: nothing waits afterwards
    renewed = subscriptions.get_subscription(engine, robot, "s1", at=_day(2, month=2))
    assert renewed["pending_lines"] == []

    subscriptions.subscribe(
        engine, robot, subscription="s2", account="acme", plan="metered", at=_day(10)
    )
    metered = subscriptions.get_subscription(engine, robot, "s2", at=_day(20))
    assert metered["in_arrears_since"] == "2025-01-10T00:00:00+00:00"
    assert metered["pending_lines"] == []

    # an immediate cancellation leaves its credit on the account, for its next invoice
    subscriptions.subscribe(
        engine, robot, subscription="s3", account="acme", plan="basic", at=_day(10)
    )
    subscriptions.cancel(engine, robot, "s3", at=_day(20), timing="immediate")
    cancelled = subscriptions.get_subscription(engine, robot, "s3", at=_day(21))
    assert cancelled["status"] == "cancelled"
    assert [(line["kind"], line["amount"]) for line in cancelled["pending_lines"]] == [
        ("proration_credit", "-21.00")
    ]
