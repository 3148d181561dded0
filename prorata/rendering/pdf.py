"""The page layout of invoices, credit notes and receipts, with fpdf2.

A4 portrait, DejaVu Sans embedded (shipped in ``fonts/``: PDF/A needs every font
embedded and a fresh machine may have none). Invoices and credit notes are laid out as
PDF/A-3B (fpdf2 adds the sRGB output intent) with the XMP packet given by the caller, so
that nothing in the file comes from the clock: the creation date is the document's
``issued_at`` (a receipt's ``paid_at``) and the file ID is a hash of the content and that
date. Receipts are plain PDFs.

Page: the seller's identity on the left, the title, number and dates on the right, the
buyer below them; the lines (description, then the period, last day included, and the
proration explanation; quantity; unit price; amount excluding VAT), the VAT breakdown
beside the totals, then the mentions (payment terms, reverse charge, where a credit went).
An invoice states only what was true at issue: "paid" when it was paid on issue, and no
status otherwise (later payments are on their receipts). Every page ends with the seller's
legal identity and the page number.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.enums import TableBordersLayout, XPos, YPos

from prorata.core.documents import Invoice
from prorata.core.money import Money
from prorata.rendering.labels import Words, credited, payment_terms
from prorata.rendering.sheet import Party, Row, Settlement, Sheet, aware

FONTS = Path(__file__).resolve().parent / "fonts"
FAMILY = "DejaVu"
MARGIN = 15.0
RIGHT_X = 118.0  # left edge of the right-hand column
GREY = (90, 90, 90)
RULE = (200, 200, 200)
FILL = (238, 238, 238)


class Page(FPDF):
    """An A4 page with our font and a footer naming the seller and the page."""

    def __init__(
        self, words: Words, footer: str, reference: str, moment: datetime, xmp: str | None
    ) -> None:
        super().__init__(
            orientation="P",
            unit="mm",
            format="A4",
            enforce_compliance="PDFA_3B" if xmp else None,
        )
        self.words = words
        self.footer_text = footer
        self.reference = reference  # the document, named on every page
        self.set_creation_date(moment)
        self.set_lang(words.locale.replace("_", "-"))
        if xmp:
            self.set_xmp_metadata(xmp)
        self.add_font(FAMILY, "", FONTS / "DejaVuSans.ttf")
        self.add_font(FAMILY, "B", FONTS / "DejaVuSans-Bold.ttf")
        self.set_margins(MARGIN, MARGIN, MARGIN)
        self.set_auto_page_break(True, margin=24)
        self.add_page()

    def footer(self) -> None:
        self.set_y(-18)
        self.set_draw_color(*RULE)
        self.line(MARGIN, self.get_y(), self.w - MARGIN, self.get_y())
        self.use_font(7, color=GREY)
        self.multi_cell(0, 3.5, self.footer_text, align="C", new_x=XPos.LMARGIN)
        page = self.words("page", page=self.page_no(), pages="{nb}")
        self.cell(0, 3.5, f"{self.reference} · {page}", align="C")

    def use_font(self, size: float, *, bold: bool = False, color=(0, 0, 0)) -> None:
        self.set_font(FAMILY, "B" if bold else "", size)
        self.set_text_color(*color)

    def lines(self, x: float, width: float, texts: Iterable[str], height: float = 4.2) -> None:
        for text in texts:
            self.set_x(x)
            self.multi_cell(width, height, text, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)

    def key_values(self, x: float, width: float, pairs: Iterable[tuple[str, str]]) -> None:
        for key, value in pairs:
            self.set_x(x)
            self.use_font(8.5, color=GREY)
            self.cell(width * 0.48, 5, key)
            self.use_font(8.5)
            self.cell(width * 0.52, 5, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _identity(party: Party, words: Words, *, legal: bool) -> list[str]:
    texts = [*party.address, words.country(party.country)]
    if legal and party.siren:
        texts.append(words.labelled("siren", party.siren))
    if party.vat_id:
        texts.append(words.labelled("vat_id", party.vat_id))
    if party.email:
        texts.append(party.email)
    return texts


def footer_of(seller: Party, words: Words) -> str:
    parts = [seller.name]
    if seller.siren:
        parts.append(f"{words('siren')} {seller.siren}")
    if seller.vat_id:
        parts.append(f"{words('vat_id')} {seller.vat_id}")
    return " · ".join(parts)


def _header(
    pdf: Page, title: str, facts: list[tuple[str, str]], seller: Party, buyer: Party
) -> None:
    words = pdf.words
    top = pdf.get_y()
    pdf.use_font(12, bold=True)
    pdf.set_x(MARGIN)
    pdf.multi_cell(
        RIGHT_X - MARGIN - 8, 6, seller.name, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.use_font(8.5)
    pdf.lines(MARGIN, RIGHT_X - MARGIN - 8, _identity(seller, words, legal=True))
    left_bottom = pdf.get_y()

    width = pdf.w - MARGIN - RIGHT_X
    pdf.set_xy(RIGHT_X, top)
    pdf.use_font(18, bold=True)
    pdf.cell(width, 9, title, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1)
    pdf.key_values(RIGHT_X, width, facts)
    pdf.ln(4)
    pdf.set_x(RIGHT_X)
    pdf.use_font(8, bold=True, color=GREY)
    pdf.cell(width, 4.5, words("buyer").upper(), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_x(RIGHT_X)
    pdf.use_font(10, bold=True)
    pdf.multi_cell(width, 5, buyer.name, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.use_font(8.5)
    pdf.lines(RIGHT_X, width, _identity(buyer, words, legal=False))
    pdf.set_y(max(left_bottom, pdf.get_y()) + 8)


def _description(row: Row, words: Words) -> str:
    texts = [row.description]
    if row.first_day and row.last_day:
        texts.append(words("period", start=words.date(row.first_day), end=words.date(row.last_day)))
    if row.explanation:
        texts.append(row.explanation)
    elif row.share is not None:
        share = words.number(Decimal(row.share.numerator) / Decimal(row.share.denominator))
        texts.append(words("share", share=share))
    return "\n".join(texts)


def _lines_table(pdf: Page, sheet: Sheet) -> None:
    words = pdf.words
    pdf.use_font(8.5)
    pdf.set_draw_color(*RULE)
    with pdf.table(
        col_widths=(100, 14, 33, 33),
        width=pdf.epw,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(emphasis="BOLD", fill_color=FILL),
        line_height=4.2,
        padding=(1.6, 1.2, 1.6, 1.2),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
        v_align="TOP",
    ) as table:
        heading = table.row()
        for key in ("col_description", "col_quantity", "col_unit_price", "col_amount"):
            heading.cell(words(key))
        for row in sheet.rows:
            cells = table.row()
            cells.cell(_description(row, words))
            cells.cell(words.number(row.quantity))
            price = row.unit_price
            cells.cell("" if price is None else words.price(price, sheet.currency))
            cells.cell(words.money(row.amount))


def _totals(pdf: Page, sheet: Sheet) -> None:
    words = pdf.words
    if pdf.will_page_break(46):
        pdf.add_page()
    pdf.ln(5)
    top = pdf.get_y()

    # the VAT breakdown, on the left
    pdf.use_font(8.5)
    with pdf.table(
        col_widths=(30, 35, 35),
        width=92,
        align="LEFT",
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=FontFace(emphasis="BOLD", fill_color=FILL),
        line_height=4.2,
        padding=(1.2, 1.2, 1.2, 1.2),
        text_align=("LEFT", "RIGHT", "RIGHT"),
    ) as table:
        heading = table.row()
        for key in ("vat_rate", "vat_basis", "vat_amount"):
            heading.cell(words(key))
        for vat in sheet.vat:
            cells = table.row()
            cells.cell(words.rate(vat.rate))
            cells.cell(words.money(vat.basis))
            cells.cell(words.money(vat.tax))
    left_bottom = pdf.get_y()

    # the totals, on the right
    width = pdf.w - MARGIN - RIGHT_X
    pdf.set_y(top)
    rows: list[tuple[str, Money, bool]] = [
        (words("subtotal"), sheet.subtotal, False),
        (f"{words('tax')} {words.rate(sheet.vat[0].rate)}", sheet.tax, False),
        (words("total"), sheet.total, True),
    ]
    if sheet.is_invoice:
        if sheet.prepaid:
            rows.append((words("credit_applied"), -sheet.prepaid, False))
        if sheet.credit_added:
            rows.append((words("credit_added"), sheet.credit_added, False))
        assert sheet.amount_due is not None
        rows.append((words("amount_due"), sheet.amount_due, True))
    for label, amount, strong in rows:
        pdf.set_x(RIGHT_X)
        if strong:
            pdf.set_fill_color(*FILL)
        pdf.use_font(9, bold=strong)
        pdf.cell(width * 0.6, 6, label, fill=strong)
        pdf.cell(width * 0.4, 6, words.money(amount), align="R", fill=strong)
        pdf.ln(6)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)


def _mentions(pdf: Page, sheet: Sheet, seller: Party) -> None:
    words = pdf.words
    texts: list[tuple[str, bool]] = []
    if sheet.reverse_charge:
        texts.append((words("reverse_charge"), True))
    if sheet.is_invoice:
        if sheet.credit_added:
            texts.append((words("terms_credit_added"), False))
        elif sheet.paid_on_issue:
            texts.append((words("terms_paid", date=words.date(sheet.issue_date)), False))
        texts.append((payment_terms(sheet, seller, words), False))
    else:
        if sheet.refers_to:
            texts.append((words("refers_to", number=sheet.refers_to), True))
        texts.append((credited(sheet, words), False))
    for text, strong in texts:
        pdf.use_font(8, bold=strong)
        pdf.multi_cell(0, 4, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1.5)


def _output(pdf: Page) -> bytes:
    return bytes(pdf.output())


def layout_document(sheet: Sheet, seller: Party, buyer: Party, words: Words, xmp: str) -> bytes:
    """The PDF/A-3B of an invoice or credit note (without its XML: see facturx.embed)."""
    title = words(sheet.kind)
    reference = f"{title} {sheet.number}"
    pdf = Page(words, footer_of(seller, words), reference, sheet.issued_at, xmp)
    pdf.set_title(reference)
    pdf.set_author(seller.name)
    facts = [(words("number"), sheet.number), (words("issue_date"), words.date(sheet.issue_date))]
    if sheet.is_invoice:
        assert sheet.due_date is not None
        facts.append((words("due_date"), words.date(sheet.due_date)))
        if sheet.credit_added:  # a negative total: nothing was paid, credit was added
            facts.append((words("status"), words("status_credited")))
        elif sheet.paid_on_issue:  # a fact at issue; "open" is not: it may be paid later
            facts.append((words("status"), words("status_paid")))
    elif sheet.refers_to:
        facts.append((words("corrected_invoice"), sheet.refers_to))
    _header(pdf, title, facts, seller, buyer)
    _lines_table(pdf, sheet)
    _totals(pdf, sheet)
    _mentions(pdf, sheet, seller)
    return _output(pdf)


def _settled_before(
    settlement: Settlement | None, invoice: Invoice, words: Words
) -> list[tuple[str, str]]:
    """The receipt's rows between the invoice's total and this payment: what it asked for
    (when credit applied on issue made it less than its total), then the credit notes and
    earlier payments that had taken something off it. Rows that would read 0 are left out."""
    if settlement is None:
        return []
    rows = []
    if settlement.amount_due != invoice.total:
        rows.append((words("invoice_due"), words.money(settlement.amount_due)))
    if settlement.credited:
        rows.append((words("credited_before"), words.money(-settlement.credited)))
    if settlement.paid_before:
        rows.append((words("paid_before"), words.money(-settlement.paid_before)))
    return rows


def layout_receipt(
    *,
    receipt_number: str,
    paid_at: datetime,
    amount: Money,
    method: str | None,
    invoice: Invoice,
    seller: Party,
    buyer: Party,
    words: Words,
    settlement: Settlement | None = None,
) -> bytes:
    """A payment receipt: who paid what, when, how, for which invoice (a plain PDF); with
    ``settlement``, also what the invoice asked for, what credit notes and earlier payments
    had taken off it, and what was left to pay after this payment."""
    paid_at = aware(paid_at)
    title = words("receipt")
    reference = f"{title} {receipt_number}"
    pdf = Page(words, footer_of(seller, words), reference, paid_at, None)
    pdf.set_title(reference)
    pdf.set_author(seller.name)
    facts = [(words("receipt_number"), receipt_number), (words("paid_at"), words.date(paid_at))]
    _header(pdf, title, facts, seller, buyer)
    width = pdf.epw
    pdf.set_draw_color(*RULE)
    pairs = [
        (words("invoice_paid"), invoice.number),
        (words("invoice_date"), words.date(invoice.issued_at)),
        (words("invoice_total"), words.money(invoice.total)),
        *_settled_before(settlement, invoice, words),
        (words("method"), words.method(method)),
    ]
    for key, value in pairs:
        pdf.use_font(9.5, color=GREY)
        pdf.cell(width * 0.5, 7, key, border="B")
        pdf.use_font(9.5)
        pdf.cell(width * 0.5, 7, value, border="B", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_fill_color(*FILL)
    pdf.use_font(11, bold=True)
    pdf.cell(width * 0.5, 9, words("amount_paid"), fill=True)
    pdf.cell(width * 0.5, 9, words.money(amount), fill=True, align="R")
    pdf.ln(9)
    if settlement is not None:
        pdf.use_font(9.5, color=GREY)
        pdf.cell(width * 0.5, 7, words("left_after"), border="B")
        pdf.use_font(9.5, bold=True)
        pdf.cell(width * 0.5, 7, words.money(settlement.left), border="B", align="R")
        pdf.ln(7)
    pdf.ln(5)
    pdf.use_font(9)
    text = words(
        "receipt_text",
        amount=words.money(amount),
        date=words.date(paid_at),
        number=invoice.number,
    )
    pdf.multi_cell(0, 5, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    pdf.use_font(8, color=GREY)
    pdf.multi_cell(0, 4, words("receipt_not_invoice"), align="L", new_x=XPos.LMARGIN)
    return _output(pdf)
