"""The customers' journeys in a real browser (Debian's Chromium through Playwright), each in
French and in English, over the demo tenants (one per seed). Each asserts what the journey
changed in the database: documents and their amounts, request states, audit rows."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from prorata.adapters import schema as t
from prorata.services import documents, renderings, requests, subscriptions
from prorata.services.subscriptions import ChangeInput
from prorata.web.portal import i18n
from tests.portal.conftest import system

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LANGUAGES = ["fr", "en"]


def words(language: str, fr: str, en: str) -> str:
    return fr if language == "fr" else en


def docs_of(engine, account: str, type_: str | None = None):
    query = (
        select(t.documents)
        .join(t.accounts, t.accounts.c.id == t.documents.c.account_id)
        .where(t.accounts.c.key == account)
        .order_by(t.documents.c.id)
    )
    if type_:
        query = query.where(t.documents.c.type == type_)
    with engine.connect() as connection:
        return connection.execute(query).all()


def audit_rows(engine, action: str):
    with engine.connect() as connection:
        return connection.execute(
            select(t.audit_log, t.users.c.email)
            .outerjoin(t.users, t.users.c.id == t.audit_log.c.actor_user_id)
            .where(t.audit_log.c.action == action)
            .order_by(t.audit_log.c.id)
        ).all()


def sub_state(engine, slug: str, key: str, at) -> dict:
    return subscriptions.get_subscription(engine, system(engine, slug), key, at=at)


def open_change(page, language: str) -> None:
    page.get_by_role(
        "link", name=words(language, "Mes produits & services", "My products & services")
    ).first.click()
    page.locator("table.list a").first.click()
    page.get_by_role("link", name=words(language, "Mise à niveau", "Upgrade"), exact=True).click()


@pytest.mark.parametrize("language", LANGUAGES)
def test_upgrade_with_payment(open_page, site, language):
    """Seed 004: the billing contact raises the tier and the seats; the checkout asks how
    they pay (PayPal chosen) and a VAT number; the invoice is the summary's total, paid."""
    page = open_page("billing@helpdesk.example", language)
    open_change(page, language)
    page.get_by_label("Premium").check()
    page.get_by_label(words(language, "Nombre de postes", "Number of seats")).fill("5")
    page.get_by_role(
        "button", name=words(language, "Voir le récapitulatif", "Show the order summary")
    ).click()
    total = page.locator("[data-total-due]").get_attribute("data-total-due")
    assert total == "126.67"  # 20/30 of a month: 5 × 65 − 3 × 45
    page.get_by_role("link", name=words(language, "Passer à la caisse", "Checkout")).click()
    page.get_by_label(words(language, "Mode de paiement", "Payment method")).select_option("paypal")
    page.get_by_label(words(language, "Numéro de TVA (facultatif)", "VAT number (optional)")).fill(
        "FR40303265045"
    )
    page.get_by_role("button", name=words(language, "Passer la commande", "Place order")).click()
    page.wait_for_selector("[data-outcome=applied]")
    assert "INV-0003" in page.content()
    invoice = docs_of(site.engine, "helpdesk", "invoice")[-1]
    assert (invoice.number, invoice.total_minor, invoice.status) == ("INV-0003", 12667, "paid")
    with site.engine.connect() as connection:
        payment = connection.execute(
            select(t.payments).where(t.payments.c.document_id == invoice.id)
        ).one()
        account = connection.execute(select(t.accounts).where(t.accounts.c.key == "helpdesk")).one()
    assert (payment.amount_minor, payment.method) == (12667, "paypal")
    assert (account.payment_method, account.vat_id) == ("paypal", "FR40303265045")
    sub = sub_state(site.engine, "gotoassist-seats", "support-seats", site.clock.now)
    assert (sub["plan"], sub["quantity"]) == ("premium-monthly", 5)
    assert audit_rows(site.engine, "account.billing_details")[-1].actor_role == "billing_contact"


