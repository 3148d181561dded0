"""Invoices, credit notes, payments with their receipts, and account credit (seed 003's
payment history and receipts; seed 004's account balance).

Everything here is read-only and filtered to the accounts the caller may see; another
account's document reads exactly like one that does not exist. Amounts are strings with
the currency's digits (from the minor units stored).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, and_, select, true

from prorata.adapters import schema as t
from prorata.core.documents import Document, Invoice
from prorata.core.money import Money
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.errors import InvalidRequest, NotFound, ensure_id
from prorata.services.subscriptions import visible_account_ids
from prorata.services.transaction import Work, run
from prorata.services.views import document_view

DOCUMENT_TYPES = ("invoice", "credit_note")


def _scope(work: Work, account: str | None):
    if account is not None:
        access.ensure_visible(work.principal, account, "account", account)
        if account not in work.billing.ctx.accounts:
            raise NotFound(kind="account", id=account)
    return visible_account_ids(work, account)


def list_documents(
    engine: Engine,
    principal: Principal,
    *,
    at: datetime,
    type: str | None = None,
    account: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict:
    if type is not None and type not in DOCUMENT_TYPES:
        raise InvalidRequest(
            "invalid_value", field="type", value=type, why="invoice or credit_note"
        )

    def read(work: Work) -> dict:
        ids = _scope(work, account)
        where = true()
        if ids is not None:
            where = and_(where, t.documents.c.account_id.in_(ids))
        if type is not None:
            where = and_(where, t.documents.c.type == type)
        if status is not None:
            where = and_(where, t.documents.c.status == status)
        docs = work.book.documents(where, limit=limit, offset=offset)
        return {"items": [_view(work, d) for d in docs], "limit": limit, "offset": offset}

    body = {"type": type, "account": account, "status": status, "limit": limit, "offset": offset}
    return run(engine, principal, "document.list", body, read, at=at, write=False)


def get_document(
    engine: Engine, principal: Principal, number: str, *, at: datetime, type: str | None = None
) -> dict:
    kind = type or "document"

    def read(work: Work) -> dict:
        where = t.documents.c.number == number
        if type is not None:
            where = and_(where, t.documents.c.type == type)
        found = work.book.documents(where)
        if not found:
            raise NotFound(kind=kind, id=number)
        doc = found[0]
        access.ensure_visible(work.principal, doc.account, kind, number)
        view = _view(work, doc)
        view["payments"] = _payments(work, t.payments.c.document_id.in_(_doc_id(work, number)))
        return view

    return run(engine, principal, "document.read", {"number": number}, read, at=at, write=False)


def _view(work: Work, doc: Document) -> dict:
    """``doc``'s view; an invoice's also says what it still asks for (``outstanding``:
    its amount due less its charges and the credit notes allocated to it, such as a
    Chargebee adjustment; 0 once paid or void). The issued ``amount_due`` is unchanged."""
    view = document_view(doc)
    if isinstance(doc, Invoice):
        left = work.billing.outstanding(doc) if doc.status == "open" else Money.zero(doc.currency)
        view["outstanding"] = str(left)
    return view


def _doc_id(work: Work, number: str):
    return select(t.documents.c.id).where(
        t.documents.c.tenant_id == work.principal.tenant_id, t.documents.c.number == number
    )


def _payments(work: Work, where, *, limit: int | None = None, offset: int = 0) -> list[dict]:
    rows = work.connection.execute(
        select(
            t.payments,
            t.documents.c.number,
            t.accounts.c.key.label("account_key"),
        )
        .join(t.documents, t.documents.c.id == t.payments.c.document_id)
        .join(t.accounts, t.accounts.c.id == t.documents.c.account_id)
        .where(t.payments.c.tenant_id == work.principal.tenant_id, where)
        .order_by(t.payments.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [
        {
            "id": row.id,
            "kind": row.kind,  # charge | refund
            "status": row.status,  # succeeded | pending | why it failed
            # a receipt for each payment received; none for a failed attempt or a refund
            "receipt": f"RCT-{row.id:06d}" if _has_receipt(row) else None,
            "invoice": row.number if row.kind == "charge" else None,
            "credit_note": row.number if row.kind == "refund" else None,
            "account": row.account_key,
            "amount": str(Money.from_minor(row.amount_minor, row.currency)),
            "currency": row.currency,
            "method": row.method,
            "paid_at": row.paid_at.astimezone(work.at.tzinfo).isoformat(),
        }
        for row in rows
    ]


def _has_receipt(row) -> bool:
    return row.kind == "charge" and row.status == "succeeded"


RECEIPTS = and_(t.payments.c.kind == "charge", t.payments.c.status == "succeeded")


def list_payments(
    engine: Engine,
    principal: Principal,
    *,
    at: datetime,
    account: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict:
    """The payment history, oldest first; each payment has a receipt."""

    def read(work: Work) -> dict:
        ids = _scope(work, account)
        where = true() if ids is None else t.documents.c.account_id.in_(ids)
        items = _payments(work, where, limit=limit, offset=offset)
        return {"items": items, "limit": limit, "offset": offset}

    body = {"account": account, "limit": limit, "offset": offset}
    return run(engine, principal, "payment.list", body, read, at=at, write=False)


def get_receipt(engine: Engine, principal: Principal, payment_id: int, *, at: datetime) -> dict:
    """A payment's receipt: the payment and the invoice it settled."""

    ensure_id("payment", payment_id)

    def read(work: Work) -> dict:
        found = _payments(work, and_(t.payments.c.id == payment_id, RECEIPTS))
        if not found:
            raise NotFound(kind="payment", id=payment_id)
        payment = found[0]
        access.ensure_visible(work.principal, payment["account"], "payment", payment_id)
        invoice = work.book.invoice(payment["invoice"])
        return payment | {"document": document_view(invoice)}

    return run(engine, principal, "receipt.read", {"payment": payment_id}, read, at=at, write=False)


def get_credit(engine: Engine, principal: Principal, account: str, *, at: datetime) -> dict:
    """The account's credit: its balance per currency and every ledger entry, oldest first.
    The balance is the sum of the entries (the ledger is append-only)."""

    def read(work: Work) -> dict:
        _scope(work, account)
        rows = work.connection.execute(
            select(t.ledger_entries)
            .where(t.ledger_entries.c.account_id == work.book.accounts.id_of(account))
            .order_by(t.ledger_entries.c.id)
        ).all()
        balances: dict[str, int] = {}
        for row in rows:
            balances[row.currency] = balances.get(row.currency, 0) + row.amount_minor
        currency = work.book.config.currency
        balances.setdefault(currency, 0)
        return {
            "account": account,
            "balances": {c: str(Money.from_minor(u, c)) for c, u in sorted(balances.items())},
            "entries": [
                {
                    "at": row.at.astimezone(work.at.tzinfo).isoformat(),
                    "amount": str(Money.from_minor(row.amount_minor, row.currency)),
                    "currency": row.currency,
                    "document": row.document_number,
                    "reason": row.reason,
                }
                for row in rows
            ],
        }

    return run(engine, principal, "credit.read", {"account": account}, read, at=at, write=False)
