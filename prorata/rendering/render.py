"""Rendering an invoice, a credit note or a receipt: the public entry points.

``render_document`` lays the document out (:mod:`prorata.rendering.pdf`) from its
:class:`~prorata.rendering.sheet.Sheet`, builds its CII XML from the same sheet
(:mod:`prorata.rendering.facturx`) and embeds it: a Factur-X EN 16931 PDF/A-3.
``render_receipt`` lays out a plain PDF. All are pure functions of their arguments: the
same document renders to the same bytes.
"""

from __future__ import annotations

from datetime import datetime

from prorata.core.documents import CreditNote, Invoice
from prorata.core.money import Money
from prorata.rendering import facturx
from prorata.rendering.labels import Words
from prorata.rendering.pdf import layout_document, layout_receipt
from prorata.rendering.sheet import Party, Settlement, sheet_of


def render_document(
    doc: Invoice | CreditNote,
    *,
    seller: Party,
    buyer: Party,
    locale: str,
    payment_terms_days: int = 30,
    paid_on_issue: bool = False,
) -> bytes:
    """``doc`` as a Factur-X (EN 16931) PDF/A-3 in the language of ``locale`` (fr or en;
    any other locale renders in English), with ``factur-x.xml`` embedded.

    Only what was true at issue is rendered: an invoice's current ``status`` is ignored;
    ``paid_on_issue`` (its charge recorded with it, at its issue instant) makes it read
    "paid" (an invoice with nothing due does anyway). Payments made later are stated by
    their receipts, so the PDF is the same whether rendered before or after them."""
    words = Words(locale)
    sheet = sheet_of(doc, seller, buyer, payment_terms_days, paid_on_issue=paid_on_issue)
    xml = facturx.build_xml(sheet, seller, buyer, words)
    facturx.check_xsd(xml)
    title = f"{words(sheet.kind)} {sheet.number}"
    metadata = {
        "title": title,
        "author": seller.name,
        "subject": f"{title} – {seller.name} – {buyer.name}",
    }
    xmp = facturx.xmp_body(metadata, sheet.issued_at)
    pdf = layout_document(sheet, seller, buyer, words, xmp)
    return facturx.embed(pdf, xml, metadata=metadata, lang=pdf_lang(words), moment=sheet.issued_at)


def render_receipt(
    *,
    receipt_number: str,
    paid_at: datetime,
    amount: Money,
    method: str | None,
    invoice: Invoice,
    seller: Party,
    buyer: Party,
    locale: str,
    settlement: Settlement | None = None,
) -> bytes:
    """The receipt of a payment of ``amount`` for ``invoice`` (a plain PDF); with
    ``settlement``, it also states what was left to pay on the invoice after it."""
    return layout_receipt(
        receipt_number=receipt_number,
        paid_at=paid_at,
        amount=amount,
        method=method,
        invoice=invoice,
        seller=seller,
        buyer=buyer,
        words=Words(locale),
        settlement=settlement,
    )


def pdf_lang(words: Words) -> str:
    return words.locale.replace("_", "-")
