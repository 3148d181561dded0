"""Accounts, their users and roles.

Rules: a customer lists the accounts they belong to, and sees each one's members; an
account's ``owner`` (and the seller's staff or an ``admin`` token) manages its members;
only staff and tokens create accounts and users. An account keeps at least one owner.
Removing a member releases the seats they held on the account's subscriptions.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import Engine, delete, func, select, update

from prorata.adapters import schema as t
from prorata.adapters.tenants import CUSTOMER_ROLES, add_account, add_membership, add_user
from prorata.core.model import Account
from prorata.core.wording import lang
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import Conflict, Forbidden, InvalidRequest, NotFound, ensure_id
from prorata.services.recording import audit_action
from prorata.services.transaction import Work, run


def _account_row(work: Work, key: str):
    access.ensure_visible(work.principal, key, "account", key)
    row = work.connection.execute(
        select(t.accounts).where(
            t.accounts.c.tenant_id == work.principal.tenant_id, t.accounts.c.key == key
        )
    ).one_or_none()
    if row is None:
        raise NotFound(kind="account", id=key)
    return row


def _members(work: Work, account_id: int) -> list[dict]:
    rows = work.connection.execute(
        select(t.users.c.id, t.users.c.email, t.users.c.name, t.memberships.c.role)
        .join(t.memberships, t.memberships.c.user_id == t.users.c.id)
        .where(t.memberships.c.account_id == account_id)
        .order_by(t.users.c.id)
    )
    return [{"user": r.id, "email": r.email, "name": r.name, "role": r.role} for r in rows]


def _balances(work: Work, account_id: int) -> dict[str, int]:
    rows = work.connection.execute(
        select(t.ledger_entries.c.currency, func.sum(t.ledger_entries.c.amount_minor))
        .where(t.ledger_entries.c.account_id == account_id)
        .group_by(t.ledger_entries.c.currency)
    )
    return {currency: int(units) for currency, units in rows}


def account_view(work: Work, row, *, members: bool = True) -> dict:
    view = {
        "id": row.key,
        "name": row.name,
        "locale": row.locale,
        "auto_pay": row.auto_pay,
        "payment_method": row.payment_method,
        "tax_rate": row.tax_rate,
        "vat_id": row.vat_id,
        "role": None if work.principal.is_staff else work.principal.memberships.get(row.key),
    }
    if members:
        view["members"] = _members(work, row.id)
    return view


def list_accounts(engine: Engine, principal: Principal, *, at: datetime, limit=50, offset=0):
    def read(work: Work) -> dict:
        query = select(t.accounts).where(t.accounts.c.tenant_id == work.principal.tenant_id)
        if not work.principal.is_staff:
            query = query.where(t.accounts.c.key.in_(list(work.principal.memberships)))
        rows = work.connection.execute(query.order_by(t.accounts.c.id).limit(limit).offset(offset))
        return {
            "items": [account_view(work, row, members=False) for row in rows],
            "limit": limit,
            "offset": offset,
        }

    body = {"limit": limit, "offset": offset}
    return run(engine, principal, "account.list", body, read, at=at, write=False)


def get_account(engine: Engine, principal: Principal, key: str, *, at: datetime) -> dict:
    def read(work: Work) -> dict:
        return account_view(work, _account_row(work, key))

    return run(engine, principal, "account.read", {"account": key}, read, at=at, write=False)


def _tax_rate(value: str) -> Decimal:
    try:
        rate = Decimal(value)
    except InvalidOperation:
        rate = Decimal(-1)
    if not rate.is_finite() or not (0 <= rate <= 100):
        raise InvalidRequest(
            "invalid_value", field="tax_rate", value=value, why="a percentage from 0 to 100"
        )
    return rate


def create_account(
    engine: Engine,
    principal: Principal,
    *,
    account: str,
    at: datetime,
    name: str = "",
    locale: str = "en",
    auto_pay: bool = True,
    payment_method: str | None = None,
    tax_rate: str = "0",
    vat_id: str | None = None,
    key: str | None = None,
) -> dict:
    spec = Account(account, locale, auto_pay, payment_method, _tax_rate(tax_rate), vat_id)
    if lang(locale) != locale.split("-")[0].split("_")[0]:
        raise InvalidRequest("invalid_value", field="locale", value=locale, why="fr or en")

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, "accounts")
        if account in work.billing.ctx.accounts:
            raise Conflict("duplicate_id", code="duplicate_id", kind="account", id=account)
        add_account(work.connection, work.principal.tenant_id, spec, name)
        _audit(work, "account.create", f"account:{account}", None, {"name": name or account})
        return account_view(work, _account_row(work, account))

    body = {
        "account": account,
        "name": name,
        "locale": locale,
        "auto_pay": auto_pay,
        "payment_method": payment_method,
        "tax_rate": tax_rate,
        "vat_id": vat_id,
    }
    return run(engine, principal, "account.create", body, apply, at=at, key=key)


def create_user(
    engine: Engine,
    principal: Principal,
    *,
    email: str,
    at: datetime,
    name: str = "",
    locale: str = "en",
    key: str | None = None,
) -> dict:
    if "@" not in email or len(email) > 254:
        raise InvalidRequest("invalid_value", field="email", value=email, why="an e-mail address")

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, "accounts")
        taken = work.connection.execute(
            select(t.users.c.id).where(
                t.users.c.tenant_id == work.principal.tenant_id, t.users.c.email == email
            )
        ).one_or_none()
        if taken is not None:
            raise Conflict("duplicate_id", code="duplicate_id", kind="user", id=email)
        user_id = add_user(
            work.connection, work.principal.tenant_id, email, name=name, locale=locale
        )
        _audit(work, "user.create", f"user:{user_id}", None, {"email": email})
        return {"id": user_id, "email": email, "name": name, "locale": locale}

    body = {"email": email, "name": name, "locale": locale}
    return run(engine, principal, "user.create", body, apply, at=at, key=key)


def _ensure_manager(work: Work, account: str) -> None:
    access.ensure_visible(work.principal, account, "account", account)
    role = None if work.principal.is_staff else work.principal.memberships[account]
    if role not in (None, "owner"):
        raise Forbidden("role_cannot_manage", role=role, account=account)


def _user_in_tenant(work: Work, user_id: int) -> None:
    found = work.connection.execute(
        select(t.users.c.id).where(
            t.users.c.id == user_id, t.users.c.tenant_id == work.principal.tenant_id
        )
    ).one_or_none()
    if found is None:
        raise NotFound(kind="user", id=user_id)


def _owners(work: Work, account_id: int) -> set[int]:
    return set(
        work.connection.execute(
            select(t.memberships.c.user_id).where(
                t.memberships.c.account_id == account_id, t.memberships.c.role == "owner"
            )
        ).scalars()
    )


def set_member(
    engine: Engine,
    principal: Principal,
    account: str,
    user_id: int,
    role: str,
    *,
    at: datetime,
    key: str | None = None,
) -> dict:
    """Give ``user_id`` the ``role`` on ``account`` (adding them if needed)."""
    if role not in CUSTOMER_ROLES:
        raise InvalidRequest("invalid_role", code="invalid_role", role=role)

    def apply(work: Work) -> dict:
        _ensure_manager(work, account)
        row = _account_row(work, account)
        ensure_id("user", user_id)
        _user_in_tenant(work, user_id)
        before = _members(work, row.id)
        if _owners(work, row.id) == {user_id} and role != "owner":
            raise Conflict("last_owner", code="last_owner", account=account, user=user_id)
        changed = work.connection.execute(
            update(t.memberships)
            .where(t.memberships.c.account_id == row.id, t.memberships.c.user_id == user_id)
            .values(role=role)
        ).rowcount
        if not changed:
            add_membership(work.connection, user_id, row.id, role)
        after = _members(work, row.id)
        _audit(work, "membership.set", f"account:{account}", before, after, row.id)
        return account_view(work, row)

    body = {"account": account, "user": user_id, "role": role}
    return run(engine, principal, "membership.set", body, apply, at=at, key=key)


def remove_member(
    engine: Engine,
    principal: Principal,
    account: str,
    user_id: int,
    *,
    at: datetime,
    key: str | None = None,
) -> dict:
    def apply(work: Work) -> dict:
        _ensure_manager(work, account)
        row = _account_row(work, account)
        ensure_id("user", user_id)
        before = _members(work, row.id)
        if user_id not in {m["user"] for m in before}:
            raise NotFound("not_a_member", user=user_id, account=account)
        if _owners(work, row.id) == {user_id}:
            raise Conflict("last_owner", code="last_owner", account=account, user=user_id)
        work.connection.execute(
            delete(t.memberships).where(
                t.memberships.c.account_id == row.id, t.memberships.c.user_id == user_id
            )
        )
        subs = select(t.subscriptions.c.id).where(t.subscriptions.c.account_id == row.id)
        work.connection.execute(
            update(t.seat_assignments)
            .where(
                t.seat_assignments.c.user_id == user_id,
                t.seat_assignments.c.released_at.is_(None),
                t.seat_assignments.c.subscription_id.in_(subs),
            )
            .values(released_at=work.at, released_by=work.principal.user_id)
        )
        after = _members(work, row.id)
        _audit(work, "membership.remove", f"account:{account}", before, after, row.id)
        return account_view(work, row)

    body = {"account": account, "user": user_id}
    return run(engine, principal, "membership.remove", body, apply, at=at, key=key)


def _audit(work: Work, action: str, subject: str, before, after, account_id=None) -> None:
    """Customers manage an account's members only as its owner (:func:`_ensure_manager`)."""
    audit_action(work, action, subject, before, after, account_id=account_id, customer_role="owner")
