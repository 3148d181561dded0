"""Rendered invoices, credit notes and receipts: what a customer reads, in French and in
English, the mentions that apply only when they apply, and the same bytes every time."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from prorata.rendering import Settlement, render_document, render_receipt
from tests.rendering import (
    BUYER_DE,
    BUYER_FR,
    BUYER_US,
    SELLER,
    at,
    attachments,
    credit_note,
    eur,
    flat,
    invoice,
    pages,
    pdf_text,
    proration_credit,
    recurring,
)

REVERSE_CHARGE = {
    "fr": "Autoliquidation",
    "en": "Reverse charge – Article 196 of Council Directive 2006/112/EC",
}


def text(doc, *, buyer=BUYER_FR, locale="fr", seller=SELLER, **kwargs) -> str:
    return pdf_text(render_document(doc, seller=seller, buyer=buyer, locale=locale, **kwargs))


def contains(haystack: str, *needles: str) -> None:
    for needle in needles:
        assert flat(needle) in haystack, f"{needle!r} not in {haystack!r}"


@pytest.fixture(scope="module")
def invoice_fr() -> str:
    return text(invoice(), locale="fr")


@pytest.fixture(scope="module")
def invoice_en() -> str:
    return text(invoice(), locale="en")


def test_french_invoice_states_every_mention(invoice_fr):
    contains(
        invoice_fr,
        # seller and buyer
        "Aircall SAS",
        "11 rue Saint-Georges",
        "75009 Paris",
        "SIREN : 807 437 595",
        "N° TVA intracommunautaire : FR12807437595",
        "Agence Durand",
        "69002 Lyon",
        "N° TVA intracommunautaire : FR40303265045",
        # the document
        "Facture",
        "Numéro F-2024-0042",
        "Date d'émission 10 juil. 2024",
        "Date d'échéance 9 août 2024",
        # the lines: description, period (last day included), quantity, unit price, amount
        "Pro × 5",
        "Période : du 6 juil. 2024 au 5 août 2024 inclus",
        "5 290,00 € 1 450,00 €",
        "Temps non utilisé sur Essentials × 4",
        "Période : du 10 juil. 2024 au 5 août 2024 inclus",
        "× 27/31 jours",
        "4 30,00 € -104,52 €",
        # VAT per rate and totals
        "Taux de TVA Base HT Montant TVA",
        "20 % 1 345,48 € 269,10 €",
        "Total HT 1 345,48 €",
        "TVA 20 % 269,10 €",
        "Total TTC 1 614,58 €",
        "Crédit appliqué -100,00 €",
        "Net à payer 1 514,58 €",
        # payment terms and the French B2B mentions
        "Paiement à 30 jours date de facture, au plus tard le 9 août 2024.",
        "Pas d'escompte pour paiement anticipé.",
        "pénalités au taux de trois fois le taux d'intérêt légal",
        "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40,00 €",
        "Page 1/1",
    )
    assert REVERSE_CHARGE["fr"] not in invoice_fr
    # open at issue: no status (it may be paid later; its receipt will say so)
    assert "Statut" not in invoice_fr and "acquittée" not in invoice_fr


def test_english_invoice_states_every_mention(invoice_en):
    contains(
        invoice_en,
        "SIREN: 807 437 595",
        "VAT number: FR12807437595",
        "VAT number: FR40303265045",
        "Invoice",
        "Number F-2024-0042",
        "Issue date Jul 10, 2024",
        "Due date Aug 9, 2024",
        "Period: Jul 6, 2024 to Aug 5, 2024 inclusive",
        "5 €290.00 €1,450.00",
        "4 €30.00 -€104.52",
        "VAT rate Taxable amount VAT amount",
        "20% €1,345.48 €269.10",
        "Total excl. VAT €1,345.48",
        "VAT 20% €269.10",
        "Total incl. VAT €1,614.58",
        "Credit applied -€100.00",
        "Amount due €1,514.58",
        "Payment within 30 days of the invoice date, by Aug 9, 2024 at the latest.",
        "No discount for early payment.",
        "Fixed indemnity for recovery costs in case of late payment: €40.00",
    )
    assert REVERSE_CHARGE["en"] not in invoice_en
    assert "Status" not in invoice_en and "paid" not in invoice_en


def test_other_locales_render_in_english():
    german = text(invoice(), locale="de_DE")
    contains(german, "Invoice", "Total incl. VAT €1,614.58", "Issue date Jul 10, 2024")
    canadian = text(invoice(), locale="fr-CA")
    contains(canadian, "Facture", "Total TTC 1 614,58 €")


def test_paid_invoice_and_invoice_that_adds_credit():
    paid = invoice(auto_pay=True)  # auto-pay without a token: its charge is recorded with it
    contains(
        text(paid, locale="fr", paid_on_issue=True),
        "Statut Payée",
        "Facture acquittée à son émission, le 10 juil. 2024.",
    )
    contains(
        text(paid, locale="en", paid_on_issue=True),
        "Status Paid",
        "This invoice was paid when it was issued, on Jul 10, 2024.",
    )
    settled_by_credit = text(invoice(credit="2000.00"), locale="en")  # nothing was due
    contains(settled_by_credit, "Amount due €0.00", "Status Paid", "paid when it was issued")
    negative = invoice((proration_credit(),), credit="50.00")
    fr, en = text(negative, locale="fr"), text(negative, locale="en")
    contains(fr, "Total TTC -125,42 €", "Crédit ajouté à votre compte 125,42 €")
    contains(fr, "Net à payer 0,00 €", "il n'y a rien à payer")
    contains(en, "Credit added to your account €125.42", "Amount due €0.00")
    assert "Crédit appliqué" not in fr
    # nothing was paid: its status says so, not "paid"
    contains(fr, "Statut Rien à payer (crédit ajouté)")
    contains(en, "Status Nothing to pay (credit added)")
    assert "Payée" not in fr and "Status Paid" not in en


def test_an_invoice_renders_as_issued_whatever_its_status_now():
    """Its status is what it is at rendering (paid or voided later): never printed. Only
    ``paid_on_issue``, a fact at issue that the store keeps, makes it read "paid"."""
    issued = invoice()
    for locale in ("fr", "en"):
        as_issued = render_document(issued, seller=SELLER, buyer=BUYER_FR, locale=locale)
        for later in (issued.paid(), issued.voided()):
            again = render_document(later, seller=SELLER, buyer=BUYER_FR, locale=locale)
            assert again == as_issued
        flagged = render_document(
            issued, seller=SELLER, buyer=BUYER_FR, locale=locale, paid_on_issue=True
        )
        assert flagged != as_issued
    # an auto-pay invoice's own status ("paid") is not read either: the caller says it
    assert "Payée" not in text(invoice(auto_pay=True), locale="fr")


def test_unit_price_only_for_quantity_times_price_and_share_without_explanation():
    flat_price = replace(recurring(), description="Flat × 5", amount=eur("290.00"))
    half = replace(
        proration_credit(),
        quantity=5,
        unit_price=Decimal("290.00"),
        fraction=Fraction(1, 2),
        amount=eur("-725.00"),
        explanation="",
    )
    odd = replace(recurring(), unit_price=Decimal("0.125"), quantity=8, amount=eur("1.00"))
    rendered = text(invoice((flat_price, half, odd), credit="0"), locale="en")
    # a flat price with a quantity: no unit price, only the amount
    contains(rendered, "Flat × 5 Period: Jul 6, 2024 to Aug 5, 2024 inclusive 5 €290.00 Temps")
    contains(rendered, "Prorated: 0.5 of the period 5 €290.00 -€725.00", "8 €0.125 €1.00")


def test_payment_terms_follow_the_days_and_the_sellers_country():
    immediate = text(invoice(), locale="en", payment_terms_days=0)
    contains(immediate, "Due date Jul 10, 2024", "Payment on receipt of the invoice")
    foreign = replace(SELLER, country="BE", siren=None, vat_id="BE0123456789")
    belgian = text(invoice(), locale="fr", seller=foreign)
    contains(belgian, "Belgique", "Paiement à 30 jours date de facture")
    assert "40,00 €" not in belgian and "SIREN" not in belgian


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_credit_note_says_what_it_corrects_and_where_the_credit_went(locale):
    account = text(credit_note(credited_to="account"), locale=locale)
    refund = text(credit_note(credited_to="refund"), locale=locale)
    on_invoice = text(credit_note(credited_to="invoice"), locale=locale)
    if locale == "fr":
        contains(account, "Avoir", "Numéro AV-2024-0007", "Facture corrigée F-2024-0040")
        contains(account, "Avoir sur la facture F-2024-0040")
        contains(account, "4 30,00 € 104,52 €", "Total TTC 125,42 €")
        contains(account, "Montant crédité sur le solde de votre compte")
        contains(refund, "Montant remboursé sur votre moyen de paiement.")
        contains(on_invoice, "Montant déduit de la facture F-2024-0040.")
    else:
        contains(account, "Credit note", "Number AV-2024-0007", "Corrected invoice F-2024-0040")
        contains(account, "Credit note for invoice F-2024-0040", "Total incl. VAT €125.42")
        contains(account, "Credited to your account balance")
        contains(refund, "Refunded to your payment method.")
        contains(on_invoice, "Deducted from invoice F-2024-0040.")
    for rendered in (account, refund, on_invoice):
        assert "Due date" not in rendered and "Date d'échéance" not in rendered
        assert "-104" not in rendered  # a credit note's amounts are positive


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize(
    ("rate", "buyer", "shown"),
    [
        ("0", BUYER_DE, True),
        ("20", BUYER_DE, False),
        ("0", BUYER_FR, False),
        ("0", replace(BUYER_DE, vat_id=None), False),
        ("0", BUYER_US, False),
    ],
)
def test_reverse_charge_mention_only_when_it_applies(locale, rate, buyer, shown):
    rendered = text(invoice(rate=rate), buyer=buyer, locale=locale)
    assert (REVERSE_CHARGE[locale] in rendered) is shown
    if shown:
        contains(rendered, "Allemagne" if locale == "fr" else "Germany", "DE123456789")


def test_reverse_charge_on_a_credit_note():
    rendered = text(credit_note(rate="0"), buyer=BUYER_DE, locale="en")
    contains(rendered, REVERSE_CHARGE["en"], "VAT 0% €0.00")


def test_long_invoices_break_pages_and_keep_the_totals():
    lines = tuple(replace(recurring(), description=f"Seat bundle {i} × 5") for i in range(45))
    doc = invoice(lines, credit="0")
    pdf = render_document(doc, seller=SELLER, buyer=BUYER_FR, locale="en")
    count = pages(pdf)
    assert count >= 2
    rendered = pdf_text(pdf)
    contains(
        rendered,
        f"Invoice F-2024-0042 · Page {count}/{count}",
        "Seat bundle 44 × 5",
        "Total excl. VAT €65,250.00",
    )
    assert rendered.count("Description Qty") == count  # the headings repeat on each page
    assert list(attachments(pdf)) == ["factur-x.xml"]


def test_rendering_is_deterministic():
    for doc, locale in ((invoice(), "fr"), (credit_note(), "en")):
        first = render_document(doc, seller=SELLER, buyer=BUYER_FR, locale=locale)
        second = render_document(doc, seller=SELLER, buyer=BUYER_FR, locale=locale)
        assert first == second
        assert first.startswith(b"%PDF-1.7")
    again = render_document(invoice(), seller=SELLER, buyer=BUYER_FR, locale="en")
    assert again != first  # and a different document does differ


def test_rendering_does_not_depend_on_the_machines_zone(monkeypatch):
    naive = replace(invoice(), issued_at=datetime(2024, 7, 10, 7, 30))  # taken as UTC
    rendered = {}
    for zone in ("UTC", "America/New_York", "Asia/Tokyo"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        rendered[zone] = {
            render_document(doc, seller=SELLER, buyer=BUYER_FR, locale="fr")
            for doc in (invoice(), naive)
        }
    monkeypatch.undo()
    time.tzset()
    assert rendered["UTC"] == rendered["America/New_York"] == rendered["Asia/Tokyo"]


def test_rendering_from_several_threads_gives_the_same_bytes():
    docs = [(invoice(), "fr"), (credit_note(), "en")]
    expected = [render_document(d, seller=SELLER, buyer=BUYER_FR, locale=lo) for d, lo in docs]

    def render(i: int) -> bytes:
        doc, locale = docs[i % 2]
        return render_document(doc, seller=SELLER, buyer=BUYER_FR, locale=locale)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(render, range(6)))
    assert results == [expected[i % 2] for i in range(6)]


def receipt(locale: str, method: str | None = "sepa_debit") -> bytes:
    doc = invoice()
    return render_receipt(
        receipt_number="RCT-000012",
        paid_at=at(2024, 7, 12, 14, 3),
        amount=doc.amount_due,
        method=method,
        invoice=doc,
        seller=SELLER,
        buyer=BUYER_FR,
        locale=locale,
    )


def test_receipts_in_french_and_english():
    fr, en = pdf_text(receipt("fr")), pdf_text(receipt("en"))
    contains(
        fr,
        "Reçu de paiement",
        "Reçu n° RCT-000012",
        "Date du paiement 12 juil. 2024",
        "Facture réglée F-2024-0042",
        "Total de la facture TTC 1 614,58 €",
        "Moyen de paiement Prélèvement SEPA",
        "Montant payé 1 514,58 €",
        "Nous accusons réception de votre paiement de 1 514,58 € le 12 juil. 2024",
        "SIREN : 807 437 595",
        "Agence Durand",
    )
    contains(
        en,
        "Payment receipt",
        "Receipt no. RCT-000012",
        "Payment date Jul 12, 2024",
        "Invoice paid F-2024-0042",
        "Payment method SEPA Direct Debit",
        "Amount paid €1,514.58",
        "We acknowledge receipt of your payment of €1,514.58 on Jul 12, 2024",
    )
    contains(pdf_text(receipt("en", method=None)), "Payment method –")
    contains(pdf_text(receipt("en", method="wire_custom")), "Payment method wire custom")


def test_receipts_are_plain_deterministic_pdfs():
    first, second = receipt("fr"), receipt("fr")
    assert first == second
    assert attachments(first) == {}


def settled_receipt(locale: str) -> str:
    """A receipt of 300.00 on an invoice of 1,514.58 due that a credit note of 514.58 and
    an earlier payment of 600.00 had taken down: 100.00 left after it."""
    doc = invoice()
    settlement = Settlement(
        amount_due=doc.amount_due,
        credited=eur("514.58"),
        paid_before=eur("600.00"),
        paid=eur("300.00"),
        left=eur("100.00"),
    )
    return pdf_text(
        render_receipt(
            receipt_number="RCT-000013",
            paid_at=at(2024, 7, 20, 10),
            amount=eur("300.00"),
            method="card",
            invoice=doc,
            seller=SELLER,
            buyer=BUYER_FR,
            locale=locale,
            settlement=settlement,
        )
    )


def test_a_receipt_says_what_was_left_to_pay_after_it():
    contains(
        settled_receipt("fr"),
        "Total de la facture TTC 1 614,58 €",
        "Montant dû sur la facture 1 514,58 €",  # after the account credit applied on issue
        "Avoirs déduits de la facture -514,58 €",
        "Paiements antérieurs -600,00 €",
        "Montant payé 300,00 €",
        "Reste à payer après ce paiement 100,00 €",
    )
    contains(
        settled_receipt("en"),
        "Invoice total incl. VAT €1,614.58",
        "Amount due on the invoice €1,514.58",
        "Credit notes deducted from the invoice -€514.58",
        "Earlier payments -€600.00",
        "Amount paid €300.00",
        "Left to pay after this payment €100.00",
    )


def test_a_receipt_of_the_whole_amount_due_says_nothing_is_left():
    doc = invoice(credit="0")  # no credit applied: the amount due is the total
    whole = Settlement(doc.amount_due, eur("0"), eur("0"), doc.amount_due, eur("0"))
    text = pdf_text(
        render_receipt(
            receipt_number="RCT-000014",
            paid_at=at(2024, 7, 12),
            amount=doc.amount_due,
            method="card",
            invoice=doc,
            seller=SELLER,
            buyer=BUYER_FR,
            locale="en",
            settlement=whole,
        )
    )
    contains(text, "Amount paid €1,614.58", "Left to pay after this payment €0.00")
    for absent in ("Amount due on the invoice", "Credit notes deducted", "Earlier payments"):
        assert absent not in text
