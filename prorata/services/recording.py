"""What every service does around the core: load a subscription as the caller may see it,
and record a change in the audit log and the outbox, in the caller's transaction.

Invariants: a subscription another account or tenant owns is reported exactly like one
that does not exist; every accepted change writes one audit row (staff actions name the
account acted for) and one outbox event, plus one per document issued and request opened.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from prorata.adapters import journal
from prorata.adapters import schema as t
from prorata.core.documents import Invoice
from prorata.services import access
from prorata.services.billing import Outcome
from prorata.services.errors import NotFound
from prorata.services.transaction import Work
from prorata.services.views import document_view, quote_view, request_view


def load(work: Work, key: str):
    """The subscription ``key`` as of ``work.at`` if the caller may see it (else NotFound),
    and its version: renewals that fell due before now are caught up first."""
    sub = work.book.subscription(key)
    if sub is None:
        raise NotFound(kind="subscription", id=key)
    access.ensure_visible(work.principal, sub.account, "subscription", key)
    renewals = work.billing.catch_up(key, work.at)
    for outcome in renewals:
        # events of what the bill run would have done; kept only if the call commits
        publish(work, "subscription.renewed", outcome)
    if renewals:
        sub = work.book.subscription(key)
    return sub, work.book.version_of(key)


def reader_locale(work: Work, account: str) -> str:
    """The language the caller reads messages in: their own, else the account's."""
    return work.principal.locale or work.billing.ctx.accounts[account].locale


def assigned_seats(work: Work, key: str) -> int:
    return work.connection.execute(
        select(func.count()).where(
            t.seat_assignments.c.subscription_id == work.book.row_id(key),
            t.seat_assignments.c.released_at.is_(None),
        )
    ).scalar_one()


def account_id(work: Work, sub) -> int:
    return work.book.accounts.id_of(sub.account)


def audit(work: Work, action: str, sub, before, after) -> None:
    staff = work.principal.is_staff
    audit_action(
        work,
        action,
        f"subscription:{sub.id}",
        before,
        after,
        account_id=account_id(work, sub) if staff else None,
        customer_role=None if staff else work.principal.memberships[sub.account],
    )


def audit_action(
    work: Work,
    action: str,
    subject: str,
    before: Any = None,
    after: Any = None,
    *,
    account_id: int | None = None,
    customer_role: str | None = None,
) -> None:
    """One audit row for what the caller did to ``subject``: staff act in their own role and
    on behalf of ``account_id`` (when the subject belongs to an account); a customer acts
    in ``customer_role``, their role on that account."""
    principal = work.principal
    staff = principal.is_staff
    journal.audit(
        work.connection,
        principal.tenant_id,
        at=work.at,
        actor_user_id=principal.user_id,
        actor_role=principal.role if staff else customer_role,
        action=action,
        subject=subject,
        before=before,
        after=after,
        on_behalf_of=account_id if staff else None,
        request_id=work.request_id,
    )


def publish(work: Work, topic: str, outcome: Outcome) -> None:
    publish_outcome(work.connection, work.principal.tenant_id, topic, outcome, work.at)


def publish_outcome(connection, tenant: int, topic: str, outcome: Outcome, at) -> None:
    """One event for the outcome, one per document issued and one for a request opened."""
    sub = outcome.subscription
    journal.emit(
        connection,
        tenant,
        topic,
        {"subscription": sub.id, "account": sub.account, "status": outcome.status},
        at,
    )
    for doc in outcome.documents:
        kind = "invoice" if isinstance(doc, Invoice) else "credit_note"
        journal.emit(
            connection,
            tenant,
            f"{kind}.issued",
            {"number": doc.number, "account": doc.account, "total": str(doc.total)},
            at,
        )
    if outcome.request is not None:
        journal.emit(connection, tenant, "request.opened", request_view(outcome.request), at)


def outcome_view(work: Work, outcome: Outcome) -> dict[str, Any]:
    sub = outcome.subscription
    return {
        "subscription": sub.id,
        "status": outcome.status,
        "version": work.book.version_of(sub.id),
        "effective_at": outcome.quote.effective_at.isoformat() if outcome.quote else None,
        "quote": quote_view(outcome.quote) if outcome.quote else None,
        "documents": [document_view(doc) for doc in outcome.documents],
        "request": request_view(outcome.request) if outcome.request else None,
    }
