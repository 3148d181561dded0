"""Invoices, credit notes, payment history and receipts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from prorata.services import documents, renderings
from prorata.web.deps import Limit, Offset, Read

router = APIRouter(tags=["documents"])
AccountKey = Annotated[str | None, Query(max_length=100)]


@router.get("/invoices", summary="Invoices, oldest first")
def list_invoices(
    call: Read,
    account: AccountKey = None,
    status: Literal["open", "paid"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict:
    return documents.list_documents(
        call.engine,
        call.principal,
        at=call.at,
        type="invoice",
        account=account,
        status=status,
        limit=limit,
        offset=offset,
    )


@router.get("/invoices/{number}", summary="An invoice and its payments")
def get_invoice(number: str, call: Read) -> dict:
    return documents.get_document(call.engine, call.principal, number, at=call.at, type="invoice")


@router.get("/credit-notes", summary="Credit notes, oldest first")
def list_credit_notes(
    call: Read, account: AccountKey = None, limit: Limit = 50, offset: Offset = 0
) -> dict:
    return documents.list_documents(
        call.engine,
        call.principal,
        at=call.at,
        type="credit_note",
        account=account,
        limit=limit,
        offset=offset,
    )


@router.get("/credit-notes/{number}", summary="A credit note")
def get_credit_note(number: str, call: Read) -> dict:
    return documents.get_document(
        call.engine, call.principal, number, at=call.at, type="credit_note"
    )


@router.get("/payments", summary="Payment history")
def list_payments(
    call: Read, account: AccountKey = None, limit: Limit = 50, offset: Offset = 0
) -> dict:
    return documents.list_payments(
        call.engine, call.principal, at=call.at, account=account, limit=limit, offset=offset
    )


@router.get("/payments/{payment}/receipt", summary="The receipt of a payment")
def get_receipt(payment: int, call: Read) -> dict:
    return documents.get_receipt(call.engine, call.principal, payment, at=call.at)


PDF_RESPONSE = {200: {"content": {"application/pdf": {}}, "description": "The PDF"}}


def _pdf(content: bytes, name: str) -> Response:
    return Response(
        content,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}.pdf"'},
    )


@router.get(
    "/invoices/{number}/pdf",
    summary="An invoice as PDF/A-3 with its Factur-X XML",
    response_class=Response,
    responses=PDF_RESPONSE,
)
def invoice_pdf(number: str, call: Read) -> Response:
    content = renderings.document_pdf(
        call.engine, call.principal, number, at=call.at, type="invoice"
    )
    return _pdf(content, number)


@router.get(
    "/credit-notes/{number}/pdf",
    summary="A credit note as PDF/A-3 with its Factur-X XML",
    response_class=Response,
    responses=PDF_RESPONSE,
)
def credit_note_pdf(number: str, call: Read) -> Response:
    content = renderings.document_pdf(
        call.engine, call.principal, number, at=call.at, type="credit_note"
    )
    return _pdf(content, number)


@router.get(
    "/payments/{payment}/receipt/pdf",
    summary="The receipt of a payment as PDF",
    response_class=Response,
    responses=PDF_RESPONSE,
)
def receipt_pdf(payment: int, call: Read) -> Response:
    content = renderings.receipt_pdf(call.engine, call.principal, payment, at=call.at)
    return _pdf(content, f"RCT-{payment:06d}")
