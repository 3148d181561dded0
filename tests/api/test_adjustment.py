"""Chargebee's adjustment credit note through the API, on SQLite and PostgreSQL: the
invoice's view says what it still asks for, and paying it charges that; its PDF stays as
issued, the payment's receipt says what the note and the payment took off it."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from pypdf import PdfReader

from prorata.scenario.loader import parse_scenario
from prorata.scenario.on_store import load_tenant
from prorata.services import subscriptions
from prorata.services.access import Principal
from prorata.services.credentials import SCOPES, issue_token

SCENARIO = """\
currency: USD
timezone: America/New_York
policy: chargebee
catalog:
  products:
    - id: app
      plans:
        - {id: silver, tier: 1, period: monthly, price: "15.00"}
        - {id: gold, tier: 2, period: monthly, price: "30.00"}
accounts:
  - {id: cus, locale: en, auto_pay: true}
events: []
"""
ZONE = ZoneInfo("America/New_York")


def test_an_adjusted_invoice_shows_and_is_paid_what_it_still_asks_for(engine):
    from prorata.web.app import create_app

    scenario = parse_scenario(SCENARIO)
    now = datetime(2024, 4, 5, 10, tzinfo=ZONE)
    tenant = load_tenant(engine, scenario, slug=f"cb-adjust-{id(engine)}")
    with engine.begin() as connection:
        token = issue_token(connection, tenant, name="all", scopes=list(SCOPES), now=now)
    robot = Principal(tenant, kind="token")
    app = create_app(engine, clock=lambda: now)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        # collected through a gateway token: the invoice stays open until the card is charged
        put = client.put(
            "/v1/accounts/cus/payment-method",
            json={"type": "card", "token": "sandbox:card:succeeds"},
            headers=headers,
        )
        assert put.status_code == 200, put.text
        start = datetime(2024, 4, 1, tzinfo=ZONE)
        subscriptions.subscribe(
            engine, robot, subscription="s1", account="cus", plan="gold", billing_day=1, at=start
        )
        done = subscriptions.checkout(
            engine, robot, [subscriptions.ChangeInput("s1", plan="silver")], at=now
        )
        docs = done["items"][0]["documents"]
        kinds = [(d["type"], d["number"], d.get("credited_to")) for d in docs]
        assert kinds == [("credit_note", "CN-0001", "invoice"), ("invoice", "INV-0002", None)]
        first = client.get("/v1/invoices/INV-0001", headers=headers).json()
        # as issued, unchanged; what it still asks for, derived
        assert (first["amount_due"], first["outstanding"], first["status"]) == (
            "30.00",
            "4.00",
            "open",
        )
        listed = client.get("/v1/invoices", headers=headers).json()["items"]
        assert [(d["number"], d["outstanding"]) for d in listed] == [
            ("INV-0001", "4.00"),
            ("INV-0002", "13.00"),
        ]
        note = client.get("/v1/credit-notes/CN-0001", headers=headers).json()
        assert (note["refers_to"], note["credited_to"], note["total"]) == (
            "INV-0001",
            "invoice",
            "26.00",
        )
        credit = client.get("/v1/accounts/cus/credit", headers=headers).json()
        assert credit["entries"] == [], credit  # an adjustment adds nothing to the ledger
        paid = client.post("/v1/invoices/INV-0001/pay", headers=headers)
        assert paid.json()["outcome"] == "succeeded", paid.text
        after = client.get("/v1/invoices/INV-0001", headers=headers).json()
        assert (after["status"], after["outstanding"]) == ("paid", "0.00")
        assert [(p["amount"], p["status"]) for p in after["payments"]] == [("4.00", "succeeded")]

        # the invoice's PDF is the invoice as issued; the receipt states what was left
        issued = text_of(client.get("/v1/invoices/INV-0001/pdf", headers=headers).content)
        assert "Amount due $30.00" in issued
        (charge,) = [
            p
            for p in client.get("/v1/payments?account=cus", headers=headers).json()["items"]
            if p["invoice"] == "INV-0001" and p["status"] == "succeeded"
        ]
        receipt = client.get(f"/v1/payments/{charge['id']}/receipt/pdf", headers=headers)
        assert receipt.status_code == 200, receipt.text
        read = text_of(receipt.content)
        for figure in (
            "Invoice total incl. VAT $30.00",
            "Credit notes deducted from the invoice -$26.00",
            "Amount paid $4.00",
            "Left to pay after this payment $0.00",
        ):
            assert figure in read, (figure, read)
        assert "Earlier payments" not in read
        # stored once; served again, the same bytes
        again = client.get(f"/v1/payments/{charge['id']}/receipt/pdf", headers=headers)
        assert again.content == receipt.content


def text_of(content: bytes) -> str:
    """The PDF's text, every run of spaces (Babel's no-break ones too) as one space."""
    pages = PdfReader(io.BytesIO(content)).pages
    return " ".join(" ".join(page.extract_text() for page in pages).replace("\xa0", " ").split())
