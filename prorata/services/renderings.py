"""PDFs of issued documents and receipts: rendered after commit, stored, served.

Invariants:
- an invoice or credit note is rendered once its transaction has committed: the renderer
  (:func:`render_pending`, a thread of ``prorata serve`` or ``prorata render``) picks up the
  documents the outbox announced that have no rendering yet; a request for a PDF that is
  not rendered yet renders it then. Either way the rendering is stored once (unique per
  document or payment: a second renderer's insert is ignored) and served from then on;
- rendering is deterministic: rendering an issued document again gives the same bytes, so
  which renderer stored it does not matter;
- a receipt states what its invoice still asked for right after the payment, from what
  had happened by then (:mod:`prorata.services.balances`), so it too renders the same
  whenever it is rendered; an invoice's PDF states the invoice as issued, never what
  later payments or credit notes took off it, nor its status now: it reads "paid" only
  when it was paid on issue (``documents.paid_on_issue``, written with it), so the
  renderer running before or after a checkout's charge stores the same bytes;
- a PDF is served only to callers who may see its account; another account's document
  answers ``not_found`` like a missing one.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from prorata.adapters import schema as t
from prorata.adapters.store import StoreBook, load_config, upsert
from prorata.core.documents import Invoice
from prorata.core.money import Money
from prorata.rendering import Party, render_document, render_receipt
from prorata.services import access
from prorata.services.access import Principal
from prorata.services.balances import after_payment
from prorata.services.errors import NotFound, ensure_id
from prorata.services.transaction import Work, run

PDF = "application/pdf"


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(line for line in (text or "").splitlines() if line.strip())


def seller_of(connection: Connection, tenant_id: int) -> tuple[Party, int]:
    """The tenant as seller on its documents, and its payment terms in days."""
    row = connection.execute(select(t.tenants).where(t.tenants.c.id == tenant_id)).one()
    party = Party(
        name=row.legal_name or row.name,
        address=_lines(row.address),
        country=row.country,
        vat_id=row.vat_id,
        siren=row.siren,
    )
    return party, row.payment_terms_days


def buyer_of(connection: Connection, tenant_id: int, account: str) -> tuple[Party, str]:
    """The account as buyer, and the language its documents are written in. An account
    without a country is taken to be in its seller's."""
    row = connection.execute(
        select(t.accounts).where(t.accounts.c.tenant_id == tenant_id, t.accounts.c.key == account)
    ).one()
    party = Party(
        name=row.name or row.key,
        address=_lines(row.address),
        country=row.country or _seller_country(connection, tenant_id),
        vat_id=row.vat_id,
    )
    return party, row.locale


def _seller_country(connection: Connection, tenant_id: int) -> str:
    return connection.execute(
        select(t.tenants.c.country).where(t.tenants.c.id == tenant_id)
    ).scalar_one()


def _store(connection: Connection, tenant_id: int, column: str, ref: int, content: bytes, at):
    upsert(
        connection,
        t.renderings,
        {
            "tenant_id": tenant_id,
            column: ref,
            "media_type": PDF,
            "content": content,
            "sha256": hashlib.sha256(content).hexdigest(),
            "created_at": at,
        },
        [column],
    )


def _render(connection: Connection, book: StoreBook, number: str) -> bytes:
    doc = book.documents(t.documents.c.number == number)[0]
    seller, terms = seller_of(connection, book.tenant_id)
    buyer, locale = buyer_of(connection, book.tenant_id, doc.account)
    return render_document(
        doc,
        seller=seller,
        buyer=buyer,
        locale=locale,
        payment_terms_days=terms,
        # as issued: never doc.status, which a payment or a void after issue changes
        paid_on_issue=isinstance(doc, Invoice) and book.is_paid_on_issue(number),
    )


