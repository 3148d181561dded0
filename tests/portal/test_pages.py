"""The portal's pages without a browser: CSRF, labels on every form control, no page showing
another account's data, the back office (amend on behalf, credit notes, audit trail), the
cart, licence orders, the login, and the catalogues."""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from sqlalchemy import select

from prorata.adapters import schema as t
from prorata.services import documents, subscriptions
from prorata.web.portal import i18n
from tests.portal.conftest import CSRF, system

LANGUAGES = ["fr", "en"]
REPO = Path(__file__).resolve().parents[2]


class Forms(HTMLParser):
    """Form controls, labels and links of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict] = []
        self.labels: set[str] = set()
        self.links: list[str] = []
        self.inside_label = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self.inside_label += 1
            if attrs.get("for"):
                self.labels.add(attrs["for"])
        if tag in ("input", "select", "textarea"):
            kind = attrs.get("type", "text")
            if kind not in ("hidden", "submit", "button"):
                self.controls.append(attrs | {"tag": tag, "wrapped": self.inside_label > 0})
        if tag == "a" and attrs.get("href", "").startswith("/portal"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "label":
            self.inside_label -= 1


def parse(html: str) -> Forms:
    forms = Forms()
    forms.feed(html)
    return forms


def crawl(client, start: str = "/portal/", limit: int = 80) -> dict[str, str]:
    """Every portal page reachable by links from ``start`` (GET only)."""
    seen: dict[str, str] = {}
    queue = deque([start])
    while queue and len(seen) < limit:
        path = queue.popleft()
        if path in seen or "/language/" in path or path.endswith("/pdf"):
            continue
        answer = client.get(path)
        seen[path] = answer.text
        assert answer.status_code in (200, 303), (path, answer.status_code)
        for link in parse(answer.text).links:
            if link not in seen:
                queue.append(link)
    return seen


# CSRF and the login --------------------------------------------------------------------------


def test_every_post_needs_the_session_csrf_token(portal):
    client = portal.login("owner@hotel.example")
    body = {"key": "k1"}
    assert client.post("/portal/products/pms-hotel/cancel", data=body).status_code == 403
    wrong = body | {"csrf": "0" * 64}
    assert client.post("/portal/products/pms-hotel/cancel", data=wrong).status_code == 403
    assert "pms-hotel" not in str(
        subscriptions.get_subscription(
            portal.engine, system(portal.engine, "chetspms-plans"), "pms-hotel", at=portal.clock.now
        )["cancel_at"]
    )
    token = portal.csrf()
    ok = client.post(
        "/portal/products/pms-hotel/cancel", data=body | {"csrf": token}, follow_redirects=False
    )
    assert ok.status_code == 303
    header = client.post(
        "/portal/products/pms-hotel/undo",
        data={"key": "k2"},
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert header.status_code == 303


def test_the_login_form_has_its_own_csrf_token_and_a_session_cookie_samesite_lax(portal):
    client = portal.client
    client.cookies.clear()
    refused = client.post(
        "/portal/login", data={"email": "owner@hotel.example", "password": "prorata-demo"}
    )
    assert refused.status_code == 403
    page = client.get("/portal/login")
    token = CSRF.search(page.text).group(1)
    answer = client.post(
        "/portal/login",
        data={"email": "owner@hotel.example", "password": "prorata-demo", "csrf": token},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "prorata_session=prs_" in cookie and "httponly" in cookie and "samesite=lax" in cookie


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_wrong_password_is_refused_in_the_reader_language(portal, language):
    client = portal.client
    client.cookies.clear()
    client.cookies.set("prorata_lang", language)
    token = CSRF.search(client.get("/portal/login").text).group(1)
    for email in ("owner@hotel.example", "nobody@nowhere.example"):
        answer = client.post(
            "/portal/login", data={"email": email, "password": "wrong-password", "csrf": token}
        )
        assert answer.status_code == 401
        expected = "mot de passe erroné" if language == "fr" else "wrong password"
        assert expected in answer.text


def test_pages_need_a_session_and_redirects_stay_in_the_portal(portal):
    portal.client.cookies.clear()
    answer = portal.client.get("/portal/billing", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login")
    portal.client.cookies.set("prorata_lang", "en")
    evil = portal.client.get(
        "/portal/language/fr?next=https://evil.example/", follow_redirects=False
    )
    assert evil.headers["location"] == "/portal/"


# accessibility --------------------------------------------------------------------------------

USERS = [
    "owner@boulangerie.example",
    "billing@helpdesk.example",
    "owner@agence.example",
    "owner@devshop.example",
    "owner@hotel.example",
    "member@helpdesk.example",
    "support@gotoassist-seats.example",
    "manager@aircall-contract.example",
]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_form_control_has_a_label_and_actions_are_buttons(portal, language):
    pages = {}
    for email in USERS:
        client = portal.login(email, language)
        pages |= crawl(client)
        for extra in (
            "/portal/products/support-seats/change?tier=2&quantity=4",
            "/portal/products/support-seats/checkout?tier=2&quantity=4",
            "/portal/products/order-1001/change?plan=total-net-sb",
            "/portal/login",
        ):
            pages[extra] = client.get(extra).text
    assert len(pages) > 25
    for path, html in pages.items():
        forms = parse(html)
        for control in forms.controls:
            labelled = (
                control.get("id") in forms.labels or control["wrapped"] or control.get("aria-label")
            )
            assert labelled, (path, control)
        assert "onclick=" not in html and 'role="button"' not in html, path
        assert f'<html lang="{language}">' in html, path


# no page reveals another account's data ------------------------------------------------------


def test_no_page_reveals_another_accounts_data(portal):
    """devshop and studio are two accounts of one seller (seed 001): the order, invoices,
    receipts, users and name of one never appear on the other's pages, and their addresses
    answer « not found » like ids that do not exist."""
    engine, now = portal.engine, portal.clock.now
    tenant = system(engine, "groupdocs-licence")
    theirs = documents.list_documents(engine, tenant, at=now, account="studio")["items"]
    payments = documents.list_payments(engine, tenant, at=now, account="studio")["items"]
    assert theirs and payments
    secrets = ["order-1002", "Studio North", "studio.example", "total-java-oem"]
    secrets += [d["number"] for d in theirs] + [p["receipt"] for p in payments]
    mine = documents.list_documents(engine, tenant, at=now, account="devshop")["items"]
    secrets = [s for s in secrets if s not in {d["number"] for d in mine}]
    client = portal.login("owner@devshop.example", "en")
    pages = crawl(client)
    assert "/portal/products/order-1001" in pages and "/portal/billing" in pages
    for path, html in pages.items():
        for secret in secrets:
            if secret == "total-java-oem":  # a catalogue plan may be named, not as held
                assert "order-1002" not in html
                continue
            assert secret not in html, (path, secret)
    probes = [
        "/portal/products/order-1002",
        "/portal/products/order-1002/change",
        "/portal/products/order-1002/seats",
        "/portal/products/site-web",  # another seller's subscription
        f"/portal/receipts/{payments[0]['id']}",
        f"/portal/receipts/{payments[0]['id']}/pdf",
        "/portal/backoffice",
    ]
    for number in {d["number"] for d in theirs} - {d["number"] for d in mine}:
        probes += [f"/portal/invoices/{number}", f"/portal/invoices/{number}/pdf"]
    for probe in probes:
        answer = client.get(probe)
        assert answer.status_code in (403, 404), probe
        main = answer.text.split("<main", 1)[1]  # the header's language links echo the URL
        assert "Studio North" not in main and "studio.example" not in main
        # exactly what an id that does not exist reads (the id asked for is echoed)
        ghost = probe.replace("order-1002", "order-9999").replace("site-web", "site-9999")
        ghost = re.sub(r"(INV-|receipts/)(\d+)", lambda m: m.group(1) + "9" + m.group(2), ghost)
        other = client.get(ghost)
        assert other.status_code == answer.status_code, probe


# the back office -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_account_manager_amends_on_behalf_audited(portal, language):
    """Seed 002: the account manager adds users to the customer's contract; the audit trail
    shows who did it, in which role, on whose behalf."""
    client = portal.login("manager@aircall-contract.example", language)
    page = client.get("/portal/products/standard/checkout?quantity=12")
    assert page.status_code == 200
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    version = re.search(r'name="version" value="([^"]+)"', page.text).group(1)
    answer = client.post(
        "/portal/products/standard/checkout",
        data={
            "csrf": portal.csrf("/portal/backoffice"),
            "key": key,
            "version": version,
            "quantity": "12",
        },
    )
    assert answer.status_code == 200 and 'data-outcome="applied"' in answer.text
    with portal.engine.connect() as connection:
        row = connection.execute(
            select(t.audit_log, t.users.c.email, t.accounts.c.key)
            .join(t.users, t.users.c.id == t.audit_log.c.actor_user_id)
            .join(t.accounts, t.accounts.c.id == t.audit_log.c.on_behalf_of)
            .where(t.audit_log.c.action == "subscription.change.applied")
        ).one()
    assert (row.email, row.actor_role, row.key) == (
        "manager@aircall-contract.example",
        "account_manager",
        "agence",
    )
    trail = client.get("/portal/backoffice/subscriptions/standard").text
    assert "manager@aircall-contract.example" in trail
    assert ("pour le compte de agence" if language == "fr" else "on behalf of agence") in trail


@pytest.mark.parametrize("language", LANGUAGES)
def test_support_issues_a_credit_note_the_customer_sees_it(portal, language):
    client = portal.login("support@aircall-contract.example", language)
    page = client.get("/portal/backoffice/subscriptions/standard").text
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)
    answer = client.post(
        "/portal/backoffice/subscriptions/standard/credit-notes",
        data={
            "csrf": CSRF.search(page).group(1),
            "key": key,
            "amount": "25,00",
            "reason": "Geste commercial",
            "refers_to": "INV-0001",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    tenant = system(portal.engine, "aircall-contract")
    note = documents.list_documents(portal.engine, tenant, at=portal.clock.now, type="credit_note")[
        "items"
    ][-1]
    assert (note["total"], note["refers_to"]) == ("30.00", "INV-0001")  # 25.00 + 20 % VAT
    credit = documents.get_credit(portal.engine, tenant, "agence", at=portal.clock.now)
    assert credit["balances"]["EUR"] == "30.00"
    customer = portal.login("owner@agence.example", language)
    assert note["number"] in customer.get("/portal/billing").text
    forbidden = customer.post(
        "/portal/backoffice/subscriptions/standard/credit-notes",
        data={"csrf": portal.csrf(), "key": "x", "amount": "1", "reason": "x"},
    )
    assert forbidden.status_code == 403


def test_customers_cannot_open_the_back_office_or_decide(portal):
    client = portal.login("owner@boulangerie.example")
    assert client.get("/portal/backoffice").status_code == 403
    answer = client.post(
        "/portal/backoffice/requests/1/approve", data={"csrf": portal.csrf(), "key": "x"}
    )
    assert answer.status_code == 403


def test_members_see_but_cannot_change(portal):
    client = portal.login("member@helpdesk.example")
    product = client.get("/portal/products/support-seats").text
    assert "/change" not in product and "/cancel" not in product
    assert client.get("/portal/products/support-seats/change").status_code == 403


# the cart, seats and licence orders -------------------------------------------------------------


def test_cart_combines_changes_into_one_order(portal):
    """Seed 004: with items in the cart, « Ajouter au panier » replaces « Passer à la caisse »;
    the cart's checkout is one order."""
    engine, now = portal.engine, portal.clock.now
    subscriptions.subscribe(
        engine,
        system(engine, "gotoassist-seats"),
        account="helpdesk",
        plan="standard-monthly",
        subscription="support-seats-2",
        quantity=2,
        at=now,
    )
    client = portal.login("billing@helpdesk.example")
    token = portal.csrf()
    first = client.post(
        "/portal/cart/items",
        data={"csrf": token, "subscription": "support-seats", "quantity": "4"},
        follow_redirects=False,
    )
    assert first.status_code == 303
    wizard = client.get("/portal/products/support-seats-2/change?quantity=3").text
    assert "/checkout?" not in wizard and "Add to cart" in wizard
    client.post(
        "/portal/cart/items",
        data={"csrf": token, "subscription": "support-seats-2", "quantity": "3"},
    )
    cart = client.get("/portal/cart").text
    assert "support-seats-2" in cart and "Total due today" in cart
    key = re.search(r'name="key" value="([^"]+)"', cart).group(1)
    done = client.post("/portal/cart/checkout", data={"csrf": token, "key": key})
    assert done.text.count('data-outcome="applied"') == 2
    with engine.connect() as connection:
        items = connection.execute(select(t.order_items.c.order_id)).scalars().all()
    assert len(items) == 2 and len(set(items)) == 1


