"""``prorata collect``: collect the invoices due for collection and send pending refunds,
on the store, with every gateway call outside a database transaction.

One attempt is three steps:
1. claim (a transaction): the collection is leased (``lease_until``), so another collector
   skips it, and the attempt's idempotency key is read (``invoice:attempt``);
2. the gateway call, with that key: a collector that crashes after the call and is run
   again gets the same answer for the same key, never a second charge;
3. record (a transaction): the answer goes through ``Billing.collected`` unless the
   collection moved meanwhile (another collector recorded that attempt, or the invoice was
   paid by hand), and the events of what changed are published to the outbox.

An attempt is dated at the instant it fell due (``next_attempt_at``), as a renewal is, so
the store and the simulator give the same payments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select, update

from prorata.adapters import journal
from prorata.adapters import schema as t
from prorata.adapters.gateways import Gateway, Result
from prorata.adapters.store import StoreBook, load_config
from prorata.core.changes import Context
from prorata.services.billing import Billing
from prorata.services.collection import Collector

LEASE = timedelta(minutes=5)


@dataclass
class Summary:
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    refunds: int = 0
    skipped: int = 0  # claimed, but someone else recorded it first
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (invoice, outcome)


@dataclass(frozen=True)
class Claim:
    tenant_id: int
    invoice: str
    due_at: datetime
    attempts: int
    token: str | None
    amount: object
    key: str


def _billing(connection, tenant_id: int) -> tuple[StoreBook, Billing]:
    config = load_config(connection, tenant_id)
    book = StoreBook(connection, config)
    ctx = Context(config.catalog, config.policy, book.accounts)
    return book, Billing(ctx, book, config.policy.rounding)


def claim(
    engine: Engine, now: datetime, *, tenant_id: int | None = None, invoice: str | None = None
) -> Claim | None:
    """Lease the earliest collection due by ``now`` (not leased by another collector), or
    that of ``invoice``."""
    c = t.collections.c
    with engine.begin() as connection:
        query = (
            select(c.id, c.tenant_id, c.document_id, c.next_attempt_at)
            .where(
                c.next_attempt_at <= now,
                or_(c.lease_until.is_(None), c.lease_until <= now),
            )
            .order_by(c.next_attempt_at, c.id)
            .limit(1)
        )
        if tenant_id is not None:
            query = query.where(c.tenant_id == tenant_id)
        if invoice is not None:
            query = query.where(
                c.document_id.in_(
                    select(t.documents.c.id).where(
                        t.documents.c.tenant_id == tenant_id, t.documents.c.number == invoice
                    )
                )
            )
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = connection.execute(query).one_or_none()
        if row is None:
            return None
        connection.execute(
            update(t.collections).where(c.id == row.id).values(lease_until=now + LEASE)
        )
        number = connection.execute(
            select(t.documents.c.number).where(t.documents.c.id == row.document_id)
        ).scalar_one()
        book, billing = _billing(connection, row.tenant_id)
        collection = book.collection(number)
        account = billing.ctx.accounts[collection.account]
        return Claim(
            row.tenant_id,
            number,
            collection.next_attempt_at,
            collection.attempts,
            account.payment_token if account.auto_pay else None,
            collection.amount,
            f"t{row.tenant_id}:{collection.key}",  # unique across tenants
        )


def record(engine: Engine, claimed: Claim, result: Result) -> str | None:
    """Record ``result`` for ``claimed``; the outcome, or None if the collection moved."""
    with engine.begin() as connection:
        book, billing = _billing(connection, claimed.tenant_id)
        current = book.collection(claimed.invoice)
        if (
            current is None
            or current.attempts != claimed.attempts
            or current.next_attempt_at != claimed.due_at
        ):
            return None
        subs = current.subscriptions
        before = {key: book.subscription(key).status for key in subs}
        Collector(billing, _NoGateway()).attempt_with(claimed.invoice, claimed.due_at, result)
        after = {key: book.subscription(key).status for key in subs}
        _publish_attempt(connection, claimed, current, result, book, before, after)
        return result.outcome


def _publish_attempt(connection, claimed: Claim, collection, result, book, before, after):
    at = claimed.due_at
    moved = book.collection(claimed.invoice)
    payload = {
        "invoice": claimed.invoice,
        "account": collection.account,
        "amount": str(collection.amount),
        "outcome": result.outcome,
        "attempt": claimed.attempts + 1,
        "next_attempt_at": moved.next_attempt_at.isoformat() if moved.next_attempt_at else None,
    }
    topic = "payment.succeeded" if result.succeeded else "payment.failed"
    journal.emit(connection, claimed.tenant_id, topic, payload, at)
    for key, status in after.items():
        if status != before[key]:
            event = {
                "subscription": key,
                "account": collection.account,
                "status": status,
                "previous": before[key],
                "invoice": claimed.invoice,
            }
            name = "reactivated" if status == "active" else status
            journal.emit(connection, claimed.tenant_id, f"subscription.{name}", event, at)


class _NoGateway:
    """Recording never calls a gateway: the answer was obtained before the transaction."""

    def authorize(self, *args):  # pragma: no cover - never called
        raise AssertionError("no gateway call inside a transaction")

    capture = refund = authorize


def call(gateway: Gateway, claimed: Claim) -> Result:
    if claimed.token is None:
        return Result("no_payment_method", None)
    return Collector.call_gateway(gateway, claimed.token, claimed.amount, claimed.key)


def send_refunds(engine: Engine, gateway: Gateway, summary: Summary) -> None:
    """Every pending refund, each sent with its own idempotency key then recorded."""
    with engine.connect() as connection:
        pending = connection.execute(
            select(t.payments.c.id, t.payments.c.tenant_id).where(
                t.payments.c.kind == "refund", t.payments.c.status == "pending"
            )
        ).all()
    for row in pending:
        with engine.connect() as connection:
            book, _ = _billing(connection, row.tenant_id)
            by_id = {p.id: p for p in book.payments()}
        refund = by_id[row.id]
        original = by_id[refund.refunds]
        result = Collector.refund_gateway(gateway, refund, original)
        with engine.begin() as connection:
            book, _ = _billing(connection, row.tenant_id)
            try:
                book.settle_payment(refund.id, result.outcome, result.reference)
            except LookupError:
                continue  # another collector recorded it
            journal.emit(
                connection,
                row.tenant_id,
                "refund.succeeded" if result.succeeded else "refund.failed",
                {
                    "credit_note": refund.document,
                    "account": refund.account,
                    "amount": str(refund.amount),
                },
                refund.at,
            )
        summary.refunds += 1


def collect_due(
    engine: Engine, gateway: Gateway, now: datetime, *, tenant_id: int | None = None
) -> Summary:
    """Every collection due by ``now`` (retries that fall due meanwhile included), then the
    pending refunds."""
    summary = Summary()
    while (claimed := claim(engine, now, tenant_id=tenant_id)) is not None:
        result = call(gateway, claimed)
        summary.attempts += 1
        outcome = record(engine, claimed, result)
        if outcome is None:
            summary.skipped += 1
            continue
        summary.outcomes.append((claimed.invoice, outcome))
        if outcome == "succeeded":
            summary.succeeded += 1
        else:
            summary.failed += 1
    send_refunds(engine, gateway, summary)
    return summary


def collect_forever(engine: Engine, gateway: Gateway, clock, stop, interval: float = 30.0) -> None:
    """``collect_due`` every ``interval`` seconds until ``stop`` is set (a thread of
    ``prorata serve``); an error is logged and the next round tries again."""
    import structlog

    log = structlog.get_logger("prorata.collect")
    while not stop.is_set():
        try:
            done = collect_due(engine, gateway, clock())
            if done.attempts or done.refunds:
                log.info(
                    "collected",
                    attempts=done.attempts,
                    succeeded=done.succeeded,
                    failed=done.failed,
                    refunds=done.refunds,
                )
        except Exception as exc:  # a round that fails must not stop the thread
            log.error("collect_failed", error=f"{type(exc).__name__}: {exc}")
        stop.wait(interval)
