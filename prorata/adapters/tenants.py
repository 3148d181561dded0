"""Creating tenants, their catalog versions, accounts, users and memberships.

Invariants: a tenant always has at least one catalog version (the newest one is in force);
catalog versions are numbered 1, 2, … per tenant and never changed once written; a
membership ties a user to an account of the same tenant with one customer role.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select

from prorata.adapters import codec
from prorata.adapters import schema as t
from prorata.core.catalog import Catalog
from prorata.core.model import Account
from prorata.core.policy import Policy

CUSTOMER_ROLES = ("owner", "billing_contact", "member")
STAFF_ROLES = ("support", "account_manager")


def create_tenant(
    connection: Connection,
    *,
    slug: str,
    name: str,
    currency: str,
    timezone: str,
    catalog: Catalog,
    policy: Policy,
    policy_spec: Any = None,
    at: datetime | None = None,
) -> int:
    tenant_id = connection.execute(
        insert(t.tenants)
        .values(
            slug=slug,
            name=name,
            currency=currency,
            timezone=timezone,
            created_at=at or t.now_utc(),
        )
        .returning(t.tenants.c.id)
    ).scalar_one()
    publish_catalog(connection, tenant_id, catalog, policy, policy_spec, at)
    return tenant_id


def publish_catalog(
    connection: Connection,
    tenant_id: int,
    catalog: Catalog,
    policy: Policy,
    policy_spec: Any = None,
    at: datetime | None = None,
) -> int:
    """A new catalog version for the tenant; returns its number."""
    last = connection.execute(
        select(func.coalesce(func.max(t.catalog_versions.c.version), 0)).where(
            t.catalog_versions.c.tenant_id == tenant_id
        )
    ).scalar_one()
    connection.execute(
        insert(t.catalog_versions).values(
            tenant_id=tenant_id,
            version=last + 1,
            catalog=codec.encode(catalog),
            policy=codec.encode(policy),
            policy_spec=json.dumps(policy_spec, sort_keys=True, default=str),
            created_at=at or t.now_utc(),
        )
    )
    return last + 1


def add_account(connection: Connection, tenant_id: int, account: Account, name: str = "") -> int:
    return connection.execute(
        insert(t.accounts)
        .values(
            tenant_id=tenant_id,
            key=account.id,
            name=name or account.id,
            locale=account.locale,
            auto_pay=account.auto_pay,
            payment_method=account.payment_method,
            payment_token=account.payment_token,
            tax_rate=str(account.tax_rate),
            vat_id=account.vat_id,
            created_at=t.now_utc(),
        )
        .returning(t.accounts.c.id)
    ).scalar_one()


def add_user(
    connection: Connection,
    tenant_id: int,
    email: str,
    *,
    name: str = "",
    locale: str = "en",
    staff_role: str | None = None,
) -> int:
    if staff_role is not None and staff_role not in STAFF_ROLES:
        raise ValueError(f"staff_role {staff_role!r}: expected one of {', '.join(STAFF_ROLES)}")
    return connection.execute(
        insert(t.users)
        .values(
            tenant_id=tenant_id,
            email=email,
            name=name,
            locale=locale,
            staff_role=staff_role,
            created_at=t.now_utc(),
        )
        .returning(t.users.c.id)
    ).scalar_one()


def add_membership(connection: Connection, user_id: int, account_id: int, role: str) -> None:
    if role not in CUSTOMER_ROLES:
        raise ValueError(f"role {role!r}: expected one of {', '.join(CUSTOMER_ROLES)}")
    user_tenant = connection.execute(
        select(t.users.c.tenant_id).where(t.users.c.id == user_id)
    ).scalar_one()
    account_tenant = connection.execute(
        select(t.accounts.c.tenant_id).where(t.accounts.c.id == account_id)
    ).scalar_one()
    if user_tenant != account_tenant:
        raise ValueError("a user can only belong to accounts of their own tenant")
    connection.execute(
        insert(t.memberships).values(user_id=user_id, account_id=account_id, role=role)
    )