def test_seats_are_given_to_users_and_released(portal):
    client = portal.login("billing@helpdesk.example")
    members = {
        m: i
        for i, m in re.findall(
            r'<option value="(\d+)">([^<]+)</option>',
            client.get("/portal/products/support-seats/seats").text,
        )
    }
    user = members["member@helpdesk.example"]
    token = portal.csrf()
    client.post("/portal/products/support-seats/seats", data={"csrf": token, "user": user})
    page = client.get("/portal/products/support-seats/seats").text
    assert 'data-seats="1/3"' in page
    client.post("/portal/products/support-seats/seats/release", data={"csrf": token, "user": user})
    assert 'data-seats="0/3"' in client.get("/portal/products/support-seats/seats").text


@pytest.mark.parametrize("language", LANGUAGES)
def test_licence_order_upgrade_and_cross_platform_refusal(portal, language):
    """Seed 001: an order moves to the suite for the difference; another platform is
    refused with the reason and what to do."""
    client = portal.login("owner@devshop.example", language)
    java = client.get("/portal/products/order-1001/change?plan=total-java-oem").text
    assert 'data-refusal="cross_product_upgrade"' in java
    page = client.get("/portal/products/order-1001/checkout?plan=total-net-sb").text
    assert 'data-total-due="2000.00"' in page  # 2999 − 999 credited
    key = re.search(r'name="key" value="([^"]+)"', page).group(1)
    version = re.search(r'name="version" value="([^"]+)"', page).group(1)
    done = client.post(
        "/portal/products/order-1001/checkout",
        data={
            "csrf": portal.csrf(),
            "key": key,
            "version": version,
            "plan": "total-net-sb",
            "payment_method": "card",
        },
    )
    assert 'data-outcome="applied"' in done.text
    sub = subscriptions.get_subscription(
        portal.engine,
        system(portal.engine, "groupdocs-licence"),
        "order-1001",
        at=portal.clock.now,
    )
    assert sub["plan"] == "total-net-sb"


