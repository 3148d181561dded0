"""JSON-ready views of the core's values, as services return them.

Amounts are strings with the currency's digits; instants are ISO 8601 with their offset in
the tenant's zone; dates are ISO dates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prorata.core.calendar import ratio_text
from prorata.core.changes import Quote
from prorata.core.documents import Document, Invoice, Line
from prorata.core.subscription import Subscription
from prorata.services.book import Request


def instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def line_view(line: Line) -> dict[str, Any]:
    return {
        "kind": line.kind,
        "description": line.description,
        "subscription": line.subscription,
        "plan": line.plan,
        "quantity": line.quantity,
        "start": instant(line.start),
        "end": instant(line.end),
        "fraction": None if line.fraction is None else ratio_text(line.fraction),
        "amount": str(line.amount),
        "explanation": line.explanation,
    }


def document_view(doc: Document) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": doc.number,
        "type": "invoice" if isinstance(doc, Invoice) else "credit_note",
        "issued_at": instant(doc.issued_at),
        "account": doc.account,
        "currency": doc.currency,
        "lines": [line_view(line) for line in doc.lines],
        "subtotal": str(doc.subtotal),
        "tax": str(doc.tax),
        "total": str(doc.total),
    }
    if isinstance(doc, Invoice):
        data |= {
            "credit_applied": str(doc.credit_applied),
            "credit_added": str(doc.credit_added),
            "amount_due": str(doc.amount_due),
            "status": doc.status,
        }
    else:
        data |= {"refers_to": doc.refers_to, "credited_to": doc.credited_to}
    return data


def subscription_view(sub: Subscription, version: int) -> dict[str, Any]:
    return {
        "id": sub.id,
        "account": sub.account,
        "version": version,
        "status": sub.status,
        "items": [{"plan": i.plan, "quantity": i.quantity} for i in sub.items],
        "plan": sub.plan,
        "quantity": sub.quantity,
        "period": str(sub.schedule.unit) if sub.schedule else "one_time",
        "started_at": instant(sub.started_at),
        "period_start": instant(sub.period_start),
        "period_end": instant(sub.period_end),
        "term_end": instant(sub.term.end) if sub.term else None,
        "term": None
        if sub.term is None
        else {
            "period": str(sub.term.unit),
            "auto_renew": sub.term.auto_renew,
            "start": instant(sub.term.start),
            "end": instant(sub.term.end),
        },
        "cancel_at": instant(sub.cancel_at),
        "scheduled": [
            {
                "at": instant(s.effective_at),
                "kind": s.kind,
                "plan": s.change.plan if s.change else None,
                "quantity": s.change.quantity if s.change else None,
            }
            for s in sub.scheduled
        ],
        "maintenance_until": instant(sub.maintenance_until),
    }


def summary(sub: Subscription, version: int) -> dict[str, Any]:
    """The part of a subscription the audit log keeps before and after a change."""
    return {
        "version": version,
        "status": sub.status,
        "items": [[i.plan, i.quantity] for i in sub.items],
        "period": str(sub.schedule.unit) if sub.schedule else "one_time",
        "cancel_at": instant(sub.cancel_at),
        "scheduled": len(sub.scheduled),
    }


def quote_view(quote: Quote) -> dict[str, Any]:
    total = quote.total
    return {
        "kind": quote.kind,
        "kinds": sorted(quote.kinds),
        "timing": quote.timing,
        "request_reason": quote.request_reason,
        "effective_at": instant(quote.effective_at),
        "lines": [line_view(line) for line in quote.lines],
        "total": None if total is None else str(total),
    }


def request_view(request: Request) -> dict[str, Any]:
    return {
        "number": request.id,
        "subscription": request.subscription,
        "reason": request.reason,
        "state": request.state,
        "created_at": instant(request.created_at),
        "decided_at": instant(request.decided_at),
    }