@pytest.mark.parametrize("language", LANGUAGES)
def test_reduction_refused_for_notice(open_page, site, language):
    """Seed 002: 17 days before the contract renews, fewer users is refused (30 days'
    notice), in the reader's language, with what to do instead; nothing is billed."""
    site.clock.now = datetime(2027, 5, 20, 10, tzinfo=UTC)
    before = len(docs_of(site.engine, "agence"))
    page = open_page("owner@agence.example", language)
    open_change(page, language)
    page.get_by_label(words(language, "Nombre de postes", "Number of seats")).fill("8")
    page.get_by_role(
        "button", name=words(language, "Voir le récapitulatif", "Show the order summary")
    ).click()
    refusal = page.locator("[data-refusal=notice_period_passed]")
    refusal.wait_for()  # the summary page, once it has loaded (is_visible does not wait)
    text = refusal.inner_text()
    assert words(language, "30 jours", "30 days") in text
    assert words(language, "gestionnaire de compte", "account manager") in text
    assert (
        page.get_by_role("link", name=words(language, "Passer à la caisse", "Checkout")).count()
        == 0
    )
    assert len(docs_of(site.engine, "agence")) == before


@pytest.mark.parametrize("language", LANGUAGES)
def test_seat_reduction_with_credit(open_page, site, language):
    """Seed 004: seats cut online; the unused time becomes account credit."""
    page = open_page("billing@helpdesk.example", language)
    open_change(page, language)
    page.get_by_label(words(language, "Nombre de postes", "Number of seats")).fill("2")
    page.get_by_role(
        "button", name=words(language, "Voir le récapitulatif", "Show the order summary")
    ).click()
    assert page.locator("[data-credit-added]").get_attribute("data-credit-added") == "30.00"
    page.get_by_role("link", name=words(language, "Passer à la caisse", "Checkout")).click()
    place_order = page.get_by_role(
        "button", name=words(language, "Passer la commande", "Place order")
    )
    place_order.wait_for()  # the checkout page, once it has loaded
    assert page.get_by_label(words(language, "Mode de paiement", "Payment method")).count() == 0
    place_order.click()
    page.wait_for_selector("[data-outcome=applied]")
    invoice = docs_of(site.engine, "helpdesk", "invoice")[-1]
    assert (invoice.total_minor, invoice.credit_added_minor) == (-3000, 3000)
    credit = documents.get_credit(
        site.engine, system(site.engine, "gotoassist-seats"), "helpdesk", at=site.clock.now
    )
    assert credit["balances"]["USD"] == "30.00"
    page.get_by_role("link", name=words(language, "Facturation", "Billing")).click()
    assert page.locator("[data-credit]").first.get_attribute("data-credit") == "30.00"
    # the invoice of the cut asked for nothing: its status says so, not "paid"
    row = page.get_by_role("row").filter(has_text=invoice.number)
    assert row.locator(".badge").text_content() == words(
        language, "Rien à payer (crédit ajouté)", "Nothing to pay (credit added)"
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_cancellation_at_period_end(open_page, site, language):
    """Seed 003: « Se désabonner » from the billing module; access to the end of the period."""
    page = open_page("owner@hotel.example", language)
    page.get_by_role("link", name=words(language, "Facturation", "Billing")).click()
    page.get_by_role("link", name=words(language, "Se désabonner", "Unsubscribe")).click()
    page.get_by_role("button", name=words(language, "Se désabonner", "Unsubscribe")).click()
    page.wait_for_url(re.compile(r".*done=cancelled"))
    sub = sub_state(site.engine, "chetspms-plans", "pms-hotel", site.clock.now)
    assert sub["status"] == "active" and sub["cancel_at"] == sub["period_end"]
    end = datetime.fromisoformat(sub["period_end"])
    assert end.date().isoformat() == "2026-12-01"
    expected = words(language, "30 nov. 2026", "30 Nov 2026")  # the last day of access
    assert expected in page.locator("[role=status]").first.inner_text()
    assert audit_rows(site.engine, "subscription.cancel.scheduled")[-1].actor_role == "owner"


@pytest.mark.parametrize("language", LANGUAGES)
def test_tier_downgrade_approved_in_back_office(open_page, site, language):
    """Seed 004: a lower tier goes to support; support approves it in the back office and
    the customer is told."""
    engine, now = site.engine, site.clock.now
    subscriptions.checkout(
        engine,
        system(engine, "gotoassist-seats"),
        [ChangeInput("support-seats", plan="premium-monthly")],
        at=now,
    )
    page = open_page("billing@helpdesk.example", language)
    open_change(page, language)
    page.get_by_label("Standard").check()
    page.get_by_role(
        "button", name=words(language, "Voir le récapitulatif", "Show the order summary")
    ).click()
    needs_support = words(language, "Nécessite l'assistance clientèle", "Needs customer support")
    page.get_by_text(needs_support).first.wait_for()  # the summary page, once it has loaded
    assert needs_support in page.content()
    page.get_by_role("link", name=words(language, "Passer à la caisse", "Checkout")).click()
    page.get_by_role("button", name=words(language, "Passer la commande", "Place order")).click()
    page.wait_for_selector("[data-outcome=requested]")
    pending = requests.list_requests(engine, system(engine, "gotoassist-seats"), at=now)["items"]
    number = pending[-1]["number"]
    assert pending[-1]["state"] == "pending"

    support = open_page("support@gotoassist-seats.example", language)
    support.get_by_role(
        "button",
        name=words(language, f"Approuver la demande {number}", f"Approve request {number}"),
    ).click()
    support.wait_for_url(re.compile(r".*done=approve"))
    decided = requests.get_request(engine, system(engine, "gotoassist-seats"), number, at=now)
    assert decided["state"] == "approved"
    sub = sub_state(engine, "gotoassist-seats", "support-seats", now)
    assert sub["plan"] == "standard-monthly"
    approval = audit_rows(engine, "request.approve")[-1]
    assert (approval.email, approval.actor_role) == ("support@gotoassist-seats.example", "support")

    page.get_by_role("link", name="Notifications").click()
    item = page.locator(f"[data-request='{number}']")
    assert item.get_attribute("data-state") == "approved"
    assert words(language, "approuvée", "approved") in item.inner_text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_manual_setup_upgrade_completed_by_support(open_page, site, language):
    """Seed 000: an upgrade to a plan set up by hand is billed, shows « mise en service
    manuelle en cours », support completes it and the customer is notified."""
    engine, now = site.engine, site.clock.now
    page = open_page("owner@boulangerie.example", language)
    open_change(page, language)
    page.get_by_label("Business").check()
    page.get_by_role(
        "button", name=words(language, "Voir le récapitulatif", "Show the order summary")
    ).click()
    total = page.locator("[data-total-due]").get_attribute("data-total-due")
    page.get_by_role("link", name=words(language, "Passer à la caisse", "Checkout")).click()
    page.get_by_role("button", name=words(language, "Passer la commande", "Place order")).click()
    page.wait_for_selector("[data-outcome=applied]")
    invoice = docs_of(engine, "boulangerie", "invoice")[-1]
    assert invoice.amount_due_minor == int(Decimal(total) * 100) == 920  # 8/30 of 30.00 + 15 % tax
    page.get_by_role(
        "navigation", name=words(language, "Navigation principale", "Main")
    ).get_by_role(
        "link", name=words(language, "Mes produits & services", "My products & services")
    ).click()
    page.locator("table.list a").first.click()
    manual = words(language, "Mise en service manuelle en cours", "Manual setup in progress")
    page.get_by_text(manual).first.wait_for()  # the product page, once it has loaded
    number = requests.list_requests(engine, system(engine, "kajoom-hosting"), at=now)["items"][-1][
        "number"
    ]

    support = open_page("support@kajoom-hosting.example", language)
    support.get_by_role(
        "button",
        name=words(
            language,
            "Mise en service terminée : avertir le client",
            "Setup complete: notify the customer",
        ),
    ).click()
    support.wait_for_url(re.compile(r".*done=fulfil"))
    assert (
        requests.get_request(engine, system(engine, "kajoom-hosting"), number, at=now)["state"]
        == "approved"
    )
    with engine.connect() as connection:
        topics = connection.execute(select(t.outbox.c.topic)).scalars().all()
    assert "request.fulfilled" in topics

    page.get_by_role("link", name="Notifications").click()
    item = page.locator(f"[data-request='{number}']")
    assert words(language, "Votre service est prêt", "Your service is ready") in item.inner_text()


@pytest.mark.parametrize("language", LANGUAGES)
def test_document_download(open_page, site, language):
    """Seed 003: invoices and receipts to view and download from the billing module."""
    page = open_page("owner@hotel.example", language)
    page.get_by_role("link", name=words(language, "Facturation", "Billing")).click()
    with page.expect_download() as caught:
        page.get_by_role("link", name="PDF INV-0002").click()
    download = caught.value
    assert download.suggested_filename == "INV-0002.pdf"
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF")
    expected = renderings.document_pdf(
        site.engine,
        system(site.engine, "chetspms-plans"),
        "INV-0002",
        at=site.clock.now,
        type="invoice",
    )
    assert content == expected
    page.get_by_role("link", name="INV-0002", exact=True).first.click()
    expected_total = i18n.money("18.00", "EUR", i18n.format_locale(language, "FR"))
    assert page.locator("tr.grand").inner_text().endswith(expected_total)