# languages ----------------------------------------------------------------------------------------


def test_catalogues_are_complete_in_french_and_english():
    extracted = {
        message[2]
        for message in extract_from_dir(
            str(REPO),
            method_map=[
                ("prorata/web/portal/**.py", "python"),
                ("prorata/web/templates/**.html", "jinja2"),
            ],
            options_map={"prorata/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        )
    }
    assert len(extracted) > 200
    placeholder = re.compile(r"%\(\w+\)s")
    for language in ("fr", "en"):
        path = i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            catalog = {m.id: m.string for m in read_po(handle) if m.id}
        missing = [m for m in extracted if not catalog.get(m)]
        assert missing == [], (language, missing[:5])
        for msgid, text in catalog.items():
            assert sorted(placeholder.findall(msgid)) == sorted(placeholder.findall(text))


def test_amounts_and_dates_follow_the_locale():
    assert i18n.money("150.00", "CAD", i18n.format_locale("fr", "CA")) == "150,00\xa0$"
    assert i18n.money("150.00", "USD", i18n.format_locale("en", "US")) == "$150.00"
    assert i18n.day("2022-11-01T00:00:00-04:00", "fr_CA", "long") == "1 novembre 2022"
    assert i18n.day("2022-11-01T00:00:00-04:00", "en_US") == "Nov 1, 2022"
    assert i18n.last_day("2022-12-01T00:00:00-05:00", "en_US") == "Nov 30, 2022"
    assert i18n.format_locale("fr", "US") == "fr"
