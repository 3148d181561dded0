"""The simulator's JSON document, exactly as ../shared/spec/scenarios.md describes it.

Amounts are strings with the currency's digits; dates are local ISO dates, or ISO datetimes
when the policy prorates to the second; documents are in issue order. Extension: an account
with lines waiting for its next invoice lists them under ``pending``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from prorata.core.calendar import ratio_text
from prorata.core.documents import CreditNote, Invoice, Line
from prorata.core.payments import Payment
from prorata.core.subscription import Subscription
from prorata.scenario.loader import Scenario
from prorata.scenario.simulator import Book, credit_of


def _moment(value: datetime | None, precise: bool) -> str | None:
    if value is None:
        return None
    if precise:
        return value.isoformat()
    return value.date().isoformat()


def _line(line: Line, precise: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "kind": line.kind,
        "description": line.description,
        "subscription": line.subscription,
        "plan": line.plan,
        "quantity": line.quantity,
    }
    if line.start is not None:
        data["start"] = _moment(line.start, precise)
        data["end"] = _moment(line.end, precise)
    if line.fraction is not None and line.fraction != 1:
        data["fraction"] = ratio_text(line.fraction)
    data["amount"] = str(line.amount)
    if line.explanation:
        data["explanation"] = line.explanation
    return data


def _document(doc: Invoice | CreditNote, precise: bool) -> dict[str, Any]:
    common = {
        "number": doc.number,
        "date": doc.issued_at.date().isoformat(),
        "account": doc.account,
        "currency": doc.currency,
    }
    lines = [_line(line, precise) for line in doc.lines]
    if isinstance(doc, Invoice):
        return {
            "type": "invoice",
            **common,
            "lines": lines,
            "subtotal": str(doc.subtotal),
            "tax": str(doc.tax),
            "total": str(doc.total),
            "credit_applied": str(doc.credit_applied),
            "credit_added": str(doc.credit_added),
            "amount_due": str(doc.amount_due),
            "status": doc.status,
        }
    return {
        "type": "credit_note",
        **common,
        "refers_to": doc.refers_to,
        "lines": lines,
        "subtotal": str(doc.subtotal),
        "tax": str(doc.tax),
        "total": str(doc.total),
        "credited_to": doc.credited_to,
    }


def _subscription(sub: Subscription, precise: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "plan": sub.plan,
        "quantity": sub.quantity,
        "status": sub.status,
        "period_start": _moment(sub.period_start, precise),
        "period_end": _moment(sub.period_end, precise),
        "scheduled": [
            {
                "at": _moment(s.effective_at, precise),
                "kind": s.kind,
                "plan": s.change.plan,
                "quantity": s.change.quantity,
                "period": str(s.change.period) if s.change.period else None,
            }
            for s in sub.scheduled
        ],
        "cancel_at": _moment(sub.cancel_at, precise),
        "maintenance_until": _moment(sub.maintenance_until, False),
    }
    if len(sub.items) > 1:
        data["items"] = [{"plan": i.plan, "quantity": i.quantity} for i in sub.items]
    return data


def _account(book: Book, account: str, currency: str, precise: bool) -> dict[str, Any]:
    """The account's credit; ``pending`` (only when there are any): the lines waiting for
    its next invoice, in the order added."""
    data: dict[str, Any] = {"credit": str(credit_of(book, account, currency))}
    waiting = book.pending_of(account)
    if waiting:
        data["pending"] = [_line(line, precise) for line in waiting]
    return data


def to_data(scenario: Scenario, book: Book) -> dict[str, Any]:
    precise = scenario.policy.proration.unit == "second"
    return {
        "documents": [_document(doc, precise) for doc in book.documents],
        "accounts": {
            account: _account(book, account, scenario.currency, precise)
            for account in scenario.accounts
        },
        "subscriptions": {
            sub_id: _subscription(sub, precise) for sub_id, sub in book.subscriptions.items()
        },
        "requests": [
            {
                "id": r.id,
                "subscription": r.subscription,
                "state": r.state,
                "reason": r.reason,
                "created": _moment(r.created_at, precise),
                "decided": _moment(r.decided_at, precise),
            }
            for r in book.requests
        ],
        "rejected": [
            {"event": r.event, "code": r.code, "message": r.message} for r in book.rejected
        ],
        "payments": [_payment(p, precise) for p in book.payments()],
    }


def _payment(payment: Payment, precise: bool) -> dict[str, Any]:
    """A charge or refund: ``status`` is ``succeeded`` or why it failed."""
    data: dict[str, Any] = {
        "kind": payment.kind,
        "date": _moment(payment.at, precise),
        "account": payment.account,
        "document": payment.document,
        "amount": str(payment.amount),
        "status": payment.status,
    }
    if payment.method:
        data["method"] = payment.method
    return data


def to_json(scenario: Scenario, book: Book) -> str:
    return json.dumps(to_data(scenario, book), ensure_ascii=False, indent=2)
