"""Payments over the API: a tokenised method on file, paying an open invoice now (declined,
then paid with a new method), receipts only for money received, clear refusals."""

from __future__ import annotations

from prorata.services import subscriptions
from tests.store.world import START


def _open_invoice(api, token: str, key: str = "s-pay") -> str:
    put = api.client.put(
        "/v1/accounts/corp/payment-method",
        json={"type": "card", "token": token},
        headers=api.headers("billing_contact"),
    )
    assert put.status_code == 200, put.text
    assert put.json()["on_file"] is True and "token" not in put.json()
    done = subscriptions.subscribe(
        api.world.engine,
        api.world.principals["token"],
        subscription=key,
        account="corp",
        plan="standard-monthly",
        quantity=2,
        billing_day=15,
        at=START,
    )
    (invoice,) = [d for d in done["documents"] if d["type"] == "invoice"]
    assert invoice["status"] == "open"  # collected by the gateway, not paid on issue
    return invoice["number"]


def test_a_declined_card_then_a_new_method_pays_the_invoice(api):
    number = _open_invoice(api, "sandbox:card:declined")
    owner = api.headers("owner")
    first = api.client.post(f"/v1/invoices/{number}/pay", headers=owner)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "declined"
    assert api.client.get(f"/v1/invoices/{number}", headers=owner).json()["status"] == "open"
    api.client.put(
        "/v1/accounts/corp/payment-method",
        json={"type": "paypal", "token": "sandbox:paypal:succeeds"},
        headers=owner,
    )
    second = api.client.post(f"/v1/invoices/{number}/pay", headers=owner)
    assert second.json()["outcome"] == "succeeded", second.text
    invoice = api.client.get(f"/v1/invoices/{number}", headers=owner).json()
    assert invoice["status"] == "paid"
    attempts = [(p["status"], p["method"], p["receipt"] is not None) for p in invoice["payments"]]
    assert attempts == [("declined", "card", False), ("succeeded", "paypal", True)]
    failed, paid = invoice["payments"]
    assert api.client.get(f"/v1/payments/{failed['id']}/receipt", headers=owner).status_code == 404
    receipt = api.client.get(f"/v1/payments/{paid['id']}/receipt", headers=owner)
    assert receipt.status_code == 200 and receipt.json()["amount"] == invoice["amount_due"]
    again = api.client.post(f"/v1/invoices/{number}/pay", headers=owner)
    assert again.status_code == 409 and again.json()["code"] == "invoice_not_open"


def test_paying_is_idempotent_under_a_key(api):
    number = _open_invoice(api, "sandbox:card:succeeds", key="s-key")
    headers = api.headers("owner", **{"Idempotency-Key": "pay-once"})
    first = api.client.post(f"/v1/invoices/{number}/pay", headers=headers)
    assert first.json()["outcome"] == "succeeded"
    invoice = api.client.get(f"/v1/invoices/{number}", headers=api.headers("owner")).json()
    assert [p["status"] for p in invoice["payments"]] == ["succeeded"]


def test_unusable_tokens_and_types_are_refused_with_the_reason(api):
    owner = api.headers("owner")
    for body, field in (
        ({"type": "card", "token": "4242424242424242"}, "token"),
        ({"type": "card", "token": "sandbox:paypal:succeeds"}, "token"),
        ({"type": "cheque", "token": "sandbox:card:succeeds"}, "type"),
    ):
        answer = api.client.put("/v1/accounts/corp/payment-method", json=body, headers=owner)
        assert answer.status_code in (400, 422), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert field in answer.text
    fr = api.client.put(
        "/v1/accounts/corp/payment-method",
        json={"type": "card", "token": "nope"},
        headers=api.headers("owner", **{"Accept-Language": "fr"}),
    )
    assert "sandbox" in fr.json()["detail"]


def test_checkout_charges_at_once_and_a_decline_puts_the_subscription_past_due(api):
    owner = api.headers("owner")
    api.client.put(
        "/v1/accounts/corp/payment-method",
        json={"type": "card", "token": "sandbox:card:insufficient_funds"},
        headers=owner,
    )
    done = api.client.post(
        "/v1/checkout", json={"items": [{"subscription": "s1", "quantity": 4}]}, headers=owner
    )
    assert done.status_code == 200, done.text
    body = done.json()
    (invoice,) = [d for d in body["items"][0]["documents"] if d["type"] == "invoice"]
    assert body["payments"] == [{"invoice": invoice["number"], "outcome": "insufficient_funds"}]
    sub = api.client.get("/v1/subscriptions/s1", headers=owner).json()
    assert sub["status"] == "past_due" and sub["quantity"] == 4  # applied at once (gotoassist)
    api.client.put(
        "/v1/accounts/corp/payment-method",
        json={"type": "card", "token": "sandbox:card:succeeds"},
        headers=owner,
    )
    paid = api.client.post(f"/v1/invoices/{invoice['number']}/pay", headers=owner)
    assert paid.json()["outcome"] == "succeeded"
    assert api.client.get("/v1/subscriptions/s1", headers=owner).json()["status"] == "active"
