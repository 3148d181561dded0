"""What the portal and the back office need beyond the API's services: signing in with a
password, the audit trail of a subscription, a credit note issued by hand, the account's
billing details (payment method, VAT number) and the people of an account.

Each call runs in one transaction (:func:`prorata.services.transaction.run`) and is audited
with :func:`prorata.services.recording.audit_action`, like every other service.

Invariants:
- only hashes of passwords are stored (scrypt, a salt per user); a wrong e-mail and a wrong
  password are refused alike, so a login form does not tell which e-mails exist;
- the audit trail and manual credit notes are for the seller's staff (support, account
  managers) and tokens only; customers get ``forbidden``;
- a manual credit note goes through the core's :func:`issue_credit_note` and the ledger like
  the credit notes of changes: numbered in the gapless ``CN`` series, credited to the
  account's balance, announced in the outbox (``credit_note.issued``);
- billing details are changed by the account's owner or billing contact, or by staff on
  the account's behalf (audited so).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, Engine, select, update

from prorata.adapters import journal
from prorata.adapters import schema as t
from prorata.adapters.store import upsert
from prorata.core.documents import Line, issue_credit_note
from prorata.core.money import Money
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import InvalidRequest, NotFound, Unauthenticated
from prorata.services.recording import audit_action, load
from prorata.services.transaction import Work, run
from prorata.services.views import document_view

PAYMENT_METHODS = ("card", "paypal", "sepa_debit", "bank_transfer")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


# passwords --------------------------------------------------------------------------------


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found.hex(), digest)


# A hash to check wrong e-mails against, so they take as long as wrong passwords.
_DUMMY = hash_password("not a password", salt=b"0" * 16)


def set_password(connection: Connection, user_id: int, password: str, *, at: datetime) -> None:
    """Give ``user_id`` a portal password (set-up and administration; in the caller's
    transaction)."""
    if len(password) < 8:
        raise InvalidRequest("invalid_value", field="password", value="…", why="8 characters")
    digest = hash_password(password)
    upsert(
        connection,
        t.portal_passwords,
        {"user_id": user_id, "hash": digest, "updated_at": at},
        ["user_id"],
    )
    connection.execute(
        update(t.portal_passwords)
        .where(t.portal_passwords.c.user_id == user_id)
        .values(hash=digest, updated_at=at)
    )


def check_login(engine: Engine, email: str, password: str) -> list[tuple[int, int, str]]:
    """The (tenant, user, tenant name) of every user with this e-mail whose password
    matches; raises :class:`Unauthenticated` when there is none."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        rows = connection.execute(
            select(t.users.c.id, t.users.c.tenant_id, t.tenants.c.name, t.portal_passwords.c.hash)
            .join(t.portal_passwords, t.portal_passwords.c.user_id == t.users.c.id)
            .join(t.tenants, t.tenants.c.id == t.users.c.tenant_id)
            .where(t.users.c.email == email.strip().lower())
            .order_by(t.tenants.c.id)
        ).all()
    matches = [(r.tenant_id, r.id, r.name) for r in rows if password_matches(password, r.hash)]
    if not rows:
        password_matches(password, _DUMMY)
    if not matches:
        raise Unauthenticated("invalid_login", code="invalid_login")
    return matches


# the caller --------------------------------------------------------------------------------


def whoami(engine: Engine, principal: Principal, *, at: datetime) -> dict:
    """The signed-in user: e-mail, staff role, the accounts they belong to (with names and
    roles) and the tenant (name, currency, country)."""

    def read(work: Work) -> dict:
        user = None
        if work.principal.user_id is not None:
            user = work.connection.execute(
                select(t.users.c.email, t.users.c.name, t.users.c.locale).where(
                    t.users.c.id == work.principal.user_id
                )
            ).one()
        tenant = work.connection.execute(
            select(t.tenants).where(t.tenants.c.id == work.principal.tenant_id)
        ).one()
        names = dict(
            work.connection.execute(
                select(t.accounts.c.key, t.accounts.c.name).where(
                    t.accounts.c.tenant_id == work.principal.tenant_id,
                    t.accounts.c.key.in_(list(work.principal.memberships)),
                )
            ).all()
        )
        return {
            "user": work.principal.user_id,
            "email": user.email if user else None,
            "name": (user.name or user.email) if user else None,
            "locale": user.locale if user else None,
            "staff_role": work.principal.staff_role,
            "tenant": {
                "slug": tenant.slug,
                "name": tenant.legal_name or tenant.name,
                "currency": tenant.currency,
                "country": tenant.country,
            },
            "accounts": [
                {"id": key, "name": names.get(key, key), "role": role}
                for key, role in sorted(work.principal.memberships.items())
            ],
        }

    return run(engine, principal, "whoami", {}, read, at=at, write=False)


# the audit trail ---------------------------------------------------------------------------


def audit_trail(
    engine: Engine, principal: Principal, subscription: str, *, at: datetime, limit: int = 200
) -> dict:
    """Who did what to ``subscription`` and when (newest first): actor, role, on whose
    behalf, before and after, request id. Staff only."""

    def read(work: Work) -> dict:
        access.ensure_staff(work.principal, "audit")
        sub, _ = load(work, subscription)
        rows = work.connection.execute(
            select(
                t.audit_log,
                t.users.c.email.label("actor_email"),
                t.accounts.c.key.label("account_key"),
            )
            .outerjoin(t.users, t.users.c.id == t.audit_log.c.actor_user_id)
            .outerjoin(t.accounts, t.accounts.c.id == t.audit_log.c.on_behalf_of)
            .where(
                t.audit_log.c.tenant_id == work.principal.tenant_id,
                t.audit_log.c.subject == f"subscription:{sub.id}",
            )
            .order_by(t.audit_log.c.id.desc())
            .limit(limit)
        )
        zone = work.at.tzinfo
        return {
            "subscription": sub.id,
            "account": sub.account,
            "entries": [
                {
                    "at": row.at.astimezone(zone).isoformat(),
                    "actor": row.actor_email,
                    "role": row.actor_role,
                    "on_behalf_of": row.account_key,
                    "action": row.action,
                    "before": json.loads(row.before) if row.before else None,
                    "after": json.loads(row.after) if row.after else None,
                    "request_id": row.request_id,
                }
                for row in rows
            ],
        }

    body = {"subscription": subscription, "limit": limit}
    return run(engine, principal, "audit.read", body, read, at=at, write=False)