def render_pending(engine: Engine, *, now: datetime, limit: int = 50) -> int:
    """Render and store up to ``limit`` committed documents that have none; how many."""
    with engine.connect() as connection:
        connection.execution_options(sqlite_begin="DEFERRED")
        pending = connection.execute(
            select(t.documents.c.id, t.documents.c.tenant_id, t.documents.c.number)
            .outerjoin(t.renderings, t.renderings.c.document_id == t.documents.c.id)
            .where(t.renderings.c.id.is_(None))
            .order_by(t.documents.c.id)
            .limit(limit)
        ).all()
        connection.rollback()
    done = 0
    for doc_id, tenant_id, number in pending:
        with engine.connect() as connection:
            connection.execution_options(sqlite_begin="DEFERRED")
            book = StoreBook(connection, load_config(connection, tenant_id))
            content = _render(connection, book, number)
            connection.rollback()
        with engine.begin() as connection:
            _store(connection, tenant_id, "document_id", doc_id, content, now)
        done += 1
    return done


def document_pdf(
    engine: Engine, principal: Principal, number: str, *, at: datetime, type: str
) -> bytes:
    """The PDF of document ``number`` of ``type`` (invoice | credit_note)."""

    def read(work: Work) -> dict:
        row = work.connection.execute(
            select(t.documents.c.id, t.accounts.c.key, t.renderings.c.content)
            .join(t.accounts, t.accounts.c.id == t.documents.c.account_id)
            .outerjoin(t.renderings, t.renderings.c.document_id == t.documents.c.id)
            .where(
                t.documents.c.tenant_id == work.principal.tenant_id,
                t.documents.c.number == number,
                t.documents.c.type == type,
            )
        ).one_or_none()
        if row is None:
            raise NotFound(kind=type, id=number)
        access.ensure_visible(work.principal, row.key, type, number)
        if row.content is not None:
            return {"pdf": row.content}
        content = _render(work.connection, work.book, number)
        _store(work.connection, work.principal.tenant_id, "document_id", row.id, content, work.at)
        return {"pdf": content}

    return _run_binary(engine, principal, "document.pdf", {"number": number}, read, at)


def receipt_pdf(engine: Engine, principal: Principal, payment_id: int, *, at: datetime) -> bytes:
    """The receipt of payment ``payment_id`` as a PDF, in its account's language."""
    ensure_id("payment", payment_id)

    def read(work: Work) -> dict:
        row = work.connection.execute(
            select(t.payments, t.documents.c.number, t.accounts.c.key.label("account_key"))
            .join(t.documents, t.documents.c.id == t.payments.c.document_id)
            .join(t.accounts, t.accounts.c.id == t.documents.c.account_id)
            .where(
                t.payments.c.tenant_id == work.principal.tenant_id,
                t.payments.c.id == payment_id,
                t.payments.c.kind == "charge",  # a receipt is for money received
                t.payments.c.status == "succeeded",
            )
        ).one_or_none()
        if row is None:
            raise NotFound(kind="payment", id=payment_id)
        access.ensure_visible(work.principal, row.account_key, "payment", payment_id)
        stored = work.connection.execute(
            select(t.renderings.c.content).where(t.renderings.c.payment_id == payment_id)
        ).scalar_one_or_none()
        if stored is not None:
            return {"pdf": stored}
        invoice = work.book.invoice(row.number)
        (payment,) = (p for p in work.book.payments(row.account_key) if p.id == payment_id)
        seller, _ = seller_of(work.connection, work.principal.tenant_id)
        buyer, locale = buyer_of(work.connection, work.principal.tenant_id, row.account_key)
        content = render_receipt(
            receipt_number=f"RCT-{payment_id:06d}",
            paid_at=row.paid_at.astimezone(work.at.tzinfo),
            amount=Money.from_minor(row.amount_minor, row.currency),
            method=row.method,
            invoice=invoice,
            seller=seller,
            buyer=buyer,
            locale=locale,
            settlement=after_payment(work.book, invoice, payment),
        )
        _store(
            work.connection, work.principal.tenant_id, "payment_id", payment_id, content, work.at
        )
        return {"pdf": content}

    return _run_binary(engine, principal, "receipt.pdf", {"payment": payment_id}, read, at)


def _run_binary(engine, principal, operation, body, read, at) -> bytes:
    """Run ``read`` (which may store a first rendering) and return the PDF bytes."""
    return run(engine, principal, operation, body, read, at=at, binary=True)["pdf"]
