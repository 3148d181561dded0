"""A small world on a store: two tenants, accounts and users in every role, one subscription.

Built through the same functions ``make run`` uses, so the services are tested as deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from prorata.adapters.tenants import add_account, add_membership, add_user, create_tenant
from prorata.scenario.loader import Scenario, parse_scenario
from prorata.services import subscriptions
from prorata.services.access import Principal, load_principal

CATALOG = """\
currency: USD
timezone: America/New_York
policy: gotoassist
catalog:
  products:
    - id: remote-support
      name: "GoToAssist Remote Support v5"
      plans:
        - {id: standard-monthly, tier: 1, period: monthly, price: "45.00", per_unit: true}
        - {id: premium-monthly, tier: 2, period: monthly, price: "65.00", per_unit: true}
        - {id: standard-annual, tier: 1, period: annual, price: "468.00", per_unit: true}
        - {id: premium-annual, tier: 2, period: annual, price: "708.00", per_unit: true}
accounts:
  - {id: corp, locale: en}
  - {id: other, locale: fr}
events: []
"""
ZONE = ZoneInfo("America/New_York")
START = datetime(2024, 1, 15, 9, 0, tzinfo=ZONE)
ROLES = ("owner", "billing_contact", "member")


@dataclass
class World:
    engine: Engine
    tenant: int
    other_tenant: int
    users: dict[str, int]
    principals: dict[str, Principal]

    def at(self, day: int, month: int = 2, hour: int = 10) -> datetime:
        return datetime(2024, month, day, hour, tzinfo=ZONE)


def scenario_tenant(
    connection: Connection, scenario: Scenario, slug: str, name: str = ""
) -> tuple[int, dict[str, int]]:
    """A tenant with ``scenario``'s currency, zone, catalog, policy and accounts: its row
    id and the accounts' row ids by key."""
    tenant = create_tenant(
        connection,
        slug=slug,
        name=name or slug,
        currency=scenario.currency,
        timezone=scenario.timezone.key,
        catalog=scenario.catalog,
        policy=scenario.policy,
    )
    accounts = {a.id: add_account(connection, tenant, a) for a in scenario.accounts.values()}
    return tenant, accounts


def build(engine: Engine, subscription: str = "s1", quantity: int = 2) -> World:
    scenario = parse_scenario(CATALOG)
    users: dict[str, int] = {}
    with engine.begin() as connection:
        tenants = []
        for slug in ("acme", "rival"):
            tenants.append(
                scenario_tenant(connection, scenario, f"{slug}-{id(engine)}-{subscription}", slug)
            )
        (tenant, accounts), (other_tenant, rival_accounts) = tenants
        for role in ROLES:
            users[role] = add_user(connection, tenant, f"{role}@corp.example")
            add_membership(connection, users[role], accounts["corp"], role)
        users["stranger"] = add_user(connection, tenant, "owner@other.example")
        add_membership(connection, users["stranger"], accounts["other"], "owner")
        users["support"] = add_user(connection, tenant, "help@acme.example", staff_role="support")
        users["account_manager"] = add_user(
            connection, tenant, "am@acme.example", staff_role="account_manager"
        )
        users["rival"] = add_user(connection, other_tenant, "owner@corp.example")
        add_membership(connection, users["rival"], rival_accounts["corp"], "owner")
        principals = {
            name: load_principal(connection, other_tenant if name == "rival" else tenant, user_id)
            for name, user_id in users.items()
        }
    principals["token"] = Principal(tenant, kind="token")
    world = World(engine, tenant, other_tenant, users, principals)
    subscriptions.subscribe(
        engine,
        principals["token"],
        subscription=subscription,
        account="corp",
        plan="standard-monthly",
        quantity=quantity,
        billing_day=15,
        at=START,
    )
    return world
