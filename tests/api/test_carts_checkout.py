"""Preview, checkout, carts, idempotency and versions through the HTTP API, on SQLite and
PostgreSQL, over the world of tests/store/world.py (gotoassist policy, s1 standard-monthly × 2
billed on the 15th, America/New_York; the clock stands at 2024-02-20 10:00 New York).

The numbers are seed 004's: 24 of the period's 29 days are left on 20 February, so
standard-monthly × 2 credits 45.00 × 2 × 24/29 = 74.48 and premium-monthly × 3 charges
65.00 × 3 × 24/29 = 161.38.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from prorata.adapters import schema as t
from prorata.services import subscriptions
from tests.api.test_resources import contract_tenant

PROBLEM = "application/problem+json"
COUNTED = (
    t.documents,
    t.orders,
    t.order_items,
    t.subscription_terms,
    t.ledger_entries,
    t.requests,
    t.audit_log,
    t.outbox,
    t.idempotency_keys,
    t.carts,
)


def counts(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in COUNTED
        }


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def total(documents: list[dict], field: str) -> int:
    return sum(cents(d[field]) for d in documents)


def without_number(documents: list[dict]) -> list[dict]:
    return [{k: v for k, v in doc.items() if k != "number"} for doc in documents]


def add_s2(api, plan: str = "standard-monthly", quantity: int = 2) -> None:
    """A second subscription of corp, billed on the 15th since 16 January."""
    subscriptions.subscribe(
        api.world.engine,
        api.world.principals["token"],
        subscription="s2",
        account="corp",
        plan=plan,
        quantity=quantity,
        billing_day=15,
        at=api.world.at(16, month=1),
    )


# preview = checkout ------------------------------------------------------------------------


def _plain(api) -> tuple[str, dict, dict]:
    return "s1", {"plan": "premium-monthly", "quantity": 3}, api.headers("owner")


def _with_credit(api) -> tuple[str, dict, dict]:
    # A seat cut first: 45.00 × 1 × 24/29 = 37.24 goes to the account's credit.
    ok(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "quantity": 1}]},
            headers=api.headers("owner"),
        )
    )
    return "s1", {"plan": "premium-monthly", "quantity": 3}, api.headers("owner")


def _with_tax(api) -> tuple[str, dict, dict]:
    # An account taxed at 20 %, subscribed on 20 February; the change is on 1 March.
    token = api.headers("token")
    ok(
        api.client.post(
            "/v1/accounts", json={"id": "taxco", "tax_rate": "20", "auto_pay": False}, headers=token
        ),
        201,
    )
    created = ok(
        api.client.post(
            "/v1/subscriptions",
            json={"account": "taxco", "plan": "standard-monthly", "quantity": 2, "billing_day": 15},
            headers=token,
        ),
        201,
    )
    api.now = api.world.at(1, month=3)
    return created["subscription"]["id"], {"plan": "premium-monthly"}, token


def _credit_note(api) -> tuple[str, dict, dict]:
    # The contract tenant (aircall): 4 users removed from an annual plan, a credit note.
    contract = contract_tenant(api)
    return "a1", {"quantity": 6}, contract.headers()


SUMMARIES = {
    "plain": (
        _plain,
        {
            "currency": "USD",
            "period_start": "2024-02-20T00:00:00-05:00",
            "period_end": "2024-03-15T00:00:00-04:00",
            "plan": "premium-monthly",
            "seats": 3,
            "rate": "65.00",
            "rate_period": "monthly",
            "credit_balance": "0.00",
            "subtotal": "86.90",
            "tax": "0.00",
            "credit_used": "0.00",
            "credit_note_total": "0.00",
            "total_due": "86.90",
        },
        [("invoice", ["-74.48", "161.38"])],
    ),
    "credit": (
        _with_credit,
        {
            "currency": "USD",
            "period_start": "2024-02-20T00:00:00-05:00",
            "period_end": "2024-03-15T00:00:00-04:00",
            "plan": "premium-monthly",
            "seats": 3,
            "rate": "65.00",
            "rate_period": "monthly",
            "credit_balance": "37.24",
            "subtotal": "124.14",
            "tax": "0.00",
            "credit_used": "37.24",
            "credit_note_total": "0.00",
            "total_due": "86.90",
        },
        [("invoice", ["-37.24", "161.38"])],
    ),
    "tax": (
        _with_tax,
        {
            "currency": "USD",
            "period_start": "2024-03-01T00:00:00-05:00",
            "period_end": "2024-03-15T00:00:00-04:00",
            "plan": "premium-monthly",
            "seats": 2,
            "rate": "65.00",
            "rate_period": "monthly",
            "credit_balance": "0.00",
            # 65.00 × 2 × 14/29 - 45.00 × 2 × 14/29 = 62.76 - 43.45; tax 20 % of 19.31
            "subtotal": "19.31",
            "tax": "3.86",
            "credit_used": "0.00",
            "credit_note_total": "0.00",
            "total_due": "23.17",
        },
        [("invoice", ["-43.45", "62.76"])],
    ),
    "credit_note": (
        _credit_note,
        {
            "currency": "EUR",
            "period_start": "2024-02-20T00:00:00+01:00",
            "period_end": "2025-01-15T00:00:00+01:00",
            "plan": "essentials-annual",
            "seats": 6,
            "rate": "300.00",
            "rate_period": "annual",
            "credit_balance": "0.00",
            "subtotal": "0.00",
            "tax": "0.00",
            "credit_used": "0.00",
            # 300.00 × 4 × 330/366 (20 February 2024 to 15 January 2025, a leap year)
            "credit_note_total": "1081.97",
            "total_due": "0.00",
        },
        [("credit_note", ["1081.97"])],
    ),
}


@pytest.mark.parametrize("case", list(SUMMARIES))
def test_the_preview_summary_is_what_the_checkout_issues_at_the_same_instant(api, case):
    setup, expected, documents = SUMMARIES[case]
    subscription, change, headers = setup(api)
    before = counts(api.world.engine)

    preview = ok(
        api.client.post(f"/v1/subscriptions/{subscription}/preview", json=change, headers=headers)
    )
    assert counts(api.world.engine) == before  # a preview writes nothing
    assert preview["allowed"] is True and preview["subscription"] == subscription
    summary = preview["summary"]
    assert {k: summary[k] for k in expected} == expected
    drafts = summary["documents"]
    assert [(d["type"], [line["amount"] for line in d["lines"]]) for d in drafts] == documents
    assert {d["number"] for d in drafts} == {"DRAFT"}
    for draft in drafts:
        assert draft["issued_at"].startswith(api.now.date().isoformat())
        for line in draft["lines"]:
            assert line["explanation"], line  # every prorated line says why it costs that
            assert line["start"] == summary["period_start"]
            assert line["end"] == summary["period_end"]

    item = {"subscription": subscription, **change, "expected_version": preview["version"]}
    result = ok(api.client.post("/v1/checkout", json={"items": [item]}, headers=headers))
    applied = result["items"][0]
    assert result["status"] == "completed" and applied["status"] == "applied"
    assert applied["version"] == preview["version"] + 1
    assert applied["quote"] == preview["quote"]
    issued = applied["documents"]
    assert without_number(issued) == without_number(drafts)
    assert all(d["number"] != "DRAFT" for d in issued)
    invoices = [d for d in issued if d["type"] == "invoice"]
    notes = [d for d in issued if d["type"] == "credit_note"]
    assert total(invoices, "amount_due") == cents(summary["total_due"])
    assert total(invoices, "tax") == cents(summary["tax"])
    assert total(invoices, "credit_applied") == cents(summary["credit_used"])
    assert total(notes, "total") == cents(summary["credit_note_total"])
    for doc in issued:
        kind = "invoices" if doc["type"] == "invoice" else "credit-notes"
        stored = ok(api.client.get(f"/v1/{kind}/{doc['number']}", headers=headers))
        # a stored invoice's view also says what it still asks for
        assert {k: v for k, v in stored.items() if k not in ("payments", "outstanding")} == doc


# checkout ---------------------------------------------------------------------------------


def test_checkout_of_two_subscriptions_is_one_order(api):
    add_s2(api)
    before = counts(api.world.engine)
    result = ok(
        api.client.post(
            "/v1/checkout",
            json={
                "items": [
                    {"subscription": "s1", "quantity": 3},
                    {"subscription": "s2", "plan": "premium-monthly"},
                ]
            },
            headers=api.headers("billing_contact"),
        )
    )
    assert result["status"] == "completed"
    assert [i["subscription"] for i in result["items"]] == ["s1", "s2"]
    assert [i["status"] for i in result["items"]] == ["applied", "applied"]
    assert [i["version"] for i in result["items"]] == [3, 3]
    s1, s2 = (i["documents"] for i in result["items"])
    # s1: 45.00 × 3 × 24/29 - 74.48; s2: (65.00 - 45.00) × 2 × 24/29
    assert [line["amount"] for line in s1[0]["lines"]] == ["-74.48", "111.72"]
    assert s1[0]["total"] == "37.24"
    assert [line["amount"] for line in s2[0]["lines"]] == ["-74.48", "107.59"]
    assert s2[0]["total"] == "33.11"
    after = counts(api.world.engine)
    assert after["orders"] == before["orders"] + 1
    assert after["order_items"] == before["order_items"] + 2
    for key in ("s1", "s2"):
        detail = ok(api.client.get(f"/v1/subscriptions/{key}", headers=api.headers("owner")))
        assert detail["version"] == 3
    assert (
        ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("owner")))["recurring_amount"]
        == "135.00"
    )
    assert (
        ok(api.client.get("/v1/subscriptions/s2", headers=api.headers("owner")))["recurring_amount"]
        == "130.00"
    )


def test_refusals_write_nothing_and_roll_back_the_whole_checkout(api):
    before = counts(api.world.engine)
    preview = ok(
        api.client.post(
            "/v1/subscriptions/s1/preview", json={"quantity": 2}, headers=api.headers("owner")
        )
    )
    assert preview == {
        "subscription": "s1",
        "version": 2,
        "allowed": False,
        "refusal": {
            "code": "no_change",
            "message": "The requested terms are the current terms.",
        },
    }
    assert counts(api.world.engine) == before
    add_s2(api)
    before = counts(api.world.engine)
    body = problem(
        api.client.post(
            "/v1/checkout",
            json={
                "items": [
                    {"subscription": "s1", "quantity": 5},
                    {"subscription": "s2", "quantity": 2},
                ]
            },
            headers=api.headers("owner"),
        ),
        422,
        "no_change",
    )
    assert body["params"] == {"item": 1, "subscription": "s2"}
    assert body["detail"] == "The requested terms are the current terms."
    assert counts(api.world.engine) == before
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("owner")))
    assert detail["quantity"] == 2 and detail["version"] == 2


def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(api):
    owner = api.headers("owner")
    preview = ok(
        api.client.post("/v1/subscriptions/s1/preview", json={"quantity": 3}, headers=owner)
    )
    assert preview["version"] == 2
    first = ok(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "quantity": 3, "expected_version": 2}]},
            headers=owner,
        )
    )
    assert first["items"][0]["version"] == 3
    before = counts(api.world.engine)
    for path, body in (
        ("/v1/checkout", {"items": [{"subscription": "s1", "quantity": 4, "expected_version": 2}]}),
        ("/v1/subscriptions/s1/preview", {"quantity": 4, "expected_version": 2}),
        ("/v1/subscriptions/s1/cancel", {"expected_version": 2}),
    ):
        conflict = problem(api.client.post(path, json=body, headers=owner), 409, "version_conflict")
        assert conflict["params"] == {"subscription": "s1", "expected": 2, "found": 3}
        assert conflict["detail"] == (
            "Subscription s1 is at version 3, not 2: it changed since it was read; preview again."
        )
        assert conflict["instance"] == path
    french = problem(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "quantity": 4, "expected_version": 2}]},
            headers=api.headers("owner", **{"Accept-Language": "fr"}),
        ),
        409,
        "version_conflict",
    )
    assert french["detail"] == (
        "L'abonnement s1 est à la version 3, pas 2 : il a changé depuis sa lecture ; "
        "refaites l'aperçu."
    )
    assert counts(api.world.engine) == before


def test_a_new_billing_cycle_is_refused_while_a_cancellation_is_scheduled(api):
    owner = api.headers("owner")
    cancel = ok(api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=owner))
    assert cancel["effective_at"] == "2024-03-15T00:00:00-04:00"
    before = counts(api.world.engine)
    body = {"items": [{"subscription": "s1", "period": "annual"}]}
    response = api.client.post("/v1/checkout", json=body, headers=owner | {"Accept-Language": "fr"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "cancellation_scheduled"
    assert problem["detail"].startswith("Cet abonnement prend fin le 15 mars 2024")
    assert counts(api.world.engine) == before
    # withdrawn, the cancellation no longer stands in the way
    ok(api.client.post("/v1/subscriptions/s1/undo", headers=owner))
    changed = ok(api.client.post("/v1/checkout", json=body, headers=owner))
    assert changed["items"][0]["documents"][0]["total"] == "861.52"  # 936.00 - 74.48
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=owner))
    assert detail["cancel_at"] is None and detail["period_end"] == "2025-02-20T00:00:00-05:00"


# carts ------------------------------------------------------------------------------------


def test_a_cart_is_filled_reviewed_and_checked_out_once(api):
    owner = api.headers("owner")
    french = api.headers("owner", **{"Accept-Language": "fr"})
    cart = ok(api.client.post("/v1/carts", json={"account": "corp"}, headers=owner), 201)
    key = cart["id"]
    assert key.startswith("cart_")
    assert cart["account"] == "corp" and cart["status"] == "open" and cart["order"] is None
    assert cart["items"] == [] and cart["created_at"] == "2024-02-20T10:00:00-05:00"
    assert ok(api.client.get(f"/v1/carts/{key}", headers=owner))["summary"] is None

    put = ok(api.client.put(f"/v1/carts/{key}/items/s1", json={"quantity": 3}, headers=owner))
    assert [(i["subscription"], i["quantity"]) for i in put["items"]] == [("s1", 3)]
    # Putting s1 again replaces its change ("Modifier la commande").
    put = ok(
        api.client.put(
            f"/v1/carts/{key}/items/s1",
            json={"plan": "premium-monthly", "quantity": 3, "expected_version": 1},
            headers=owner,
        )
    )
    assert len(put["items"]) == 1
    assert put["items"][0] == {
        "subscription": "s1",
        "plan": "premium-monthly",
        "quantity": 3,
        "period": None,
        "add_products": [],
        "timing": None,
        "expected_version": 1,
    }
    # Reading the cart runs its checkout and rolls it back: here, a version conflict.
    before = counts(api.world.engine)
    review = ok(api.client.get(f"/v1/carts/{key}", headers=french))
    assert review["summary"]["ready"] is False
    assert review["summary"]["error"] == {
        "code": "version_conflict",
        "message": "L'abonnement s1 est à la version 2, pas 1 : il a changé depuis sa lecture ; "
        "refaites l'aperçu.",
    }
    assert review["summary"]["details"] == {"subscription": "s1", "expected": 1, "found": 2}
    assert counts(api.world.engine) == before

    removed = ok(api.client.delete(f"/v1/carts/{key}/items/s1", headers=owner))
    assert removed["items"] == []
    problem(api.client.delete(f"/v1/carts/{key}/items/s1", headers=owner), 404, "not_found")
    problem(api.client.post(f"/v1/carts/{key}/checkout", headers=owner), 400, "empty_cart")

    ok(
        api.client.put(
            f"/v1/carts/{key}/items/s1",
            json={"plan": "premium-monthly", "quantity": 3, "expected_version": 2},
            headers=owner,
        )
    )
    review = ok(api.client.get(f"/v1/carts/{key}", headers=owner))
    assert review["summary"]["ready"] is True
    (drafted,) = review["summary"]["items"]
    assert drafted["status"] == "applied" and drafted["version"] == 3
    assert [d["number"] for d in drafted["documents"]] == ["DRAFT"]
    assert [line["amount"] for line in drafted["documents"][0]["lines"]] == ["-74.48", "161.38"]
    assert drafted["documents"][0]["total"] == "86.90"
    assert counts(api.world.engine) == before

    done = ok(api.client.post(f"/v1/carts/{key}/checkout", headers=owner))
    assert done["cart"] == key and done["status"] == "completed"
    (applied,) = done["items"]
    assert without_number(applied["documents"]) == without_number(drafted["documents"])
    assert applied["quote"] == drafted["quote"] and applied["version"] == 3
    assert applied["documents"][0]["number"] == "INV-0003"  # after the renewal INV-0002

    closed = problem(
        api.client.post(f"/v1/carts/{key}/checkout", headers=owner), 409, "cart_closed"
    )
    assert closed["params"] == {"cart": key}
    assert closed["detail"] == f"Cart {key} was checked out already; start a new cart."
    problem(
        api.client.put(f"/v1/carts/{key}/items/s1", json={"quantity": 5}, headers=owner),
        409,
        "cart_closed",
    )
    final = ok(api.client.get(f"/v1/carts/{key}", headers=owner))
    assert final["status"] == "checked_out" and final["order"] == done["order"]
    assert final["summary"] is None
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=owner))
    assert (detail["plan"], detail["quantity"], detail["version"]) == ("premium-monthly", 3, 3)


# idempotency ------------------------------------------------------------------------------


def test_a_replayed_checkout_returns_the_first_response_and_creates_nothing(api):
    headers = api.headers("owner", **{"Idempotency-Key": "order-1"})
    body = {"items": [{"subscription": "s1", "quantity": 3}]}
    first = api.client.post("/v1/checkout", json=body, headers=headers)
    assert first.status_code == 200
    assert first.json()["items"][0]["documents"][0]["total"] == "37.24"
    before = counts(api.world.engine)

    api.now = api.world.at(21)  # a day later: a new call would prorate otherwise
    again = api.client.post("/v1/checkout", json=body, headers=headers)
    assert again.status_code == 200
    assert again.content == first.content
    assert counts(api.world.engine) == before

    for who, other in (
        ("owner", {"items": [{"subscription": "s1", "quantity": 4}]}),
        ("billing_contact", body),
    ):
        reused = problem(
            api.client.post(
                "/v1/checkout",
                json=other,
                headers=api.headers(who, **{"Idempotency-Key": "order-1"}),
            ),
            422,
            "idempotency_key_reused",
        )
        assert reused["instance"] == "/v1/checkout"
    problem(
        api.client.post("/v1/subscriptions/s1/cancel", json={}, headers=headers),
        422,
        "idempotency_key_reused",
    )
    assert counts(api.world.engine) == before
    detail = ok(api.client.get("/v1/subscriptions/s1", headers=api.headers("owner")))
    assert (detail["quantity"], detail["version"]) == (3, 3)

    # A call that fails keeps nothing: its key can be used again.
    headers = api.headers("owner", **{"Idempotency-Key": "retry-me"})
    problem(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "quantity": 4, "expected_version": 2}]},
            headers=headers,
        ),
        409,
        "version_conflict",
    )
    result = ok(
        api.client.post(
            "/v1/checkout",
            json={"items": [{"subscription": "s1", "quantity": 4, "expected_version": 3}]},
            headers=headers,
        )
    )
    assert result["items"][0]["version"] == 4


def test_replayed_cart_calls_return_the_same_cart_and_a_cart_holds_one_account(api):
    headers = api.headers("owner", **{"Idempotency-Key": "cart-1"})
    first = ok(api.client.post("/v1/carts", json={"account": "corp"}, headers=headers), 201)
    again = ok(api.client.post("/v1/carts", json={"account": "corp"}, headers=headers), 201)
    assert again == first
    assert counts(api.world.engine)["carts"] == 1
    key = first["id"]
    put = api.headers("owner", **{"Idempotency-Key": "put-1"})
    ok(api.client.put(f"/v1/carts/{key}/items/s1", json={"quantity": 3}, headers=put))
    problem(
        api.client.put(f"/v1/carts/{key}/items/s1", json={"quantity": 4}, headers=put),
        422,
        "idempotency_key_reused",
    )
    checkout = api.headers("owner", **{"Idempotency-Key": "pay-1"})
    done = api.client.post(f"/v1/carts/{key}/checkout", headers=checkout)
    assert done.status_code == 200
    before = counts(api.world.engine)
    # A replay of the checkout answers as the first time, though the cart is now closed.
    replay = api.client.post(f"/v1/carts/{key}/checkout", headers=checkout)
    assert replay.status_code == 200 and replay.content == done.content
    assert counts(api.world.engine) == before

    # A cart holds the changes of one account.
    owner = api.headers("owner")
    token = api.headers("token")
    subscriptions.subscribe(
        api.world.engine,
        api.world.principals["token"],
        subscription="o1",
        account="other",
        plan="standard-monthly",
        at=api.world.at(16, month=1),
    )
    key = ok(api.client.post("/v1/carts", json={"account": "corp"}, headers=token), 201)["id"]
    problem(
        api.client.put(f"/v1/carts/{key}/items/o1", json={"quantity": 2}, headers=token),
        400,
        "mixed_accounts",
    )
    problem(
        api.client.put(f"/v1/carts/{key}/items/nope", json={"quantity": 2}, headers=owner),
        404,
        "not_found",
    )
    problem(api.client.get("/v1/carts/cart_unknown", headers=owner), 404, "not_found")