# a credit note by hand ---------------------------------------------------------------------


def _amount(value: str, currency: str) -> Money:
    try:
        amount = Money.of(Decimal(value.strip().replace(",", ".")), currency)
    except (InvalidOperation, ValueError, ArithmeticError):
        raise InvalidRequest(
            "invalid_value", field="amount", value=value, why="a positive amount"
        ) from None
    if not amount.is_positive:
        raise InvalidRequest("invalid_value", field="amount", value=value, why="a positive amount")
    return amount


def issue_manual_credit_note(
    engine: Engine,
    principal: Principal,
    subscription: str,
    *,
    amount: str,
    reason: str,
    at: datetime,
    refers_to: str | None = None,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """A credit note of ``amount`` (before tax; the account's tax rate applies) on
    ``subscription``, credited to its account's balance, which later invoices consume.
    Staff only; audited on the account's behalf."""
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InvalidRequest("invalid_value", field="reason", value=reason, why="1–500 characters")

    def apply(work: Work) -> dict:
        access.ensure_staff(work.principal, "credit_notes")
        sub, _ = load(work, subscription)
        money = _amount(amount, sub.currency)
        if refers_to:
            found = work.book.invoice(refers_to)
            if found is None or found.account != sub.account:
                raise NotFound(kind="invoice", id=refers_to)
        account = work.billing.ctx.accounts[sub.account]
        line = Line(
            kind="adjustment",
            description=reason,
            subscription=sub.id,
            plan=sub.plan,
            quantity=1,
            amount=money,
            unit_price=money.amount,
        )
        work.book.acting_user = work.principal.user_id
        work.book.credit(sub.account, sub.currency)  # lock the account's balance first
        note, entries = issue_credit_note(
            number=work.book.next_number("CN"),
            issued_at=work.at,
            account=account,
            currency=sub.currency,
            lines=[line],
            refers_to=refers_to or None,
            credited_to="account",
            rounding=work.billing.rounding,
        )
        work.book.record(note, entries)
        view = document_view(note)
        audit_action(
            work,
            "credit_note.issue",
            f"subscription:{sub.id}",
            None,
            {"number": note.number, "total": str(note.total), "reason": reason},
            account_id=work.book.accounts.id_of(sub.account),
        )
        journal.emit(
            work.connection,
            work.principal.tenant_id,
            "credit_note.issued",
            {"number": note.number, "account": note.account, "total": str(note.total)},
            work.at,
        )
        return view

    body = {
        "subscription": subscription,
        "amount": amount,
        "reason": reason,
        "refers_to": refers_to,
    }
    return run(
        engine, principal, "credit_note.issue", body, apply, at=at, key=key, request_id=request_id
    )


# billing details ---------------------------------------------------------------------------


def set_billing_details(
    engine: Engine,
    principal: Principal,
    account: str,
    *,
    at: datetime,
    payment_method: str | None = None,
    vat_id: str | None = None,
    key: str | None = None,
    request_id: str | None = None,
) -> dict:
    """Change the account's payment method and/or VAT number (``None``: keep it); asked at
    checkout when a change raises the price (seed 004)."""
    if payment_method is not None and payment_method not in PAYMENT_METHODS:
        raise InvalidRequest(
            "invalid_value",
            field="payment_method",
            value=payment_method,
            why=", ".join(PAYMENT_METHODS),
        )
    if vat_id is not None:
        vat_id = vat_id.replace(" ", "").upper()
        if vat_id and not (4 <= len(vat_id) <= 32 and vat_id[:2].isalpha() and vat_id.isalnum()):
            raise InvalidRequest(
                "invalid_value",
                field="vat_id",
                value=vat_id,
                why="a VAT number, e.g. FR40303265045",
            )

    def apply(work: Work) -> dict:
        access.actor_for_change(work.principal, account, "account", account)
        row = work.connection.execute(
            select(t.accounts).where(
                t.accounts.c.tenant_id == work.principal.tenant_id, t.accounts.c.key == account
            )
        ).one_or_none()
        if row is None:
            raise NotFound(kind="account", id=account)
        before = {"payment_method": row.payment_method, "vat_id": row.vat_id}
        after = dict(before)
        if payment_method is not None:
            after["payment_method"] = payment_method
        if vat_id is not None:
            after["vat_id"] = vat_id or None
        if after != before:
            work.connection.execute(
                update(t.accounts).where(t.accounts.c.id == row.id).values(**after)
            )
            audit_action(
                work,
                "account.billing_details",
                f"account:{account}",
                before,
                after,
                account_id=row.id,
                customer_role=work.principal.memberships.get(account),
            )
        return {"account": account} | after

    body = {"account": account, "payment_method": payment_method, "vat_id": vat_id}
    return run(
        engine,
        principal,
        "account.billing_details",
        body,
        apply,
        at=at,
        key=key,
        request_id=request_id,
    )
